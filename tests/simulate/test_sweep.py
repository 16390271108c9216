"""Sweeps: crash safety (kill -9 and resume), sharding + merge, Dask backends, the lock and the
journal. Every comparison is against one uninterrupted in-process run with the same seeds."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import memphase.simulate.experiments.quickstart as quickstart
from memphase.analysis.results import ResultFileError, open_sweep
import memphase.simulate.sweep as sweep
from memphase.simulate.cli import main
from memphase.simulate.sweep import Journal, OutputLock, SweepError, load_sweep, part_path, run_sweep

SEEDS = 12  # 2 scores x 2 sizes x 12 seeds = 48 cells of ~20 ms: long enough to kill mid-sweep
CONFIG = f"""
job = "quickstart"
output = "unused.h5"
[data]
d = 4
[grid]
n_train = [3, 30]
score = ["empirical", "population"]
seeds = {list(range(SEEDS))}
[sampler]
steps = 20
n_samples = 32
record = 10
[sweep]
threads = 1
"""
N_CELLS = 2 * 2 * SEEDS


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    (d / "sweep.toml").write_text(CONFIG)
    return d


@pytest.fixture(scope="module")
def reference(sweep_dir):
    """The uninterrupted in-process run everything else must equal."""
    out = run_sweep(sweep_dir / "sweep.toml", output=sweep_dir / "ref.h5", progress=False,
                    plot=False)
    with open_sweep(out) as ds:
        yield ds.load()


def assert_same_results(path, ref):
    with open_sweep(path) as ds:
        got = ds.load()
    assert got.attrs["config"] == ref.attrs["config"]
    assert got.attrs["config_hash"] == ref.attrs["config_hash"]
    a, b = got.copy(), ref.copy()
    a.attrs, b.attrs = {}, {}
    xr.testing.assert_identical(a, b)  # values, coords and their units/long_name, bit for bit


def test_uninterrupted_run_is_lazy_self_describing_and_clean(sweep_dir, reference):
    out = sweep_dir / "ref.h5"
    with open_sweep(out) as ds:
        import dask.array

        assert isinstance(ds["memorization_ratio"].data, dask.array.Array)  # lazy
        assert ds["nearest_distance"].attrs["units"] == "1"  # CF: dimensionless
        assert ds["nearest_distance"].attrs["quantity"] == "data units"
        assert ds.attrs["Conventions"] == "CF-1.10"
        assert ds.attrs["cells"] == N_CELLS and ds.attrs["backend"] == "inprocess"
        for key in ("memphase_version", "git_commit", "host", "seeds", "cell_seconds_total"):
            assert key in ds.attrs
    assert reference["collapse_fraction"].sel(score="empirical", n_train=3).min() == 1.0
    # the journal and the lock are gone once the final file is written
    assert not (sweep_dir / "ref.h5.cells").exists() and not (sweep_dir / "ref.h5.lock").exists()


def journaled(out, cfg) -> int:
    """Cells journaled so far beside `out` (batch files read back; a file being renamed into
    place at this instant counts at the next look)."""
    try:
        return len(Journal(out, load_sweep(cfg)).done_keys())
    except Exception:
        return 0


#: run the sweep command with journal batches of BATCH cells and no time trigger, so that a kill
#: lands inside a batch (the default batches are larger than this whole test sweep)
BATCHED = ("import sys; import memphase.simulate.sweep.journal as j; j.BATCH_CELLS = {batch}; "
           "j.BATCH_SECONDS = 1e9; from memphase.simulate.cli import main; "
           "sys.exit(main(sys.argv[1:]))")


def test_kill_9_mid_batch_then_resume_recomputes_only_unjournaled_cells(sweep_dir, reference,
                                                                        monkeypatch):
    """[issue 23] Cells are journaled in batches (one fsync per batch): a SIGKILL in the middle
    of a batch loses only that batch's cells; the resumed run computes exactly the cells not in
    a written batch and gives the uninterrupted run's Dataset."""
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "killed.h5"
    journal = sweep_dir / "killed.h5.cells"
    batch = 5
    proc = subprocess.Popen([sys.executable, "-c", BATCHED.format(batch=batch), "sweep",
                             str(cfg), "-o", str(out), "-q", "--no-plot"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(journal.glob("batch-*.npz"))) < 2:
        time.sleep(0.002)
    time.sleep(0.03)  # one or two cells into the next batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = journaled(out, cfg)
    assert not out.exists() and 2 * batch <= done < N_CELLS, "sweep finished before the kill"
    assert done % batch == 0  # whole batches only: the one in flight is lost, nothing else
    assert (sweep_dir / "killed.h5.lock").exists()  # stale lock of a dead pid

    calls = []
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell", lambda cfg, cell: calls.append(cell) or real(cfg, cell))
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert len(calls) == N_CELLS - done  # only the unjournaled cells were recomputed
    assert_same_results(out, reference)
    assert not journal.exists()


def test_resume_reads_a_journal_of_one_file_per_cell(sweep_dir, reference, monkeypatch):
    """A journal written before batches (one `<key>.npz` per cell, with its meta) resumes: its
    cells are not recomputed and the result equals the uninterrupted run's."""
    from memphase.simulate.sweep.journal import _encode_result

    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "legacy_journal.h5"
    plan = load_sweep(cfg)
    j = Journal(out, plan, code=sweep.code_identity(plan.job)).open()
    old = list(zip(plan.keys, plan.cells))[:7]
    for key, cell in old:
        arrays = _encode_result(quickstart.run_cell(plan.cfg, cell))
        arrays["__meta__"] = np.asarray(json.dumps({"cell": cell, "config_hash": plan.config_hash,
                                                    "seconds": 0.01, "host": "h", "pid": 1,
                                                    "code": j.code}))
        with open(j.dir / f"{key}.npz", "wb") as fh:
            np.savez(fh, **arrays)
    calls = []
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell", lambda c, cell: calls.append(cell) or real(c, cell))
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert len(calls) == N_CELLS - len(old)
    assert_same_results(out, reference)


def test_sigterm_releases_the_lock_and_keeps_the_journal(sweep_dir):
    """SLURM time limits send SIGTERM: the run stops cleanly (exit 143 = 128 + SIGTERM, was 130
    before issue 12), the lock is released
    (a resubmitted task may land on another host) and the finished cells stay."""
    out = sweep_dir / "termed.h5"
    journal = sweep_dir / "termed.h5.cells"
    cfg = sweep_dir / "sweep.toml"
    # the 6th cell sends SIGTERM to its own run: 5 cells are finished, all pending in memory
    # (batches of 1000 cells, no time trigger)
    term = ("import os, signal; import memphase.simulate.experiments.quickstart as q; "
            "real = q.run_cell; n = [0]\n"
            "def cell(c, x):\n"
            "    n[0] += 1\n"
            "    if n[0] == 6: os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real(c, x)\n"
            "q.run_cell = cell\n")
    proc = subprocess.Popen([sys.executable, "-c", term + BATCHED.format(batch=1000), "sweep",
                             str(cfg), "-o", str(out), "-q", "--no-plot"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "rerun the same command to resume" in err
    assert err.count("\n") == 1 and "SIGTERM" in err
    # the cells of the batch pending in memory were written on the way out
    assert not (sweep_dir / "termed.h5.lock").exists() and journaled(out, cfg) == 5


def test_shards_then_merge_equal_single_run(sweep_dir, reference):
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "sharded.h5"
    for i in range(3):
        assert main(["sweep", str(cfg), "-o", str(out), "--shard", f"{i}/3", "-q"]) == 0
    assert not out.exists()
    with pytest.raises(ResultFileError, match="part file"):
        open_sweep(part_path(out, 0, 3))  # a part is not a results file
    assert main(["merge", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert_same_results(out, reference)
    assert open_sweep(out).attrs["backend"] == "shards/3"


def _write_part_layout_1(path, plan, shard, items):
    """A part file as memphase wrote it before issue 23 (layout 1: one HDF5 group per cell)."""
    import h5py

    from memphase.simulate.sweep.journal import _encode_result

    with h5py.File(path, "w") as f:
        f.attrs.update({"memphase_part": f"{shard[0]}/{shard[1]}", "config_hash":
                        plan.config_hash, "config": plan.text, "job": plan.job})
        g = f.create_group("cells")
        for key, cell, result, meta in items:
            c = g.create_group(key)
            c.attrs["cell"] = json.dumps(cell)
            c.attrs["meta"] = json.dumps(meta)
            for k, a in _encode_result(result).items():
                if a.dtype.kind == "U":
                    c.create_dataset(k, data=a.astype(object), dtype=h5py.string_dtype())
                elif a.ndim:
                    c.create_dataset(k, data=a, compression="gzip")
                else:
                    c.create_dataset(k, data=a)


def test_part_files_are_columns_and_merge_still_reads_the_old_layout(sweep_dir, reference):
    """[issue 23] A part file is a few array writes (one dataset per variable, the cells along
    the first axis, a cell index), not a group per cell; `memphase merge` assembles parts of the
    new layout together with a part of the old one (one group per cell) into the in-process
    Dataset."""
    import h5py

    from memphase.simulate.sweep.shards import read_part

    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "columns.h5"
    assert main(["sweep", str(cfg), "-o", str(out), "--shard", "0/2", "-q"]) == 0
    with h5py.File(part_path(out, 0, 2), "r") as f:
        assert f.attrs["memphase_part_layout"] == 2 and "cells" not in f
        (g,) = f["columns"].values()  # one group: every cell has the same shapes
        assert g["keys"].shape == (N_CELLS // 2,)
        assert g["nearest_distance"].shape[0] == N_CELLS // 2
    plan = load_sweep(cfg)
    assert main(["sweep", str(cfg), "-o", str(sweep_dir / "c1.h5"), "--shard", "1/2", "-q"]) == 0
    items = [(k, *v) for k, v in read_part(part_path(sweep_dir / "c1.h5", 1, 2), plan).items()]
    items = [(k, meta["cell"], res, meta) for k, res, meta in items]
    _write_part_layout_1(part_path(out, 1, 2), plan, (1, 2), items)
    with h5py.File(part_path(out, 1, 2), "r") as f:
        assert "columns" not in f and len(f["cells"]) == N_CELLS // 2
    assert main(["merge", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert_same_results(out, reference)


def test_dask_local_cluster_equals_in_process(sweep_dir, reference):
    out = run_sweep(sweep_dir / "sweep.toml", output=sweep_dir / "local.h5", backend="local",
                    workers=2, progress=False, plot=False)
    assert_same_results(out, reference)
    with open_sweep(out) as ds:
        assert ds.attrs["backend"] == "local"


def test_existing_scheduler_address(sweep_dir, reference):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        out = sweep_dir / "sched.h5"
        assert main(["sweep", str(sweep_dir / "sweep.toml"), "-o", str(out), "-q", "--no-plot",
                     "--scheduler", cluster.scheduler_address]) == 0
    assert_same_results(out, reference)


def test_failed_cells_recorded_then_retried(sweep_dir, reference, monkeypatch, capsys):
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "failing.h5"
    real = quickstart.run_cell

    def flaky(c, cell):
        if cell["seed"] == 3 and cell["score"] == "empirical":
            raise FloatingPointError("boom")
        return real(c, cell)

    monkeypatch.setattr(quickstart, "run_cell", flaky)
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert f"2 of {N_CELLS} cells failed" in err and "FloatingPointError: boom" in err
    assert not out.exists()
    j = Journal(out, load_sweep(cfg))
    assert len(j.failures()) == 2 and len(j.done_keys()) == N_CELLS - 2
    assert main(["info", str(cfg)]) == 0  # info on the config's own output is not this file
    monkeypatch.setattr(quickstart, "run_cell", real)
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert_same_results(out, reference)


def test_changed_config_refused_unless_new(sweep_dir, monkeypatch, capsys):
    cfg = sweep_dir / "changed.toml"
    cfg.write_text(CONFIG.replace(f"{list(range(SEEDS))}", "[0, 1]"))
    out = sweep_dir / "changed.h5"
    monkeypatch.setattr(quickstart, "run_cell", lambda c, cell: 1 / 0)
    assert main(["sweep", str(cfg), "-o", str(out), "-q"]) == 1  # leaves a journal
    capsys.readouterr()
    monkeypatch.undo()
    cfg.write_text(cfg.read_text().replace("steps = 20", "steps = 21"))
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and "--new" in err and err.count("\n") == 1
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot", "--new"]) == 0
    assert open_sweep(out).attrs["config"] == cfg.read_text()


def test_corrupt_journal_cell_is_recomputed(sweep_dir, reference, monkeypatch):
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "corrupt_cell.h5"
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell",
                        lambda c, cell: 1 / 0 if cell["seed"] == 0 else real(c, cell))
    assert main(["sweep", str(cfg), "-o", str(out), "-q"]) == 1
    cell = sorted((sweep_dir / "corrupt_cell.h5.cells").glob("*.npz"))[0]
    cell.write_bytes(cell.read_bytes()[:50])  # truncated under its final name
    monkeypatch.setattr(quickstart, "run_cell", real)
    assert main(["sweep", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    assert_same_results(out, reference)


def test_lock_refuses_a_live_writer_and_takes_over_a_dead_one(sweep_dir, capsys):
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "locked.h5"
    with OutputLock(out):  # held by this (live) process
        assert main(["sweep", str(cfg), "-o", str(out), "-q"]) == 2
        assert "being written by another run" in capsys.readouterr().err
        with pytest.raises(SweepError, match="locked.h5.lock"):
            OutputLock(out).acquire()
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = sweep_dir / "locked.h5.lock"
    lock.write_text(f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}"}}')
    with OutputLock(out) as held:
        assert held.held and str(os.getpid()) in lock.read_text()
    assert not lock.exists()


def test_merge_errors_name_the_file(sweep_dir, capsys):
    cfg, out = sweep_dir / "sweep.toml", sweep_dir / "parts.h5"
    assert main(["merge", str(cfg), "-o", str(out), "-q"]) == 2
    assert "no part files" in capsys.readouterr().err
    assert main(["sweep", str(cfg), "-o", str(out), "--shard", "0/2", "-q"]) == 0
    assert main(["merge", str(cfg), "-o", str(out), "-q"]) == 2
    assert "missing part files for shards [1] of 2" in capsys.readouterr().err
    p0 = part_path(out, 0, 2)
    good = p0.read_bytes()
    part_path(out, 1, 2).write_bytes(good[: len(good) // 2])  # truncated
    assert main(["merge", str(cfg), "-o", str(out), "-q"]) == 2
    assert "parts.part-1-of-2.h5 is not a readable HDF5 file" in capsys.readouterr().err
    import h5py

    with h5py.File(part_path(out, 1, 2), "w") as f:  # foreign HDF5
        f["x"] = np.arange(3)
    assert main(["merge", str(cfg), "-o", str(out), "-q"]) == 2
    assert "parts.part-1-of-2.h5 is not a memphase sweep part file" in capsys.readouterr().err


def test_truncated_final_file_is_named_on_rerun(sweep_dir, capsys):
    ref = (sweep_dir / "ref.h5").read_bytes()
    out = sweep_dir / "trunc.h5"
    out.write_bytes(ref[: len(ref) // 3])
    assert main(["sweep", str(sweep_dir / "sweep.toml"), "-o", str(out), "-q"]) == 2
    assert "trunc.h5 is not a readable HDF5 file" in capsys.readouterr().err


def test_dask_batches_cells_bounds_futures_and_sends_the_config_once(sweep_dir, reference):
    """[issue 23] `_iter_dask` submitted every cell as its own future with the config pickled
    into each: now cells go in batches, at most `max_in_flight` batches are submitted at a time,
    and the config is scattered once; every cell comes back, with the in-process results."""
    from distributed import Client, LocalCluster

    from memphase.simulate.sweep import backends

    plan = load_sweep(sweep_dir / "sweep.toml")
    todo = list(zip(plan.keys, plan.cells))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        submitted, scattered = [], []
        real_submit, real_scatter = client.submit, client.scatter

        def submit(fn, job, cfg, cells, threads, **kw):
            assert fn is backends.compute_cells and not isinstance(cfg, dict)  # a future
            submitted.append(len(cells))
            return real_submit(fn, job, cfg, cells, threads, **kw)

        def scatter(data, **kw):
            scattered.append(data)
            return real_scatter(data, **kw)

        client.submit, client.scatter = submit, scatter
        seen, most_ahead = [], 0
        for key, cell, out in backends._iter_dask(client, plan, todo, batch=5, max_in_flight=3):
            assert out[0] == "ok"
            seen.append(key)
            most_ahead = max(most_ahead, len(submitted) * 5 - len(seen))
    assert sorted(seen) == sorted(plan.keys)                 # every cell once
    assert scattered == [[plan.cfg]]                          # the config sent once
    assert submitted == [5] * (N_CELLS // 5) + ([N_CELLS % 5] if N_CELLS % 5 else [])
    # at most 3 batches out, plus the finished one whose cells are being handed over
    assert most_ahead < (3 + 1) * 5
    assert backends.batch_size(plan, todo) > 1                # tiny cells are batched


def test_estimates_are_computed_once_per_cell_up_to_the_seed(sweep_dir):
    """[issue 23] The memory check, the --yes check and the estimate line pass over every cell
    (10^6 in one config now): estimates are cached per cell parameters with the seed reduced
    to 'first seed of the grid or not', so 48 cells of 12 seeds cost 2 x 2 x 2 estimates."""
    from memphase.simulate.sweep.plan import check_memory, estimate_cell

    plan = load_sweep(sweep_dir / "sweep.toml")
    check_memory(plan, plan.cells, "inprocess")
    assert len(plan.estimates) == 2 * 2 * 2
    from memphase.simulate.sweep.plan import cell_estimates

    for c, e in zip(plan.cells, cell_estimates(plan, plan.cells)):
        assert e == estimate_cell(plan.exp, plan.cfg, c)


def test_in_flight_bound_reads_slurm_cores_only_on_slurm(sweep_dir):
    """[issue 23] The Dask in-flight bound counted [sweep.slurm] cores for every backend: a
    local cluster of 2 workers with cores = 64 in the config kept 512 batches in flight."""
    from memphase.simulate.sweep.backends import _worker_slots

    plan = load_sweep(sweep_dir / "sweep.toml")
    plan.opts["workers"] = 2
    plan.opts["slurm"]["cores"] = 64
    assert _worker_slots(plan, None, "local") == 2
    assert _worker_slots(plan, None, "slurm") == 2 * 64
    plan.opts["slurm"]["processes"] = 4
    assert _worker_slots(plan, None, "slurm") == 2 * 4


def test_dry_run_prints_the_slurm_memory_request_and_a_task_with_it_passes(sweep_dir, capsys):
    """[issue 23] The array scripts asked a fixed --mem=4G; submit_array.sh now asks what
    `--dry-run` prints, derived from the largest cell estimate: a task allocated exactly that
    passes the memory check (which reads the allocation), one allocated 100 MiB less than the
    cell's need is refused."""
    import re

    from memphase.simulate.config import ConfigError
    from memphase.simulate.sweep import plan as plan_mod

    assert main(["sweep", str(sweep_dir / "sweep.toml"), "--dry-run"]) == 0
    m = re.search(r"^slurm memory per task: --mem=(\d+)M ", capsys.readouterr().out, re.M)
    assert m
    plan = load_sweep(sweep_dir / "sweep.toml")
    assert plan_mod.slurm_mem_request(plan) == f"{m[1]}M"
    limit = int(m[1]) * 2**20
    plan_mod.check_memory(plan, plan.cells, "inprocess", limit=limit)
    need = max(e["memory_bytes"] for e in plan_mod.cell_estimates(plan, plan.cells))
    with pytest.raises(ConfigError, match="needs about"):
        plan_mod.check_memory(plan, plan.cells, "inprocess",
                              limit=need + plan_mod.PROCESS_OVERHEAD - 100 * 2**20)


def test_fill_grid_places_cells_like_list_index():
    """[issue 23] fill_grid looks cells up through a dict per axis (list.index per cell made a
    10^5-cell assembly quadratic); the placement is list.index's, also for 2 == 2.0 and for an
    unhashable axis value."""
    from memphase.simulate.experiments.common import fill_grid

    values = {"a": [3, 2.0, 7], "b": [[1], [2]]}
    pairs = [({"a": a, "b": b}, {"x": 10 * i + j}) for i, a in enumerate([3, 2, 7])
             for j, b in enumerate([[1], [2]])]
    got = fill_grid(pairs, ("a", "b"), values, ("x",))["x"]
    np.testing.assert_array_equal(got, [[0, 1], [10, 11], [20, 21]])
