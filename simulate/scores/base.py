"""The score interface shared by every score: `score(x, t)` on a batch.

x is a (B, d) float32 or float64 tensor on any device; t is a float or a (B,) tensor of schedule
times. The result has x's shape, dtype and device. Scores with a closed-form Jacobian also expose
`jacobian(x, t)` of shape (B, d, d) (grad_x s, in the schedule's x units).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Score", "time_coefficients", "check_batch", "bind_labels"]


def check_batch(x, dim: int) -> torch.Tensor:
    """Validate a (B, d) floating batch with d == dim."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (B, d), got {tuple(x.shape)}")
    if x.shape[1] != dim:
        raise ValueError(f"x has dimension {x.shape[1]} but the score expects d = {dim}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    return x


def time_coefficients(schedule, t, x: torch.Tensor):
    """(m, sigma^2) at time t as python floats (scalar t) or (B, 1) tensors (per-sample t).

    Raises ValueError if t lies outside the schedule's interval or has the wrong length.
    """
    if isinstance(t, torch.Tensor):
        if t.ndim == 0:
            t = float(t)
        else:
            if t.shape != (x.shape[0],):
                raise ValueError(f"t must be a float or a ({x.shape[0]},) tensor, "
                                 f"got shape {tuple(t.shape)}")
            tn = t.detach().to("cpu", torch.float64).numpy()
            m = torch.as_tensor(schedule.mean_scale(tn), dtype=x.dtype, device=x.device)
            s2 = torch.as_tensor(schedule.noise_var(tn), dtype=x.dtype, device=x.device)
            if torch.any(s2 <= 0):
                raise ValueError("noise variance is zero at some t: the score is undefined there")
            return m[:, None], s2[:, None]
    m = float(schedule.mean_scale(t))
    s2 = float(schedule.noise_var(t))
    if not s2 > 0:
        raise ValueError(f"noise variance is zero at t = {t!r}: the score is undefined there")
    return m, s2


class Score:
    """Base class. Subclasses set `dim` and `schedule` and implement `__call__(x, t)`."""

    dim: int
    schedule: object
    name = "score"

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        raise NotImplementedError

    @property
    def data_variance(self) -> float:
        """Mean per-coordinate variance of the data the score was built on (start of sampling)."""
        return 1.0

    def initial_sample(self, n: int, t: float, gen: torch.Generator, dtype, device) -> torch.Tensor:
        """Start of reverse sampling at time t: N(0, (m^2 v0 + sigma^2) I), v0 = data_variance
        (the exact forward marginal for isotropic data of variance v0; near-exact once
        m^2 v0 << sigma^2). Scores that know their marginal exactly override this."""
        m, s2 = float(self.schedule.mean_scale(t)), float(self.schedule.noise_var(t))
        std = (m * m * float(self.data_variance) + s2) ** 0.5
        return std * torch.randn(n, self.dim, generator=gen, dtype=dtype, device=device)

    def describe(self) -> dict:
        """Parameters for provenance."""
        return {"score": self.name}


def as_tensor_like(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(arr, dtype=like.dtype, device=like.device)


def bind_labels(parent, labels) -> Score:
    """A plain `score(x, t)` = parent(x, t, labels) for a class-conditional score whose batch
    labels are fixed (what the samplers call); `jacobian(x, t)` where the parent has one."""

    class _Bound(Score):
        name = f"{parent.name}|labels"
        dim = parent.dim
        schedule = parent.schedule

        def __call__(self, x, t):
            return parent(x, t, labels)

        @property
        def data_variance(self):
            return parent.data_variance

        def describe(self):
            return {**parent.describe(), "score": self.name}

    if hasattr(parent, "jacobian"):
        class _BoundJacobian(_Bound):
            def jacobian(self, x, t):
                return parent.jacobian(x, t, labels)

        return _BoundJacobian()
    return _Bound()
