"""The solvable linear one-step model of [H24] as an experiment (SCIENCE.md section 4, last bullet).

Each cell (N, d, T, seed) draws `repeats` training sets of N points from the sampling law
N(0, s^2 I_d), fits the exact least-squares one-step denoiser D(x) = A x + b at OU time T
(`physics.linear_model.fit_linear_denoiser`), and measures over the repeats:

- the exact KL(generated || sampling) of the Gaussian generated law N(b, A A^T), averaged over
  training sets; it is +inf for N <= d (N < d without intercept): rank(A A^T) = rank(C_N) < d and
  the generated law lives on the affine hull of the training set;
- the same average from the Wishart-spectrum estimator `expected_kl` (many more training sets);
- a Monte-Carlo check of the KL of the first training set, E_{x ~ p_gen}[log p_gen - log p_s] on
  samples x = A z + b, z ~ N(0, I) (the one-step generation itself), for the N in mc_n_train;
- the [H24] relative distance (D_train - D_fresh) / (int K_train^2 + int K_fresh^2) of the
  generated law to Gaussian KDEs (bandwidth s N^{-1/d}) of the training set and of N fresh
  samples, and P(generalizing) = P(relative distance > 0) over the repeats.

Stored beside (theory, no randomness): the O(1/N) large-N expansion of the average KL and its
N -> infinity value (d/2) phi(s^2) (`physics.linear_model.kl_large_n_limit`).

Randomness: every draw of a cell comes from numpy SeedSequence([seed, N, d]) (the same training
sets at every T: common random numbers), spawned into training/fresh sets, Monte-Carlo noise and
the `expected_kl` seed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import xarray as xr

from physics import linear_model as lm

from ..config import Field
from .common import fill_grid

SCHEMA = {
    "job": Field("str", choices=("linear_model",), help="experiment to run"),
    "output": Field("str", "data/results/linear_model.h5", help="results file (HDF5)"),
    "data": {
        "std": Field("float", 1.0, check=lambda v: v > 0, rule="must be > 0",
                     help="std s of the sampling law N(0, s^2 I)"),
        "intercept": Field("bool", True, help="fit D(x) = A x + b (true) or A x (false)"),
    },
    "grid": {
        "n_train": Field("list[int]", [2, 5, 9, 10, 11, 12, 15, 20, 30, 50, 100, 200, 400],
                         check=lambda v: 1 <= v <= 10**5, rule="1 <= n_train <= 1e5",
                         help="training-set sizes N"),
        "d": Field("list[int]", [10], check=lambda v: 1 <= v <= 512, rule="1 <= d <= 512",
                   help="data dimensions"),
        "T": Field("list[float]", [1.0], check=lambda v: 0 < v <= 50, rule="0 < T <= 50",
                   help="OU diffusion time of the fit (m = e^-T, sigma^2 = 1 - e^-2T)"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0"),
    },
    "measure": {
        "repeats": Field("int", 100, check=lambda v: 2 <= v <= 10**5, rule="2..1e5",
                         help="training sets per cell (KL average, relative distance, P(gen))"),
        "expected_kl_repeats": Field("int", 4000, check=lambda v: v >= 0, rule="must be >= 0",
                                     help="Wishart draws of expected_kl (0: skip)"),
        "mc_n_train": Field("list[int]", [11, 20, 100, 400], check=lambda v: v >= 1,
                            rule="must be >= 1", allow_empty=True,
                            help="N at which the KL is checked by Monte Carlo ([] : never)"),
        "mc_samples": Field("int", 100_000, check=lambda v: v >= 2, rule="must be >= 2",
                            help="generated samples of the Monte-Carlo KL check"),
        "smooth_generated": Field("bool", False,
                                  help="compare p_gen * k_h (not p_gen) with the KDEs"),
    },
}

INFINITE_KL_NOTE = ("KL(generated || sampling) is +inf where N - delta < d (delta = 1 with "
                    "intercept, 0 without): the generated covariance A A^T has rank of C_N < d, so "
                    "the generated law lives on the affine hull of the training set, a null set of "
                    "the sampling law [H24]; stored as inf")


def cells(cfg) -> list[dict]:
    g = cfg["grid"]
    missing = sorted(set(cfg["measure"]["mc_n_train"]) - set(g["n_train"]))
    if missing:
        raise ValueError(f"measure.mc_n_train values {missing} are not in grid.n_train")
    return [{"n_train": n, "d": d, "T": T, "seed": s}
            for n, d, T, s in itertools.product(g["n_train"], g["d"], g["T"], g["seeds"])]


def kl_monte_carlo(A, b, s, n_samples, rng) -> tuple[float, float]:
    """Monte-Carlo KL(p_gen || N(0, s^2 I)) on the one-step generation x = A z + b, z ~ N(0, I):
    mean and standard error of log p_gen(x) - log p_s(x), p_gen = N(b, A A^T) [H24].
    Needs A A^T positive definite (N > d with intercept)."""
    mean, cov = lm.generated_law(A, b)
    d = cov.shape[0]
    z = rng.standard_normal((n_samples, d))
    x = z @ A.T + b
    chol = np.linalg.cholesky(cov)
    v = np.linalg.solve(chol, (x - mean).T)
    log_gen = -0.5 * np.sum(v * v, axis=0) - np.sum(np.log(np.diag(chol)))
    log_sampling = -0.5 * np.sum(x * x, axis=1) / s**2 - d * math.log(s)
    ratio = log_gen - log_sampling  # the (2 pi)^{-d/2} factors cancel
    return float(ratio.mean()), float(ratio.std(ddof=1) / math.sqrt(n_samples))


def run_cell(cfg, cell) -> dict:
    n, d, T, seed = cell["n_train"], cell["d"], cell["T"], cell["seed"]
    s, intercept = cfg["data"]["std"], cfg["data"]["intercept"]
    ms = cfg["measure"]
    ss_sets, ss_mc, ss_wishart = np.random.SeedSequence([seed, n, d]).spawn(3)
    rng = np.random.default_rng(ss_sets)
    h = lm.kde_bandwidth(n, d, s)
    kls, rel = np.empty(ms["repeats"]), np.empty(ms["repeats"])
    first = None
    for r in range(ms["repeats"]):
        train = s * rng.standard_normal((n, d))
        fresh = s * rng.standard_normal((n, d))
        A, b = lm.fit_linear_denoiser(train, T=T, intercept=intercept)
        first = (A, b) if r == 0 else first
        kls[r] = lm.kl_generated_to_sampling(train, T=T, s=s, intercept=intercept)
        g_mean, g_cov = lm.generated_law(A, b)
        rel[r] = lm.relative_distance(g_mean, g_cov, train, fresh, h,
                                      smooth_generated=ms["smooth_generated"])
    finite = bool(np.all(np.isfinite(kls)))
    kl_mc = kl_mc_se = math.nan
    if finite and n in ms["mc_n_train"]:
        kl_mc, kl_mc_se = kl_monte_carlo(*first, s, ms["mc_samples"], np.random.default_rng(ss_mc))
    kl_exp = kl_exp_se = math.nan
    if ms["expected_kl_repeats"] >= 2:
        kl_exp, kl_exp_se = lm.expected_kl(n, d, T, ms["expected_kl_repeats"],
                                           int(ss_wishart.generate_state(1)[0]), s,
                                           intercept=intercept, return_stderr=True)
    return {
        "kl_mean": float(kls.mean()) if finite else math.inf,
        "kl_stderr": float(kls.std(ddof=1) / math.sqrt(kls.size)) if finite else math.nan,
        "kl_first": float(kls[0]),
        "kl_mc": kl_mc,
        "kl_mc_stderr": kl_mc_se,
        "kl_expected": float(kl_exp),
        "kl_expected_stderr": float(kl_exp_se),
        "relative_distance_mean": float(rel.mean()),
        "relative_distance_std": float(rel.std(ddof=1)),
        "p_generalizing": float(np.mean(rel > 0)),
    }


def estimate(cfg, cell) -> dict:
    """Rough cost, calibrated on 2 shared cores: per repeat ~2.5 ms of fitting and bookkeeping plus
    the two N x N KDE self-overlaps (~0.3 us per pair, logsumexp-bound); the Wishart estimator
    ~20 d^3 flop per draw; the MC check ~4 d^2 flop per sample."""
    n, d = cell["n_train"], cell["d"]
    ms = cfg["measure"]
    seconds = ms["repeats"] * (2.5e-3 + 3e-7 * n * n + 2e-8 * n * d * d)
    seconds += ms["expected_kl_repeats"] * 20 * d**3 / 1e9
    if n in ms["mc_n_train"]:
        seconds += 4 * ms["mc_samples"] * d * d / 1e9
    # measured peak ~7 N^2 doubles at N = 2000 (tests/simulate/test_memory_estimate.py)
    mem = 8 * (10 * n * n + 4 * n * d + 2 * ms["mc_samples"] * d
               + ms["expected_kl_repeats"] * d * d)
    return {"memory_bytes": int(mem), "seconds": seconds}


_VARS = {
    "kl_mean": ("nats", "mean over training sets of the exact KL(generated || sampling) [H24]"),
    "kl_stderr": ("nats", "standard error of kl_mean over training sets (nan where the KL is inf)"),
    "kl_first": ("nats", "exact KL of the first training set of the cell"),
    "kl_mc": ("nats", "Monte-Carlo KL of the first training set: mean log(p_gen/p_s) on x = A z + b "
              "(nan where not checked or infinite)"),
    "kl_mc_stderr": ("nats", "standard error of kl_mc"),
    "kl_expected": ("nats", "Wishart-spectrum estimate of the training-set average KL "
                    "(physics.linear_model.expected_kl)"),
    "kl_expected_stderr": ("nats", "standard error of kl_expected"),
    "relative_distance_mean": ("1", "[H24] (D_train - D_fresh) / (int K_train^2 + int K_fresh^2), "
                               "mean over training sets"),
    "relative_distance_std": ("1", "std over training sets of the relative distance"),
    "p_generalizing": ("1", "fraction of training sets with relative distance > 0 (generalizing)"),
}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g = cfg["grid"]
    axes = ("n_train", "d", "T", "seed")
    coords = {"n_train": g["n_train"], "d": g["d"], "T": g["T"], "seed": g["seeds"]}
    out = fill_grid(zip(cell_list, results), axes, coords, _VARS)
    s, intercept = cfg["data"]["std"], cfg["data"]["intercept"]
    n = np.asarray(g["n_train"], dtype=float)
    th_shape = (len(g["n_train"]), len(g["d"]), len(g["T"]))
    large_n, inf_n = np.empty(th_shape), np.empty(th_shape[1:])
    for j, d in enumerate(g["d"]):
        for k, T in enumerate(g["T"]):
            large_n[:, j, k] = lm.kl_large_n_limit(n, d, T=T, s=s, intercept=intercept)
            inf_n[j, k] = lm.kl_large_n_limit(np.inf, d, T=T, s=s, intercept=intercept)
    delta = 1 if intercept else 0
    infinite = ((n[:, None] - delta) < np.asarray(g["d"])[None, :]).astype(np.int8)
    data_vars = {k: (axes, out[k], {"units": u, "long_name": ln}) for k, (u, ln) in _VARS.items()}
    data_vars["kl_mean"][2]["note"] = INFINITE_KL_NOTE
    data_vars.update({
        "kl_large_n": (("n_train", "d", "T"), large_n, {
            "units": "nats", "long_name": "large-N expansion of the average KL to O(1/N) "
                                          "(physics.linear_model.kl_large_n_limit; valid for N >> d)"}),
        "kl_infinite_n": (("d", "T"), inf_n, {
            "units": "nats", "long_name": "N -> infinity limit (d/2) phi(s^2) of the average KL: the "
                                          "bias of the one-step model at finite T"}),
        "kl_is_infinite": (("n_train", "d"), infinite, {
            "units": "1", "long_name": "KL is +inf (N - delta < d)", "note": INFINITE_KL_NOTE}),
    })
    return xr.Dataset(
        data_vars,
        coords={
            "n_train": ("n_train", np.asarray(g["n_train"]), {
                "units": "1", "long_name": "training-set size N"}),
            "d": ("d", np.asarray(g["d"]), {"units": "1", "long_name": "data dimension"}),
            "T": ("T", np.asarray(g["T"], dtype=float), {
                "units": "OU time", "long_name": "diffusion time of the one-step fit"}),
            "seed": ("seed", np.asarray(g["seeds"]), {
                "units": "1", "long_name": "seed; draws from SeedSequence([seed, N, d])"}),
        },
        attrs={
            "model": "[H24] linear one-step denoiser, exact least squares, OU kernel "
                     "m = e^-T, sigma^2 = 1 - e^-2T, prior N(0, I)",
            "sampling_std": float(s),
            "intercept": int(intercept),
            "kde_bandwidth": "h = s N^(-1/d)",
            "repeats": cfg["measure"]["repeats"],
            "infinite_kl": INFINITE_KL_NOTE,
            "randomness": "per cell numpy SeedSequence([seed, N, d]).spawn(3): training and fresh "
                          "sets, Monte-Carlo noise, expected_kl seed (same sets at every T)",
        },
    )


def plot(ds: xr.Dataset, path) -> None:
    from analysis.regularization_plots import plot_linear_model

    plot_linear_model(ds, path)
