"""Collapse: the collapse-time / memorization phase diagram of [BBDM24] on isotropic Gaussian data.

Grid: dimension d x either training-set sizes N (`grid.n_train`) or rates alpha = log N / d
(`grid.alpha`, N = round(e^{alpha d})) -- exactly one of the two -- x scores (empirical, population,
linear) x seeds. Per cell, reverse trajectories of `sampler.n_samples` samples with the
`memphase.analysis.observers.NearestTrainingPoint` observer give

    collapse_time_measured / _spread   mean / std over trajectories of t_hat_C, the last time the
                                       nearest training point of x_t / m(t) changes [BBDM24]
    same_as_final (time)               fraction of trajectories already on their final training
                                       point: the order parameter of the (alpha, t) phase diagram
    memorization_ratio                 |x - NN1| / |x - NN2| < 1/3 at the end [GDPLLW23]
    collapse_fraction                  min_n |x - y_n| < tol at the end [BDKOS25]
    collapse_time_entropy (optional)   zero of the Monte-Carlo excess entropy [BBDM24, BM23]
                                       (`measure.excess_entropy = true`; empirical-score cells)

Theory stored beside (docs/theory.md): the REM collapse time t_C(N, d) and noise tau_C, the exact
finite-N collapse time and noise (`collapse_time_finite_n_theory`, `collapse_tau_finite_n_theory`:
the zero of the finite-N excess entropy, `memphase.physics.critical.collapse_tau_finite_n`; NaN where
N < 2 or tau_C lies outside the schedule's range), and the
memorization boundary for the sampler's end time t_end: the trajectories collapse before the end
iff t_C(N, d) > t_end, i.e. N < N_b(d) = (1 + s^2 / tau_end)^{d/2}, alpha < alpha_b.

The t_hat_C estimator is censored at the end time (cells with t_C < t_end show t_hat_C ~ t_end)
and biased late at small d (see memphase.simulate.cli.validate.LAST_CHANGE_MIN_D).

Seeds (cell seed s): training set s, sampling noise 10000 + s, fresh population samples for the
excess entropy 20000 + s, its Monte-Carlo noise 30000 + s (recorded in the Dataset attrs).
Variables that `memphase.analysis.plots.sweep` overlays follow its convention: `<name>_theory` beside
`<name>_measured`, and `boundary_axis` attributes on boundary lines.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import xarray as xr

from memphase.physics.critical import collapse_tau, collapse_tau_finite_n, collapse_time
from memphase.physics.schedules import make_schedule

from ..run.cost import kernel_block_bytes, kernel_seconds, sampling_bytes, sampling_seconds
from ..run.config import ConfigError, Field
from ..data import digits, isotropic_gaussian
from ..data.real import DIGITS_N, positive_spectrum, require_data_extra
from ..scores import make_score
from .common import (DIGITS_SCALE, DIGITS_WHITEN, fill_grid, observed_reverse_run,
                     recording_steps, sampler_schema, sampler_time_range)

__all__ = ["SCHEMA", "cells", "run_cell", "assemble", "plot", "estimate", "sizes",
           "sampler_time_range", "memorization_boundary_alpha", "memorization_boundary_n",
           "N_MAX", "SEED_OFFSETS", "spectrum"]

_pos = dict(check=lambda v: v > 0, rule="must be > 0")

#: largest training set a cell may hold (alpha grids grow N exponentially with d)
N_MAX = 10**7
#: seed of each random draw = cell seed + offset (training set: the cell seed itself)
SEED_OFFSETS = {"sampling": 10_000, "fresh": 20_000, "entropy_mc": 30_000}

SCHEMA = {
    "job": Field("str", choices=("collapse",), help="experiment to run"),
    "output": Field("str", "data/results/collapse.h5", help="results file (HDF5)"),
    "data": {
        "model": Field("str", "isotropic_gaussian", choices=("isotropic_gaussian", "digits"),
                       help="isotropic Gaussian, or the scikit-learn digits (grid.d = number of "
                            "principal components kept; needs memphase[data])"),
        "variance": Field("float", 1.0, **_pos, help="variance s^2 of the isotropic Gaussian"),
        "scale": DIGITS_SCALE,
        "whiten": DIGITS_WHITEN,
    },
    "grid": {
        "d": Field("list[int]", [8, 16, 32], check=lambda v: 1 <= v <= 4096, rule="1 <= d <= 4096",
                   help="data dimensions"),
        "n_train": Field("list[int]", [], check=lambda v: 2 <= v <= N_MAX,
                         rule=f"2 <= n_train <= {N_MAX:.0e}",
                         help="training-set sizes N (give n_train or alpha, not both)"),
        "alpha": Field("list[float]", [], check=lambda v: 0 < v <= 5, rule="0 < alpha <= 5",
                       help="rates alpha = log N / d, N = round(e^{alpha d}) (or n_train)"),
        "score": Field("list[str]", ["empirical", "population"],
                       choices=("empirical", "population", "linear"), help="scores compared"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="seeds must be >= 0",
                       help="one training set and sampling noise per seed"),
    },
    "sampler": sampler_schema(steps=150, n_samples=256, min_samples=2),
    "measure": {
        "collapse_tol": Field("float", 1e-2, **_pos, help="collapse-fraction distance tol"),
        "ratio_threshold": Field("float", 1 / 3, check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                                 help="memorization-ratio threshold"),
        "excess_entropy": Field("bool", False,
                                help="also measure t_C as the zero of the MC excess entropy"),
        "n_fresh": Field("int", 1000, check=lambda v: 2 <= v <= 10**6, rule="2..1e6",
                         help="fresh population samples for the excess entropy"),
        "n_entropy_times": Field("int", 13, check=lambda v: 2 <= v <= 1000, rule="2..1000",
                                 help="times (around the REM t_C) where it is evaluated"),
    },
}


# ----------------------------------------------------------------------------- grid


def _size_axis(cfg) -> str:
    """'n_train' or 'alpha': the one of the two the config sets (ConfigError otherwise)."""
    g = cfg["grid"]
    given = [k for k in ("n_train", "alpha") if g[k]]
    if len(given) != 1:
        what = "both" if given else "neither"
        raise ConfigError(f"[grid] must set exactly one of 'n_train' and 'alpha' ({what} given): "
                          f"N = round(exp(alpha d)) is derived from alpha")
    return given[0]


def sizes(cfg) -> np.ndarray:
    """(len(d), len(axis)) integer training-set sizes N of the grid; for an alpha grid
    N = round(e^{alpha d}) [BBDM24], checked to lie in [2, N_MAX] (ConfigError otherwise)."""
    g = cfg["grid"]
    axis = _size_axis(cfg)
    d = np.asarray(g["d"])[:, None]
    if axis == "n_train":
        return np.broadcast_to(np.asarray(g["n_train"], dtype=np.int64), (d.size, len(g["n_train"])))
    alpha = np.asarray(g["alpha"], dtype=float)[None, :]
    log_n = alpha * d
    for (i, j), ln in np.ndenumerate(log_n):
        if not math.log(1.5) <= ln <= math.log(N_MAX + 0.5):
            n = "overflow" if ln > 700 else f"{round(math.exp(ln)):g}"
            raise ConfigError(f"grid.alpha = {alpha[0, j]:g} with d = {d[i, 0]} gives "
                              f"N = round(exp(alpha d)) = {n} training points; need "
                              f"2 <= N <= {N_MAX:.0e}: change alpha or d")
    return np.rint(np.exp(log_n)).astype(np.int64)


def _is_digits(cfg) -> bool:
    return cfg["data"]["model"] == "digits"


def _check_digits(cfg, n) -> None:
    """Digits: N <= 1797 images, d <= 61 principal components (the rank), no excess entropy."""
    if not _is_digits(cfg):
        return
    require_data_extra()
    if int(np.max(n)) > DIGITS_N:
        raise ConfigError(f"data.model = 'digits' holds {DIGITS_N} images; grid asks for "
                          f"N = {int(np.max(n))}")
    if max(cfg["grid"]["d"]) > 61:
        raise ConfigError("data.model = 'digits': grid.d counts principal components, at most "
                          "61 (the rank of the digits)")
    if cfg["measure"]["excess_entropy"]:
        raise ConfigError("measure.excess_entropy is available for data.model = "
                          "'isotropic_gaussian' only")


def _data(cfg, n, d, seed, dtype="float64", device="cpu"):
    """The cell's training set: isotropic Gaussian, or N digits in the top-d PCA coordinates."""
    dc = cfg["data"]
    if _is_digits(cfg):
        return digits(n, seed=seed, scale=dc["scale"], whiten=dc["whiten"], n_components=d,
                      dtype=dtype, device=device)
    return isotropic_gaussian(n, d, dc["variance"], seed=seed, dtype=dtype, device=device)


def spectrum(cfg, d: int) -> np.ndarray:
    """Per-direction variances of the law at dimension d: s^2 (isotropic), or the top-d PCA
    eigenvalues of the digits (what every collapse theory of the cell uses)."""
    if _is_digits(cfg):
        return _data(cfg, 2, int(d), 0).variances()
    return np.full(int(d), cfg["data"]["variance"])


def cells(cfg) -> list[dict]:
    g = cfg["grid"]
    axis = _size_axis(cfg)
    sampler_time_range(cfg)  # checks t_max_tau > t_min_tau before anything runs
    n = sizes(cfg)
    _check_digits(cfg, n)
    out = []
    for s, (i, d), (j, v), seed in itertools.product(g["score"], enumerate(g["d"]),
                                                      enumerate(g[axis]), g["seeds"]):
        cell = {"score": s, "d": d, axis: v, "seed": seed}
        if axis == "alpha":
            cell["n_train"] = int(n[i, j])
        out.append(cell)
    return out


# ----------------------------------------------------------------------------- theory


def memorization_boundary_alpha(tau_end, variance):
    """Rate alpha_b below which isotropic Gaussian training sets collapse before the end time.

    The REM collapse noise tau_C = s^2 / (N^{2/d} - 1) (docs/theory.md, [BBDM24]) equals the
    end noise tau_end when N^{2/d} = 1 + s^2 / tau_end, i.e. alpha_b = (1/2) log(1 + s^2 / tau_end),
    independent of d; t_C(N, d) > t_end (collapse before the end) iff alpha < alpha_b.
    """
    tau_end = np.asarray(tau_end, dtype=float)
    if np.any(tau_end <= 0) or not variance > 0:
        raise ValueError(f"tau_end and variance must be > 0, got {tau_end!r}, {variance!r}")
    return 0.5 * np.log1p(variance / tau_end)


def memorization_boundary_n(d, tau_end, variance):
    """N_b(d) = e^{alpha_b d} = (1 + s^2 / tau_end)^{d/2}: training sets with N < N_b(d) collapse
    before the end noise tau_end (see `memorization_boundary_alpha`) [BBDM24]."""
    return np.exp(np.asarray(d, dtype=float) * memorization_boundary_alpha(tau_end, variance))


# ----------------------------------------------------------------------------- one cell


def _n_of(cell) -> int:
    return int(cell["n_train"])


def run_cell(cfg, cell) -> dict:
    sp, ms = cfg["sampler"], cfg["measure"]
    sch = make_schedule(sp["schedule"])
    d, n, seed = cell["d"], _n_of(cell), cell["seed"]
    data = _data(cfg, n, d, seed, dtype=sp["dtype"], device=sp["device"])
    score = make_score(cell["score"], data, sch)
    out = observed_reverse_run(cfg, score, sch, data, SEED_OFFSETS["sampling"] + seed)
    if ms["excess_entropy"]:
        out["collapse_time_entropy"] = (_entropy_collapse_time(cfg, cell, score, sch)
                                        if cell["score"] == "empirical" else float("nan"))
    out["collapse_tau_finite_n_theory"] = (_finite_n_tau(cfg, d, n, sch)
                                           if _is_theory_cell(cfg, cell) else float("nan"))
    return out


def _is_theory_cell(cfg, cell) -> bool:
    """The one cell of each (d, N) that computes the finite-N theory: the first score and seed of
    the grid. The theory (seconds per (d, N) for a many-level spectrum) then runs in the workers,
    counted in the cell's time and estimate, instead of serially after every cell."""
    g = cfg["grid"]
    return cell["score"] == g["score"][0] and cell["seed"] == g["seeds"][0]


def _finite_n_tau(cfg, d: int, n: int, sch) -> float:
    """Finite-N collapse noise tau_C(N, d) of the cell's law (`finite_n_theory` for one cell)."""
    tau, _ = finite_n_theory(np.array([[n]]), np.array([d]), cfg["data"]["variance"], sch,
                             [spectrum(cfg, d)] if _is_digits(cfg) else None)
    return float(tau[0, 0])


def _entropy_collapse_time(cfg, cell, score, sch) -> float:
    """Zero of the MC excess entropy f^e(t) [BBDM24, BM23] on times around the REM t_C:
    tau in tau_C * [1/8, 8] (log grid, clipped to the sampler's range); NaN if no crossing."""
    from memphase.analysis.critical_times import crossing_time, excess_entropy_mc

    sp, ms, var = cfg["sampler"], cfg["measure"], cfg["data"]["variance"]
    tau_c = float(collapse_tau(_n_of(cell), np.full(cell["d"], var)))
    taus = np.clip(tau_c * np.geomspace(1 / 8, 8, ms["n_entropy_times"]),
                   sp["t_min_tau"], sp["t_max_tau"])
    times = np.unique(np.asarray(sch.time_of_tau(taus), dtype=float))
    fresh = isotropic_gaussian(ms["n_fresh"], cell["d"], var,
                               seed=SEED_OFFSETS["fresh"] + cell["seed"], dtype=sp["dtype"],
                               device=sp["device"])
    f, _ = excess_entropy_mc(score, fresh, times, seed=SEED_OFFSETS["entropy_mc"] + cell["seed"])
    return crossing_time(times, f, 0.0)


def estimate(cfg, cell) -> dict:
    """{'memory_bytes', 'seconds'} for one cell (one thread): the reverse run with its nearest-point
    observer (`memphase.simulate.run.cost.sampling_seconds`) and, when asked, the excess entropy (n_times
    kernel calls on the fresh samples). Memory: `memphase.simulate.run.cost.sampling_bytes` (training set,
    samples, one logits block at the kernel's own chunk size) plus the fresh samples' block."""
    sp, ms = cfg["sampler"], cfg["measure"]
    d, n = int(cell["d"]), _n_of(cell)
    b, steps, rec = sp["n_samples"], sp["steps"], len(recording_steps(cfg))
    item = 4 if sp["dtype"] == "float32" else 8
    mem = sampling_bytes(b, n, d, rec, sp["dtype"]) + item * 2 * d * d    # + a Gaussian's (d, d)
    seconds = sampling_seconds(cell["score"], b, n, d, steps, rec, sp["dtype"], sp["method"])
    if ms["excess_entropy"] and cell["score"] == "empirical":
        m = ms["n_fresh"]
        seconds += ms["n_entropy_times"] * kernel_seconds(m, n, d, sp["dtype"])
        mem += item * 2 * m * d + kernel_block_bytes(m, n, sp["dtype"])
    if _is_theory_cell(cfg, cell):
        seconds += FINITE_N_SECONDS["spectrum" if _is_digits(cfg) else "isotropic"]
    return {"memory_bytes": int(mem), "seconds": seconds}


#: seconds of one finite-N collapse noise on one core (docs/theory.md): the isotropic path, and
#: a many-level PCA spectrum (quasi-Monte Carlo over u; measured 4-6 s at d = 61)
FINITE_N_SECONDS = {"isotropic": 0.5, "spectrum": 6.0}


# ----------------------------------------------------------------------------- dataset


def finite_n_theory(n, d, variance, schedule, spectra=None):
    """Finite-N collapse noise and time per (d, size) cell (`collapse_tau_finite_n`, mapped to the
    schedule's time); NaN where N < 2 or where tau_C is outside the schedule's tau range.
    spectra: optional list (one per d) of per-direction variances replacing the isotropic one
    (zero variances dropped, `positive_spectrum`; many distinct levels: seconds per cell,
    docs/theory.md)."""
    n = np.asarray(n, dtype=float)
    tau = np.full(n.shape, np.nan)
    t = np.full(n.shape, np.nan)
    for i, dd in enumerate(np.asarray(d)):
        for j, nn in enumerate(n[i]):
            if not nn >= 2:
                continue
            tau[i, j] = float(
                collapse_tau_finite_n(nn, int(dd), variance) if spectra is None
                else collapse_tau_finite_n(nn, positive_spectrum(spectra[i]).size,
                                           spectrum=positive_spectrum(spectra[i])))
            try:
                t[i, j] = float(schedule.time_of_tau(tau[i, j]))
            except ValueError:
                pass
    return tau, t


def _finite_n_from_cells(cfg, pairs, n, d, sch, spectra):
    """The finite-N theory grid (tau, time) from the theory cells' results (`_is_theory_cell`);
    a (d, N) without one (a journal written before the theory moved into the cells) is computed
    here."""
    axis = _size_axis(cfg)
    g = cfg["grid"]
    tau = np.full(n.shape, np.nan)
    have = np.zeros(n.shape, dtype=bool)
    for cell, res in pairs:
        value = res.get("collapse_tau_finite_n_theory")
        if value is not None and _is_theory_cell(cfg, cell):
            i, j = list(g["d"]).index(cell["d"]), list(g[axis]).index(cell[axis])
            tau[i, j], have[i, j] = float(value), True
    for i, j in zip(*np.nonzero(~have)):
        one, _ = finite_n_theory(n[i:i + 1, j:j + 1], d[i:i + 1], cfg["data"]["variance"], sch,
                                 spectra[i:i + 1] if _is_digits(cfg) else None)
        tau[i, j] = float(one[0, 0])
    t = np.full(n.shape, np.nan)
    for (i, j), value in np.ndenumerate(tau):
        if np.isfinite(value):
            try:
                t[i, j] = float(sch.time_of_tau(value))
            except ValueError:
                pass
    return tau, t


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g, var = cfg["grid"], cfg["data"]["variance"]
    axis = _size_axis(cfg)
    axes = ("score", "d", axis, "seed")
    values = {"score": list(g["score"]), "d": list(g["d"]), axis: list(g[axis]),
              "seed": list(g["seeds"])}
    t_ref = np.asarray(next(r["time"] for r in results))
    tau_ref = np.asarray(next(r["tau"] for r in results))
    scalar_keys = ["memorization_ratio", "collapse_fraction", "collapse_time_measured",
                   "collapse_time_spread"]
    if cfg["measure"]["excess_entropy"]:
        scalar_keys.append("collapse_time_entropy")
    pairs = list(zip(cell_list, results))
    scal = fill_grid(pairs, axes, values, scalar_keys)
    traj = fill_grid(pairs, axes, values, ("nearest_distance", "same_as_final"), (t_ref.size,))

    sch = make_schedule(cfg["sampler"]["schedule"])
    d = np.asarray(g["d"])
    n = sizes(cfg)
    spectra = [spectrum(cfg, int(dd)) for dd in d]
    tau_c = np.stack([collapse_tau(n[i], spectra[i]) for i in range(d.size)])
    t_c = np.stack([collapse_time(n[i], spectra[i], sch) for i in range(d.size)])
    tau_fin, t_fin = _finite_n_from_cells(cfg, pairs, n, d, sch, spectra)
    _, t_end = sampler_time_range(cfg)
    tau_end = float(sch.tau(t_end))
    # alpha_b d = (1/2) sum_j log(1 + s_j^2 / tau_end): tau_C(N_b) = tau_end for any spectrum
    alpha_b_d = np.array([0.5 * np.sum(np.log1p(sp_ / tau_end)) / sp_.size for sp_ in spectra])
    grid2 = ("d", axis)
    t_units = "schedule time"
    dims = axes
    data_vars = {
        "memorization_ratio": (dims, scal["memorization_ratio"], {
            "units": "1", "long_name": "fraction of samples with |x-NN1|/|x-NN2| < threshold"}),
        "collapse_fraction": (dims, scal["collapse_fraction"], {
            "units": "1", "long_name": "fraction of samples within tol of a training point"}),
        "collapse_time_measured": (dims, scal["collapse_time_measured"], {
            "units": t_units, "long_name": "mean last-change time of the nearest training point "
                                           "(censored at the end time)"}),
        "collapse_time_spread": (dims, scal["collapse_time_spread"], {
            "units": t_units, "long_name": "std over trajectories of the last-change time"}),
        "nearest_distance": (dims + ("time",), traj["nearest_distance"], {
            "units": "data units", "long_name": "mean distance of x_t/m(t) to nearest training point"}),
        "same_as_final": (dims + ("time",), traj["same_as_final"], {
            "units": "1", "long_name": "fraction of trajectories already on their final training point"}),
        "collapse_time_theory": (grid2, t_c, {
            "units": t_units, "long_name": "REM collapse time t_C (`memphase docs theory`)",
            "boundary_axis": "time"}),
        "collapse_time_finite_n_theory": (grid2, t_fin, {
            "units": t_units, "long_name": "finite-N collapse time t_C(N, d): zero of the exact "
                                           "finite-N excess entropy (`memphase docs theory`)",
            "boundary_axis": "time", "line_style": ":"}),
        "collapse_tau_finite_n_theory": (grid2, tau_fin, {
            "units": "data variance", "long_name": "finite-N collapse noise tau_C(N, d)",
            "boundary_axis": "tau", "line_style": ":"}),
        "collapse_tau_theory": (grid2, tau_c, {
            "units": "data variance", "long_name": "REM collapse noise tau_C: "
                                                   "(1/2) sum_j log(1 + s_j^2/tau_C) = log N",
            "boundary_axis": "tau"}),
        "memorization_boundary_alpha": (("d",), alpha_b_d, {
            "units": "1", "long_name": "alpha_b: t_C = end time, collapse for alpha < alpha_b",
            "boundary_axis": "alpha"}),
        "memorization_boundary_n_train": (("d",), np.exp(d * alpha_b_d), {
            "units": "1", "long_name": "N_b(d): t_C = end time, collapse for N < N_b",
            "boundary_axis": "n_train"}),
    }
    if "collapse_time_entropy" in scal:
        data_vars["collapse_time_entropy"] = (dims, scal["collapse_time_entropy"], {
            "units": t_units, "long_name": "zero of the Monte-Carlo excess entropy (empirical score)"})
    grid_vals = np.asarray(g[axis])
    if axis == "alpha":
        size_coords = {
            "alpha": ("alpha", grid_vals, {"units": "1", "long_name": "alpha = log N / d"}),
            "n_train": (grid2, n, {"units": "1", "long_name": "training-set size N = round(e^(alpha d))"}),
        }
    else:
        size_coords = {
            "n_train": ("n_train", grid_vals, {"units": "1", "long_name": "training-set size N"}),
            "alpha": (grid2, np.log(n) / d[:, None], {"units": "1", "long_name": "alpha = log N / d"}),
        }
    ds = xr.Dataset(
        data_vars,
        coords={
            "score": ("score", values["score"], {"units": "1", "long_name": "score function"}),
            "d": ("d", d, {"units": "1", "long_name": "data dimension d"}),
            **size_coords,
            "seed": ("seed", np.asarray(g["seeds"]), {"units": "1", "long_name": "random seed"}),
            "time": ("time", t_ref, {"units": t_units, "long_name": "reverse-time recording"}),
            "tau": ("time", tau_ref, {"units": "data variance",
                                      "long_name": "data-scale noise variance tau"}),
        },
        attrs={
            "size_axis": axis,
            "variance": var,
            "data_model": cfg["data"]["model"],
            "data_note": ("digits: top-d PCA coordinates of the scikit-learn digits, pixels "
                          f"scale {cfg['data']['scale']!r}, whiten {cfg['data']['whiten']}; "
                          "theories use the PCA eigenvalues; the finite-N theory of this "
                          "many-level spectrum averages over u by quasi-Monte Carlo with "
                          "regression control variates (tau_C to ~3e-4 relative; "
                          "`memphase docs theory`)"
                          if _is_digits(cfg) else
                          "isotropic Gaussian of the given variance"),
            "end_time": t_end,
            "end_tau": tau_end,
            "seed_rule": ("training set = seed; " + ", ".join(
                f"{k} = {v} + seed" for k, v in SEED_OFFSETS.items())),
        },
    )
    return ds


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.collapse import plot_collapse

    plot_collapse(ds, path)
