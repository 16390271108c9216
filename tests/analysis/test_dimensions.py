"""Tangent dimensions of the score [ALD24]: Jacobians, the probe estimator, per-block collapse."""

import math

import numpy as np
import pytest
import torch

from memphase.analysis.dimensions import (block_spectra, critical_tau_per_block, jacobian_spectrum_data_units,
                                 jacobian_sweep, kept_fraction_per_block,
                                 mean_abs_eigenvalue_per_block, predicted_kept_fraction,
                                 predicted_kept_ratio_rem, probe_singular_values, score_jacobian,
                                 tangent_dimensions)
from memphase.physics.schedules import GeometricVE, OrnsteinUhlenbeck
from memphase.simulate.data import linear_manifold, spectrum_gaussian
from memphase.simulate.scores import EmpiricalScore, GaussianScore

from memphase.physics.critical import block_collapse_tau

OU = OrnsteinUhlenbeck()



def _small_empirical(n=12, d=6, seed=0):
    data = spectrum_gaussian(n, np.linspace(0.3, 2.0, d), seed=seed)
    return data, EmpiricalScore(data, OU)


def test_exact_empirical_jacobian_equals_autograd():
    data, score = _small_empirical()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, data.d, generator=g, dtype=torch.float64)
    for t in (0.05, 0.4):  # peaked and broad softmax weights
        exact = score_jacobian(score, x, t, method="exact")
        auto = score_jacobian(score, x, t, method="autograd")
        assert exact.shape == (5, data.d, data.d)
        torch.testing.assert_close(auto, exact, rtol=1e-9, atol=1e-9)
    # per-sample times go through the same path
    tt = torch.linspace(0.05, 0.5, 5, dtype=torch.float64)
    torch.testing.assert_close(score_jacobian(score, x, tt, method="autograd"),
                               score_jacobian(score, x, tt, method="exact"), rtol=1e-9, atol=1e-9)


def test_population_spectrum_in_data_units_is_minus_one_over_tau_plus_variance():
    var = np.array([2.0, 1.0, 0.25, 0.01])
    data = spectrum_gaussian(3, var, seed=3)
    for schedule, t in ((OU, 0.7), (GeometricVE(), 0.3)):
        score = GaussianScore(data.mean, data.cov, schedule)
        tau = float(schedule.tau(t))
        x = torch.randn(4, 4, dtype=torch.float64)
        eig = jacobian_spectrum_data_units(score, x, t)
        np.testing.assert_allclose(eig, np.tile(np.sort(-1.0 / (tau + var)), (4, 1)), rtol=1e-10)


@pytest.mark.parametrize("kind", ["population", "empirical"])
def test_probe_estimator_matches_exact_jacobian_singular_values(kind):
    """Antithetic, K = d orthonormal probes: the stack has singular values sigma_p^2 svals(J_x)
    up to O(sigma_p^2) (exact for the linear population score). Tolerance: 1e-9 relative
    (population), 1e-4 relative with sigma_p = 1e-3 sigma(t) (empirical)."""
    data, score = _small_empirical(n=20, d=6, seed=4)
    if kind == "population":
        score = GaussianScore(data.mean, data.cov, OU)
    t = 0.3
    x0 = data.x[:3] * float(OU.mean_scale(t))
    ref = torch.linalg.svdvals(score_jacobian(score, x0, t)).numpy()
    sig = math.sqrt(float(OU.noise_var(t))) * (1.0 if kind == "population" else 1e-3)
    sv = probe_singular_values(score, x0, sig, t, k=data.d, seed=0) / sig**2
    np.testing.assert_allclose(sv, ref, rtol=1e-9 if kind == "population" else 1e-4)
    # default probe scale sigma(t): values are tau |lambda_data| = tau / (tau + s^2) (population)
    if kind == "population":
        tau = float(OU.tau(t))
        sv1 = probe_singular_values(score, x0[0], None, t, seed=1)
        var = np.linalg.eigvalsh(data.cov)
        np.testing.assert_allclose(np.sort(sv1), np.sort(tau / (tau + var)), rtol=1e-9)
    # fewer probes than d: compressed spectrum, interlaced below the full one
    few = probe_singular_values(score, x0[0], sig, t, k=3, seed=0) / sig**2
    assert few.shape == (3,) and np.all(few <= ref[0][:3] * (1 + 1e-6))


def test_block_spectra_recovers_population_block_eigenvalues():
    data = linear_manifold(5, 10, [(2, 1.0), (3, 0.3)], normal_std=0.05, seed=2)
    score = GaussianScore(data.mean, data.cov, OU)
    t = 0.02
    tau = float(OU.tau(t))
    jac = float(OU.mean_scale(t)) ** 2 * score_jacobian(score, data.x[:2], t)
    spec = block_spectra(jac, data.basis, data.block)
    assert sorted(spec) == [-1, 0, 1]
    for b, s in ((0, 1.0), (1, 0.3), (-1, 0.05)):
        np.testing.assert_allclose(spec[b], -1.0 / (tau + s**2), rtol=1e-10)


def test_population_score_keeps_every_dimension_down_to_tiny_tau():
    """tau down to 1e-4 min s^2 (normal std included: its r = s^2/(tau+s^2) ~ 1 - 1e-4)."""
    data = linear_manifold(5, 12, [(3, 1.0), (4, 0.3)], normal_std=0.05, seed=5)
    score = GaussianScore(data.mean, data.cov, OU)
    x = data.x * 1.0
    for tau in (1e-1 * 0.05**2, 1e-4 * 0.05**2):
        t = float(OU.time_of_tau(tau))
        xt = float(OU.mean_scale(t)) * x
        jac = float(OU.mean_scale(t)) ** 2 * score_jacobian(score, xt, t)
        kept = tangent_dimensions(block_spectra(jac, data.basis, data.block), tau)
        for b, k in ((0, 3), (1, 4), (-1, 5)):
            assert np.all(kept[b] == k)


def test_single_training_point_loses_every_direction():
    """N = 1: J_data = -I / tau exactly, so r = 0 for every direction at every tau. Tolerance
    1e-6 relative: the softmax logits are ~|y|^2 / (2 tau) ~ 1e4 at tau = 1e-4, so the single
    weight is 1 only to ~1e4 eps, and Cov_w = E[y y^T] - E[y] E[y]^T cancels at that level."""
    data = linear_manifold(1, 8, [(2, 1.0), (3, 0.3)], normal_std=0.01, seed=6)
    score = EmpiricalScore(data, OU)
    taus = np.geomspace(1e-4, 1e-2, 4)
    ds = jacobian_sweep(score, data, taus, n_points=1, seed=0)
    assert np.all(ds.kept_dims.values == 0)
    np.testing.assert_allclose(ds.eigenvalue.values * ds.tau.values[:, None, None], -1.0,
                               rtol=1e-6)


def test_critical_tau_interpolates_in_log_tau_from_below():
    taus = np.array([1e-3, 1e-2, 1e-1, 1.0])
    frac = np.array([[0.0, 0.0], [0.25, 1.0], [0.75, 1.0], [0.0, 0.2]])  # last row: trivial loss
    tc = critical_tau_per_block(taus, frac)
    np.testing.assert_allclose(tc[0], 10**-1.5, rtol=1e-12)
    np.testing.assert_allclose(tc[1], 10**(-3 + 0.5), rtol=1e-12)
    assert np.isnan(critical_tau_per_block(taus, np.ones(4)))        # never lost on the grid
    assert np.isnan(critical_tau_per_block(taus, np.zeros(4)))       # never kept
    # relative: the level applies to the fraction over its peak (here 0.5 and 0.75 -> 1)
    rel = critical_tau_per_block(taus, np.array([[0.0, 0.0], [0.25, 0.5], [0.5, 0.5], [0.0, 0.1]]),
                                 relative=True)
    np.testing.assert_allclose(rel, [1e-2, 10**-2.5], rtol=1e-12)


def test_two_blocks_higher_variance_block_is_lost_first():
    """[ALD24] d = 30, stds 1 (2 dirs), 0.3 (5 dirs), 0.01 (rest), radius-normalized, N = 1000.

    Measured at forward-noised training points, threshold 1/2, critical tau relative to each block's
    peak kept fraction (normalization makes the radial direction lost at every tau). Only the
    ordering is asserted: the kept-fraction rule at training-point anchors measures the REM
    collapse, a different observable from the [ALD24] per-direction formula (docs/theory.md)."""
    n = 1000
    data = linear_manifold(n, 30, [(2, 1.0), (5, 0.3)], normal_std=0.01, normalize=True, seed=1)
    score = EmpiricalScore(data, OU)
    taus = np.geomspace(1e-3, 0.3, 16)
    ds = jacobian_sweep(score, data, taus, n_points=24, seed=0)
    tc = critical_tau_per_block(ds.tau.values, ds.kept_fraction.values, relative=True)
    blocks = list(ds.block.values)
    tc0, tc1 = tc[blocks.index(0)], tc[blocks.index(1)]
    assert np.isfinite(tc0) and np.isfinite(tc1)
    assert tc0 > tc1
    # every tangent block is fully lost at the smallest tau
    assert np.all(ds.kept_fraction.sel(tau=taus[0]).values <= 0.1)
    assert ds.eigenvalue.attrs["units"] and ds.tau.attrs["long_name"]
    # the stored [ALD24] theory uses the actual variances of the radius-normalized law
    # (0.862, 0.145), not the nominal 1, 0.09: tau_c = v / (2 ln N) = 0.0624, 0.0105
    v = data.variances()
    np.testing.assert_allclose(ds.critical_tau_theory.sel(block=[0, 1]).values,
                               v[[0, 2]] / (2 * math.log(n)), rtol=1e-10)
    np.testing.assert_allclose(ds.critical_tau_theory.sel(block=[0, 1]).values, [0.0624, 0.0105],
                               atol=1e-4)
    nominal = block_collapse_tau(n, [(2, 1.0), (5, 0.3)], normalized=True, rest_std=0.01, d=30)
    assert not np.allclose(ds.critical_tau_theory.sel(block=[0, 1]).values, nominal, rtol=0.1)


def test_kept_fraction_per_block_matches_the_sweep_counts_and_shrinks_with_threshold():
    """Recounting from the stored eigenvalues reproduces jacobian_sweep's own kept_fraction (same
    rule), and a higher threshold can only keep fewer directions (r >= th)."""
    data = linear_manifold(40, 10, [(2, 1.0), (3, 0.3)], normal_std=0.01, normalize=True, seed=7)
    taus = np.geomspace(1e-3, 1.0, 7)
    ds = jacobian_sweep(EmpiricalScore(data, OU), data, taus, n_points=5, seed=1, threshold=0.4)
    blocks = list(ds.block.values)
    args = (ds.eigenvalue.values, taus, ds.direction_block.values, blocks)
    np.testing.assert_allclose(kept_fraction_per_block(*args, 0.4), ds.kept_fraction.values,
                               rtol=1e-12)
    by = kept_fraction_per_block(*args, [0.1, 0.4, 0.9])
    assert by.shape == (3, taus.size, len(blocks))
    assert np.all(np.diff(by, axis=0) <= 0)
    np.testing.assert_allclose(by[1], ds.kept_fraction.values, rtol=1e-12)
    # a block index with no direction gives nan; bad thresholds are rejected
    assert np.all(np.isnan(kept_fraction_per_block(*args[:3], [7], 0.5)))
    with pytest.raises(ValueError, match="thresholds"):
        kept_fraction_per_block(*args, [0.5, 1.0])
    mean_abs = mean_abs_eigenvalue_per_block(ds.eigenvalue.values, ds.direction_block.values, blocks)
    j = blocks.index(-1)
    np.testing.assert_allclose(mean_abs[:, j], np.abs(ds.eigenvalue.values[:, :, :5]).mean(axis=(1, 2)))


def test_population_spectrum_reproduces_predicted_kept_fraction_without_collapse():
    """For the population score (no memorization, tau_c = 0) the measured kept fraction is exactly
    the theory rule s^2 / (tau + s^2) >= threshold, per block, at every tau."""
    data = linear_manifold(5, 9, [(2, 1.0), (3, 0.3)], normal_std=0.05, seed=8)
    taus = np.geomspace(1e-4, 3.0, 15)
    ds = jacobian_sweep(GaussianScore(data.mean, data.cov, OU), data, taus, n_points=3, seed=0)
    var = np.array([0.05, 1.0, 0.3]) ** 2  # blocks -1, 0, 1
    pred = predicted_kept_fraction(taus[:, None], 0.0, var, 0.5)
    np.testing.assert_array_equal(ds.kept_fraction.values, pred)
    # collapse theory: lost below tau_c; nan propagates
    np.testing.assert_array_equal(predicted_kept_fraction([0.01, 0.1], 0.05, 1.0), [0.0, 1.0])
    assert np.isnan(predicted_kept_fraction(0.1, np.nan, 1.0))
    r = predicted_kept_ratio_rem(np.array([0.01, 0.1]), 0.25, 0.05)
    np.testing.assert_allclose(r, [0.0, 0.25 / 0.35])


# -- posterior-variance ratio, signatures, anchors, official probe estimator -------------------
def test_population_score_variance_ratio_is_exactly_one_at_every_anchor():
    """Gaussian law and its population score: Cov[y|x] = tau v / (v + tau) along each basis
    direction, so rho = 1 at every tau, point and anchor; no block carries a signature."""
    data = linear_manifold(30, 9, [(2, 1.0), (3, 0.3)], normal_std=0.05, seed=8)
    score = GaussianScore(data.mean, data.cov, OU)
    taus = np.geomspace(1e-4, 3.0, 9)
    for anchor in ("train", "fresh", "mean"):
        ds = jacobian_sweep(score, data, taus, n_points=4, seed=2, anchor=anchor)
        np.testing.assert_allclose(ds.variance_ratio.values, 1.0, atol=1e-9)
        assert np.all(ds.signature_fraction.values == 0.0)
        assert np.all(np.isnan(ds.critical_tau.values))
        assert ds.critical_tau.dims == ("signature", "block") and ds.attrs["anchor"] == anchor
    # the fresh anchors are not training points; the mean anchors are all the origin
    # (anchor points are reproduced through the same seeded draws as the sweep)
    y = data.draw(4, seed=2 + 7919)
    assert torch.cdist(torch.from_numpy(y), data.x).min() > 1e-3


def test_two_point_dataset_variance_ratio_in_closed_form():
    """N = 2 points +-a e: at the mean anchor without noise the weights are 1/2 each, so
    Cov_w = a^2 along e and 0 elsewhere; with v_e = a^2 (the law of +-a), rho_e = 1 + a^2 / tau,
    which exceeds 2 exactly for tau < a^2: the excess critical tau of e's block brackets a^2.
    Off the mean (anchor = training point, no noise) w_1 = expit(2 a^2 / tau): rho_e =
    4 a^2 w1 w2 (a^2 + tau) / (tau a^2)."""
    from types import SimpleNamespace

    a, d = 0.7, 3
    basis = np.eye(d)
    y = torch.tensor([[a, 0.0, 0.0], [-a, 0.0, 0.0]], dtype=torch.float64)
    data = SimpleNamespace(x=y, basis=basis, block=np.array([0, 1, 1]), mean=np.zeros(d),
                           block_stds=[a, 1.0], params={}, variances=lambda: np.array([a * a, 1.0, 1.0]))
    score = EmpiricalScore(y, OU)
    taus = np.geomspace(0.05, 5.0, 21)
    ds = jacobian_sweep(score, data, taus, n_points=3, seed=0, anchor="mean", noise_scale=0.0)
    rho_e = ds.variance_ratio.values[:, :, 0]
    np.testing.assert_allclose(rho_e, np.broadcast_to((1 + a * a / taus)[:, None], rho_e.shape),
                               rtol=1e-10)
    np.testing.assert_allclose(ds.variance_ratio.values[:, :, 1:], 0.0, atol=1e-12)
    tc = float(ds.critical_tau.sel(signature="excess", block=0))
    k = np.searchsorted(taus, a * a)
    assert taus[k - 1] < tc < taus[k]
    # the other block has Cov_w = 0: rho = 0 < 1/2 at every tau, the collapse holds on the whole grid
    assert np.isinf(float(ds.critical_tau.sel(signature="collapse", block=1)))
    ds = jacobian_sweep(score, data, taus, n_points=1, seed=0, anchors=y[:1], noise_scale=0.0)
    w1 = 1 / (1 + np.exp(-2 * a * a / taus))
    np.testing.assert_allclose(ds.variance_ratio.values[:, 0, 0],
                               4 * a * a * w1 * (1 - w1) * (a * a + taus) / (taus * a * a),
                               rtol=1e-8, atol=1e-12)


def test_fast_empirical_variance_ratio_equals_the_jacobian_route():
    """spectrum=False computes rho from the weights in O(N d); it equals rho from the exact
    Jacobian diagonal (Tweedie) at every anchor."""
    data = linear_manifold(200, 10, [(2, 1.0), (3, 0.3)], normal_std=0.01, normalize="sphere", seed=3)
    score = EmpiricalScore(data, OU)
    taus = np.geomspace(1e-3, 1.0, 6)
    for anchor in ("train", "fresh", "mean"):
        full = jacobian_sweep(score, data, taus, n_points=4, seed=1, anchor=anchor)
        fast = jacobian_sweep(score, data, taus, n_points=4, seed=1, anchor=anchor, spectrum=False)
        np.testing.assert_allclose(fast.variance_ratio.values, full.variance_ratio.values,
                                   rtol=1e-6, atol=1e-9)
        assert "eigenvalue" not in fast and "eigenvalue" in full
        np.testing.assert_array_equal(fast.critical_tau.values, full.critical_tau.values)


def test_signature_critical_tau_rule():
    from memphase.analysis.dimensions import signature_critical_tau

    taus = np.array([1e-3, 1e-2, 1e-1, 1.0])
    frac = np.array([[1.0, 0.0, 1.0], [0.75, 0.0, 1.0], [0.25, 0.6, 1.0], [0.0, 0.0, 1.0]])
    tc = signature_critical_tau(taus, frac)
    np.testing.assert_allclose(tc[0], 10**-1.5, rtol=1e-12)   # 0.75 -> 0.25 between 1e-2, 1e-1
    np.testing.assert_allclose(tc[1], 10**(-1 + 0.1 / 0.6), rtol=1e-12)
    assert np.isinf(tc[2])
    assert np.isnan(signature_critical_tau(taus, np.full(4, 0.5)))  # "more than half"


def test_official_probe_estimator_equals_exact_jacobian_for_a_linear_score():
    """Population score of a Gaussian law is linear, s(x) = A (x - m mu); at x0 = m mu the rows
    s(x0 + sigma z_k)/sigma = A z_k, so the probe singular values are those of A, exactly; the
    official post-processing drops the first and divides by the largest remaining one."""
    from memphase.analysis.dimensions import official_probe_spectrum

    data = spectrum_gaussian(10, [3.0, 1.0, 0.5, 0.2, 0.05], seed=4)
    score = GaussianScore(data.mean, data.cov, OU)
    t = float(OU.time_of_tau(0.1))
    x0 = torch.zeros(2, 5, dtype=torch.float64)
    exact = torch.linalg.svdvals(score_jacobian(score, x0, t)).numpy()
    raw = official_probe_spectrum(score, x0, t, seed=3, drop_first=False, normalize=False)
    np.testing.assert_allclose(raw, exact, rtol=1e-10)
    off = official_probe_spectrum(score, x0[0], t, seed=3)
    np.testing.assert_allclose(off, exact[0, 1:] / exact[0, 1], rtol=1e-10)
    # in the sweep, beside the exact spectrum
    taus = np.geomspace(1e-2, 1.0, 3)
    ds = jacobian_sweep(score, data, taus, n_points=2, seed=0, anchor="mean", noise_scale=0.0,
                        probe_points=1)
    sv = ds.singular_value.values[:, 0]
    np.testing.assert_allclose(ds.probe_singular_value.values[:, 0], sv[:, 1:] / sv[:, 1:2],
                               rtol=1e-8)


def test_jacobian_sweep_bad_input():
    data, score = _small_empirical()
    with pytest.raises(ValueError, match="anchor must be one of"):
        jacobian_sweep(score, data, [0.1, 1.0], anchor="centre")
    with pytest.raises(ValueError, match="probe_points"):
        jacobian_sweep(score, data, [0.1, 1.0], probe_points=-1)
    with pytest.raises(ValueError, match="variances must have shape"):
        jacobian_sweep(score, data, [0.1, 1.0], variances=[1.0])
