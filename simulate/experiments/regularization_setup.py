"""Schedules, end times, noise floors and calibration seeds of the [BDKOS25] regularization
experiment (`memphase.simulate.experiments.regularization`, whose module docstring describes the
protocol; Baptista et al., arXiv 2501.15785)."""

from __future__ import annotations

import math

from memphase.physics.schedules import ExponentialVE, GeometricVE, LinearVP

__all__ = ["schedule", "network_schedule", "closed_form_end_time", "network_tau_end",
           "calibration_seeds"]


def schedule(cfg):
    """The closed-form runs' schedule: "ve_bdkos25" = `ExponentialVE` (g = 10^t, t in [0, 1],
    official [BDKOS25] code); "ve_10t" = VE with sigma(t) = 10^t exactly (sigma_min = 1 at t = 0,
    sigma_max = 10 at t = 1), extended down to t = log10(sigma_end)."""
    if cfg["sampler"]["schedule"] == "ve_bdkos25":
        return ExponentialVE()
    return GeometricVE(sigma_min=1.0, sigma_max=10.0, t_min=math.log10(cfg["sampler"]["sigma_end"]))


def network_schedule(cfg):
    """The networks' schedule: the [BDKOS25] VP (`LinearVP`, beta 0.001..3) or the sampler's."""
    return LinearVP() if cfg["network"]["schedule"] == "linear_vp" else schedule(cfg)


def _official(cfg) -> bool:
    return cfg["sampler"]["schedule"] == "ve_bdkos25"


def closed_form_end_time(cfg, regularizer: str, c: float = 0.0) -> float:
    """End time of a closed-form run: ve_bdkos25 integrates to t = 0 when the score is regular
    there (Tikhonov c > 0, RK45) and to t_end otherwise; ve_10t ends at sigma_end."""
    sch = schedule(cfg)
    if not _official(cfg):
        return float(sch.t_lo)
    regular = regularizer == "tikhonov" and c > 0 and cfg["sampler"]["method"] == "rk45"
    return 0.0 if regular else float(cfg["sampler"]["t_end"])


def _time_range(cfg, tau_end=None) -> tuple[float, float]:
    sch = schedule(cfg)
    t_end = sch.t_lo if tau_end is None else float(sch.time_of_tau(tau_end))
    return math.log10(cfg["sampler"]["sigma_start"]), t_end


def _reference_sigma_end(cfg) -> float:
    """sigma at the end of the c = 0 (reference) run."""
    t_end = closed_form_end_time(cfg, "reference")
    return math.sqrt(float(schedule(cfg).noise_var(t_end)))


def network_tau_end(cfg, lam: float) -> float:
    """Smallest noise variance a network with penalty lambda is trained and sampled at."""
    if cfg["network"]["schedule"] == "linear_vp":
        tau0 = float(LinearVP().tau(cfg["network"]["t_end"]))
    elif _official(cfg):
        tau0 = float(schedule(cfg).tau(cfg["sampler"]["t_end"]))
    else:
        tau0 = cfg["sampler"]["sigma_end"] ** 2
    return max(tau0, cfg["network"]["penalty_tau_ratio"] * lam)


def calibration_seeds(cfg) -> list[int]:
    """Seeds of the c = 0 reference runs that calibrate the theory (`grid.calibration_seeds`):
    ValueError unless non-empty and disjoint from `grid.seeds`, so that no evaluated run (its
    training set, its sampling noise) enters the prediction it is compared with."""
    g = cfg["grid"]
    calib = list(dict.fromkeys(g["calibration_seeds"]))
    overlap = sorted(set(calib) & set(g["seeds"]))
    if not calib:
        raise ValueError("grid.calibration_seeds is empty: the theory needs c = 0 runs on seeds "
                         "other than grid.seeds")
    if overlap:
        raise ValueError(f"grid.calibration_seeds {overlap} also in grid.seeds: the theory must be "
                         f"calibrated on other seeds than the runs it predicts")
    return calib
