"""Quickstart: memorization of isotropic Gaussian training sets by the empirical score.

For each training-set size N (and seed), reverse-SDE samples from the empirical score and from the
population score; records along each trajectory the nearest training point of x_t / m(t), its
distance, and the measured collapse time t_hat_C (last change of that index [BBDM24]); at the end
the memorization ratio [GDPLLW23] and the collapse fraction [BDKOS25]. Theory: the REM collapse
time t_C and the finite-N collapse time for the same (N, d) (docs/theory.md).
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from memphase.physics.critical import collapse_time, collapse_time_finite_n
from memphase.physics.schedules import make_schedule

from ..run.config import Field
from ..run.cost import finite_n_theory_seconds
from ..data import isotropic_gaussian
from ..scores import make_score
from .common import fill_grid, observed_reverse_run, sampler_schema, sampler_time_range

_pos = dict(check=lambda v: v > 0, rule="must be > 0")

SCHEMA = {
    "job": Field("str", choices=("quickstart",), help="experiment to run"),
    "output": Field("str", "data/results/quickstart.h5", help="results file (HDF5)"),
    "data": {
        "d": Field("int", 16, check=lambda v: 1 <= v <= 4096, rule="1 <= d <= 4096",
                   help="data dimension"),
        "variance": Field("float", 1.0, **_pos, help="variance of the isotropic Gaussian"),
    },
    "grid": {
        "n_train": Field("list[int]", [4, 16, 64, 256, 1024, 4096],
                         check=lambda v: 2 <= v <= 10**7, rule="2 <= n_train <= 1e7",
                         help="training-set sizes N"),
        "score": Field("list[str]", ["empirical", "population"],
                       choices=("empirical", "population", "linear"), help="scores compared"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="seeds must be >= 0",
                       help="one training set and sampling noise per seed"),
    },
    "sampler": sampler_schema(steps=200, n_samples=512),
    "measure": {
        "collapse_tol": Field("float", 1e-2, **_pos, help="collapse-fraction distance tol"),
        "ratio_threshold": Field("float", 1 / 3, check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                                 help="memorization-ratio threshold"),
    },
}


def _schedule(cfg):
    return make_schedule(cfg["sampler"]["schedule"])


def cells(cfg) -> list[dict]:
    sampler_time_range(cfg)  # checks t_max_tau > t_min_tau before anything runs
    g = cfg["grid"]
    return [{"score": s, "n_train": n, "seed": seed}
            for s, n, seed in itertools.product(g["score"], g["n_train"], g["seeds"])]


def run_cell(cfg, cell) -> dict:
    sp, dc = cfg["sampler"], cfg["data"]
    sch = _schedule(cfg)
    data = isotropic_gaussian(cell["n_train"], dc["d"], dc["variance"], seed=cell["seed"],
                              dtype=sp["dtype"], device=sp["device"])
    score = make_score(cell["score"], data, sch)
    return observed_reverse_run(cfg, score, sch, data, 10_000 + cell["seed"])


def estimate_assembly(cfg, cells) -> dict:
    """Seconds of `assemble`'s theory: one finite-N collapse time per training-set size N >= 2
    (`memphase.simulate.run.cost.finite_n_theory_seconds`); the REM time is negligible."""
    sizes = sum(1 for n in cfg["grid"]["n_train"] if n >= 2)
    return {"seconds": finite_n_theory_seconds(sizes)}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g = cfg["grid"]
    t_ref = next(r["time"] for r in results)
    pairs, axes = list(zip(cell_list, results)), ("score", "n_train", "seed")
    values = {"score": g["score"], "n_train": g["n_train"], "seed": g["seeds"]}
    scal = fill_grid(pairs, axes, values, ("memorization_ratio", "collapse_fraction",
                                           "collapse_time_measured", "collapse_time_spread"))
    traj = fill_grid(pairs, axes, values, ("nearest_distance", "same_as_final"), (len(t_ref),))
    d = cfg["data"]["d"]
    n = np.asarray(g["n_train"])
    theory = collapse_time(n, np.full(d, cfg["data"]["variance"]), _schedule(cfg))
    finite = np.full(len(n), np.nan)
    ok = n >= 2
    if ok.any():
        finite[ok] = collapse_time_finite_n(n[ok], d, cfg["data"]["variance"], _schedule(cfg))
    dims = ("score", "n_train", "seed")
    ds = xr.Dataset(
        {
            "memorization_ratio": (dims, scal["memorization_ratio"], {
                "units": "1", "long_name": "fraction of samples with |x-NN1|/|x-NN2| < threshold"}),
            "collapse_fraction": (dims, scal["collapse_fraction"], {
                "units": "1", "long_name": "fraction of samples within tol of a training point"}),
            "collapse_time_measured": (dims, scal["collapse_time_measured"], {
                "units": "schedule time", "long_name": "mean last change time of nearest training point"}),
            "collapse_time_spread": (dims, scal["collapse_time_spread"], {
                "units": "schedule time", "long_name": "std over trajectories of that time"}),
            "nearest_distance": (dims + ("time",), traj["nearest_distance"], {
                "units": "data units", "long_name": "mean distance of x_t/m(t) to nearest training point"}),
            "same_as_final": (dims + ("time",), traj["same_as_final"], {
                "units": "1", "long_name": "fraction whose nearest training point is already the final one"}),
            "collapse_time_theory": (("n_train",), np.asarray(theory, float), {
                "units": "schedule time", "long_name": "REM collapse time t_C (d -> infinity), "
                "[BBDM24] arXiv 2402.18491; `memphase docs theory`"}),
            "collapse_time_finite_n_theory": (("n_train",), finite, {
                "units": "schedule time", "long_name": "finite-N collapse time t_C(N, d): zero of the "
                "exact excess entropy (`memphase docs theory`, 'Finite-N collapse time')"}),
        },
        coords={
            "score": ("score", list(g["score"]), {"long_name": "score function"}),
            "n_train": ("n_train", n, {"units": "1", "long_name": "training-set size N"}),
            "seed": ("seed", np.asarray(g["seeds"]), {"long_name": "random seed"}),
            "time": ("time", t_ref, {"units": "schedule time", "long_name": "reverse-time recording"}),
            "tau": ("time", next(r["tau"] for r in results), {
                "units": "data variance", "long_name": "data-scale noise variance tau"}),
            "alpha": ("n_train", np.log(n) / d, {"units": "1", "long_name": "alpha = log N / d"}),
        },
    )
    return ds


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots import plot_quickstart

    plot_quickstart(ds, path)
