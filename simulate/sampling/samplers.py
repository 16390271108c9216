"""Reverse-time samplers: Euler-Maruyama for the reverse SDE, Heun and scipy RK45 for the
probability-flow ODE, on any schedule.

Forward SDE dx = f(t) x dt + g(t) dB (docs/theory.md, Conventions). Reverse SDE [Anderson 1982; Song et al. 2021]:
    dx = [f x - g^2 s(x, t)] dt + g dB_bar            (integrated from t_max down to t_min)
Probability-flow ODE:
    dx/dt = f x - (1/2) g^2 s(x, t)

Observers are callables receiving a dict (`state`) at recording steps: step, t, tau, m, sigma2, x
(the current batch), score (s at x, t), score_obj, stats (the empirical kernel's MixtureStats when
the score exposes them, reused by observers instead of a second pass) and final (True once, at the
end, where x0 also holds the Tweedie-denoised samples).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from ..base.device import generator, resolve_device, resolve_dtype

__all__ = ["sample", "time_grid", "default_time_range", "METHODS"]

METHODS = ("sde", "ode", "rk45")


def default_time_range(schedule, tau_max: float = 1e4, tau_min: float = 1e-6):
    """(t_max, t_min): the schedule's own end points, clipped to tau in [tau_min, tau_max]."""
    t_max = float(schedule.t_hi) if math.isfinite(schedule.t_hi) else float(
        schedule.time_of_tau(tau_max))
    tau_lo = float(schedule.tau(schedule.t_lo))
    t_min = float(schedule.t_lo) if tau_lo > 0 else float(schedule.time_of_tau(tau_min))
    return t_max, t_min


def time_grid(schedule, steps: int, t_max: float, t_min: float, grid: str = "log_tau") -> np.ndarray:
    """Decreasing times t_0 = t_max > ... > t_steps = t_min.

    grid="log_tau": uniform in log tau (dense near t_min, where memorization happens);
    grid="linear": uniform in t.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    schedule.check_time([t_min, t_max])
    if not t_max > t_min:
        raise ValueError(f"t_max must exceed t_min, got t_max={t_max}, t_min={t_min}")
    if grid == "linear":
        ts = np.linspace(t_max, t_min, steps + 1)
    elif grid == "log_tau":
        tau_hi, tau_lo = float(schedule.tau(t_max)), float(schedule.tau(t_min))
        if tau_lo <= 0:
            raise ValueError(f"log_tau grid needs tau(t_min) > 0; t_min={t_min} gives tau = 0")
        ts = np.asarray(schedule.time_of_tau(np.geomspace(tau_hi, tau_lo, steps + 1)), float)
    else:
        raise ValueError(f"unknown grid {grid!r}; choose 'log_tau' or 'linear'")
    ts[0], ts[-1] = t_max, t_min
    return ts


def _recording_steps(steps: int, record) -> set[int]:
    if record is None or record == "all":
        return set(range(steps))
    if isinstance(record, (int, np.integer)):
        if record < 1:
            raise ValueError(f"record must be >= 1, got {record}")
        return set(np.unique(np.linspace(0, steps - 1, min(record, steps)).round().astype(int)))
    return {int(i) for i in record}


def _evaluate(score, x, t):
    if hasattr(score, "last_stats"):
        score.last_stats = None
    s = score(x, t)
    return s, getattr(score, "last_stats", None)


def _notify(observers, **state):
    for obs in observers:
        obs(state)


def sample(score, schedule, n: int, method: str = "sde", steps: int = 200,
           t_max: float | None = None, t_min: float | None = None, seed: int = 0, *,
           observers=(), record=50, grid: str = "log_tau", dtype="float64", device="cpu",
           x_init: torch.Tensor | None = None, denoise_final: bool = True, progress: bool = False,
           rtol: float = 1e-6, atol: float = 1e-8) -> torch.Tensor:
    """Draw n samples by integrating the reverse dynamics from t_max to t_min.

    score:   callable score(x, t) on (B, d) batches (any score of `memphase.simulate.scores`).
    method:  "sde" (Euler-Maruyama), "ode" (Heun, 2nd order), "rk45" (scipy adaptive, float64;
             for high-accuracy checks; observers see only the final state).
    x_init:  starting batch; by default `score.initial_sample` at t_max (exact forward marginal for
             the population score, N(0, (m^2 v0 + sigma^2) I) with v0 the data variance otherwise).
    denoise_final: return the Tweedie posterior mean (x + sigma^2 s) / m at t_min.
    record:  number of recording steps spread over the grid (or "all", or a list of step indices).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    d0, d1 = default_time_range(schedule)
    t_max = d0 if t_max is None else float(t_max)
    t_min = d1 if t_min is None else float(t_min)
    ts = time_grid(schedule, steps, t_max, t_min, grid)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    gen = generator(seed, dev)
    dim = score.dim
    if x_init is None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if hasattr(score, "initial_sample"):
            x = score.initial_sample(n, t_max, gen, dt, dev)
        else:
            m0, s20 = float(schedule.mean_scale(t_max)), float(schedule.noise_var(t_max))
            x = math.sqrt(m0 * m0 + s20) * torch.randn(n, dim, generator=gen, dtype=dt, device=dev)
    else:
        if x_init.ndim != 2 or x_init.shape[1] != dim:
            raise ValueError(f"x_init must have shape (n, {dim}), got {tuple(x_init.shape)}")
        x = x_init.to(dtype=dt, device=dev).clone()

    if method == "rk45":
        x = _rk45(score, schedule, x, t_max, t_min, rtol, atol)
    else:
        rec = _recording_steps(steps, record)
        f = schedule.drift_coef(ts)
        g2 = schedule.diffusion_sq(ts)
        iterator = tqdm(range(steps), desc=f"{method} sampling", leave=False, disable=not progress)
        s, stats = _evaluate(score, x, float(ts[0]))
        for k in iterator:
            t, t_next = float(ts[k]), float(ts[k + 1])
            if k in rec and observers:
                _notify(observers, step=k, t=t, tau=float(schedule.tau(t)),
                        m=float(schedule.mean_scale(t)), sigma2=float(schedule.noise_var(t)),
                        x=x, score=s, score_obj=score, stats=stats, final=False)
            h = t - t_next  # > 0: reverse time step
            if method == "sde":
                noise = torch.randn(x.shape, generator=gen, dtype=dt, device=dev)
                x = x + h * (g2[k] * s - f[k] * x) + math.sqrt(g2[k] * h) * noise
            else:  # Heun on the probability-flow ODE
                drift = f[k] * x - 0.5 * g2[k] * s
                x_pred = x - h * drift
                s_pred, _ = _evaluate(score, x_pred, t_next)
                drift_next = f[k + 1] * x_pred - 0.5 * g2[k + 1] * s_pred
                x = x - 0.5 * h * (drift + drift_next)
            s, stats = _evaluate(score, x, t_next)
        if not torch.isfinite(x).all():
            raise FloatingPointError(
                f"sampling produced NaN/inf (method={method}, dtype={dt}); use float64 or more "
                f"steps near t_min")
        m_end, s2_end = float(schedule.mean_scale(t_min)), float(schedule.noise_var(t_min))
        x0 = (x + s2_end * s) / m_end
        if observers:
            _notify(observers, step=steps, t=t_min, tau=float(schedule.tau(t_min)), m=m_end,
                    sigma2=s2_end, x=x, score=s, score_obj=score, stats=stats, final=True, x0=x0)
        return x0 if denoise_final else x

    if denoise_final:
        s, _ = _evaluate(score, x, t_min)
        m_end, s2_end = float(schedule.mean_scale(t_min)), float(schedule.noise_var(t_min))
        x = (x + s2_end * s) / m_end
    return x


def _rk45(score, schedule, x, t_max, t_min, rtol, atol):
    """Probability-flow ODE with scipy's adaptive RK45 in float64 on the flattened batch."""
    from scipy.integrate import solve_ivp

    shape, dev, dt = x.shape, x.device, x.dtype

    def rhs(t, y):
        xt = torch.from_numpy(y.reshape(shape)).to(device=dev, dtype=torch.float64)
        s = score(xt.to(dt), float(t)).to(torch.float64)
        v = float(schedule.drift_coef(t)) * xt - 0.5 * float(schedule.diffusion_sq(t)) * s
        return v.cpu().numpy().ravel()

    sol = solve_ivp(rhs, (t_max, t_min), x.double().cpu().numpy().ravel(), method="RK45",
                    rtol=rtol, atol=atol)
    if not sol.success:
        raise FloatingPointError(f"RK45 failed: {sol.message}")
    return torch.from_numpy(sol.y[:, -1].reshape(shape)).to(device=dev, dtype=dt)
