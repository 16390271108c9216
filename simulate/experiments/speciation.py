"""Speciation [BBDM24]: the time t_S at which reverse trajectories commit to a class.

Data: the two-class mixture (1/2) N(+m, I) + (1/2) N(-m, I) with |m|^2 = d (docs/theory.md).
For each d (and seed) the cloning observable is measured on a grid of branching times around the
prediction t_S = (1/2) ln d: n_traj reverse trajectories run to the branching time t_b, each is
split into clones with independent noise, and phi(t_b) is the fraction of clone pairs that end in
the same class (sign of x . m). The measured t_S is where phi crosses phi(t_S) = 0.77520
(`memphase.physics.critical.PHI_AT_SPECIATION`, exact E[expit(2 + 2z)]), with a
bootstrap CI over trajectories. Scores: the population score of the mixture, or the empirical score
of N mixture points (which speciates at the same time as long as N is large enough [BBDM24]).
Stored beside the measurement: the theory curve phi(t) (`memphase.physics.critical.cloning_probability`) and
t_S = (1/2) ln d.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import xarray as xr

from memphase.physics import critical
from memphase.physics.schedules import OrnsteinUhlenbeck

from ..run.config import ConfigError, Field
from ..run.cost import haar_basis_cost
from ..data import gaussian_mixture
from ..scores import EmpiricalScore, SmoothedScore

SCHEMA = {
    "job": Field("str", choices=("speciation",), help="experiment to run"),
    "output": Field("str", "data/results/speciation.h5", help="results file (HDF5)"),
    "grid": {
        "d": Field("list[int]", [16, 64, 256], check=lambda v: 2 <= v <= 16384,
                   rule="2 <= d <= 16384", help="data dimensions"),
        "score": Field("list[str]", ["population"], choices=("population", "empirical"),
                       help="population score of the mixture, or empirical score of n_train points"),
        "n_train": Field("list[int]", [2048], check=lambda v: 2 <= v <= 10**6,
                         rule="2 <= n_train <= 1e6",
                         help="training-set sizes (empirical score only; ignored by population)"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="seeds must be >= 0"),
    },
    "measure": {
        "n_traj": Field("int", 200, check=lambda v: 10 <= v <= 10**6, rule="10..1e6",
                        help="trajectories per branching time"),
        "n_clones": Field("int", 2, check=lambda v: 2 <= v <= 64, rule="2..64"),
        "steps": Field("int", 75, check=lambda v: 5 <= v <= 100000, rule="5..100000",
                       help="Euler-Maruyama steps per integration leg"),
        "offsets": Field("list[float]", [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0],
                         check=lambda v: -50 <= v <= 50,
                         rule="-50 <= offset <= 50 (OU time): t_S <= 4.9 for d <= 16384, and at "
                              "t = 50 the mean scale e^-50 = 2e-22 keeps no bit of the data; "
                              "far larger branching times overflow the reverse run (NaN)",
                         help="branching times t_b = t_S + offset (OU time)"),
        "n_boot": Field("int", 200, check=lambda v: 10 <= v <= 10**5, rule="10..1e5"),
        "dtype": Field("str", "float64", choices=("float32", "float64")),
        "device": Field("str", "cpu", help="cpu, cuda, cuda:N or auto"),
    },
}


def cells(cfg) -> list[dict]:
    g, offs = cfg["grid"], cfg["measure"]["offsets"]
    if len(set(offs)) < 3:
        raise ValueError("measure.offsets needs at least 3 distinct branching offsets")
    for d in g["d"]:
        if critical.speciation_time_mixture(d) + min(offs) <= 0.05:
            raise ConfigError(f"d = {d}: branching time t_S + min(offsets) = "
                              f"{critical.speciation_time_mixture(d) + min(offs):.3g} must be > 0.05; "
                              "raise the smallest offset or d")
    out = []
    for s, d, seed in itertools.product(g["score"], g["d"], g["seeds"]):
        for n in (g["n_train"] if s == "empirical" else [0]):
            out.append({"score": s, "d": d, "n_train": n, "seed": seed})
    return out


def estimate(cfg, cell) -> dict:
    """Two integration legs of `steps` Euler steps for n_traj (1 + n_clones) samples at every
    branching time; the empirical score costs ~4 N d flops per sample and step, the population
    score ~8 d. Before them the d x d random basis of the mixture (once for the population
    score, twice with the training set; `memphase.simulate.run.cost.haar_basis_cost`), which
    dominates at large d."""
    m = cfg["measure"]
    d, n = cell["d"], max(cell["n_train"], 2)
    samples = m["n_traj"] * (1 + m["n_clones"]) * len(m["offsets"])
    per = 4.0 * n * (d + 1) if cell["score"] == "empirical" else 30.0 * d
    item = 4 if m["dtype"] == "float32" else 8
    mem = 16 * n * (d + 1) + item * (n * (d + 1) * 3 + 8 * m["n_traj"] * m["n_clones"] * d
                  + m["n_traj"] * m["n_clones"] * min(n, 4096))
    bases, basis = (2 if cell["score"] == "empirical" else 1), haar_basis_cost(d)
    kept = 8 * d * d if cell["score"] == "empirical" else 0  # the training set keeps its basis
    mem = max(mem + kept, basis["memory_bytes"] + 16 * n * (d + 1))
    # ~10 GFLOP/s per thread for the streaming kernel (benchmarks/RESULTS.md), plus Python overhead
    return {"memory_bytes": int(mem),
            "seconds": samples * m["steps"] * per / 1e10 + 2e-4 * samples
            + bases * basis["seconds"]}


def mixture_population_score(d: int, seed: int = 0):
    """Exact score of (1/2) N(+m, I) + (1/2) N(-m, I) under OU noising: the empirical score of the
    two centres blurred by unit variance (`SmoothedScore`), which is exact for a Gaussian mixture
    [SBS23 form]. Returns (score, m) with m drawn as in `memphase.simulate.data.gaussian_mixture`."""
    g = gaussian_mixture(2, d, seed=seed)
    c = torch.tensor(g.params["centers"], dtype=torch.float64)
    return SmoothedScore(torch.stack([c, -c]), OrnsteinUhlenbeck(), 1.0), c


def run_cell(cfg, cell) -> dict:
    from memphase.analysis.critical_times import class_label_fn, clone_agreement, crossing_time_ci

    m = cfg["measure"]
    d, seed = cell["d"], cell["seed"]
    pop, c = mixture_population_score(d, seed)
    if cell["score"] == "population":
        score = pop
    else:  # same centres as the population score (same seed), N points drawn around them
        train = gaussian_mixture(cell["n_train"], d, seed=seed, dtype=m["dtype"], device=m["device"])
        score = EmpiricalScore(train, OrnsteinUhlenbeck())
    t_s = float(critical.speciation_time_mixture(d))
    times = t_s + np.asarray(m["offsets"], dtype=float)
    r = clone_agreement(score, score.schedule, times, m["n_traj"], class_label_fn(c),
                        n_clones=m["n_clones"], steps=m["steps"], seed=seed, dtype=m["dtype"],
                        device=m["device"], n_boot=m["n_boot"])
    est, lo, hi = crossing_time_ci(r["t"], r["per_traj"], critical.PHI_AT_SPECIATION,
                                   n_boot=m["n_boot"], seed=seed)
    return {"phi": r["phi"], "phi_lo": r["lo"], "phi_hi": r["hi"], "t_s": est, "t_s_lo": lo,
            "t_s_hi": hi}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g, m = cfg["grid"], cfg["measure"]
    ns = sorted(set(g["n_train"])) if "empirical" in g["score"] else [0]
    shape = (len(g["score"]), len(g["d"]), len(ns), len(g["seeds"]))
    no = len(m["offsets"])
    curves = {k: np.full(shape + (no,), np.nan) for k in ("phi", "phi_lo", "phi_hi")}
    scal = {k: np.full(shape, np.nan) for k in ("t_s", "t_s_lo", "t_s_hi")}
    for cell, res in zip(cell_list, results):
        i0 = (g["score"].index(cell["score"]), g["d"].index(cell["d"]))
        i2 = g["seeds"].index(cell["seed"])
        # the population score does not depend on N: its one cell fills every n_train
        js = range(len(ns)) if cell["score"] == "population" else [ns.index(cell["n_train"])]
        for j in js:
            for k in curves:
                curves[k][i0 + (j, i2)] = res[k]
            for k in scal:
                scal[k][i0 + (j, i2)] = res[k]
    d = np.asarray(g["d"])
    order = np.argsort(m["offsets"])
    offsets = np.asarray(m["offsets"], dtype=float)[order]
    for k in curves:
        curves[k] = curves[k][..., order]
    t_theory = np.array([critical.speciation_time_mixture(v) for v in d])
    t_curve = np.array([critical.speciation_time_from_cloning(math.sqrt(v)) for v in d])
    phi_theory = np.stack([critical.cloning_probability(ts + offsets, math.sqrt(v))
                           for ts, v in zip(t_theory, d)])
    dims = ("score", "d", "n_train", "seed")
    pd = dims + ("offset",)
    return xr.Dataset(
        {
            "phi": (pd, curves["phi"], {"units": "1", "long_name": "cloning probability: fraction "
                                        "of clone pairs ending in the same class"}),
            "phi_lo": (pd, curves["phi_lo"], {"units": "1", "long_name": "phi 95% bootstrap low"}),
            "phi_hi": (pd, curves["phi_hi"], {"units": "1", "long_name": "phi 95% bootstrap high"}),
            "speciation_time_measured": (dims, scal["t_s"], {
                "units": "OU time", "long_name": f"time where phi crosses {critical.PHI_AT_SPECIATION}"}),
            "speciation_time_lo": (dims, scal["t_s_lo"], {"units": "OU time",
                                                          "long_name": "95% bootstrap CI low"}),
            "speciation_time_hi": (dims, scal["t_s_hi"], {"units": "OU time",
                                                          "long_name": "95% bootstrap CI high"}),
            "speciation_time_theory": (("d",), t_theory, {
                "units": "OU time", "long_name": "t_S = (1/2) ln d [BBDM24]"}),
            "speciation_time_cloning_theory": (("d",), t_curve, {
                "units": "OU time", "long_name": "finite-d theory: where the theory phi(t) crosses "
                                                 f"{critical.PHI_AT_SPECIATION} [BBDM24]"}),
            "phi_theory": (("d", "offset"), phi_theory, {
                "units": "1", "long_name": "theory cloning probability [BBDM24]"}),
        },
        coords={
            "score": ("score", list(g["score"]), {"long_name": "score function"}),
            "d": ("d", d, {"units": "1", "long_name": "data dimension"}),
            "n_train": ("n_train", np.asarray(ns), {
                "units": "1", "long_name": "training-set size N (0: population score)"}),
            "seed": ("seed", np.asarray(g["seeds"]), {"long_name": "random seed"}),
            "offset": ("offset", offsets, {"units": "OU time",
                                           "long_name": "branching time minus (1/2) ln d"}),
        },
        attrs={"phi_at_speciation": critical.PHI_AT_SPECIATION},
    )


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots import save

    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["d"]))
    for k, d in enumerate(ds["d"].values):
        t = ds["speciation_time_theory"].sel(d=d).item() + ds["offset"].values
        a.plot(t, ds["phi_theory"].sel(d=d), color=colors[k], lw=1, label=f"theory d={d}")
        for s in ds["score"].values:
            y = ds["phi"].sel(d=d, score=s).isel(n_train=-1).mean("seed")
            a.plot(t, y, "o" if s == "population" else "s", color=colors[k], ms=4,
                   mfc="none" if s == "empirical" else colors[k])
    phi_s = ds.attrs["phi_at_speciation"]
    a.axhline(phi_s, color="gray", ls=":", label=f"phi = {phi_s:.4g}: level read as t_S (dotted)")
    a.plot([], [], "o", color="0.4", ms=4, label="measured, population score")
    a.plot([], [], "s", color="0.4", ms=4, mfc="none", label="measured, empirical score")
    a.set(xlabel="branching time t (OU)", ylabel="phi(t): clones in the same class",
          title="cloning probability phi(t)")
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    dd = ds["d"].values
    b.plot(dd, ds["speciation_time_theory"], "k-", label="theory: t_S = (1/2) ln d")
    b.plot(dd, ds["speciation_time_cloning_theory"], "--", color="0.55", lw=2.5, zorder=0,
           label=f"theory: t where theory phi(t) = {phi_s:.4g} (dashed)")
    for s in ds["score"].values:
        sel = ds.sel(score=s).isel(n_train=-1)
        y = sel["speciation_time_measured"].mean("seed")
        err = np.stack([y - sel["speciation_time_lo"].mean("seed"),
                        sel["speciation_time_hi"].mean("seed") - y])
        b.errorbar(dd, y, yerr=np.abs(err), fmt="o", capsize=3, label=f"measured ({s})")
    b.set(xscale="log", xlabel="d", ylabel="t_S (OU time)", title="speciation time")
    b.set_xticks(dd, [str(v) for v in dd])
    b.minorticks_off()
    b.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
