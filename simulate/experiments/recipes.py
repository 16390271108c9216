"""Scores of the memorization and EMM experiments [GDPLLW23]: a training recipe's network (DSM,
with its training checkpoints) or the empirical score, unconditional or conditioned on labels.

Conditioning of a learned score (`training.conditioning`, CONDITIONINGS):
  "embedding" (default): ONE class-conditional network, a label embedding added to its noise
      embedding (`memphase.simulate.learning.networks`, n_classes = C), trained by DSM on all N points with
      their labels: the conditional EDM of [GDPLLW23], which shares its weights across classes;
  "per_class": one unconditional network per class, each trained with the same recipe on that
      class's N / C points only (no sharing; C trainings; how results before the embedding
      existed were computed).
The empirical score is always the exact per-class one (both readings agree for it).

A learned score keeps its (EMA) weights at `checkpoint_steps` (evenly spaced, the last the final
network): the memorization ratio of a recipe is the highest over them, the official procedure of
[GDPLLW23] Gu et al., "On memorization in diffusion models", arXiv 2310.02664.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..learning.checkpoints import checkpoint_scores
from ..run.config import ConfigError
from ..learning.conv_networks import ConvNet
from ..data.real import DIGITS_D
from ..learning.networks import NETWORKS, build_network, check_network_d, count_parameters
from ..scores import ConditionalScore, EmpiricalScore, LearnedScore
from ..learning.training import TrainConfig, train_score

__all__ = ["checkpoint_steps", "train_config", "build_network_for", "train_learned_score",
           "build_score", "check_networks", "CONDITIONINGS"]

CONDITIONINGS = ("embedding", "per_class")


def checkpoint_steps(cfg, cell) -> list[int]:
    """Training steps at which a learned score is sampled: ceil(k S / K), k = 1..K, K =
    measure.checkpoints, S = train_steps (the last is the final network)."""
    k, steps = cfg["measure"]["checkpoints"], cell["train_steps"]
    return sorted({math.ceil(steps * j / k) for j in range(1, k + 1)})


def train_config(cfg, cell, seed: int) -> TrainConfig:
    """The DSM TrainConfig of a recipe; the noise range is the sampler's tau range; the (EMA)
    weights are kept at `checkpoint_steps`."""
    tc, sp = cfg["training"], cfg["sampler"]
    return TrainConfig(checkpoint_steps=checkpoint_steps(cfg, cell),
        steps=cell["train_steps"], batch_size=tc["batch_size"] or None,
        noise_draws=tc["noise_draws"], lr=tc["lr"], lr_schedule=tc["lr_schedule"],
        optimizer=tc["optimizer"], weight_decay=cell["weight_decay"],
        ema_decay=cell["ema_decay"], tau_min=sp["t_min_tau"], tau_max=sp["t_max_tau"], seed=seed,
        dtype=sp["dtype"], device=sp["device"])


def check_networks(kinds, ds, *, digits: bool = False) -> None:
    """ConfigError (one line, CLI exit 2, before any compute) when a network of `kinds` cannot
    take inputs of a width in `ds` (`memphase.simulate.learning.networks.check_network_d`: conv networks
    need d = side^2), or, on the digits (`digits`), when a convolutional network is asked to read
    principal coordinates: only d = 64, the 8 x 8 pixels, is an image."""
    for kind, d in itertools.product(kinds, ds):
        try:
            check_network_d(kind, d)
        except ValueError as err:
            raise ConfigError(f"{err} (network and d of the config)") from None
        if digits and issubclass(NETWORKS[kind], ConvNet) and d != DIGITS_D:
            raise ConfigError(f"network {kind!r} on the digits needs the pixels, d = {DIGITS_D}; "
                              f"d = {d} principal coordinates are not an image")


def build_network_for(cfg, cell, d: int, data_var: float, init_seed: int,
                      n_classes: int | None = None):
    """The recipe's network: embedding_dim is fourier_dim (Fourier) or emb_dim (residual, conv);
    n_classes: a label-conditioned network (None: unconditional)."""
    key = "fourier_dim" if cell["network"] == "fourier_mlp" else "emb_dim"
    return build_network(cell["network"], d, seed=init_seed, width=cell["width"],
                         depth=cell["depth"], data_var=data_var, skip=cfg["training"]["skip"],
                         n_classes=n_classes, **{key: cell["embedding_dim"]})


def train_learned_score(cfg, cell, x: torch.Tensor, cov: np.ndarray, sch, seed: int, cls: int = 0,
                        labels: torch.Tensor | None = None):
    """LearnedScore of a network trained by DSM on x; info: final loss (mean of the last 10 %
    of steps), seconds, parameters, and `checkpoints` {step: LearnedScore of the (EMA) weights at
    that step} (`checkpoint_steps`). Network data variance: trace(cov) / d. With `labels` (N,):
    one label-conditioned network (n_classes = cell["n_classes"]) trained with them; its scores
    take labels (bind them with `.given`)."""
    d = x.shape[1]
    n_classes = None if labels is None else cell["n_classes"]
    net = build_network_for(cfg, cell, d, float(np.trace(cov)) / d, 1009 * seed + cls, n_classes)
    res = train_score(x, sch, net, train_config(cfg, cell, seed), labels=labels)
    tail = max(1, len(res.losses) // 10)
    # the same checkpoint scores as the training_dynamics job ([GDPLLW23] highest over them)
    snapshots = dict(checkpoint_scores(res.network, res, sch)) if res.checkpoints else {}
    snapshots[cell["train_steps"]] = LearnedScore(res.network, sch)
    info = {"loss": float(np.mean(res.losses[-tail:])), "seconds": res.seconds,
            "parameters": count_parameters(net), "checkpoints": snapshots}
    return snapshots[cell["train_steps"]], info


def build_score(cfg, cell, ts, sch):
    """(score for the sampler, labels of the generated batch or None, training info) for a
    `memorization.TrainingSet` ts. For a
    learned score info["checkpoint_scores"] = {step: score at that training checkpoint}
    (conditional: the network, or the per-class networks, at the same step, bound to the
    generated batch's labels), the final one included. Generated labels: balanced over the
    classes present in the training set."""
    labels = ts.labels(cell["label_mode"])
    cov = ts.cov_all if cell["label_mode"] in ("none", "random") else ts.cov_class
    info = {"loss": math.nan, "seconds": 0.0, "parameters": 0}
    if labels is None:
        if cell["score"] == "empirical":
            return EmpiricalScore(ts.x, sch), None, info
        score, info = train_learned_score(cfg, cell, ts.x, cov, sch, cell["seed"])
        return score, None, {**info, "checkpoint_scores": info["checkpoints"]}
    classes = sorted(int(c) for c in torch.unique(labels))
    n = cfg["sampler"]["n_samples"]
    sample_labels = torch.as_tensor(np.asarray(classes)[np.arange(n) % len(classes)],
                                    device=ts.x.device)
    if cell["score"] == "learned" and cfg["training"]["conditioning"] == "embedding":
        # one network for all classes; its input scaling uses the variance of all N points
        score, info = train_learned_score(cfg, cell, ts.x, ts.cov_all, sch, cell["seed"],
                                          labels=labels)
        bound = {step: s.given(sample_labels) for step, s in info["checkpoints"].items()}
        return bound[cell["train_steps"]], sample_labels, {**info, "checkpoint_scores": bound}
    per_class, infos = {}, []
    for c in classes:
        pts = ts.x[labels == c]
        if cell["score"] == "empirical":
            per_class[c] = EmpiricalScore(pts, sch)
        else:
            per_class[c], inf = train_learned_score(cfg, cell, pts, cov, sch, cell["seed"], c)
            infos.append(inf)
    score = _conditional(ts.x, labels, sch, classes, per_class).given(sample_labels)
    if infos:
        info = {"loss": float(np.mean([i["loss"] for i in infos])),
                "seconds": float(sum(i["seconds"] for i in infos)),
                "parameters": int(sum(i["parameters"] for i in infos)),
                "checkpoint_scores": {
                    step: _conditional(ts.x, labels, sch, classes, {
                        c: inf["checkpoints"][step] for c, inf in zip(classes, infos)
                    }).given(sample_labels) for step in infos[0]["checkpoints"]}}
    return score, sample_labels, info


def _conditional(x, labels, sch, classes, per_class) -> ConditionalScore:
    """ConditionalScore over the given per-class scores."""
    order = iter(classes)  # ConditionalScore calls the factory once per class, in sorted order

    def factory(points, _sch):
        c = next(order)
        if points.shape[0] != int((labels == c).sum()):
            raise RuntimeError("ConditionalScore visited the classes in an unexpected order")
        return per_class[c]

    return ConditionalScore(x, labels, sch, factory)
