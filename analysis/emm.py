"""Effective model memorization (EMM) [GDPLLW23] and memorization-ratio curves (docs/theory.md, Measurements).

    EMM_eps = max{ N : E R_mem(N) >= 1 - eps },   eps = 0.1 by default            [GDPLLW23]

R_mem(N) is the memorization ratio of a training recipe on N training points (fraction of samples
with |x - NN_1| / |x - NN_2| < 1/3), averaged over seeds. It falls with N, so EMM is where the
averaged curve crosses 1 - eps. `emm_search` finds it as [GDPLLW23] do: grow N geometrically until
the ratio falls below 1 - eps, then bisect the integer bracket (in log N) to a relative resolution.

Conditioning [GDPLLW23; docs/theory.md, Scores]: random labels with C classes leave N / C points per
class, so the conditional ratio at N is predicted by the unconditional curve at N / C
(`random_label_prediction`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["EMMResult", "EMMNotBracketed", "emm_search", "seed_crossings", "seed_spread",
           "ratio_curve_at", "random_label_prediction"]


class EMMNotBracketed(ValueError):
    """The ratio did not cross 1 - eps inside [n_min, n_max]; `n`, `ratio` hold the points seen,
    `side` is "above" (still >= 1 - eps at n_max) or "below" (< 1 - eps already at n_min)."""

    def __init__(self, message, side, n, ratio, ratio_seeds):
        super().__init__(message)
        self.side = side
        self.n = np.asarray(n)
        self.ratio = np.asarray(ratio)
        self.ratio_seeds = np.asarray(ratio_seeds)


@dataclass(frozen=True)
class EMMResult:
    """Outcome of `emm_search`.

    emm:          largest evaluated N whose (seed-averaged) ratio is >= 1 - eps.
    upper:        smallest evaluated N above `emm` whose ratio is < 1 - eps; the true crossing of a
                  monotone curve lies in [emm, upper).
    eps:          the tolerance; the threshold is 1 - eps.
    n:            (E,) every evaluated N, in evaluation order.
    ratio:        (E,) seed-averaged ratio at each.
    ratio_seeds:  (E, S) per-seed ratios (S = 1 when ratio_fn returns a scalar).
    seed_emm:     (S,) each seed's own crossing of 1 - eps (`seed_crossings`; NaN outside range).
    """

    emm: int
    upper: int
    eps: float
    n: np.ndarray
    ratio: np.ndarray
    ratio_seeds: np.ndarray
    seed_emm: np.ndarray

    @property
    def threshold(self) -> float:
        return 1.0 - self.eps

    @property
    def n_evaluations(self) -> int:
        return int(self.n.size)

    @property
    def relative_bracket(self) -> float:
        """(upper - emm) / emm: the resolution the bisection reached."""
        return (self.upper - self.emm) / self.emm

    @property
    def seed_std(self) -> float:
        """Std over seeds of the per-seed crossings (`seed_spread`)."""
        return seed_spread(self.seed_emm)[0]

    @property
    def seed_sem(self) -> float:
        """Standard error of the seed-averaged crossing (`seed_spread`)."""
        return seed_spread(self.seed_emm)[1]


def seed_spread(seed_emm) -> tuple[float, float]:
    """(std, standard error) over seeds of the finite per-seed crossings: the sample std (ddof 1)
    and std / sqrt(number of finite crossings); NaN with fewer than two finite ones."""
    f = np.asarray(seed_emm, dtype=float)
    f = f[np.isfinite(f)]
    if f.size < 2:
        return math.nan, math.nan
    std = float(np.std(f, ddof=1))
    return std, std / math.sqrt(f.size)


def _check_search_args(n_start, eps, growth, rel_resolution, n_min, n_max, max_evaluations):
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    if not is_int(n_min) or n_min < 1:
        raise ValueError(f"n_min must be an integer >= 1, got {n_min!r}")
    if not is_int(n_start) or n_start < 1:
        raise ValueError(f"n_start must be an integer >= 1, got {n_start!r}")
    if not is_int(n_max) or n_max < n_start:
        raise ValueError(f"n_max must be an integer >= n_start = {n_start}, got {n_max!r}")
    if n_start < n_min:
        raise ValueError(f"n_start = {n_start} is below n_min = {n_min}")
    if not (isinstance(growth, (int, float)) and growth > 1 and math.isfinite(growth)):
        raise ValueError(f"growth must be a finite number > 1, got {growth!r}")
    if not (isinstance(rel_resolution, (int, float)) and 0 <= rel_resolution < 1):
        raise ValueError(f"rel_resolution must lie in [0, 1), got {rel_resolution!r}")
    if not is_int(max_evaluations) or max_evaluations < 2:
        raise ValueError(f"max_evaluations must be an integer >= 2, got {max_evaluations!r}")


def emm_search(ratio_fn, n_start: int, *, eps: float = 0.1, growth: float = 2.0,
               rel_resolution: float = 0.05, n_min: int = 1, n_max: int = 10**6,
               max_evaluations: int = 64) -> EMMResult:
    """EMM_eps = max{N : E R(N) >= 1 - eps} [GDPLLW23] by geometric growth, then bisection.

    ratio_fn(N) returns the memorization ratio at N training points: a float, or a 1-D array of
    per-seed ratios (same length every call) whose mean is the E R(N) searched on.

    1. From n_start, N <- max(N + 1, ceil(growth N)) (capped at n_max) until R(N) < 1 - eps; if
       R(n_start) < 1 - eps already, N <- min(N - 1, floor(N / growth)) (down to n_min) until
       R(N) >= 1 - eps. This brackets the crossing: R(lo) >= 1 - eps > R(hi).
    2. Bisect in log N on integers (mid = round(sqrt(lo hi))) until hi - lo <= max(1,
       rel_resolution lo). rel_resolution = 0 resolves the crossing to one integer.

    Evaluations: about log_growth(EMM / n_start) + 1 to bracket, plus
    log2(log(growth) / log(1 + rel_resolution)) to bisect. No N is evaluated twice.
    Raises ValueError for bad arguments or ratios outside [0, 1], and `EMMNotBracketed` (a
    ValueError) when the ratio does not cross 1 - eps inside [n_min, n_max].
    """
    _check_search_args(n_start, eps, growth, rel_resolution, n_min, n_max, max_evaluations)
    threshold = 1.0 - eps
    seen: dict[int, np.ndarray] = {}
    n_seeds: list[int] = []

    def evaluate(n: int) -> float:
        if n in seen:
            return float(seen[n].mean())
        if len(seen) >= max_evaluations:
            raise ValueError(f"EMM search exceeded max_evaluations = {max_evaluations} "
                             f"(evaluated N = {sorted(seen)})")
        r = np.atleast_1d(np.asarray(ratio_fn(int(n)), dtype=np.float64))
        if r.ndim != 1 or r.size == 0:
            raise ValueError(f"ratio_fn({n}) must return a float or a 1-D array of per-seed "
                             f"ratios, got shape {r.shape}")
        if not np.all(np.isfinite(r)) or np.any(r < 0) or np.any(r > 1):
            raise ValueError(f"ratio_fn({n}) returned {r.tolist()}: ratios must lie in [0, 1]")
        if n_seeds and r.size != n_seeds[0]:
            raise ValueError(f"ratio_fn({n}) returned {r.size} seeds, earlier calls {n_seeds[0]}")
        n_seeds.append(r.size)
        seen[n] = r
        return float(r.mean())

    def points():
        ns = np.fromiter(seen, dtype=np.int64)
        rs = np.stack([seen[k] for k in seen])
        return ns, rs.mean(axis=1), rs

    n = int(n_start)
    if evaluate(n) >= threshold:  # grow until below
        lo = n
        while True:
            if n >= n_max:
                ns, r, rs = points()
                raise EMMNotBracketed(
                    f"memorization ratio never fell below 1 - eps = {threshold:g} up to n_max = "
                    f"{n_max} (ratio there {r[-1]:.3f}); raise n_max", "above", ns, r, rs)
            n = min(n_max, max(n + 1, math.ceil(growth * n)))
            if evaluate(n) < threshold:
                hi = n
                break
            lo = n
    else:  # shrink until above
        hi = n
        while True:
            if n <= n_min:
                ns, r, rs = points()
                raise EMMNotBracketed(
                    f"memorization ratio is below 1 - eps = {threshold:g} already at n_min = "
                    f"{n_min} (ratio {r[-1]:.3f}): EMM < n_min", "below", ns, r, rs)
            n = max(n_min, min(n - 1, math.floor(n / growth)))
            if evaluate(n) >= threshold:
                lo = n
                break
            hi = n

    while hi - lo > max(1.0, rel_resolution * lo):
        mid = min(hi - 1, max(lo + 1, round(math.sqrt(lo * hi))))
        if evaluate(mid) >= threshold:
            lo = mid
        else:
            hi = mid

    ns, r, rs = points()
    return EMMResult(emm=int(lo), upper=int(hi), eps=float(eps), n=ns, ratio=r, ratio_seeds=rs,
                     seed_emm=seed_crossings(ns, rs, threshold))


def seed_crossings(n, ratio_seeds, threshold: float) -> np.ndarray:
    """Each seed's own crossing of `threshold`, from the points evaluated for the mean curve.

    Points sorted by N; for seed s the first N_i with R_s(N_i) < threshold and its predecessor
    N_{i-1} give, linearly in log N,
        log N*_s = log N_{i-1} + f log(N_i / N_{i-1}),
        f = (R_s(N_{i-1}) - threshold) / (R_s(N_{i-1}) - R_s(N_i)).
    NaN when the seed's ratio is below threshold at the smallest N or never below it.
    n: (E,); ratio_seeds: (E, S). Returns (S,).
    """
    n = np.asarray(n, dtype=np.float64)
    rs = np.asarray(ratio_seeds, dtype=np.float64)
    if rs.ndim == 1:
        rs = rs[:, None]
    if rs.shape[0] != n.size:
        raise ValueError(f"ratio_seeds must have {n.size} rows (one per N), got {rs.shape}")
    order = np.argsort(n)
    n, rs = n[order], rs[order]
    out = np.full(rs.shape[1], np.nan)
    for s in range(rs.shape[1]):
        below = np.flatnonzero(rs[:, s] < threshold)
        if below.size == 0 or below[0] == 0:
            continue
        i = below[0]
        r0, r1 = rs[i - 1, s], rs[i, s]
        frac = (r0 - threshold) / (r0 - r1)
        out[s] = math.exp(math.log(n[i - 1]) + frac * math.log(n[i] / n[i - 1]))
    return out


def ratio_curve_at(n_query, n, ratio) -> np.ndarray:
    """A ratio curve R(N) known at the sizes n, evaluated at the sizes n_query by linear
    interpolation in log N; NaN outside [min n, max n] (no extrapolation).

    n: (K,) increasing; ratio: (..., K), one curve per leading index; n_query: (Q,) or scalar.
    Returns (..., Q) (or (...) for a scalar n_query).
    """
    n = np.asarray(n, dtype=np.float64)
    ratio = np.asarray(ratio, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or np.any(n <= 0) or np.any(np.diff(n) <= 0):
        raise ValueError("n must be a non-empty increasing 1-D array of positive sizes")
    if ratio.ndim == 0 or ratio.shape[-1] != n.size:
        raise ValueError(f"ratio's last axis must have length {n.size}, got shape {ratio.shape}")
    q = np.asarray(n_query, dtype=np.float64)
    if q.ndim > 1 or np.any(~(q > 0)):
        raise ValueError("n_query must be a positive scalar or 1-D array")
    logn, logq = np.log(n), np.log(np.atleast_1d(q))
    curves = ratio.reshape(-1, n.size)
    out = np.stack([np.interp(logq, logn, c, left=np.nan, right=np.nan) for c in curves])
    out = out.reshape(ratio.shape[:-1] + (logq.size,))
    return out[..., 0] if q.ndim == 0 else out


def random_label_prediction(n_train, ratio_unconditional, n_classes: int) -> np.ndarray:
    """Predicted ratio with C random labels: R_random(N) = R_none(N / C) [GDPLLW23; docs/theory.md
    sec. 2], the unconditional curve (last axis over n_train) interpolated in log N at N / C
    (`ratio_curve_at`); NaN where N / C falls outside the measured n_train range."""
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    n = np.asarray(n_train, dtype=np.float64)
    return ratio_curve_at(n / n_classes, n, ratio_unconditional)
