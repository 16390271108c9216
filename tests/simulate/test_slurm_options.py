"""The fixes of issue 15 that need no running SLURM: the shard count given once (argument,
MEMPHASE_SHARDS or [sweep] shards), [sweep.slurm] as a validated whitelist of dask-jobqueue
keywords, lock records with the SLURM job and their takeover, and the example scripts'
activation parameter. tests/hpc/test_slurm.py runs the same paths against a real SLURM."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import memphase.simulate.run.files as files
from memphase.simulate.run.config import ConfigError
from memphase.simulate.run.files import OutputLock, SweepError, slurm_job_id
from memphase.simulate.run.slurm_options import SLURM_KEYWORDS, cluster_kwargs
from memphase.simulate.sweep import load_sweep, make_slurm_cluster, parse_shard
from cli_checks import quickstart_template

REPO = Path(__file__).resolve().parents[2]

BASE = quickstart_template(seeds="[0]", steps=20, n_samples=32, record=10,
                          sweep='backend = "slurm"\n{extra}')


def cfg(tmp_path, extra=""):
    p = tmp_path / "c.toml"
    p.write_text(BASE.format(out=tmp_path / "out.h5", extra=extra))
    return p


# ----------------------------------------------------------------------------- shard count


def test_shard_count_is_given_once(monkeypatch):
    monkeypatch.delenv("MEMPHASE_SHARDS", raising=False)
    assert parse_shard("3/8") == (3, 8)
    assert parse_shard("3", shards=8) == (3, 8)  # [sweep] shards
    monkeypatch.setenv("MEMPHASE_SHARDS", "8")
    assert parse_shard("3") == (3, 8)  # a resubmitted --array=3,5 is still shard 3 of 8
    with pytest.raises(SweepError, match="disagrees with the config's"):
        parse_shard("3/2", shards=8)
    with pytest.raises(SweepError, match=r"0 <= I < N \(N = 8\)"):
        parse_shard("8")
    monkeypatch.setenv("MEMPHASE_SHARDS", "x")
    with pytest.raises(SweepError, match="MEMPHASE_SHARDS='x'"):
        parse_shard("3")


def test_shards_key_of_the_config(tmp_path):
    assert load_sweep(cfg(tmp_path, "shards = 4")).opts["shards"] == 4
    with pytest.raises(ConfigError, match="shards"):
        load_sweep(cfg(tmp_path, "shards = -1"))


# ----------------------------------------------------------------------------- [sweep.slurm]


def test_every_documented_keyword_reaches_the_job_script(tmp_path):
    extra = f"""[sweep.slurm]
queue = "short"
account = "phys"
walltime = "00:30:00"
cores = 4
processes = 2
memory = "8GB"
job_cpu = 4
job_mem = "9G"
job_name = "mp-worker"
job_extra_directives = ["--constraint=cpu"]
job_extra = ["--qos=low"]
job_directives_skip = ["--mem"]
job_script_prologue = ["source '/opt/env/bin/activate' && module load gcc", "export A=$HOME"]
interface = "lo"
local_directory = "{tmp_path}/scratch"
log_directory = "{tmp_path}/logs"
python = "{sys.executable}"
worker_extra_args = ["--lifetime", "55m"]
death_timeout = 30
nanny = true
"""
    plan = load_sweep(cfg(tmp_path, extra))
    kw = cluster_kwargs(plan.opts["slurm"], "1GB")
    assert kw["job_extra_directives"] == ["--constraint=cpu", "--qos=low"]
    assert kw["processes"] == 2 and kw["memory"] == "8GB" and kw["interface"] == "lo"
    cluster = make_slurm_cluster(plan)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for text in ("#SBATCH -p short", "#SBATCH -A phys", "#SBATCH -t 00:30:00",
                 "#SBATCH -J mp-worker", "#SBATCH --cpus-per-task=4", "#SBATCH --constraint=cpu",
                 "#SBATCH --qos=low", "source '/opt/env/bin/activate' && module load gcc",
                 "export A=$HOME", "--interface lo", f"--local-directory {tmp_path}/scratch",
                 sys.executable, "--lifetime 55m", "--death-timeout 30", "--nworkers 2"):
        assert text in script, (text, script)
    assert "#SBATCH --mem" not in script  # job_directives_skip


def test_unknown_slurm_keyword_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="scheduler_options"):
        load_sweep(cfg(tmp_path, '[sweep.slurm]\nscheduler_options = "x"'))


BAD = {"queue": '"short\\nhostname"', "account": '"phys; rm -rf ~"',
       "walltime": '"01:00:00 && id"', "memory": '"8GB`id`"', "job_mem": '"1G|x"',
       "job_name": '"a>b"', "job_extra_directives": '["--comment=$(id)"]',
       "job_extra": '["--qos=low\\n#SBATCH --wrap=id"]', "job_directives_skip": '["a\'b"]',
       "interface": '"ib0|id"', "local_directory": '"/scratch/$USER"',
       "log_directory": '"/x\\ty"', "python": '"/usr/bin/python3 > /tmp/x"',
       "shebang": '"#!/bin/sh\\nid"', "worker_extra_args": '["w&id"]', "protocol": '"tcp://*"',
       "job_script_prologue": '["module load python\\nid"]'}


def test_the_injection_cases_cover_every_string_keyword():
    from memphase.simulate.run.slurm_options import SLURM_SCHEMA

    strings = {k for k, f in SLURM_SCHEMA.items() if f.kind in ("str", "list[str]")}
    assert strings == set(BAD)
    assert set(SLURM_KEYWORDS) >= strings


@pytest.mark.parametrize("key", sorted(BAD))
def test_newline_or_metacharacter_in_any_slurm_string_is_refused_at_load(tmp_path, key):
    with pytest.raises(ConfigError, match=f"sweep.slurm.{key}'.*(contains|newline|must be|is not)") as e:
        load_sweep(cfg(tmp_path, f"[sweep.slurm]\n{key} = {BAD[key]}"))
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- locks


def test_slurm_job_id_of_an_array_task_and_of_a_plain_job():
    assert slurm_job_id({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3",
                         "SLURM_JOB_ID": "9"}) == "7_3"
    assert slurm_job_id({"SLURM_JOB_ID": "9"}) == "9"
    assert slurm_job_id({}) is None


def test_lock_records_the_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    with OutputLock(tmp_path / "x.h5") as lock:
        rec = lock.record()
    assert rec["slurm_job"] == "41_2" and rec["pid"] == os.getpid()
    assert rec["host"] == socket.gethostname()


def _foreign(tmp_path, job):
    lock = OutputLock(tmp_path / "x.h5")
    lock.path.write_text(json.dumps({"pid": 12345, "host": "node-elsewhere",
                                     "started": "2026-01-01T00:00:00+00:00", "slurm_job": job}))
    return lock


def test_lock_of_another_node_with_a_running_job_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "slurm_job_running", lambda job: True)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    with pytest.raises(SweepError, match="pid 12345 on node-elsewhere, SLURM job 77_1"):
        _foreign(tmp_path, "77_1").acquire()


@pytest.mark.parametrize("running", [False, None])
def test_lock_of_another_node_whose_job_ended_is_taken_over(tmp_path, monkeypatch, running):
    """False: squeue says the job ended -> taken over; None: SLURM unreachable -> refused."""
    monkeypatch.setattr(files, "slurm_job_running", lambda job: running)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    lock = _foreign(tmp_path, "77_1")
    if running is None:
        with pytest.raises(SweepError, match="node-elsewhere"):
            lock.acquire()
        return
    with lock:
        assert lock.record()["host"] == socket.gethostname()


def test_requeued_job_takes_over_its_own_earlier_lock(tmp_path, monkeypatch):
    """A requeued job has the same id (maybe on another node): its earlier run is dead."""
    monkeypatch.setattr(files, "slurm_job_running", lambda job: True)  # it is: this very job
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    with _foreign(tmp_path, "77_1") as lock:
        assert lock.record()["pid"] == os.getpid()


def test_held_flock_on_another_node_with_ended_job_is_taken_over(tmp_path, monkeypatch):
    """A network file system may still show a dead node's flock: the lock file is replaced."""
    import fcntl

    monkeypatch.setattr(files, "slurm_job_running", lambda job: False)
    lock = _foreign(tmp_path, "77_1")
    fd = os.open(lock.path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # "the other node" still holds it
    try:
        with lock:
            assert lock.record()["host"] == socket.gethostname()
    finally:
        os.close(fd)


def test_held_flock_on_this_host_is_never_taken_over(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(files, "slurm_job_running", lambda job: False)
    lock = OutputLock(tmp_path / "x.h5")
    lock.path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "slurm_job": "5"}))
    fd = os.open(lock.path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(SweepError, match="SLURM job 5"):
            lock.acquire()
    finally:
        os.close(fd)


def test_slurm_job_running_without_slurm_is_unknown(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert files.slurm_job_running("123") is None
    assert files.slurm_job_running("1; id") is None  # not a job id: never passed to a command


# ----------------------------------------------------------------------------- the scripts


def _fake_memphase(tmp_path):
    """A venv-like folder whose bin/activate puts a `memphase` stub on PATH that prints argv."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stub = venv / "bin" / "memphase"
    stub.write_text('#!/bin/sh\necho "memphase $*"\n')
    stub.chmod(0o755)
    (venv / "bin" / "activate").write_text(f'PATH="{venv}/bin:$PATH"\n')
    return venv


@pytest.mark.parametrize("how", ["venv", "activate", "none"])
def test_array_script_activation_and_shard_count(tmp_path, how):
    venv = _fake_memphase(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "2",
           "HOME": str(tmp_path)}
    if how == "venv":
        env["MEMPHASE_VENV"] = str(venv)
    elif how == "activate":
        env["MEMPHASE_ACTIVATE"] = f". '{venv}/bin/activate'"
    script = REPO / "examples" / "slurm" / "sweep_array.sbatch"
    r = subprocess.run(["sh", str(script), "c.toml", "8"], env=env, capture_output=True,
                       text=True)
    if how == "none":
        assert r.returncode == 2 and "memphase is not on PATH" in r.stderr, r.stderr
        return
    assert r.returncode == 0, r.stderr
    assert "sweep c.toml --shard 3/8 " in r.stdout  # N from the argument, not the array size
    env["MEMPHASE_SHARDS"] = "8"
    r = subprocess.run(["sh", str(script), "c.toml"], env=env, capture_output=True, text=True)
    assert "--shard 3/8 " in r.stdout, r.stdout
    del env["MEMPHASE_SHARDS"]
    r = subprocess.run(["sh", str(script), "c.toml"], env=env, capture_output=True, text=True)
    assert "--shard 3 " in r.stdout, r.stdout  # N from the config's [sweep] shards


@pytest.mark.parametrize("name", ["sweep_array.sbatch", "submit_array.sh", "dask_slurm.sbatch",
                                  "merge.sbatch"])
def test_example_scripts_parse(name):
    r = subprocess.run(["bash", "-n", str(REPO / "examples" / "slurm" / name)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
