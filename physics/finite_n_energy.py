"""The law of one training point's energy given the probe's offset u, for the finite-N theory of
`memphase.physics.finite_n` (formulas and sources there and in docs/theory.md): Gauss rules for
Gamma variables, the cumulant generating function of E = -Q / (2 tau), its survival function S(e)
(noncentral chi-square for one block, saddle-point contour inversion for several), the uniform
energy grid, E[log Z | u] from S (`_partition_terms`), the u-nodes and the annealed control
variate. The bottom of the finite-N modules: `finite_n` and `finite_n_spectrum` both import it
(issue 24: no cycle between them)."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, signal, special, stats

from .finite_n_planted import _COARSE, survival_on_grid  # noqa: F401  (_COARSE: finite_n_spectrum)

_TAIL = 1e-17          # S is resolved down to _TAIL / N


# -- Gauss rule for a Gamma(shape, 1) variable ----------------------------------------------------
def _gamma_rule(n: int, shape: float):
    """Nodes and probability weights of the n-point Gauss rule for Gamma(shape, 1) (Golub-Welsch on
    the generalized Laguerre recurrence, alpha = shape - 1); exact for polynomials of degree 2n-1."""
    i = np.arange(n, dtype=np.float64)
    diag = 2.0 * i + shape
    off = np.sqrt((i[1:]) * (i[1:] + shape - 1.0))
    x, vec = linalg.eigh_tridiagonal(diag, off)
    return x, vec[0] ** 2


# -- survival function of E = -Q / (2 tau) -------------------------------------------------------
def _moments(w, k, lam):
    """Mean and std of Q = sum_b w_b chi'^2_{k_b}(lam_b)."""
    return np.sum(w * (k + lam), -1), np.sqrt(np.sum(2.0 * w**2 * (k + 2.0 * lam), -1))


def _cdf_isotropic(q, w, k, lam):
    """P(Q < q), Q = w chi'^2_k(lam): the noncentral chi-square cdf (Boost), relative accuracy
    ~1e-14 in the lower tail."""
    return stats.ncx2.cdf(q / w, k, lam)


def _cgf(s, w, k, lam):
    """Cumulant generating function log E e^{sQ} of the generalized chi-square, complex s."""
    a = 1.0 - 2.0 * s[..., None] * w
    return np.sum(-0.5 * k * np.log(a) + lam * s[..., None] * w / a, -1)


def _cgf_d(s, w, k, lam):
    a = 1.0 - 2.0 * s[..., None] * w
    return (np.sum(k * w / a + lam * w / a**2, -1),
            np.sum(2.0 * k * w**2 / a**2 + 4.0 * lam * w**2 / a**3, -1))


# sinh-mapped trapezoid nodes for the inversion integral over t in [0, inf)
_XI = np.arange(0.0, 22.0, 0.05)
_WXI = np.full(_XI.size, 0.05)
_WXI[0] = 0.025


def _cdf_generalized(q, w, k, lam):
    """P(Q < q) for Q = sum_b w_b chi'^2_{k_b}(lam_b) by numerical inversion of the characteristic
    function along the vertical line Re s = c through the saddle point K'(c) = q:

        P(Q < q) = (1/pi) ∫_0^inf Re[exp(K(c + it) - (c + it) q) / (-(c + it))] dt,   c < 0,
        P(Q > q) = (1/pi) ∫_0^inf Re[exp(K(c + it) - (c + it) q) / (c + it)] dt,      c > 0,

    (Gil-Pelaez / Bromwich with the contour shifted to the saddle point: the integrand is then
    non-oscillating where it matters and the error is relative, uniform in the tail). The t-integral
    is a trapezoid sum in xi, t = a sinh(xi), a = min(K''(c)^{-1/2}, |c|) / 2. Near the mean
    (|c| < 1 / sqrt(K'')) the contour is kept one standard deviation away from the pole at s = 0."""
    q = np.asarray(q, dtype=np.float64)
    mean, _ = _moments(w, k, lam)
    lower = q < mean
    k0 = _cgf_d(np.zeros(1), w, k, lam)[1][0]
    s_max = 0.5 / np.max(w)
    # saddle point by bisection (K' increasing): lower tail in (s_lo, 0), upper in (0, s_max)
    lo = np.where(lower, -np.sum(w * (k + lam)) / (2.0 * np.maximum(q, 1e-300) * np.min(w)) - 1.0, 0.0)
    hi = np.where(lower, 0.0, s_max * (1.0 - 1e-12))
    for _ in range(64):                        # the contour needs c near, not at, the saddle
        mid = 0.5 * (lo + hi)
        big = _cgf_d(mid, w, k, lam)[0] > q
        lo, hi = np.where(big, lo, mid), np.where(big, mid, hi)
    c = 0.5 * (lo + hi)
    floor = 1.0 / math.sqrt(k0)
    c = np.where(lower, np.minimum(c, -floor), np.minimum(np.maximum(c, floor), 0.5 * (c + s_max)))
    k2 = _cgf_d(c, w, k, lam)[1]
    a = 0.5 * np.minimum(1.0 / np.sqrt(k2), np.abs(c))
    # truncate where |M(c + it) / M(c)| <= prod_b (1 + (2 t w_b / (1 - 2 c w_b))^2)^{-k_b/4} < e^-42
    t = a[:, None] * np.sinh(_XI)
    r = 2.0 * w / (1.0 - 2.0 * c[:, None] * w)
    bound = np.sum(0.25 * k * np.log1p((t[..., None] * r[:, None, :]) ** 2), -1)
    last = int(np.max(np.argmax(bound > 42.0, axis=1) + (bound[:, -1] <= 42.0) * _XI.size)) + 1
    xi, wxi, t = _XI[:last], _WXI[:last], t[:, :last]
    s = c[:, None] + 1j * t
    base = _cgf(c, w, k, lam) - c * q
    integrand = np.exp(_cgf(s, w, k, lam) - s * q[:, None] - base[:, None]) / s
    val = (integrand.real * (a[:, None] * np.cosh(xi))) @ wxi / math.pi
    tail = np.exp(base) * np.where(lower, -val, val)
    return np.where(lower, tail, 1.0 - tail)


def survival_energy(e, tau, w, k, lam):
    """S(e) = P(E > e) for E = -Q / (2 tau), Q = sum_b w_b chi'^2_{k_b}(lam_b) (the distance of
    one training point to u, per block b of k_b directions of variance w_b, noncentrality lam_b =
    |u_b|^2 / w_b). One block: noncentral chi-square cdf; several: saddle-point contour inversion."""
    w, k, lam = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (w, k, lam))
    q = -2.0 * tau * np.asarray(e, dtype=np.float64)
    out = np.zeros(q.shape)
    pos = q > 0
    if w.size == 1:
        out[pos] = _cdf_isotropic(q[pos], w[0], k[0], lam[0])
    else:
        out[pos] = _cdf_generalized(q[pos], w, k, lam)
    return np.clip(out, 0.0, 1.0)


def _energy_grid(tau, n, w, k, lam, step):
    """Uniform e-grid from the bulk (S ~ 1 - 1e-6, or for wide laws and N > 100 from
    log N + 30 below the level S = 60 / N) to the upper tail (S ~ _TAIL / n), and S on it.
    For several blocks S is inverted on a coarser grid (<= _COARSE points) and log S is
    interpolated by a cubic spline (log S is smooth on the scale of the std of E)."""
    mean, std = _moments(w, k, lam)
    z_tail = math.sqrt(2.0 * (math.log(n) - math.log(_TAIL))) + 3.0
    q_lo = max(mean - z_tail * std, 1e-9 * mean)
    q_hi = mean + 14.0 * std
    e_lo, e_hi = -q_hi / (2.0 * tau), -q_lo / (2.0 * tau)
    if n > 100.0 and (e_hi - e_lo) > 200.0:
        # Only the top of the law matters: with e_60 the level where S = 60 / N, the maximum of the
        # N terms lies above e_60 up to probability e^-60, and terms below e_60 - log N - 30 change
        # log Z by < e^-30; below that level S is replaced by 1 (E by max(E, e_lo)).
        ec = np.linspace(e_lo, e_hi, 400)
        sc = survival_energy(ec, tau, w, k, lam)
        above = np.nonzero(sc <= 60.0 / n)[0]
        if above.size:
            e_lo = max(e_lo, ec[max(above[0] - 1, 0)] - math.log(n) - 30.0)
    h = min(step, (e_hi - e_lo) / 400.0)
    e = np.arange(e_lo, e_hi + h, h)
    s = survival_on_grid(lambda x: survival_energy(x, tau, w, k, lam), e, w.size == 1)
    keep = np.nonzero(s * n > _TAIL)[0]
    last = min(e.size, keep[-1] + 2) if keep.size else e.size
    return e[:last], s[:last], h


# -- E log Z given u ----------------------------------------------------------------------------
def _gumbel(w):
    with np.errstate(over="ignore"):
        return np.exp(w - np.exp(w))


def _partition_terms(e, s, h, n, want_y2=False):
    """E[log Z | u] (and E[sum_n w_n^2 | u] if want_y2) from S on the uniform grid e (step h).

    Every integral is a Riemann sum on the infinite lattice e_i = e[0] + i h with S = 1 for i < 0
    (S(e[0]) = 1 - O(1e-6)), so no end corrections arise: the sums of these smooth, decaying
    integrands converge exponentially in h. c = log(N E e^E) (annealed value of the lattice law)
    makes N (1 - phi(s)) = s + O(s^2) at small s, so the v-integrand vanishes on the left; on the
    right 1 - phi -> 1 and both terms vanish double-exponentially."""
    a = h * s
    with np.errstate(divide="ignore"):
        log_s = np.log(s)
    below = e[0] - h - math.log(-math.expm1(-h)) + math.log(h)     # log sum_{i<0} h e^{e_i}
    log_i = np.logaddexp(special.logsumexp(log_s + e, b=h), below)
    c = math.log(n) + log_i
    pad_l, pad_r = 46.0, 6.0
    v0 = c - e[-1] - pad_l
    nv = e.size - 1 + int(math.ceil((pad_l + pad_r) / h)) + 1
    v = v0 + h * np.arange(nv)
    kern = (e[0] + v0 - c) + h * np.arange(e.size + nv - 1)    # w_ij = e_i + v_j - c on the lattice
    g = _gumbel(kern)
    below_g = h * np.concatenate([[0.0], np.cumsum(g[: nv - 1])])  # sum over i < 0 (S = 1)
    # correlations by FFT when long (tiny tau stretches the grid to 1e5+ points): O(M log M)
    # instead of O(M^2), absolute error ~1e-16 on terms bounded by 1
    one_minus_phi = np.clip(signal.correlate(g, a, "valid") + below_g, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        log_phi = np.log1p(-one_minus_phi)
    with np.errstate(over="ignore"):
        integrand = np.exp(-np.exp(v)) - np.exp(n * log_phi)
    elogz = c + h * integrand.sum()
    if not want_y2:
        return elogz
    with np.errstate(over="ignore"):
        k2 = np.exp(2.0 * kern - np.exp(kern)) * (2.0 - np.exp(kern))   # d/dw of e^{2w - e^w}
    k2 = np.nan_to_num(k2)
    u2psi = signal.correlate(k2, a, "valid") + h * np.concatenate([[0.0], np.cumsum(k2[: nv - 1])])
    y2 = n * h * np.sum(u2psi * np.exp((n - 1.0) * log_phi))
    return elogz, y2


# -- average over u -----------------------------------------------------------------------------
_QMC_POINTS = 256       # scrambled Sobol points over the block noncentralities when > 3 blocks


def _u_nodes(tau, w, k, nodes, qmc=(_QMC_POINTS, 0)):
    """Nodes and weights for the block noncentralities lam_b = (1 + tau / w_b) chi^2_{k_b}
    (independent; lam_b = |u_b|^2 / w_b). Up to 3 blocks: tensor Gauss rule (`nodes` points for
    one block, nodes - 4 per block for two, nodes - 8 for three, at least 6); more blocks:
    randomized quasi-Monte Carlo (scrambled Sobol, qmc = (points, seed))."""
    scale = 2.0 * (1.0 + tau / w)
    if w.size <= 3:
        per = max(6, nodes - 4 * (w.size - 1))
        rules = [_gamma_rule(per, kb / 2.0) for kb in k]
        xs = np.meshgrid(*[r[0] for r in rules], indexing="ij")
        ws = np.meshgrid(*[r[1] for r in rules], indexing="ij")
        lam = np.stack([x.ravel() for x in xs], -1) * scale
        return lam, np.prod(np.stack([x.ravel() for x in ws], -1), -1)
    pts = stats.qmc.Sobol(w.size, scramble=True, seed=qmc[1]).random(qmc[0])
    lam = stats.gamma.ppf(pts, k / 2.0) * scale
    return lam, np.full(qmc[0], 1.0 / qmc[0])


def _annealed(tau, n, w, k, lam):
    """log(N E[e^E | u]) = log N - sum_b (k_b/2) log(1 + w_b/tau) - sum_b lam_b w_b / (2 (tau + w_b)),
    the control variate of the u-average (its mean over u has lam_b -> k_b (1 + tau/w_b))."""
    return (math.log(n) - np.sum(0.5 * k * np.log1p(w / tau))
            - np.sum(lam * w / (2.0 * (tau + w)), -1))
