"""Small-c theory of the Tikhonov flow of the [BDKOS25] regularization experiment (Baptista et al.,
"Memorization and regularization in generative diffusion models", arXiv 2501.15785): the
prediction of the collapse fraction and median distance from c = 0 flow invariants, its interval
for one new seed, and the fitted power-law exponent (derivation: the module docstring of
`memphase.simulate.experiments.regularization`, docs/theory.md "Schedules"). Pure numpy."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tikhonov_distance_theory", "prediction_halfwidth", "power_law_exponent"]


def tikhonov_distance_theory(c, flow_ratio, tol: float):
    """Small-c theory of the Tikhonov flow [BDKOS25] (*derived*, module docstring): each sample
    freezes at distance sqrt(c) K_i from its training point, K_i = |x_i - y_nn| / sigma the
    invariant of the c = 0 flow. Returns (median_i sqrt(c) K_i, fraction_i[sqrt(c) K_i < tol]) as
    arrays over c; c = 0 gives (0, 1): everything collapses."""
    c = np.atleast_1d(np.asarray(c, dtype=float))
    k = np.asarray(flow_ratio, dtype=float)
    if np.any(c < 0) or k.ndim != 1 or k.size == 0:
        raise ValueError("need c >= 0 and a non-empty 1-d array of flow ratios")
    dist = np.sqrt(c)[:, None] * k[None, :]
    return np.median(dist, axis=1), np.mean(dist < tol, axis=1)


def prediction_halfwidth(per_seed_fraction, theory, n_samples: int, z: float = 1.96):
    """Half-width of the interval in which one NEW seed's collapse fraction (n_samples samples)
    should fall around the theory pooled over J calibration seeds:

        z s sqrt(1 + 1/J),   s = max(std_j f_j, sqrt(max(p (1 - p), 1/(4 n)) / n)),

    f_j the theory fraction of calibration seed j alone (training-set plus sampling spread of one
    seed; ddof 1), floored at the binomial std of n samples at p = theory. Arrays over the last
    axis of `per_seed_fraction` (J) broadcast against `theory`."""
    f = np.asarray(per_seed_fraction, dtype=float)
    p = np.asarray(theory, dtype=float)
    j = f.shape[-1]
    spread = np.std(f, axis=-1, ddof=1) if j > 1 else np.zeros(f.shape[:-1])
    binom = np.sqrt(np.maximum(p * (1 - p), 0.25 / n_samples) / n_samples)
    return z * np.maximum(spread, binom) * math.sqrt(1 + 1 / j)


def power_law_exponent(x, y, x_max: float = np.inf) -> float:
    """Least-squares slope of log y against log x over 0 < x <= x_max with y > 0 finite: the
    exponent a of y ~ x^a (a = 1/2 for the median distance vs c [BDKOS25]); nan if < 2 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (x <= x_max) & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])
