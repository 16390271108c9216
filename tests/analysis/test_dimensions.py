"""Tangent dimensions of the score [ALD24]: Jacobians, the probe estimator, per-block collapse."""

import math

import numpy as np
import pytest
import torch

from analysis.dimensions import (block_spectra, critical_tau_per_block, jacobian_spectrum_data_units,
                                 jacobian_sweep, kept_fraction_per_block,
                                 mean_abs_eigenvalue_per_block, predicted_kept_fraction,
                                 predicted_kept_ratio_rem, probe_singular_values, score_jacobian,
                                 tangent_dimensions)
from physics.schedules import GeometricVE, OrnsteinUhlenbeck
from simulate.data import linear_manifold, spectrum_gaussian
from simulate.scores import EmpiricalScore, GaussianScore

from physics.critical import block_collapse_tau

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
    """[ALD24] d = 30, stds 1 (2 dirs), 0.3 (5 dirs), 0.01 (rest), normalized, N = 1000.

    Measured at forward-noised training points, threshold 1/2, critical tau relative to each block's
    peak kept fraction (normalization makes the radial direction lost at every tau). Only the
    ordering is asserted: the measured taus are a broad finite-N crossover and differ from the
    [ALD24] theory (0.072, 0.0065) by factors of 0.5-5 (see the report of analysis/dimensions)."""
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
    if block_collapse_tau is None:  # pragma: no cover
        pytest.skip("TODO: physics.critical.block_collapse_tau not available for the theory check")
    theory = block_collapse_tau(n, [(2, 1.0), (5, 0.3)], normalized=True, rest_std=0.01, d=30)
    np.testing.assert_allclose(ds.critical_tau_theory.sel(block=[0, 1]).values, theory)


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
