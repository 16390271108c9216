"""Pieces every sampling experiment shares: the [sampler] config section, the sampler's time range
(from noise variances tau in data units to the schedule's own time), the recording steps, and a
reverse run observed by the nearest training point."""

from __future__ import annotations

import numpy as np

from memphase.physics.schedules import make_schedule

from ..run.config import ConfigError, Field
from ..data.real import SCALES
from ..sampling import METHODS, sample

#: the [data] keys of the digits, shared by the jobs that take data.model = "digits"
DIGITS_SCALE = Field("str", "unit", choices=SCALES, help="digits: pixels in [0, 1] or 0..16")
DIGITS_WHITEN = Field("bool", False, help="digits: PCA whitening (unit variance per direction)")

__all__ = ["sampler_schema", "sampler_time_range", "recording_steps", "reverse_run",
           "end_summaries", "observed_reverse_run", "fill_grid"]


def sampler_schema(*, steps: int = 200, n_samples: int = 256, t_min_tau: float = 1e-4,
                   t_max_tau: float = 1e3, record: int = 60, dtype: str = "float64",
                   min_samples: int = 1) -> dict:
    """The [sampler] section with an experiment's own defaults."""
    pos = dict(check=lambda v: v > 0, rule="must be > 0")
    return {
        "method": Field("str", "sde", choices=METHODS[:2], help="sde (Euler-Maruyama) or ode (Heun)"),
        "steps": Field("int", steps, check=lambda v: 1 <= v <= 100000, rule="1..100000"),
        "n_samples": Field("int", n_samples, check=lambda v: min_samples <= v <= 10**6,
                           rule=f"{min_samples}..1e6"),
        "schedule": Field("str", "ou", choices=("ou", "linear_vp", "ve")),
        "t_min_tau": Field("float", t_min_tau, **pos,
                           help="noise variance tau (data units) at the end of the reverse run"),
        "t_max_tau": Field("float", t_max_tau, **pos, help="noise variance tau at the start"),
        "record": Field("int", record, check=lambda v: v >= 2, rule="must be >= 2",
                        help="recordings along each trajectory"),
        "dtype": Field("str", dtype, choices=("float32", "float64")),
        "device": Field("str", "cpu", help="cpu, cuda, cuda:N or auto"),
    }


def sampler_time_range(cfg) -> tuple[float, float]:
    """(t_max, t_min) in the schedule's time: tau in [t_min_tau, t_max_tau] clipped to the
    schedule's range. ConfigError unless t_max_tau > t_min_tau."""
    sch = make_schedule(cfg["sampler"]["schedule"])
    sp = cfg["sampler"]
    if not sp["t_max_tau"] > sp["t_min_tau"]:
        raise ConfigError(f"sampler.t_max_tau ({sp['t_max_tau']:g}) must exceed t_min_tau "
                          f"({sp['t_min_tau']:g})")
    lo, hi = sch.tau_range() if np.isfinite(sch.t_hi) else (0.0, np.inf)
    tau_max = min(sp["t_max_tau"], hi)
    tau_min = max(sp["t_min_tau"], lo)
    return float(sch.time_of_tau(tau_max)), float(sch.time_of_tau(tau_min))


def recording_steps(cfg) -> list[int]:
    """`record` step indices spread evenly over the `steps` of the reverse run."""
    steps, rec = cfg["sampler"]["steps"], cfg["sampler"]["record"]
    return np.unique(np.linspace(0, steps - 1, min(rec, steps)).round().astype(int)).tolist()


def reverse_run(cfg, score, schedule, seed: int, observers=()):
    """Samples of `score` from the [sampler] section: its method, steps, batch, tau range
    (`sampler_time_range`), recording steps, dtype and device; sampling seed `seed`."""
    sp = cfg["sampler"]
    t_max, t_min = sampler_time_range(cfg)
    return sample(score, schedule, sp["n_samples"], method=sp["method"], steps=sp["steps"],
                  t_max=t_max, t_min=t_min, seed=seed, observers=list(observers),
                  record=recording_steps(cfg), dtype=sp["dtype"], device=sp["device"])


def end_summaries(x, train, measure: dict, collapse_times) -> dict:
    """Memorization summaries of final samples x against the training set: the memorization
    ratio [GDPLLW23] at measure["ratio_threshold"], the collapse fraction [BDKOS25] at
    measure["collapse_tol"], and the mean and spread of the per-trajectory collapse times."""
    from memphase.analysis.memorization import collapse_fraction, memorization_ratio

    return {
        "memorization_ratio": memorization_ratio(x, train, measure["ratio_threshold"]),
        "collapse_fraction": collapse_fraction(x, train, measure["collapse_tol"]),
        "collapse_time_measured": float(np.mean(collapse_times)),
        "collapse_time_spread": float(np.std(collapse_times)),
    }


def observed_reverse_run(cfg, score, schedule, data, seed: int) -> dict:
    """`reverse_run` with a nearest-training-point observer: the `end_summaries` of the final
    samples and the recorded curves (nearest distance, same-as-final fraction) on the recording
    times."""
    from memphase.analysis.observers import NearestTrainingPoint

    obs = NearestTrainingPoint(data)
    x = reverse_run(cfg, score, schedule, seed, [obs])
    r = obs.result()
    return {
        **end_summaries(x, data, cfg["measure"], r["collapse_time"]),
        "nearest_distance": r["distance"].mean(axis=1),
        "same_as_final": r["same_as_final"],
        "time": r["t"],
        "tau": r["tau"],
    }


def fill_grid(pairs, axes, values: dict, keys, trailing=()) -> dict:
    """{key: array} with each result's entry `key` at its cell's grid index: arrays of shape
    (len(values[a]) for a in axes) + trailing, NaN where no cell. pairs: (cell, result)."""
    shape = tuple(len(values[a]) for a in axes) + tuple(trailing)
    out = {k: np.full(shape, np.nan) for k in keys}
    where = [_position_of(values[a]) for a in axes]  # a dict per axis: linear in the cells
    for cell, res in pairs:
        i = tuple(w(cell[a]) for w, a in zip(where, axes))
        for k in keys:
            out[k][i] = res[k]
    return out


def _position_of(vals):
    """value -> its first index in `vals` (list.index) through a dict: the grid lookup of 10^5
    cells over 10^4 seeds was quadratic (list.index per cell and axis: 20 s of a 10^5-cell
    assembly, issue 23)."""
    vals = list(vals)
    try:
        pos = {}
        for i, v in enumerate(vals):
            pos.setdefault(v, i)
    except TypeError:  # an unhashable axis value
        return vals.index
    return lambda v: pos[v] if v in pos else vals.index(v)
