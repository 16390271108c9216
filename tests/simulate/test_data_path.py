"""The data-path defects of issue 23 (part 1) and issue 26 (items 1-3, 6, 8) that need no SLURM:
part files of many cells, the lock without flock, never deleting or truncating what a run did not
create, the job's memory allocation, and [sweep.slurm] values validated by what they are.
The example scripts are tested in test_slurm_scripts.py."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

import memphase.simulate.run.files as files
from memphase.simulate.cli import main
from memphase.simulate.run.files import OutputLock, SweepError, atomic_write
from memphase.simulate.sweep import load_sweep, part_path, read_part
from memphase.simulate.sweep.shards import _write_part
from cli_checks import one_line_error, quickstart_template


def tiny_cfg(tmp_path, seeds="[0]", name="c.toml", out="out.h5"):
    text = quickstart_template(seeds=seeds, steps=2, n_samples=1, record=2)
    text = text.replace("d = 4", "d = 1").replace("n_train = [3, 30]", "n_train = [2, 3]")
    p = tmp_path / name
    p.write_text(text.format(out=tmp_path / out))
    return p


# ----------------------------------------------------------------------------- part files


def _fake_items(plan, n):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        res = {"memorization_ratio": float(rng.random()), "collapse_fraction": 0.5,
               "collapse_time_measured": 0.1, "collapse_time_spread": 0.2,
               "nearest_distance": rng.random(3), "same_as_final": rng.random(3),
               "time": np.linspace(0, 1, 3), "tau": np.linspace(1, 2, 3)}
        meta = {"seconds": 0.01, "host": "h" * 30, "pid": 12345,
                "code": {"memphase_version": "0.0", "git_commit": "c" * 40, "source_hash": "s" * 16}}
        key = f"{int(rng.integers(2**62)):016x}"  # hash-like keys: B-tree splits, read-back
        items.append((key, {"n_train": 2, "score": "population", "seed": i}, res, meta))
    return items


def test_part_file_of_many_cells_is_written_and_read_back(tmp_path):
    """Issue 23: `_write_part` handed h5py a write-only file object; once the metadata of the
    groups outgrew libhdf5's cache it read back and failed ('error: read'). 600 cell groups of
    the quickstart's shape with hash-like (unordered) names force that read-back."""
    plan = load_sweep(tiny_cfg(tmp_path))
    items = _fake_items(plan, 600)
    p = tmp_path / "p.part-0-of-1.h5"
    _write_part(p, plan, (0, 1), items)
    back = read_part(p, plan)
    assert len(back) == 600
    res, meta = back[items[377][0]]
    np.testing.assert_array_equal(res["nearest_distance"], items[377][2]["nearest_distance"])
    assert meta == items[377][3]


def test_atomic_write_file_object_is_readable(tmp_path):
    """The file object atomic_write hands over can be read back (what libhdf5 does)."""
    def write(fh):
        fh.write(b"abcdef")
        fh.seek(2)
        assert fh.read(2) == b"cd"
    atomic_write(tmp_path / "x", write)
    assert (tmp_path / "x").read_bytes() == b"abcdef"


@pytest.mark.slow
def test_reproducer_1000_cells_on_one_shard(tmp_path):
    """Issue 23's reproducer (d = 1, n_train [2, 3], two scores, seeds 0..249: 1000 cells),
    all on one shard (--shard 0/1: a part file of 1000 cell groups; 400 failed before), then
    merged (about 40 s on one core)."""
    cfg = tiny_cfg(tmp_path, seeds="[" + ", ".join(map(str, range(250))) + "]")
    assert main(["sweep", str(cfg), "--shard", "0/1", "-q"]) == 0
    assert len(read_part(part_path(tmp_path / "out.h5", 0, 1))) == 1000
    assert main(["merge", str(cfg), "-q", "--no-plot"]) == 0


# ----------------------------------------------------------------------------- the lock without flock


@pytest.fixture
def no_flock(monkeypatch):
    """flock(2) fails as on Lustre mounted without flock (ENOSYS)."""
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")
    monkeypatch.setattr(fcntl, "flock", flock)


def test_lock_without_flock_is_taken_by_the_first_run(tmp_path, no_flock):
    """Issue 23: any flock error but EWOULDBLOCK made even the first and only run refuse and
    left an empty lock file. Without flock: exclusive creation, the record, release removes it."""
    lock = OutputLock(tmp_path / "o.h5")
    lock.acquire()
    assert lock.held and lock.record()["pid"] == os.getpid()
    with pytest.raises(SweepError, match=f"pid {os.getpid()}"):  # a live holder: refused
        OutputLock(tmp_path / "o.h5").acquire()
    assert lock.record()["pid"] == os.getpid()  # the refusal changed nothing
    lock.release()
    assert not lock.path.exists()


def test_lock_without_flock_takes_over_a_dead_run(tmp_path, no_flock):
    import subprocess
    import socket

    p = subprocess.Popen(["true"])
    p.wait()
    path = tmp_path / "o.h5.lock"
    path.write_text(json.dumps({"pid": p.pid, "host": socket.gethostname(), "started": "x"}))
    with OutputLock(tmp_path / "o.h5") as lock:
        assert lock.record()["pid"] == os.getpid()
    assert not path.exists()


def test_sweep_runs_without_flock(tmp_path, no_flock):
    cfg = tiny_cfg(tmp_path)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert (tmp_path / "out.h5").exists() and not (tmp_path / "out.h5.lock").exists()


# ----------------------------------------------------------------------------- never delete what the run did not create


@pytest.mark.parametrize("flock", ["flock", "no_flock"])
def test_a_users_lock_named_file_is_refused_and_kept(tmp_path, capsys, request, flock):
    """Issue 26 item 1: `echo notes > out.h5.lock` was truncated and deleted by a run."""
    if flock == "no_flock":
        request.getfixturevalue("no_flock")
    cfg = tiny_cfg(tmp_path)
    (tmp_path / "out.h5.lock").write_text("notes\n")
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 2
    one_line_error(capsys, "out.h5.lock exists and is not a memphase lock file")
    assert (tmp_path / "out.h5.lock").read_text() == "notes\n"
    assert not (tmp_path / "out.h5").exists()


def test_a_users_cells_folder_is_refused_and_kept(tmp_path, capsys):
    """Issue 26 item 1: `mkdir out.h5.cells; echo data > out.h5.cells/keep.txt` was rmtree'd."""
    cfg = tiny_cfg(tmp_path)
    (tmp_path / "out.h5.cells").mkdir()
    (tmp_path / "out.h5.cells" / "keep.txt").write_text("data\n")
    for args in (["run", str(cfg), "-q", "--no-plot"], ["run", str(cfg), "-q", "--new"]):
        assert main(args) == 2
        one_line_error(capsys, "out.h5.cells holds files but no manifest.json")
        assert (tmp_path / "out.h5.cells" / "keep.txt").read_text() == "data\n"
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.h5.lock").exists()


def test_a_users_file_put_into_a_journal_is_kept(tmp_path, capsys):
    """The journal's removal deletes only what memphase wrote, and says what it kept."""
    import memphase.simulate.experiments.quickstart as quickstart

    cfg = tiny_cfg(tmp_path, seeds="[0, 1]")
    real = quickstart.run_cell
    try:
        quickstart.run_cell = lambda c, cell: 1 / 0 if cell["seed"] == 1 else real(c, cell)
        assert main(["run", str(cfg), "-q", "--no-plot"]) != 0  # leaves a journal
    finally:
        quickstart.run_cell = real
    journal = tmp_path / "out.h5.cells"
    assert (journal / "manifest.json").exists()
    (journal / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert (journal / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in journal.iterdir()) == ["notes.txt"]
    assert "kept" in capsys.readouterr().err


def test_an_empty_cells_folder_is_used(tmp_path):
    """A folder created by a run killed before its manifest (empty) is not refused."""
    cfg = tiny_cfg(tmp_path)
    (tmp_path / "out.h5.cells").mkdir()
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert not (tmp_path / "out.h5.cells").exists()


# ----------------------------------------------------------------------------- [sweep.slurm] by kind

from memphase.simulate.run.config import ConfigError  # noqa: E402

SLURM_BASE = quickstart_template(seeds="[0]", steps=2, n_samples=1, record=2,
                                 sweep='backend = "slurm"\n{extra}')


def slurm_cfg(tmp_path, extra):
    p = tmp_path / "s.toml"
    p.write_text(SLURM_BASE.format(out=tmp_path / "out.h5", extra=extra))
    return p


#: issue 26 item 3 and issue 23: values that smuggled options through spaces (all accepted before)
SMUGGLED = [
    ('[sweep.slurm]\njob_name = "w --export=ALL,LD_PRELOAD=./evil.so"', "job_name"),
    ('[sweep.slurm]\nqueue = "p --export=ALL,BASH_ENV=./evil.sh"', "queue"),
    ('[sweep.slurm]\nqueue = "p --output=$HOME/.bashrc"', "queue"),
    ('[sweep.slurm]\naccount = "a --chdir=/"', "account"),
    ('[sweep.slurm]\ninterface = "lo --preload ./evil.py"', "interface"),
    ('[sweep.slurm]\npython = "/bin/sh -c id"', "python"),
    ('[sweep.slurm]\nwalltime = "1:00:00 --uid=0"', "walltime"),
    ('[sweep.slurm]\nmemory = "8GB --x"', "memory"),
    ('[sweep.slurm]\njob_mem = "4G --wrap=id"', "job_mem"),
    ('[sweep.slurm]\nlog_directory = "/tmp/l --export=ALL"', "log_directory"),
    ('[sweep.slurm]\nlocal_directory = "--preload=x"', "local_directory"),
    ('[sweep.slurm]\nprotocol = "tcp:// --preload x"', "protocol"),
    ('[sweep.slurm]\njob_extra_directives = ["--qos=low --export=ALL"]', "job_extra_directives"),
    ('[sweep.slurm]\nworker_extra_args = ["--preload ./evil.py"]', "worker_extra_args"),
    ('[sweep.slurm]\nshebang = "#!/bin/sh -c id"', "shebang"),
    ('[sweep.slurm]\njob_name = "--export=ALL"', "job_name"),
    ('scheduler = "tcp://h:1 --preload x"', "scheduler"),
    ('scheduler = "$(id)"', "scheduler"),
]


@pytest.mark.parametrize("line,key", SMUGGLED, ids=[k for _, k in SMUGGLED])
def test_slurm_values_that_smuggle_options_are_refused(tmp_path, line, key):
    with pytest.raises(ConfigError, match=key) as e:
        load_sweep(slurm_cfg(tmp_path, line))
    assert "\n" not in str(e.value)


REAL = [
    'shebang = "#!/usr/bin/env bash"', 'shebang = "#!/bin/bash -l"',
    'job_extra_directives = ["--exclude=node[01-04]", "--nodelist=n[1,3]", "-C", "--exclusive"]',
    'walltime = "2-12:00:00"', 'walltime = "90"', 'memory = "16GiB"', 'memory = "8GB"',
    'job_mem = "9G"', 'queue = "short,long"', 'python = "/opt/conda/envs/m-1.0/bin/python3"',
    'protocol = "tls://"', 'interface = "ib0"', 'account = "proj_x-1"',
]


@pytest.mark.parametrize("line", REAL)
def test_real_slurm_values_are_accepted(tmp_path, line):
    """Issue 23: real shebang values and bracketed node lists were refused."""
    load_sweep(slurm_cfg(tmp_path, "[sweep.slurm]\n" + line))


def test_scheduler_address_is_validated(tmp_path):
    for ok in ("tcp://node12:8786", "node12:8786", "tcp://10.0.0.1:8786", "tcp://[::1]:8786",
               "inproc://10.0.0.1/1234/1"):
        load_sweep(slurm_cfg(tmp_path, f'scheduler = "{ok}"'))
    with pytest.raises(ConfigError, match="--scheduler"):
        from memphase.simulate.sweep import run_sweep
        run_sweep(tiny_cfg(tmp_path), scheduler="tcp://h:1 --preload x", progress=False)


# ----------------------------------------------------------------------------- memory of the job


def big_cell_cfg(tmp_path):
    """One quickstart cell estimated at about 6 GiB (d = 256, N = 3000, 400000 samples)."""
    text = quickstart_template(seeds="[0]", steps=10, n_samples=400000, record=5)
    text = text.replace("n_train = [3, 30]", "n_train = [3000]").replace("d = 4", "d = 256")
    text = text.replace('score = ["empirical", "population"]', 'score = ["empirical"]')
    p = tmp_path / "big.toml"
    p.write_text(text.format(out=tmp_path / "big.h5"))
    return p


def test_memory_check_reads_the_slurm_allocation(tmp_path, monkeypatch):
    """Issue 23: inside a job with SLURM_MEM_PER_NODE=4096 a cell estimated above 4 GiB passed
    (the node's MemAvailable was read). Refused now before anything runs, naming --mem."""
    from memphase.simulate.sweep import check_memory, estimate_cell
    from memphase.simulate.sweep.plan import PROCESS_OVERHEAD, slurm_allocation

    plan = load_sweep(big_cell_cfg(tmp_path))
    need = estimate_cell(plan.exp, plan.cfg, plan.cells[0])["memory_bytes"] + PROCESS_OVERHEAD
    assert 4096 * 2**20 < need < 16 * 2**30
    for k in ("SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_CPUS_ON_NODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "4096")
    assert slurm_allocation() == 4096 * 2**20
    with pytest.raises(ConfigError, match=r"SLURM job \(--mem\).*4\.0 GiB"):
        check_memory(plan, plan.cells, "inprocess")
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "1024")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "3")
    assert slurm_allocation() == 3 * 2**30
    with pytest.raises(ConfigError, match="SLURM job"):
        check_memory(plan, plan.cells, "inprocess")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "0")  # 0: no memory limit of the job
    assert slurm_allocation() is None


def test_slurm_memory_sizes_are_read_as_dask_reads_them():
    """Issue 23: '8GB' was read as 8 GiB here but as 8e9 bytes by dask(-jobqueue)."""
    from dask.utils import parse_bytes

    from memphase.simulate.sweep.plan import _parse_bytes

    for text in ("8GB", "8GiB", "512MB", "512MiB", "2G", "1.5GB", "100", "3kB", "2TiB", "7M"):
        assert _parse_bytes(text) == parse_bytes(text), text


def test_slurm_memory_per_worker_decides_in_decimal_units(tmp_path):
    """A cell that fits x GiB but not x GB: refused with memory = 'xGB', accepted with 'xGiB'."""
    from memphase.simulate.sweep import check_memory, estimate_cell
    from memphase.simulate.sweep.plan import PROCESS_OVERHEAD

    plan = load_sweep(big_cell_cfg(tmp_path))
    need = estimate_cell(plan.exp, plan.cfg, plan.cells[0])["memory_bytes"] + PROCESS_OVERHEAD
    x = need / (0.5 * (1e9 + 2**30))  # x GB < need < x GiB
    plan.opts["slurm"]["memory"] = f"{x:.3f}GB"
    with pytest.raises(ConfigError, match="memory per worker"):
        check_memory(plan, plan.cells, "slurm")
    plan.opts["slurm"]["memory"] = f"{x:.3f}GiB"
    check_memory(plan, plan.cells, "slurm")


# ----------------------------------------------------------------------------- FIFOs, deep paths


@pytest.fixture
def alarm():
    """Fail (instead of hanging) a call that blocks more than 30 s."""
    import signal

    def boom(*_):
        raise TimeoutError("blocked for 30 s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_fifo_named_like_a_results_file_is_refused(tmp_path, capsys, alarm):
    """Issue 26 item 6: `info`, `plot`, `merge -o` and `run -o` blocked until killed on a FIFO."""
    cfg = tiny_cfg(tmp_path)
    fifo = tmp_path / "f.h5"
    os.mkfifo(fifo)
    for args in (["info", str(fifo)], ["plot", str(fifo)],
                 ["run", str(cfg), "-o", str(fifo), "-q"],
                 ["merge", str(cfg), "-o", str(fifo), "-q"]):
        assert main(args) == 2, args
        one_line_error(capsys, "is not a regular file")
    assert fifo.exists() and not (tmp_path / "f.h5.lock").exists()


def test_a_fifo_at_the_lock_path_is_refused(tmp_path, alarm):
    os.mkfifo(tmp_path / "o.h5.lock")
    with pytest.raises(SweepError, match="not a regular file"):
        OutputLock(tmp_path / "o.h5").acquire()


def _remove_chain(root: Path):
    """Remove a chain of nested folders iteratively (pytest's recursive cleanup of its tmp dirs
    would hit RecursionError at 1000 levels). Each level holds files and at most one folder."""
    chain = [root]
    while True:
        subs = [p for p in chain[-1].iterdir() if p.is_dir() and not p.is_symlink()]
        if not subs:
            break
        chain.append(subs[0])
    for d in reversed(chain):
        for p in d.iterdir():
            if not p.is_dir() or p.is_symlink():
                p.unlink()
        d.rmdir()


def test_deep_output_path(tmp_path, capsys):
    """Issue 26 item 8: 1000 nested folders (under PATH_MAX) raised RecursionError in
    Path.mkdir(parents=True) (a traceback, rc 1). The run now writes there."""
    deep = tmp_path.joinpath(*["d"] * 1000)
    assert len(str(deep)) < os.pathconf("/", "PC_PATH_MAX") - 100
    cfg = tiny_cfg(tmp_path)
    try:
        assert main(["run", str(cfg), "-o", str(deep / "out.h5"), "-q", "--no-plot"]) == 0
        assert (deep / "out.h5").is_file()
        assert "Traceback" not in capsys.readouterr().err
    finally:
        if (tmp_path / "d").exists():
            _remove_chain(tmp_path / "d")


def test_make_dirs_is_iterative(tmp_path):
    import sys

    deep = tmp_path.joinpath(*["e"] * (sys.getrecursionlimit() + 50))
    try:
        files.make_dirs(deep)
        assert deep.is_dir()
        files.make_dirs(deep)  # exists: nothing to do
    finally:
        _remove_chain(tmp_path / "e")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError):
        files.make_dirs(tmp_path / "f" / "g")
