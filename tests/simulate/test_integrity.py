"""Integrity of a sweep's output (issue 12 part B): no resume mixes code versions silently, the
output lock is taken over atomically, a full disk is refused or reported in one line, and
temporaries of killed writers are removed."""

import errno
import inspect
import json
import multiprocessing as mp
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import memphase.analysis.memorization as memorization_observables
import memphase.physics.critical as critical
import memphase.simulate.experiments.quickstart as quickstart
import memphase.simulate.sampling as sampling
import memphase.simulate.run.store as store
import memphase.simulate.run.files as files
import memphase.simulate.sweep as sweep
from memphase.analysis.results import open_results
from memphase.simulate.cli import main
from memphase.simulate.sweep import Journal, OutputLock, SweepError, code_identity, load_sweep
from cli_checks import one_line_error as _one_line
from cli_checks import quickstart_template

CONFIG = quickstart_template()
N_CELLS = 8


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "job.toml"
    p.write_text(CONFIG.format(out=tmp_path / "res.h5"))
    return p


def _fail_half(monkeypatch):
    """Cells of seed 1 fail: the run leaves a journal of 4 finished cells."""
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell",
                        lambda c, cell: 1 / 0 if cell["seed"] == 1 else real(c, cell))
    return real


def _dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- code versions


def test_code_identity_hashes_the_whole_package_source():
    code = code_identity("quickstart")
    assert set(code) == {"memphase_version", "git_commit", "source_hash"}
    files = store.package_source_files()
    assert code["source_hash"] == store.source_tree_hash(files)
    names = {name for name, _ in files}
    # every module counts, not only the experiment's: the sampler, the scores, physics, analysis
    for module in (sampling, quickstart, critical, memorization_observables):
        path = Path(inspect.getsourcefile(module)).resolve()
        assert path in {p.resolve() for _, p in files}, path
    assert "simulate/sampling/samplers.py" in names and "physics/critical.py" in names
    assert len(names) == len(files) > 50


def test_source_tree_hash_sees_any_edit_addition_or_removal(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    files = lambda: sorted((p.name, p) for p in tmp_path.glob("*.py"))  # noqa: E731
    h0 = store.source_tree_hash(files())
    assert store.source_tree_hash(files()) == h0                        # deterministic
    (tmp_path / "b.py").write_text("y = 3\n")
    h1 = store.source_tree_hash(files())
    (tmp_path / "c.py").write_text("")
    h2 = store.source_tree_hash(files())
    (tmp_path / "c.py").unlink()
    (tmp_path / "a.py").rename(tmp_path / "d.py")                       # same bytes, new name
    h3 = store.source_tree_hash(files())
    assert len({h0, h1, h2, h3}) == 4


def test_a_change_outside_the_experiment_module_is_refused_on_resume(cfg, tmp_path, capsys,
                                                                    monkeypatch):
    """[issue: a code change missed in a dirty tree] The journal's identity covers every module:
    a resumed run with an edited sampler (seen here as another package hash) is refused."""
    real = _fail_half(monkeypatch)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 1
    capsys.readouterr()
    monkeypatch.setattr(quickstart, "run_cell", real)
    old = code_identity("quickstart")
    monkeypatch.setattr(store, "package_source_files",
                        lambda: [("simulate/sampling/samplers.py", tmp_path / "edited.py")])
    (tmp_path / "edited.py").write_text("# the sampler, edited\n")
    new = code_identity("quickstart")
    assert new["git_commit"] == old["git_commit"] and new["source_hash"] != old["source_hash"]
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 2
    _one_line(capsys, "other code", old["source_hash"], new["source_hash"], "--allow-code-change")


def test_resume_after_a_code_change_is_refused_unless_allowed(cfg, tmp_path, capsys, monkeypatch):
    real = _fail_half(monkeypatch)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 1
    capsys.readouterr()
    manifest = json.loads((tmp_path / "res.h5.cells" / "manifest.json").read_text())
    assert manifest["code"] == code_identity("quickstart")
    monkeypatch.setattr(quickstart, "run_cell", real)
    old = code_identity("quickstart")
    new = dict(old, source_hash="0123456789abcdef")
    monkeypatch.setattr(sweep, "code_identity", lambda job: dict(new))
    for verb in ("run", "sweep"):
        assert main([verb, str(cfg), "-q", "--no-plot"]) == 2
        _one_line(capsys, "other code", old["source_hash"], "0123456789abcdef",
                  "--allow-code-change")
    assert not (tmp_path / "res.h5").exists()
    assert main(["run", str(cfg), "-q", "--no-plot", "--allow-code-change"]) == 0
    with open_results(tmp_path / "res.h5") as ds:
        versions = json.loads(ds.attrs["code_versions"])
    assert [v["source_hash"] for v in versions] == [old["source_hash"], "0123456789abcdef"]
    assert [v["cells"] for v in versions] == [4, 4]


def test_same_code_resumes_without_the_flag(cfg, tmp_path, capsys, monkeypatch):
    real = _fail_half(monkeypatch)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 1
    monkeypatch.setattr(quickstart, "run_cell", real)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    with open_results(tmp_path / "res.h5") as ds:
        versions = json.loads(ds.attrs["code_versions"])
    assert versions == [dict(code_identity("quickstart"), cells=N_CELLS)]


def test_new_discards_cells_of_other_code(cfg, tmp_path, capsys, monkeypatch):
    real = _fail_half(monkeypatch)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 1
    monkeypatch.setattr(quickstart, "run_cell", real)
    new = dict(code_identity("quickstart"), git_commit="feedface")
    monkeypatch.setattr(sweep, "code_identity", lambda job: dict(new))
    assert main(["run", str(cfg), "-q", "--no-plot", "--new"]) == 0
    with open_results(tmp_path / "res.h5") as ds:
        assert json.loads(ds.attrs["code_versions"]) == [dict(new, cells=N_CELLS)]


def test_merge_refuses_parts_of_different_code(cfg, tmp_path, capsys, monkeypatch):
    assert main(["sweep", str(cfg), "--shard", "0/2", "-q"]) == 0
    new = dict(code_identity("quickstart"), memphase_version="9.9")
    monkeypatch.setattr(sweep, "code_identity", lambda job: dict(new))
    assert main(["sweep", str(cfg), "--shard", "1/2", "-q"]) == 0
    capsys.readouterr()
    assert main(["merge", str(cfg), "-q", "--no-plot"]) == 2
    _one_line(capsys, "other code", "memphase 9.9", "--allow-code-change")
    assert main(["merge", str(cfg), "-q", "--no-plot", "--allow-code-change"]) == 0
    with open_results(tmp_path / "res.h5") as ds:
        got = sorted(v["memphase_version"] for v in json.loads(ds.attrs["code_versions"]))
    assert got[1] == "9.9" and len(got) == 2


# ----------------------------------------------------------------------------- the lock


def _taker(target, start, done, results):
    start.wait()
    try:
        lock = OutputLock(target).acquire()
    except SweepError:
        results.put("refused")
        done.wait()
        return
    results.put("held")
    done.wait()  # hold it until every taker has tried
    lock.release()


def test_stale_lock_is_taken_over_by_exactly_one_of_many(tmp_path):
    """Old scheme: read the stale record, unlink, create: two takers both held it in 63 of 200
    trials. flock(2): exactly one, every time."""
    ctx = mp.get_context("fork")
    takers = 8
    for trial in range(10):
        target = tmp_path / f"t{trial}.h5"
        (tmp_path / f"t{trial}.h5.lock").write_text(
            json.dumps({"pid": _dead_pid(), "host": os.uname().nodename}))
        start, done, results = ctx.Barrier(takers), ctx.Barrier(takers), ctx.Queue()
        procs = [ctx.Process(target=_taker, args=(target, start, done, results))
                 for _ in range(takers)]
        for p in procs:
            p.start()
        got = sorted(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        assert got.count("held") == 1 and got.count("refused") == takers - 1, got


def test_lock_file_of_junk_is_handled(tmp_path, capsys):
    """An empty lock file (a run killed between creating and writing it) is taken over; any
    other content that is not a lock record is refused and kept (issue 26 item 1: a run never
    truncates or deletes a file it did not create)."""
    target = tmp_path / "x.h5"
    lock = tmp_path / "x.h5.lock"
    lock.write_text("")
    assert OutputLock(target).record() == {}
    with OutputLock(target) as held:  # nobody holds the flock: taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(SweepError, match=f"pid {os.getpid()}"):
            OutputLock(target).acquire()
    assert not held.held and not lock.exists()
    for junk in ("[1, 2, 3]", "\x00\xff not json", '"a string"', '{"pid": "abc"}'):
        lock.write_text(junk)
        with pytest.raises(SweepError, match="is not a memphase lock file"):
            OutputLock(target).acquire()
        assert lock.read_text() == junk


def test_lock_of_another_host_is_refused(tmp_path):
    lock = tmp_path / "x.h5.lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(SweepError, match="pid 1 on elsewhere.example"):
        OutputLock(tmp_path / "x.h5").acquire()
    assert lock.exists()


# ----------------------------------------------------------------------------- full disk


def test_final_write_refused_without_free_space(cfg, tmp_path, capsys, monkeypatch):
    real_usage = files.shutil.disk_usage
    calls = []
    # the disk fills up while the cells run (a full disk before them is refused before compute)
    monkeypatch.setattr(files.shutil, "disk_usage",
                        lambda p: type("U", (), {"free": 1000 if calls else 2**40})())
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell", lambda c, cell: calls.append(1) or real(c, cell))
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 2
    _one_line(capsys, "not enough free disk space", "res.h5", "rerun the same command")
    assert not (tmp_path / "res.h5").exists() and len(calls) == N_CELLS
    assert len(Journal(tmp_path / "res.h5", load_sweep(cfg)).done_keys()) == N_CELLS
    monkeypatch.setattr(files.shutil, "disk_usage", real_usage)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert len(calls) == N_CELLS and (tmp_path / "res.h5").is_file()  # nothing recomputed


def test_free_space_check_counts_the_dataset(tmp_path, monkeypatch):
    free = 100 * 2**20
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: type("U", (), {"free": free})())
    files.check_free_space(tmp_path / "a.h5", 50 * 2**20)
    with pytest.raises(SweepError, match="not enough free disk space"):
        files.check_free_space(tmp_path / "a.h5", 80 * 2**20)  # + 10% + 16 MiB > 100 MiB


def test_disk_full_while_journaling_is_one_line(cfg, tmp_path, capsys, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 2
    _one_line(capsys, "disk full while writing", "res.h5.cells")
    assert not [p for p in (tmp_path / "res.h5.cells").iterdir() if p.name.startswith(".")]
    assert not (tmp_path / "res.h5.lock").exists()


def test_temporaries_of_dead_writers_are_removed(cfg, tmp_path, capsys):
    dead = _dead_pid()
    journal = tmp_path / "res.h5.cells"
    journal.mkdir()
    stale = [tmp_path / f".res.h5.tmp-{dead}", journal / f".0123.npz.tmp-{dead}",
             tmp_path / f".res.h5.fig-{dead}"]
    for p in stale[:2]:
        p.write_bytes(b"half a file")
    stale[2].mkdir()
    live = tmp_path / ".res.h5.tmp-1"  # pid 1 is alive
    other = tmp_path / f".other.h5.tmp-{dead}"  # another output's: not ours to remove
    live.write_bytes(b"x")
    other.write_bytes(b"x")
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert not any(p.exists() for p in stale)
    assert live.exists() and other.exists()


# ----------------------------------------------------------------------------- memory


def test_float32_training_set_is_drawn_without_a_float64_copy(monkeypatch):
    """The float32 set equals the float64 draw rounded (same stream), and drawing it never holds
    an (n, d) float64 array: peak traced numpy memory well below 8 n d bytes."""
    import tracemalloc

    import memphase.simulate.data.synthetic
    from memphase.simulate.data import gaussian_mixture, isotropic_gaussian, spectrum_gaussian

    monkeypatch.setattr(memphase.simulate.data.synthetic, "_CHUNK_BYTES", 2**20)
    n, d = 20000, 64
    for make in (lambda dt: isotropic_gaussian(n, d, 2.0, seed=1, dtype=dt),
                 lambda dt: spectrum_gaussian(n, [1.0] * 8 + [0.1] * (d - 8), seed=2, dtype=dt),
                 lambda dt: gaussian_mixture(n, d, seed=3, dtype=dt)):
        ref = make("float64").x
        tracemalloc.start()
        x = make("float32").x
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert x.dtype == __import__("torch").float32
        assert __import__("torch").equal(x, ref.float())
        assert peak < 8 * n * d / 2, peak
