import numpy as np
import pytest

import math

from scipy.integrate import quad

from memphase.physics.schedules import (ExponentialVE, GeometricVE, LinearVP, OrnsteinUhlenbeck,
                               ddpm_to_ou_times, make_schedule)

SCHEDULES = [OrnsteinUhlenbeck(), LinearVP(), GeometricVE(), LinearVP(0.1, 20.0),
             GeometricVE(0.002, 80.0, t_min=-0.5), ExponentialVE(), ExponentialVE(5.0, 2.0)]


def _times(s, k=41):
    hi = 6.0 if not np.isfinite(s.t_hi) else s.t_hi
    return np.linspace(max(s.t_lo, 1e-3 if s.t_lo == 0 else s.t_lo), hi, k)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_time_of_tau_inverts_tau(s):
    t = _times(s)
    np.testing.assert_allclose(s.time_of_tau(s.tau(t)), t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_tau_is_noise_over_signal(s):
    t = _times(s)
    np.testing.assert_allclose(s.tau(t), s.noise_var(t) / s.mean_scale(t) ** 2, rtol=1e-12)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_sde_coefficients_generate_the_kernel(s):
    """d m/dt = f m and d sigma^2/dt = 2 f sigma^2 + g^2 (moment equations of the linear SDE)."""
    t = _times(s)[1:-1]
    h = 1e-6
    dm = (s.mean_scale(t + h) - s.mean_scale(t - h)) / (2 * h)
    dv = (s.noise_var(t + h) - s.noise_var(t - h)) / (2 * h)
    np.testing.assert_allclose(dm, s.drift_coef(t) * s.mean_scale(t), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dv, 2 * s.drift_coef(t) * s.noise_var(t) + s.diffusion_sq(t),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("s", [OrnsteinUhlenbeck(), LinearVP(), GeometricVE(0.01, 5.0)], ids=repr)
def test_simulated_forward_marginals_match_kernel(s):
    """Euler-Maruyama on dx = f x dt + g dB from x0 = 2 reproduces mean m x0 and variance sigma^2."""
    rng = np.random.default_rng(0)
    t_end = 1.0 if not np.isfinite(s.t_hi) else s.t_hi
    steps, n = 2000, 40000
    ts = np.linspace(s.t_lo, t_end, steps + 1)
    x = np.full(n, 2.0)
    for k in range(steps):
        h = ts[k + 1] - ts[k]
        x = x + s.drift_coef(ts[k]) * x * h + np.sqrt(s.diffusion_sq(ts[k]) * h) * rng.standard_normal(n)
    m, v = 2.0 * s.mean_scale(t_end), s.noise_var(t_end) - s.noise_var(s.t_lo) * s.mean_scale(t_end) ** 2 / s.mean_scale(s.t_lo) ** 2
    se = np.sqrt(v / n)
    assert abs(x.mean() - m) < 5 * se + 1e-3 * abs(m)
    assert abs(x.var() / v - 1) < 0.03


def test_ou_closed_forms():
    s = OrnsteinUhlenbeck()
    t = np.array([0.1, 1.0, 3.0])
    np.testing.assert_allclose(s.tau(t), np.exp(2 * t) - 1)
    np.testing.assert_allclose(s.noise_var(t), 1 - np.exp(-2 * t))


def test_ddpm_mapping_matches_alphabar():
    t = ddpm_to_ou_times()
    betas = np.linspace(1e-4, 2e-2, 1000)
    np.testing.assert_allclose(np.exp(-2 * t), np.cumprod(1 - betas), rtol=1e-10)
    assert np.all(np.diff(t) > 0)


def test_bad_input():
    with pytest.raises(ValueError, match="time out of range"):
        LinearVP().tau(1.5)
    with pytest.raises(ValueError, match="time out of range"):
        OrnsteinUhlenbeck().mean_scale(-0.1)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        OrnsteinUhlenbeck().time_of_tau(-1.0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        GeometricVE(1.0, 0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("cosine")
    with pytest.raises(ValueError, match="NaN"):
        OrnsteinUhlenbeck().tau(np.nan)


def test_bdkos25_ve_closed_form_and_integral_of_g2():
    """[BDKOS25] official VE: g = 10^t, sigma^2 = (10^{2t} - 1) / (2 ln 10) = int_0^t g^2 ds, m = 1."""
    s = make_schedule("ve_bdkos25")
    assert isinstance(s, ExponentialVE) and (s.t_lo, s.t_hi) == (0.0, 1.0)
    t = np.array([0.0, 1e-6, 1e-3, 0.1, 0.5, 1.0])
    closed = (10.0 ** (2 * t) - 1) / (2 * math.log(10))
    np.testing.assert_allclose(s.noise_var(t), closed, rtol=1e-9, atol=0)
    np.testing.assert_allclose(s.diffusion(t), 10.0**t, rtol=1e-14)
    integral = [quad(lambda u: 10.0 ** (2 * u), 0, tk, epsabs=0, epsrel=1e-13)[0] for tk in t]
    np.testing.assert_allclose(s.noise_var(t), integral, rtol=1e-11, atol=1e-300)
    np.testing.assert_array_equal(s.mean_scale(t), 1.0)
    np.testing.assert_array_equal(s.tau(t), s.noise_var(t))
    assert math.sqrt(float(s.noise_var(1.0))) == pytest.approx(math.sqrt(99 / (2 * math.log(10))), rel=1e-14)
    assert math.sqrt(float(s.noise_var(1.0))) == pytest.approx(4.6365, abs=1e-4)
    # small t: sigma^2 = t (1 + t ln 10 + ...); the end time 1e-6 of the c = 0 runs gives 1e-6
    assert float(s.noise_var(1e-6)) == pytest.approx(1e-6, rel=3e-6)
    # inverse, including tau = 0 -> t = 0
    np.testing.assert_allclose(s.time_of_tau(s.tau(t)), t, rtol=1e-12, atol=1e-15)
    assert s.to_dict() == {"name": "ve_bdkos25", "base": 10.0, "t_max": 1.0}
    assert make_schedule(**s.to_dict()) == s
    with pytest.raises(ValueError, match="base > 1"):
        ExponentialVE(base=1.0)
    with pytest.raises(ValueError, match="time out of range"):
        s.noise_var(1.5)
