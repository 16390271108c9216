"""Scores at training checkpoints: log-spaced checkpoint steps, the learned score of each kept
checkpoint of a DSM run, a measurement repeated over them, and the DSM loss of a checkpoint on
any point set with fixed noise draws (training vs held-out loss, the memorization signal of
[BUBM25] Bonnaire et al., arXiv 2505.17638).

Typical use (the [GDPLLW23] "highest ratio over checkpoints"):

    res = train_score(x, sch, net, TrainConfig(steps=K, checkpoint_steps=log_checkpoints(200, K)))
    curve = over_checkpoints(net, res, sch, lambda score: {"ratio": ratio_of(score)})
    best = curve["ratio"].max()
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch

from ..base.device import generator
from ..scores import LearnedScore
from .training import TrainResult, dsm_loss, sample_noise_levels

__all__ = ["log_checkpoints", "checkpoint_scores", "over_checkpoints", "fixed_dsm_loss"]


def log_checkpoints(first: int, budget: int, num: int = 20) -> list[int]:
    """About `num` integer steps spaced evenly in log between `first` and `budget` (both
    included; repeats after rounding dropped)."""
    for name, v in (("first", first), ("budget", budget), ("num", num)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if first > budget:
        raise ValueError(f"first checkpoint {first} exceeds the budget {budget}")
    if num == 1 or first == budget:
        return [int(budget)]
    steps = np.unique(np.geomspace(first, budget, num).round().astype(int))
    steps[-1] = budget
    return [int(s) for s in np.unique(steps)]


def checkpoint_scores(network: torch.nn.Module, result: TrainResult, schedule):
    """(step, LearnedScore) for every checkpoint kept in `result`, in step order. Each score holds
    its own copy of `network` with that checkpoint's weights (the network is not modified)."""
    if not result.checkpoints:
        raise ValueError("the training result kept no checkpoints "
                         "(set TrainConfig.checkpoint_steps)")
    for step in sorted(result.checkpoints):
        net = copy.deepcopy(network)
        net.load_state_dict(result.checkpoints[step])
        yield step, LearnedScore(net.eval(), schedule)


def over_checkpoints(network: torch.nn.Module, result: TrainResult, schedule,
                     measure: Callable[[LearnedScore], dict]) -> dict:
    """measure(score) at every checkpoint, stacked: {key: (K,) array} plus "train_step" (K,).
    measure returns a dict of numbers (the same keys at every checkpoint)."""
    steps, rows = [], []
    for step, score in checkpoint_scores(network, result, schedule):
        steps.append(step)
        rows.append(dict(measure(score)))
    out = {k: np.asarray([r[k] for r in rows], dtype=float) for k in rows[0]}
    out["train_step"] = np.asarray(steps)
    return out


def fixed_dsm_loss(network: torch.nn.Module, points: torch.Tensor, schedule, tau_range,
                   draws: int = 4, seed: int = 0, time_sampling: str = "log_tau",
                   labels=None) -> float:
    """The DSM loss (eq. L of `memphase.simulate.learning.training`, no penalty) of `network` on `points`, each
    noised `draws` times with (tau, z) drawn from Generator(seed): the same draws for every
    call with the same arguments, so the loss of successive checkpoints, and the training vs
    held-out gap, are compared on common random numbers.

        L = mean_{i, r} |eps_theta(y_i + sqrt(tau_ir) z_ir, log tau_ir[, c_i]) - z_ir|^2 / d

    labels: (N,) classes c_i of the points for a label-conditioned network (None: none).
    Checkpoint scores of such a network are conditional too: `checkpoint_scores(...)` yields
    LearnedScores to call with labels, or bind with `.given(labels)` for sampling.
    """
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    p = next(network.parameters())
    y = points.to(dtype=p.dtype, device=p.device).repeat(draws, 1)
    lab = None if labels is None else torch.as_tensor(labels, device=p.device).repeat(draws)
    gen = generator(seed, p.device)
    tau, s2 = sample_noise_levels(schedule, y.shape[0], tau_range, time_sampling, gen, p.dtype,
                                  p.device)
    z = torch.randn(y.shape, generator=gen, dtype=p.dtype, device=p.device)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            total, n = 0.0, y.shape[0]
            for s in range(0, n, 8192):  # bounded activations for large sets
                sl = slice(s, s + 8192)
                x_sl, nu = y[sl] + torch.sqrt(tau[sl])[:, None] * z[sl], torch.log(tau[sl])
                eps = network(x_sl, nu) if lab is None else network(x_sl, nu, lab[sl])
                total += float(dsm_loss(eps, z[sl], s2[sl])) * eps.shape[0]
    finally:
        network.train(was_training)
    loss = total / n
    if not math.isfinite(loss):
        raise FloatingPointError("DSM loss is not finite")
    return loss
