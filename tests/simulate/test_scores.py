"""Scores against brute force: autograd of the log density and a plain numpy implementation."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from memphase.physics.schedules import GeometricVE, LinearVP, OrnsteinUhlenbeck
from memphase.simulate.data import isotropic_gaussian, spectrum_gaussian
from memphase.simulate.scores import (ConditionalEmpiricalScore, EmpiricalScore, FloorNormalizedScore,
                             GaussianScore, LinearScore, SmoothedScore, TikhonovScore, make_score)

OU = OrnsteinUhlenbeck()
TIMES = [1e-4, 1e-2, 0.3, 1.0, 5.0]


def log_mixture(x, y, m, v):
    """Brute force log (1/N) sum_n N(x; m y_n, v I) in torch (B x N x d differences)."""
    d = x.shape[1]
    sq = ((x[:, None, :] - m * y[None]) ** 2).sum(-1)
    return torch.logsumexp(-sq / (2 * v), 1) - math.log(y.shape[0]) - 0.5 * d * math.log(2 * math.pi * v)


def numpy_empirical_score(x, y, m, v):
    sq = ((x[:, None, :] - m * y[None]) ** 2).sum(-1)
    logw = -sq / (2 * v)
    w = np.exp(logw - logsumexp(logw, axis=1, keepdims=True))
    return (m * w @ y - x) / v


@pytest.fixture(scope="module")
def train():
    return isotropic_gaussian(40, 6, seed=3)


@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("chunk", [None, 7])
def test_empirical_equals_autograd_and_numpy(train, t, chunk, device):
    score = EmpiricalScore(train, OU, chunk=chunk)
    m, v = math.exp(-t), -math.expm1(-2 * t)
    gen = torch.Generator().manual_seed(1)
    # points near the noised data, where the mixture is not trivially one-sided
    x = m * train.x[torch.randint(0, 40, (9,), generator=gen)] + math.sqrt(v) * torch.randn(
        9, 6, generator=gen, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(log_mixture(xr, train.x, m, v).sum(), xr)
    s = score(x.to(device), t).cpu()
    tol = 1e-9 * g.abs().max()
    assert torch.allclose(s, g, atol=float(tol), rtol=1e-9)
    ref = numpy_empirical_score(x.numpy(), train.x.numpy(), m, v)
    np.testing.assert_allclose(s.numpy(), ref, rtol=1e-9, atol=float(tol))
    lp = score.log_density(x.to(device), t).cpu()
    assert torch.allclose(lp, log_mixture(x, train.x, m, v), atol=1e-8, rtol=1e-10)


def test_per_sample_times_equal_scalar_calls(train, device):
    score = EmpiricalScore(train, OU, chunk=5)
    x = torch.randn(5, 6, dtype=torch.float64).to(device)
    t = torch.tensor([1e-3, 0.1, 0.5, 1.0, 3.0], dtype=torch.float64).to(device)
    s = score(x, t)
    for i in range(5):
        assert torch.allclose(s[i], score(x[i:i + 1], float(t[i]))[0], rtol=1e-12, atol=1e-12)


def test_nearest_index_from_kernel_is_nearest_training_point(train, device):
    score = EmpiricalScore(train, OU, chunk=6)
    x = torch.randn(30, 6, dtype=torch.float64)
    t = 0.2
    score(x.to(device), t)
    brute = torch.cdist(x / math.exp(-t), train.x).argmin(1)
    assert torch.equal(score.last_stats.nearest.cpu(), brute)


@pytest.mark.parametrize("t", [1e-3, 0.1, 1.0])
def test_empirical_jacobian_equals_autograd(train, t, device):
    score = EmpiricalScore(train, OU, chunk=11)
    m, v = math.exp(-t), -math.expm1(-2 * t)
    x = m * train.x[:4] + math.sqrt(v) * torch.randn(4, 6, dtype=torch.float64)
    jac = torch.func.vmap(torch.func.hessian(lambda z: log_mixture(z[None], train.x, m, v)[0]))(x)
    got = score.jacobian(x.to(device), t).cpu()
    assert torch.allclose(got, jac, rtol=1e-8, atol=1e-8 * float(jac.abs().max()))


def test_float32_small_t_large_d_is_finite():
    data = isotropic_gaussian(300, 512, seed=0, dtype="float32")
    score = EmpiricalScore(data, OU, chunk=64)
    m, v = math.exp(-1e-5), -math.expm1(-2e-5)
    x = m * data.x[:16] + math.sqrt(v) * torch.randn(16, 512)
    for t in (1e-5, 1e-3, 1.0):
        s = score(x, t)
        assert s.dtype == torch.float32 and torch.isfinite(s).all()
    assert torch.isfinite(score.jacobian(x[:2], 1e-5)).all()


@pytest.mark.parametrize("schedule", [OU, LinearVP(), GeometricVE()], ids=lambda s: s.name)
def test_population_score_equals_autograd(schedule, device):
    data = spectrum_gaussian(10, [3.0, 1.0, 0.5, 0.1], seed=2)
    mean = np.array([0.5, -1.0, 0.0, 2.0])
    score = GaussianScore(mean, data.cov, schedule)
    for t in (0.05, 0.5, 0.9):
        m, v = float(schedule.mean_scale(t)), float(schedule.noise_var(t))
        cov = torch.tensor(m * m * data.cov + v * np.eye(4))
        dist = torch.distributions.MultivariateNormal(m * torch.tensor(mean), covariance_matrix=cov)
        x = torch.randn(7, 4, dtype=torch.float64).requires_grad_(True)
        (g,) = torch.autograd.grad(dist.log_prob(x).sum(), x)
        xd = x.detach().to(device)
        assert torch.allclose(score(xd, t).cpu(), g, rtol=1e-10, atol=1e-10)
        assert torch.allclose(score.log_density(xd, t).cpu(), dist.log_prob(x.detach()), atol=1e-10)
        jac = score.jacobian(xd[:2], t).cpu()
        assert torch.allclose(jac[0], -torch.linalg.inv(cov), rtol=1e-10, atol=1e-12)


def test_linear_score_uses_empirical_moments(train):
    lin = LinearScore(train, OU)
    y = train.x.numpy()
    cov = np.cov(y.T, bias=True)
    ref = GaussianScore(y.mean(0), cov, OU)
    x = torch.randn(5, 6, dtype=torch.float64)
    assert torch.allclose(lin(x, 0.3), ref(x, 0.3), rtol=1e-12)


def test_tikhonov_and_smoothed_against_brute_force(train, device):
    x = torch.randn(6, 6, dtype=torch.float64)
    xd = x.to(device)
    t, c, s2s = 0.05, 0.01, 0.02
    m, v = math.exp(-t), -math.expm1(-2 * t)
    y = train.x.numpy()
    tik = TikhonovScore(train, OU, c)(xd, t).cpu().numpy()
    np.testing.assert_allclose(tik, numpy_empirical_score(x.numpy(), y, m, v) * v / (v + c), rtol=1e-10)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(log_mixture(xr, train.x, m, v + m * m * s2s).sum(), xr)
    assert torch.allclose(SmoothedScore(train, OU, s2s)(xd, t).cpu(), g, rtol=1e-10, atol=1e-10)
    assert torch.allclose(TikhonovScore(train, OU, 0.0)(xd, t), EmpiricalScore(train, OU)(xd, t))


def test_floor_normalized_score_is_gradient_of_floored_log_mass(train, device):
    t = 0.01
    m, v = math.exp(-t), -math.expm1(-2 * t)
    x = torch.cat([m * train.x[:3] + 0.05 * torch.randn(3, 6, dtype=torch.float64),
                   torch.randn(3, 6, dtype=torch.float64) * 5])  # near data and far from it
    floor = 1e-3
    xr = x.clone().requires_grad_(True)
    lse = torch.logsumexp(-((xr[:, None] - m * train.x[None]) ** 2).sum(-1) / (2 * v), 1)
    (g,) = torch.autograd.grad(torch.clamp(lse, min=math.log(floor)).sum(), xr)
    got = FloorNormalizedScore(train, OU, floor)(x.to(device), t).cpu()
    assert torch.allclose(got, g, rtol=1e-8, atol=1e-10)
    assert got[3:].abs().max() < 1e-6  # far from data: mass below the floor, score ~ 0


def test_conditional_score_is_empirical_score_of_class(device):
    y = isotropic_gaussian(30, 4, seed=5)
    labels = torch.arange(30) % 3
    cond = ConditionalEmpiricalScore(y, labels, OU)
    x = torch.randn(9, 4, dtype=torch.float64).to(device)
    lab = torch.tensor([0, 1, 2] * 3).to(device)
    got = cond(x, 0.1, lab)
    for c in range(3):
        ref = EmpiricalScore(y.x[labels == c], OU)(x[lab == c], 0.1)
        assert torch.allclose(got[lab == c], ref)
    assert torch.allclose(cond.given(lab)(x, 0.1), got)


def test_bad_input(train):
    score = EmpiricalScore(train, OU)
    with pytest.raises(ValueError, match="dimension 5 but the score expects d = 6"):
        score(torch.randn(3, 5, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match=r"shape \(B, d\)"):
        score(torch.randn(6, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="time out of range"):
        score(torch.randn(3, 6, dtype=torch.float64), -1.0)
    with pytest.raises(ValueError, match="noise variance is zero"):
        score(torch.randn(3, 6, dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        TikhonovScore(train, OU, -1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianScore(None, -np.eye(3), OU)
    with pytest.raises(ValueError, match="needs Gaussian data"):
        from memphase.simulate.data import linear_manifold
        make_score("population", linear_manifold(5, 4, [(2, 1.0)], normalize=True), OU)
    with pytest.raises(ValueError, match="unknown score"):
        make_score("magic", train, OU)
