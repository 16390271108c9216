"""Sweeps on a real SLURM (the single-node one tests/hpc/slurm-up.sh starts): the job-array
example scripts, cancellation and resubmission of one task, preemption (SIGTERM, requeue), the
Dask-on-SLURM backend, and refusal of job-script injection before anything is submitted. Every
Dataset is compared with one uninterrupted in-process run of the same config (variables and
coordinates bit for bit; provenance attributes such as backend and timings differ by design).

The commands are the ones docs/cluster.md shows. Sweeps are tiny (4-8 cells of about a second).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from memphase.analysis.results import open_sweep
from memphase.simulate.cli import main
from memphase.simulate.run.files import OutputLock, SweepError, slurm_job_running
from memphase.simulate.sweep import part_path, read_part, run_sweep
from cli_checks import quickstart_template

pytestmark = pytest.mark.slurm

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ARRAY = os.path.join(REPO, "examples", "slurm", "sweep_array.sbatch")
SUBMIT = os.path.join(REPO, "examples", "slurm", "submit_array.sh")

#: 4 cells, a fraction of a second each
QUICK = quickstart_template(seeds="[0]", steps=400, n_samples=256, record=10,
                            sweep="threads = 1\n{extra}")
#: 8 cells of about 0.5-2 s: long enough to interrupt a task between cells
SLOW = QUICK.replace("seeds = [0]", "seeds = [0, 1]").replace(
    "steps = 400", "steps = 3000").replace("n_samples = 256", "n_samples = 512")


def write_config(tmp_path, text=QUICK, extra="", name="sweep.toml"):
    p = tmp_path / name
    p.write_text(text.format(out=tmp_path / "out.h5", extra=extra))
    return p


def reference(tmp_path, cfg):
    out = run_sweep(cfg, output=tmp_path / "ref.h5", backend="inprocess", progress=False,
                    plot=False)
    with open_sweep(out) as ds:
        return ds.load()


def assert_same_variables(path, ref):
    """Data variables and coordinates equal bit for bit; attributes (provenance) not compared."""
    with open_sweep(path) as ds:
        got = ds.load()
    assert got.attrs["config_hash"] == ref.attrs["config_hash"]
    assert set(got.data_vars) == set(ref.data_vars)
    a, b = got.copy(), ref.copy()
    a.attrs, b.attrs = {}, {}
    xr.testing.assert_identical(a, b)


def journal_metas(target) -> dict:
    """{cell key: meta} of the cells journaled so far beside `target`."""
    d = target.with_name(target.name + ".cells")
    out = {}
    for f in sorted(d.glob("*.npz")) if d.is_dir() else []:
        try:
            with np.load(f, allow_pickle=False) as z:
                meta = json.loads(str(z["__meta__"]))
                if f.name.startswith("batch-"):  # a batch of cells (journal.py)
                    out.update({str(k): dict(m, code=meta.get("code"))
                                for k, m in zip(z["__keys__"], meta["cells"])})
                else:  # one cell (journals before batches)
                    out[f.stem] = meta
        except Exception:  # being renamed into place at this instant
            continue
    return out


def sbatch(slurm, tmp_path, *args, env=None) -> str:
    return slurm.run("sbatch", "--parsable", f"--chdir={tmp_path}", *args, env=env).split(";")[0]


# ----------------------------------------------------------------------------- 1. job array


def test_job_array_then_merge_equals_in_process_run(slurm, tmp_path):
    """examples/slurm/submit_array.sh under /bin/sh: a 2-task array and a merge job after it.
    memphase is on no PATH (neither the submitting shell's nor the jobs'): MEMPHASE_VENV alone
    makes it available, and only MEMPHASE_VENV is exported to the jobs (issue 23)."""
    cfg = write_config(tmp_path)
    env = slurm.job_env("venv")
    out = slurm.run("sh", SUBMIT, cfg, 2, f"--chdir={tmp_path}", "--export=MEMPHASE_VENV",
                    env=env, cwd=tmp_path)
    array, merge = out.split("job array ")[1].split()[0], out.split("merge: job ")[1].split()[0]
    slurm.wait(merge, timeout=240)
    for i in range(2):
        assert slurm.state(f"{array}_{i}") == "COMPLETED"
    assert_same_variables(tmp_path / "out.h5", reference(tmp_path, cfg))
    with open_sweep(tmp_path / "out.h5") as ds:
        assert ds.attrs["backend"] == "shards/2"


def test_array_script_without_memphase_on_path_says_how_to_activate(slurm, tmp_path):
    cfg = write_config(tmp_path)
    job = sbatch(slurm, tmp_path, "--array=0", ARRAY, cfg, 1, env=slurm.job_env("none"))
    slurm.wait(f"{job}_0", states=("FAILED",))
    log = (tmp_path / f"memphase-{job}_0.log").read_text()
    assert "memphase is not on PATH" in log and "MEMPHASE_VENV" in log, log


# ----------------------------------------------------------------------------- 2. scancel


def test_cancelled_task_resubmitted_alone_completes_and_merges(slurm, tmp_path):
    cfg = write_config(tmp_path, SLOW, extra="shards = 2")  # N from the config: --shard I
    out = tmp_path / "out.h5"
    env = slurm.job_env("activate")  # MEMPHASE_ACTIVATE='source .../bin/activate'
    job = sbatch(slurm, tmp_path, "--array=0-1", ARRAY, cfg, env=env)
    part1 = part_path(out, 1, 2)
    slurm.wait_until(lambda: journal_metas(part1), "task 1 to journal a cell")
    slurm.run("scancel", f"{job}_1")
    slurm.wait(f"{job}_1", states=("CANCELLED",))
    slurm.wait(f"{job}_0")
    assert not part1.exists()
    before = journal_metas(part1)
    assert before
    assert main(["merge", str(cfg), "-q"]) == 2  # names the missing part
    # resubmit only index 1 of the same 2-shard sweep: a 1-task array, N unchanged
    again = sbatch(slurm, tmp_path, "--array=1", ARRAY, cfg, env=env)
    slurm.wait(f"{again}_1")
    metas = {k: m for k, (_, m) in read_part(part1).items()}
    for key, m in before.items():  # resumed: the journaled cells were loaded, not recomputed
        assert metas[key]["pid"] == m["pid"], key
    assert main(["merge", str(cfg), "-q", "--no-plot"]) == 0
    assert_same_variables(out, reference(tmp_path, cfg))


def test_merge_job_is_not_orphaned_by_a_cancelled_task(slurm, tmp_path):
    """Issue 23: with afterok, a cancelled (or preempted, timed-out) task left the merge job
    pending forever (DependencyNeverSatisfied). Now it runs once every task ended, fails naming
    the missing shard, and a resubmission of that task brings its own merge job."""
    cfg = write_config(tmp_path, SLOW)
    out = tmp_path / "out.h5"
    env = slurm.job_env("venv")
    text = slurm.run("sh", SUBMIT, cfg, 2, f"--chdir={tmp_path}", env=env, cwd=tmp_path)
    array, merge = text.split("job array ")[1].split()[0], text.split("merge: job ")[1].split()[0]
    part1 = part_path(out, 1, 2)
    slurm.wait_until(lambda: journal_metas(part1), "task 1 to journal a cell")
    slurm.run("scancel", f"{array}_1")
    slurm.wait(merge, states=("FAILED",), timeout=240)
    log = (tmp_path / f"memphase-merge-{merge}.log").read_text()
    assert "missing part files for shards [1]" in log, log
    env["MEMPHASE_ARRAY"] = "1"
    text = slurm.run("sh", SUBMIT, cfg, 2, f"--chdir={tmp_path}", env=env, cwd=tmp_path)
    merge2 = text.split("merge: job ")[1].split()[0]
    slurm.wait(merge2, timeout=240)
    assert_same_variables(out, reference(tmp_path, cfg))


# ----------------------------------------------------------------------------- 3. preemption


def test_sigterm_journals_and_requeue_recomputes_nothing(slurm, tmp_path):
    cfg = write_config(tmp_path, SLOW)
    out = tmp_path / "out.h5"
    part = part_path(out, 0, 1)
    job = sbatch(slurm, tmp_path, "--array=0", ARRAY, cfg, 1, env=slurm.job_env("venv"))
    task = f"{job}_0"
    slurm.wait_until(lambda: journal_metas(part), "the task to journal a cell")
    held = OutputLock(part).record()  # the running task's lock names its host, pid and job
    assert held["slurm_job"] == task and held["host"] == socket.gethostname(), held
    slurm.run("scancel", "--signal=TERM", "--full", task)  # what preemption sends
    slurm.wait(task, states=("FAILED",))
    assert slurm.field(task, "ExitCode") == "143:0"  # the CLI's status for SIGTERM
    log = (tmp_path / f"memphase-{job}_0.log").read_text()
    assert "terminated (SIGTERM); finished cells are kept" in log, log
    before = journal_metas(part)
    assert 0 < len(before) < 8 and not part.exists()
    assert not OutputLock(part).path.exists()  # released on the clean exit

    slurm.run("scontrol", "requeue", task)  # starts cred_expire (slurm-up.sh: 10 s) later
    slurm.wait(task)
    assert slurm.field(task, "Restarts") == "1"
    metas = {k: m for k, (_, m) in read_part(part).items()}
    assert len(metas) == 8
    for key, m in before.items():  # the journaled cells were loaded, not computed again
        assert metas[key]["pid"] == m["pid"]
    first = {m["pid"] for m in before.values()}
    assert any(m["pid"] not in first for m in metas.values())  # the rest ran after the requeue
    assert main(["merge", str(cfg), "-q", "--no-plot"]) == 0
    assert_same_variables(out, reference(tmp_path, cfg))


def test_requeued_task_then_the_merge_job_completes(slurm, tmp_path):
    """[issue 23] submit_array.sh's merge job (afterany) waits through a requeue: task 1 is
    requeued while it runs (SIGTERM: its pending journal batch is written), runs again from its
    journal, and the merge job then completes with the in-process Dataset."""
    cfg = write_config(tmp_path, SLOW)
    out = tmp_path / "out.h5"
    env = slurm.job_env("venv")
    text = slurm.run("sh", SUBMIT, cfg, 2, f"--chdir={tmp_path}", env=env, cwd=tmp_path)
    array, merge = text.split("job array ")[1].split()[0], text.split("merge: job ")[1].split()[0]
    task = f"{array}_1"
    part1 = part_path(out, 1, 2)
    slurm.wait_until(lambda: journal_metas(part1), "task 1 to journal a cell")
    slurm.run("scontrol", "requeue", task)
    slurm.wait(merge, timeout=300)
    assert slurm.field(task, "Restarts") == "1"
    assert slurm.state(task) == "COMPLETED"
    assert_same_variables(out, reference(tmp_path, cfg))


#: 1000 cells of a few milliseconds (issue 23's reproducer: d = 1, N in {2, 3}, two scores,
#: 250 seeds, 2 steps, 1 sample, 2 records)
TINY_1000 = """
job = "quickstart"
output = "{out}"
[data]
d = 1
[grid]
n_train = [2, 3]
score = ["population", "empirical"]
seeds = {{start = 0, stop = 249, num = 250}}
[sampler]
steps = 2
n_samples = 1
record = 2
[sweep]
threads = 1
"""


def test_shard_of_1000_cells_and_the_memory_request_from_the_estimate(slurm, tmp_path):
    """[issue 23] One array task computes a shard of 1000 cells (its part file is a few array
    writes) and the merge job assembles it; the task asked the memory `--dry-run` derives from
    the cell estimates (not a fixed 4G), and its memory check read that allocation."""
    from memphase.simulate.sweep import load_sweep
    from memphase.simulate.sweep.plan import slurm_mem_request

    cfg = write_config(tmp_path, TINY_1000)
    want = slurm_mem_request(load_sweep(cfg))
    env = slurm.job_env("venv")
    text = slurm.run("sh", SUBMIT, cfg, 1, f"--chdir={tmp_path}", env=env, cwd=tmp_path)
    array, merge = text.split("job array ")[1].split()[0], text.split("merge: job ")[1].split()[0]
    assert f"--mem={want} per task" in text
    import re

    show = slurm.run("scontrol", "show", "job", f"{array}_0")
    m = re.search(r"MinMemoryNode=(\d+)([MGT])", show)  # SLURM shows 1024M as 1G
    assert m, show
    assert int(m[1]) * {"M": 1, "G": 1024, "T": 1024**2}[m[2]] == int(want[:-1]), show
    slurm.wait(merge, timeout=300)
    assert len(read_part(part_path(tmp_path / "out.h5", 0, 1))) == 1000
    with open_sweep(tmp_path / "out.h5") as ds:
        assert ds.attrs["cells"] == 1000 and ds.attrs["backend"] == "shards/1"


def test_a_task_whose_flock_fails_runs_with_the_fallback_lock(slurm, tmp_path):
    """[issue 23] On a file system without flock (Lustre mounted without it: ENOSYS) a task
    took no lock and refused even as the only writer. In a job whose flock(2) fails, the task
    takes the exclusive-creation lock, finishes, releases it, and the merge gives the
    in-process Dataset."""
    cfg = write_config(tmp_path)
    out = tmp_path / "out.h5"
    code = ("import errno, fcntl, sys\n"
            "def flock(fd, op): raise OSError(errno.ENOSYS, 'Function not implemented')\n"
            "fcntl.flock = flock\n"
            "from memphase.simulate.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    (tmp_path / "noflock.py").write_text(code)
    job = sbatch(slurm, tmp_path, f"--output={tmp_path}/noflock-%j.log", "--wrap",
                 f"{sys.executable} {tmp_path}/noflock.py sweep {cfg} --shard 0/1 -q",
                 env=slurm.job_env("none"))
    slurm.wait(job)
    part = part_path(out, 0, 1)
    assert part.exists() and not OutputLock(part).path.exists()
    assert main(["merge", str(cfg), "-q", "--no-plot"]) == 0
    assert_same_variables(out, reference(tmp_path, cfg))


# ----------------------------------------------------------------------------- locks


def test_lock_of_another_node_is_taken_over_once_its_slurm_job_ended(slurm, tmp_path):
    job = sbatch(slurm, tmp_path, "--wrap", "sleep 300")
    slurm.wait_until(lambda: slurm.state(job) == "RUNNING", "the sleeper to run")
    assert slurm_job_running(job) is True
    lock = OutputLock(tmp_path / "x.h5")
    record = {"pid": 1, "host": "node-elsewhere", "started": "2026-01-01T00:00:00+00:00",
              "slurm_job": job}
    lock.path.write_text(json.dumps(record))
    with pytest.raises(SweepError, match=f"node-elsewhere, SLURM job {job}"):
        lock.acquire()
    slurm.run("scancel", job)
    slurm.wait(job, states=("CANCELLED",))
    assert slurm_job_running(job) is False
    with lock:
        assert lock.record()["host"] == socket.gethostname()
    assert slurm_job_running("999999999") is False  # never existed


# ----------------------------------------------------------------------------- 4. Dask-on-SLURM


def test_dask_on_slurm_backend_equals_in_process_run(slurm, tmp_path):
    extra = f"""backend = "slurm"
workers = 1
[sweep.slurm]
cores = 1
memory = "2GB"
walltime = "00:10:00"
job_name = "memphase-test-worker"
local_directory = "{tmp_path}"
log_directory = "{tmp_path / 'logs'}"
python = "{sys.executable}"
job_script_prologue = ["source '{sys.prefix}/bin/activate'", "export OMP_NUM_THREADS=1"]
death_timeout = 60
"""
    cfg = write_config(tmp_path, extra=extra)
    before = slurm.run("squeue", "-h", "-o", "%i")
    assert main(["sweep", str(cfg), "-q", "--no-plot"]) == 0
    logs = list((tmp_path / "logs").glob("*.err")) + list((tmp_path / "logs").glob("*.out"))
    assert logs, "no worker job ran through sbatch"
    assert_same_variables(tmp_path / "out.h5", reference(tmp_path, cfg))
    with open_sweep(tmp_path / "out.h5") as ds:
        assert ds.attrs["backend"] == "slurm"
    slurm.wait_until(lambda: slurm.run("squeue", "-h", "-o", "%i") == before,
                     "the worker jobs to end", timeout=60)


# ----------------------------------------------------------------------------- 5. injection


@pytest.mark.parametrize("line", [
    'queue = "short\\nhostname"',
    'account = "phys; rm -rf ~"',
    'walltime = "01:00:00 && id"',
    'memory = "8GB`id`"',
    'job_extra_directives = ["--constraint=cpu", "--comment=$(id)"]',
    'job_extra = ["--qos=low\\n#SBATCH --wrap=id"]',
    'interface = "ib0|id"',
    'python = "/usr/bin/python3 > /tmp/x"',
    'local_directory = "/scratch/$USER"',
    'worker_extra_args = ["--name", "w&id"]',
    'job_script_prologue = ["module load python\\nid"]',
    'job_name = "w --export=ALL,LD_PRELOAD=./evil.so"',  # issue 26 item 3: spaces split options
    'queue = "p --output=$HOME/.bashrc"',
    'python = "/bin/sh -c id"',
])
def test_injection_in_slurm_settings_is_refused_before_submission(slurm, tmp_path, capsys, line):
    cfg = write_config(tmp_path, extra=f'backend = "slurm"\n[sweep.slurm]\n{line}\n')
    before = slurm.run("squeue", "-h", "-o", "%i")
    assert main(["sweep", str(cfg), "-q"]) == 2
    err = capsys.readouterr().err
    key = line.split(" =")[0]
    assert err.count("\n") == 1 and f"sweep.slurm.{key}" in err, err
    assert slurm.run("squeue", "-h", "-o", "%i") == before  # nothing submitted
    assert not list(tmp_path.glob("out.h5*"))
