"""The test command itself: SLURM tests are opt-in and private, and a stuck test times out.

Checks, without starting any SLURM: the `slurm` tests skip with one line unless
MEMPHASE_TEST_SLURM=1; tests/hpc/slurm-up.sh refuses to join a SLURM it did not start (a live
daemon recorded in its folder, or a port already listening) before installing or starting
anything; pytest-timeout is active with the limit pyproject.toml sets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UP = REPO / "tests" / "hpc" / "slurm-up.sh"


def _run(cmd, env=None, cwd=REPO, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_slurm_tests_skip_unless_opted_in():
    env = {k: v for k, v in os.environ.items() if k not in ("MEMPHASE_TEST_SLURM", "SLURM_CONF")}
    r = _run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly",
              "tests/hpc/test_slurm.py"], env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" not in r.stdout.splitlines()[-1], r.stdout
    assert "skipped" in r.stdout.splitlines()[-1]
    assert "SLURM tests are opt-in: set MEMPHASE_TEST_SLURM=1" in r.stdout


def test_slurm_up_refuses_a_folder_with_a_running_slurm(tmp_path):
    (tmp_path / "munge").mkdir()
    (tmp_path / "munge" / "munged.pid").write_text(str(os.getpid()))   # a live process
    env = dict(os.environ, MEMPHASE_SLURM_DIR=str(tmp_path), MEMPHASE_SLURMCTLD_PORT="1",
               MEMPHASE_SLURMD_PORT="2")
    r = _run(["bash", str(UP)], env=env)
    assert r.returncode == 1
    assert "already runs a SLURM" in r.stderr and "not started by this call" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["munge"]   # nothing written
    assert not (tmp_path / "slurm.conf").exists()


def test_slurm_up_refuses_a_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = dict(os.environ, MEMPHASE_SLURM_DIR=str(tmp_path / "slurm"),
                   MEMPHASE_SLURMCTLD_PORT=str(port), MEMPHASE_SLURMD_PORT="2")
        r = _run(["bash", str(UP)], env=env)
    assert r.returncode == 1
    assert f"port {port} is in use" in r.stderr
    assert not (tmp_path / "slurm").exists()


def test_every_test_has_a_time_limit(tmp_path):
    opts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(opts["timeout"]) <= 900
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_stuck.py").write_text(textwrap.dedent("""
        import time
        def test_stuck():
            time.sleep(60)
    """))
    t0 = time.monotonic()
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2",
              "test_stuck.py"], cwd=tmp_path)
    assert r.returncode == 1
    assert "Timeout" in r.stdout + r.stderr
    assert time.monotonic() - t0 < 40
