"""Measured critical times: speciation by cloning [BBDM24], collapse by the last change of the
nearest training point [BBDM24] and by the Monte-Carlo excess entropy [BBDM24, BM23].

Every estimator takes any score with the `score(x, t)` interface, so the same code shows that the
population or a regularized score never collapses.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .memorization import nearest_neighbors
from .observers import NearestTrainingPoint

__all__ = [
    "CloningResult",
    "clone_agreement",
    "crossing_time",
    "crossing_time_ci",
    "bootstrap_ci",
    "collapse_time_last_change",
    "excess_entropy_mc",
    "PROBES",
]


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Percentile bootstrap CI of the mean of `values` along axis 0: (mean, lo, hi)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    means = values[idx].mean(axis=1)
    a = (1 - level) / 2
    return values.mean(axis=0), np.quantile(means, a, axis=0), np.quantile(means, 1 - a, axis=0)


def crossing_time(times, values, level: float) -> float:
    """Time at which a curve crosses `level`, linearly interpolated between the two bracketing
    samples (times sorted increasing); NaN if it never crosses."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    order = np.argsort(t)
    t, v = t[order], v[order]
    s = np.sign(v - level)
    idx = np.nonzero(s[:-1] * s[1:] <= 0)[0]
    idx = [i for i in idx if not (s[i] == 0 and s[i + 1] == 0)]
    if not idx:
        return float("nan")
    i = idx[0]
    if v[i + 1] == v[i]:
        return float(t[i])
    return float(t[i] + (level - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i]))


def crossing_time_ci(times, per_traj, level: float, n_boot: int = 200, ci: float = 0.95,
                     seed: int = 0):
    """Crossing time of the trajectory-averaged curve and its percentile bootstrap CI over
    trajectories: per_traj is (T, n_traj); returns (estimate, lo, hi). Bootstrap draws whose
    curve never crosses are ignored (NaN-quantiles)."""
    per_traj = np.asarray(per_traj, dtype=float)
    est = crossing_time(times, per_traj.mean(axis=1), level)
    rng = np.random.default_rng(seed)
    n = per_traj.shape[1]
    boots = [crossing_time(times, per_traj[:, rng.integers(0, n, n)].mean(axis=1), level)
             for _ in range(n_boot)]
    if np.all(np.isnan(boots)):
        return est, float("nan"), float("nan")
    a = (1 - ci) / 2
    lo, hi = np.nanquantile(boots, [a, 1 - a])
    return est, float(lo), float(hi)


class CloningResult(dict):
    """dict with keys t (branching times), phi, lo, hi (95% bootstrap CI), per_traj (T, n_traj)."""


def clone_agreement(score, schedule, branch_times, n_traj: int, label_fn, *, n_clones: int = 2,
                    steps: int = 100, t_min: float | None = None, seed: int = 0,
                    dtype="float64", device="cpu", n_boot: int = 1000) -> CloningResult:
    """Cloning observable [BBDM24]: run n_traj reverse trajectories to each branching time t_b,
    split each into n_clones copies with independent noise, integrate to t_min, and record
    phi(t_b) = fraction of clone pairs whose final `label_fn` agrees.

    label_fn(x_final) -> (B,) integer labels: the class (speciation) or the nearest training
    point (collapse). Returns phi with a bootstrap CI over trajectories.
    """
    from memphase.simulate.sampling import default_time_range, sample

    from memphase.simulate.base.device import generator

    t_hi, t_lo = default_time_range(schedule)
    t_min = t_lo if t_min is None else t_min
    times = np.sort(np.asarray(branch_times, dtype=float))
    t_hi = min(max(t_hi, float(times.max())), float(schedule.t_hi))
    if np.any(times <= t_min) or np.any(times > t_hi):
        raise ValueError(f"branch times must lie in ({t_min:g}, {t_hi:g}], got "
                         f"[{times.min():g}, {times.max():g}]")
    if n_clones < 2:
        raise ValueError(f"n_clones must be >= 2, got {n_clones}")
    per_traj = np.empty((times.size, n_traj))
    for j, tb in enumerate(times):
        if tb < t_hi:
            x_b = sample(score, schedule, n_traj, steps=steps, t_max=t_hi, t_min=tb, seed=seed + j,
                         dtype=dtype, device=device, denoise_final=False)
        else:  # branching at the start: the clones share only the initial point
            from memphase.simulate.base.device import resolve_dtype
            x_b = score.initial_sample(n_traj, tb, generator(seed + j, device),
                                       resolve_dtype(dtype), device)
        clones = x_b.repeat_interleave(n_clones, dim=0)
        end = sample(score, schedule, clones.shape[0], steps=steps, t_max=tb, t_min=t_min,
                     seed=seed + 100_000 + j, dtype=dtype, device=device, x_init=clones)
        lab = np.asarray(label_fn(end)).reshape(n_traj, n_clones)
        same = (lab[:, :, None] == lab[:, None, :])
        iu = np.triu_indices(n_clones, 1)
        per_traj[j] = same[:, iu[0], iu[1]].mean(axis=1)
    mean, lo, hi = bootstrap_ci(per_traj.T, n_boot=n_boot, seed=seed)
    return CloningResult(t=times, phi=mean, lo=lo, hi=hi, per_traj=per_traj)


def collapse_time_last_change(score, schedule, train, n: int, *, steps: int = 200,
                              record: int | str = "all", seed: int = 0, dtype="float64",
                              device="cpu", t_max=None, t_min=None):
    """t_hat_C per trajectory [BBDM24]: last time the nearest training point of x_t / m(t) changes
    along a reverse SDE trajectory. Returns (mean, std, per-trajectory array)."""
    from memphase.simulate.sampling import sample

    obs = NearestTrainingPoint(train)
    sample(score, schedule, n, steps=steps, seed=seed, observers=[obs], record=record,
           dtype=dtype, device=device, t_max=t_max, t_min=t_min)
    tc = obs.result()["collapse_time"]
    return float(tc.mean()), float(tc.std()), tc


PROBES = ("fresh", "planted")


def excess_entropy_mc(empirical_score, fresh, times, *, seed: int = 0, alpha=None,
                      probe: str = "fresh", n_probes: int | None = None):
    """Monte-Carlo excess entropy [BBDM24 eq. for f(t); docs/theory.md]:

        f^e(t) = alpha + (1/2) log(2 pi e Delta_t) + (1/d) E_x log P^e_t(x),

    Delta_t = sigma(t)^2 the noise variance of the schedule, P^e_t the empirical mixture (streaming
    log-sum-exp through `empirical_score.log_density`), x = m(t) y + sigma(t) z with

    - probe = "fresh" (memphase's protocol): y the population samples `fresh` ((M, d), independent of
      the training set). f^e has its zero at the collapse time t_C; its expectation is
      `memphase.physics.critical.excess_entropy_finite_n(..., probe="fresh")`.
    - probe = "planted" (the official [BBDM24] protocol, `Gaussian_mixtures_entropy.py` and
      `Experiment_collapse.py`): y a training point drawn uniformly with replacement, anew at every
      time (n_probes draws; default len(fresh), or N if fresh is None). Then log Z >= -|z|^2 / 2, so
      f^e >= 1/2 - |z|^2 / (2d) per probe, whose mean is 0: planted f^e > 0 at every finite N and
      has no zero; it tends to max(f_fresh, 0) only as d -> infinity (docs/theory.md).

    Returns (f (T,), standard error (T,)): the standard error is over probes given the training set.
    """
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    sch = empirical_score.schedule
    d = empirical_score.dim
    n = empirical_score.n_train
    alpha = math.log(n) / d if alpha is None else alpha
    if probe == "fresh":
        y = getattr(fresh, "x", fresh)
        device, dtype = y.device, y.dtype
    else:
        train = empirical_score.train
        device, dtype = train.device, train.dtype
        if n_probes is None:
            n_probes = n if fresh is None else int(getattr(fresh, "x", fresh).shape[0])
        pick = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    f, se = [], []
    for t in np.asarray(times, dtype=float):
        if probe == "planted":
            # the training point each probe is planted on: uniform with replacement, drawn anew
            # at every time (official: mu = np.random.randint(P, size=ntry) per call)
            y = train[torch.as_tensor(pick.integers(0, n, size=int(n_probes)), device=device)]
        m, s2 = float(sch.mean_scale(t)), float(sch.noise_var(t))
        x = m * y + math.sqrt(s2) * torch.randn(y.shape, generator=gen, dtype=dtype, device=device)
        lp = empirical_score.log_density(x, float(t)).double().cpu().numpy() / d
        f.append(alpha + 0.5 * math.log(2 * math.pi * math.e * s2) + lp.mean())
        se.append(lp.std(ddof=1) / math.sqrt(lp.size))
    return np.asarray(f), np.asarray(se)


def nearest_label_fn(train):
    """label_fn for clone_agreement: index of the nearest training point."""
    def fn(x):
        return nearest_neighbors(x, train, k=1)[1][:, 0].cpu().numpy()
    return fn


def class_label_fn(direction):
    """label_fn for the two-class mixture: the sign of x . m (class 0 for +m)."""
    u = torch.as_tensor(np.asarray(direction, dtype=float))

    def fn(x):
        return (x @ u.to(x.dtype) < 0).long().cpu().numpy()
    return fn
