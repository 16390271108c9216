"""A real single-node SLURM for the `slurm` tests, opt-in: only with MEMPHASE_TEST_SLURM=1
(`.ci/run` sets it), since it needs root, may apt-get install slurm-wlm and munge, and starts
daemons. Each test session starts its own private SLURM (tests/hpc/slurm-up.sh: its own munged,
slurmctld and slurmd, in a fresh temporary folder, on two free ports) and stops exactly those
daemons afterwards (tests/hpc/slurm-down.sh): it never joins, reuses or stops a SLURM it did
not start. Without the variable, or where SLURM cannot start (not root, no apt-get, no
packages), the tests are skipped with the reason in one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples" / "slurm"
OPT_IN = "MEMPHASE_TEST_SLURM"
SKIP_NOT_OPTED_IN = (f"SLURM tests are opt-in: set {OPT_IN}=1 to start a private one-node SLURM "
                     "(root; installs slurm-wlm and munge with apt-get if missing)")


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """The running SLURM: its config file and helpers that run its client commands."""

    def __init__(self, conf: str):
        self.conf = conf
        self.env = dict(os.environ, SLURM_CONF=conf, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def run(self, *cmd, check=True, env=None, cwd=None) -> str:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                           env=env or self.env, timeout=120)
        if check and r.returncode:
            raise AssertionError(f"{' '.join(map(str, cmd))}: exit {r.returncode}\n{r.stdout}"
                                 f"\n{r.stderr}")
        return r.stdout.strip()

    def job_env(self, activate: str = "venv") -> dict:
        """Environment for sbatch: PATH without this venv's bin (a compute node would not have
        it), memphase made available by the scripts' documented parameter instead."""
        venv = sys.prefix
        path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                               if p and not p.startswith(venv))
        env = {k: v for k, v in self.env.items() if k not in ("VIRTUAL_ENV", "MEMPHASE_VENV",
                                                                "MEMPHASE_ACTIVATE")}
        env["PATH"] = path or "/usr/bin:/bin"
        if activate == "venv":
            env["MEMPHASE_VENV"] = venv
        elif activate == "activate":
            env["MEMPHASE_ACTIVATE"] = f"source '{venv}/bin/activate'"
        return env

    def state(self, job: str) -> str:
        """JobState of `job` (e.g. '12_1') from scontrol; '' once SLURM forgot it."""
        out = self.run("scontrol", "-o", "show", "job", job, check=False)
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return ""

    def field(self, job: str, name: str) -> str:
        out = self.run("scontrol", "-o", "show", "job", job, check=False)
        for word in out.split():
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
        return ""

    def wait(self, job: str, states=("COMPLETED",), timeout=180.0) -> str:
        """Wait until `job` has left PENDING/RUNNING/...; return its final state (asserting it
        is one of `states`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            st = self.state(job)
            if st and st not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED",
                                 "SUSPENDED"):
                assert st in states, f"job {job} ended {st}, expected {states}"
                return st
            time.sleep(0.3)
        raise AssertionError(f"job {job} still {self.state(job)} after {timeout:.0f} s")

    def wait_until(self, pred, what: str, timeout=120.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pred():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def slurm():
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(SKIP_NOT_OPTED_IN)
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("SLURM tests need root (tests/hpc/slurm-up.sh installs and starts "
                    "munged, slurmctld, slurmd)")
    slurm_dir = tempfile.mkdtemp(prefix="memphase-slurm-")
    ctld_port = free_port()
    slurmd_port = free_port()
    while slurmd_port == ctld_port:
        slurmd_port = free_port()
    env = dict(os.environ, MEMPHASE_SLURM_DIR=slurm_dir, MEMPHASE_SLURMCTLD_PORT=str(ctld_port),
               MEMPHASE_SLURMD_PORT=str(slurmd_port))
    try:
        r = subprocess.run(["bash", str(HERE / "slurm-up.sh")], capture_output=True, text=True,
                           env=env, timeout=480)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(HERE / "slurm-down.sh")], env=env, capture_output=True,
                       timeout=120)
        pytest.skip("tests/hpc/slurm-up.sh did not finish within 8 min")
    if r.returncode:
        reason = (r.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"SLURM cannot start here: {reason}")
    conf = f"{slurm_dir}/slurm.conf"
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # for code under test that calls squeue/sbatch itself
    try:
        yield Slurm(conf)
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        # stops only the daemons slurm-up.sh started in slurm_dir (their pid files are there)
        subprocess.run(["bash", str(HERE / "slurm-down.sh")], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(slurm_dir, ignore_errors=True)
