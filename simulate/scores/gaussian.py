"""Linear (Gaussian) scores: the population score of N(mu, C) and the optimal linear score."""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Score, check_batch, time_coefficients

__all__ = ["GaussianScore", "LinearScore"]


class GaussianScore(Score):
    """Population score of Gaussian data N(mu, C) noised by the schedule (docs/theory.md, Scores):

        s(x, t) = -(m^2 C + sigma^2 I)^{-1} (x - m mu),

    computed in C's eigenbasis C = U diag(lambda) U^T: s = -U diag(1/(m^2 lambda + sigma^2)) U^T (x - m mu).
    In data units its Jacobian eigenvalues are -1/(tau + lambda_i).
    """

    name = "population"

    def __init__(self, mean, cov, schedule):
        cov = np.asarray(cov, dtype=np.float64)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"cov must be a square matrix, got shape {cov.shape}")
        d = cov.shape[0]
        mean = np.zeros(d) if mean is None else np.asarray(mean, dtype=np.float64)
        if mean.shape != (d,):
            raise ValueError(f"mean must have shape ({d},) to match cov, got {mean.shape}")
        if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, np.abs(cov).max())):
            raise ValueError("cov must be symmetric")
        lam, u = np.linalg.eigh(0.5 * (cov + cov.T))
        if lam.min() < -1e-10 * max(1.0, lam.max()):
            raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {lam.min():g}")
        self.eigvals = np.clip(lam, 0.0, None)
        self.eigvecs = u
        self.mean = mean
        self.schedule = schedule
        self.dim = d
        self._cache: dict = {}

    @property
    def data_variance(self) -> float:
        return float(self.eigvals.mean())

    def _tensors(self, x):
        key = (x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = tuple(torch.as_tensor(a, dtype=x.dtype, device=x.device)
                                     for a in (self.eigvals, self.eigvecs, self.mean))
        return self._cache[key]

    def _inverse_eigs(self, x, t):
        lam, u, mu = self._tensors(x)
        m, s2 = time_coefficients(self.schedule, t, x)
        return 1.0 / (m * m * lam + s2), u, mu, m, s2  # (1 or B, d)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        check_batch(x, self.dim)
        inv, u, mu, m, _ = self._inverse_eigs(x, t)
        return -(((x - m * mu) @ u) * inv) @ u.T

    def jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        """grad_x s = -U diag(1/(m^2 lambda + sigma^2)) U^T, shape (B, d, d)."""
        check_batch(x, self.dim)
        inv, u, *_ = self._inverse_eigs(x, t)
        inv = inv.expand(x.shape[0], self.dim)
        return -torch.einsum("ij,bj,kj->bik", u, inv, u)

    def log_density(self, x: torch.Tensor, t) -> torch.Tensor:
        """log N(x; m mu, m^2 C + sigma^2 I)."""
        check_batch(x, self.dim)
        inv, u, mu, m, _ = self._inverse_eigs(x, t)
        z = (x - m * mu) @ u
        logdet = -torch.log(inv).sum(-1)  # (1,) or (B,)
        return -0.5 * ((z * z * inv).sum(1) + logdet + self.dim * math.log(2 * math.pi))

    def denoise(self, x: torch.Tensor, t) -> torch.Tensor:
        """Posterior mean E[y | x_t = x] = (x + sigma^2 s(x, t)) / m (Tweedie)."""
        m, s2 = time_coefficients(self.schedule, t, x)
        return (x + s2 * self(x, t)) / m

    def initial_sample(self, n, t, gen, dtype, device) -> torch.Tensor:
        """Exact forward marginal N(m mu, m^2 C + sigma^2 I) at time t."""
        m, s2 = float(self.schedule.mean_scale(t)), float(self.schedule.noise_var(t))
        z = torch.randn(n, self.dim, generator=gen, dtype=dtype, device=device)
        lam, u, mu = self._tensors(z)
        return m * mu + (z * torch.sqrt(m * m * lam + s2)) @ u.T

    def describe(self) -> dict:
        return {"score": self.name, "d": self.dim}


class LinearScore(GaussianScore):
    """Optimal linear score: the Gaussian population formula with the empirical mean and
    (biased, 1/N) covariance of the training set; the best linear denoiser, it does not memorize
    (docs/theory.md, Scores)."""

    name = "linear"

    def __init__(self, train, schedule):
        x = getattr(train, "x", train)
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            raise ValueError("train must be a (N, d) tensor or a DataSample")
        y = x.detach().to("cpu", torch.float64).numpy()
        mean = y.mean(axis=0)
        cov = (y - mean).T @ (y - mean) / y.shape[0]
        super().__init__(mean, cov, schedule)
        self.n_train = y.shape[0]

    def describe(self) -> dict:
        return {"score": self.name, "n_train": self.n_train}
