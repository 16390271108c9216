"""Geometric memorization [ALD24]: per-subspace loss of tangent dimensions on linear manifolds.

Each cell draws a linear manifold with two tangent blocks, (k1, s1) and (k2, s1 * std_ratio), plus
normal noise, builds a score (empirical, linear, or the Gaussian "population" approximation with
the manifold's covariance) and measures the data-unit Jacobian spectrum per block on a tau grid
(`analysis.dimensions.jacobian_sweep`): kept fraction of each block, its measured critical tau,
and the mean |eigenvalue| per block. Stored beside them: the [ALD24] critical tau per block
(`physics.critical.block_collapse_tau`), the predicted Jacobian singular values, and the REM
condition on the same spectrum (`rem_subspace_collapse_tau`).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import xarray as xr

from physics import critical
from physics.schedules import make_schedule

from ..config import Field
from ..data import linear_manifold
from ..scores import EmpiricalScore, GaussianScore, LinearScore

SCHEMA = {
    "job": Field("str", choices=("geometric",)),
    "output": Field("str", "data/results/geometric.h5"),
    "data": {
        "block_dims": Field("list[int]", [2, 5], check=lambda v: v >= 1, rule="must be >= 1",
                            help="dimensions of the two tangent blocks"),
        "std": Field("float", 1.0, check=lambda v: v > 0, rule="must be > 0",
                     help="std of the first block"),
        "normal_std": Field("float", 0.01, check=lambda v: v >= 0, rule="must be >= 0"),
        "normalize": Field("bool", True, help="points on a sphere ([ALD24] g = 0)"),
    },
    "grid": {
        "n_train": Field("list[int]", [250, 500, 1000, 20000], check=lambda v: 1 <= v <= 10**6,
                         rule="1 <= n_train <= 1e6"),
        "d": Field("list[int]", [30], check=lambda v: 2 <= v <= 1024, rule="2 <= d <= 1024"),
        "std_ratio": Field("list[float]", [0.3], check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                           help="std of block 2 / std of block 1"),
        "score": Field("list[str]", ["empirical", "linear", "population"],
                       choices=("empirical", "linear", "population")),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0"),
    },
    "measure": {
        "tau_min": Field("float", 1e-4, check=lambda v: v > 0, rule="must be > 0"),
        "tau_max": Field("float", 1.0, check=lambda v: v > 0, rule="must be > 0"),
        "n_tau": Field("int", 24, check=lambda v: 2 <= v <= 1000, rule="2..1000"),
        "n_points": Field("int", 16, check=lambda v: v >= 1, rule="must be >= 1"),
        "threshold": Field("float", 0.5, check=lambda v: 0 < v < 1, rule="in (0, 1)"),
        "schedule": Field("str", "ou", choices=("ou", "linear_vp", "ve")),
    },
}

BLOCKS = np.array([-1, 0, 1])  # normal space, block 1, block 2


def cells(cfg) -> list[dict]:
    g = cfg["grid"]
    if cfg["measure"]["tau_max"] <= cfg["measure"]["tau_min"]:
        raise ValueError("measure.tau_max must exceed measure.tau_min")
    k = sum(cfg["data"]["block_dims"])
    if len(cfg["data"]["block_dims"]) != 2:
        raise ValueError("data.block_dims must list exactly two block dimensions")
    if min(g["d"]) <= k:
        raise ValueError(f"every d must exceed the tangent dimension {k} (normal space needed)")
    return [{"score": s, "n_train": n, "d": d, "std_ratio": r, "seed": seed}
            for s, n, d, r, seed in itertools.product(g["score"], g["n_train"], g["d"],
                                                      g["std_ratio"], g["seeds"])]


def _blocks(cfg, cell):
    (k1, k2), s1 = cfg["data"]["block_dims"], cfg["data"]["std"]
    return [(k1, s1), (k2, s1 * cell["std_ratio"])]


def taus(cfg) -> np.ndarray:
    m = cfg["measure"]
    return np.geomspace(m["tau_min"], m["tau_max"], m["n_tau"])


def run_cell(cfg, cell) -> dict:
    from analysis.dimensions import jacobian_sweep

    dc, ms = cfg["data"], cfg["measure"]
    sch = make_schedule(ms["schedule"])
    blocks = _blocks(cfg, cell)
    data = linear_manifold(cell["n_train"], cell["d"], blocks, normal_std=dc["normal_std"],
                           normalize=dc["normalize"], seed=cell["seed"])
    stds = critical.block_stds(blocks, d=cell["d"], rest_std=max(dc["normal_std"], 1e-12))
    if cell["score"] == "empirical":
        score = EmpiricalScore(data, sch)
    elif cell["score"] == "linear":
        score = LinearScore(data, sch)
    else:  # Gaussian with the manifold's per-direction variances (exact when not normalized)
        cov = (data.basis * stds**2) @ data.basis.T
        score = GaussianScore(None, cov, sch)
    grid = taus(cfg)
    n_points = min(ms["n_points"], cell["n_train"])
    ds = jacobian_sweep(score, data, grid, n_points=n_points, seed=cell["seed"], schedule=sch,
                        threshold=ms["threshold"])
    ds = ds.reindex(block=BLOCKS)
    eig = ds["eigenvalue"].values  # (tau, point, direction)
    dir_block = ds["direction_block"].values
    mean_abs = np.stack([np.abs(eig[:, :, dir_block == b]).mean(axis=(1, 2)) if np.any(dir_block == b)
                         else np.full(grid.size, np.nan) for b in BLOCKS], axis=1)
    n = cell["n_train"]
    if n >= 2:
        sv = critical.jacobian_singular_values(grid, n, stds, normalized=dc["normalize"])
        order = np.concatenate([np.arange(sum(k for k, _ in blocks), cell["d"]),
                                np.arange(blocks[0][0]), blocks[0][0] + np.arange(blocks[1][0])])
        sv_block = np.stack([sv[:, order][:, dir_block == b].mean(axis=1) for b in BLOCKS], axis=1)
        theory = np.concatenate([[np.nan], critical.block_collapse_tau(
            n, blocks, normalized=dc["normalize"], rest_std=max(dc["normal_std"], 1e-12),
            d=cell["d"])[:2]])
        rem = float(critical.rem_subspace_collapse_tau(n, stds))
    else:
        sv_block = np.full((grid.size, 3), np.nan)
        theory, rem = np.full(3, np.nan), np.nan
    return {
        "kept_fraction": ds["kept_fraction"].values,
        "critical_tau": ds["critical_tau"].values,
        "eigenvalue_abs": mean_abs,
        "singular_value_theory": sv_block,
        "critical_tau_theory": theory,
        "critical_tau_rem": rem,
    }


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g = cfg["grid"]
    axes = ("score", "n_train", "d", "std_ratio", "seed")
    coords = {a: g["seeds" if a == "seed" else a] for a in axes}
    shape = tuple(len(coords[a]) for a in axes)
    grid = taus(cfg)
    out = {
        "kept_fraction": np.full(shape + (grid.size, 3), np.nan),
        "eigenvalue_abs": np.full(shape + (grid.size, 3), np.nan),
        "singular_value_theory": np.full(shape + (grid.size, 3), np.nan),
        "critical_tau": np.full(shape + (3,), np.nan),
        "critical_tau_theory": np.full(shape + (3,), np.nan),
        "critical_tau_rem": np.full(shape, np.nan),
    }
    for cell, res in zip(cell_list, results):
        i = tuple(list(coords[a]).index(cell[a]) for a in axes)
        for k in out:
            out[k][i] = res[k]
    tau_dims = axes + ("tau", "block")
    ds = xr.Dataset(
        {
            "kept_fraction": (tau_dims, out["kept_fraction"], {
                "units": "1", "long_name": "fraction of the block's directions kept (1 + tau lambda >= threshold)"}),
            "eigenvalue_abs": (tau_dims, out["eigenvalue_abs"], {
                "units": "1/data variance", "long_name": "mean |eigenvalue| of the data-unit score Jacobian in the block"}),
            "singular_value_theory": (tau_dims, out["singular_value_theory"], {
                "units": "1/data variance", "long_name": "[ALD24] predicted Jacobian singular value (block mean)"}),
            "critical_tau": (axes + ("block",), out["critical_tau"], {
                "units": "data variance", "long_name": "measured tau below which half of the block is lost"}),
            "critical_tau_theory": (axes + ("block",), out["critical_tau_theory"], {
                "units": "data variance", "long_name": "[ALD24] critical tau of the block"}),
            "critical_tau_rem": (axes, out["critical_tau_rem"], {
                "units": "data variance", "long_name": "REM condition on the same spectrum (one tau)"}),
        },
        coords={
            "score": ("score", list(g["score"])),
            "n_train": ("n_train", np.asarray(g["n_train"]), {"long_name": "training-set size N"}),
            "d": ("d", np.asarray(g["d"]), {"long_name": "ambient dimension"}),
            "std_ratio": ("std_ratio", np.asarray(g["std_ratio"]), {"long_name": "std block 2 / std block 1"}),
            "seed": ("seed", np.asarray(g["seeds"])),
            "tau": ("tau", grid, {"units": "data variance", "long_name": "data-scale noise variance"}),
            "block": ("block", BLOCKS, {"long_name": "-1 normal space, 0 first block, 1 second block"}),
        },
        attrs={"threshold": cfg["measure"]["threshold"],
               "blocks": f"dims {cfg['data']['block_dims']}, std {cfg['data']['std']} and std * std_ratio"},
    )
    return ds


def plot(ds: xr.Dataset, path) -> None:
    from analysis.plots import plot_geometric

    plot_geometric(ds, path)
