"""Generalization measures that need no image model: how far generated samples, or a score, are
from the true law of the data (used for tau_gen, see docs/training_dynamics.md).

    relative score error   E|s(x,t) - s_ref(x,t)|^2 / E|s_ref(x,t)|^2,  x ~ p_t
    Gaussian moment KL     KL( N(m_hat, C_hat) || N(mu, C) ), m_hat, C_hat the sample moments
    sliced Wasserstein     SW_2(P, Q)^2 = E_u W_2(u.P, u.Q)^2, u uniform on the unit sphere

The moment KL compares only the first two moments (exact for Gaussian data laws); the sliced
Wasserstein distance sees the whole law, through one-dimensional projections [Rabin et al. 2011;
Bonneel et al. 2015, "Sliced and Radon Wasserstein barycenters of measures"].
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["relative_score_error", "gaussian_moment_kl", "sliced_wasserstein"]


def _np(x) -> np.ndarray:
    x = getattr(x, "x", x)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected an (n, d) array, got shape {a.shape}")
    return a


def relative_score_error(score, reference, x: torch.Tensor, t: float) -> float:
    """sum_i |s(x_i, t) - s_ref(x_i, t)|^2 / sum_i |s_ref(x_i, t)|^2 on the batch x (points of
    the noised law p_t): 0 for s = s_ref, 1 for s = 0."""
    with torch.no_grad():
        s = score(x, t).double()
        r = reference(x, t).double()
    den = float((r * r).sum())
    if not den > 0:
        raise ValueError("the reference score vanishes on every evaluation point")
    return float(((s - r) ** 2).sum()) / den


def gaussian_moment_kl(x, mean, cov) -> float:
    """KL( N(m_hat, C_hat) || N(mu, C) ) of the sample mean and covariance of x (n, d):

        (1/2) [ tr(C^-1 C_hat) + (mu - m_hat)^T C^-1 (mu - m_hat) - d + ln det C - ln det C_hat ].

    +inf when C is singular (a law on a manifold) or the samples span fewer than d directions
    (C_hat singular: e.g. samples collapsed onto fewer than d + 1 training points)."""
    a = _np(x)
    n, d = a.shape
    mu = np.asarray(mean, dtype=np.float64)
    c = np.asarray(cov, dtype=np.float64)
    if mu.shape != (d,) or c.shape != (d, d):
        raise ValueError(f"mean must be ({d},) and cov ({d}, {d}), got {mu.shape} and {c.shape}")
    if n < 2:
        raise ValueError(f"need at least 2 samples, got {n}")
    m_hat = a.mean(0)
    c_hat = np.cov(a, rowvar=False).reshape(d, d)
    lam = np.linalg.eigvalsh(c)
    lam_hat = np.linalg.eigvalsh(c_hat)
    scale = max(lam.max(), 1e-300)
    if lam.min() <= 1e-12 * scale or lam_hat.min() <= 1e-12 * max(lam_hat.max(), 1e-300):
        return math.inf
    ci = np.linalg.inv(c)
    diff = mu - m_hat
    return 0.5 * float(np.trace(ci @ c_hat) + diff @ ci @ diff - d
                       + np.sum(np.log(lam)) - np.sum(np.log(lam_hat)))


def sliced_wasserstein(x, y, n_projections: int = 128, seed: int = 0) -> float:
    """SW_2 between the empirical laws of x (n, d) and y (m, d):

        SW_2^2 = (1/P) sum_p int_0^1 |F_p^-1(u) - G_p^-1(u)|^2 du,

    F_p, G_p the distribution functions of x . u_p and y . u_p, u_p uniform unit vectors
    (numpy Generator(seed)); the quantile integral on the midpoints of max(n, m) equal bins."""
    a, b = _np(x), _np(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has d = {a.shape[1]} but y has d = {b.shape[1]}")
    if not isinstance(n_projections, (int, np.integer)) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer, got {n_projections!r}")
    u = np.random.default_rng(seed).standard_normal((a.shape[1], n_projections))
    u /= np.linalg.norm(u, axis=0, keepdims=True)
    q = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
    pa = np.quantile(a @ u, q, axis=0)
    pb = np.quantile(b @ u, q, axis=0)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))
