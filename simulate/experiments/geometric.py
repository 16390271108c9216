"""Geometric memorization [ALD24]: per-subspace loss of tangent dimensions on linear manifolds.

Each cell draws a linear manifold with two tangent blocks, (k1, s1) and (k2, s1 * std_ratio), plus
normal noise, normalized as the data.normalize key says (official [ALD24] code: the unit sphere),
builds a score and measures on a tau grid, at each anchor of measure.anchors (training points,
fresh samples of the law, the data mean; each plus noise sqrt(tau) z), with
`memphase.analysis.dimensions.jacobian_sweep`: per block the posterior-variance ratio rho, the critical tau
of each signature (collapse rho < 1/2, excess rho > 2: the largest tau at which more than half of
the block's (point, direction) pairs carry it), the kept fraction (lost when
r = 1 + tau lambda < threshold) and its critical tau per threshold (critical_tau_kept, sensitivity
study), the mean |eigenvalue| per block, the exact Jacobian singular values and the official
[ALD24] probe estimator (both max-normalized).

Scores: empirical, linear, the Gaussian "population" approximation with the law's actual
covariance (closed-form Jacobians), and "learned": a network trained by DSM
(`memphase.simulate.training.train_score`) on the same training set, once per (N, width, seed); its
checkpoints are the training-steps axis, and its Jacobian comes from torch.func (jacrev).

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
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import xarray as xr

from memphase.physics import critical
from memphase.physics.manifold import normalized_variances
from memphase.physics.schedules import make_schedule

from ..config import ConfigError, Field
from ..data import digits, linear_manifold
from ..networks import NETWORKS, build_network, count_parameters
from ..scores import EmpiricalScore, GaussianScore, LearnedScore, LinearScore
from ..training import OPTIMIZERS, TrainConfig, train_score
from .geometric_theory import (ANCHORS, BLOCKS, SIGNATURES, _blocks, _mode, _stds,  # noqa: F401
                               actual_variances, block_theory, block_theory_variances, is_digits)

_pos = dict(check=lambda v: v > 0, rule="must be > 0")
_unit = dict(check=lambda v: 0 < v < 1, rule="in (0, 1)")
N_MAX = 10**6
#: smallest training set: the [ALD24] and REM theories need alpha = log N / d > 0
N_MIN = 2
N_MIN_WHY = ("the [ALD24] and REM theories need alpha = log N / d > 0; N = 1 gives NaN theory "
             "and critical taus")

SCHEMA = {
    "job": Field("str", choices=("geometric",)),
    "output": Field("str", "data/results/geometric.h5"),
    "data": {
        "model": Field("str", "linear_manifold", choices=("linear_manifold", "digits"),
                       help="linear manifold, or the scikit-learn digits in their top-d PCA "
                            "coordinates, block_dims = the two top bands of principal directions "
                            "(needs memphase[data])"),
        "scale": Field("str", "unit", choices=("unit", "none"), help="digits: pixels in [0, 1] "
                                                                     "or 0..16"),
        "whiten": Field("bool", False, help="digits: PCA whitening"),
        "block_dims": Field("list[int]", [2, 5], check=lambda v: v >= 1, rule="must be >= 1",
                            unique=False,
                            help="dimensions of the two tangent blocks (digits: the two top bands "
                                 "of principal directions; the rest is block -1)"),
        "std": Field("float", 1.0, **_pos, help="std of the first block"),
        "normal_std": Field("float", 0.01, check=lambda v: v >= 0, rule="must be >= 0"),
        "normalize": Field("str", "sphere", choices=("none", "sphere", "radius"),
                           help="sphere: unit sphere (official [ALD24] code, g = 0); radius: "
                                "radius sqrt(sum s^2); none: Gaussian (g = 1)"),
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
        "tau_min": Field("float", 1e-4, **_pos),
        "tau_max": Field("float", 1.0, **_pos),
        "n_tau": Field("int", 24, check=lambda v: 2 <= v <= 1000, rule="2..1000"),
        "tau_phase": Field("float", 0.1, **_pos,
                           help="fixed tau of the lost-dimension phase diagram (added to the grid)"),
        "n_points": Field("int", 16, check=lambda v: v >= 1, rule="must be >= 1"),
        "threshold": Field("float", 0.5, **_unit, help="lost when 1 + tau lambda < threshold"),
        "thresholds": Field("list[float]", [0.25, 0.5, 0.75], **_unit,
                            help="thresholds of the sensitivity study of the critical taus"),
        "relative_level": Field("bool", True,
                                help="critical tau where the kept fraction reaches half its peak "
                                     "(normalized data lose the radial direction at every tau)"),
        "schedule": Field("str", "ou", choices=("ou", "linear_vp", "ve")),
        "anchors": Field("list[str]", list(ANCHORS), choices=ANCHORS,
                         help="where the Jacobian is probed: training points, fresh samples of the "
                              "law, the data mean (official [ALD24] panel), each plus noise"),
        "probe_points": Field("int", 1, check=lambda v: v >= 0, rule="must be >= 0",
                              help="anchors per tau for the official [ALD24] probe estimator"),
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

CLOSED_FORM = ("empirical", "linear", "population")


# -- grid ---------------------------------------------------------------------------------------
def size_axis(cfg) -> str:
    """'n_train' or 'alpha': the grid axis that sets the training-set size (exactly one)."""
    g = cfg["grid"]
    given = [k for k in ("n_train", "alpha") if g[k]]
    if len(given) != 1:
        raise ConfigError("give exactly one of grid.n_train or grid.alpha "
                          f"(got {' and '.join(given) if given else 'neither'})")
    return given[0]


def n_train_of(alpha: float, d: int) -> int:
    """N = round(e^{alpha d}) [BBDM24]."""
    return int(round(math.exp(alpha * d)))


def _check(cfg):
    g, ms, dc = cfg["grid"], cfg["measure"], cfg["data"]
    if ms["tau_max"] <= ms["tau_min"]:
        raise ConfigError("measure.tau_max must exceed measure.tau_min")
    if not ms["tau_min"] <= ms["tau_phase"] <= ms["tau_max"]:
        raise ConfigError(f"measure.tau_phase = {ms['tau_phase']} must lie in [tau_min, tau_max]")
    if len(dc["block_dims"]) != 2:
        raise ConfigError("data.block_dims must list exactly two block dimensions")
    k = sum(dc["block_dims"])
    if min(g["d"]) <= k:
        raise ConfigError(f"every d must exceed the tangent dimension {k} (normal space needed)")
    axis = size_axis(cfg)
    if is_digits(cfg):
        from ..data_real import DIGITS_N, require_data_extra

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


def taus(cfg) -> np.ndarray:
    """The tau grid: n_tau log-spaced values in [tau_min, tau_max] plus tau_phase."""
    m = cfg["measure"]
    return np.union1d(np.geomspace(m["tau_min"], m["tau_max"], m["n_tau"]), [m["tau_phase"]])


# -- measurement --------------------------------------------------------------------------------
def _manifold(cfg, cell):
    dc = cfg["data"]
    if is_digits(cfg):
        return digits(cell["n_train"], seed=cell["seed"], scale=dc["scale"], whiten=dc["whiten"],
                      n_components=cell["d"], bands=dc["block_dims"])
    return linear_manifold(cell["n_train"], cell["d"], _blocks(cfg, cell["std_ratio"]),
                           normal_std=dc["normal_std"], normalize=_mode(cfg), seed=cell["seed"])


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
        sweep = jacobian_sweep(score, data, grid, n_points=min(ms["n_points"], data.x.shape[0]),
                               seed=seed, schedule=make_schedule(ms["schedule"]), anchor=anchor,
                               threshold=ms["threshold"], method=method,
                               probe_points=ms["probe_points"])
        eig, dir_block = sweep["eigenvalue"].values, sweep["direction_block"].values
        kept = kept_fraction_per_block(eig, grid, dir_block, BLOCKS, ms["threshold"])
        by_th = kept_fraction_per_block(eig, grid, dir_block, BLOCKS, ms["thresholds"])
        sv = sweep["singular_value"].values
        sv = (sv / np.maximum(sv.max(axis=2, keepdims=True), 1e-300)).mean(axis=1)
        probe = (sweep["probe_singular_value"].values.mean(axis=1) if ms["probe_points"]
                 else np.full((grid.size, data.d - 1), np.nan))
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
        })
    template = next(p for p in per if p is not None)
    return {k: np.stack([p[k] if p is not None else np.full_like(template[k], np.nan)
                         for p in per]) for k in template}


def _block_median(rho, dir_block) -> np.ndarray:
    """Median of rho over points and each block's directions, (tau, block)."""
    return np.stack([np.median(rho[:, :, dir_block == b].reshape(rho.shape[0], -1), axis=1)
                     for b in BLOCKS], axis=1)


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


# -- theory -------------------------------------------------------------------------------------
# -- assembly -----------------------------------------------------------------------------------
def _attrs(long_name, units):
    return {"long_name": long_name, "units": units}


def _n_table(cfg) -> np.ndarray:
    """N for every (size axis value, d)."""
    g = cfg["grid"]
    axis = size_axis(cfg)
    return np.array([[v if axis == "n_train" else n_train_of(v, d) for d in g["d"]]
                     for v in g[axis]], dtype=np.int64)


MEASURED = {  # name -> (trailing dims, long name, units); every one per anchor
    "kept_fraction": (("anchor", "tau", "block"), "fraction of the block's directions kept "
                      "(1 + tau lambda >= threshold), mean over points", "1"),
    "eigenvalue_abs": (("anchor", "tau", "block"), "mean |eigenvalue| of the data-unit score "
                       "Jacobian in the block", "1/data variance"),
    "critical_tau_kept": (("anchor", "block"), "measured tau below which the block's kept "
                          "fraction is under half (of its peak when relative_level)",
                          "data variance"),
    "kept_fraction_by_threshold": (("anchor", "threshold", "tau", "block"),
                                   "kept fraction at each sensitivity threshold", "1"),
    "critical_tau_by_threshold": (("anchor", "threshold", "block"),
                                  "measured critical tau (kept-fraction rule) at each sensitivity "
                                  "threshold", "data variance"),
    "critical_tau": (("anchor", "signature", "block"), "largest tau at which more than half of "
                     "the block's (point, direction) pairs carry the signature (inf: above the "
                     "grid, nan: never)", "data variance"),
    "signature_fraction": (("anchor", "signature", "tau", "block"), "fraction of the block's "
                           "(point, direction) pairs carrying the signature", "1"),
    "variance_ratio": (("anchor", "tau", "block"), "median posterior-variance ratio rho = "
                       "u^T Cov[y|x] u / (tau v_u / (v_u + tau)) over points and directions "
                       "(1: population score)", "1"),
    "singular_value": (("anchor", "tau", "rank"), "exact Jacobian singular values divided by "
                       "their maximum, mean over points", "1"),
    "probe_singular_value": (("anchor", "tau", "probe_rank"), "official [ALD24] probe "
                             "estimator (first dropped, max-normalized), mean over probe points",
                             "1"),
}
TRAINING = {  # per checkpoint (train_step) or per training run
    "train_loss": (("train_step",), "mean DSM loss over the 50 steps before the checkpoint", "1"),
    "train_seconds": ((), "wall time of the whole training run", "s"),
    "n_parameters": ((), "trainable parameters of the network", "1"),
}


def _gather(spec, lead, sizes, pairs, index_of) -> dict:
    """{name: (dims, array, attrs)}: each result's arrays placed at index_of(cell) in arrays of
    dims lead + the trailing dims of spec (nan where no cell)."""
    out = {}
    for k, (trail, name, units) in spec.items():
        dims = lead + trail
        arr = np.full(tuple(sizes[a] for a in dims), np.nan)
        for cell, res in pairs:  # trailing dims of varying length (rank ~ d) fill a prefix
            val = np.asarray(res[k])
            arr[index_of(cell) + tuple(slice(0, m) for m in val.shape)] = val
        out[k] = (dims, arr, _attrs(name, units))
    return out


def _theory_variables(cfg, axis, grid) -> dict:
    """Both theories per (N, d, std_ratio), from `block_theory`."""
    g = cfg["grid"]
    n_tab = _n_table(cfg)
    shape = (len(g[axis]), len(g["d"]), len(g["std_ratio"]))
    one = [[[block_theory(cfg, int(n_tab[i, j]), d, r, grid) for r in g["std_ratio"]]
            for j, d in enumerate(g["d"])] for i in range(shape[0])]
    stack = lambda k: np.array([[[c[k] for c in row] for row in plane] for plane in one])
    td = (axis, "d", "std_ratio")
    return {
        "critical_tau_theory": (td + ("block",), stack("tau_ald"), _attrs(
            "[ALD24] critical tau of the block with the actual variances "
            "(memphase.physics.critical.subspace_collapse_tau)", "data variance")),
        "critical_tau_rem": (td, stack("tau_rem"), _attrs(
            "REM collapse tau_C on the actual spectrum, one tau for every block "
            "(memphase.physics.critical.collapse_tau)", "data variance")),
        "singular_value_theory": (td + ("tau", "block"), stack("sv_ald"), _attrs(
            "[ALD24] predicted Jacobian singular value of the block", "1/data variance")),
        "singular_value_theory_normalized": (td + ("tau", "block"), stack("sv_ald_norm"), _attrs(
            "official [ALD24] theory panel: predicted singular value of the block divided by the "
            "largest predicted one at that tau", "1")),
        "singular_value_rem": (td + ("tau", "block"), stack("sv_rem"), _attrs(
            "REM picture: 1/(tau + s^2) above tau_C, 1/tau below", "1/data variance")),
        "kept_fraction_theory": (td + ("tau", "block"), stack("kept_ald"), _attrs(
            "[ALD24] predicted kept fraction (tau >= tau_c and s^2/(tau+s^2) >= threshold)", "1")),
        "kept_fraction_rem": (td + ("tau", "block"), stack("kept_rem"), _attrs(
            "REM predicted kept fraction (tau >= tau_C and s^2/(tau+s^2) >= threshold)", "1")),
    }


def assemble(cfg, cell_list, results) -> xr.Dataset:
    """One Dataset: closed-form scores over (score, N, d, std_ratio, seed, ...), learned scores as
    learned_* over (N, d, std_ratio, seed, width, train_step, ...), theory over (N, d, std_ratio,
    ...), and the lost directions at tau_phase (lost_dims*), N given by n_train or alpha."""
    g, ms, dc = cfg["grid"], cfg["measure"], cfg["data"]
    axis = size_axis(cfg)
    grid = taus(cfg)
    closed = [s for s in g["score"] if s in CLOSED_FORM]
    steps = sorted(set(cfg["train"]["steps"]))
    values = {axis: g[axis], "d": g["d"], "std_ratio": g["std_ratio"], "seed": g["seeds"],
              "width": g["width"], "train_step": steps, "score": closed}
    sizes = {k: len(v) for k, v in values.items()}
    sizes.update(tau=grid.size, block=BLOCKS.size, threshold=len(ms["thresholds"]),
                 anchor=len(ANCHORS), signature=len(SIGNATURES), rank=max(g["d"]),
                 probe_rank=max(g["d"]) - 1)
    common = (axis, "d", "std_ratio", "seed")
    where = lambda c: tuple(list(values[a]).index(c[a]) for a in common)
    pairs = list(zip(cell_list, results))

    data_vars = {}
    if closed:
        data_vars.update(_gather(MEASURED, ("score",) + common, sizes,
                                 [(c, r) for c, r in pairs if c["score"] in closed],
                                 lambda c: (closed.index(c["score"]),) + where(c)))
    if "learned" in g["score"]:
        learned = [(c, r) for c, r in pairs if c["score"] == "learned"]
        per_run = lambda c: where(c) + (g["width"].index(c["width"]),)
        checkpoint_spec = {k: (("train_step",) + trail, f"learned score: {name}", units)
                           for k, (trail, name, units) in MEASURED.items()}
        for k, v in {**_gather(checkpoint_spec, common + ("width",), sizes, learned, per_run),
                     **_gather(TRAINING, common + ("width",), sizes, learned, per_run)}.items():
            data_vars["learned_" + k] = v
    data_vars.update(_theory_variables(cfg, axis, grid))
    ds = xr.Dataset(data_vars, coords=_coords(cfg, axis, values, closed, grid, _n_table(cfg)))
    _add_phase_variables(ds, ms["tau_phase"])
    ds.attrs.update({
        "source": "[ALD24] geometric memorization; memphase.simulate.experiments.geometric",
        "threshold": ms["threshold"], "threshold_rule": "lost when 1 + tau * lambda < threshold",
        "tau_phase": ms["tau_phase"], "relative_level": int(ms["relative_level"]),
        "size_axis": axis, "std": dc["std"], "normal_std": dc["normal_std"],
        "normalize": dc["normalize"] if not is_digits(cfg) else "none",
        "data_model": dc["model"],
        "variances": "every theory uses the actual per-direction variances of the law "
                     "(block_variance), not the nominal std^2",
        "blocks": f"dims {dc['block_dims']}, std {dc['std']} and std * std_ratio",
        "seed_use": "seed: training set, anchor points and noise of the Jacobian sweep, network "
                    "initialization and DSM training generator",
    })
    return ds


def _coords(cfg, axis, vals, closed, grid, n_tab) -> dict:
    g, dc = cfg["grid"], cfg["data"]
    d = np.asarray(g["d"])
    stds = np.array([[dc["normal_std"], dc["std"], dc["std"] * r] for r in g["std_ratio"]])
    if is_digits(cfg):  # the std of each band's middle direction at the first d
        stds = np.sqrt([block_theory_variances(cfg, int(g["d"][0]), r) for r in g["std_ratio"]])
    k1, k2 = dc["block_dims"]
    coords = {
        "d": ("d", d, _attrs("ambient dimension", "1")),
        "std_ratio": ("std_ratio", np.asarray(g["std_ratio"]), _attrs("std block 1 / std block 0", "1")),
        "seed": ("seed", np.asarray(g["seeds"]), _attrs("random seed", "1")),
        "tau": ("tau", grid, _attrs("data-scale noise variance sigma^2/m^2", "data variance")),
        "block": ("block", BLOCKS, _attrs("-1 normal space, 0 first block, 1 second block", "1")),
        "block_dim": (("d", "block"), np.array([[dd - k1 - k2, k1, k2] for dd in d]),
                      _attrs("directions in the block", "1")),
        "block_std": (("std_ratio", "block"), stds, _attrs("data std along the block", "data std")),
        "block_variance": (("d", "std_ratio", "block"), np.array(
            [[block_theory_variances(cfg, int(dd), r) for r in g["std_ratio"]] for dd in d]),
            _attrs("actual population variance along the block (after normalization)",
                   "data variance")),
        "anchor": ("anchor", list(ANCHORS), _attrs(
            "where the Jacobian is probed: training point / fresh sample / data mean, plus "
            "noise sqrt(tau) z", "1")),
        "signature": ("signature", list(SIGNATURES), _attrs(
            "signature of a lost direction: collapse rho < 1/2, excess rho > 2", "1")),
        "rank": ("rank", np.arange(max(g["d"])), _attrs("singular value index, descending", "1")),
        "probe_rank": ("probe_rank", np.arange(max(g["d"]) - 1), _attrs(
            "probe singular value index after dropping the first", "1")),
        "threshold": ("threshold", np.asarray(cfg["measure"]["thresholds"]),
                      _attrs("sensitivity threshold on r = 1 + tau lambda", "1")),
    }
    if axis == "n_train":
        coords["n_train"] = ("n_train", np.asarray(g["n_train"]), _attrs("training-set size N", "1"))
        coords["alpha"] = (("n_train", "d"), np.log(n_tab) / d, _attrs("alpha = log N / d", "1"))
    else:
        coords["alpha"] = ("alpha", np.asarray(g["alpha"]), _attrs("alpha = log N / d", "1"))
        coords["n_train"] = (("alpha", "d"), n_tab, _attrs("training-set size N = round(e^(alpha d))", "1"))
    if closed:
        coords["score"] = ("score", closed, _attrs("score function", "1"))
    if "learned" in g["score"]:
        coords["width"] = ("width", np.asarray(g["width"]), _attrs("network width", "1"))
        coords["train_step"] = ("train_step", np.asarray(vals["train_step"]),
                                _attrs("training steps at the checkpoint", "1"))
    return coords


def _add_phase_variables(ds: xr.Dataset, tau_phase: float) -> None:
    """Lost directions per block at tau_phase: measured (closed-form and learned) and both
    theories, k_b (1 - kept fraction)."""
    k = ds["block_dim"]
    at = dict(tau=tau_phase)
    for src, dst, name in (("kept_fraction", "lost_dims", "measured"),
                           ("learned_kept_fraction", "learned_lost_dims", "learned score, measured"),
                           ("kept_fraction_theory", "lost_dims_theory", "[ALD24] predicted"),
                           ("kept_fraction_rem", "lost_dims_rem", "REM predicted")):
        if src in ds:
            kept = ds[src].sel(**at).drop_vars("tau")
            ds[dst] = (k * (1.0 - kept)).transpose(*kept.dims)
            ds[dst].attrs = _attrs(f"{name} directions lost per block at tau = tau_phase "
                                   f"({tau_phase:g})", "count")


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
    jac_flops = n_anchor * t * (p * (10.0 * d**3 + (2.0 * n * d * d if cell["score"] == "empirical"
                                                    else 0)) + probes * d * (per_eval + 4 * d * d))
    mem = 8 * (3 * n * d + 2 * p * max(n, 1) + 8 * p * d * d + 4 * t * p * d) + 50 * 2**20
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
