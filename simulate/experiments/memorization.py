"""Memorization ratio vs training-set size N for a training recipe [GDPLLW23], with conditioning.

Each cell draws N training points (isotropic Gaussian in d, or a linear manifold of intrinsic
dimension k [ALD24]; with C > 1 classes, C cluster centres added in the tangent space), builds a
score (the exact empirical score, or a network trained by DSM with the cell's recipe: network,
width, depth, time-embedding size, weight decay, EMA, training steps), samples the reverse SDE and
measures
  - the memorization ratio [GDPLLW23] (fraction with |x - NN_1| / |x - NN_2| < 1/3, NN over all N);
    for a learned score, as in the official procedure of [GDPLLW23] (Gu et al., arXiv 2310.02664),
    the HIGHEST ratio over `measure.checkpoints` evenly spaced training checkpoints (the last one
    the final network), `memorization_ratio`, beside the final checkpoint's own,
    `memorization_ratio_final`, and the step of the highest, `memorization_ratio_step`,
  - the collapse fraction [BDKOS25] and the collapse time t_hat_C by the last change of the nearest
    training point of x_t / m [BBDM24] (`memphase.analysis.observers.NearestTrainingPoint`; conditional
    scores: the nearest point of the sample's own class), for learned and empirical scores
    alike; beside them the REM collapse time (docs/theory.md) of a Gaussian with the
    covariance of the law the (class) points come from, for N_eff = N or N / C points.
Conditioning (docs/theory.md, Scores): label_mode "none" (unconditional), "true" (the cluster labels)
or "random" (labels independent of the clusters), both balanced, N / C points per class. The
conditional empirical score is the exact score of each class's points (`ConditionalScore`); a
conditional learned score is, by `training.conditioning` (`recipes.CONDITIONINGS`, stored as the
attribute `conditioning`), "embedding" (default): ONE class-conditional network with a label
embedding trained on all N points with their labels, the conditional EDM of [GDPLLW23]; or
"per_class": one network per class trained with the same recipe on that class's points (as
before the embedding existed). Generated samples get balanced labels. The prediction
that random labels act like N / C points, R_random(N, C) = R_none(N / C, C) [GDPLLW23], is stored
beside the measurement (`memphase.analysis.emm.random_label_prediction`; needs "none" in the grid).

Empirical cells do not depend on the recipe and label modes do not matter for C = 1: such cells
are computed once and broadcast over those axes. Conditional cells with N < C are skipped (NaN).
Seeds: data `seed`; cluster centres `(seed, 3)`; labels `(seed, 1)` (true), `(seed, 2)` (random;
or the official [GDPLLW23] i.i.d. draw, Python random seeded 1024, with data.random_labels =
"gdpllw23": `training_sets.gdpllw23_random_labels`, docs/conformance/gdpllw23.md);
network init `1009 seed + class`; training noise `seed`; sampling noise `10000 + seed`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import xarray as xr

from memphase.physics.critical import collapse_time
from memphase.physics.schedules import make_schedule

from ..run.config import Field
from ..run.cost import with_manifold_basis
from ..learning.conv_networks import ConvNet, ConvUNet, conv_parameter_count
from ..learning.networks import NETWORKS
from ..learning.training import OPTIMIZERS
from .common import DIGITS_SCALE, end_summaries, reverse_run, sampler_schema, sampler_time_range
from .recipes import (CONDITIONINGS, build_network_for,  # noqa: F401 (public)
                      build_score, check_networks, checkpoint_steps, train_config,
                      train_learned_score)
from .training_sets import (RANDOM_LABELS, TrainingSet, _balanced_labels,  # noqa: F401
                            gdpllw23_min_n,
                            _digits_training_set, check_digits_grid, make_training_set)

_pos = dict(check=lambda v: v > 0, rule="must be > 0")
_nonneg = dict(check=lambda v: v >= 0, rule="must be >= 0")

SCORES = ("empirical", "learned")
LABEL_MODES = ("none", "true", "random")
RECIPE_AXES = ("network", "width", "depth", "embedding_dim", "weight_decay", "ema_decay",
               "train_steps")
DATA_AXES = ("d", "intrinsic_dim", "n_classes", "label_mode")
AXES = ("score",) + RECIPE_AXES + DATA_AXES + ("n_train", "seed")

DATA_SCHEMA = {
    "model": Field("str", "synthetic", choices=("synthetic", "digits"),
                   help="synthetic (Gaussian / linear manifold, C clusters) or the scikit-learn "
                        "digits in their top-d principal coordinates (true labels = the digit "
                        "classes, n_classes 1 or 10, intrinsic_dim 0; needs memphase[data])"),
    "scale": DIGITS_SCALE,
    "std": Field("float", 1.0, **_pos, help="std of every tangent direction (isotropic: all d)"),
    "normal_std": Field("float", 0.0, **_nonneg,
                        help="std off the manifold (intrinsic_dim > 0 only)"),
    "random_labels": Field("str", "balanced", choices=RANDOM_LABELS,
                           help="random labels: balanced (N / C per class, seed (seed, 2)) or "
                                "gdpllw23 (the official i.i.d. draw: Python random seeded 1024, "
                                "randint(0, C - 1) per point; unequal classes, so R_none(N / C) "
                                "is then only approximate)"),
    "class_separation": Field("float", 3.0, **_nonneg,
                              help="distance of the C class centres from the origin, in units of "
                                   "std (centres random in the tangent space; C = 1: none)"),
}

RECIPE_GRID = {
    "network": Field("list[str]", ["residual_mlp"], choices=tuple(NETWORKS),
                     help="residual_mlp (sinusoidal time embedding) [ALD24] or fourier_mlp "
                          "(Gaussian Fourier features) [BDKOS25]"),
    "width": Field("list[int]", [128], check=lambda v: 1 <= v <= 4096, rule="1..4096"),
    "depth": Field("list[int]", [2], check=lambda v: 1 <= v <= 64, rule="1..64"),
    "embedding_dim": Field("list[int]", [32], check=lambda v: v >= 2 and v % 2 == 0,
                           rule="even, >= 2", help="time-embedding size (emb_dim / fourier_dim)"),
    "weight_decay": Field("list[float]", [0.0], **_nonneg),
    "ema_decay": Field("list[float]", [0.0], check=lambda v: 0 <= v < 1, rule="in [0, 1)"),
    "train_steps": Field("list[int]", [4000], check=lambda v: 1 <= v <= 10**7, rule="1..1e7"),
    "d": Field("list[int]", [8], check=lambda v: 1 <= v <= 4096, rule="1..4096",
               help="data dimension"),
    "intrinsic_dim": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0",
                           help="0: isotropic Gaussian in d; k >= 1: linear manifold of dim k"),
    "n_classes": Field("list[int]", [1], check=lambda v: 1 <= v <= 1000, rule="1..1000"),
    "label_mode": Field("list[str]", ["none"], choices=LABEL_MODES,
                        help="score conditioned on nothing, the true (cluster) labels, or "
                             "random labels"),
    "score": Field("list[str]", list(SCORES), choices=SCORES),
}

TRAINING_SCHEMA = {
    "lr": Field("float", 3e-3, **_pos),
    "lr_schedule": Field("str", "cosine", choices=("constant", "cosine")),
    "optimizer": Field("str", "adam", choices=OPTIMIZERS),
    "batch_size": Field("int", 64, **_nonneg, help="training points per step (0: full batch)"),
    "noise_draws": Field("int", 4, check=lambda v: v >= 1, rule="must be >= 1",
                         help="(tau, z) draws per training point per step"),
    "skip": Field("bool", False, help="linear Gaussian skip in the network output"),
    "conditioning": Field("str", "embedding", choices=CONDITIONINGS,
                          help="learned conditional scores: one network with a label embedding "
                               "[GDPLLW23] (embedding) or one network per class (per_class)"),
}

SAMPLER_SCHEMA = sampler_schema(steps=200, n_samples=256, t_max_tau=10.0, dtype="float32")

MEASURE_SCHEMA = {
    "collapse_tol": Field("float", 1e-2, **_pos, help="collapse-fraction distance tol"),
    "ratio_threshold": Field("float", 1 / 3, check=lambda v: 0 < v <= 1, rule="in (0, 1]"),
    "checkpoints": Field("int", 4, check=lambda v: 1 <= v <= 100, rule="1..100",
                         help="learned scores: training checkpoints (evenly spaced, the last = "
                              "final) sampled; memorization_ratio is the highest [GDPLLW23]"),
}

SCHEMA = {
    "job": Field("str", choices=("memorization",)),
    "output": Field("str", "data/results/memorization.h5"),
    "data": DATA_SCHEMA,
    "grid": {
        "n_train": Field("list[int]", [4, 8, 16, 32, 64, 128, 256],
                         check=lambda v: 2 <= v <= 10**6, rule="2 <= n_train <= 1e6"),
        **RECIPE_GRID,
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0"),
    },
    "training": TRAINING_SCHEMA,
    "sampler": SAMPLER_SCHEMA,
    "measure": MEASURE_SCHEMA,
}

SEED_STREAMS = ("data: seed; class centres: SeedSequence (seed, 3); true labels: (seed, 1); "
                "random labels: (seed, 2); network init: 1009 seed + class; training noise: seed; "
                "sampling noise: 10000 + seed")


# ------------------------------------------------------------------------------- cells
def canonical_cell(point: dict) -> dict:
    """A grid point with the keys that do not apply blanked: recipe keys None for the empirical
    score, label_mode "none" for one class (grid points that differ only there are one cell)."""
    out = dict(point)
    if out["score"] == "empirical":
        out.update({k: None for k in RECIPE_AXES})
    if out["n_classes"] == 1:
        out["label_mode"] = "none"
    return out


def effective_cell(cell: dict) -> dict | None:
    """The cell actually computed for a grid point: its `canonical_cell`; None (skipped) for a
    conditional cell with N < C."""
    out = canonical_cell(cell)
    if out["label_mode"] != "none" and out["n_train"] < out["n_classes"]:
        return None
    return out


def cell_key(cell: dict) -> tuple:
    """A hashable key of a cell (its items sorted by name)."""
    return tuple(sorted(cell.items(), key=lambda kv: kv[0]))


def unique_cells(points, effective) -> list[dict]:
    """effective(point) for each point, without repeats and without None, in order."""
    out, seen = [], set()
    for point in points:
        c = effective(point)
        if c is not None and cell_key(c) not in seen:
            seen.add(cell_key(c))
            out.append(c)
    return out


def check_grid(cfg, n_max: int | None = None) -> None:
    """Errors the schema cannot see (combinations of keys). n_max: the largest training set the
    job draws (default: the largest grid n_train; the EMM search passes its search.n_max)."""
    g = cfg["grid"]
    sampler_time_range(cfg)  # checks t_max_tau > t_min_tau
    for d, k in itertools.product(g["d"], g["intrinsic_dim"]):
        if k > d:
            raise ValueError(f"intrinsic_dim = {k} exceeds d = {d}")
    if cfg["data"]["model"] == "digits":
        check_digits_grid(g, max(g["n_train"]) if n_max is None else n_max)
    if "learned" in g["score"]:
        check_networks(g["network"], g["d"], digits=cfg["data"]["model"] == "digits")
    if cfg["data"]["random_labels"] == "gdpllw23" and "random" in g["label_mode"]:
        for c in (c for c in g["n_classes"] if c > 1):
            small = [n for n in g["n_train"] if c <= n < (gdpllw23_min_n(c) or math.inf)]
            if n_max is None and small:
                raise ValueError(f"data.random_labels = \"gdpllw23\" leaves a class empty at "
                                 f"n_train = {small[0]} with n_classes = {c}: the official draw "
                                 f"fills all classes from N = {gdpllw23_min_n(c)}")


def grid_points(cfg, axes=AXES):
    """Every grid point (a dict over `axes`), in the order of the product of the axes."""
    g = cfg["grid"]
    lists = [g["seeds" if a == "seed" else a] for a in axes]
    return [dict(zip(axes, vals)) for vals in itertools.product(*lists)]


def cells(cfg) -> list[dict]:
    check_grid(cfg)
    return unique_cells(grid_points(cfg), effective_cell)


# ------------------------------------------------------------------------------- scores
def _schedule(cfg):
    return make_schedule(cfg["sampler"]["schedule"])


# ------------------------------------------------------------------------------- one cell
def collapse_time_theory(cfg, cell, ts: TrainingSet) -> float:
    """REM t_C (docs/theory.md) of N_eff = N (unconditional) or N / C (conditional) points of
    a Gaussian with the covariance of their law (class covariance for true labels, the whole law
    otherwise); exact for Gaussian data, an approximation for the class mixture. Eigenvalues are
    floored at 1e-12 std^2 (a manifold's empty normal space)."""
    conditional = cell["label_mode"] != "none"
    n_eff = cell["n_train"] / cell["n_classes"] if conditional else cell["n_train"]
    if n_eff < 2:
        return math.nan
    cov = ts.cov_class if cell["label_mode"] == "true" else ts.cov_all
    unit = (cfg["data"]["std"] ** 2 if cfg["data"]["model"] == "synthetic"
            else np.trace(cov) / cov.shape[0])  # digits: the mean variance
    var = np.clip(np.linalg.eigvalsh(cov), 1e-12 * unit, None)
    return float(collapse_time(n_eff, var, _schedule(cfg)))


def prepare(cfg, cell):
    """The cell's training set and its score (trained when learned):
    (TrainingSet, score, labels of the generated batch or None, training info)."""
    ts = make_training_set(cfg, cell["d"], cell["intrinsic_dim"], cell["n_classes"],
                           cell["n_train"], cell["seed"])
    score, sample_labels, info = build_score(cfg, cell, ts, _schedule(cfg))
    return ts, score, sample_labels, info


def draw(cfg, cell, score, observers=()) -> torch.Tensor:
    """Reverse-SDE (or ODE) samples of `score` over the sampler's tau range, seed 10000 + seed."""
    return reverse_run(cfg, score, _schedule(cfg), 10_000 + cell["seed"], observers)


def checkpoint_ratios(cfg, cell, ts: TrainingSet, scores: dict, known: dict | None = None
                      ) -> dict:
    """{step: memorization ratio of samples of scores[step]} (same sampling noise for every
    checkpoint); ratios already in `known` are not recomputed."""
    from memphase.analysis.memorization import memorization_ratio

    out = dict(known or {})
    for step, score in scores.items():
        if step not in out:
            out[step] = memorization_ratio(draw(cfg, cell, score), ts.x,
                                           cfg["measure"]["ratio_threshold"])
    return out


def measure_ratio(cfg, cell) -> float:
    """Memorization ratio [GDPLLW23] of one cell (no trajectory observers): what EMM searches on.
    A learned score's ratio is the highest over its training checkpoints (official procedure)."""
    from memphase.analysis.memorization import highest_over_checkpoints

    ts, score, _, info = prepare(cfg, cell)
    scores = info.get("checkpoint_scores") or {0: score}
    return highest_over_checkpoints(checkpoint_ratios(cfg, cell, ts, scores))[0]


class ClassNearestTrainingPoint:
    """`NearestTrainingPoint` within each sample's own class: one observer per class, fed the
    samples generated with that label (a conditional sample condenses on a point of its class;
    the other classes' points are no attractors for it)."""

    def __init__(self, train, train_labels, sample_labels):
        from memphase.analysis.observers import NearestTrainingPoint

        self.parts = [(sample_labels == c, NearestTrainingPoint(train[train_labels == c]))
                      for c in torch.unique(sample_labels)]

    def __call__(self, state):
        for sel, obs in self.parts:
            obs({**state, "x": state["x"][sel], "stats": None})

    def collapse_times(self) -> np.ndarray:
        return np.concatenate([obs.result()["collapse_time"] for _, obs in self.parts])


def run_cell(cfg, cell) -> dict:
    from memphase.analysis.observers import NearestTrainingPoint

    ts, score, sample_labels, info = prepare(cfg, cell)
    if sample_labels is None:
        obs = NearestTrainingPoint(ts.x)
    else:
        obs = ClassNearestTrainingPoint(ts.x, ts.labels(cell["label_mode"]), sample_labels)
    x = draw(cfg, cell, score, [obs])
    tc = obs.result()["collapse_time"] if sample_labels is None else obs.collapse_times()
    summary = end_summaries(x, ts.x, cfg["measure"], tc)
    highest, step = summary["memorization_ratio"], math.nan
    if info.get("checkpoint_scores"):
        from memphase.analysis.memorization import highest_over_checkpoints

        final = cell["train_steps"]
        ratios = checkpoint_ratios(cfg, cell, ts, info["checkpoint_scores"],
                                   {final: summary["memorization_ratio"]})
        highest, step = highest_over_checkpoints(ratios)
    return {
        **summary,
        "memorization_ratio": highest,
        "memorization_ratio_final": summary["memorization_ratio"],
        "memorization_ratio_step": step,
        "collapse_time_theory": collapse_time_theory(cfg, cell, ts),
        "train_loss": info["loss"],
        "train_seconds": info["seconds"],
        "parameters": info["parameters"],
    }


def estimate(cfg, cell) -> dict:
    """Rough cost of one cell on one idle CPU thread. Training (per network; C networks when
    conditional with conditioning "per_class", else one): steps x (1.2 ms x (depth + 2) overhead + 6 B P / 2e10 s), B = points x noise
    draws, P parameters ~ depth (w^2 + e w) + 2 d w (measured: width 128, depth 2, B = 256,
    4000 steps ~ 24 s of CPU); sampling: steps x (n_samples P / 1e9 s
    + 1 ms) plus the nearest-point search n_samples N d per recording (1 GFLOP/s). Memory: the
    training set, the Adam state, activations and the sampler batch. Convolutional networks: P
    replaced by their weight-sharing work (`conv_parameter_count` x d / 8)."""
    sp, tc = cfg["sampler"], cfg["training"]
    d, n, c = cell["d"], cell["n_train"], cell["n_classes"]
    nets = c if cell["label_mode"] != "none" and tc["conditioning"] == "per_class" else 1
    item = 4 if sp["dtype"] == "float32" else 8
    b_samp = sp["n_samples"]
    # the set plus float64 copies of the nearest-neighbour passes (measured ~23 bytes per entry)
    train_s, mem = 0.0, item * (n * d + 6 * b_samp * d + b_samp * n) + 24 * n * (d + 1)
    if cell["score"] == "learned":
        w, depth, e = cell["width"], cell["depth"], cell["embedding_dim"]
        p = depth * (w * w + e * w) + 2 * d * w
        net_class = NETWORKS[cell["network"]]
        if issubclass(net_class, ConvNet):
            # weights shared over the d pixels: work ~ P d / 8, activations ~ width x d per layer
            # (measured, d = 64, 2000 steps of 256 rows: conv_unet 44 s, conv 62 s of CPU)
            unet = issubclass(net_class, ConvUNet)
            p, w = conv_parameter_count(w, depth, e, unet=unet) * d // 8, w * d
        per_net = n / nets if not tc["batch_size"] else min(tc["batch_size"], n / nets)
        batch = per_net * tc["noise_draws"]
        train_s = nets * cell["train_steps"] * (1.2e-3 * (depth + 2) + 6 * batch * p / 2e10)
        mem += item * (4 * p * nets + 10 * batch * w * depth)
        sample_s = len(checkpoint_steps(cfg, cell)) * sp["steps"] * (
            b_samp * p / 1e9 + 1e-3 * (depth + 2))
    else:
        sample_s = sp["steps"] * (4 * b_samp * n * d / 1e9 + 1e-3)
    nn_s = 3.0 * sp["record"] * b_samp * n * d / 1e9
    if cell.get("intrinsic_dim") and cfg["data"]["model"] == "synthetic":
        # linear_manifold draws a Haar d x d basis (its QR peak) and keeps it and the d x d
        # covariance: 0.7 GiB and ~50 s at d = 4096 that the terms above miss (issue #26)
        mem, train_s = with_manifold_basis(mem, train_s, d, n, item)
    return {"memory_bytes": int(mem), "seconds": float(train_s + sample_s + nn_s + 0.5)}


# ------------------------------------------------------------------------------- dataset
VARIABLES = {
    "memorization_ratio": ("1", "fraction of samples with |x-NN1|/|x-NN2| < threshold, the "
                                "HIGHEST over the training checkpoints for a learned score "
                                "(official procedure of [GDPLLW23])"),
    "memorization_ratio_final": ("1", "memorization ratio of the final checkpoint alone"),
    "memorization_ratio_step": ("1", "training step of the checkpoint with the highest ratio "
                                     "(NaN: empirical score)"),
    "collapse_fraction": ("1", "fraction of samples within tol of a training point [BDKOS25]"),
    "collapse_time_measured": ("schedule time",
                               "mean last change time of the nearest training point [BBDM24] "
                               "(conditional: nearest point of the sample's class)"),
    "collapse_time_spread": ("schedule time", "std over trajectories of that time"),
    "collapse_time_theory": ("schedule time",
                             "REM collapse time t_C for N (or N/C per class) points of a Gaussian "
                             "with the same covariance (`memphase docs theory`)"),
    "train_loss": ("1", "DSM loss per dimension, mean of the last 10% of steps "
                        "(per_class conditioning: mean over classes)"),
    "train_seconds": ("s", "training wall time (per_class: sum over the per-class networks)"),
    "parameters": ("1", "trainable parameters (per_class: sum over the per-class networks)"),
}


def coordinates(cfg, axes) -> dict:
    """CF-annotated coordinates of the grid axes `axes`."""
    g = cfg["grid"]
    meta = {
        "score": ("", "score function"),
        "network": ("", "network architecture (and its time embedding)"),
        "width": ("1", "hidden width"),
        "depth": ("1", "number of hidden blocks / layers"),
        "embedding_dim": ("1", "time-embedding size"),
        "weight_decay": ("1", "optimizer weight decay"),
        "ema_decay": ("1", "EMA decay of the weights (0: off)"),
        "train_steps": ("1", "optimizer steps"),
        "d": ("1", "data dimension"),
        "intrinsic_dim": ("1", "intrinsic dimension (0: isotropic Gaussian in d)"),
        "n_classes": ("1", "number of classes C"),
        "label_mode": ("", "conditioning: none, true (cluster) labels, random labels"),
        "n_train": ("1", "training-set size N"),
        "seed": ("1", "random seed (see attrs seed_streams)"),
    }
    out = {}
    for a in axes:
        vals = g["seeds" if a == "seed" else a]
        units, name = meta[a]
        attrs = {"long_name": name, **({"units": units} if units else {})}
        out[a] = (a, np.asarray(vals) if not isinstance(vals[0], str) else list(vals), attrs)
    return out


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g = cfg["grid"]
    by_cell = {cell_key(c): r for c, r in zip(cell_list, results)}
    shape = tuple(len(g["seeds" if a == "seed" else a]) for a in AXES)
    arrays = {k: np.full(shape, np.nan) for k in VARIABLES}
    for idx, point in zip(np.ndindex(shape), grid_points(cfg)):
        c = effective_cell(point)
        res = None if c is None else by_cell.get(cell_key(c))
        if res is not None:
            for k in VARIABLES:
                arrays[k][idx] = res[k]
    data_vars = {k: (AXES, v, {"units": VARIABLES[k][0], "long_name": VARIABLES[k][1]})
                 for k, v in arrays.items()}
    ds = xr.Dataset(data_vars, coords=coordinates(cfg, AXES))
    ds["ratio_random_label_prediction"] = random_label_curve(ds)
    ds.attrs.update({
        "seed_streams": SEED_STREAMS,
        "skipped": "conditional cells with n_train < n_classes (NaN)",
        "ratio_threshold": cfg["measure"]["ratio_threshold"],
        "memorization_ratio": "highest over measure.checkpoints evenly spaced training "
                              "checkpoints, the final included, as the official procedure of "
                              "[GDPLLW23] Gu et al., arXiv 2310.02664; memorization_ratio_final "
                              "is the final checkpoint's",
        "checkpoints": cfg["measure"]["checkpoints"],
        "conditioning": cfg["training"]["conditioning"],
        "conditioning_meaning": "learned conditional scores: embedding = one class-conditional "
                                "network with a label embedding [GDPLLW23]; per_class = one "
                                "network per class",
    })
    return ds


def random_label_curve(ds: xr.Dataset) -> xr.DataArray:
    """R_none(N / C) per (score, recipe, data, seed): the unconditional curve of the same data law
    interpolated in log N at N / C [GDPLLW23] (`memphase.analysis.emm.random_label_prediction`); NaN where
    N / C is outside the n_train range or "none" is not in the grid."""
    from memphase.analysis.emm import random_label_prediction

    ratio = ds["memorization_ratio"]
    dims = tuple(a for a in ratio.dims if a != "label_mode")
    if "none" not in ds["label_mode"].values:
        out = xr.full_like(ratio.isel(label_mode=0, drop=True), np.nan)
    else:
        none = ratio.sel(label_mode="none", drop=True)
        parts = []
        for c in ds["n_classes"].values:
            curve = none.sel(n_classes=c).transpose(..., "n_train")
            parts.append(curve.copy(data=random_label_prediction(ds["n_train"].values,
                                                                 curve.values, int(c))))
        out = xr.concat(parts, dim="n_classes").transpose(*dims)
    out.attrs = {"units": "1", "long_name": "random-label prediction: unconditional ratio at "
                 "N / C of the same data law [GDPLLW23]"}
    return out


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.memorization import plot_memorization

    plot_memorization(ds, path)
