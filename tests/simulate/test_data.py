import numpy as np
import pytest
import torch

from simulate.data import (gaussian_mixture, isotropic_gaussian, linear_manifold, make_data,
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
    assert m.cov is None


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
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
