"""Forward noising schedules and their common data-scale noise variance tau.

A schedule gives the perturbation kernel x_t | x_0 ~ N(m(t) x_0, sigma(t)^2 I) of the forward SDE
dx = f(t) x dt + g(t) dB (docs/theory.md, Conventions). Every schedule maps to the data-scale noise
variance tau(t) = sigma(t)^2 / m(t)^2, the variance of the VE process x_t / m(t); theory is written
in tau, and `time_of_tau` maps it back to the schedule's own time.

All methods are vectorized over t (or tau) and return float64 numpy arrays (0-d for scalars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Schedule",
    "OrnsteinUhlenbeck",
    "LinearVP",
    "GeometricVE",
    "ExponentialVE",
    "ddpm_to_ou_times",
    "make_schedule",
    "SCHEDULES",
]


def _as_f64(t) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise ValueError("time contains NaN")
    return arr


class Schedule:
    """Base class: subclasses define `mean_scale`, `noise_var`, `drift_coef`, `diffusion_sq`,
    `time_of_tau`, and the valid time interval [t_lo, t_hi]."""

    name: str = "schedule"
    t_lo: float = 0.0
    t_hi: float = math.inf

    # -- interface -------------------------------------------------------------------------
    def mean_scale(self, t):
        """m(t) in x_t = m(t) x_0 + sigma(t) z."""
        raise NotImplementedError

    def noise_var(self, t):
        """sigma(t)^2 in x_t = m(t) x_0 + sigma(t) z."""
        raise NotImplementedError

    def drift_coef(self, t):
        """f(t) in the forward SDE dx = f(t) x dt + g(t) dB."""
        raise NotImplementedError

    def diffusion_sq(self, t):
        """g(t)^2 in the forward SDE dx = f(t) x dt + g(t) dB."""
        raise NotImplementedError

    def time_of_tau(self, tau):
        """Inverse of `tau`: the schedule time at which sigma^2/m^2 = tau."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def tau(self, t):
        """Data-scale noise variance tau(t) = sigma(t)^2 / m(t)^2 (docs/theory.md, Conventions)."""
        t = self.check_time(t)
        return self.noise_var(t) / self.mean_scale(t) ** 2

    def diffusion(self, t):
        """g(t), the diffusion coefficient."""
        return np.sqrt(self.diffusion_sq(t))

    def check_time(self, t) -> np.ndarray:
        """Return t as float64, raising ValueError if any value lies outside [t_lo, t_hi]."""
        arr = _as_f64(t)
        if np.any(arr < self.t_lo) or np.any(arr > self.t_hi):
            lo, hi = float(np.min(arr)), float(np.max(arr))
            raise ValueError(
                f"time out of range for {self.name} schedule: got [{lo:g}, {hi:g}], "
                f"valid interval is [{self.t_lo:g}, {self.t_hi:g}]"
            )
        return arr

    def _snap_time(self, t) -> np.ndarray:
        """Snap round-off just outside [t_lo, t_hi] (from inverting tau) onto the bounds, then check."""
        t = np.asarray(t, dtype=np.float64)
        eps = 1e-9
        t = np.where(np.abs(t - self.t_lo) <= eps * (1 + abs(self.t_lo)), self.t_lo, t)
        if np.isfinite(self.t_hi):
            t = np.where(np.abs(t - self.t_hi) <= eps * (1 + abs(self.t_hi)), self.t_hi, t)
        return self.check_time(t)

    def check_tau(self, tau) -> np.ndarray:
        arr = _as_f64(tau)
        if np.any(arr < 0):
            raise ValueError(f"tau must be >= 0, got min {float(np.min(arr)):g}")
        return arr

    def tau_range(self) -> tuple[float, float]:
        """(tau(t_lo), tau(t_hi)) for finite bounds."""
        return float(self.tau(self.t_lo)), float(self.tau(self.t_hi))

    def to_dict(self) -> dict:
        """Parameters for provenance (`make_schedule(**d)` rebuilds the schedule)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({args})"


class OrnsteinUhlenbeck(Schedule):
    """VP / Ornstein-Uhlenbeck process of [BBDM24]: dx = -x dt + sqrt(2) dB.

    m = e^{-t}, sigma^2 = Delta_t = 1 - e^{-2t}, tau = e^{2t} - 1, t(tau) = (1/2) log(1 + tau).
    """

    name = "ou"
    t_lo = 0.0
    t_hi = math.inf

    def mean_scale(self, t):
        return np.exp(-self.check_time(t))

    def noise_var(self, t):
        return -np.expm1(-2.0 * self.check_time(t))

    def tau(self, t):
        return np.expm1(2.0 * self.check_time(t))

    def drift_coef(self, t):
        return np.full_like(self.check_time(t), -1.0)

    def diffusion_sq(self, t):
        return np.full_like(self.check_time(t), 2.0)

    def time_of_tau(self, tau):
        return 0.5 * np.log1p(self.check_tau(tau))


@dataclass(repr=False)
class LinearVP(Schedule):
    """Linear-beta VP schedule of [BDKOS25] on t in [0, 1].

    beta(t) = beta_min + t (beta_max - beta_min), a(t) = beta_min t + t^2 (beta_max - beta_min) / 2,
    m = e^{-a/2}, sigma^2 = 1 - e^{-a}, tau = e^{a} - 1; f = -beta/2, g^2 = beta.
    """

    beta_min: float = 0.001
    beta_max: float = 3.0
    name = "linear_vp"
    t_lo = 0.0
    t_hi = 1.0

    def __post_init__(self):
        if not (0 <= self.beta_min <= self.beta_max) or self.beta_max <= 0:
            raise ValueError(
                f"linear_vp needs 0 <= beta_min <= beta_max and beta_max > 0, "
                f"got beta_min={self.beta_min}, beta_max={self.beta_max}"
            )

    def _a(self, t):
        t = self.check_time(t)
        return self.beta_min * t + 0.5 * t**2 * (self.beta_max - self.beta_min)

    def beta(self, t):
        return self.beta_min + self.check_time(t) * (self.beta_max - self.beta_min)

    def mean_scale(self, t):
        return np.exp(-0.5 * self._a(t))

    def noise_var(self, t):
        return -np.expm1(-self._a(t))

    def tau(self, t):
        return np.expm1(self._a(t))

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def diffusion_sq(self, t):
        return self.beta(t)

    def time_of_tau(self, tau):
        a = np.log1p(self.check_tau(tau))  # solve beta_min t + k t^2 = a, k = (bmax - bmin)/2
        k = 0.5 * (self.beta_max - self.beta_min)
        if k == 0:
            t = a / self.beta_min
        else:  # stable positive root 2a / (b + sqrt(b^2 + 4 k a))
            t = 2.0 * a / (self.beta_min + np.sqrt(self.beta_min**2 + 4.0 * k * a))
        return self._snap_time(t)

    def to_dict(self):
        return {"name": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max}


@dataclass(repr=False)
class GeometricVE(Schedule):
    """Geometric variance-exploding schedule of [ALD24] / [BDKOS25] on t in [0, 1].

    m = 1, sigma(t) = sigma_min (sigma_max / sigma_min)^t, tau = sigma^2; f = 0,
    g^2 = d sigma^2 / dt = 2 sigma^2 log(sigma_max / sigma_min).
    Set `t_lo` below 0 (e.g. the [BDKOS25] 2-D setting sigma = 10^t down to 1e-6) with `t_min`.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = 0.0
    name = "ve"
    t_hi = 1.0

    def __post_init__(self):
        if not (0 < self.sigma_min < self.sigma_max):
            raise ValueError(
                f"ve needs 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}"
            )
        if self.t_min > 0:
            raise ValueError(f"ve t_min must be <= 0, got {self.t_min}")

    @property
    def t_lo(self):  # type: ignore[override]
        return self.t_min

    @property
    def _log_ratio(self):
        return math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t):
        return self.sigma_min * np.exp(self.check_time(t) * self._log_ratio)

    def mean_scale(self, t):
        return np.ones_like(self.check_time(t))

    def noise_var(self, t):
        return self.sigma(t) ** 2

    def drift_coef(self, t):
        return np.zeros_like(self.check_time(t))

    def diffusion_sq(self, t):
        return 2.0 * self._log_ratio * self.noise_var(t)

    def time_of_tau(self, tau):
        tau = self.check_tau(tau)
        with np.errstate(divide="ignore"):
            t = (0.5 * np.log(tau) - math.log(self.sigma_min)) / self._log_ratio
        return self._snap_time(t)

    def to_dict(self):
        return {
            "name": self.name,
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "t_min": self.t_min,
        }


@dataclass(repr=False)
class ExponentialVE(Schedule):
    """Variance-exploding schedule of the [BDKOS25] official code (Baptista et al., "Memorization
    and regularization in generative diffusion models", arXiv 2501.15785) on t in [0, t_max]:

        dx = b^t dB  (f = 0, g(t) = b^t, default b = 10),  m = 1,
        sigma(t)^2 = int_0^t g(s)^2 ds = (b^{2t} - 1) / (2 ln b),   tau = sigma^2,
        t(tau) = log(1 + 2 ln b tau) / (2 ln b).

    sigma(0) = 0 (the data themselves) and sigma(1) = sqrt(99 / (2 ln 10)) = 4.64 for b = 10.
    Not the geometric `GeometricVE` (sigma = 10^t): there g^2 = 2 ln 10 sigma^2 instead.
    """

    base: float = 10.0
    t_max: float = 1.0
    name = "ve_bdkos25"
    t_lo = 0.0

    def __post_init__(self):
        if not (self.base > 1 and math.isfinite(self.base)):
            raise ValueError(f"ve_bdkos25 needs base > 1, got {self.base}")
        if not (0 < self.t_max < math.inf):
            raise ValueError(f"ve_bdkos25 needs 0 < t_max < inf, got {self.t_max}")

    @property
    def t_hi(self):  # type: ignore[override]
        return self.t_max

    @property
    def _log_base(self):
        return math.log(self.base)

    def mean_scale(self, t):
        return np.ones_like(self.check_time(t))

    def noise_var(self, t):
        return np.expm1(2.0 * self._log_base * self.check_time(t)) / (2.0 * self._log_base)

    def tau(self, t):
        return self.noise_var(t)

    def drift_coef(self, t):
        return np.zeros_like(self.check_time(t))

    def diffusion_sq(self, t):
        return np.exp(2.0 * self._log_base * self.check_time(t))

    def time_of_tau(self, tau):
        tau = self.check_tau(tau)
        return self._snap_time(np.log1p(2.0 * self._log_base * tau) / (2.0 * self._log_base))

    def to_dict(self):
        return {"name": self.name, "base": self.base, "t_max": self.t_max}


def ddpm_to_ou_times(beta_start: float = 1e-4, beta_end: float = 2e-2, steps: int = 1000):
    """OU times of the DDPM linear-beta chain [BBDM24]: t_k = -(1/2) log(alphabar_k),
    alphabar_k = prod_{j<=k} (1 - beta_j), beta_j linear from beta_start to beta_end."""
    if not (0 < beta_start <= beta_end < 1) or steps < 1:
        raise ValueError(
            f"ddpm needs 0 < beta_start <= beta_end < 1 and steps >= 1, got "
            f"{beta_start}, {beta_end}, {steps}"
        )
    betas = np.linspace(beta_start, beta_end, steps, dtype=np.float64)
    return -0.5 * np.cumsum(np.log1p(-betas))


SCHEDULES = {"ou": OrnsteinUhlenbeck, "linear_vp": LinearVP, "ve": GeometricVE,
             "ve_bdkos25": ExponentialVE}


def make_schedule(name: str = "ou", **params) -> Schedule:
    """Build a schedule by name ('ou', 'linear_vp', 've', 've_bdkos25') with its parameters."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](**params)
