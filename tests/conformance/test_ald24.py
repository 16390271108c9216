"""Conformance of memphase with the official [ALD24] code (docs/conformance/ald24.md).

Achilli et al., *Losing dimensions: geometric memorization in generative diffusion*, arXiv
2410.08727; official code `plots_synthetic_theory.ipynb` (last cell: "Theory" and "Empirical
Score" panels) and `analyze_spectrum.py` (network panel). Each test re-derives one `same` row of
the table step by step in plain numpy, written from reading the official code (not copied), on
the official seed 2, and compares with memphase. The test name carries the row.
"""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import ortho_group

from memphase.analysis.ald24_panel import (OFFICIAL_THEORY_GRID, OFFICIAL_VAR_GRID,
                                           official_empirical_panel, official_theory_panel,
                                           panel_guides)
from memphase.analysis.dimensions import jacobian_sweep
from memphase.analysis.probes import finite_difference_jacobian, official_probe_spectrum
from memphase.physics.schedules import make_schedule
from memphase.simulate.data import linear_manifold
from memphase.simulate.scores import EmpiricalScore, GaussianScore

D, D1, D2, N, SEED = 30, 2, 5, 1000, 2


# -- the official computation, re-derived -----------------------------------------------------
def official_data(seed=SEED, n=N, d=D):
    """np.random.seed(seed); stds (1 x d1, 0.3 x d2, 0.01 rest) times one (n, d) normal draw;
    rows divided by their norm (clipped at 1e-12): the unit sphere, coordinate basis."""
    np.random.seed(seed)
    stds = np.concatenate([np.ones(D1), 0.3 * np.ones(D2), 0.01 * np.ones(d - D1 - D2)])
    x = stds[None, :] * np.random.normal(0.0, 1.0, (n, d))
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def official_score(x, samples, var):
    """Empirical score of the VE law with variance var (official `sigma` is a variance):
    (sum_n w_n y_n - x) / var, w = softmax(-|x - y_n|^2 / (2 var))."""
    logits = -((x[:, None, :] - samples[None]) ** 2).sum(-1) / (2.0 * var)
    w = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    return (w @ samples - x) / var


def official_fd_singular_values(x0, samples, var):
    """Central differences along the coordinate axes, points x0 +- (sqrt(var)/2) e_j, divided by
    sqrt(var); every entry replaced by its absolute value; singular values, descending."""
    d = samples.shape[1]
    h = np.sqrt(var)
    plus = official_score(x0 + 0.5 * h * np.eye(d), samples, var)
    minus = official_score(x0 - 0.5 * h * np.eye(d), samples, var)
    return np.linalg.svd(np.abs((plus - minus) / h), compute_uv=False)


def official_panel_curve(sv, drop):
    """Official post-processing: sv[drop:] / max(sv[drop:])."""
    return sv[drop:] / np.max(sv[drop:])


def official_theory_singular(t, n=N, d=D):
    """Official theory cell, normalized data (gate 0): scales 1 (d1), 0.3 (d2), 1e-6 (rest);
    sqrt(eig^2 + var^2), eig = 1/(t + s^2), var = factor(t) max(0, 1/t - 1/t_c(t)),
    t_c(t) = sqrt(t s^2 / (2 ln N)), factor(t) = sum s^2 / (t^2 (t + s^2))."""
    s = np.concatenate([np.ones(D1), 0.3 * np.ones(D2), 1e-6 * np.ones(d - D1 - D2)])
    eig = 1.0 / (t + s**2)
    t_c = np.sqrt(t * s**2 / (2.0 * np.log(n)))
    factor = np.sum(s**2 / (t**2 * (t + s**2)))
    return np.sqrt(eig**2 + (factor * np.maximum(0.0, 1.0 / t - 1.0 / t_c)) ** 2)


# -- rows ---------------------------------------------------------------------------------------
def test_row_data_and_generator_seed2():
    """Row 'data and generator' and 'basis': linear_manifold(protocol='ald24') is the official
    seed-2 draw, in the coordinate basis, to the last bit."""
    data = linear_manifold(N, D, [(D1, 1.0), (D2, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=SEED, protocol="ald24")
    np.testing.assert_array_equal(data.x.numpy(), official_data())
    np.testing.assert_array_equal(data.basis, np.eye(D))
    assert list(data.block[:7]) == [0, 0, 1, 1, 1, 1, 1] and np.all(data.block[7:] == -1)


@pytest.mark.parametrize("schedule", ["ve", "ou"])
def test_row_noise_units_score(schedule):
    """Row 'noise and its units': the official var is the data-scale noise variance tau; the
    memphase empirical score in data units (m s(m u)) equals the official VE score at var = tau
    for either schedule."""
    y = official_data()
    sch = make_schedule(schedule)
    score = EmpiricalScore(torch.from_numpy(y), sch)
    u = np.random.default_rng(0).standard_normal((4, D)) * 0.3
    for var in (0.01, 0.2, 1.0):
        t = float(sch.time_of_tau(var))
        m = float(sch.mean_scale(t))
        got = m * score(torch.from_numpy(m * u), t).numpy()
        np.testing.assert_allclose(got, official_score(u, y, var), rtol=1e-9, atol=1e-9)


def test_row_estimator_finite_differences_seed2():
    """Row 'estimator': official_fd / finite_difference_jacobian at the origin = the official
    central differences, abs, SVD, at five grid values; 1493.9 (vs 3531.8 exact) at var = 0.01."""
    y = official_data()
    panel = official_empirical_panel()
    for var in (0.01, 0.05, 0.1, 0.5, 1.0):
        i = int(np.argmin(np.abs(panel["var"] - var)))
        want = official_fd_singular_values(np.zeros((1, D)), y, panel["var"][i])
        np.testing.assert_allclose(panel["fd_raw"][i], want, rtol=1e-9)
    i = int(np.argmin(np.abs(panel["var"] - 0.01)))
    assert abs(panel["fd_raw"][i, 0] - 1493.9) < 0.05
    assert abs(panel["exact_raw"][i, 0] - 3531.8) < 0.05


def test_row_anchor_origin_no_noise():
    """Row 'anchor': the official test point is zeros, with no noise at any var. memphase
    anchor='origin': rho computed from the exact Jacobian equals the official weights-1/N value
    (u^T C_N u / v)(1 + v/var) at every var, whatever the sweep's seed (no noise drawn in)."""
    y = official_data()
    data = linear_manifold(N, D, [(D1, 1.0), (D2, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=SEED, protocol="ald24")
    sch = make_schedule("ve")
    taus = np.array([0.01, 0.1, 1.0])
    v = data.variances()
    c_n = y.var(axis=0)  # weights exactly 1/N at the origin: the training-set covariance
    want = (c_n / v)[None, :] * (1.0 + v[None, :] / taus[:, None])
    order = np.argsort(data.block, kind="stable")
    for seed in (0, 5):
        ds = jacobian_sweep(EmpiricalScore(data, sch), data, taus, n_points=1, seed=seed,
                            schedule=sch, anchor="origin", spectrum=False)
        np.testing.assert_allclose(ds.variance_ratio.values[:, 0], want[:, order], rtol=1e-7)


def test_row_grid_and_order():
    """Row 'grid': var = linspace(1, 0.01, 100), run in reverse (smallest first)."""
    np.testing.assert_array_equal(OFFICIAL_VAR_GRID, np.linspace(1, 0.01, 100))
    panel = official_empirical_panel(grid=np.linspace(1, 0.01, 4))
    np.testing.assert_array_equal(panel["var"], np.linspace(1, 0.01, 4)[::-1])


def test_row_post_processing_and_repetitions_seed2():
    """Rows 'post-processing' and 'repetitions': the official curve is the mean of 5 repetitions
    at the same point (identical: the estimator is deterministic) of sv[6:] / max(sv[6:])."""
    y = official_data()
    var = 0.0504  # a grid value
    reps = [official_fd_singular_values(np.zeros((1, D)), y, var) for _ in range(5)]
    assert all(np.array_equal(r, reps[0]) for r in reps)
    want = official_panel_curve(np.mean(reps, axis=0), 6)
    sch = make_schedule("ve")
    data = linear_manifold(N, D, [(D1, 1.0), (D2, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=SEED, protocol="ald24")
    jac = finite_difference_jacobian(EmpiricalScore(data, sch), torch.zeros(D, dtype=torch.float64),
                                     float(sch.time_of_tau(var)))
    got = official_panel_curve(np.linalg.svd(np.abs(jac), compute_uv=False), 6)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_row_theory_panel():
    """Row 'theory panel': official cell (nominal stds, rest 1e-6, g = 0, N = 1000, grid
    linspace(1, 0.005, 200), sorted descending, top 7 dropped, max-normalized)."""
    th = official_theory_panel()
    np.testing.assert_array_equal(th["var"], OFFICIAL_THEORY_GRID)
    np.testing.assert_array_equal(OFFICIAL_THEORY_GRID, np.linspace(1, 0.005, 200))
    for i in (0, 57, 120, 199):
        sv = np.sort(official_theory_singular(th["var"][i]))[::-1]
        np.testing.assert_allclose(th["curves"][i], official_panel_curve(sv, 7), rtol=1e-10)


def test_row_reading_rule_guides():
    """Row 'reading rule': the official guide lines, empirical panel (in_idx 6) at ranks 16
    (black), 21 (red), 18 (green); theory panel (in_idx 7) at 15, 20, 17."""
    assert panel_guides(D, (D1, D2), 6) == {"red": 21, "green": 18, "black": 16}
    assert panel_guides(D, (D1, D2), 7) == {"red": 20, "green": 17, "black": 15}


def test_row_network_probe_estimator():
    """Row 'network-panel estimator' (`analyze_spectrum.py`): rows score(x0 + std z_k) / std over
    the rows of a random orthogonal matrix (scipy ortho_group there, a Haar QR frame here), first
    singular value dropped, max-normalized. For a linear score with s(x0) = 0 the result does not
    depend on the frame, so the two agree exactly on any frame."""
    cov = np.diag(np.concatenate([np.ones(D1), 0.09 * np.ones(D2), 1e-4 * np.ones(D - D1 - D2)]))
    sch = make_schedule("ve")
    score = GaussianScore(None, cov, sch)
    t = 0.3
    std = float(np.sqrt(sch.noise_var(t)))
    z = ortho_group.rvs(D, random_state=SEED)
    rows = score(torch.from_numpy(z * std), t).numpy() / std
    sv = np.linalg.svd(rows, compute_uv=False)[1:]
    want = sv / sv.max()
    got = official_probe_spectrum(score, torch.zeros(1, D, dtype=torch.float64), t, seed=SEED)
    np.testing.assert_allclose(got[0], want, rtol=1e-8)


def test_row_estimator_via_config_geometric_official():
    """Rows 'anchor', 'estimator', 'grid' through the command-line job:
    data/configs/geometric_official.toml (protocol ald24, seed 2, origin, fd_spectrum, linear
    grid) stores the official finite-difference singular values, equal to the re-derivation."""
    import tomllib
    from pathlib import Path

    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import geometric, run_in_memory

    path = Path(__file__).resolve().parents[2] / "data/configs/geometric_official.toml"
    cfg = validate(tomllib.loads(path.read_text()), geometric.SCHEMA)
    ds = run_in_memory(geometric, cfg)[1].squeeze()
    np.testing.assert_allclose(ds["tau"].values, np.linspace(0.01, 1, 100), rtol=1e-12)
    fd = ds["fd_singular_value"].sel(anchor="origin")
    y = official_data()
    for i in (0, 40, 99):
        want = official_fd_singular_values(np.zeros((1, D)), y, float(ds["tau"][i]))
        np.testing.assert_allclose(fd.isel(tau=i).values, want, rtol=1e-9)


def test_rows_data_anchor_estimator_grid_are_the_geometric_job_defaults():
    """Rows 'data and generator', 'basis', 'anchor', 'estimator', 'grid', 'noise and its units'
    as the geometric job's DEFAULTS (issue 27): a config naming only N = 1000, seed 2 and the
    empirical score runs the official protocol (generator ald24 by data.protocol = "auto", VE,
    var = linspace(1, 0.01, 100), the exact origin first, the finite-difference estimator), says
    so in its attributes, and stores the official singular values."""
    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import geometric, run_in_memory

    cfg = validate({"job": "geometric", "grid": {"n_train": [N], "seeds": [SEED],
                                                 "score": ["empirical"]}}, geometric.SCHEMA)
    cfg["measure"].update(anchors=["origin"], probe_points=0)  # the official anchor only (speed)
    ds = run_in_memory(geometric, cfg)[1].squeeze()
    assert ds.attrs["protocol"] == "ald24" and ds.attrs["data_protocol"] == "ald24"
    assert ds.attrs["schedule"] == "ve" and str(ds["anchor"].values[0]) == "origin"
    assert str(ds["anchor_protocol"].sel(anchor="origin").values) == "ald24"
    grid = np.linspace(1, 0.01, 100)  # the notebook's sigma_range (looped reversed)
    np.testing.assert_allclose(ds["tau"].values, grid[::-1], rtol=1e-12)
    fd = ds["fd_singular_value"].sel(anchor="origin")
    y = official_data()
    for i in (0, 9, 50, 99):
        want = official_fd_singular_values(np.zeros((1, D)), y, float(grid[::-1][i]))
        np.testing.assert_allclose(fd.isel(tau=i).values, want, rtol=1e-9)
    assert np.all(np.isnan(ds["fd_singular_value"].sel(anchor="train").values))  # not measured
