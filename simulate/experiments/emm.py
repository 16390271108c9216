"""Effective model memorization per recipe [GDPLLW23]: EMM_eps = max{N : E R(N) >= 1 - eps}.

Each cell is one recipe (score, network, width, depth, embedding, weight decay, EMA, steps) on one
data law (d, intrinsic dimension, classes, label mode); `memphase.analysis.emm.emm_search` grows N
geometrically from n_start, then bisects, evaluating the memorization ratio averaged over
`grid.seeds` (each evaluation trains and samples one cell of the `memorization` experiment per
seed, `memorization.measure_ratio`). Stored: EMM (the largest evaluated N with mean ratio >=
1 - eps) with its bracket upper end, each seed's own crossing and their spread, and every
evaluated (N, ratio) point, padded with NaN along `evaluation` (the searches differ in length).
A search that does not cross inside [n_min, n_max] is recorded, not failed: emm = NaN when the
ratio is below 1 - eps already at n_min, emm_upper = NaN when it never falls below by n_max.

Data: the synthetic laws of `memorization`, or data.model = "digits" (the scikit-learn digits in
their top-d principal coordinates, subsets of N images drawn by seed; search.n_max <= 1797, the
number of images). Conditional learned scores follow `training.conditioning` (attribute
`conditioning`; `memorization` module docstring).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..run.config import ConfigError, Field
from . import memorization as mem

AXES = ("score",) + mem.RECIPE_AXES + mem.DATA_AXES

SEARCH_SCHEMA = {
    "eps": Field("float", 0.1, check=lambda v: 0 < v < 1, rule="in (0, 1)",
                 help="EMM threshold is 1 - eps"),
    "growth": Field("float", 2.0, check=lambda v: v > 1, rule="must be > 1",
                    help="geometric growth factor of N while bracketing"),
    "n_start": Field("int", 4, check=lambda v: v >= 2, rule="must be >= 2"),
    "n_min": Field("int", 2, check=lambda v: v >= 2, rule="must be >= 2 (NN_2 must exist)"),
    "n_max": Field("int", 1024, check=lambda v: v >= 2, rule="must be >= 2"),
    "rel_resolution": Field("float", 0.1, check=lambda v: 0 <= v < 1, rule="in [0, 1)",
                            help="bisect until upper - emm <= max(1, rel_resolution emm)"),
    "max_evaluations": Field("int", 24, check=lambda v: v >= 2, rule="must be >= 2",
                             help="evaluations per search (also the padded length)"),
}

SCHEMA = {
    "job": Field("str", choices=("emm",)),
    "output": Field("str", "data/results/emm.h5"),
    "data": mem.DATA_SCHEMA,
    "grid": {
        **mem.RECIPE_GRID,
        "score": Field("list[str]", ["learned"], choices=mem.SCORES),
        "seeds": Field("list[int]", [0, 1], check=lambda v: v >= 0, rule="must be >= 0",
                       help="averaged inside each search (not a cell axis)"),
    },
    "training": mem.TRAINING_SCHEMA,
    "sampler": mem.SAMPLER_SCHEMA,
    "measure": mem.MEASURE_SCHEMA,
    "search": SEARCH_SCHEMA,
}


def _n_min(cfg, cell) -> int:
    """Smallest N searched: n_min, and at least one point per class when conditional (with the
    official [GDPLLW23] random labels: the N from which their draw fills every class)."""
    n = cfg["search"]["n_min"]
    if cell["label_mode"] == "random" and cfg["data"]["random_labels"] == "gdpllw23":
        n = max(n, mem.gdpllw23_min_n(cell["n_classes"]) or n)
    return max(n, cell["n_classes"]) if cell["label_mode"] != "none" else n


def cells(cfg) -> list[dict]:
    s = cfg["search"]
    if not s["n_min"] <= s["n_start"] <= s["n_max"]:
        raise ValueError(f"need search.n_min <= n_start <= n_max, got {s['n_min']}, "
                         f"{s['n_start']}, {s['n_max']}")
    from ..data import digits  # noqa: F401 (loads data_real after data: no import cycle)
    from ..data.real import DIGITS_N

    if cfg["data"]["model"] == "digits" and s["n_max"] > DIGITS_N:
        raise ConfigError(f"search.n_max = {s['n_max']} exceeds the {DIGITS_N} scikit-learn "
                          f"digits (data.model = 'digits' needs n_max <= {DIGITS_N})")
    mem.check_grid(cfg, n_max=s["n_max"])
    return mem.unique_cells(mem.grid_points(cfg, AXES), mem.canonical_cell)


def run_cell(cfg, cell) -> dict:
    from memphase.analysis.emm import EMMNotBracketed, emm_search, seed_crossings, seed_spread

    s, seeds = cfg["search"], cfg["grid"]["seeds"]

    def ratio_fn(n):
        return np.array([mem.measure_ratio(cfg, {**cell, "n_train": n, "seed": seed})
                         for seed in seeds])

    n_min = _n_min(cfg, cell)
    try:
        res = emm_search(ratio_fn, max(s["n_start"], n_min), eps=s["eps"], growth=s["growth"],
                         rel_resolution=s["rel_resolution"], n_min=n_min, n_max=s["n_max"],
                         max_evaluations=s["max_evaluations"])
        emm, upper, ns, rs = float(res.emm), float(res.upper), res.n, res.ratio_seeds
        seed_emm = res.seed_emm
    except EMMNotBracketed as e:  # censored: recorded with the points seen
        ns, rs = e.n, e.ratio_seeds
        above = ns[rs.mean(1) >= 1 - s["eps"]]
        below = ns[rs.mean(1) < 1 - s["eps"]]
        emm = float(above.max()) if above.size else np.nan
        upper = float(below.min()) if below.size else np.nan
        seed_emm = seed_crossings(ns, rs, 1 - s["eps"])
    k = s["max_evaluations"]
    pad_n = np.full(k, np.nan)
    pad_r = np.full((k, len(seeds)), np.nan)
    pad_n[:ns.size], pad_r[:ns.size] = ns, rs
    std, sem = seed_spread(seed_emm)
    return {
        "emm": emm,
        "emm_upper": upper,
        "seed_emm": seed_emm,
        "emm_seed_std": std,
        "emm_seed_sem": sem,
        "n_evaluations": int(ns.size),
        "evaluated_n": pad_n,
        "evaluated_ratio_seeds": pad_r,
    }


def estimate(cfg, cell) -> dict:
    """Evaluations ~ log_growth(n_max / n_start) / 2 + log2(log growth / log(1 + rel_resolution)),
    each one `memorization` cell per seed at N up to n_max / 2 (rough; an upper guess)."""
    s = cfg["search"]
    bracket = np.log(s["n_max"] / s["n_start"]) / np.log(s["growth"]) / 2 + 1
    bisect = np.log2(np.log(s["growth"]) / np.log1p(max(s["rel_resolution"], 1e-3)))
    evals = int(min(s["max_evaluations"], np.ceil(bracket + max(bisect, 0))))
    one = mem.estimate(cfg, {**cell, "n_train": max(s["n_start"], s["n_max"] // 2), "seed": 0})
    return {"memory_bytes": one["memory_bytes"],
            "seconds": float(one["seconds"] * evals * len(cfg["grid"]["seeds"]))}


VARIABLES = {
    "emm": ((), "1", "EMM: largest evaluated N with seed-mean memorization ratio >= 1 - eps "
                     "[GDPLLW23] (NaN: below 1 - eps already at n_min)"),
    "emm_upper": ((), "1", "smallest evaluated N above EMM with ratio < 1 - eps (the crossing "
                           "lies in [emm, emm_upper); NaN: not reached by n_max)"),
    "emm_seed_std": ((), "1", "std over seeds of each seed's own crossing (log-N interpolation)"),
    "emm_seed_sem": ((), "1", "standard error of the seed-averaged crossing"),
    "n_evaluations": ((), "1", "number of N evaluated by the search"),
    "seed_emm": (("seed",), "1", "each seed's own crossing of 1 - eps (log-N interpolation)"),
    "evaluated_n": (("evaluation",), "1", "evaluated training-set sizes, in order (NaN padded)"),
    "evaluated_ratio_seeds": (("evaluation", "seed"), "1",
                              "memorization ratio per seed at each evaluated N (NaN padded)"),
}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g, s = cfg["grid"], cfg["search"]
    by_cell = {mem.cell_key(c): r for c, r in zip(cell_list, results)}
    shape = tuple(len(g[a]) for a in AXES)
    extra = {"seed": len(g["seeds"]), "evaluation": s["max_evaluations"]}
    arrays = {k: np.full(shape + tuple(extra[d] for d in dims), np.nan)
              for k, (dims, _, _) in VARIABLES.items()}
    for idx, point in zip(np.ndindex(shape), mem.grid_points(cfg, AXES)):
        res = by_cell[mem.cell_key(mem.canonical_cell(point))]
        for k in VARIABLES:
            arrays[k][idx] = res[k]
    data_vars = {k: (AXES + dims, arrays[k], {"units": u, "long_name": name})
                 for k, (dims, u, name) in VARIABLES.items()}
    coords = mem.coordinates(cfg, AXES + ("seed",))
    coords["evaluation"] = ("evaluation", np.arange(s["max_evaluations"]),
                            {"units": "1", "long_name": "index of the evaluation in the search"})
    ds = xr.Dataset(data_vars, coords=coords)
    ds["evaluated_ratio"] = ds["evaluated_ratio_seeds"].mean("seed", skipna=False)
    ds["evaluated_ratio"].attrs = {"units": "1",
                                   "long_name": "seed-mean memorization ratio at each evaluated N"}
    ds.attrs.update({"eps": s["eps"], "threshold": 1 - s["eps"], "growth": s["growth"],
                     "rel_resolution": s["rel_resolution"], "seed_streams": mem.SEED_STREAMS,
                     "conditioning": cfg["training"]["conditioning"]})
    return ds


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.memorization import plot_emm

    plot_emm(ds, path)
