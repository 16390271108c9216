"""Finite-N excess entropy with *planted* probes: x drawn from the noised training set.

The official [BBDM24] code (Biroli, Bonnaire, de Bortoli, Mézard, *Dynamical regimes of diffusion
models*, arXiv 2402.18491; `Gaussian_mixtures_entropy.py`, `Experiment_collapse.py`) draws the probe
x of the excess entropy from noised *training* points, u = x / m = y_0 + sqrt(tau) z with y_0 one
of the N training points. Then, in data units (docs/theory.md, "Planted probes"),

    f_planted(t) = 1/2 + E log Z / d,   Z = e^{E_0} + sum_{n=1}^{N-1} e^{E_n},
    E_0 = -|z|^2 / 2,   E_n = -|u - y_n|^2 / (2 tau)   (y_n independent of u).

Given u the N - 1 other energies are i.i.d. (survival S, as for fresh probes) and independent of
E_0, whose law given u is E_0 = -Q_0 / (2 tau), Q_0 = tau |z|^2 a generalized noncentral
chi-square with weights tau w_b / (w_b + tau) and noncentralities lam_b tau / (w_b + tau)
(z_b | u_b ~ N(sqrt(tau) u_b / (w_b + tau), w_b / (w_b + tau))). With log a = ∫ (e^{-s} - e^{-sa}) ds / s,

    E[log Z | u] = c + ∫ dv [exp(-e^v) - psi_0(e^v) phi(e^v)^{N-1}],
    1 - psi_0(e^v) = ∫ de S_0(e) g(e + v - c),   S_0(e) = P(E_0 > e | u),  g(w) = exp(w - e^w),

the fresh-probe formula (`memphase.physics.finite_n`) with one factor phi replaced by psi_0.
Bounds that follow (tested): log Z >= E_0 gives f_planted >= 0 (= 0 at N = 1), and
E_planted[log Z | u] = E[Z log Z | u] / E[Z | u] >= log E[Z | u] >= E_fresh[log Z | u] (convexity of
Z log Z, then Jensen) gives f_planted >= f_REM(unclipped) = alpha + (1/2d) sum_j log(tau / (tau + s_j^2))
>= f_fresh: the planted excess entropy has no zero at finite N.

This module is pure arithmetic on lattice arrays; `memphase.physics.finite_n` builds the grids.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import interpolate, signal, special

__all__ = ["planted_law", "planted_grid", "planted_log_partition"]

_COARSE = 240          # inversion points per grid for several blocks (spline in between)


def survival_on_grid(survival, e: np.ndarray, exact: bool) -> np.ndarray:
    """survival(e) on the energy grid e: evaluated at every point when `exact` (one block: a
    closed form) or the grid is small, else inverted on _COARSE points and splined in log S
    (S is smooth and log-concave-like there, so the spline error is far below the inversion's);
    0 beyond the last positive coarse value, clipped to [0, 1]. Shared by the fresh-probe
    (`finite_n`) and planted-probe grids."""
    if exact or e.size <= _COARSE:
        return survival(e)
    ec = np.linspace(e[0], e[-1], _COARSE)
    sc = survival(ec)
    ok = sc > 0
    with np.errstate(divide="ignore"):
        s = np.exp(interpolate.CubicSpline(ec[ok], np.log(sc[ok]))(e))
    s[e > ec[ok][-1]] = 0.0
    return np.clip(s, 0.0, 1.0)


def planted_law(tau, w, lam):
    """Weights and noncentralities of Q_0 = tau |z|^2 given the block noncentralities lam of u:
    (tau w / (w + tau), lam tau / (w + tau))."""
    w = np.asarray(w, dtype=np.float64)
    return tau * w / (w + tau), np.asarray(lam, dtype=np.float64) * tau / (w + tau)


def planted_grid(e, s, h, tau, w, k, lam, survival):
    """Extend the fresh-probe lattice e (step h, S on it, S = 1 below and 0 above) so that it also
    covers the law of E_0 given u, and evaluate S_0 = P(E_0 > e | u) on it. `survival(e, tau, w, k,
    lam)` is the survival function of E = -Q / (2 tau), Q = sum_b w_b chi'^2_{k_b}(lam_b)
    (`memphase.physics.finite_n.survival_energy`). Returns (e, S, S_0)."""
    w0, lam0 = planted_law(tau, w, lam)
    mean0 = float(np.sum(w0 * (k + lam0)))
    std0 = float(np.sqrt(np.sum(2.0 * w0**2 * (k + 2.0 * lam0))))
    e0_lo = -(mean0 + 16.0 * std0) / (2.0 * tau)
    e0_hi = -max(mean0 - 14.0 * std0, 1e-12 * mean0) / (2.0 * tau)
    below = max(0, int(math.ceil((e[0] - e0_lo) / h)))
    above = max(0, int(math.ceil((e0_hi - e[-1]) / h)))
    grid = e[0] + h * np.arange(-below, e.size + above)
    s_ext = np.concatenate([np.ones(below), s, np.zeros(above)])
    inside = (grid >= e0_lo) & (grid <= e0_hi)
    s0 = np.where(grid < e0_lo, 1.0, 0.0)
    ei = grid[inside]
    s0[inside] = survival_on_grid(lambda x: survival(x, tau, w0, k, lam0), ei, w0.size == 1)
    return grid, s_ext, s0


def planted_log_partition(e, s, s0, h, n):
    """E[log(e^{E_0} + sum_{n=1}^{N-1} e^{E_n}) | u] on the lattice e (step h): S and S_0 are the
    survival functions of E_n and E_0 (both 1 below e[0]). Same lattice sums as the fresh-probe
    `_partition_terms` of `memphase.physics.finite_n` (shift c = log(N E e^E), Gumbel kernel),
    with one factor phi replaced by psi_0."""
    a, a0 = h * s, h * s0
    with np.errstate(divide="ignore"):
        log_s = np.log(s)
    below = e[0] - h - math.log(-math.expm1(-h)) + math.log(h)
    c = math.log(n) + np.logaddexp(special.logsumexp(log_s + e, b=h), below)
    pad_l, pad_r = 46.0, 6.0
    v0 = c - e[-1] - pad_l
    nv = e.size - 1 + int(math.ceil((pad_l + pad_r) / h)) + 1
    v = v0 + h * np.arange(nv)
    kern = (e[0] + v0 - c) + h * np.arange(e.size + nv - 1)
    with np.errstate(over="ignore"):
        g = np.exp(kern - np.exp(kern))
    below_g = h * np.concatenate([[0.0], np.cumsum(g[: nv - 1])])
    one_minus_phi = np.clip(signal.correlate(g, a, "valid") + below_g, 0.0, 1.0)
    one_minus_psi0 = np.clip(signal.correlate(g, a0, "valid") + below_g, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        log_phi = np.log1p(-one_minus_phi)
    with np.errstate(over="ignore"):
        others = np.exp((n - 1.0) * log_phi) if n > 1 else 1.0      # phi^(N-1); N = 1: no others
        integrand = np.exp(-np.exp(v)) - (1.0 - one_minus_psi0) * others
    return c + h * integrand.sum()
