"""The collapse experiment ([BBDM24] collapse time and memorization boundary) through the
experiment interface: config errors, the cell grid, a small run against the REM theory."""

import math

import numpy as np
import pytest

from memphase.physics.critical import collapse_time
from memphase.physics.schedules import make_schedule
from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import collapse, run_in_memory
from memphase.simulate.sweep import load_sweep
from memphase.simulate.cli.validate import LAST_CHANGE_MIN_D


def config(grid=None, sampler=None, measure=None):
    raw = {"job": "collapse",
           "grid": grid if grid is not None else {"d": [8], "alpha": [0.2]},
           "sampler": sampler or {}, "measure": measure or {}}
    return validate(raw, collapse.SCHEMA)


@pytest.mark.parametrize("grid, match", [
    ({"d": [8], "alpha": [0.2], "n_train": [10]}, r"exactly one of 'n_train' and 'alpha' \(both"),
    ({"d": [8]}, r"exactly one of 'n_train' and 'alpha' \(neither"),
    ({"d": [4], "alpha": [0.05]}, r"alpha = 0.05 with d = 4 gives N = round\(exp\(alpha d\)\) = 1"),
    ({"d": [64], "alpha": [0.5]}, r"need 2 <= N <= 1e\+07"),
])
def test_grid_errors_from_cells(grid, match):
    with pytest.raises(ConfigError, match=match):
        collapse.cells(config(grid))


@pytest.mark.parametrize("alpha", [0.0, -0.1, 6.0])
def test_alpha_out_of_range_is_a_config_error(alpha):
    with pytest.raises(ConfigError, match=r"'grid.alpha' = .* out of range: 0 < alpha <= 5"):
        config({"d": [8], "alpha": [alpha]})


def test_config_file_errors_name_the_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('job = "collapse"\n[grid]\nd = [8]\nalpha = [0.2]\nn_train = [16]\n')
    with pytest.raises(ConfigError, match=rf"{p}: \[grid\] must set exactly one"):
        load_sweep(p)
    p.write_text('job = "collapse"\n[grid]\nd = [8]\nalpha = [0.2]\n[sampler]\n'
                 't_min_tau = 10.0\nt_max_tau = 1.0\n')
    with pytest.raises(ConfigError, match="t_max_tau .* must exceed t_min_tau"):
        load_sweep(p)


def test_cell_grid_alpha_and_n_train():
    cfg = config({"d": [8, 16], "alpha": [0.2, 0.4, 0.6], "score": ["empirical", "linear"],
                  "seeds": [0, 3]})
    cells = collapse.cells(cfg)
    assert len(cells) == 2 * 2 * 3 * 2
    for c in cells:  # N = round(e^{alpha d})
        assert c["n_train"] == round(math.exp(c["alpha"] * c["d"]))
    assert len({(c["score"], c["d"], c["alpha"], c["seed"]) for c in cells}) == len(cells)
    cfg = config({"d": [4, 8], "n_train": [10, 100], "score": ["population"]})
    cells = collapse.cells(cfg)
    assert [(c["d"], c["n_train"]) for c in cells] == [(4, 10), (4, 100), (8, 10), (8, 100)]
    assert all("alpha" not in c for c in cells)
    assert collapse.estimate(cfg, cells[-1])["seconds"] > collapse.estimate(cfg, cells[0])["seconds"]


def test_memorization_boundary_is_where_collapse_time_equals_end_time():
    """N_b(d) = (1 + s^2/tau_end)^{d/2} solves t_C(N_b, d) = t_end (REM formula, independent code)."""
    ou = make_schedule("ou")
    for d, tau_end, var in [(8, 0.1, 1.0), (32, 1.0, 2.0), (100, 1e-2, 0.5)]:
        n_b = collapse.memorization_boundary_n(d, tau_end, var)
        t_c = collapse_time(n_b, np.full(d, var), ou)
        assert t_c == pytest.approx(float(ou.time_of_tau(tau_end)), rel=1e-9)
        assert collapse.memorization_boundary_alpha(tau_end, var) == pytest.approx(
            math.log(n_b) / d, rel=1e-12)
    with pytest.raises(ValueError, match="must be > 0"):
        collapse.memorization_boundary_alpha(0.0, 1.0)


@pytest.fixture(scope="module")
def small_run():
    """d = 128 = LAST_CHANGE_MIN_D, alpha = 0.05 (N = 602): about 6 s on one core."""
    cfg = config({"d": [LAST_CHANGE_MIN_D], "alpha": [0.05], "score": ["empirical", "population"],
                  "seeds": [0]},
                 sampler={"steps": 150, "record": 150, "n_samples": 200, "t_min_tau": 1e-4},
                 measure={"excess_entropy": True, "n_fresh": 600})
    return cfg, run_in_memory(collapse, cfg)[1]


def test_measured_collapse_time_against_rem_theory(small_run):
    _, ds = small_run
    emp = ds.sel(score="empirical").isel(d=0, alpha=0, seed=0)
    theory = float(emp["collapse_time_theory"])
    assert theory == pytest.approx(-0.5 * math.log(1 - 602 ** (-2 / 128)), rel=1e-12)
    # last change of the nearest training point: biased late at finite d (validate measured +7%
    # at d = 128, alpha = 0.05); tolerance 20%
    assert float(emp["collapse_time_measured"]) == pytest.approx(theory, rel=0.20)
    assert float(emp["collapse_time_measured"]) > float(ds.attrs["end_time"])
    # zero of the Monte-Carlo excess entropy (+4..5% in validate); tolerance 12%
    assert float(emp["collapse_time_entropy"]) == pytest.approx(theory, rel=0.12)
    # end tau 1e-4 << tau_C: every empirical sample sits on a training point
    assert float(emp["collapse_fraction"]) >= 0.95
    assert float(emp["memorization_ratio"]) >= 0.95


def test_population_score_never_collapses(small_run):
    _, ds = small_run
    pop = ds.sel(score="population")
    assert float(pop["collapse_fraction"].max()) <= 0.01
    assert float(pop["memorization_ratio"].max()) <= 0.05
    assert np.isnan(pop["collapse_time_entropy"]).all()  # measured on empirical cells only


def test_dataset_dims_units_and_theory(small_run):
    cfg, ds = small_run
    sizes = dict(ds.sizes)
    assert sizes.pop("time") >= cfg["sampler"]["record"]  # every step recorded, plus the end
    assert sizes == {"score": 2, "d": 1, "alpha": 1, "seed": 1}
    assert ds["same_as_final"].dims == ("score", "d", "alpha", "seed", "time")
    assert ds["n_train"].dims == ("d", "alpha") and ds["n_train"].item() == 602
    for name in list(ds.data_vars) + list(ds.coords):
        assert {"units", "long_name"} <= set(ds[name].attrs), name
    assert ds.attrs["size_axis"] == "alpha"
    assert "10000 + seed" in ds.attrs["seed_rule"]
    assert ds["collapse_time_theory"].attrs["boundary_axis"] == "time"
    assert ds["memorization_boundary_alpha"].item() == pytest.approx(0.5 * math.log1p(1e4))
    # the trajectory ends on its final training point
    assert float(ds["same_as_final"].isel(time=-1).min()) == 1.0
    assert np.all(np.diff(ds["time"].values) < 0)  # reverse time


def test_memorization_flips_across_the_boundary():
    """End noise tau_end = 1: alpha_b = log(2)/2 = 0.35 (t_C = t_end). In d = 16, alpha = 0.1
    (N = 5, t_C = 0.85 > t_end = 0.35) memorizes, alpha = 0.6 (N = 14765, t_C = 0.18) does not;
    at this d the crossover is smooth, so only the two ends (ratio >= 0.85, <= 0.15) and the order
    are asserted (64 samples: binomial std <= 0.06)."""
    cfg = config({"d": [16], "alpha": [0.1, 0.35, 0.6], "score": ["empirical"]},
                 sampler={"steps": 40, "record": 20, "n_samples": 64, "t_min_tau": 1.0})
    ds = run_in_memory(collapse, cfg)[1]
    ratio = ds["memorization_ratio"].isel(score=0, d=0, seed=0).values
    assert ds["memorization_boundary_alpha"].item() == pytest.approx(0.5 * math.log(2))
    t_c = ds["collapse_time_theory"].isel(d=0).values
    assert t_c[0] > ds.attrs["end_time"] > t_c[2]
    assert ratio[0] >= 0.85 and ratio[2] <= 0.15
    assert ratio[0] >= ratio[1] >= ratio[2]


def test_finite_n_boundary_stored_beside_rem(small_run):
    from memphase.physics.critical import collapse_time_finite_n

    _, ds = small_run
    fin = ds["collapse_time_finite_n_theory"]
    assert fin.dims == ("d", "alpha") and fin.attrs["boundary_axis"] == "time"
    n, d = int(ds["n_train"].item()), int(ds["d"].item())
    assert fin.item() == pytest.approx(float(collapse_time_finite_n(n, d)), rel=1e-9)
    assert fin.item() > float(ds["collapse_time_theory"].item())     # finite N collapses later
    assert float(ds["collapse_tau_finite_n_theory"].item()) > float(ds["collapse_tau_theory"].item())


def test_digits_store_the_finite_n_theory_of_the_pca_spectrum():
    """The digits' many-level PCA spectrum gets its finite-N collapse noise (no NaN): the zero of
    the finite-N excess entropy with the top-d eigenvalues, later than REM."""
    pytest.importorskip("sklearn")
    from memphase.physics.critical import collapse_tau, excess_entropy_finite_n
    from memphase.simulate.data import digits

    cfg = validate({"job": "collapse", "data": {"model": "digits"},
                    "grid": {"d": [6], "n_train": [20], "score": ["population"], "seeds": [0]},
                    "sampler": {"steps": 10, "n_samples": 8, "t_min_tau": 1e-2,
                                "t_max_tau": 1e2, "record": 4}}, collapse.SCHEMA)
    _, ds = run_in_memory(collapse, cfg)
    eig = digits(None, n_components=6).variances()
    tau = float(ds["collapse_tau_finite_n_theory"].squeeze())
    t_c = 0.5 * math.log1p(tau)                      # OU time: the zero of f
    assert abs(float(excess_entropy_finite_n(t_c, 20, 6, spectrum=eig))) < 1e-5
    assert tau > float(collapse_tau(20, eig))
    assert np.isfinite(float(ds["collapse_time_finite_n_theory"].squeeze()))
    assert "quasi-Monte Carlo" in ds.attrs["data_note"]


def test_finite_n_theory_is_computed_in_the_cells_not_after_them(monkeypatch):
    """[issue 25 part 2] The finite-N theory ran serially after every cell (minutes for the
    digits, workers idle, not in the estimate or wall_s): one cell per (d, N) computes it now,
    counted in that cell's estimate, and assemble only reads it. Same numbers as the direct
    computation."""
    cfg = config({"d": [4, 6], "n_train": [8, 40], "score": ["empirical", "population"],
                  "seeds": [0, 1]}, {"steps": 20, "n_samples": 16, "record": 5})
    calls = []
    real = collapse.finite_n_theory
    monkeypatch.setattr(collapse, "finite_n_theory",
                        lambda *a, **k: calls.append(np.asarray(a[0]).size) or real(*a, **k))
    cells, ds = run_in_memory(collapse, cfg)
    assert calls == [1, 1, 1, 1]          # one per (d, N), in the cells; none in assemble
    theory_cells = [c for c in cells if collapse._is_theory_cell(cfg, c)]
    assert len(theory_cells) == 4 and all(c["score"] == "empirical" and c["seed"] == 0
                                          for c in theory_cells)
    tau, t = real(collapse.sizes(cfg), np.array([4, 6]), 1.0,
                  make_schedule(cfg["sampler"]["schedule"]))
    np.testing.assert_allclose(ds["collapse_tau_finite_n_theory"].values, tau, rtol=1e-12)
    np.testing.assert_allclose(ds["collapse_time_finite_n_theory"].values, t, rtol=1e-12)
    other = next(c for c in cells if not collapse._is_theory_cell(cfg, c))
    extra = (collapse.estimate(cfg, theory_cells[0])["seconds"]
             - collapse.estimate(cfg, dict(theory_cells[0], seed=1))["seconds"])
    assert extra == collapse.FINITE_N_SECONDS["isotropic"] and other
