"""Tests of physics/gaussian.py: 1-D closed form, Monte Carlo, degenerate supports, bad input."""

import math

import numpy as np
import pytest
from scipy import stats

from memphase.physics.gaussian import kl_gaussians


def _random_spd(rng, k, scale=1.0):
    a = rng.normal(size=(k, k))
    return scale * (a @ a.T / k + 0.3 * np.eye(k))


def test_kl_1d_closed_form():
    for m1, s1, m2, s2 in [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -1.2, 2.0), (5.0, 3.0, 4.0, 0.7)]:
        expected = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
        assert kl_gaussians(m1, s1**2, m2, s2**2) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert kl_gaussians([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(expected, abs=1e-14)


def test_kl_monte_carlo_3d():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=3), rng.normal(size=3)
    c1, c2 = _random_spd(rng, 3), _random_spd(rng, 3, 2.0)
    x = rng.multivariate_normal(mu1, c1, size=300_000)
    llr = stats.multivariate_normal(mu1, c1).logpdf(x)
    llr -= stats.multivariate_normal(mu2, c2).logpdf(x)
    est, se = llr.mean(), llr.std() / math.sqrt(x.shape[0])
    assert abs(kl_gaussians(mu1, c1, mu2, c2) - est) < 5 * se


def test_kl_zero_self_and_rotation_invariant():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    c1, c2 = _random_spd(rng, 5), _random_spd(rng, 5)
    assert kl_gaussians(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    kl = kl_gaussians(mu1, c1, mu2, c2)
    assert kl > 0
    rotated = kl_gaussians(q @ mu1, q @ c1 @ q.T, q @ mu2, q @ c2 @ q.T)
    assert rotated == pytest.approx(kl, rel=1e-10)


def test_kl_degenerate_supports():
    rng = np.random.default_rng(2)
    k, r = 6, 3
    basis = np.linalg.qr(rng.normal(size=(k, k)))[0][:, :r]
    a1, a2 = _random_spd(rng, r), _random_spd(rng, r)
    b1, b2 = rng.normal(size=r), rng.normal(size=r)
    c1_low, c2_low = basis @ a1 @ basis.T, basis @ a2 @ basis.T
    full = _random_spd(rng, k)
    # N1 on a rank-r subspace, N2 full rank: N1 is concentrated on an N2-null set ([H24], N < d)
    assert kl_gaussians(np.zeros(k), c1_low, np.zeros(k), full) == math.inf
    # C2 singular on C1's support
    assert kl_gaussians(np.zeros(k), full, np.zeros(k), c2_low) == math.inf
    # same affine support: KL equals the KL of the r-dimensional coordinates
    kl = kl_gaussians(basis @ b1, c1_low, basis @ b2, c2_low)
    assert kl == pytest.approx(kl_gaussians(b1, a1, b2, a2), rel=1e-8)
    # same subspace but means offset off the support
    off = np.linalg.qr(rng.normal(size=(k, k)))[0][:, 0]
    off -= basis @ (basis.T @ off)
    assert kl_gaussians(basis @ b1 + off, c1_low, basis @ b2, c2_low) == math.inf


@pytest.mark.parametrize(
    "args,match",
    [
        (([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), r"dimension mismatch"),
        (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), r"cov1 must have shape"),
        (([0.0, np.nan], np.eye(2), [0.0, 0.0], np.eye(2)), r"NaN or inf"),
        (([0.0, 0.0], np.eye(2), [0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), r"cov2 is not symmetric"),
        (([0.0, 0.0], np.diag([1.0, -1.0]), [0.0, 0.0], np.eye(2)), r"positive semi-definite"),
        (([0.0, 0.0], np.eye(2), [0.0, 0.0], np.zeros((2, 2))), r"cov2 is zero"),
        (([], np.zeros((0, 0)), [], np.zeros((0, 0))), r"mean1 is empty"),
    ],
)
def test_kl_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        kl_gaussians(*args)
