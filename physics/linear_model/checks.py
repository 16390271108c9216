"""Input checks shared by the [H24] linear-model modules (`memphase.physics.linear_model` and its
`_criterion`, `_official` companions): one-line ValueErrors naming the problem, before any compute.
See docs/theory.md, "Solvable linear model ([H24])"."""

from __future__ import annotations

import math

import numpy as np


# ---------------------------------------------------------------------------------------------
def noise_scales(T=None, m=None, sigma2=None) -> tuple[float, float]:
    """(m, sigma^2) of the forward kernel x_T = m y + sigma z [H24]: either the OU/VP time T > 0,
    m = e^{-T}, sigma^2 = 1 - e^{-2T} ([BBDM24] Biroli et al., arXiv 2402.18491), or m > 0 and
    sigma^2 > 0 directly."""
    if T is not None:
        if m is not None or sigma2 is not None:
            raise ValueError("give either T or (m, sigma2), not both")
        T = float(T)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"diffusion time T must be finite and > 0, got {T}")
        return math.exp(-T), -math.expm1(-2.0 * T)
    if m is None or sigma2 is None:
        raise ValueError("give the diffusion time T, or both m and sigma2")
    m, sigma2 = float(m), float(sigma2)
    if not np.isfinite(m) or m <= 0:
        raise ValueError(f"m must be finite and > 0, got {m}")
    if not np.isfinite(sigma2) or sigma2 <= 0:
        raise ValueError(f"sigma2 must be finite and > 0, got {sigma2}")
    return m, sigma2


def _vector_and_matrix(v, M, v_name: str, M_name: str, d: int | None = None):
    """float64 (v (d,), M (d, d)); d from M (which must be square) unless given, in which case
    v is checked first."""
    v = np.asarray(v, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    if d is None:
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"{M_name} must be a square (d, d) matrix, got shape {M.shape}")
        d = M.shape[0]
    if v.shape != (d,):
        raise ValueError(f"{v_name} must have shape ({d},), got {v.shape}")
    if M.shape != (d, d):
        raise ValueError(f"{M_name} must have shape ({d}, {d}), got {M.shape}")
    return v, M


def _check_train(train, name="train") -> np.ndarray:
    y = np.asarray(train, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"{name} must have shape (N, d), got shape {y.shape}")
    if y.shape[0] < 1:
        raise ValueError(f"{name} needs N >= 1 points, got N = {y.shape[0]}")
    if y.shape[1] < 1:
        raise ValueError(f"{name} needs dimension d >= 1, got d = {y.shape[1]}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains non-finite values")
    return y


def _check_positive(x, name) -> float:
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {x}")
    return x


def _check_int(n, name, lo=1) -> int:
    if isinstance(n, bool) or int(n) != n or int(n) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {n}")
    return int(n)


def _sampling_law(d, s=1.0, mu=None, S=None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(mu, S or None, s): S None means the isotropic S = s^2 I."""
    s = _check_positive(s, "s")
    mu = np.zeros(d) if mu is None else np.asarray(mu, dtype=np.float64)
    if mu.shape != (d,):
        raise ValueError(f"sampling mean mu must have shape ({d},), got {mu.shape}")
    if S is not None:
        S = np.asarray(S, dtype=np.float64)
        if S.shape != (d, d):
            raise ValueError(f"sampling covariance S must have shape ({d}, {d}), got {S.shape}")
        if not np.allclose(S, S.T, rtol=1e-12, atol=0):
            raise ValueError("sampling covariance S must be symmetric")
        if np.linalg.eigvalsh(S)[0] <= 0:
            raise ValueError("sampling covariance S must be positive definite")
    return mu, S, s


