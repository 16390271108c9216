"""Finite-N excess entropy for spectra with many distinct eigenvalues: all u-nodes at once.

`memphase.physics.finite_n` inverts, for every node u of the average over u and every energy on its
grid, the characteristic function of the generalized chi-square Q = sum_b w_b chi'^2_{k_b}(lam_b)
along its own saddle-point contour. With B distinct eigenvalues that costs U x Q x T x B complex
logarithms (U u-nodes, Q energies, T contour points): minutes per f(t) for the 61 PCA levels of the
scikit-learn digits. Here the same inversion formula is evaluated on contours *shared* by all nodes
and energies (derivation and accuracy: docs/theory.md, "Many distinct eigenvalues"):

    K(s; u) = K_0(s) + sum_b lam_b g_b(s),   K_0(s) = -sum_b (k_b/2) log(1 - 2 s w_b),
                                              g_b(s) = s w_b / (1 - 2 s w_b),

so on a fixed set of contour points s_j the u-dependence is one real matrix product lam @ g(s_j)
(BLAS), and the B-fold complex logarithms are taken once per f(t), not once per node and energy.
The contours are vertical lines Re s = c_m on a grid fine enough that every (u, q) has one within
eta / sqrt(K''(c)) of its saddle point; each (u, q) takes the contour that minimizes the Chernoff
bound K(c_m; u) - c_m q of the integrand (the saddle point minimizes it), so the relative error of
the inversion grows by at most exp(eta^2 / 8) over the error at the saddle (eta = 1: 13 % of a
round-off of 1e-16). Tails whose Chernoff bound is below 1e-60 are 0. The P(Q < q) / P(Q > q)
formulas, the sinh-mapped trapezoid rule and its truncation are those of
`memphase.physics.finite_n._cdf_generalized`, whose results this reproduces to 1e-7 relative or
better (tests/physics/test_finite_n.py).

The u-average (scrambled Sobol points) adds regression control variates to the annealed one: the
fluctuations of L(beta; u) = sum_b lam_b w_b / (tau + beta w_b), of which log E[e^{beta E} | u] is
an affine function, at four tilts beta, and their products (`regression_mean`).

Sources: [BBDM24] Biroli, Bonnaire, de Bortoli, Mézard, arXiv 2402.18491 (excess entropy);
contour inversion through the saddle point: the Gil-Pelaez / Bromwich inversion formula;
regression control variates: the standard Monte-Carlo technique (e.g. Glasserman, Monte Carlo
Methods in Financial Engineering, Springer 2003, ch. 4.1).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import interpolate

from . import finite_n_energy as _fn

__all__ = ["survival_shared", "energy_grids", "regression_mean", "mean_over_u_many"]

_ETA = 1.0            # contour spacing in units of 1 / sqrt(K'') (tilted standard deviations)
_CHUNK = 4096         # (u, q) pairs per block of the contour sums
_XI, _WXI = _fn._XI, _fn._WXI   # sinh-mapped trapezoid nodes in xi, as finite_n (step 0.05)
_TINY = 1e-60         # tails with a Chernoff bound below this are 0 (S is resolved to 1e-17 / N)


def _k2_max(c, w, k, lam):
    """max over the rows of lam of K''(c) (c scalar)."""
    return float(np.max(_fn._cgf_d(np.full(lam.shape[0], c), w, k, lam)[1]))


def _contour_grid(q, w, k, lam, eta, log_tiny):
    """Real parts c_m < 0 (lower tail) and > 0 (upper) of the shared contours: from +-floor
    (floor = 1 / sqrt(min_u K''(0)), one standard deviation from the pole at s = 0 for every u)
    outwards in steps eta / sqrt(max_u K''(c)) until every saddle point is passed, or until the
    Chernoff bound exp(K(c; u) - c q) of every tail not yet passed is below exp(log_tiny)."""
    mean, _ = _fn._moments(w, k, lam)
    lower = q < mean[:, None]
    k2_0 = _fn._cgf_d(np.zeros(lam.shape[0]), w, k, lam)[1]
    floor = 1.0 / math.sqrt(float(np.min(k2_0)))
    s_max = 0.5 / float(np.max(w))
    out = {-1: [-floor], 1: [min(floor, 0.5 * s_max)]}
    for side, todo in ((-1, lower), (1, ~lower)):
        cs = out[side]
        while True:
            c = np.full(lam.shape[0], cs[-1])
            k1, k2 = _fn._cgf_d(c, w, k, lam)
            past = todo & ((q < k1[:, None]) if side < 0 else (q > k1[:, None]))
            if not past.any():
                break
            bound = _fn._cgf(c, w, k, lam)[:, None] - cs[-1] * q
            if np.max(bound[past]) < log_tiny:
                break
            step = eta / math.sqrt(float(np.max(k2)))
            cs.append(cs[-1] - step if side < 0 else cs[-1] + min(step, 0.5 * (s_max - cs[-1])))
    return np.array(out[-1][::-1] + out[1])


def _contour_points(c, w, k, lam):
    """Trapezoid nodes s_j = c_m + i a_m sinh(xi_j) of every contour (flattened), their weights
    a_m cosh(xi_j) dxi / pi, and the contour index of each: the rule of
    `finite_n._cdf_generalized` with a_m = min(max_u K''(c_m)^{-1/2}, |c_m|) / 2, truncated where
    |M(c + it) / M(c)| < e^-42 (a bound independent of lam)."""
    k2 = np.array([_k2_max(cm, w, k, lam) for cm in c])
    a = 0.5 * np.minimum(1.0 / np.sqrt(k2), np.abs(c))
    t = a[:, None] * np.sinh(_XI)
    r = 2.0 * w / (1.0 - 2.0 * c[:, None] * w)
    bound = np.sum(0.25 * k * np.log1p((t[..., None] * r[:, None, :]) ** 2), -1)
    last = np.argmax(bound > 42.0, axis=1) + (bound[:, -1] <= 42.0) * _XI.size + 1
    last = np.minimum(last, _XI.size)
    owner = np.repeat(np.arange(c.size), last)
    j = np.concatenate([np.arange(n) for n in last])
    s = c[owner] + 1j * t[owner, j]
    wt = _WXI[j] * a[owner] * np.cosh(_XI[j]) / math.pi
    return s, wt, owner, np.concatenate([[0], np.cumsum(last)])


def _cgf_split(s, w, k):
    """K_0(s) (shape of s) and g_b(s) (shape of s + (B,)) of K(s; u) = K_0(s) + lam . g(s)."""
    a = 1.0 - 2.0 * s[..., None] * w
    return np.sum(-0.5 * k * np.log(a), -1), s[..., None] * w / a


def survival_shared(q, w, k, lam, *, eta=_ETA, tiny=_TINY):
    """P(Q < q) for Q = sum_b w_b chi'^2_{k_b}(lam_b), every row u of lam (shape (U, B)) at the
    energies q[u] (shape (U, Q), q > 0): the saddle-point contour inversion of
    `finite_n._cdf_generalized` on contours shared by all rows (module docstring)."""
    q = np.asarray(q, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    c = _contour_grid(q, w, k, lam, eta, math.log(tiny))
    s, wt, owner, off = _contour_points(c, w, k, lam)
    k0_c, g_c = _cgf_split(c, w, k)
    kc = k0_c + lam @ g_c.T                                            # K(c_m; u), (U, M)
    k0_s, g_s = _cgf_split(s, w, k)
    mean, _ = _fn._moments(w, k, lam)
    lower = q < mean[:, None]
    expo = kc[:, None, :] - c * q[..., None]                           # (U, Q, M) bound exponent
    allowed = np.where(lower[..., None], c < 0, c > 0)
    best = np.argmin(np.where(allowed, expo, np.inf), -1)
    log_scale = np.take_along_axis(expo, best[..., None], -1)[..., 0]
    scale = np.exp(log_scale)
    best[log_scale < math.log(tiny)] = -1                              # negligible tails: 0
    vals = np.zeros(q.shape)
    for m in np.unique(best[best >= 0]):
        use = best == m
        rows = np.nonzero(use.any(1))[0]
        sl = slice(off[m], off[m + 1])
        # the integrand exp(K(s_j; u) - K(c_m; u)) wt_j / s_j (|.| <= wt_j / |s_j|) of the rows
        # using contour m; K(s; u) = K_0(s) + lam . g(s) is one matrix product
        ks = k0_s[sl] + lam[rows] @ g_s[sl].real.T + 1j * (lam[rows] @ g_s[sl].imag.T)
        phi = np.exp(ks - kc[rows, m][:, None]) * (wt[sl] / s[sl])
        iu, iq = np.nonzero(use[rows])
        tm = s[sl].imag
        for lo in range(0, iu.size, _CHUNK):
            bu, bq = iu[lo:lo + _CHUNK], iq[lo:lo + _CHUNK]
            theta = np.outer(q[rows[bu], bq], tm)
            re, im = phi[bu].real, phi[bu].imag                       # Re[phi e^{-i t q}]
            vals[rows[bu], bq] = np.sum(re * np.cos(theta) + im * np.sin(theta), 1)
    tail = scale * np.where(lower, -vals, vals)
    return np.where(lower, tail, 1.0 - tail)


def _survival_rows(e, tau, w, k, lam):
    """S(e) = P(E > e), E = -Q / (2 tau), for rows of energies e (U, Q) and lam (U, B)."""
    q = -2.0 * tau * e
    pos = q > 0
    qq = np.where(pos, q, np.max(q, 1, keepdims=True))   # placeholders, masked below
    out = np.where(pos, survival_shared(qq, w, k, lam), 0.0)
    return np.clip(out, 0.0, 1.0)


def _first_below(e, level, tau, w, k, lam):
    """Per row of e (U, P; increasing), the first index where S(e) <= level (P if none): bisection
    on the index, S decreasing in e (the pre-scan of `finite_n._energy_grid`, at 2 + log2 P
    inversions per row instead of P)."""
    rows = np.arange(e.shape[0])

    def below(idx):
        return _survival_rows(e[rows, idx][:, None], tau, w, k, lam)[:, 0] <= level

    lo, hi = np.zeros(rows.size, int), np.full(rows.size, e.shape[1] - 1)
    at_start, at_end = below(lo), below(hi)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        b = below(mid)
        lo, hi = np.where(b, lo, mid), np.where(b, mid, hi)
    return np.where(at_start, 0, np.where(at_end, hi, e.shape[1]))


def energy_grids(tau, n, w, k, lam, step):
    """`finite_n._energy_grid` for all rows of lam at once: per row the uniform e-grid, S on it
    and the step h (a list of (e, s, h)). The inversions of every row (the pre-scan for N > 100
    and the <= _COARSE points splined in log S) are done in one `survival_shared` call each."""
    mean, std = _fn._moments(w, k, lam)
    z_tail = math.sqrt(2.0 * (math.log(n) - math.log(_fn._TAIL))) + 3.0
    q_lo = np.maximum(mean - z_tail * std, 1e-9 * mean)
    q_hi = mean + 14.0 * std
    e_lo, e_hi = -q_hi / (2.0 * tau), -q_lo / (2.0 * tau)
    wide = (e_hi - e_lo) > 200.0
    if n > 100.0 and np.any(wide):
        rows = np.nonzero(wide)[0]
        ec = np.linspace(e_lo[rows], e_hi[rows], 400, axis=1)
        first = _first_below(ec, 60.0 / n, tau, w, k, lam[rows])
        for i, row in enumerate(rows):
            if first[i] < ec.shape[1]:
                e_lo[row] = max(e_lo[row], ec[i, max(first[i] - 1, 0)] - math.log(n) - 30.0)
    h = np.minimum(step, (e_hi - e_lo) / 400.0)
    grids = [np.arange(a, b + hh, hh) for a, b, hh in zip(e_lo, e_hi, h)]
    # one padded batch: rows with <= _COARSE points are inverted on their grid, others on _COARSE
    # points splined in log S (as finite_n._energy_grid)
    pts = [g if g.size <= _fn._COARSE else np.linspace(g[0], g[-1], _fn._COARSE) for g in grids]
    width = max(p.size for p in pts)
    pad = np.stack([np.pad(p, (0, width - p.size), mode="edge") for p in pts])
    sc = _survival_rows(pad, tau, w, k, lam)
    out = []
    for g, p, row, hh in zip(grids, pts, sc, h):
        row = row[:p.size]
        if g.size <= _fn._COARSE:
            s = row
        else:
            ok = row > 0
            with np.errstate(divide="ignore"):
                s = np.exp(interpolate.CubicSpline(p[ok], np.log(row[ok]))(g))
            s[g > p[ok][-1]] = 0.0
            s = np.clip(s, 0.0, 1.0)
        keep = np.nonzero(s * n > _fn._TAIL)[0]
        last = min(g.size, keep[-1] + 2) if keep.size else g.size
        out.append((g[:last], s[:last], float(hh)))
    return out


# -- the u-average: quasi-Monte Carlo with regression control variates ---------------------------
#: tilts beta of the features L(beta; u) = sum_b lam_b w_b / (tau + beta w_b) (log E[e^{beta E} | u]
#: is affine in L(beta; u), so E[log Z | u] is a functional of L(.; u))
CV_TILTS = (0.0, 0.5, 1.0, 2.0)


def _cv_features(tau, w, k, lam, tilts=CV_TILTS):
    """Control variates with exactly known mean 0: the whitened fluctuations x_i of L(beta_i; u)
    (lam_b = (2 + 2 tau / w_b) Gamma(k_b / 2) independent: mean and covariance in closed form)
    and their products x_i x_j - delta_ij (all pairs i <= j)."""
    scale = 2.0 * (1.0 + tau / w)
    mu, var = 0.5 * k * scale, 0.5 * k * scale**2
    g = np.stack([w / (tau + b * w) for b in tilts], 1)                 # (B, m)
    cov = (g * var[:, None]).T @ g
    ev, vec = np.linalg.eigh(cov)
    keep = ev > 1e-10 * ev.max()
    x = (lam - mu) @ g @ (vec[:, keep] / np.sqrt(ev[keep]))             # identity covariance
    i, j = np.triu_indices(x.shape[1])
    return np.concatenate([x, x[:, i] * x[:, j] - (i == j)], 1)


def regression_mean(values, tau, w, k, lam):
    """Mean of values (U, ...) over the u-nodes lam (U, B) with regression control variates:
    mean(values - X c), X the zero-mean features of `_cv_features`, c the least-squares fit
    of values on X over the same nodes (the in-sample fit adds a bias O(1 / U), far below the
    averaging error; measured error: docs/theory.md)."""
    x = _cv_features(tau, w, k, lam)
    vals = np.asarray(values, dtype=np.float64).reshape(lam.shape[0], -1)
    centred = vals - vals.mean(0)
    coef, *_ = np.linalg.lstsq(x, centred, rcond=None)
    return (vals - x @ coef).mean(0)


def mean_over_u_many(tau, n, w, k, fn, step, qmc, shared=True, regression=True):
    """`finite_n._mean_over_u` for more than 3 blocks: qmc = (points, seed) scrambled Sobol nodes,
    every node's energy grid at once (`energy_grids`; shared=False: one contour per node and
    energy, `finite_n._energy_grid`), fn(e, s, h, lam) per node, averaged with the annealed
    control variate on the first entry and, if regression, the control variates of
    `regression_mean`."""
    lam, pw = _fn._u_nodes(tau, w, k, 0, qmc)
    grids = (energy_grids(tau, n, w, k, lam, step) if shared
             else [_fn._energy_grid(tau, n, w, k, lam_i, step) for lam_i in lam])
    vals = np.asarray([np.atleast_1d(fn(e, s, h, lam_i)) for (e, s, h), lam_i in zip(grids, lam)])
    vals[:, 0] -= _fn._annealed(tau, n, w, k, lam)
    mean = regression_mean(vals, tau, w, k, lam) if regression else pw @ vals
    mean[0] += _fn._annealed(tau, n, w, k, k * (1.0 + tau / w))
    return mean
