"""The REM collapse condition of [BBDM24, BM23] (Biroli, Bonnaire, de Bortoli, Mezard, "Dynamical
regimes of diffusion models", arXiv 2402.18491): `collapse_tau`, and the input checks shared by
the critical-time modules. The bottom of the critical-time theory: `critical` (the public entry
point, which re-exports all of this) and `finite_n` both import it (issue 24: no cycle)."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

__all__ = ["collapse_tau"]


def _finite(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN")
    if np.any(np.isinf(arr)):
        raise ValueError(f"{name} contains inf")
    return arr


def _positive(x, name: str) -> np.ndarray:
    arr = _finite(x, name)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {float(np.min(arr)):g}")
    return arr


def _counts(n, minimum: float = 2.0) -> np.ndarray:
    arr = _finite(n, "n")
    if np.any(arr < minimum):
        low = float(np.min(arr))
        raise ValueError(f"n must be >= {minimum:g} training points, got min {low:g}")
    return arr


def _spectrum(values, name: str) -> np.ndarray:
    arr = _finite(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {float(np.min(arr)):g}")
    return arr


def collapse_tau(n, variances):
    """Collapse noise variance tau_C of Gaussian data (data-scale units) [BBDM24, BM23], *derived*.

    tau_C solves alpha d = (1/2) sum_j log(1 + s_j^2 / tau), alpha = log(N)/d, d = len(variances);
    all s_j^2 = s^2 gives tau_C = s^2 / expm1(2 log(N) / d); otherwise brentq in log tau, bracketed
    by the closed forms at min and max s_j^2. Vectorized over n.
    """
    n = _counts(n)
    var = _spectrum(variances, "variances")
    d = var.size
    target = np.log(n)  # alpha d
    denom = np.expm1(2.0 * target / d)
    if np.all(var == var[0]):
        return var[0] / denom
    lo_all = 0.999 * np.min(var) / denom  # padded so rounding cannot close the bracket
    hi_all = 1.001 * np.max(var) / denom

    def solve(a_d, lo, hi):
        def gap(u):
            return 0.5 * np.sum(np.log1p(var * np.exp(-u))) - a_d

        return math.exp(optimize.brentq(gap, math.log(lo), math.log(hi), xtol=1e-14, rtol=1e-14))

    out = np.empty_like(target)
    for idx in np.ndindex(target.shape):
        out[idx] = solve(target[idx], lo_all[idx], hi_all[idx])
    return out
