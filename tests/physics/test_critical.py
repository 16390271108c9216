"""Tests of physics/critical.py: closed forms, independent solves, Monte Carlo, paper targets."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from memphase.physics.critical import (
    PHI_AT_SPECIATION,
    alpha_of_n,
    block_collapse_tau,
    block_stds,
    cloning_probability,
    collapse_tau,
    collapse_time,
    excess_entropy_gaussian,
    jacobian_singular_values,
    n_of_alpha,
    rem_subspace_collapse_tau,
    speciation_time,
    speciation_time_from_cloning,
    speciation_time_mixture,
    subspace_collapse_tau,
)
from memphase.physics.schedules import GeometricVE, LinearVP

PUBLISHED_TS = {256: 2.77, 1024: 3.47, 4096: 4.16, 16384: 4.85}  # docs/theory.md [BBDM24]
PUBLISHED_TC = {256: 1.299, 1024: 1.978, 4096: 2.667}  # docs/theory.md, N = 20000
ALD_BLOCKS = [(2, 1.0), (5, 0.3)]  # docs/theory.md [ALD24], rest 23 dirs at 0.01, d = 30


# -- speciation ---------------------------------------------------------------------------------
def test_speciation_time_uses_largest_covariance_eigenvalue():
    # covariance of the +-m mixture with spread s: m m^T + s^2 I, largest eigenvalue |m|^2 + s^2
    rng = np.random.default_rng(0)
    d, s = 12, 0.7
    m = rng.normal(size=d)
    m *= math.sqrt(d) / np.linalg.norm(m)
    eig = np.linalg.eigvalsh(np.outer(m, m) + s**2 * np.eye(d))
    rng.shuffle(eig)
    assert speciation_time(eig) == pytest.approx(0.5 * math.log(d + s**2), rel=1e-13)
    assert speciation_time(list(eig)) == speciation_time(eig[::-1])


@pytest.mark.parametrize("d", sorted(PUBLISHED_TS))
def test_speciation_time_mixture_published(d):
    assert round(speciation_time_mixture(d), 2) == PUBLISHED_TS[d]
    # the exact Lambda_max = d + 1 (unit spread) gives the same 2 decimals, within 1/(2d)
    exact = speciation_time([d + 1.0])
    assert 0 < exact - speciation_time_mixture(d) <= 0.5 / d
    assert round(exact, 2) == PUBLISHED_TS[d]


def _phi_literal(t, norm_m, spread):
    """docs/theory.md formula, integrated over x with scipy quad."""
    a = norm_m * math.exp(-t)
    gamma = 1 - math.exp(-2 * t) + spread**2 * math.exp(-2 * t)
    sd = math.sqrt(gamma)

    def integrand(x):
        gp, gm = stats.norm.pdf(x, a, sd), stats.norm.pdf(x, -a, sd)
        return 0.0 if gp + gm == 0 else 0.5 * (gp**2 + gm**2) / (gp + gm)

    lim = a + 40 * sd
    return integrate.quad(integrand, -lim, lim, points=[-a, 0.0, a], epsabs=1e-13, limit=200)[0]


@pytest.mark.parametrize("norm_m,spread", [(3.0, 1.0), (16.0, 0.5), (5.0, 2.0)])
def test_cloning_probability_matches_literal_quadrature(norm_m, spread):
    ts = np.array([0.0, 0.3, 1.0, 1.7, 3.0, 6.0])
    phi = cloning_probability(ts, norm_m, spread)
    assert phi.shape == ts.shape
    expected = [_phi_literal(t, norm_m, spread) for t in ts]
    np.testing.assert_allclose(phi, expected, atol=1e-9)


def test_cloning_probability_monte_carlo_1d():
    """Direct simulation: class c, x_t = c |m| e^{-t} + sqrt(Gamma_t) z, then two clones each pick
    a class from the exact posterior at x_t; phi = fraction of pairs agreeing."""
    rng = np.random.default_rng(1)
    norm_m, spread, n = 4.0, 0.8, 200_000
    for t in (0.8, 1.4, 2.5):
        a = norm_m * math.exp(-t)
        gamma = -math.expm1(-2 * t) + spread**2 * math.exp(-2 * t)
        c = rng.choice([-1.0, 1.0], size=n)
        x = c * a + math.sqrt(gamma) * rng.normal(size=n)
        p_plus = special.expit(2 * a * x / gamma)
        c1 = rng.random(n) < p_plus
        c2 = rng.random(n) < p_plus
        est = np.mean(c1 == c2)
        err = 4.5 * math.sqrt(est * (1 - est) / n)
        assert abs(float(cloning_probability(t, norm_m, spread)) - est) < err


def test_cloning_probability_limits_and_monotone():
    ts = np.linspace(0, 12, 200)
    phi = cloning_probability(ts, 30.0)
    assert phi[0] == pytest.approx(1.0, abs=1e-12)
    assert phi[-1] == pytest.approx(0.5, abs=1e-6)
    assert np.all(np.diff(phi) <= 0)
    assert np.all(np.diff(phi[phi < 1 - 1e-9]) < 0)  # strictly, once classes start to overlap


@pytest.mark.parametrize("d", sorted(PUBLISHED_TS))
def test_phi_at_speciation_published(d):
    # [BBDM24]: phi(t_S) at t_S = (1/2) ln d, |m|^2 = d; with unit spread the value is
    # d-independent, E_z[expit(2 + 2z)] = 0.77520 (the official plot's guide line is at 0.7753)
    phi = float(cloning_probability(0.5 * math.log(d), math.sqrt(d)))
    assert abs(phi - 0.7753) < 5e-4
    u1 = integrate.quad(lambda z: special.expit(2 + 2 * z) * stats.norm.pdf(z), -40, 40,
                        epsabs=1e-13)[0]
    assert phi == pytest.approx(u1, abs=1e-10)
    assert PHI_AT_SPECIATION == pytest.approx(u1, abs=5e-6)  # 0.77520, to its printed digits


@pytest.mark.parametrize("d", sorted(PUBLISHED_TS))
def test_speciation_time_from_cloning(d):
    t = speciation_time_from_cloning(math.sqrt(d))
    phi = float(cloning_probability(t, math.sqrt(d)))
    assert phi == pytest.approx(PHI_AT_SPECIATION, abs=1e-10)
    assert round(t, 2) == PUBLISHED_TS[d]


# -- collapse -----------------------------------------------------------------------------------
def test_alpha_n_roundtrip():
    n = np.array([2.0, 1000.0, 20000.0])
    alpha = alpha_of_n(n, 64)
    np.testing.assert_allclose(alpha, np.log(n) / 64)
    np.testing.assert_allclose(n_of_alpha(alpha, 64), n, rtol=1e-12)


def test_collapse_tau_isotropic_closed_form():
    n = np.array([10.0, 20000.0, 1e6])
    for d, s2 in [(8, 1.0), (256, 2.5)]:
        expected = s2 / (n ** (2.0 / d) - 1)  # docs/theory.md
        np.testing.assert_allclose(collapse_tau(n, np.full(d, s2)), expected, rtol=1e-12)
        # the brentq branch (variances not all equal) agrees with the closed form
        var = np.full(d, s2)
        var[0] *= 1 + 1e-13
        np.testing.assert_allclose(collapse_tau(n, var), expected, rtol=1e-9)


@pytest.mark.parametrize("d", sorted(PUBLISHED_TC))
def test_collapse_time_published(d):
    assert round(float(collapse_time(20000, np.ones(d))), 3) == PUBLISHED_TC[d]


def test_collapse_tau_anisotropic_independent_bisection():
    rng = np.random.default_rng(2)
    var = rng.uniform(0.05, 3.0, size=40)
    ns = np.array([[50.0, 3000.0], [1e5, 1e9]])
    tau = collapse_tau(ns, var)
    assert tau.shape == ns.shape
    for n, tc in zip(ns.ravel(), tau.ravel()):
        lo, hi = 1e-12, 1e12  # plain bisection on the condition, in log tau
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            if 0.5 * sum(math.log(1 + v / mid) for v in var) > math.log(n):
                lo = mid
            else:
                hi = mid
        assert tc == pytest.approx(math.sqrt(lo * hi), rel=1e-10)
        assert float(excess_entropy_gaussian(tc, n, var)) == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(tau.ravel()) < 0)  # more data, later (smaller tau) collapse


class _OUStandIn:
    """Minimal OU schedule (duck-typed): tau = e^{2t} - 1, t = (1/2) log(1 + tau)."""

    def tau(self, t):
        return np.expm1(2.0 * np.asarray(t, dtype=np.float64))

    def time_of_tau(self, tau):
        return 0.5 * np.log1p(np.asarray(tau, dtype=np.float64))


class _SquareRootStandIn:
    """A non-OU duck-typed schedule, tau = t^2, to check that collapse_time defers to it."""

    def tau(self, t):
        return np.asarray(t, dtype=np.float64) ** 2

    def time_of_tau(self, tau):
        return np.sqrt(np.asarray(tau, dtype=np.float64))


def test_collapse_time_default_is_ou_and_defers_to_schedule():
    var = np.linspace(0.5, 1.5, 16)
    ns = np.array([30.0, 500.0, 1e5])
    tau_c = collapse_tau(ns, var)
    default = collapse_time(ns, var)
    assert default.shape == ns.shape
    np.testing.assert_allclose(_OUStandIn().tau(default), tau_c, rtol=1e-12)
    np.testing.assert_allclose(collapse_time(ns, var, schedule=_OUStandIn()), default, rtol=1e-14)
    np.testing.assert_allclose(collapse_time(ns, var, _SquareRootStandIn()), np.sqrt(tau_c))
    # isotropic closed form of docs/theory.md, written with the naive power
    d = 16
    expected = 0.5 * np.log(1 + 1.0 / (ns ** (2.0 / d) - 1))
    np.testing.assert_allclose(collapse_time(ns, np.ones(d)), expected, rtol=1e-12)


def test_collapse_time_library_schedules():
    var = np.linspace(0.5, 1.5, 16)
    tau_c = float(collapse_tau(500, var))
    for sched in (GeometricVE(), LinearVP()):
        t_c = collapse_time(500, var, schedule=sched)
        assert float(sched.tau(t_c)) == pytest.approx(tau_c, rel=1e-10)


def test_excess_entropy_limits_and_sign():
    var = np.array([0.3, 1.0, 2.0, 4.0])
    n = 1e4
    alpha = math.log(n) / 4
    assert float(excess_entropy_gaussian(1e12, n, var)) == pytest.approx(alpha, abs=1e-10)
    tc = float(collapse_tau(n, var))
    f = excess_entropy_gaussian(np.array([0.5 * tc, 2 * tc]), n, var)
    assert f[0] < 0 < f[1]
    grid = excess_entropy_gaussian(np.array([1.0, 2.0])[:, None], np.array([10.0, 100.0]), var)
    assert grid.shape == (2, 2)


def test_excess_entropy_monte_carlo_above_collapse():
    """Definition f = alpha + 1/2 log(2 pi e tau) + (1/d) E log Q, Q = (1/N) sum N(y_n, tau I),
    estimated with sampled y_n and x ~ N(0, C + tau I); log p_pop(x) is a control variate (its
    mean is exact), so the check resolves the self-averaging approximation to ~1e-4."""
    rng = np.random.default_rng(3)
    var = np.array([0.5, 1.0, 1.5, 2.0])
    d, n, tau = 4, 20000, 3.0
    assert tau > 10 * float(collapse_tau(n, var))
    y = rng.normal(size=(n, d)) * np.sqrt(var)
    x = rng.normal(size=(1500, d)) * np.sqrt(var + tau)
    sq = (x**2).sum(1)[:, None] - 2 * x @ y.T + (y**2).sum(1)[None, :]
    logq = special.logsumexp(-sq / (2 * tau), axis=1) - math.log(n)
    logq -= 0.5 * d * math.log(2 * math.pi * tau)
    logp = stats.multivariate_normal(np.zeros(d), np.diag(var + tau)).logpdf(x)
    mean_logp = -0.5 * np.sum(np.log(2 * math.pi * math.e * (var + tau)))  # exact E log p_pop
    assert logp.mean() == pytest.approx(mean_logp, abs=5 * logp.std() / math.sqrt(x.shape[0]))
    diff = (logq - logp) / d
    f_mc = math.log(n) / d + 0.5 * math.log(2 * math.pi * math.e * tau) + mean_logp / d
    f_mc += diff.mean()
    tol = 5 * diff.std() / math.sqrt(x.shape[0]) + 1e-4
    assert f_mc == pytest.approx(float(excess_entropy_gaussian(tau, n, var)), abs=tol)


# -- [ALD24] per-subspace collapse ---------------------------------------------------------------
def test_block_collapse_tau_published():
    tau = block_collapse_tau(1000, ALD_BLOCKS, normalized=True, rest_std=0.01, d=30)
    assert tau.shape == (2,)
    assert round(float(tau[0]), 3) == 0.072
    assert round(float(tau[1]), 4) == 0.0065
    assert tau[0] > tau[1]  # higher-variance subspace lost first


def test_block_stds_expansion():
    s = block_stds(ALD_BLOCKS, d=30, rest_std=0.01)
    np.testing.assert_array_equal(s, [1.0] * 2 + [0.3] * 5 + [0.01] * 23)
    np.testing.assert_array_equal(block_stds([(1, 2.0), (2, 0.5)]), [2.0, 0.5, 0.5])


@pytest.mark.parametrize("normalized", [True, False])
def test_subspace_collapse_tau_solves_quadratic(normalized):
    rng = np.random.default_rng(4)
    s = rng.uniform(0.01, 1.5, size=25)
    n = 777
    tau = subspace_collapse_tau(n, s, normalized=normalized)
    g = 0.0 if normalized else 1.0
    rhs = (g * np.sum(s**4) / 2 + tau * s**2) / (2 * math.log(n))
    np.testing.assert_allclose(tau**2, rhs, rtol=1e-12)
    assert np.all(tau > 0)
    if normalized:
        np.testing.assert_allclose(tau, s**2 / (2 * math.log(n)), rtol=1e-14)
    # independent: positive root from numpy's polynomial solver
    for i in (0, 7):
        c = g * np.sum(s**4) / 2 / (2 * math.log(n))
        roots = np.roots([1.0, -s[i] ** 2 / (2 * math.log(n)), -c])
        assert tau[i] == pytest.approx(max(roots.real), rel=1e-10)


def _jsv_literal(tau, n, s, g):
    """The official [ALD24] theory cell, re-derived: for g = 1 a second term with
    t_c0 = sqrt(g sum s^4 / 2 / (2 ln N)) (the collapse of the norm fluctuations)."""
    l2n = 2 * math.log(n)
    big_f = sum(sj**2 / (tau**2 * (tau + sj**2)) for sj in s)
    c = g * sum(sj**4 for sj in s) / 2
    tc0 = math.sqrt(c / l2n)
    out = []
    for si in s:
        lam = 1 / (tau + si**2)
        ti = math.sqrt((c + tau * si**2) / l2n)
        v = big_f * max(0.0, 1 / tau - 1 / ti)
        if g == 1.0:
            v += big_f * max(0.0, 1 / tau - 1 / tc0)
        out.append(math.hypot(lam, v))
    return out


def test_jacobian_singular_values_g1_term_lifts_every_direction_below_tc0():
    """g = 1: below t_c0 every direction, even the 0.01 normal ones above their own t_i, carries
    the common F(tau) (1/tau - 1/t_c0) term; above t_c0 it is absent."""
    s = block_stds(ALD_BLOCKS, d=30, rest_std=0.01)
    tc0 = math.sqrt(np.sum(s**4) / 2 / (2 * math.log(1000)))
    lam = lambda t: 1 / (t + s**2)  # noqa: E731
    below = 0.5 * tc0
    sv = jacobian_singular_values(below, 1000, s, normalized=False)
    big_f = np.sum(s**2 / (below**2 * (below + s**2)))
    ti = np.sqrt((np.sum(s**4) / 2 + below * s**2) / (2 * math.log(1000)))
    v = big_f * ((1 / below - 1 / tc0) + np.maximum(0, 1 / below - 1 / ti))
    np.testing.assert_allclose(sv, np.hypot(lam(below), v), rtol=1e-12)
    assert np.all(sv[7:] > 10 * lam(below)[7:])


@pytest.mark.parametrize("normalized", [True, False])
def test_jacobian_singular_values_literal(normalized):
    s = block_stds(ALD_BLOCKS, d=30, rest_std=0.01)
    taus = np.geomspace(1e-5, 10, 13)
    sv = jacobian_singular_values(taus, 1000, s, normalized=normalized)
    assert sv.shape == (13, 30)
    g = 0.0 if normalized else 1.0
    expected = [_jsv_literal(t, 1000, s, g) for t in taus]
    np.testing.assert_allclose(sv, expected, rtol=1e-12)
    assert jacobian_singular_values(0.1, 1000, s).shape == (30,)


def test_jacobian_singular_values_switch_at_subspace_collapse():
    s = block_stds(ALD_BLOCKS, d=30, rest_std=0.01)
    tc = subspace_collapse_tau(1000, s)
    lam_only = lambda t: 1 / (t + s**2)  # noqa: E731
    above = 1.01 * tc.max()
    sv = jacobian_singular_values(above, 1000, s)
    np.testing.assert_allclose(sv, lam_only(above), rtol=1e-14)
    mid = math.sqrt(tc[0] * tc[2])  # std-1 block lost, 0.3 block not yet
    sv = jacobian_singular_values(mid, 1000, s)
    assert np.all(sv[:2] > lam_only(mid)[:2] * 1.5)
    np.testing.assert_allclose(sv[2:], lam_only(mid)[2:], rtol=1e-14)


def test_rem_subspace_collapse_tau():
    s = block_stds(ALD_BLOCKS, d=30, rest_std=0.01)
    tau = float(rem_subspace_collapse_tau(1000, s))
    assert tau == pytest.approx(float(collapse_tau(1000, s**2)), rel=1e-14)
    assert 0.5 * np.sum(np.log1p(s**2 / tau)) == pytest.approx(math.log(1000), rel=1e-12)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: collapse_tau(1, np.ones(4)), r"n must be >= 2"),
        (lambda: collapse_tau(100, np.array([1.0, 0.0])), r"variances must be > 0"),
        (lambda: collapse_tau(100, np.array([])), r"variances is empty"),
        (lambda: collapse_tau(100, np.array([1.0, np.nan])), r"variances contains NaN"),
        (lambda: collapse_tau(np.nan, np.ones(3)), r"n contains NaN"),
        (lambda: collapse_tau(100, np.ones((2, 2))), r"1-D"),
        (lambda: speciation_time([]), r"eigenvalues is empty"),
        (lambda: speciation_time([-1.0, 2.0]), r"eigenvalues must be > 0"),
        (lambda: speciation_time_mixture(0), r"positive integer"),
        (lambda: speciation_time_mixture(2.5), r"positive integer"),
        (lambda: excess_entropy_gaussian(0.0, 100, np.ones(3)), r"tau must be > 0"),
        (lambda: excess_entropy_gaussian(-1.0, 100, np.ones(3)), r"tau must be > 0"),
        (lambda: jacobian_singular_values(0.0, 100, np.ones(3)), r"tau must be > 0"),
        (lambda: jacobian_singular_values(0.1, 1.5, np.ones(3)), r"n must be >= 2"),
        (lambda: subspace_collapse_tau([10, 20], np.ones(3)), r"n must be a scalar"),
        (lambda: subspace_collapse_tau(100, np.array([1.0, -0.1])), r"stds must be > 0"),
        (lambda: cloning_probability(-0.1, 4.0), r"t must be >= 0"),
        (lambda: cloning_probability(1.0, 0.0), r"norm_m must be > 0"),
        (lambda: speciation_time_from_cloning(4.0, level=0.4), r"level must lie in"),
        (lambda: speciation_time_from_cloning(0.1), r"too small"),
        (lambda: alpha_of_n(0.5, 10), r"n must be >= 1"),
        (lambda: n_of_alpha(-0.1, 10), r"alpha must be >= 0"),
        (lambda: block_stds([]), r"blocks is empty"),
        (lambda: block_stds([(0, 1.0)]), r"block dimension"),
        (lambda: block_stds([(2, -1.0)]), r"block std must be > 0"),
        (lambda: block_stds([(40, 1.0)], d=30), r"more than d"),
        (lambda: block_stds([(2, 1.0)], d=30), r"no rest_std"),
        (lambda: block_stds([(2, 1.0)], rest_std=0.1), r"rest_std given without d"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_collapse_time_rejects_non_schedule():
    with pytest.raises(TypeError, match=r"time_of_tau"):
        collapse_time(100, np.ones(3), schedule=object())
