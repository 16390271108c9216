"""Reverse samplers against closed forms: covariance reproduced by the population score,
collapse onto the training set by the empirical score."""

import numpy as np
import pytest
import torch

from memphase.physics.schedules import GeometricVE, LinearVP, OrnsteinUhlenbeck
from memphase.simulate.data import isotropic_gaussian, spectrum_gaussian
from memphase.simulate.sampling import default_time_range, sample, time_grid
from memphase.simulate.scores import EmpiricalScore, GaussianScore

OU = OrnsteinUhlenbeck()


@pytest.mark.parametrize("method", ["sde", "ode"])
@pytest.mark.parametrize("schedule", [OU, LinearVP(), GeometricVE()], ids=lambda s: s.name)
def test_population_score_reproduces_covariance(method, schedule, device):
    """20k samples: each entry of the sample covariance within 6 standard errors (plus a small
    discretization allowance) of the data covariance."""
    data = spectrum_gaussian(10, [2.0, 1.0, 0.5, 0.2], seed=1)
    score = GaussianScore(data.mean, data.cov, schedule)
    x = sample(score, schedule, 20000, method=method, steps=300, seed=4, device=device).cpu().numpy()
    cov = np.cov(x.T)
    c = data.cov
    se = np.sqrt((c**2 + np.outer(np.diag(c), np.diag(c))) / x.shape[0])  # Wishart std of entries
    assert np.all(np.abs(cov - c) < 6 * se + 0.02 * np.abs(c).max()), np.abs(cov - c).max()
    assert np.abs(x.mean(0)).max() < 6 * np.sqrt(2.0 / x.shape[0]) + 0.01


@pytest.mark.parametrize("method", ["sde", "ode"])
def test_empirical_score_collapses_population_does_not(method, device):
    from memphase.analysis.memorization import collapse_fraction

    data = isotropic_gaussian(8, 10, seed=7)
    emp = sample(EmpiricalScore(data, OU), OU, 500, method=method, steps=200, seed=1, device=device)
    assert emp.device.type == device.type
    assert collapse_fraction(emp, data, tol=1e-2) == 1.0
    pop = sample(GaussianScore(data.mean, data.cov, OU), OU, 500, method=method, steps=200, seed=1,
                 device=device)
    assert collapse_fraction(pop, data, tol=1e-2) < 0.01


def test_heun_agrees_with_rk45():
    data = spectrum_gaussian(5, [1.5, 0.3, 0.05], seed=0)
    score = GaussianScore(data.mean, data.cov, OU)
    x0 = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = sample(score, OU, 50, method="ode", steps=400, t_min=1e-3, x_init=x0)
    b = sample(score, OU, 50, method="rk45", t_min=1e-3, x_init=x0, rtol=1e-9, atol=1e-11)
    assert torch.allclose(a, b, atol=1e-4)


def test_sampling_is_reproducible_and_seed_dependent(device):
    data = isotropic_gaussian(20, 4, seed=0)
    s = EmpiricalScore(data, OU)
    a = sample(s, OU, 30, steps=50, seed=3, device=device)
    assert torch.equal(a, sample(s, OU, 30, steps=50, seed=3, device=device))
    assert not torch.equal(a, sample(s, OU, 30, steps=50, seed=4, device=device))


def test_observers_see_recording_steps_and_final_state():
    seen = []
    data = isotropic_gaussian(20, 4, seed=0)
    sample(EmpiricalScore(data, OU), OU, 10, steps=40, record=5, observers=[seen.append])
    assert [st["step"] for st in seen] == [0, 10, 20, 29, 39, 40]
    assert seen[-1]["final"] and "x0" in seen[-1]
    assert all(st["stats"] is not None for st in seen)
    assert np.all(np.diff([st["t"] for st in seen]) < 0)


def test_time_grid_is_dense_near_t_min():
    ts = time_grid(OU, 100, 5.0, 1e-4)
    assert ts[0] == 5.0 and ts[-1] == 1e-4 and np.all(np.diff(ts) < 0)
    assert abs(ts[-2] - ts[-1]) < abs(ts[0] - ts[1])
    t_max, t_min = default_time_range(OU)
    assert OU.tau(t_max) == pytest.approx(1e4) and OU.tau(t_min) == pytest.approx(1e-6)


def test_bad_input():
    data = isotropic_gaussian(5, 3, seed=0)
    s = EmpiricalScore(data, OU)
    with pytest.raises(ValueError, match="unknown method"):
        sample(s, OU, 5, method="leapfrog")
    with pytest.raises(ValueError, match="t_max must exceed t_min"):
        sample(s, OU, 5, t_max=0.1, t_min=0.2)
    with pytest.raises(ValueError, match="time out of range"):
        sample(s, LinearVP(), 5, t_max=2.0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        sample(s, OU, 5, steps=0)
    with pytest.raises(ValueError, match=r"x_init must have shape \(n, 3\)"):
        sample(s, OU, 5, x_init=torch.zeros(5, 4))
