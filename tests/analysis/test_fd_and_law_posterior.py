"""Finite-difference Jacobian of the official [ALD24] panel, the law's own posterior, float64
Jacobian spectra (issue #27, parts 2 and 4)."""

import numpy as np
import pytest
import torch

from memphase.analysis.dimensions import jacobian_sweep, score_jacobian
from memphase.analysis.law_posterior import law_posterior_variances
from memphase.analysis.probes import finite_difference_jacobian, official_fd_spectrum
from memphase.physics.schedules import make_schedule
from memphase.simulate.data import linear_manifold
from memphase.simulate.scores import EmpiricalScore, GaussianScore


def test_fd_jacobian_exact_for_a_linear_score():
    """A Gaussian score is linear in x: the central secant is its Jacobian to rounding, in any
    basis and for either schedule (data units: -(C + tau I)^{-1})."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T / 6 + 0.1 * np.eye(6)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    for name in ("ou", "ve"):
        sch = make_schedule(name)
        score = GaussianScore(None, cov, sch)
        tau = 0.3
        t = float(sch.time_of_tau(tau))
        x0 = torch.from_numpy(rng.standard_normal((2, 6)))
        want = -np.linalg.inv(cov + tau * np.eye(6))
        got = finite_difference_jacobian(score, x0, t)
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-9, atol=1e-9)
        got_q = finite_difference_jacobian(score, x0[0], t, basis=q)
        np.testing.assert_allclose(got_q, q.T @ want @ q, rtol=1e-9, atol=1e-9)


def test_official_fd_spectrum_post_processing():
    sch = make_schedule("ve")
    score = GaussianScore(None, np.diag(np.arange(1.0, 9.0)), sch)
    t = float(sch.time_of_tau(0.5))
    raw = official_fd_spectrum(score, torch.zeros(8, dtype=torch.float64), t, drop=0,
                               normalize=False)
    np.testing.assert_allclose(raw, np.sort(1.0 / (np.arange(1.0, 9.0) + 0.5))[::-1], rtol=1e-9)
    cut = official_fd_spectrum(score, torch.zeros(8, dtype=torch.float64), t, drop=3)
    np.testing.assert_allclose(cut, raw[3:] / raw[3], rtol=1e-12)
    with pytest.raises(ValueError, match="drop"):
        official_fd_spectrum(score, torch.zeros(8, dtype=torch.float64), t, drop=8)


def test_origin_anchor_rho_is_one_plus_v_over_tau():
    """At the exact origin of unit-sphere data every weight is 1/N: Cov_w is the training-set
    covariance C_N, so rho_u = (u^T C_N u / v_u)(1 + v_u / tau) exactly, at every tau."""
    data = linear_manifold(300, 12, [(2, 1.0), (3, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=1)
    sch = make_schedule("ou")
    taus = np.array([0.003, 0.03, 0.3])
    ds = jacobian_sweep(EmpiricalScore(data, sch), data, taus, n_points=2, seed=0,
                        anchor="origin", spectrum=False)
    y = data.x.numpy()
    cn = np.cov(y.T, bias=True)
    dirs = data.basis[:, np.argsort(data.block, kind="stable")]
    v = data.variances()[np.argsort(data.block, kind="stable")]
    c_u = np.einsum("ik,ij,jk->k", dirs, cn, dirs)
    want = (c_u / v)[None, :] * (1 + v[None, :] / taus[:, None])
    np.testing.assert_allclose(ds.variance_ratio.values[:, 0], want, rtol=1e-7)
    np.testing.assert_allclose(ds.variance_ratio.values[:, 1], want, rtol=1e-7)


def test_law_posterior_gaussian_closed_form():
    """For a Gaussian law (no normalization) the law's posterior variance along a basis direction
    is tau v / (v + tau); the importance-sampling estimate must agree within 5 standard errors,
    and its standard error must be honest (not 100x too small or large)."""
    data = linear_manifold(10, 6, [(2, 1.0), (2, 0.3)], normal_std=0.1, seed=3)
    v = data.variances()
    rng = np.random.default_rng(5)
    u = rng.standard_normal((3, 6)) * np.sqrt(v) @ data.basis.T
    for tau in (0.05, 0.5):
        lp = law_posterior_variances(data.draw, u, tau, data.basis, n_samples=2**17, seed=11)
        want = tau * v / (v + tau)
        z = (lp.variance - want[None, :]) / lp.stderr
        assert np.all(np.abs(z) < 5), z
        assert 0.05 < np.median(np.abs(z)) < 3.0
        assert np.all(lp.ess > 100)


def test_law_posterior_exact_at_origin():
    data = linear_manifold(10, 8, [(2, 1.0), (2, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=0)
    v = data.variances()
    lp = law_posterior_variances(data.draw, np.zeros((2, 8)), 0.01, data.basis, n_samples=64,
                                 seed=0, exact_at_origin=v)
    np.testing.assert_array_equal(lp.variance, np.broadcast_to(v, (2, 8)))
    assert np.all(np.isinf(lp.ess))


def test_law_ratio_tends_to_one_when_n_is_large_at_large_tau():
    """rho_law = empirical / law posterior variance -> 1 where the N-point posterior is resolved
    (tau = 0.5, N = 4000, noisy mean anchor), within 0.1; the Gaussian-normalized rho is not 1
    there for the sphere law."""
    data = linear_manifold(4000, 10, [(2, 1.0), (3, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=0)
    ds = jacobian_sweep(EmpiricalScore(data, make_schedule("ou")), data, [0.5, 1.0], n_points=8,
                        seed=0, anchor="mean", spectrum=False, law_samples=2**15)
    tangent = ds.direction_block.values >= 0
    med = np.median(ds.law_variance_ratio.values[:, :, tangent])
    assert abs(med - 1.0) < 0.1, med
    assert ds.law_variance_ratio.attrs["law_seed"] == 104729


def test_jacobian_sweep_float64_near_a_tie():
    """Probe at the midpoint of two training points, tau = 1e-8 (issue #27 part 4): the weights
    depend on x . (y_1 - y_2) / tau, so rounding the probe point to float32 (relative 6e-8) moved
    them (here rho by 3e-4; up to 17% nearer a tie). The sweep must give the float64 result
    whatever the training set's dtype: a float32 set and its exact float64 copy agree to 1e-9."""
    d64 = linear_manifold(40, 4, [(1, 1.0), (1, 0.3)], normal_std=0.1, seed=0)
    d32 = linear_manifold(40, 4, [(1, 1.0), (1, 0.3)], normal_std=0.1, seed=0, dtype="float32")
    d64.x = d32.x.to(torch.float64)  # the same points, exactly
    y = d64.x.numpy()
    k = np.argsort(((y - y[0]) ** 2).sum(1))[1]  # nearest neighbour of y_0: a true tie
    mid = torch.from_numpy(0.5 * (y[0] + y[k]))[None]
    taus = [1e-8, 1e-7]
    sch = make_schedule("ou")
    out = [jacobian_sweep(EmpiricalScore(dd, sch), dd, taus, anchors=mid, noise_scale=0.0,
                          seed=0).variance_ratio.values for dd in (d64, d32)]
    assert np.all(np.isfinite(out[0]))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-9, atol=1e-12)
    got = score_jacobian(EmpiricalScore(d32, sch), mid.to(torch.float32), 0.5)
    assert got.dtype == torch.float64


def test_signature_fraction_resolved_pairs_only():
    """resolved=True: nan ratios (unresolved law posterior) leave the count; all-nan -> nan."""
    from memphase.analysis.posterior_variance import signature_fraction

    rho = np.array([[[0.1, np.nan, 3.0, 0.2]], [[np.nan, np.nan, np.nan, np.nan]]])
    block = np.array([0, 0, 1, 1])
    got = signature_fraction(rho, block, [0, 1], "collapse", resolved=True)
    np.testing.assert_array_equal(got[0], [1.0, 0.5])
    assert np.all(np.isnan(got[1]))
    plain = signature_fraction(rho, block, [0, 1], "collapse")
    np.testing.assert_array_equal(plain[0], [0.5, 0.5])


def test_validate_origin_rows_gated_and_passing():
    """`memphase validate` [ALD24] official-panel rows: excess onset at the origin / v_b = 1
    within 15%, gated, on seeds 0 and 1 (measured 0.94-1.01)."""
    from memphase.simulate.cli.validate_papers import geometric_origin_checks

    for seed in (0, 1):
        rows = geometric_origin_checks(seed)
        assert len(rows) == 2 and all(c.gated and c.passed for c in rows)
        assert all(abs(c.measured - 1.0) < 0.1 for c in rows)
