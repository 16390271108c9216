"""Geometric memorization [ALD24]: per-subspace loss of tangent dimensions on linear manifolds.

Each cell draws a linear manifold with two tangent blocks, (k1, s1) and (k2, s1 * std_ratio), plus
normal noise, normalized as the data.normalize key says (official [ALD24] code: the unit sphere),
builds a score and measures on a tau grid, at each anchor of measure.anchors, with
`memphase.analysis.dimensions.jacobian_sweep`: per block the posterior-variance ratio rho, the critical tau
of each signature (collapse rho < 1/2, excess rho > 2: the largest tau at which more than half of
the block's (point, direction) pairs carry it), the kept fraction (lost when
r = 1 + tau lambda < threshold) and its critical tau per threshold (critical_tau_kept, sensitivity
study), the mean |eigenvalue| per block, the exact Jacobian singular values and the official
[ALD24] probe estimator (both max-normalized).

Scores: empirical, linear, the Gaussian "population" approximation with the law's actual
covariance (closed-form Jacobians), and "learned": a network trained by DSM
(`memphase.simulate.learning.training.train_score`) on the same training set, once per (N, width, seed); its
checkpoints are the training-steps axis, and its Jacobian comes from torch.func (jacrev).

Defaults are the official [ALD24] protocol (`plots_synthetic_theory.ipynb`, last cell;
docs/conformance/ald24.md), memphase's own beside it as named variants, and every result says
which (attributes data_protocol, tau_spacing, protocol; coordinate anchor_protocol):
  data.protocol      "auto": the official generator "ald24" where it exists (sphere or none),
                     "memphase" (Haar basis, PCG64) for normalize = "radius"; or either by name;
  measure.tau_*      the official grid var = linspace(1, 0.01, 100) ("linear"); "log": memphase's
                     geomspace variant (resolves the small-tau REM collapse);
  measure.anchors    "origin" first (the exact data mean, no noise: the official anchor), then
                     memphase's "train", "fresh", "mean" (each plus noise sqrt(tau) z);
  measure.fd_spectrum  the official finite-difference estimator (fd_singular_value, raw) beside
                     the exact Jacobian (singular_value);
  measure.schedule   "ve" (the official VESDE; closed-form scores are schedule-free in tau).
memphase's variant as a whole: data/configs/geometric_memphase.toml. measure.law_samples > 0 adds
rho_law, the ratio over the same law's posterior (law_variance_ratio, critical_tau_law).

Training-set size: the `n_train` axis, or instead the `alpha` axis with N = round(e^{alpha d})
([BBDM24] N = e^{alpha d}); exactly one of the two. Phase diagram over (alpha, std_ratio, d):
lost dimensions per block at the fixed noise measure.tau_phase and each block's critical tau.

Theory stored beside the measurement, per (N, d, std_ratio), with the *actual* per-direction
variances of the law (`geometric_theory.actual_variances`, coordinate block_variance): the [ALD24]
critical tau per block and predicted Jacobian singular values (raw, and divided by their maximum:
the official theory panel), and the REM collapse tau_C (one tau for every block: the posterior
condenses on one training point and all directions go at once). Both are turned into predicted
kept fractions by the same threshold rule (`memphase.analysis.dimensions.predicted_kept_fraction`).
Results: docs/theory.md, "Geometric memorization ([ALD24])".

Modules: this one holds the schema, the cells and the measurement; `geometric_grid` the size and
tau grids, `geometric_theory` both theories, `geometric_results` the assembly of the Dataset.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import xarray as xr

from memphase.physics.schedules import make_schedule

from ..run.config import ConfigError, Field
from ..data import digits, linear_manifold
from ..learning.networks import NETWORKS, build_network, count_parameters
from ..scores import EmpiricalScore, GaussianScore, LearnedScore, LinearScore
from ..scores.covariance import COV_BUDGET
from ..learning.training import OPTIMIZERS, TrainConfig, train_score
from .common import DIGITS_SCALE, DIGITS_WHITEN
from .geometric_grid import (CLOSED_FORM, N_MAX, N_MIN, N_MIN_WHY, n_train_of,  # noqa: F401
                             size_axis, taus)
from .geometric_results import MEASURED, TRAINING, assemble  # noqa: F401 (the job's assemble)
from .geometric_theory import (ANCHORS, BLOCKS, SIGNATURES, _blocks, _mode,  # noqa: F401
                               actual_variances, block_theory, block_theory_variances,
                               data_protocol, is_digits)
from .recipes import check_networks

_pos = dict(check=lambda v: v > 0, rule="must be > 0")
_unit = dict(check=lambda v: 0 < v < 1, rule="in (0, 1)")
SCHEMA = {
    "job": Field("str", choices=("geometric",)),
    "output": Field("str", "data/results/geometric.h5"),
    "data": {
        "model": Field("str", "linear_manifold", choices=("linear_manifold", "digits"),
                       help="linear manifold, or the scikit-learn digits in their top-d PCA "
                            "coordinates, block_dims = the two top bands of principal directions "
                            "(needs memphase[data])"),
        "scale": DIGITS_SCALE,
        "whiten": DIGITS_WHITEN,
        "block_dims": Field("list[int]", [2, 5], check=lambda v: v >= 1, rule="must be >= 1",
                            unique=False,
                            help="dimensions of the two tangent blocks (digits: the two top bands "
                                 "of principal directions; the rest is block -1)"),
        "std": Field("float", 1.0, **_pos, help="std of the first block"),
        "normal_std": Field("float", 0.01, check=lambda v: v >= 0, rule="must be >= 0"),
        "normalize": Field("str", "sphere", choices=("none", "sphere", "radius"),
                           help="sphere: unit sphere (official [ALD24] code, g = 0); radius: "
                                "radius sqrt(sum s^2); none: Gaussian (g = 1)"),
        "protocol": Field("str", "auto", choices=("auto", "ald24", "memphase"),
                          help="linear-manifold generator: ald24 (the official one: coordinate "
                               "basis, np.random.seed(seed) draws; sphere or none only), "
                               "memphase (Haar basis, PCG64; the variant), auto: ald24 where it "
                               "exists, memphase for normalize = radius (result attribute "
                               "data_protocol)"),
    },
    "grid": {
        "n_train": Field("list[int]", [], check=lambda v: N_MIN <= v <= N_MAX,
                         rule=f"{N_MIN} <= n_train <= 1e6 ({N_MIN_WHY})",
                         allow_empty=True, help="training-set sizes N (or give alpha)"),
        "alpha": Field("list[float]", [], **_pos, allow_empty=True,
                       help="rates alpha = log N / d, N = round(exp(alpha d)) (or give n_train)"),
        "d": Field("list[int]", [30], check=lambda v: 2 <= v <= 1024, rule="2 <= d <= 1024"),
        "std_ratio": Field("list[float]", [0.3], check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                           help="std of block 2 / std of block 1"),
        "score": Field("list[str]", ["empirical", "linear", "population"],
                       choices=("empirical", "linear", "population", "learned")),
        "width": Field("list[int]", [64], check=lambda v: 1 <= v <= 4096, rule="1..4096",
                       help="network widths (score = learned only)"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0",
                       help="data, anchor points, network init and training noise per seed"),
    },
    "measure": {
        "tau_min": Field("float", 0.01, **_pos),
        "tau_max": Field("float", 1.0, **_pos),
        "n_tau": Field("int", 100, check=lambda v: 2 <= v <= 1000, rule="2..1000"),
        "tau_spacing": Field("str", "linear", choices=("linear", "log"),
                             help="linear: linspace(tau_min, tau_max, n_tau), by default the "
                                  "official [ALD24] panel's var = linspace(1, 0.01, 100); log: "
                                  "geomspace (memphase's variant, resolves small tau)"),
        "fd_spectrum": Field("bool", True,
                             help="also the official [ALD24] empirical-panel estimator beside the "
                                  "exact Jacobian: central differences along the basis, step "
                                  "sqrt(tau), |entries|, SVD (at every measured anchor)"),
        "tau_phase": Field("float", 0.1, **_pos,
                           help="fixed tau of the lost-dimension phase diagram (added to the grid)"),
        "n_points": Field("int", 16, check=lambda v: v >= 1, rule="must be >= 1"),
        "threshold": Field("float", 0.5, **_unit, help="lost when 1 + tau lambda < threshold"),
        "thresholds": Field("list[float]", [0.25, 0.5, 0.75], **_unit,
                            help="thresholds of the sensitivity study of the critical taus"),
        "relative_level": Field("bool", True,
                                help="critical tau where the kept fraction reaches half its peak "
                                     "(normalized data lose the radial direction at every tau)"),
        "schedule": Field("str", "ve", choices=("ve", "ou", "linear_vp"),
                          help="ve: the official [ALD24] VESDE (tau = sigma^2); closed-form "
                               "scores give the same numbers on the tau grid for every schedule"),
        "anchors": Field("list[str]", list(ANCHORS), choices=ANCHORS,
                         help="where the Jacobian is probed: origin: the exact data mean without "
                              "noise (the official [ALD24] empirical-score panel); memphase's "
                              "variants: training points, fresh samples of the law, the data "
                              "mean, each plus noise sqrt(tau) z"),
        "probe_points": Field("int", 1, check=lambda v: v >= 0, rule="must be >= 0",
                              help="anchors per tau for the official [ALD24] probe estimator"),
        "law_samples": Field("int", 0, check=lambda v: 0 <= v <= 2**22, rule="0..2^22",
                             help="draws of the law for rho_law, the ratio over the same law's "
                                  "posterior (memphase.analysis.law_posterior; exact at the "
                                  "origin); 0: off"),
    },
    "train": {
        "network": Field("str", "residual_mlp", choices=tuple(NETWORKS)),
        "depth": Field("int", 2, check=lambda v: 1 <= v <= 16, rule="1..16"),
        "steps": Field("list[int]", [500, 2000], check=lambda v: v >= 1, rule="must be >= 1",
                       help="checkpoints (training-steps axis); trains once to the largest"),
        "batch_size": Field("int", 128, check=lambda v: v >= 0, rule="must be >= 0",
                            help="0: full batch"),
        "lr": Field("float", 1e-3, **_pos),
        "optimizer": Field("str", "adam", choices=OPTIMIZERS),
        "weight_decay": Field("float", 0.0, check=lambda v: v >= 0, rule="must be >= 0"),
        "ema_decay": Field("float", 0.0, check=lambda v: 0 <= v < 1, rule="in [0, 1)"),
        "dtype": Field("str", "float32", choices=("float32", "float64")),
        "device": Field("str", "cpu", help="cpu, cuda, cuda:N or auto"),
    },
}



# -- grid ---------------------------------------------------------------------------------------
def _check(cfg):
    g, ms, dc = cfg["grid"], cfg["measure"], cfg["data"]
    if ms["tau_max"] <= ms["tau_min"]:
        raise ConfigError("measure.tau_max must exceed measure.tau_min")
    if not ms["tau_min"] <= ms["tau_phase"] <= ms["tau_max"]:
        raise ConfigError(f"measure.tau_phase = {ms['tau_phase']} must lie in [tau_min, tau_max]")
    if dc["protocol"] != "auto" and is_digits(cfg):
        raise ConfigError(f"data.protocol = '{dc['protocol']}' names a linear-manifold generator; "
                          "data.model = 'digits' has none: leave data.protocol out (auto)")
    if dc["protocol"] == "ald24" and dc["normalize"] == "radius":
        raise ConfigError("data.protocol = 'ald24' (the official generator) normalizes to the "
                          "unit sphere only: use normalize 'sphere' or 'none', or protocol "
                          "'memphase'")
    if len(dc["block_dims"]) != 2:
        raise ConfigError("data.block_dims must list exactly two block dimensions")
    k = sum(dc["block_dims"])
    if min(g["d"]) <= k:
        raise ConfigError(f"every d must exceed the tangent dimension {k} (normal space needed)")
    axis = size_axis(cfg)
    if "learned" in g["score"]:
        check_networks([cfg["train"]["network"]], g["d"], digits=is_digits(cfg))
    if is_digits(cfg):
        from ..data.real import DIGITS_N, require_data_extra

        require_data_extra()
        if max(g["d"]) > 61:
            raise ConfigError("data.model = 'digits': grid.d counts principal components, at "
                              "most 61 (the rank of the digits)")
        if len(g["std_ratio"]) != 1:
            raise ConfigError("data.model = 'digits': grid.std_ratio has no meaning; give one "
                              "value")
        ns = g["n_train"] if axis == "n_train" else [n_train_of(a, d) for a in g["alpha"]
                                                     for d in g["d"]]
        if max(ns) >= DIGITS_N:
            raise ConfigError(f"data.model = 'digits': N = {max(ns)} leaves no held-out images "
                              f"for the fresh anchor; need N < {DIGITS_N}")
    if axis == "alpha":
        for a, d in itertools.product(g["alpha"], g["d"]):
            # compare log N (exp(alpha d) overflows a float for alpha d > 709)
            if not math.log(N_MIN - 0.5) <= a * d <= math.log(N_MAX + 0.5):
                n = "overflow" if a * d > 700 else f"{n_train_of(a, d)}"
                raise ConfigError(f"grid.alpha = {a:g} at d = {d} gives N = round(exp(alpha d)) = "
                                  f"{n}, outside [{N_MIN}, 1e6]: {N_MIN_WHY}")


def cells(cfg) -> list[dict]:
    """One cell per (score, N, d, std_ratio, seed); a learned score adds width (its training
    steps are checkpoints of one run inside the cell)."""
    _check(cfg)
    g = cfg["grid"]
    axis = size_axis(cfg)
    out = []
    for s, v, d, r, seed in itertools.product(g["score"], g[axis], g["d"], g["std_ratio"],
                                              g["seeds"]):
        base = {"score": s, axis: v, "d": d, "std_ratio": r, "seed": seed}
        if axis == "alpha":
            base["n_train"] = n_train_of(v, d)
        out += ([dict(base, width=w) for w in g["width"]] if s == "learned" else [base])
    return out


# -- measurement --------------------------------------------------------------------------------
def _manifold(cfg, cell):
    dc = cfg["data"]
    if is_digits(cfg):
        return digits(cell["n_train"], seed=cell["seed"], scale=dc["scale"], whiten=dc["whiten"],
                      n_components=cell["d"], bands=dc["block_dims"])
    return linear_manifold(cell["n_train"], cell["d"], _blocks(cfg, cell["std_ratio"]),
                           normal_std=dc["normal_std"], normalize=_mode(cfg), seed=cell["seed"],
                           protocol=data_protocol(cfg))


def _closed_form_score(kind, data, sch):
    if kind == "empirical":
        return EmpiricalScore(data, sch)
    if kind == "linear":
        return LinearScore(data, sch)
    # Gaussian with the law's actual per-direction variances (exact when not normalized)
    return GaussianScore(None, (data.basis * data.variances()) @ data.basis.T, sch)


def _measure(cfg, score, data, seed, method="auto") -> dict:
    """Per-anchor, per-block summaries of Jacobian sweeps on the tau grid (anchors seeded by
    `seed`, so every score of a cell is probed at the same points)."""
    from memphase.analysis.dimensions import (critical_tau_per_block, jacobian_sweep,
                                     kept_fraction_per_block, mean_abs_eigenvalue_per_block)

    ms = cfg["measure"]
    grid = taus(cfg)
    crit = lambda f: critical_tau_per_block(grid, f, relative=ms["relative_level"])
    per = []
    for anchor in ANCHORS:
        if anchor not in ms["anchors"]:
            per.append(None)
            continue
        n_pts = 1 if anchor == "origin" else min(ms["n_points"], data.x.shape[0])  # one point: no noise
        sweep = jacobian_sweep(score, data, grid, n_points=n_pts,
                               seed=seed, schedule=make_schedule(ms["schedule"]), anchor=anchor,
                               threshold=ms["threshold"], method=method,
                               probe_points=ms["probe_points"], fd_spectrum=ms["fd_spectrum"],
                               law_samples=ms["law_samples"])
        eig, dir_block = sweep["eigenvalue"].values, sweep["direction_block"].values
        kept = kept_fraction_per_block(eig, grid, dir_block, BLOCKS, ms["threshold"])
        by_th = kept_fraction_per_block(eig, grid, dir_block, BLOCKS, ms["thresholds"])
        sv = sweep["singular_value"].values
        sv = (sv / np.maximum(sv.max(axis=2, keepdims=True), 1e-300)).mean(axis=1)
        probe = (sweep["probe_singular_value"].values.mean(axis=1) if ms["probe_points"]
                 else np.full((grid.size, data.d - 1), np.nan))
        fd = (sweep["fd_singular_value"].values.mean(axis=1) if ms["fd_spectrum"]
              else np.full((grid.size, data.d), np.nan))
        per.append({
            "kept_fraction": kept,
            "eigenvalue_abs": mean_abs_eigenvalue_per_block(eig, dir_block, BLOCKS),
            "critical_tau_kept": crit(kept),
            "kept_fraction_by_threshold": by_th,
            "critical_tau_by_threshold": np.stack([crit(f) for f in by_th]),
            "critical_tau": sweep["critical_tau"].sel(signature=list(SIGNATURES),
                                                      block=BLOCKS).values,
            "signature_fraction": sweep["signature_fraction"].sel(
                signature=list(SIGNATURES), block=BLOCKS).values,
            "variance_ratio": _block_median(sweep["variance_ratio"].values, dir_block),
            "singular_value": sv,
            "probe_singular_value": probe,
            "fd_singular_value": fd,
            **_law_summaries(sweep, dir_block, grid.size),
        })
    template = next(p for p in per if p is not None)
    return {k: np.stack([p[k] if p is not None else np.full_like(template[k], np.nan)
                         for p in per]) for k in template}


def _block_median(rho, dir_block) -> np.ndarray:
    """Median of rho over points and each block's directions, (tau, block)."""
    return np.stack([np.median(rho[:, :, dir_block == b].reshape(rho.shape[0], -1), axis=1)
                     for b in BLOCKS], axis=1)


def _law_summaries(sweep, dir_block, n_tau) -> dict:
    """rho_law (the ratio over the same law's posterior, measure.law_samples > 0): its median per
    (tau, block) over the resolved (point, direction) pairs and its critical taus; nan when off."""
    if "law_variance_ratio" not in sweep:
        return {"law_variance_ratio": np.full((n_tau, BLOCKS.size), np.nan),
                "critical_tau_law": np.full((len(SIGNATURES), BLOCKS.size), np.nan)}
    rho = sweep["law_variance_ratio"].values
    med = np.full((n_tau, BLOCKS.size), np.nan)
    for j, b in enumerate(BLOCKS):
        r = rho[:, :, dir_block == b].reshape(n_tau, -1)
        ok = np.isfinite(r).any(axis=1)
        med[ok, j] = np.nanmedian(r[ok], axis=1)
    return {"law_variance_ratio": med,
            "critical_tau_law": sweep["critical_tau_law"].sel(signature=list(SIGNATURES),
                                                              block=BLOCKS).values}


def _train(cfg, cell, data, sch):
    """Train one network on the cell's training set; checkpoints at train.steps."""
    tc, ms = cfg["train"], cfg["measure"]
    steps = sorted(set(tc["steps"]))
    data_var = float(data.x.to(torch.float64).var(dim=0).mean()) if data.x.shape[0] > 1 else 1.0
    net = build_network(tc["network"], cell["d"], seed=cell["seed"], width=cell["width"],
                        depth=tc["depth"], data_var=max(data_var, 1e-8))
    conf = TrainConfig(steps=steps[-1], batch_size=tc["batch_size"] or None, lr=tc["lr"],
                       optimizer=tc["optimizer"], weight_decay=tc["weight_decay"],
                       ema_decay=tc["ema_decay"], tau_min=ms["tau_min"], tau_max=ms["tau_max"],
                       checkpoint_steps=tuple(steps), seed=cell["seed"], dtype=tc["dtype"],
                       device=tc["device"])
    return train_score(data, sch, net, conf), net


def learned_score_at(network, state_dict, schedule) -> LearnedScore:
    """LearnedScore of a float64 CPU copy of `network` holding `state_dict` (float64 so that the
    torch.func Jacobian runs without dtype conversions inside the transform)."""
    net = copy.deepcopy(network)
    net.load_state_dict(state_dict)
    return LearnedScore(net.to(device="cpu", dtype=torch.float64).eval(), schedule)


def _run_learned(cfg, cell, data, sch) -> dict:
    res, net = _train(cfg, cell, data, sch)
    steps = sorted(set(cfg["train"]["steps"]))
    per_step = [_measure(cfg, learned_score_at(net, res.checkpoints[s], sch), data, cell["seed"],
                         method="autograd") for s in steps]
    out = {k: np.stack([p[k] for p in per_step]) for k in per_step[0]}
    out["train_loss"] = np.array([res.losses[max(0, s - 50):s].mean() for s in steps])
    out["train_seconds"] = res.seconds
    out["n_parameters"] = count_parameters(net)
    return out


def run_cell(cfg, cell) -> dict:
    sch = make_schedule(cfg["measure"]["schedule"])
    data = _manifold(cfg, cell)
    if cell["score"] == "learned":
        return _run_learned(cfg, cell, data, sch)
    score = _closed_form_score(cell["score"], data, sch)
    return _measure(cfg, score, data, cell["seed"])


# -- cost ---------------------------------------------------------------------------------------
def estimate(cfg, cell) -> dict:
    """{'memory_bytes', 'seconds'} of one cell. Empirical Jacobian: per tau and point a softmax
    over N and a weighted second moment, ~2 N d^2 flops; block eigensolves ~10 d^3; learned:
    DSM training ~6 (params) per sample-step plus d reverse passes per Jacobian. Rates (1 GFLOP/s,
    ~1 ms per optimizer step) measured on one CPU thread, conservative."""
    ms, tc = cfg["measure"], cfg["train"]
    n, d = cell["n_train"], cell["d"]
    t, p = taus(cfg).size, min(ms["n_points"], n)
    n_anchor, probes = len(ms["anchors"]), min(ms["probe_points"], p)
    per_eval = 2.0 * n * d if cell["score"] == "empirical" else 2.0 * d * d
    fd = 2.0 * d * per_eval + 4.0 * d**3 if ms["fd_spectrum"] else 0.0  # 2d score calls + SVD
    fd += 4.0 * ms["law_samples"] * d * d  # rho_law: the law's importance sampling per point
    jac_flops = n_anchor * t * (p * (10.0 * d**3 + fd + (2.0 * n * d * d if cell["score"] == "empirical"
                                                         else 0)) + probes * d * (per_eval + 4 * d * d))
    mem = 8 * (3 * n * d + 2 * p * max(n, 1) + 8 * p * d * d + 4 * t * p * d) + 50 * 2**20
    mem += 8 * 3 * ms["law_samples"] * (d + p)  # the law's draws and their weights
    if cell["score"] == "empirical":
        # exact posterior covariance: ~4 live (points, chunk, d) blocks, and as many again held
        # by the C allocator between chunks (measured peak 90-148 MiB over runs for 8 blocks of
        # 16 MiB plus the rest at N = 20000, d = 30: tests/simulate/test_memory_estimate.py)
        mem += 8 * 8 * min(p * n * d, COV_BUDGET)
    if cell["score"] != "learned":
        return {"memory_bytes": int(mem), "seconds": 0.05 + 0.01 * t + jac_flops / 1e9}
    w, depth = cell["width"], tc["depth"]
    params = 2 * d * w + depth * (w * w + 66 * w)
    steps = sorted(set(tc["steps"]))
    batch = n if tc["batch_size"] == 0 else min(tc["batch_size"], n)
    train_s = steps[-1] * (1e-3 * (1 + depth) + 6.0 * batch * params / 1e9)
    jac_s = len(steps) * (0.02 * t + t * p * d * 4.0 * params / 1e9 + jac_flops / 1e9)
    mem += 8 * params * (6 + len(steps)) + 8 * 4 * batch * w * (depth + 2)
    return {"memory_bytes": int(mem), "seconds": train_s + jac_s}


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots import plot_geometric

    plot_geometric(ds, path)
