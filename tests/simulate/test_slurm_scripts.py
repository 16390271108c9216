"""The example SLURM scripts (examples/slurm/) under POSIX sh (dash on Debian, as `sbatch
--wrap` and a `#!/bin/sh` job use), with a fake `sbatch` that records its arguments and a fake
memphase that records its own, so no SLURM is needed (issue 23 part 1, issue 26 item 2).
tests/hpc/test_slurm.py runs the same scripts against a real SLURM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM = REPO / "examples" / "slurm"
SH = shutil.which("dash") or "/bin/sh"

#: a config path and a venv path that ran `touch` when pasted into shell code (issue 26 item 2)
EVIL_CONFIG = "it's; touch pwned; echo '.toml"
EVIL_VENV = "o'brien's venv; touch pwned2 #"


def _stub(path: Path, log: Path, name: str, say: str = ""):
    """An executable that appends its arguments (NUL-separated, one record per call) to `log`
    and prints a job id (sbatch --parsable style), then `say`."""
    path.write_text(f"""#!/bin/sh
i=0
while [ -e '{log}'/{name}$i ]; do i=$((i + 1)); done
for a in "$@"; do printf '%s\\0' "$a"; done > '{log}'/{name}$i
echo $((100 + i))
{f"echo '{say}'" if say else ""}
""")
    path.chmod(0o755)


def calls(log: Path, name: str) -> list[list[str]]:
    out, i = [], 0
    while (log / f"{name}{i}").exists():
        out.append((log / f"{name}{i}").read_bytes().decode().split("\0")[:-1])
        i += 1
    return out


@pytest.fixture
def world(tmp_path):
    """tmp/log (records), tmp/bin/sbatch (fake), a venv `tmp/<EVIL_VENV>` holding a fake memphase
    and an activate script, and a config at tmp/cfg/<EVIL_CONFIG>. memphase is on no PATH."""
    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "bin").mkdir()
    _stub(tmp_path / "bin" / "sbatch", log, "sbatch")
    venv = tmp_path / EVIL_VENV
    (venv / "bin").mkdir(parents=True)
    # the plan line submit_array.sh reads its memory request from (`memphase sweep --dry-run`)
    _stub(venv / "bin" / "memphase", log, "memphase",
          say="slurm memory per task: --mem=1536M (largest cell estimate + process, x1.25)")
    # what a venv's activate does that matters here (a real one is sourced the same way)
    (venv / "bin" / "activate").write_text('VIRTUAL_ENV="$(cd "$(dirname "$0")" 2>/dev/null; '
                                           'pwd)"\nPATH="' + str(venv).replace('"', '\\"')
                                           + '/bin:$PATH"\nexport PATH\n')
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / EVIL_CONFIG
    cfg.write_text("job = 'quickstart'\n")
    return {"tmp": tmp_path, "log": log, "venv": venv, "cfg": cfg,
            "path": f"{tmp_path / 'bin'}:/usr/bin:/bin"}


def submit(world, *extra, **env):
    e = {"PATH": world["path"], "HOME": str(world["tmp"])}
    e.update(env)
    return subprocess.run([SH, str(SLURM / "submit_array.sh"), str(world["cfg"]), "4", *extra],
                          env=e, capture_output=True, text=True, cwd=world["tmp"])


def no_injection(world):
    found = [p for p in world["tmp"].rglob("pwned*")]
    assert not found, found


def test_submit_array_runs_under_dash_without_memphase_on_path(world):
    """Issue 23: the submitting shell needed memphase on PATH; the merge job used `source`
    under /bin/sh (`source: not found`, exit 127)."""
    r = submit(world, "--partition=short", MEMPHASE_VENV=str(world["venv"]))
    assert r.returncode == 0, r.stderr
    assert calls(world["log"], "memphase") == [["sweep", str(world["cfg"]), "--dry-run"]]
    array, merge = calls(world["log"], "sbatch")
    # the memory request is the plan's (from the cell estimates), before the user's options
    # (which come later on sbatch's command line and win)
    assert array == ["--parsable", "--array=0-3", "--mem=1536M", "--partition=short",
                     str(SLURM / "sweep_array.sbatch"), str(world["cfg"]), "4"]
    # afterany: a failed, cancelled, preempted or timed-out task never orphans the merge job
    assert merge == ["--parsable", "--dependency=afterany:100", "--partition=short",
                     str(SLURM / "merge.sbatch"), str(world["cfg"])]
    assert "--wrap" not in merge
    assert "job array 100 (0-3 of 4, --mem=1536M per task); merge: job 101" in r.stdout
    no_injection(world)


def test_merge_job_under_dash_with_only_memphase_venv_exported(world):
    """What sbatch --export=MEMPHASE_VENV runs: merge.sbatch under /bin/sh, no PATH, the config
    path with a quote and a semicolon passed through untouched (issue 26 item 2)."""
    r = subprocess.run([SH, str(SLURM / "merge.sbatch"), str(world["cfg"])],
                       env={"MEMPHASE_VENV": str(world["venv"])}, capture_output=True,
                       text=True, cwd=world["tmp"])
    assert r.returncode == 0, r.stderr
    assert calls(world["log"], "memphase") == [["merge", str(world["cfg"]), "--quiet"]]
    no_injection(world)


@pytest.mark.parametrize("script", ["sweep_array.sbatch", "merge.sbatch", "dask_slurm.sbatch"])
def test_job_scripts_pass_quoted_paths_as_arguments(world, script):
    env = {"MEMPHASE_VENV": str(world["venv"]), "SLURM_ARRAY_TASK_ID": "1"}
    r = subprocess.run([SH, str(SLURM / script), str(world["cfg"]), "4"], env=env,
                       capture_output=True, text=True, cwd=world["tmp"])
    assert r.returncode == 0, r.stderr
    (rec,) = calls(world["log"], "memphase")
    assert rec[1] == str(world["cfg"])
    no_injection(world)


@pytest.mark.parametrize("how", [".", "source"])
def test_memphase_activate_runs_under_dash(world, how):
    """MEMPHASE_ACTIVATE in sh (`. FILE`) or written for bash (`source FILE`) works in every
    script under dash."""
    act = f"{how} '{world['tmp'] / 'act.sh'}'"
    (world["tmp"] / "act.sh").write_text(f'PATH="{world["venv"]}/bin:$PATH"\n')
    r = submit(world, MEMPHASE_ACTIVATE=act)
    assert r.returncode == 0, r.stderr
    assert len(calls(world["log"], "sbatch")) == 2
    for script in ("sweep_array.sbatch", "merge.sbatch", "dask_slurm.sbatch"):
        r = subprocess.run([SH, str(SLURM / script), str(world["cfg"]), "4"],
                           env={"MEMPHASE_ACTIVATE": act, "SLURM_ARRAY_TASK_ID": "0",
                                "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, cwd=world["tmp"])
        assert r.returncode == 0, (script, r.stderr)


def test_submit_without_memphase_anywhere_submits_nothing(world):
    r = submit(world)
    assert r.returncode == 2 and "memphase not found" in r.stderr, r.stderr
    assert calls(world["log"], "sbatch") == []


def test_resubmitting_some_tasks_gets_its_own_merge_job(world):
    r = submit(world, MEMPHASE_VENV=str(world["venv"]), MEMPHASE_ARRAY="1,3")
    assert r.returncode == 0, r.stderr
    array, merge = calls(world["log"], "sbatch")
    assert "--array=1,3" in array and array[-1] == "4"  # N stays the sweep's shard count
    assert merge[1] == "--dependency=afterany:100"
    for bad in ("1;id", "$(id)", ""):
        r = submit(world, MEMPHASE_VENV=str(world["venv"]), MEMPHASE_ARRAY=bad)
        if bad:
            assert r.returncode == 2 and "MEMPHASE_ARRAY" in r.stderr


@pytest.mark.parametrize("n", ["0", "x", "-1", "4;id"])
def test_submit_refuses_a_bad_shard_count(world, n):
    r = subprocess.run([SH, str(SLURM / "submit_array.sh"), str(world["cfg"]), n],
                       env={"PATH": world["path"], "MEMPHASE_VENV": str(world["venv"])},
                       capture_output=True, text=True, cwd=world["tmp"])
    assert r.returncode == 2 and "N must be a positive integer" in r.stderr
    assert calls(world["log"], "sbatch") == []


@pytest.mark.parametrize("name", sorted(p.name for p in SLURM.iterdir()))
def test_example_scripts_are_posix_sh(name):
    text = (SLURM / name).read_text()
    assert text.startswith("#!/bin/sh\n")
    r = subprocess.run([SH, "-n", str(SLURM / name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import re

    # `source` (not in POSIX sh) is never run as a command, only defined as a shim
    assert not re.search(r"^\s*source\s", text, flags=re.M), name
