"""Closed-form quantities of Gaussian laws (float64 numpy/scipy, no sampling)."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg

__all__ = ["kl_gaussians"]


def _mean_cov(mean, cov, which: str):
    mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    c = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mean{which} must be 1-D, got shape {mu.shape}")
    if mu.size == 0:
        raise ValueError(f"mean{which} is empty")
    if c.shape != (mu.size, mu.size):
        raise ValueError(f"cov{which} must have shape {(mu.size, mu.size)}, got {c.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(c))):
        raise ValueError(f"mean{which} / cov{which} contain NaN or inf")
    scale = max(float(np.max(np.abs(c))), np.finfo(np.float64).tiny)
    if np.max(np.abs(c - c.T)) > 1e-10 * scale:
        raise ValueError(f"cov{which} is not symmetric")
    c = 0.5 * (c + c.T)
    w = np.linalg.eigvalsh(c)
    tol = mu.size * np.finfo(np.float64).eps * max(float(np.max(np.abs(w))), 0.0) * 10
    if w[0] < -tol:
        raise ValueError(f"cov{which} is not positive semi-definite (min eigenvalue {w[0]:.3g})")
    return mu, c


def kl_gaussians(mean1, cov1, mean2, cov2) -> float:
    """Exact KL(N1 || N2) = (1/2) [tr(C2^{-1} C1) + delta^T C2^{-1} delta - k
    + log det C2 - log det C1], delta = mu2 - mu1 (standard closed form; the exact KL of the
    [H24] linear model).

    Degenerate laws are handled on their supports: with C2 singular, KL is finite only if
    N1 lives in N2's affine support (C1 and delta vanish on C2's null space), and is then the
    formula restricted to range(C2); it is np.inf when C2 is singular on C1's support, or when C1
    is singular on range(C2) (N1 is then concentrated on an N2-null set, e.g. rank N < d).
    Ranks use the numpy matrix_rank tolerance k * eps * max eigenvalue; solves use Cholesky.
    """
    mu1, c1 = _mean_cov(mean1, cov1, "1")
    mu2, c2 = _mean_cov(mean2, cov2, "2")
    if mu1.size != mu2.size:
        raise ValueError(f"dimension mismatch: N1 has {mu1.size}, N2 has {mu2.size}")
    k = mu1.size
    eps = np.finfo(np.float64).eps
    delta = mu2 - mu1

    w2, v2 = np.linalg.eigh(c2)
    w2max = max(float(np.max(np.abs(w2))), float(np.max(np.abs(c1))), np.finfo(np.float64).tiny)
    keep = w2 > k * eps * w2max
    if not np.any(keep):
        raise ValueError("cov2 is zero: N2 is a point mass")
    if not np.all(keep):  # C2 singular: N1 must live inside N2's affine support
        null = v2[:, ~keep]
        c1_null = null.T @ c1 @ null
        tol = k * eps * w2max * 100
        dnull = null.T @ delta
        dscale = max(float(np.max(np.abs(delta))), float(np.max(np.abs(mu1))), 1.0)
        if np.max(np.abs(c1_null)) > tol or np.max(np.abs(dnull)) > 1e-10 * dscale:
            return math.inf
        basis = v2[:, keep]
        c1 = basis.T @ c1 @ basis
        c2 = np.diag(w2[keep])
        delta = basis.T @ delta
        k = int(np.sum(keep))

    w1 = np.linalg.eigvalsh(c1)
    if w1[0] <= k * eps * max(float(np.max(np.abs(w1))), np.finfo(np.float64).tiny):
        return math.inf
    chol2 = linalg.cho_factor(c2, lower=True)
    trace = float(np.trace(linalg.cho_solve(chol2, c1)))
    maha = float(delta @ linalg.cho_solve(chol2, delta))
    logdet2 = 2.0 * float(np.sum(np.log(np.diag(chol2[0]))))
    sign1, logdet1 = np.linalg.slogdet(c1)
    if sign1 <= 0:
        return math.inf
    return 0.5 * (trace + maha - k + logdet2 - logdet1)
