"""Random-features theory of [BUBM25]: the spectrum of U and the two training timescales.

[BUBM25] Bonnaire, Urfin, Biroli, Mézard, "Why diffusion models don't memorize: the role of
implicit dynamical regularization in training", arXiv 2505.17638, section 4; official code
Theory/src/plot_spectrum_U.py (spectrum) and Training_random_features.py (training).

Per cell (d, psi_p, psi_n, t, seed): W and the training set from Generator(seed), the feature
matrices (model.features: the Gaussian equivalent of the official spectrum script, or the actual
tanh features) from Generator(seed + 10_000); U's eigenvalues as an empirical CDF on the theory's
lambda grid beside the theory density; the loss curves (train, test, error to the true score) of
gradient flow from A = 0, exact in U's eigenbasis (train.method = "exact") or by the official loop
(train.method = "gd" / "adam", fresh noise every step, learning rate train.lr_scale d / Delta_t,
noise from Generator(seed + 20_000)); tau_gen and tau_mem read off the curves
(`memphase.analysis.random_features`) and predicted from the bulks of the theory density
(`memphase.physics.random_features.predicted_timescales`). Assembled: the fit tau_mem ~ psi_n^a
with its seed-bootstrap interval (`memphase.analysis.training_dynamics.power_law_fit`).

Training time: tau = optimizer steps x learning rate (the official Training_time); the
dimensionless s = 2 Delta_t tau / d is the coordinate (one official GD step is ds = 2 lr_scale).
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from memphase.analysis.random_features import (curve_timescales, empirical_cdf,
                                               gap_crossing_times, kolmogorov_distance)
from memphase.analysis.training_dynamics import power_law_fit
from memphase.physics.random_features import (predicted_timescales, relaxation_rate,
                                              spectral_density, spectrum_grid, theory_cdf,
                                              timescale_scales)
from memphase.physics.random_features_dynamics import exact_dynamics

from ..run.config import ConfigError, Field
from ..learning.random_features import FEATURES, draw_problem, feature_matrices, train_sgd

GRID_AXES = ("d", "psi_p", "psi_n", "t", "seed")
MAX_P = 4096
MAX_N = 65536

SCHEMA = {
    "job": Field("str", choices=("random_features",), help="experiment to run"),
    "output": Field("str", "data/results/random_features.h5", help="results file (HDF5)"),
    "data": {
        "sigma_levels": Field("list[float]", [1.0], check=lambda v: 0 < v <= 100,
                              rule="0 < level <= 100",
                              help="eigenvalues of Sigma in equal blocks (official: [1] or [0.5, 1.5])"),
    },
    "grid": {
        "d": Field("list[int]", [32], check=lambda v: 2 <= v <= 2048, rule="2 <= d <= 2048",
                   help="data dimension d"),
        "psi_p": Field("list[float]", [64.0], check=lambda v: 0 < v <= 512, rule="0 < psi_p <= 512",
                       help="features per dimension psi_p = p / d"),
        "psi_n": Field("list[float]", [1.0, 2.0, 4.0, 8.0], check=lambda v: 0 < v <= 512,
                       rule="0 < psi_n <= 512", help="training points per dimension psi_n = n / d"),
        "t": Field("list[float]", [0.01], check=lambda v: 0 < v <= 10, rule="0 < t <= 10",
                   help="diffusion time of the trained score"),
        "seeds": Field("list[int]", [0, 1, 2], check=lambda v: v >= 0, rule="must be >= 0",
                       help="one (W, training set, Omega / noise) draw per seed"),
    },
    "model": {
        "features": Field("str", "gaussian_equivalent", choices=FEATURES,
                          help="U from the Gaussian equivalent (official spectrum protocol) or the "
                               "actual tanh features (Monte Carlo over noise_draws noises)"),
        "noise_draws": Field("int", 200, check=lambda v: 1 <= v <= 10**5, rule="1..1e5",
                             help="noises per training point for U of the tanh features"),
    },
    "train": {
        "method": Field("str", "exact", choices=("exact", "gd", "adam"),
                        help="exact gradient flow in U's eigenbasis, or the official loop"),
        "s_min": Field("float", 1e-3, check=lambda v: v > 0, rule="must be > 0",
                       help="first recorded dimensionless time s = 2 Delta tau / d"),
        "s_max": Field("float", 1e5, check=lambda v: v > 0, rule="must be > 0",
                       help="last recorded s (exact); gd / adam run s_max / (2 lr_scale) steps"),
        "n_times": Field("int", 240, check=lambda v: 4 <= v <= 10**4, rule="4..1e4",
                         help="recorded times, log-spaced"),
        "lr_scale": Field("float", 1e-2, check=lambda v: 0 < v <= 1, rule="0 < lr_scale <= 1",
                          help="learning rate = lr_scale d / Delta_t (official 1e-2)"),
    },
    "measure": {
        "spectrum_points": Field("int", 600, check=lambda v: 50 <= v <= 10**4, rule="50..1e4",
                                 help="lambda grid points of the theory density"),
        "gap_fractions": Field("list[float]", [0.01, 0.1, 0.5, 0.9], check=lambda v: 0 < v < 1,
                               rule="0 < fraction < 1",
                               help="reading-rule variants: tau_mem also read where the train-test "
                                    "gap reaches each fraction of its limit (tau_mem_at_fraction; "
                                    "memphase's rule is 0.5)"),
    },
}


def _times(cfg) -> np.ndarray:
    tr = cfg["train"]
    if tr["method"] == "exact":
        return np.geomspace(tr["s_min"], tr["s_max"], tr["n_times"])
    ds = 2 * tr["lr_scale"]
    steps = np.unique(np.geomspace(max(1, tr["s_min"] / ds), tr["s_max"] / ds,
                                   tr["n_times"]).astype(int))
    return steps * ds


def cells(cfg) -> list[dict]:
    g, tr = cfg["grid"], cfg["train"]
    if not tr["s_max"] > tr["s_min"]:
        raise ConfigError(f"train.s_max ({tr['s_max']}) must exceed train.s_min ({tr['s_min']})")
    for d, pp, pn in itertools.product(g["d"], g["psi_p"], g["psi_n"]):
        p, n = int(pp * d), int(pn * d)
        if not (1 <= p <= MAX_P and 1 <= n <= MAX_N):
            raise ConfigError(f"grid: p = psi_p d = {p} and n = psi_n d = {n} must satisfy "
                              f"1 <= p <= {MAX_P}, 1 <= n <= {MAX_N} (d={d}, psi_p={pp}, "
                              f"psi_n={pn})")
        if len(cfg["data"]["sigma_levels"]) > d:
            raise ConfigError(f"data.sigma_levels has more levels than d = {d}")
    if tr["method"] != "exact" and cfg["model"]["features"] != "tanh":
        raise ConfigError("train.method gd / adam trains the actual features: set "
                          "model.features = 'tanh'")
    if tr["method"] != "exact" and len(_times(cfg)) < 4:
        raise ConfigError("train: fewer than 4 distinct recorded steps; widen s_min .. s_max")
    return [{"d": d, "psi_p": pp, "psi_n": pn, "t": t, "seed": s}
            for d, pp, pn, t, s in itertools.product(g["d"], g["psi_p"], g["psi_n"], g["t"],
                                                     g["seeds"])]


def estimate(cfg, cell) -> dict:
    """Rough cost on one shared core: the theory density (~4 s for 600 points), eigh of U
    (~3e-9 p^3 s), U itself (Gaussian equivalent ~1e-9 p^2 n; tanh features ~1e-9 M n p (d + p)),
    the curves (~3e-9 p^2 per time) and for gd / adam ~4e-9 n p d per step; memory ~8 p^2 doubles."""
    d = cell["d"]
    p, n = int(cell["psi_p"] * d), int(cell["psi_n"] * d)
    m, tr = cfg["model"], cfg["train"]
    sec = 4.0 * cfg["measure"]["spectrum_points"] / 600 + 3e-9 * p ** 3
    sec += (1e-9 * p * p * n if m["features"] == "gaussian_equivalent"
            else 1e-9 * m["noise_draws"] * n * p * (d + p) + 2e-9 * p * p * 3600)
    sec += 3e-9 * p * p * tr["n_times"]
    if tr["method"] != "exact":
        sec += 4e-9 * n * p * d * tr["s_max"] / (2 * tr["lr_scale"])
    mem = 8 * (8 * p * p + 3 * n * p + 2 * d * p)
    return {"memory_bytes": int(mem), "seconds": float(sec)}


def run_cell(cfg, cell) -> dict:
    levels = cfg["data"]["sigma_levels"]
    m, tr = cfg["model"], cfg["train"]
    pb = draw_problem(cell["d"], cell["psi_p"], cell["psi_n"], cell["t"], levels, seed=cell["seed"])
    mats = feature_matrices(pb, m["features"], seed=cell["seed"] + 10_000,
                            noise_draws=m["noise_draws"])
    k = pb.consts
    lam = spectrum_grid(cell["psi_p"], cell["psi_n"], k, levels,
                        points=cfg["measure"]["spectrum_points"])
    rho = spectral_density(lam, cell["psi_p"], cell["psi_n"], k, levels)
    cdf = theory_cdf(lam, rho)
    ex = exact_dynamics(mats, k.delta)
    s = _times(cfg)
    kap = relaxation_rate(cell["t"], cell["d"])
    if tr["method"] == "exact":
        curves = ex.curves(s)
    else:
        steps = np.rint(s / (2 * tr["lr_scale"])).astype(int)
        curves = train_sgd(pb, mats, int(steps[-1]), steps, seed=cell["seed"] + 20_000,
                           optimizer=tr["method"], lr_scale=tr["lr_scale"])
    inf = ex.curves([np.inf])
    gap_inf = float(inf["test_loss"][0] - inf["train_loss"][0])
    meas = curve_timescales(s / kap, curves["train_loss"], curves["test_loss"], gap_inf)
    fracs = cfg["measure"]["gap_fractions"]
    at_frac = gap_crossing_times(s / kap, curves["train_loss"], curves["test_loss"], gap_inf, fracs)
    pred = predicted_timescales(lam, rho, cell["t"], cell["d"], psi_n=cell["psi_n"])
    lead = timescale_scales(cell["psi_p"], cell["psi_n"], k, cell["d"])
    return {
        "train_loss": np.asarray(curves["train_loss"]),
        "test_loss": np.asarray(curves["test_loss"]),
        "score_error": np.asarray(curves["score_error"]),
        "lambda_grid": lam, "density_theory": rho, "cdf_theory": cdf,
        "cdf_empirical": empirical_cdf(ex.lam, lam),
        "spectrum_distance": kolmogorov_distance(ex.lam, lam, cdf),
        "tau_gen": meas["tau_gen"], "tau_mem": meas["tau_mem"], "tau_mem_at_fraction": at_frac,
        "tau_mem_censored": float(meas["tau_mem_censored"]),
        "tau_gen_theory": pred["tau_gen"], "tau_mem_theory": pred["tau_mem"],
        "tau_gen_leading": lead["tau_gen"], "tau_mem_leading": lead["tau_mem"],
        "tau_mem_slow_theory": pred["tau_mem_slow"], "tau_mem_slow_leading": lead["tau_mem_slow"],
        "slow_gain_share": _slow_gain_share(ex, cell["d"], k.s2),
        "gap_infinity": gap_inf, "kappa": kap,
        "a_t": k.a, "b_t": k.b, "v_t2": k.v2, "s_t2": k.s2,
    }


def _slow_gain_share(ex, d: int, s2: float) -> float:
    """Fraction of the train-loss drop L_train(0) - L_train(inf) carried by the d smallest
    eigenvalues of U above the atom at s_t^2 (the slow bulk; `slow_bulk_factor`)."""
    gain = ex.train_gain()
    above = np.flatnonzero(ex.lam > s2 * (1 + 1e-6))
    return float(gain[above[:d]].sum() / gain.sum())


_CURVES = ("train_loss", "test_loss", "score_error")
_SPECTRUM = ("lambda_grid", "density_theory", "cdf_theory", "cdf_empirical")
_SCALARS = ("spectrum_distance", "tau_gen", "tau_mem", "tau_mem_censored", "tau_gen_theory",
            "tau_mem_theory", "tau_gen_leading", "tau_mem_leading", "tau_mem_slow_theory",
            "tau_mem_slow_leading", "slow_gain_share", "gap_infinity", "kappa",
            "a_t", "b_t", "v_t2", "s_t2")
_ATTRS = {
    "train_loss": ("1", "noise-averaged DSM loss on the training set, (1/(d n)) sum E|sqrt(Delta) "
                        "S_A + eta|^2"),
    "test_loss": ("1", "the same loss on fresh data (population)"),
    "score_error": ("1", "(1/d) E|S_A(x) + Gamma_t^{-1} x|^2, x ~ N(0, Gamma_t): error to the true score"),
    "lambda_grid": ("1", "eigenvalue grid of the theory density (per cell)"),
    "density_theory": ("1", "theory density of U, |Im q| / pi ([BUBM25] saddle point)"),
    "cdf_theory": ("1", "theory CDF of U's spectrum (unresolved mass at s_t^2 included)"),
    "cdf_empirical": ("1", "fraction of U's eigenvalues <= lambda_grid"),
    "spectrum_distance": ("1", "Kolmogorov distance sup |cdf_empirical - cdf_theory|"),
    "tau_gen": ("steps x learning rate", "measured: test loss half-way down to its minimum"),
    "tau_mem": ("steps x learning rate", "measured: train-test gap at half its tau -> inf value"),
    "tau_mem_censored": ("1", "1 when the gap never reached half its limit in the recorded times"),
    "tau_mem_at_fraction": ("steps x learning rate", "reading-rule variants: first time the gap "
                                                     "reaches gap_fraction x its limit (inf: never)"),
    "tau_gen_theory": ("steps x learning rate", "1 / (kappa x mean of the population bulk)"),
    "tau_mem_theory": ("steps x learning rate", "1 / (kappa x mean of the sample bulk); NaN for "
                                                "psi_n <= 1 (no sample bulk)"),
    "tau_gen_leading": ("steps x learning rate", "1 / (kappa (a^2 e^{-2t} sigma_x^2 + b^2) psi_p)"),
    "tau_mem_leading": ("steps x learning rate", "psi_n / (kappa v^2 psi_p)"),
    "tau_mem_slow_theory": ("steps x learning rate", "1 / (kappa x mean of the slow bulk) (third "
                                                     "bulk from the top; sets the half-gap time)"),
    "tau_mem_slow_leading": ("steps x learning rate", "1 / (kappa (s^2 + v^2 psi_p / (psi_n F_t))), "
                                                      "F_t = (a^2 e^{-2t} sigma_x^2 + b^2) / b^2"),
    "slow_gain_share": ("1", "fraction of the train-loss drop to A* carried by the d smallest "
                             "eigenvalues of U above s_t^2 (the slow bulk)"),
    "gap_infinity": ("1", "test - train loss of the minimizer A* (tau -> infinity)"),
    "kappa": ("1 / (steps x learning rate)", "2 Delta_t / d: mode lambda relaxes as exp(-kappa lambda tau)"),
    "a_t": ("1", "Gaussian-equivalence constant a_t"), "b_t": ("1", "b_t"),
    "v_t2": ("1", "v_t^2"), "s_t2": ("1", "s_t^2"),
}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    from .common import fill_grid

    g = cfg["grid"]
    values = {a: g["seeds" if a == "seed" else a] for a in GRID_AXES}
    pairs = list(zip(cell_list, results))
    s = _times(cfg)
    npts = max(len(r["lambda_grid"]) for r in results)
    curves = fill_grid(pairs, GRID_AXES, values, _CURVES, trailing=(len(s),))
    spec = fill_grid(pairs, GRID_AXES, values, _SPECTRUM, trailing=(npts,))
    scal = fill_grid(pairs, GRID_AXES, values, _SCALARS)
    fracs = list(cfg["measure"]["gap_fractions"])
    by_frac = fill_grid(pairs, GRID_AXES, values, ("tau_mem_at_fraction",),
                        trailing=(len(fracs),))
    dims = GRID_AXES
    data = {}
    for k_, v in curves.items():
        data[k_] = (dims + ("time",), v, _attrs(k_))
    for k_, v in spec.items():
        data[k_] = (dims + ("lambda_index",), v, _attrs(k_))
    for k_, v in scal.items():
        data[k_] = (dims, v, _attrs(k_))
    for k_, v in by_frac.items():
        data[k_] = (dims + ("gap_fraction",), v, _attrs(k_))
    coords = {
        "d": ("d", np.asarray(g["d"]), {"units": "1", "long_name": "data dimension"}),
        "psi_p": ("psi_p", np.asarray(g["psi_p"], float), {"units": "1", "long_name": "p / d"}),
        "psi_n": ("psi_n", np.asarray(g["psi_n"], float), {"units": "1", "long_name": "n / d"}),
        "t": ("t", np.asarray(g["t"], float), {"units": "diffusion time", "long_name": "t"}),
        "seed": ("seed", np.asarray(g["seeds"]), {"long_name": "random seed (W, data; +10000 "
                                                  "Omega / noises; +20000 training noise)"}),
        "time": ("time", s, {"units": "1", "long_name": "dimensionless training time s = 2 Delta_t "
                             "tau / d (tau = steps x learning rate)"}),
        "lambda_index": ("lambda_index", np.arange(npts)),
        "gap_fraction": ("gap_fraction", np.asarray(fracs, float),
                         {"units": "1", "long_name": "fraction of the limiting train-test gap at "
                                                     "which a tau_mem variant is read"}),
    }
    ds = xr.Dataset(data, coords=coords)
    fit = {}
    for idx in itertools.product(*(range(len(values[a])) for a in ("d", "psi_p", "t"))):
        sel = dict(zip(("d", "psi_p", "t"), idx))
        tau = ds["tau_mem"].isel(sel).transpose("psi_n", "seed").values
        fit[idx] = power_law_fit(np.asarray(g["psi_n"], float), tau)
    shape = tuple(len(values[a]) for a in ("d", "psi_p", "t"))
    fit_frac = np.full(shape + (len(fracs), 3), np.nan)
    for idx in itertools.product(*(range(n) for n in shape)):
        sel = dict(zip(("d", "psi_p", "t"), idx))
        for j in range(len(fracs)):
            tau = ds["tau_mem_at_fraction"].isel({**sel, "gap_fraction": j}).transpose("psi_n", "seed")
            r = power_law_fit(np.asarray(g["psi_n"], float), tau.values)
            fit_frac[idx + (j,)] = (r["exponent"], r["ci_low"], r["ci_high"])
    for j, key in enumerate(("exponent", "ci_low", "ci_high")):
        ds[f"tau_mem_at_fraction_{key}"] = (
            ("d", "psi_p", "t", "gap_fraction"), fit_frac[..., j],
            {"units": "1", "long_name": f"fit tau_mem_at_fraction ~ psi_n^a: {key} (as "
                                        "tau_mem_exponent)"})
    for key in ("exponent", "ci_low", "ci_high"):
        arr = np.full(shape, np.nan)
        for idx, r in fit.items():
            arr[idx] = r[key]
        ds[f"tau_mem_exponent{'' if key == 'exponent' else '_' + key}"] = (
            ("d", "psi_p", "t"), arr,
            {"units": "1", "long_name": f"fit tau_mem ~ psi_n^a: {key} (95 % seed-bootstrap "
                                        "percentile interval; analysis.training_dynamics.power_law_fit)"})
    ds.attrs.update({
        "reference": "[BUBM25] Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638",
        "features": cfg["model"]["features"], "train_method": cfg["train"]["method"],
        "sigma_levels": list(cfg["data"]["sigma_levels"]),
        "fit_method": next(iter(fit.values()))["method"] if fit else "",
    })
    return ds


def _attrs(name):
    units, long = _ATTRS[name]
    return {"units": units, "long_name": long}


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.random_features import plot_random_features

    plot_random_features(ds, path)
