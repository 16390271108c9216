"""Finite-N theory of collapse: the exact excess entropy of Gaussian data at finite N and d.

The REM condition of [BBDM24, BM23] (`memphase.physics.critical.collapse_time`) is the N, d -> infinity limit
at fixed alpha = log(N)/d. Here the same excess entropy is computed at the actual N and d, with no
large-d approximation (derivation: docs/theory.md, "Finite-N collapse time").

In data units (u = x / m, tau = sigma^2 / m^2, training points y_n ~ N(0, C), u drawn from the noised
population N(0, C + tau I)):

    f(t) = 1/2 + E log Z / d,   Z = sum_n exp(E_n),   E_n = -|u - y_n|^2 / (2 tau).

Given u the E_n are i.i.d.; Q = |u - y_n|^2 is a (generalized) noncentral chi-square. With any shift c,

    E[log Z | u] = c + ∫ dv [exp(-e^v) - phi(e^v)^N],   phi(s) = E exp(-s e^{E - c}),

and 1 - phi(e^v) = ∫ de S(e) g(e + v - c), S(e) = P(E > e), g(w) = exp(w - e^w) (a Gumbel kernel).
The survival function S is computed with relative accuracy down to S = 1e-17 / N (the upper tail of
E, where the maximum of N terms lives): for isotropic data by the noncentral chi-square cdf (Boost,
through scipy), for a general spectrum by inverting the characteristic function along a contour
through the saddle point (exact up to quadrature error, uniform in the tail). Both integrals are
trapezoid sums on a uniform grid in e (and in v = log s, the same spacing): trapezoid sums of these
smooth, rapidly decaying integrands converge exponentially in the step.

Accuracy (tested in tests/physics/test_finite_n.py): E log Z within 1e-6 of the converged value
(step halved, more nodes), and within Monte-Carlo error of a brute-force E log Z (10^6 draws);
collapse times are solved to 1e-9 relative. More than 3 distinct eigenvalues (real-data spectra):
all u-nodes are inverted at once on shared contours (`memphase.physics.finite_n_spectrum`) and the
u-average is quasi-Monte Carlo with regression control variates; tau_C to 1e-4 - 3e-4 relative
(docs/theory.md, "Many distinct eigenvalues").

Probes: the above is for u drawn from the noised population ("fresh", memphase's protocol). The official
[BBDM24] code draws u from the noised training set ("planted"): `probe="planted"` in
`excess_entropy_finite_n` and `log_partition_mean` (lattice sums in `memphase.physics.finite_n_planted`);
the planted f is > 0 at every finite N and has no zero (docs/theory.md, "Planted probes").

Sources: [BBDM24] Biroli, Bonnaire, de Bortoli, Mézard, arXiv 2402.18491 (excess entropy, collapse);
[BM23] Biroli, Mézard, J. Stat. Mech. 2023 (REM analysis).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import interpolate, optimize, stats

from .finite_n_energy import (  # noqa: F401  (the law of one term's energy, given u; one module down)
    _QMC_POINTS, _TAIL, _WXI, _XI, _annealed, _cdf_generalized, _cdf_isotropic, _cgf, _cgf_d,
    _energy_grid, _gamma_rule, _gumbel, _moments, _partition_terms, _u_nodes, survival_energy)
from .finite_n_spectrum import mean_over_u_many
from .rem import collapse_tau
from .finite_n_planted import _COARSE, planted_grid, planted_log_partition, survival_on_grid

__all__ = [
    "PROBES",
    "excess_entropy_finite_n",
    "collapse_time_finite_n",
    "collapse_tau_finite_n",
    "log_partition_mean",
    "participation_finite_n",
    "top_weight_finite_n",
    "survival_energy",
]

_STEP = 0.1            # grid step in e and in v = log s (units of E)
_NODES = 12            # Gauss nodes for the average over u (per block: see _u_nodes)


# -- validation ---------------------------------------------------------------------------------
def _positive(x, name):
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {float(np.min(arr)):g}")
    return arr


def _counts(n):
    arr = np.asarray(n, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(f"n must be a finite number of training points >= 1, got {n!r}")
    return arr


def _dims(d):
    arr = np.asarray(d)
    if arr.dtype == bool or not np.all(np.isfinite(np.asarray(arr, dtype=float))) \
            or np.any(np.asarray(arr, dtype=float) % 1 != 0) or np.any(np.asarray(arr, dtype=float) < 1):
        raise ValueError(f"dimension d must be a positive integer, got {d!r}")
    return np.asarray(arr, dtype=np.int64)


def _blocks(spectrum, d):
    """Distinct eigenvalues and their multiplicities; checks len(spectrum) == d."""
    var = np.asarray(spectrum, dtype=np.float64)
    if var.ndim != 1 or var.size == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D array of eigenvalues, got shape {var.shape}")
    _positive(var, "spectrum")
    if d is not None and int(d) != var.size:
        raise ValueError(f"spectrum has {var.size} eigenvalues but d = {int(d)}")
    w, k = np.unique(var, return_counts=True)
    return w, k.astype(np.float64)


def _tau_of(t, schedule):
    t = np.asarray(t, dtype=np.float64)
    if schedule is None:
        if not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise ValueError("OU time t must be finite and > 0")
        return np.expm1(2.0 * t)
    return np.asarray(schedule.tau(schedule.check_time(t)), dtype=np.float64)


def _time_of(tau, schedule):
    if schedule is None:
        return 0.5 * np.log1p(tau)
    if not callable(getattr(schedule, "time_of_tau", None)):
        raise TypeError(f"schedule must have a time_of_tau(tau) method, got {type(schedule).__name__}")
    return np.asarray(schedule.time_of_tau(tau), dtype=np.float64)


def _mean_over_u(tau, n, w, k, fn, nodes, step, qmc=(_QMC_POINTS, 0), shared=True,
                 regression=True):
    """E_u[fn(...)] over the u-nodes; fn returns E[log Z | u] (first entry if a tuple), which is
    averaged with the annealed control variate (exact for the Gauss rules). More than 3 blocks:
    `memphase.physics.finite_n_spectrum.mean_over_u_many` (shared contours, regression control
    variates; shared / regression False: the per-node path / the annealed control variate only)."""
    if w.size > 3:
        return mean_over_u_many(tau, n, w, k, fn, step, qmc, shared, regression)
    lam, pw = _u_nodes(tau, w, k, nodes, qmc)
    vals = np.asarray([np.atleast_1d(fn(*_energy_grid(tau, n, w, k, lam_i, step), lam_i))
                       for lam_i in lam])
    mean = pw @ vals
    mean[0] += _annealed(tau, n, w, k, k * (1.0 + tau / w)) - pw @ _annealed(tau, n, w, k, lam)
    return mean


PROBES = ("fresh", "planted")


def _check_probe(probe, w):
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    if probe == "planted" and np.asarray(w).size > 3:
        raise ValueError("probe='planted' is implemented for at most 3 distinct eigenvalues, got "
                         f"{np.asarray(w).size}")


def log_partition_mean(tau, n, w, k, *, nodes=_NODES, step=_STEP, qmc_points=_QMC_POINTS,
                       qmc_seed=0, probe="fresh"):
    """E log Z, Z = sum_{n=1}^N exp(-|u - y_n|^2 / (2 tau)), y_n ~ N(0, C), u ~ N(0, C + tau I)
    (probe="fresh"), or u = y_1 + sqrt(tau) z planted on a training point (probe="planted",
    `memphase.physics.finite_n_planted`; at most 3 distinct w_b); C has eigenvalues w_b with
    multiplicities k_b. Exact at finite N and d up to quadrature error (see the module docstring);
    with > 3 distinct w_b the u-average is quasi-Monte Carlo (qmc_points scrambled Sobol points,
    scramble qmc_seed; error: docs/theory.md). Scalars."""
    w, k = np.atleast_1d(np.asarray(w, float)), np.atleast_1d(np.asarray(k, float))
    _check_probe(probe, w)
    if probe == "planted":
        def fn(e, s, h, lam):
            grid, s_ext, s0 = planted_grid(e, s, h, tau, w, k, lam, survival_energy)
            return planted_log_partition(grid, s_ext, s0, h, float(n))
    else:
        def fn(e, s, h, lam):
            return _partition_terms(e, s, h, float(n))
    return float(_mean_over_u(tau, float(n), w, k, fn, nodes, step, (int(qmc_points), qmc_seed))[0])


# -- public API ---------------------------------------------------------------------------------
def _settings(n, d, variance, spectrum):
    """Broadcast settings -> list of (n, w, k) and the output shape."""
    n = _counts(n)
    if spectrum is not None:
        if np.any(np.asarray(variance) != 1.0):
            raise ValueError("give either variance (isotropic) or spectrum, not both")
        w, k = _blocks(spectrum, d)
        return [(float(x), w, k) for x in n.ravel()], n.shape
    d = _dims(d)
    var = _positive(variance, "variance")
    nb, db, vb = np.broadcast_arrays(n, d, var)
    return [(float(a), np.array([float(c)]), np.array([float(b)]))
            for a, b, c in zip(nb.ravel(), db.ravel(), vb.ravel())], nb.shape


def excess_entropy_finite_n(t, n, d, variance=1.0, *, spectrum=None, schedule=None,
                            nodes=_NODES, step=_STEP, probe="fresh"):
    """Finite-N excess entropy f(t) = 1/2 + E log Z / d of Gaussian data [BBDM24, BM23], exact at
    finite N and d (derivation: docs/theory.md, "Finite-N collapse time").

    f(t) = alpha + (1/2) log(2 pi e Delta_t) + (1/d) E_x log P^e_t(x), averaged over probes x and
    over training sets: the expectation of what the Monte-Carlo estimator
    `memphase.analysis.critical_times.excess_entropy_mc` measures with the same `probe`:
    "fresh" (x from the noised population; memphase's protocol; its zero is t_C) or "planted"
    (x from the noised training set, the official [BBDM24] protocol; > 0 at every finite N, no
    zero; at most 3 distinct eigenvalues; `memphase.physics.finite_n_planted`). t in the
    schedule's time (OU by default, tau = e^{2t} - 1). Isotropic data N(0, variance I_d): t, n, d,
    variance broadcast; a covariance spectrum (`spectrum`, d eigenvalues): t and n broadcast.
    Accuracy: |error| < 1e-6 / d in f (quadrature; tests/physics/test_finite_n.py)."""
    tau = _positive(_tau_of(t, schedule), "tau")
    if spectrum is not None:
        w, k = _blocks(spectrum, d)
        _check_probe(probe, w)
        tb, nb = np.broadcast_arrays(tau, _counts(n))
        out = [0.5 + log_partition_mean(a, b, w, k, nodes=nodes, step=step, probe=probe) / k.sum()
               for a, b in zip(tb.ravel(), nb.ravel())]
        return np.asarray(out).reshape(tb.shape)
    _check_probe(probe, [1.0])
    tb, nb, db, vb = np.broadcast_arrays(tau, _counts(n), _dims(d), _positive(variance, "variance"))
    out = [0.5 + log_partition_mean(a, b, [c], [float(dd)], nodes=nodes, step=step, probe=probe) / dd
           for a, b, dd, c in zip(tb.ravel(), nb.ravel(), db.ravel(), vb.ravel())]
    return np.asarray(out).reshape(tb.shape)


def _solve_tau(fn, tau_rem, name="collapse", tol=1e-10):
    """Root of fn(log tau) = 0 (fn increasing in tau) to tol in log tau, bracketed from the REM
    value up (finite N collapses later than REM; the bracket widens either way when it does not).
    fn is evaluated once per point (brentq re-evaluates the bracket ends otherwise)."""
    memo = {}

    def f(x):
        if x not in memo:
            memo[x] = fn(x)
        return memo[x]

    lo, hi = math.log(tau_rem), math.log(tau_rem) + 0.5
    for _ in range(40):
        if f(lo) < 0:
            break
        lo -= 1.0
    else:
        raise ValueError(f"no {name} found below tau = {math.exp(lo):g}")
    for _ in range(40):
        if f(hi) > 0:
            break
        hi += 1.0
    else:
        raise ValueError(f"no {name} found above tau = {math.exp(hi):g}")
    return math.exp(optimize.brentq(f, lo, hi, xtol=tol, rtol=tol))


def _rem_tau(n, w, k):
    return float(collapse_tau(max(n, 2.0), np.repeat(w, k.astype(int))))


def collapse_tau_finite_n(n, d, variance=1.0, *, spectrum=None, nodes=_NODES, step=_STEP,
                          probe="fresh"):
    """Collapse noise variance tau_C(N, d): the zero of the finite-N excess entropy with fresh
    probes (`excess_entropy_finite_n`) [BBDM24], brentq in log tau from a bracket around the REM value
    (`memphase.physics.critical.collapse_tau`); relative tolerance 1e-10 on top of the quadrature
    error (1e-6 with > 3 distinct eigenvalues: their quasi-Monte-Carlo error is ~1e-4 and f jitters
    by ~3e-7 between nearby tau as grids shift: docs/theory.md).
    Vectorized over settings (isotropic: n, d, variance broadcast; spectrum: n).
    probe="planted" is refused: the planted excess entropy is > 0 at every finite N and has no zero."""
    if probe == "planted":
        raise ValueError("probe='planted': the planted excess entropy is > 0 at every finite N (log Z >= "
                         "-|z|^2/2) and has no zero; t_C is the zero of the fresh-probe f (probe='fresh')")
    if probe != "fresh":
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    items, shape = _settings(n, d, variance, spectrum)
    out = []
    for nn, w, k in items:
        if nn < 2:
            raise ValueError("n must be >= 2 for a collapse (one point never collapses)")
        dd = k.sum()
        out.append(_solve_tau(lambda lt: 0.5 + log_partition_mean(math.exp(lt), nn, w, k,
                                                                  nodes=nodes, step=step) / dd,
                              _rem_tau(nn, w, k), tol=1e-6 if w.size > 3 else 1e-10))
    return np.asarray(out).reshape(shape)


def collapse_time_finite_n(n, d, variance=1.0, schedule=None, *, spectrum=None, nodes=_NODES,
                           step=_STEP, probe="fresh"):
    """Finite-N collapse time t_C(N, d) [BBDM24]: zero of the exact finite-N excess entropy, in the
    schedule's time (OU by default, t = (1/2) log(1 + tau_C)). Reduces to the REM value
    `memphase.physics.critical.collapse_time` as N, d -> infinity at fixed alpha (docs/theory.md)."""
    tau = collapse_tau_finite_n(n, d, variance, spectrum=spectrum, nodes=nodes, step=step, probe=probe)
    return _time_of(tau, schedule)


# -- posterior-weight observables (candidates for the last-change estimator) ---------------------
def participation_finite_n(t, n, d, variance=1.0, *, spectrum=None, schedule=None, nodes=_NODES,
                           step=_STEP):
    """E sum_n w_n^2, the participation (inverse participation ratio) of the posterior weights
    w_n = e^{E_n} / Z at x drawn from the noised population [BM23] (REM condensation order parameter:
    ~ 1/N above collapse, -> 1 when one point carries the weight). Exact at finite N and d with
    1/Z^2 = ∫_0^inf s e^{-sZ} ds: E[sum w^2 | u] = N ∫ s E[e^{2E} e^{-s e^E}] phi(s)^{N-1} ds.
    Same broadcasting and accuracy as `excess_entropy_finite_n`."""
    tau = _positive(_tau_of(t, schedule), "tau")
    if spectrum is not None:
        w, k = _blocks(spectrum, d)
        tb, nb = np.broadcast_arrays(tau, _counts(n))
        items = [(a, b, w, k) for a, b in zip(tb.ravel(), nb.ravel())]
    else:
        tb, nb, db, vb = np.broadcast_arrays(tau, _counts(n), _dims(d), _positive(variance, "variance"))
        items = [(a, b, np.array([c]), np.array([float(dd)]))
                 for a, b, dd, c in zip(tb.ravel(), nb.ravel(), db.ravel(), vb.ravel())]
    out = [_mean_over_u(a, b, w, k, lambda e, s, h, lam, b=b: _partition_terms(e, s, h, b, True),
                        nodes, step)[1] for a, b, w, k in items]
    return np.asarray(out).reshape(tb.shape)


def _top_planted(e, s, h, lam, tau, n, var, d):
    """P(the planted point has the largest weight | lam = |u|^2 / var) for u = y_0 + sqrt(tau) z:
    E_0 = -|z|^2 / 2 with |z|^2 | lam ~ (var / (var + tau)) chi'^2_d(lam tau / (var + tau)); the
    N - 1 others are i.i.d. with survival S given u: the probability is E[(1 - S(E_0))^{N-1}]."""
    scale = var / (var + tau)
    nc = lam * tau / (var + tau)
    mu, sd = scale * (d + nc), scale * math.sqrt(2.0 * (d + 2.0 * nc))
    zeta = np.linspace(max(mu - 14.0 * sd, 0.0), mu + 16.0 * sd, 4001)
    dens = stats.ncx2.pdf(zeta / scale, d, nc) / scale
    ok = s > 0
    spline = interpolate.CubicSpline(e[ok], np.log(s[ok]))
    e0 = -0.5 * zeta
    s0 = np.where(e0 > e[ok][-1], 0.0, np.where(e0 < e[0], 1.0, np.exp(spline(np.clip(e0, e[0], e[ok][-1])))))
    with np.errstate(divide="ignore"):
        vals = dens * np.exp((n - 1.0) * np.log1p(-np.clip(s0, 0.0, 1.0)))
    return _trapezoid(vals, zeta)


def _trapezoid(y, x):
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))


def top_weight_finite_n(t, n, d, variance=1.0, *, schedule=None, nodes=_NODES, step=_STEP):
    """E_{x ~ P^e_t} max_n w_n(x): the mean largest posterior weight at x drawn from the noised
    *training* set, which is the law of x_t along reverse trajectories of the empirical score
    [BBDM24]. It equals the probability that the nearest training point of x_t / m is the one the
    trajectory ends on (posterior weights are the end-point probabilities), i.e. the expected
    `same_as_final` fraction of `memphase.analysis.observers.NearestTrainingPoint`. Isotropic data only;
    t, n, d, variance broadcast. Exact at finite N and d (planted-point calculation, see
    `_top_planted`); accuracy ~1e-6."""
    tau = _positive(_tau_of(t, schedule), "tau")
    tb, nb, db, vb = np.broadcast_arrays(tau, _counts(n), _dims(d), _positive(variance, "variance"))
    out = []
    for a, b, dd, c in zip(tb.ravel(), nb.ravel(), db.ravel(), vb.ravel()):
        w, k = np.array([c]), np.array([float(dd)])
        lam, pw = _u_nodes(a, w, k, nodes)
        vals = [_top_planted(*_energy_grid(a, b, w, k, li, step), li[0], a, b, c, float(dd))
                for li in lam]
        out.append(float(pw @ np.asarray(vals)))
    return np.asarray(out).reshape(tb.shape)
