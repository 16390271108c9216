"""Critical times of diffusion models: speciation, collapse, per-subspace collapse (theory).

Everything is written in the data-scale noise variance tau = sigma(t)^2 / m(t)^2 (docs/theory.md
section 1) and, where a time is asked for, mapped to a schedule's own time (Ornstein-Uhlenbeck by
default, tau = e^{2t} - 1). N = e^{alpha d} training points in dimension d.

Sources: [BBDM24] speciation and collapse, [BM23] the excess entropy, [ALD24] per-subspace
("geometric") memorization on linear manifolds. Pure float64 numpy/scipy, no sampling.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

# the REM condition and the input checks live one module down (finite_n uses them too)
from .rem import _counts, _finite, _positive, _spectrum, collapse_tau  # noqa: F401

__all__ = [
    "speciation_time",
    "speciation_time_mixture",
    "cloning_probability",
    "speciation_time_from_cloning",
    "PHI_AT_SPECIATION",
    "alpha_of_n",
    "n_of_alpha",
    "collapse_tau",
    "collapse_time",
    "excess_entropy_gaussian",
    "subspace_collapse_tau",
    "block_stds",
    "block_collapse_tau",
    "jacobian_singular_values",
    "rem_subspace_collapse_tau",
]

#: phi at the speciation time of the +-m mixture with unit spread [BBDM24]: exactly
#: E_z[expit(2 + 2 z)] = 0.775200 (the official plot draws a guide line at 0.7753); the level at
#: which t_S is read off a measured cloning curve.
PHI_AT_SPECIATION = 0.77520

# Quadrature grid for E_z[g(z)], z ~ N(0, 1): trapezoid on [-12, 12] converges exponentially for
# smooth integrands with Gaussian decay (truncation error ~ e^{-72}).
_Z = np.linspace(-12.0, 12.0, 4801)
_WZ = np.exp(-0.5 * _Z**2) / math.sqrt(2.0 * math.pi) * (_Z[1] - _Z[0])
_WZ[[0, -1]] *= 0.5


# -- validation (_finite, _positive, _counts, _spectrum: physics/rem.py) -------------------------
def _dimension(d) -> int:
    if isinstance(d, bool) or not float(d).is_integer() or d < 1:
        raise ValueError(f"dimension d must be a positive integer, got {d!r}")
    return int(d)


# -- speciation ---------------------------------------------------------------------------------
def speciation_time(eigenvalues) -> float:
    """Speciation time in OU time, t_S = (1/2) log Lambda_max [BBDM24].

    Lambda_max is the largest eigenvalue of the data covariance (the spectrum passed in);
    in tau units, speciation happens at tau_S = e^{2 t_S} - 1 = Lambda_max - 1.
    """
    lam = _spectrum(eigenvalues, "eigenvalues")
    return 0.5 * math.log(float(np.max(lam)))


def speciation_time_mixture(d) -> float:
    """t_S = (1/2) ln d for the mixture (1/2) N(+m, I) + (1/2) N(-m, I), |m|^2 = d [BBDM24].

    The convenience form [BBDM24] quote (2.77, 3.47, 4.16, 4.85 at d = 256, 1024, 4096, 16384).
    The covariance m m^T + s^2 I has Lambda_max = d + s^2 exactly; for that value use
    `speciation_time([d + s**2])` (it differs from (1/2) ln d by <= s^2 / (2 d)).
    """
    d = _dimension(d)
    return 0.5 * math.log(d)


def cloning_probability(t, norm_m, spread: float = 1.0):
    """Probability phi(t) that two clones split at OU time t end in the same class [BBDM24].

    phi(t) = (1/2) ∫ dx (G+^2 + G-^2) / (G+ + G-), G± = N(±|m| e^{-t}, Gamma_t),
    Gamma_t = Delta_t + s^2 e^{-2t}, along the m direction of the ±m mixture. By symmetry this is
    E_{z~N(0,1)}[expit(2 u^2 + 2 u z)] with u = |m| e^{-t} / sqrt(Gamma_t) (posterior P(+|x) =
    expit(2 |m| e^{-t} x / Gamma_t) averaged over x ~ G+), computed by trapezoid quadrature in z.
    Vectorized over t; decreases from ~1 (t = 0, well separated) to 1/2 (t -> inf).
    """
    t = _finite(t, "t")
    if np.any(t < 0):
        raise ValueError(f"OU time t must be >= 0, got min {float(np.min(t)):g}")
    norm_m = float(_positive(norm_m, "norm_m"))
    spread = float(_positive(spread, "spread"))
    e2t = np.exp(-2.0 * t)
    gamma = -np.expm1(-2.0 * t) + spread**2 * e2t
    u = norm_m * np.exp(-t) / np.sqrt(gamma)
    arg = 2.0 * u[..., None] * (u[..., None] + _Z)
    return special.expit(arg) @ _WZ


def speciation_time_from_cloning(norm_m, level: float = PHI_AT_SPECIATION, spread: float = 1.0):
    """OU time where the theory phi(t) of `cloning_probability` crosses `level` (brentq) [BBDM24].

    Measured clone curves are read the same way: t_S is where phi crosses PHI_AT_SPECIATION = 0.77520,
    the exact phi(t_S) = E[expit(2 + 2 z)] of the unit-spread mixture.
    """
    level = float(_finite(level, "level"))
    if not 0.5 < level < 1.0:
        raise ValueError(f"level must lie in (0.5, 1), got {level:g}")
    norm_m = float(_positive(norm_m, "norm_m"))

    def gap(t):
        return float(cloning_probability(t, norm_m, spread)) - level

    if gap(0.0) <= 0:
        raise ValueError(
            f"phi(0) = {gap(0.0) + level:.4g} is already below level {level:g}: "
            f"|m| = {norm_m:g} is too small for the classes to separate"
        )
    t_hi = max(1.0, math.log(norm_m) + 1.0)
    while gap(t_hi) > 0:
        t_hi *= 2.0
    return optimize.brentq(gap, 0.0, t_hi, xtol=1e-13, rtol=1e-13)


# -- collapse (REM) -----------------------------------------------------------------------------
def alpha_of_n(n, d):
    """alpha = log(N) / d, the rate of N = e^{alpha d} training points [BBDM24]."""
    return np.log(_counts(n, minimum=1.0)) / _dimension(d)


def n_of_alpha(alpha, d):
    """N = e^{alpha d} training points at rate alpha [BBDM24]."""
    alpha = _finite(alpha, "alpha")
    if np.any(alpha < 0):
        raise ValueError(f"alpha must be >= 0, got min {float(np.min(alpha)):g}")
    return np.exp(alpha * _dimension(d))


def collapse_time(n, variances, schedule=None):
    """Collapse time t_C = schedule.time_of_tau(tau_C) [BBDM24], tau_C from `collapse_tau`.

    Default (schedule None) is OU time t = (1/2) log(1 + tau), where isotropic variance s^2
    gives t_C = (1/2) log(1 + s^2 / (N^{2/d} - 1)). Any object with a vectorized
    `time_of_tau(tau)` method serves as schedule. Vectorized over n.
    """
    tau_c = collapse_tau(n, variances)
    if schedule is None:
        return 0.5 * np.log1p(tau_c)
    if not callable(getattr(schedule, "time_of_tau", None)):
        raise TypeError(f"schedule must have a time_of_tau(tau) method, got {type(schedule).__name__}")
    return np.asarray(schedule.time_of_tau(tau_c), dtype=np.float64)


def excess_entropy_gaussian(tau, n, variances):
    """Large-d excess entropy of Gaussian data: f = alpha - (1/(2d)) sum_j log(1 + s_j^2 / tau)
    [BBDM24, BM23], *derived*.

    Derivation, in data units tau = sigma^2 / m^2 (OU: sigma^2 = Delta_t). Start from
    f(t) = alpha + (1/2) log(2 pi e Delta_t) + (1/d) E_{x~P_t} log P^e_t(x). With x = m u,
    P^e_t(x) = m^{-d} Q(u), Q = (1/N) sum_n N(u; y_n, tau I), and
    (1/2) log(2 pi e sigma^2) = (1/2) log(2 pi e tau) + log m, so the log m terms cancel:
    f = alpha + (1/2) log(2 pi e tau) + (1/d) E_u log Q(u), u ~ N(0, C + tau I).
    Above collapse (uncondensed REM phase) the sum over N = e^{alpha d} points self-averages,
    Q ≈ N(0, C + tau I), so (1/d) E log Q ≈ -(1/(2d)) sum_j log(2 pi e (s_j^2 + tau)), giving
    f = alpha - (1/(2d)) sum_j log((s_j^2 + tau) / tau). Checks: f -> alpha as tau -> inf, and
    f = 0 exactly at `collapse_tau`; below it this branch is negative (the condensed phase has
    f = 0 and is not returned). Broadcasts tau against n.
    """
    tau = _positive(tau, "tau")
    n = _counts(n)
    var = _spectrum(variances, "variances")
    d = var.size
    tau_b, n_b = np.broadcast_arrays(tau, n)
    pen = 0.5 * np.log1p(var / tau_b[..., None]).mean(axis=-1)
    return np.log(n_b) / d - pen


# -- per-subspace collapse [ALD24] ---------------------------------------------------------------
def _ald_terms(n, stds, normalized: bool):
    n = _counts(n)
    if n.ndim != 0:
        raise ValueError(f"n must be a scalar here, got shape {n.shape}")
    s = _spectrum(stds, "stds")
    g = 0.0 if normalized else 1.0
    two_log_n = 2.0 * math.log(float(n))
    return s, g * np.sum(s**4) / 2.0, two_log_n


def subspace_collapse_tau(n, stds, normalized: bool = True):
    """Per-direction collapse noise variance tau_c,i on a linear manifold [ALD24, official code].

    tau_c,i is the positive root of tau^2 = (g sum_j s_j^4 / 2 + tau s_i^2) / (2 ln N),
    g = 0 if normalized else 1: tau_c,i = (b_i + sqrt(b_i^2 + 4 c)) / 2, b_i = s_i^2/(2 ln N),
    c = g sum_j s_j^4 / (4 ln N); for g = 0, tau_c,i = s_i^2 / (2 ln N). Direction i is lost
    below tau_c,i, so higher-variance directions are lost first.
    """
    s, c_num, two_log_n = _ald_terms(n, stds, normalized)
    b = s**2 / two_log_n
    c = c_num / two_log_n
    return 0.5 * (b + np.sqrt(b**2 + 4.0 * c))


def block_stds(blocks, d=None, rest_std=None) -> np.ndarray:
    """Per-direction stds of an [ALD24] linear manifold: blocks [(dim, std), ...] expanded to
    (std,) * dim each, then padded with rest_std up to dimension d (when d is given)."""
    try:
        pairs = [(dim, std) for dim, std in blocks]
    except (TypeError, ValueError):
        raise ValueError(f"blocks must be a sequence of (dim, std) pairs, got {blocks!r}") from None
    if not pairs:
        raise ValueError("blocks is empty")
    parts = []
    for dim, std in pairs:
        if isinstance(dim, bool) or not float(dim).is_integer() or dim < 1:
            raise ValueError(f"block dimension must be a positive integer, got {dim!r}")
        std = float(_positive(std, "block std"))
        parts.append(np.full(int(dim), std))
    out = np.concatenate(parts)
    if d is None:
        if rest_std is not None:
            raise ValueError("rest_std given without d: cannot tell how many directions to fill")
        return out
    d = _dimension(d)
    if d < out.size:
        raise ValueError(f"blocks span {out.size} directions, more than d = {d}")
    if d > out.size:
        if rest_std is None:
            raise ValueError(f"blocks span {out.size} < d = {d} directions and no rest_std given")
        out = np.concatenate([out, np.full(d - out.size, float(_positive(rest_std, "rest_std")))])
    return out


def block_collapse_tau(n, blocks, normalized: bool = True, rest_std=None, d=None) -> np.ndarray:
    """One [ALD24] collapse tau per block of `blocks` (see `subspace_collapse_tau`); the rest
    directions (rest_std up to d) enter the g-term sum but get no entry of their own."""
    stds = block_stds(blocks, d=d, rest_std=rest_std)
    tau = subspace_collapse_tau(n, stds, normalized=normalized)
    starts = np.cumsum([0] + [int(dim) for dim, _ in blocks])[:-1]
    return tau[starts]


def jacobian_singular_values(tau, n, stds, normalized: bool = True) -> np.ndarray:
    """Predicted singular values of the score Jacobian (data units) [ALD24, official code].

    sqrt(lambda_i^2 + v_i^2), lambda_i = 1/(tau + s_i^2),
    g = 0 (normalized):  v_i = F(tau) max(0, 1/tau - 1/t_i(tau)),
    g = 1 (not):         v_i = F(tau) [max(0, 1/tau - 1/t_c0) + max(0, 1/tau - 1/t_i(tau))],
    t_i(tau) = sqrt((g sum_j s_j^4/2 + tau s_i^2)/(2 ln N)), t_c0 = sqrt(g sum_j s_j^4/2 / (2 ln N)),
    F(tau) = sum_j s_j^2/(tau^2 (tau + s_j^2)). The g = 1 term (the collapse of the norm
    fluctuations below t_c0, common to every direction) is the official code's. The s_i^2 must be
    the actual per-direction variances of the data (`memphase.simulate.data.DataSample.variances`).
    v_i > 0 below tau_c,i. tau of shape (T,) gives (T, d).
    """
    tau = _positive(tau, "tau")
    s, c_num, two_log_n = _ald_terms(n, stds, normalized)
    tt = tau.reshape(-1, 1)
    s2 = s**2
    lam = 1.0 / (tt + s2)
    t_i = np.sqrt((c_num + tt * s2) / two_log_n)
    big_f = np.sum(s2 / (tt**2 * (tt + s2)), axis=1, keepdims=True)
    v = np.maximum(0.0, 1.0 / tt - 1.0 / t_i)
    if c_num > 0:  # g = 1: t_c0 > 0
        v = v + np.maximum(0.0, 1.0 / tt - 1.0 / math.sqrt(c_num / two_log_n))
    out = np.sqrt(lam**2 + (big_f * v) ** 2)
    return out.reshape(tau.shape + (s.size,))


def rem_subspace_collapse_tau(n, stds):
    """REM collapse tau on the [ALD24] spectrum: `collapse_tau(n, stds**2)` [BBDM24], *derived*;
    compare with `subspace_collapse_tau` (the two differ at finite d)."""
    return collapse_tau(n, _spectrum(stds, "stds") ** 2)
from .finite_n import collapse_tau_finite_n, collapse_time_finite_n, excess_entropy_finite_n, participation_finite_n, top_weight_finite_n  # noqa: E402,F401,E501  finite-N theory (docs/theory.md)
