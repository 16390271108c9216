"""Training dynamics of memorization [BUBM25]: the generalization time tau_gen, the memorization
time tau_mem, and the power law tau_mem ~ N^a, extracted from curves measured at training
checkpoints (see docs/training_dynamics.md).

[BUBM25] Bonnaire, Urfin, Biroli, Mezard, "Why diffusion models don't memorize: the role of
implicit dynamical regularization in training", arXiv 2505.17638: a network trained by denoising
score matching on N points generalizes after tau_gen (independent of N) and memorizes only after
tau_mem proportional to N, so the window [tau_gen, tau_mem] widens with N.

Definitions (training time = optimizer steps k; checkpoints k_1 < ... < k_K):

    tau_mem = first upward crossing of R_mem(k) = threshold (0.5), linear in log k between the
              two checkpoints that bracket it; R_mem the [GDPLLW23] memorization ratio.
              Censored (tau_mem = +inf, flag True) when R_mem stays below threshold up to k_K;
              k_1 when R_mem >= threshold already at the first checkpoint.
    tau_gen = first checkpoint k with q(k) <= (1 + tolerance) min_k q(k), q a quality measure
              (lower is better: score error vs the population score, distance to the true law).
              tau_gen_censored when that is the first checkpoint (tau_gen <= k_1: unresolved).
    a       : least-squares slope of mean_seeds log tau_mem against log N, over the N whose
              tau_mem is finite for every seed; its interval is the percentile interval of the
              same fit on seed-bootstrap resamples (whole seeds drawn with replacement).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

__all__ = ["crossing_step", "first_within_best", "extract_times", "power_law_fit",
           "fit_exponents", "training_dynamics_summary", "DEFAULT_THRESHOLD",
           "DEFAULT_GEN_TOLERANCE"]

DEFAULT_THRESHOLD = 0.5
DEFAULT_GEN_TOLERANCE = 0.2


def _steps(steps) -> np.ndarray:
    s = np.asarray(steps, dtype=float)
    if s.ndim != 1 or s.size < 1 or np.any(s <= 0) or np.any(np.diff(s) <= 0):
        raise ValueError(f"steps must be a 1-D increasing array of positive numbers, got {steps!r}")
    return s


def crossing_step(steps, values, threshold: float = DEFAULT_THRESHOLD) -> tuple[float, bool]:
    """(tau, censored): the first step at which `values` reaches `threshold` from below,
    interpolated linearly in log(step) between the checkpoints that bracket it.

        log tau = log k_{j-1} + (thr - v_{j-1}) / (v_j - v_{j-1}) (log k_j - log k_{j-1}),
        j the first checkpoint with v_j >= thr.

    Censored: (inf, True) when no checkpoint reaches the threshold (the crossing lies beyond the
    last step); (k_1, False) when the first checkpoint already does. NaN values (missing data):
    (nan, False)."""
    s = _steps(steps)
    v = np.asarray(values, dtype=float)
    if v.shape != s.shape:
        raise ValueError(f"values must have the shape of steps {s.shape}, got {v.shape}")
    if np.isnan(v).any():
        return math.nan, False
    above = np.flatnonzero(v >= threshold)
    if above.size == 0:
        return math.inf, True
    j = int(above[0])
    if j == 0:
        return float(s[0]), False
    v0, v1 = v[j - 1], v[j]
    frac = (threshold - v0) / (v1 - v0)
    return float(math.exp(math.log(s[j - 1]) + frac * (math.log(s[j]) - math.log(s[j - 1])))), False


def first_within_best(steps, quality, tolerance: float = DEFAULT_GEN_TOLERANCE) -> float:
    """The first checkpoint step k with q(k) <= (1 + tolerance) min_j q(j) (q >= 0, lower is
    better): when the quality measure first comes within `tolerance` (relative) of its best.
    NaN when q has NaN; q = +inf entries never qualify."""
    s = _steps(steps)
    q = np.asarray(quality, dtype=float)
    if q.shape != s.shape:
        raise ValueError(f"quality must have the shape of steps {s.shape}, got {q.shape}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    if np.isnan(q).any() or not np.isfinite(q).any():
        return math.nan
    best = np.min(q[np.isfinite(q)])
    return float(s[np.flatnonzero(q <= (1 + tolerance) * best + 1e-300)[0]])


def extract_times(ds: xr.Dataset, *, ratio: str = "memorization_ratio",
                  quality: str = "score_error_population", threshold: float = DEFAULT_THRESHOLD,
                  tolerance: float = DEFAULT_GEN_TOLERANCE, step_dim: str = "train_step"
                  ) -> xr.Dataset:
    """tau_gen, tau_gen_censored, tau_mem and tau_mem_censored for every curve of `ds` along
    `step_dim` (all other dims, n_train and seed included, are kept): `first_within_best` of
    ds[quality] and `crossing_step` of ds[ratio]. tau_gen_censored: tau_gen is the first
    checkpoint, so only tau_gen <= first checkpoint is known."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    for name in (ratio, quality):
        if name not in ds:
            raise ValueError(f"dataset has no variable {name!r}")
    steps = ds[step_dim].values

    def mem(v):
        return crossing_step(steps, v, threshold)

    tau_mem, cens = xr.apply_ufunc(mem, ds[ratio], input_core_dims=[[step_dim]],
                                   output_core_dims=[[], []], vectorize=True,
                                   output_dtypes=[float, bool])
    tau_gen = xr.apply_ufunc(lambda q: first_within_best(steps, q, tolerance), ds[quality],
                             input_core_dims=[[step_dim]], vectorize=True, output_dtypes=[float])
    last, first = float(steps[-1]), float(steps[0])
    return xr.Dataset({
        "tau_gen": tau_gen.assign_attrs(
            units="optimizer steps", quality=quality, tolerance=tolerance,
            long_name=f"generalization time: first checkpoint with {quality} <= (1 + "
                      f"{tolerance:g}) x its minimum over checkpoints [BUBM25]"),
        "tau_gen_censored": (tau_gen == first).assign_attrs(
            long_name=f"True when {quality} was already within tolerance of its best at the "
                      f"first checkpoint ({first:g} steps): tau_gen <= {first:g}, unresolved"),
        "tau_mem": tau_mem.assign_attrs(
            units="optimizer steps", threshold=threshold, budget=last,
            long_name=f"memorization time: first crossing of {ratio} = {threshold:g}, linear "
                      f"in log steps [BUBM25, GDPLLW23]; +inf when censored (beyond the "
                      f"budget of {last:g} steps, see tau_mem_censored)"),
        "tau_mem_censored": cens.assign_attrs(
            long_name=f"True when {ratio} stayed below {threshold:g} up to the last checkpoint "
                      f"({last:g} steps): tau_mem > budget, stored as +inf"),
    })


def power_law_fit(n, tau, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Fit tau ~ N^a to tau of shape (len(n), S) (S seeds, S = 1 allowed).

    Uses the N at which every seed has a finite positive tau (censored N are left out so that
    seeds which happened to memorize early do not bias the slope down). Point estimate: the
    least-squares slope of mean_s log tau against log N. Interval: with S >= 2 the percentile
    interval of the same slope over `n_boot` resamples of whole seeds (with replacement,
    numpy Generator(seed)); with S = 1 the slope's standard error times Student's t
    (n_points - 2 degrees of freedom; needs 3 points). Also the pooled standard error.

    Returns {exponent, ci_low, ci_high, stderr, n_points, method}; NaN when fewer than 2 N
    qualify."""
    from scipy import stats

    n = np.asarray(n, dtype=float)
    tau = np.asarray(tau, dtype=float)
    if tau.ndim == 1:
        tau = tau[:, None]
    if tau.shape[0] != n.shape[0] or n.ndim != 1:
        raise ValueError(f"tau must have shape (len(n), seeds), got {tau.shape} for {n.shape[0]} N")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    ok = np.all(np.isfinite(tau) & (tau > 0), axis=1) & (n > 0)
    out = {"exponent": math.nan, "ci_low": math.nan, "ci_high": math.nan, "stderr": math.nan,
           "n_points": int(ok.sum()), "method": "none (fewer than 2 N with finite tau)"}
    if ok.sum() < 2:
        return out
    x, logt = np.log(n[ok]), np.log(tau[ok])                 # (P,), (P, S)
    xc = x - x.mean()

    def slope(y):  # y (P,) or (P, B)
        return np.tensordot(xc, y - y.mean(0), axes=(0, 0)) / np.dot(xc, xc)

    out["exponent"] = float(slope(logt.mean(1)))
    s = logt.shape[1]
    pooled_x, pooled_y = np.repeat(x, s), logt.ravel()
    if pooled_x.size > 2 and np.ptp(pooled_x) > 0:
        out["stderr"] = float(stats.linregress(pooled_x, pooled_y).stderr)
    alpha = (1 - level) / 2
    if s >= 2:
        idx = np.random.default_rng(seed).integers(0, s, size=(n_boot, s))
        boot = slope(logt[:, idx].mean(2))                   # (n_boot,)
        out["ci_low"], out["ci_high"] = (float(np.quantile(boot, alpha)),
                                         float(np.quantile(boot, 1 - alpha)))
        out["method"] = f"percentile interval over {n_boot} seed-bootstrap resamples"
    elif x.size >= 3:
        res = stats.linregress(x, logt[:, 0])
        half = stats.t.ppf(1 - alpha, x.size - 2) * res.stderr
        out["ci_low"], out["ci_high"] = out["exponent"] - half, out["exponent"] + half
        out["method"] = "least-squares standard error x Student t (one seed)"
    else:
        out["method"] = "no interval (one seed, two N)"
    return out


def fit_exponents(tau: xr.DataArray, name: str, n_dim: str = "n_train", seed_dim: str = "seed",
                  level: float = 0.95) -> xr.Dataset:
    """`power_law_fit` of tau over (n_dim, seed_dim) for every other index of `tau`: variables
    {name}_exponent, {name}_exponent_ci_low, {name}_exponent_ci_high, {name}_exponent_stderr,
    {name}_exponent_n_points."""
    if seed_dim not in tau.dims:
        tau = tau.expand_dims(seed_dim, axis=-1)
    n = tau[n_dim].values
    keys = ("exponent", "ci_low", "ci_high", "stderr", "n_points")
    methods = set()

    def fit(t):
        r = power_law_fit(n, t, level=level)
        methods.add(r["method"])
        return tuple(float(r[k]) for k in keys)

    outs = xr.apply_ufunc(fit, tau, input_core_dims=[[n_dim, seed_dim]],
                          output_core_dims=[[]] * len(keys), vectorize=True,
                          output_dtypes=[float] * len(keys))
    what = f"exponent a of {name} ~ N^a (log-log least squares over N with finite {name} for " \
           f"every seed)"
    pct = f"{100 * level:g}%"
    desc = {"exponent": what, "ci_low": f"lower end of the {pct} interval of a",
            "ci_high": f"upper end of the {pct} interval of a",
            "stderr": "standard error of a from the pooled (N, seed) least-squares fit",
            "n_points": "number of N values used by the fit"}
    ds = xr.Dataset()
    for k, v in zip(keys, outs):
        var = f"{name}_exponent" if k == "exponent" else f"{name}_exponent_{k}"
        ds[var] = v.assign_attrs(long_name=desc[k], units="1",
                                 interval_method="; ".join(sorted(methods)))
    return ds


def training_dynamics_summary(ds: xr.Dataset, *, threshold: float = DEFAULT_THRESHOLD,
                              tolerance: float = DEFAULT_GEN_TOLERANCE,
                              quality: str = "score_error_population",
                              level: float = 0.95) -> xr.Dataset:
    """`extract_times` then `fit_exponents` for tau_mem and tau_gen: the Dataset of tau_gen,
    tau_mem, tau_mem_censored (dims of ds without train_step) and tau_mem_exponent,
    tau_gen_exponent with their intervals (dims without n_train and seed)."""
    times = extract_times(ds, quality=quality, threshold=threshold, tolerance=tolerance)
    out = times.merge(fit_exponents(times["tau_mem"], "tau_mem", level=level))
    return out.merge(fit_exponents(times["tau_gen"], "tau_gen", level=level))
