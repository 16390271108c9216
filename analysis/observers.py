"""Observers: callables handed to `memphase.simulate.sampling.sample` that accumulate measurements along
reverse trajectories without keeping whole trajectories (unless `Trajectory` is asked for).

Each observer is called with the sampler's state dict and exposes `result()`, a dict of numpy
arrays whose first axis is the recording time (key "t" and "tau" give the grid).
"""

from __future__ import annotations

import numpy as np
import torch

from .memorization import block_variance, nearest_neighbors

__all__ = ["NearestTrainingPoint", "BlockVariance", "Trajectory", "collapse_time_from_indices",
           "LAST_CHANGE_RULES"]


#: how a last change between two recordings is read: "midpoint" (memphase) or "after" (the
#: official [BBDM24] `Experiment_collapse.py`: the recording after the change, times[last + 1])
LAST_CHANGE_RULES = ("midpoint", "after")


def collapse_time_from_indices(times: np.ndarray, indices: np.ndarray,
                               rule: str = "midpoint") -> np.ndarray:
    """Measured collapse time per trajectory [BBDM24]: the last recorded time (going backwards,
    i.e. the smallest t) at which the nearest training point of x_t / m(t) changes.

    times: (T,) decreasing; indices: (T, B). Returns (B,) t_hat_C; times[0] if it never changes.
    rule="midpoint" (memphase): the midpoint of the two recordings between which the index changed
    for the last time. rule="after" (official [BBDM24]: tt = last nonzero of diff(index) + 1,
    t_hat_C = times[tt]): the first recording on the final index, half a recording step later in
    the reverse run than the midpoint.
    """
    if rule not in LAST_CHANGE_RULES:
        raise ValueError(f"rule must be one of {LAST_CHANGE_RULES}, got {rule!r}")
    times = np.asarray(times)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[0] != times.shape[0]:
        raise ValueError(f"indices must be (T, B) with T = {times.shape[0]}, got {indices.shape}")
    changed = indices[1:] != indices[:-1]  # change between recording k and k+1
    last = np.where(changed.any(0), changed.shape[0] - 1 - np.argmax(changed[::-1], axis=0), -1)
    safe = np.clip(last, 0, None)
    read = times[safe + 1] if rule == "after" else 0.5 * (times[safe] + times[safe + 1])
    return np.where(last >= 0, read, times[0])


class NearestTrainingPoint:
    """Tracks the nearest training point of x_t / m(t) and its distance at each recording.

    Reuses the empirical score's own argmax (state["stats"]) when the score was built on the same
    training set, otherwise runs `nearest_neighbors`.
    """

    def __init__(self, train):
        self.train = getattr(train, "x", train)
        self.times, self.taus, self.indices, self.distances = [], [], [], []

    def __call__(self, state):
        xs = state["x"] / state["m"]
        stats, obj = state.get("stats"), state.get("score_obj")
        if stats is not None and getattr(obj, "train", None) is self.train:
            idx = stats.nearest
            dist = torch.linalg.vector_norm(xs - self.train.to(xs.dtype)[idx], dim=1)
        else:
            dist, idx = nearest_neighbors(xs, self.train, k=1)
            dist, idx = dist[:, 0], idx[:, 0]
        self.times.append(state["t"])
        self.taus.append(state["tau"])
        self.indices.append(idx.cpu().numpy())
        self.distances.append(dist.cpu().numpy())

    def result(self) -> dict:
        t = np.asarray(self.times)
        idx = np.stack(self.indices)
        return {
            "t": t,
            "tau": np.asarray(self.taus),
            "index": idx,
            "distance": np.stack(self.distances),
            "collapse_time": collapse_time_from_indices(t, idx),
            "collapse_time_after": collapse_time_from_indices(t, idx, rule="after"),
            "same_as_final": (idx == idx[-1]).mean(axis=1),
        }


class BlockVariance:
    """Per-block variance of x_t / m(t) projected on each block's basis [ALD24]."""

    def __init__(self, basis, block):
        self.basis, self.block = np.asarray(basis), np.asarray(block)
        self.times, self.taus, self.values = [], [], []

    def __call__(self, state):
        self.times.append(state["t"])
        self.taus.append(state["tau"])
        self.values.append(block_variance(state["x"] / state["m"], self.basis, self.block))

    def result(self) -> dict:
        return {"t": np.asarray(self.times), "tau": np.asarray(self.taus),
                "variance": np.stack(self.values)}


class Trajectory:
    """Keeps the whole batch at every recording (memory T x B x d: use for small runs)."""

    def __init__(self):
        self.times, self.taus, self.xs = [], [], []

    def __call__(self, state):
        self.times.append(state["t"])
        self.taus.append(state["tau"])
        self.xs.append(state["x"].detach().cpu().numpy().copy())

    def result(self) -> dict:
        return {"t": np.asarray(self.times), "tau": np.asarray(self.taus), "x": np.stack(self.xs)}
