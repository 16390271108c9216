"""Issue #26 items 5, 9, 10 and 11 (Reliability III): values an attacker (or a typo) gives are
refused in one line with exit 2 before any compute, and a full disk never reaches HDF5. Every
test here failed before its fix."""

import errno
import os

import pytest

import memphase.simulate.experiments.quickstart as quickstart
import memphase.simulate.run.files as files
from memphase.simulate.run.config import ConfigError
from memphase.simulate.run.config_bounds import KEY_BOUNDS, MAX_SEED
from memphase.simulate.cli import main
from memphase.simulate.sweep import load_sweep
from cli_checks import one_line_error, quickstart_template


def _write(tmp_path, text, name="job.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _quick(tmp_path, **kw):
    return _write(tmp_path, quickstart_template(**kw).format(out=tmp_path / "res.h5"))


def _refused(path, *needles):
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    for n in needles:
        assert n in str(e.value), str(e.value)
    return str(e.value)


def _no_compute(monkeypatch):
    calls = []
    real = quickstart.run_cell
    monkeypatch.setattr(quickstart, "run_cell", lambda c, cell: calls.append(1) or real(c, cell))
    return calls


# ----------------------------------------------------------------------------- item 9


def test_item9_seed_rule_is_one_for_every_job(tmp_path):
    """A seed of 2^63-1 (accepted by quickstart, failing in learned-score cells) is refused by
    every job with the same rule."""
    _refused(_quick(tmp_path, seeds=f"[{2**63 - 1}]"), "grid.seeds", "2^32-1")
    assert load_sweep(_quick(tmp_path, seeds=f"[{MAX_SEED}]")).cells  # the bound itself is fine
    reg = _write(tmp_path, 'job = "regularization"\n[grid]\nseeds = [4294967296]\n', "r.toml")
    _refused(reg, "grid.seeds")
    reg = _write(tmp_path, f'job = "regularization"\n[grid]\ncalibration_seeds = [{2**63 - 1}]\n',
                 "c.toml")
    _refused(reg, "grid.calibration_seeds")


def test_item9_speciation_offsets_that_make_time_nan_are_refused(tmp_path):
    p = _write(tmp_path, 'job = "speciation"\n[grid]\nd = [16]\n[measure]\n'
                         'offsets = [0.0, 1.0, 1e300]\n')
    _refused(p, "measure.offsets", "-50 <= offset <= 50")


@pytest.mark.parametrize("table, value", [("sampler", "2.2e-308"), ("network", "1e-12")])
def test_item9_regularization_t_end_below_resolution_is_refused(tmp_path, table, value):
    p = _write(tmp_path, f'job = "regularization"\n[{table}]\nt_end = {value}\n')
    _refused(p, f"{table}.t_end")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_item9_t_min_tau_the_schedule_cannot_resolve_is_refused(tmp_path, dtype):
    """float32 + linear_vp + t_min_tau = 1.2e-19 is inside the float32 scale bounds, but
    linear_vp's time of that tau is 0 (tau = 0): every cell failed after compute."""
    text = quickstart_template().format(out=tmp_path / "res.h5") + (
        f'schedule = "linear_vp"\ndtype = "{dtype}"\nt_min_tau = 1.2e-19\n')
    _refused(_write(tmp_path, text), "sampler.t_min_tau", "linear_vp")
    ok = text.replace("t_min_tau = 1.2e-19", "t_min_tau = 1e-9")
    assert load_sweep(_write(tmp_path, ok, "ok.toml")).cells


def test_item9_run_checks_cuda_even_when_the_config_says_slurm(tmp_path, capsys, monkeypatch):
    """`memphase run` computes here whatever [sweep] backend says: a CUDA device this machine
    does not have is refused before compute (the check was skipped for remote backends)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = quickstart_template(sweep='backend = "slurm"').format(out=tmp_path / "res.h5")
    p = _write(tmp_path, text.replace("record = 5\n", 'record = 5\ndevice = "cuda"\n'))
    calls = _no_compute(monkeypatch)
    assert main(["run", str(p), "-q", "--no-plot"]) == 2
    one_line_error(capsys, "sampler.device", "cuda")
    assert not calls and not (tmp_path / "res.h5.lock").exists()


# ----------------------------------------------------------------------------- item 11

NONSENSE = [  # (job, table, key, value) from the issue
    ("quickstart", "measure", "collapse_tol", "1e12"),
    ("memorization", "grid", "weight_decay", "[3.4e38]"),
    ("memorization", "data", "normal_std", "9.2e18"),
    ("memorization", "training", "batch_size", str(2**63 - 1)),
    ("geometric", "measure", "threshold", "1e-38"),
    ("geometric", "measure", "probe_points", "10000001"),
    ("regularization", "sampler", "tol", "1e12"),
    ("geometric", "train", "weight_decay", "3.4e38"),
    ("geometric", "data", "normal_std", "9.2e18"),
    ("geometric", "train", "batch_size", str(2**63 - 1)),
    ("training_dynamics", "grid", "batch_size", f"[{2**63 - 1}]"),
]


@pytest.mark.parametrize("job, table, key, value", NONSENSE)
def test_item11_accepted_nonsense_is_refused(tmp_path, job, table, key, value):
    grid = "[grid]\nn_train = [8]\n" if job == "geometric" else ""  # else refused for that
    p = _write(tmp_path, f'job = "{job}"\n{grid}[{table}]\n{key} = {value}\n')
    msg = _refused(p, f"{table}.{key}", "outside")
    assert KEY_BOUNDS[key][2] in msg  # the rule says why


def test_item11_death_timeout_is_bounded(tmp_path):
    text = quickstart_template(sweep="[sweep.slurm]\ndeath_timeout = 4.6e18")
    _refused(_write(tmp_path, text.format(out=tmp_path / "r.h5")), "sweep.slurm.death_timeout")


def test_item11_record_beyond_steps_is_refused(tmp_path):
    _refused(_quick(tmp_path, steps=20, record=10000001), "sampler.record", "sampler.steps")
    assert load_sweep(_quick(tmp_path, steps=20, record=20)).cells


def test_item11_bounds_are_generous_for_research_values(tmp_path):
    """The bundled configs and the defaults load; typical research values pass every bound."""
    for key, typical in (("collapse_tol", 0.5), ("tol", 1e-10), ("threshold", 1e-3),
                         ("weight_decay", 0.1), ("normal_std", 10.0), ("batch_size", 4096),
                         ("probe_points", 64), ("death_timeout", 3600.0), ("seed", 2**31)):
        lo, hi, _ = KEY_BOUNDS[key]
        assert lo <= typical <= hi, key


# ----------------------------------------------------------------------------- item 5


def test_item5_full_disk_before_the_run_names_the_file_and_leaves_nothing(cfg_quick, capsys,
                                                                          monkeypatch):
    tmp = cfg_quick.parent
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    calls = _no_compute(monkeypatch)
    assert main(["run", str(cfg_quick), "-q", "--no-plot"]) == 2
    one_line_error(capsys, "not enough free disk space", "res.h5")
    assert not calls
    assert not (tmp / "res.h5.lock").exists() and not (tmp / "res.h5.cells").exists()


def test_item5_disk_full_at_the_final_write_comes_before_hdf5_writes(cfg_quick, capsys,
                                                                     monkeypatch):
    """The final file's space is reserved before a byte is written: ENOSPC there is one line,
    exit 2, no temporary left, every cell kept; HDF5 never writes to a full disk."""
    tmp = cfg_quick.parent

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    calls = _no_compute(monkeypatch)
    assert main(["run", str(cfg_quick), "-q", "--no-plot"]) == 2
    one_line_error(capsys, "disk full while writing", "res.h5")
    assert not (tmp / "res.h5").exists() and len(calls) == 8
    assert not [p for p in tmp.iterdir() if p.name.startswith(".res.h5.tmp")]
    from memphase.simulate.sweep import Journal, load_sweep

    assert len(Journal(tmp / "res.h5", load_sweep(cfg_quick)).done_keys()) == 8
    monkeypatch.undo()
    calls = _no_compute(monkeypatch)
    assert main(["run", str(cfg_quick), "-q", "--no-plot"]) == 0 and not calls


@pytest.fixture
def cfg_quick(tmp_path):
    return _quick(tmp_path)


# ----------------------------------------------------------------------------- item 11: --yes

BIG = """job = "quickstart"
output = "{out}"
[data]
d = 16
[grid]
n_train = {{start = 100, stop = 20000, num = 10000}}
score = ["empirical"]
seeds = [0, 1, 2, 3, 4, 5]
[sampler]
steps = 200
n_samples = 512
"""


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_item11_a_days_long_grid_needs_yes(tmp_path, capsys, monkeypatch, command):
    """60,000 cells estimated at ~99 h do not start in process without a word: one line with
    the estimate, exit 2, nothing written; with --yes the same plan is accepted."""
    from memphase.simulate.sweep import CONFIRM_SECONDS, check_confirmed

    p = _write(tmp_path, BIG.format(out=tmp_path / "big.h5"))
    calls = _no_compute(monkeypatch)
    assert main([command, str(p), "-q", "--no-plot"]) == 2
    err = one_line_error(capsys, "60000 cells estimated at", "--yes")
    hours = float(err.split("estimated at about ")[1].split(" h")[0])  # a sample of the grid
    assert hours * 3600 > CONFIRM_SECONDS and 50 < hours < 200  # the issue measured 98.9 h
    assert not calls and list(tmp_path.iterdir()) == [p]
    plan = load_sweep(p)
    check_confirmed(plan, plan.cells, yes=True)  # --yes: accepted
    with pytest.raises(ConfigError, match="--yes"):
        check_confirmed(plan, plan.cells, yes=False)
    small = load_sweep(_quick(tmp_path))
    check_confirmed(small, small.cells, yes=False)  # small runs never ask


# ----------------------------------------------------------------------------- item 10


def test_item10_regularization_of_c_zero_alone_draws_its_figure(tmp_path, capsys):
    """Tikhonov with c = [0] only (the empirical score): results and figure are written in one
    run (the figure's log strength axis had no positive value and failed on every rerun)."""
    p = _write(tmp_path, f'job = "regularization"\noutput = "{tmp_path / "reg.h5"}"\n[data]\n'
                         'n_train = 5\n[grid]\nregularizer = ["tikhonov"]\nc = [0.0]\n'
                         'seeds = [0]\ncalibration_seeds = [1000]\n[sampler]\nn_samples = 20\n')
    assert main(["run", str(p), "-q"]) == 0, capsys.readouterr().err
    assert (tmp_path / "reg.h5").is_file() and (tmp_path / "reg.png").is_file()
    assert not (tmp_path / "reg.h5.cells").exists()  # the figure is drawn: the journal is gone


@pytest.mark.parametrize("score, n", [("population", 0), ("empirical", 2048)])
def test_item10_speciation_estimate_at_the_largest_d_counts_the_basis(tmp_path, score, n):
    """At d = 16384 the issue measured 6.65 GB and > 900 s (unfinished) against an estimate of
    10.9 MiB and 11 s: the d x d basis (measured 5.05..5.3 x 8 d^2 bytes, peak) now counts."""
    from memphase.simulate.experiments import speciation
    from memphase.simulate.sweep import estimate_cell

    p = _write(tmp_path, f'job = "speciation"\n[grid]\nd = [16384]\nscore = ["{score}"]\n'
                         f'n_train = [{max(n, 2)}]\n')
    plan = load_sweep(p)
    est = estimate_cell(speciation, plan.cfg, plan.cells[0])
    assert est["memory_bytes"] >= 6.65e9 and est["memory_bytes"] >= 5.3 * 8 * 16384**2
    assert est["seconds"] > 900


def test_item10_memorization_estimate_at_the_largest_d_counts_the_basis(tmp_path):
    """memorization on a linear manifold at its largest d = 4096 estimated 26 MiB; the Haar
    basis alone peaks at 5.05..5.3 x 8 d^2 bytes (0.7 GiB)."""
    from memphase.simulate.experiments import memorization
    from memphase.simulate.sweep import estimate_cell

    p = _write(tmp_path, 'job = "memorization"\n[grid]\nd = [4096]\nintrinsic_dim = [2]\n'
                         'n_train = [16]\nscore = ["empirical"]\n')
    plan = load_sweep(p)
    est = estimate_cell(memorization, plan.cfg, plan.cells[0])
    assert est["memory_bytes"] >= 5.3 * 8 * 4096**2


def test_item10_training_dynamics_estimate_on_a_manifold_counts_the_basis():
    """training_dynamics at d = 4096 on a linear manifold estimated ~530 MiB while the Haar
    basis alone peaks at ~0.7 GiB: the estimate now counts it (cost.with_manifold_basis)."""
    from memphase.simulate.run.config import validate
    from memphase.simulate.run.cost import haar_basis_cost
    from memphase.simulate.experiments import training_dynamics as td

    cfg = validate({"job": "training_dynamics",
                    "grid": {"d": [4096], "intrinsic_dim": [4], "n_train": [64]}}, td.SCHEMA)
    cell = next(c for c in td.cells(cfg))
    flat = dict(cell, intrinsic_dim=0)
    with_basis, without = td.estimate(cfg, cell), td.estimate(cfg, flat)
    assert with_basis["memory_bytes"] >= haar_basis_cost(4096)["memory_bytes"]
    assert with_basis["seconds"] - without["seconds"] >= haar_basis_cost(4096)["seconds"] * 0.99
