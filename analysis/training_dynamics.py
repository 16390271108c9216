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
           "fit_exponents", "training_dynamics_summary", "censored_power_law_fit",
           "distinct_resamples", "censored_exponents", "DEFAULT_THRESHOLD",
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


def distinct_resamples(s: int) -> int:
    """Number of distinct bootstrap resamples of s seeds (multisets of size s from s items):
    C(2s - 1, s); 3 for two seeds, 10 for three, 35 for four, 126 for five."""
    return math.comb(2 * s - 1, s)


def _tobit_fit(x, y, lower, upper):
    """MLE of y = c + a x + s e, e ~ N(0, 1), with y[lower] only a lower bound (true >= y,
    right-censored) and y[upper] only an upper bound (true <= y, left-censored). Returns a or NaN.

        log L = sum_exact [log phi(r) - log s] + sum_lower log Phi(-r) + sum_upper log Phi(r),
        r = (y - c - a x) / s."""
    from scipy import optimize, special

    exact = ~(lower | upper)
    if exact.sum() < 2 or np.ptp(x[exact]) == 0:
        return math.nan
    a0, c0 = np.polyfit(x[exact], y[exact], 1)
    s0 = max(float(np.std(y[exact] - (c0 + a0 * x[exact]))), 0.05)

    def nll(p):
        c, a, ls = p
        sd = math.exp(ls)
        r = (y - c - a * x) / sd
        out = 0.5 * (r[exact] ** 2).sum() + exact.sum() * (ls + 0.5 * math.log(2 * math.pi))
        return out - special.log_ndtr(-r[lower]).sum() - special.log_ndtr(r[upper]).sum()

    res = optimize.minimize(nll, [c0, a0, math.log(s0)], method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
    # a perfect fit drives s to 0 and stops the simplex on its iteration cap: a is still the fit
    return float(res.x[1]) if np.all(np.isfinite(res.x)) else math.nan


def censored_power_law_fit(n, tau, lower=None, upper=None, n_boot: int = 1000,
                           level: float = 0.95, seed: int = 0) -> dict:
    """Fit tau ~ N^a to tau of shape (len(n), S) keeping censored values as bounds (a Tobit
    regression of log tau on log N, every (N, seed) one observation):

        log tau_{N,s} = c + a log N + s e,  e ~ N(0, 1);
        lower[N, s]: tau is only a lower bound (memorization beyond the budget: pass the budget);
        upper[N, s]: tau is only an upper bound (tau_gen at the first checkpoint).

    Interval: percentile interval over `n_boot` resamples of whole seeds (numpy Generator(seed)).
    Returns {exponent, ci_low, ci_high, n_censored_lower, n_censored_upper, n_exact,
    distinct_resamples, method}; NaN exponent when fewer than 2 exact values at distinct N."""
    n = np.asarray(n, dtype=float)
    tau = np.asarray(tau, dtype=float)
    if tau.ndim == 1:
        tau = tau[:, None]
    lower = np.zeros(tau.shape, bool) if lower is None else np.asarray(lower, bool).reshape(tau.shape)
    upper = np.zeros(tau.shape, bool) if upper is None else np.asarray(upper, bool).reshape(tau.shape)
    if tau.shape[0] != n.shape[0]:
        raise ValueError(f"tau must have shape (len(n), seeds), got {tau.shape} for {n.shape[0]} N")
    if np.any(lower & upper):
        raise ValueError("a value cannot be both a lower and an upper bound")
    ok = np.isfinite(tau) & (tau > 0)
    s = tau.shape[1]
    out = {"exponent": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "n_censored_lower": int((lower & ok).sum()), "n_censored_upper": int((upper & ok).sum()),
           "n_exact": int((ok & ~lower & ~upper).sum()), "distinct_resamples": distinct_resamples(s),
           "method": "Tobit (censored normal) MLE of log tau on log N"}

    def fit(cols):
        t, lo, up, good = tau[:, cols], lower[:, cols], upper[:, cols], ok[:, cols]
        xx = np.broadcast_to(np.log(n)[:, None], t.shape)[good]
        return _tobit_fit(xx, np.log(t[good]), lo[good], up[good])

    out["exponent"] = fit(np.arange(s))
    if math.isnan(out["exponent"]) or s < 2:
        return out
    rng = np.random.default_rng(seed)
    boot = np.array([fit(rng.integers(0, s, size=s)) for _ in range(n_boot)])
    boot = boot[np.isfinite(boot)]
    if boot.size:
        alpha = (1 - level) / 2
        out["ci_low"], out["ci_high"] = (float(np.quantile(boot, alpha)),
                                         float(np.quantile(boot, 1 - alpha)))
        out["method"] += (f"; percentile interval over {boot.size} seed-bootstrap resamples "
                          f"({out['distinct_resamples']} distinct)")
    return out


def censored_exponents(times: xr.Dataset, budget: float, n_boot: int = 1000) -> xr.Dataset:
    """`censored_power_law_fit` of tau_mem (censored values = the budget, lower bounds) and of
    tau_gen (tau_gen_censored values are upper bounds) over (n_train, seed), for every other index:
    {name}_exponent_tobit, _tobit_ci_low, _tobit_ci_high."""
    out = xr.Dataset()
    for name, flag, kind in (("tau_mem", "tau_mem_censored", "lower"),
                             ("tau_gen", "tau_gen_censored", "upper")):
        tau = times[name].where(~times[flag], budget) if kind == "lower" else times[name]

        def one(t, c, kind=kind):
            r = censored_power_law_fit(times["n_train"].values, t, n_boot=n_boot,
                                       **{kind: c})
            return r["exponent"], r["ci_low"], r["ci_high"]

        a, lo, hi = xr.apply_ufunc(one, tau, times[flag],
                                   input_core_dims=[["n_train", "seed"]] * 2,
                                   output_core_dims=[[], [], []], vectorize=True,
                                   output_dtypes=[float] * 3)
        what = ("censored values kept as bounds (beyond the budget: tau_mem >= budget)"
                if kind == "lower" else "tau_gen at the first checkpoint kept as an upper bound")
        out[f"{name}_exponent_tobit"] = a.assign_attrs(
            units="1", long_name=f"exponent a of {name} ~ N^a by censored (Tobit) regression, "
                                 f"{what}")
        out[f"{name}_exponent_tobit_ci_low"] = lo.assign_attrs(
            units="1", long_name="lower end of the 95% seed-bootstrap interval (Tobit fit)")
        out[f"{name}_exponent_tobit_ci_high"] = hi.assign_attrs(
            units="1", long_name="upper end of the 95% seed-bootstrap interval (Tobit fit)")
    out.attrs["distinct_resamples"] = distinct_resamples(times.sizes["seed"])
    return out
