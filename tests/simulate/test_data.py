import numpy as np
import pytest
import torch

from memphase.simulate.data import (gaussian_mixture, isotropic_gaussian, linear_manifold, make_data,
                           spectrum_gaussian)


def test_isotropic_moments_and_reproducibility():
    a = isotropic_gaussian(20000, 5, variance=2.0, seed=1)
    assert a.x.shape == (20000, 5) and a.x.dtype == torch.float64
    np.testing.assert_allclose(np.cov(a.x.numpy().T), 2.0 * np.eye(5), atol=6 * 2.0 * np.sqrt(2 / 20000))
    assert torch.equal(a.x, isotropic_gaussian(20000, 5, variance=2.0, seed=1).x)
    assert not torch.equal(a.x, isotropic_gaussian(20000, 5, variance=2.0, seed=2).x)
    assert isotropic_gaussian(3, 2, dtype="float32").x.dtype == torch.float32


def test_spectrum_covariance():
    var = [4.0, 1.0, 0.25]
    s = spectrum_gaussian(40000, var, seed=3)
    np.testing.assert_allclose(np.linalg.eigvalsh(s.cov), sorted(var), rtol=1e-12)
    np.testing.assert_allclose(np.cov(s.x.numpy().T), s.cov, atol=0.1)
    np.testing.assert_allclose(s.variances(), var, rtol=1e-10)


def test_linear_manifold_blocks():
    m = linear_manifold(20000, 12, [(2, 1.0), (3, 0.3)], normal_std=0.01, seed=0)
    np.testing.assert_allclose(m.basis.T @ m.basis, np.eye(12), atol=1e-12)
    proj = m.x.numpy() @ m.basis
    v = proj.var(0)
    np.testing.assert_allclose(v[:2], 1.0, rtol=0.05)
    np.testing.assert_allclose(v[2:5], 0.09, rtol=0.05)
    np.testing.assert_allclose(v[5:], 1e-4, rtol=0.05)
    assert list(m.block) == [0, 0, 1, 1, 1] + [-1] * 7
    assert m.block_basis(1).shape == (12, 3)


def test_normalized_manifold_has_constant_norm():
    m = linear_manifold(500, 30, [(2, 1.0), (5, 0.3)], normalize=True, seed=0)
    norms = torch.linalg.vector_norm(m.x, dim=1)
    assert torch.allclose(norms, torch.full_like(norms, np.sqrt(2 + 5 * 0.09)))
    assert m.cov is None and m.params["normalize"] == "radius"  # True means "radius"
    r = linear_manifold(500, 30, [(2, 1.0), (5, 0.3)], normalize="radius", seed=0)
    assert torch.equal(r.x, m.x)
    s = linear_manifold(500, 30, [(2, 1.0), (5, 0.3)], normalize="sphere", seed=0)
    torch.testing.assert_close(torch.linalg.vector_norm(s.x, dim=1), torch.ones(500, dtype=s.x.dtype))
    torch.testing.assert_close(s.x * np.sqrt(2 + 5 * 0.09), m.x)


ALD = dict(d=30, blocks=[(2, 1.0), (5, 0.3)], normal_std=0.01)


@pytest.mark.parametrize("normalize, expected", [
    ("sphere", (0.3516, 0.0590)),   # [ALD24] setting on the unit sphere (official code)
    ("radius", (0.8622, 0.1447)),   # rescaled to radius sqrt(sum s^2)
])
def test_normalized_manifold_actual_variances_match_brute_force(normalize, expected):
    """variances() is the law's actual per-direction variance (not the nominal 1, 0.09): the
    exact quadrature agrees with a brute-force estimate from 4e5 independent draws made here."""
    m = linear_manifold(10, normalize=normalize, seed=3, **ALD)
    v = m.variances()
    np.testing.assert_allclose(v[[0, 2]], expected, atol=2e-4)
    rng = np.random.default_rng(99)
    stds = np.r_[np.ones(2), np.full(5, 0.3), np.full(23, 0.01)]
    z = rng.standard_normal((400_000, 30)) * stds
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    if normalize == "radius":
        z *= np.sqrt(np.sum(stds**2))
    brute = (z**2).mean(0)  # mean 0 by symmetry
    se = np.sqrt(((z**2).var(0)) / z.shape[0])
    assert np.all(np.abs(v - brute) < 5 * se + 1e-12)
    # the same law drawn through DataSample.draw (same basis) and the Monte Carlo path
    np.testing.assert_allclose(m.variances(method="monte_carlo")[[0, 2]], v[[0, 2]], rtol=0.01)
    y = m.draw(1000, seed=1) @ m.basis
    assert np.allclose(np.linalg.norm(y, axis=1), np.sqrt(v.sum()))
    if normalize == "sphere":
        assert abs(v.sum() - 1.0) < 1e-9


def test_variances_are_exact_for_gaussian_and_mixture_laws():
    m = linear_manifold(10, seed=0, **ALD)
    np.testing.assert_allclose(m.variances(), np.r_[np.ones(2), np.full(5, 0.09), np.full(23, 1e-4)],
                               rtol=1e-10)
    g = gaussian_mixture(10, 8, spread=0.5, seed=0)
    np.testing.assert_allclose(g.variances(), np.r_[8 + 0.25, np.full(7, 0.25)], rtol=1e-12)
    np.testing.assert_allclose(g.variances(method="monte_carlo"), g.variances(), rtol=0.02)
    # fresh draws of a Gaussian law have its covariance
    y = m.draw(50_000, seed=4) @ m.basis
    np.testing.assert_allclose(y.var(0)[:7], m.variances()[:7], rtol=0.05)


def test_mixture_labels_and_centers():
    g = gaussian_mixture(4000, 64, seed=0)
    c = torch.tensor(g.params["centers"], dtype=torch.float64)
    assert abs(float(c.norm()) ** 2 - 64) < 1e-9
    proj = g.x @ c / c.norm()
    sign = 1 - 2 * g.labels
    assert torch.allclose((proj * sign).mean(), torch.tensor(8.0, dtype=torch.float64), atol=0.1)


@pytest.mark.parametrize("call, msg", [
    (lambda: isotropic_gaussian(10, 3, variance=-1.0), "variance must be positive"),
    (lambda: isotropic_gaussian(0, 3), "n must be a positive integer"),
    (lambda: spectrum_gaussian(10, [1.0, -0.5]), "variances must be positive"),
    (lambda: linear_manifold(10, 4, [(5, 1.0)]), "more than d = 4"),
    (lambda: linear_manifold(10, 4, [(2, -1.0)]), "std must be positive"),
    (lambda: linear_manifold(10, 4, [(2, 1.0)], normal_std=-1), "normal_std must be >= 0"),
    (lambda: isotropic_gaussian(10, 3, seed=-1), "seed must be a non-negative integer"),
    (lambda: make_data("swiss_roll", n=3), "unknown data model"),
    (lambda: linear_manifold(10, 4, [(2, 1.0)], normalize="ball"), "normalize must be"),
    (lambda: isotropic_gaussian(3, 2).variances(method="exact"), "method must be"),
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
