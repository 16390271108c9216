"""Closed-form scores of the training set: empirical, Tikhonov, floor-normalized, smoothed.

All share one streaming kernel (`kernel.mixture_stats`): weights w = softmax_n(l_n) with
l_n = (m x.y_n - m^2 |y_n|^2 / 2) / v, v the kernel variance.
"""

from __future__ import annotations

import math

import torch

from .base import Score, check_batch, time_coefficients
from .covariance import CentredStats, mixture_covariance
from .kernel import MixtureStats, augment_keys, mixture_stats

__all__ = ["EmpiricalScore", "TikhonovScore", "FloorNormalizedScore", "SmoothedScore"]


def _train_tensor(train) -> torch.Tensor:
    x = getattr(train, "x", train)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"train must be a (N, d) torch tensor or a DataSample, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"training set must have shape (N, d) with N >= 1, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"training set must be float32 or float64, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("training set contains NaN or inf")
    return x


def _batch_matrix(val):
    """A float or a (B, 1) column as something that broadcasts against (B, d, d)."""
    return val[:, :, None] if isinstance(val, torch.Tensor) else val


class EmpiricalScore(Score):
    """Exact minimizer of denoising score matching on N training points [BDKOS25, BBDM24]:

        s_N(x, t) = (m sum_n w_n y_n - x) / sigma^2,
        w = softmax_n((m x.y_n - m^2 |y_n|^2 / 2) / sigma^2),

    the score of the mixture P^e_t = (1/N) sum_n N(m y_n, sigma^2 I) (docs/theory.md, Scores).
    After each call `last_stats` holds the kernel's (lse, weighted mean, nearest index) so that
    observers can reuse the nearest training point of x / m without a second pass.
    """

    name = "empirical"

    def __init__(self, train, schedule, chunk: int | None = None):
        self.train = _train_tensor(train)
        self.schedule = schedule
        self.dim = self.train.shape[1]
        self.chunk = chunk
        self._keys = augment_keys(self.train)
        self._keys_cache: dict = {}
        self.last_stats: MixtureStats | None = None

    # -- helpers -----------------------------------------------------------------------------
    @property
    def n_train(self) -> int:
        return self.train.shape[0]

    @property
    def data_variance(self) -> float:
        return float(self.train.var(dim=0, unbiased=False).mean()) if self.n_train > 1 else 1.0

    def keys_for(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented keys in x's dtype and device (converted once, then cached)."""
        if self._keys.dtype == x.dtype and self._keys.device == x.device:
            return self._keys
        key = (x.dtype, x.device)
        if key not in self._keys_cache:
            self._keys_cache[key] = self._keys.to(device=x.device, dtype=x.dtype)
        return self._keys_cache[key]

    def kernel_variance(self, m, s2):
        """Variance v of the mixture components in the weights (sigma^2 here)."""
        return s2

    def stats(self, x: torch.Tensor, t) -> tuple[MixtureStats, object, object, object]:
        """Run the streaming kernel: returns (stats, m, sigma^2, v)."""
        check_batch(x, self.dim)
        m, s2 = time_coefficients(self.schedule, t, x)
        v = self.kernel_variance(m, s2)
        st = mixture_stats(x, self.keys_for(x), m / v, -(m * m) / (2 * v), self.chunk)
        self.last_stats = st
        return st, m, s2, v

    def score_denominator(self, s2, v):
        return v

    # -- interface ---------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        st, m, s2, v = self.stats(x, t)
        return (m * st.mean - x) / self.score_denominator(s2, v)

    def denoise(self, x: torch.Tensor, t) -> torch.Tensor:
        """Posterior mean E[y | x_t = x] = sum_n w_n y_n (Tweedie)."""
        st, *_ = self.stats(x, t)
        return st.mean

    def log_density(self, x: torch.Tensor, t) -> torch.Tensor:
        """log P^e_t(x) = logsumexp_n(-|x - m y_n|^2 / 2v) - log N - (d/2) log(2 pi v)."""
        st, m, s2, v = self.stats(x, t)
        v_col = v if isinstance(v, torch.Tensor) else torch.full_like(st.lse[:, None], v)
        v_col = v_col[:, 0]
        return (st.lse - (x * x).sum(1) / (2 * v_col) - math.log(self.n_train)
                - 0.5 * self.dim * torch.log(2 * math.pi * v_col))

    def train_for(self, x: torch.Tensor) -> torch.Tensor:
        """The training points in x's dtype and device (converted once, then cached)."""
        if self.train.dtype == x.dtype and self.train.device == x.device:
            return self.train
        key = ("train", x.dtype, x.device)
        if key not in self._keys_cache:
            self._keys_cache[key] = self.train.to(device=x.device, dtype=x.dtype).contiguous()
        return self._keys_cache[key]

    def posterior(self, x: torch.Tensor, t) -> tuple[CentredStats, object, object, object]:
        """Posterior weights, mean and covariance of the training points at x, from centred
        values (`covariance.mixture_covariance`, float64): returns (stats, m, sigma^2, v)."""
        x64 = check_batch(x, self.dim).to(torch.float64)
        t64 = t.double() if isinstance(t, torch.Tensor) else t
        m, s2 = time_coefficients(self.schedule, t64, x64)
        v = self.kernel_variance(m, s2)
        return mixture_covariance(x64, self.train_for(x64), m, v, self.chunk), m, s2, v

    def jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact Jacobian grad_x s = ((m^2 / v) Cov_w(y) - I) / D, D the score's denominator
        (sigma^2 for the plain empirical score) [BBDM24, arXiv 2402.18491]. Cov_w is computed
        in float64 from centred values (difference-form logits, two-pass mean-centred sum), so it
        stays exact to ~1e-10 relative down to tau ~ 1e-8 (docs/theory.md, "Empirical-score
        Jacobian"); the result is cast back to x's dtype."""
        cs, m, s2, v = self.posterior(x, t)
        eye = torch.eye(self.dim, dtype=torch.float64, device=x.device)
        scale = _batch_matrix(m * m / v)
        den = _batch_matrix(self.score_denominator(s2, v))
        return ((scale * cs.cov - eye) / den).to(x.dtype)

    def describe(self) -> dict:
        return {"score": self.name, "n_train": self.n_train}


class TikhonovScore(EmpiricalScore):
    """Tikhonov-regularized empirical score [BDKOS25]: the minimizer of
    E|s - grad log p(x_t|x_0)|^2 + (c / sigma^2)|s|^2,  s_c = (m sum_n w_n y_n - x) / (sigma^2 + c),
    with the unregularized weights w."""

    name = "tikhonov"

    def __init__(self, train, schedule, c: float, chunk: int | None = None):
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
            raise ValueError(f"Tikhonov strength c must be >= 0, got {c!r}")
        super().__init__(train, schedule, chunk)
        self.c = float(c)

    def score_denominator(self, s2, v):
        return s2 + self.c

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        """s_c(x, t); at zero noise (sigma(t) = 0, e.g. t = 0 of the [BDKOS25] VE) and c > 0 the
        limit (m y_nn - x) / c, y_nn the nearest training point of x / m (scalar t only)."""
        if self.c > 0 and not isinstance(t, torch.Tensor) and t <= self.schedule.t_lo \
                and float(self.schedule.noise_var(t)) == 0.0:
            check_batch(x, self.dim)
            m = float(self.schedule.mean_scale(t))
            y = self.train_for(x)
            nearest = torch.cdist(x / m, y).argmin(dim=1)
            return (m * y[nearest] - x) / self.c
        return super().__call__(x, t)

    def describe(self) -> dict:
        return {**super().describe(), "c": self.c}


class SmoothedScore(EmpiricalScore):
    """Smoothed closed-form score [SBS23]: the empirical score of training points blurred by
    N(0, sigma_s^2 I): P_t = (1/N) sum_n N(m y_n, (sigma^2 + m^2 sigma_s^2) I), i.e. the weights and
    denominator use v = sigma^2 + m^2 sigma_s^2 (tau -> tau + sigma_s^2 in data units)."""

    name = "smoothed"

    def __init__(self, train, schedule, smoothing_var: float, chunk: int | None = None):
        if not (isinstance(smoothing_var, (int, float)) and math.isfinite(smoothing_var)
                and smoothing_var >= 0):
            raise ValueError(f"smoothing variance must be >= 0, got {smoothing_var!r}")
        super().__init__(train, schedule, chunk)
        self.smoothing_var = float(smoothing_var)

    def kernel_variance(self, m, s2):
        return s2 + m * m * self.smoothing_var

    def describe(self) -> dict:
        return {**super().describe(), "smoothing_var": self.smoothing_var}


class FloorNormalizedScore(EmpiricalScore):
    """Floor-normalized ("empirical Bayes") score [BDKOS25 code]:

        w_n = exp(l_n) / max(sum_j exp(l_j), tau_floor),  l_n = -|x - m y_n|^2 / (2 sigma^2),
        s(x, t) = sum_n w_n (m y_n - x) / sigma^2,

    i.e. grad A / max(A, tau_floor) with A = sum_j exp(l_j): equal to the empirical score
    grad log A where the unnormalized mixture mass exceeds the floor, and grad A / tau_floor, shrunk
    towards 0, far from every training point.
    Computed in the log domain.
    """

    name = "floor"

    def __init__(self, train, schedule, tau_floor: float, chunk: int | None = None):
        if not (isinstance(tau_floor, (int, float)) and math.isfinite(tau_floor) and tau_floor > 0):
            raise ValueError(f"tau_floor must be > 0, got {tau_floor!r}")
        super().__init__(train, schedule, chunk)
        self.tau_floor = float(tau_floor)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        st, m, s2, v = self.stats(x, t)
        v_col = v[:, 0] if isinstance(v, torch.Tensor) else v
        lse_abs = st.lse - (x * x).sum(1) / (2 * v_col)  # log sum_j exp(l_j), absolute logits
        mass = torch.exp(lse_abs - torch.clamp(lse_abs, min=math.log(self.tau_floor)))
        return mass[:, None] * (m * st.mean - x) / v

    def jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact Jacobian of s = grad A / max(A, tau_floor), A = sum_n exp(l_n) [BDKOS25 code]:

            A >= floor:  ((m^2 / sigma^2) Cov_w - I) / sigma^2   (the empirical score's),
            A <  floor:  (A / floor) [(m^2 / sigma^4)(Cov_w + (x/m - mu)(x/m - mu)^T) - I / sigma^2],

        from centred values like `EmpiricalScore.jacobian` (log A is the log-sum-exp of the
        difference-form logits)."""
        cs, m, s2, v = self.posterior(x, t)
        log_floor = math.log(self.tau_floor)
        mass = torch.exp(cs.log_mass - torch.clamp(cs.log_mass, min=log_floor))
        below = (cs.log_mass < log_floor).to(torch.float64)
        second = cs.cov + below[:, None, None] * cs.offset[:, :, None] * cs.offset[:, None, :]
        eye = torch.eye(self.dim, dtype=torch.float64, device=x.device)
        m2, v = _batch_matrix(m * m), _batch_matrix(v)
        return (mass[:, None, None] * (m2 * second / v - eye) / v).to(x.dtype)

    def describe(self) -> dict:
        return {**super().describe(), "tau_floor": self.tau_floor}
