"""Finite-N theory of collapse (memphase.physics.finite_n): quadrature against closed forms, brute-force
Monte Carlo of E log Z, the noncentral chi-square cdf, and the REM limit; many-level spectra
(memphase.physics.finite_n_spectrum): shared-contour inversion against the per-point inversion,
the regression control variates against their closed-form law, E log Z against Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import stats

from memphase.physics import critical, finite_n, finite_n_spectrum
from memphase.physics.schedules import GeometricVE


def _mc_log_z(tau, n, var, draws, seed, batch=50_000):
    """Brute-force E log Z (fresh training set per draw) with the annealed control variate
    A(u) = log N - sum_j log(1 + s_j^2/tau)/2 - sum_j u_j^2 / (2 (tau + s_j^2)), E A exact."""
    var = np.asarray(var, float)
    d = var.size
    rng = np.random.default_rng(seed)
    r = []
    for _ in range(draws // batch):
        u = rng.standard_normal((batch, d)) * np.sqrt(var + tau)
        y = rng.standard_normal((batch, n, d)) * np.sqrt(var)
        e = -((u[:, None, :] - y) ** 2).sum(-1) / (2 * tau)
        mx = e.max(1)
        log_z = mx + np.log(np.exp(e - mx[:, None]).sum(1))
        ann = math.log(n) - 0.5 * np.log1p(var / tau).sum() - (u**2 / (2 * (tau + var))).sum(1)
        r.append(log_z - ann)
    r = np.concatenate(r)
    exact_ann = math.log(n) - 0.5 * np.log1p(var / tau).sum() - d / 2
    return r.mean() + exact_ann, r.std() / math.sqrt(r.size)


def test_one_point_is_exact():
    # N = 1: E log Z = E E_1 = -E|u - y|^2 / (2 tau) = -sum_j (2 s_j^2 + tau) / (2 tau)
    tau, d = 0.7, 16
    got = finite_n.log_partition_mean(tau, 1, 1.0, d)
    assert got == pytest.approx(-d * (2 + tau) / (2 * tau), rel=1e-10)
    w, k = np.array([0.3, 2.0]), np.array([6.0, 10.0])
    got = finite_n.log_partition_mean(tau, 1, w, k)
    assert got == pytest.approx(-np.sum(k * (2 * w + tau)) / (2 * tau), rel=1e-7)


@pytest.mark.parametrize("tau,n,d", [(1.0, 8, 4), (0.4, 6, 6)])
def test_log_partition_matches_brute_force_monte_carlo(tau, n, d):
    mc, se = _mc_log_z(tau, n, np.ones(d), draws=1_000_000, seed=3)
    th = finite_n.log_partition_mean(tau, n, 1.0, d)
    assert abs(th - mc) < 4 * se + 1e-6, (th, mc, se)
    assert se < 5e-3          # the comparison has power: |E log Z| ~ 1-3


def test_two_block_spectrum_matches_monte_carlo():
    var = np.r_[np.full(3, 0.25), np.full(5, 2.0)]
    tau, n = 0.8, 10
    mc, se = _mc_log_z(tau, n, var, draws=500_000, seed=5)
    th = finite_n.log_partition_mean(tau, n, [0.25, 2.0], [3.0, 5.0])
    assert abs(th - mc) < 4 * se + 1e-5, (th, mc, se)


def test_quadrature_converged():
    base = finite_n.collapse_time_finite_n(25, 64)
    fine = finite_n.collapse_time_finite_n(25, 64, nodes=24, step=0.05)
    assert abs(fine / base - 1) < 1e-9
    f = finite_n.excess_entropy_finite_n(1.1, 602, 128)
    assert abs(finite_n.excess_entropy_finite_n(1.1, 602, 128, nodes=24, step=0.05) - f) < 1e-9


def test_generalized_inversion_equals_noncentral_chi_square():
    d, lam = 12, 20.0
    mean, sd = d + lam, math.sqrt(2 * (d + 2 * lam))
    q = np.linspace(0.1, mean + 10 * sd, 400)
    exact = stats.ncx2.cdf(q, d, lam)
    split = finite_n._cdf_generalized(q, np.array([1.0, 1.0]), np.array([5.0, 7.0]),
                                      np.array([lam / 4, 3 * lam / 4]))
    assert np.all(np.abs(split - exact) <= 1e-7 * exact + 1e-9)
    assert exact.min() < 1e-12      # the tail is really probed


def test_spectrum_path_reduces_to_isotropic_path():
    spec = np.r_[np.full(14, 1.0), np.full(10, 1.0 + 1e-9)]   # two blocks, isotropic in effect
    iso = finite_n.excess_entropy_finite_n(0.9, 50, 24)
    two = finite_n.excess_entropy_finite_n(0.9, 50, 24, spectrum=spec)
    assert two == pytest.approx(iso, abs=1e-7)


@pytest.mark.slow
def test_spectrum_collapse_time_reduces_to_isotropic():
    spec = np.r_[np.full(20, 1.0), np.full(12, 1.0 + 1e-9)]
    assert finite_n.collapse_time_finite_n(50, 32, spectrum=spec) == pytest.approx(
        finite_n.collapse_time_finite_n(50, 32), rel=1e-6)
    # a genuine 2-block spectrum: finite N collapses later than its REM value
    spec = np.r_[np.full(16, 0.5), np.full(16, 2.0)]
    t_c = finite_n.collapse_time_finite_n(50, 32, spectrum=spec)
    assert t_c > critical.collapse_time(50, spec)


def test_collapse_is_the_zero_of_the_excess_entropy_and_vectorized():
    n, d = np.array([25, 602]), np.array([64, 128])
    t_c = finite_n.collapse_time_finite_n(n, d)
    assert t_c.shape == (2,)
    f = finite_n.excess_entropy_finite_n(t_c, n, d)
    assert np.all(np.abs(f) < 1e-8)
    assert np.all(finite_n.excess_entropy_finite_n(t_c * 1.05, n, d) > 0)
    assert np.all(finite_n.excess_entropy_finite_n(t_c * 0.95, n, d) < 0)
    # finite N collapses later than the REM prediction (the measured sign of the bias)
    assert np.all(t_c > [critical.collapse_time(a, np.ones(b)) for a, b in zip(n, d)])
    # variance scales tau: tau_C(s^2) = s^2 tau_C(1)
    tau1 = finite_n.collapse_tau_finite_n(25, 64)
    assert finite_n.collapse_tau_finite_n(25, 64, variance=3.0) == pytest.approx(3 * tau1, rel=1e-8)
    # public names re-exported from memphase.physics.critical
    assert critical.collapse_time_finite_n is finite_n.collapse_time_finite_n


def test_schedule_time_maps_the_same_tau():
    sch = GeometricVE()
    t = finite_n.collapse_time_finite_n(25, 64, schedule=sch)
    assert float(sch.tau(t)) == pytest.approx(float(finite_n.collapse_tau_finite_n(25, 64)), rel=1e-9)


def test_reduces_to_rem_as_d_grows_at_fixed_alpha():
    # t_C(N = e^{alpha d}, d) -> REM t_C(alpha); the relative gap falls like 1/d (halves per doubling)
    alpha = 0.05
    rem = float(critical.collapse_time(math.exp(alpha * 64), np.ones(64)))
    rel = [float(finite_n.collapse_time_finite_n(math.exp(alpha * d), d)) / rem - 1
           for d in (64, 128, 256, 512)]
    assert rel[0] > 0.05 and rel[-1] < 0.011, rel
    assert all(0.45 < b / a < 0.6 for a, b in zip(rel, rel[1:])), rel


def test_weight_observables_match_monte_carlo():
    tau, n, d = 0.5, 12, 6
    rng = np.random.default_rng(11)
    m = 200_000
    u = rng.standard_normal((m, d)) * math.sqrt(1 + tau)
    y = rng.standard_normal((m, n, d))
    e = -((u[:, None, :] - y) ** 2).sum(-1) / (2 * tau)
    w = np.exp(e - e.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    y2 = (w**2).sum(1)
    planted = y[:, 0, :] + math.sqrt(tau) * rng.standard_normal((m, d))
    top = (((planted[:, None, :] - y) ** 2).sum(-1).argmin(1) == 0).astype(float)
    t = 0.5 * math.log1p(tau)
    assert abs(finite_n.participation_finite_n(t, n, d) - y2.mean()) < 4 * y2.std() / math.sqrt(m)
    assert abs(finite_n.top_weight_finite_n(t, n, d) - top.mean()) < 4 * top.std() / math.sqrt(m)


@pytest.mark.parametrize("call,match", [
    (lambda: finite_n.collapse_time_finite_n(0, 64), "n must"),
    (lambda: finite_n.collapse_time_finite_n(25, 6.5), "dimension d"),
    (lambda: finite_n.collapse_time_finite_n(25, 64, variance=-1.0), "variance"),
    (lambda: finite_n.collapse_time_finite_n(25, 4, spectrum=[1.0, 2.0]), "spectrum has 2"),
    (lambda: finite_n.collapse_time_finite_n(25, 2, 2.0, spectrum=[1.0, 2.0]), "not both"),
    (lambda: finite_n.excess_entropy_finite_n(-1.0, 25, 64), "time"),
    (lambda: finite_n.collapse_time_finite_n(1, 64), ">= 2"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tiny_d_large_n_stays_tractable_and_above_rem():
    """d = 2 with N = 1024 stretches the energy grid to ~1e5 points (tau_C ~ 1e-3): the FFT
    correlation keeps this a seconds-long solve (it took minutes with direct correlation, which
    stalled the canonical collapse config), and the finite-N tau_C exceeds REM's, as at every
    small d (docs/theory.md)."""
    from memphase.physics.critical import collapse_tau

    tau = float(critical.collapse_tau_finite_n(1024, 2, 1.0))
    rem = float(collapse_tau(1024, np.ones(2)))
    assert np.isfinite(tau) and tau > rem


# -- many-level spectra ----------------------------------------------------------------------------
# 14 distinct geometric levels over three decades (the digits PCA spectrum spans six)
W = np.geomspace(1.0, 1e-3, 14)
K = np.ones(W.size)


def _terms(n):
    return lambda e, s, h, lam: finite_n._partition_terms(e, s, h, float(n))


def test_shared_contours_reproduce_the_per_point_inversion():
    tau, n = 0.3, 50.0
    lam, _ = finite_n._u_nodes(tau, W, K, 12, (8, 1))
    mean, std = finite_n._moments(W, K, lam)
    # every node, from the far lower tail of Q (S ~ 1e-30) to the upper bulk: one contour set
    q = mean[:, None] * np.geomspace(0.05, 1.0, 60) + std[:, None] * np.linspace(0, 14, 60)
    shared = finite_n_spectrum.survival_shared(q, W, K, lam)
    direct = np.stack([finite_n._cdf_generalized(qi, W, K, li) for qi, li in zip(q, lam)])
    assert direct.min() < 1e-30 and direct.max() > 1 - 1e-9
    kept = direct > 1e-50              # tails below 1e-60 (Chernoff bound) are set to 0
    assert np.all(np.abs(shared - direct)[kept] <= 1e-7 * direct[kept])
    assert np.all(shared[~kept] < 1e-50)
    upper = direct > 0.5               # P(Q > q) inverted there: both agree to 1e-7 absolute
    assert np.all(np.abs(shared - direct)[upper] <= 1e-7)
    # and the energy grids built on it give the per-node E[log Z | u]
    grids = finite_n_spectrum.energy_grids(tau, n, W, K, lam, 0.1)
    for (e, s, h), lam_i in zip(grids, lam):
        e_ref, s_ref, h_ref = finite_n._energy_grid(tau, n, W, K, lam_i, 0.1)
        assert e.size == e_ref.size and h == h_ref
        assert finite_n._partition_terms(e, s, h, n) == pytest.approx(
            finite_n._partition_terms(e_ref, s_ref, h_ref, n), abs=1e-8)


def test_many_level_average_equals_the_per_node_path():
    tau, n = 0.3, 50.0
    fast = finite_n._mean_over_u(tau, n, W, K, _terms(n), 12, 0.1, (16, 0), regression=False)[0]
    slow = finite_n._mean_over_u(tau, n, W, K, _terms(n), 12, 0.1, (16, 0), shared=False,
                                 regression=False)[0]
    assert fast == pytest.approx(slow, abs=1e-7)


def test_control_variates_have_mean_zero_and_unit_covariance():
    # lam_b = (2 + 2 tau / w_b) Gamma(k_b / 2): exact draws, features must be centred (else bias)
    tau = 0.3
    rng = np.random.default_rng(7)
    lam = rng.gamma(K / 2.0, size=(200_000, W.size)) * 2.0 * (1.0 + tau / W)
    x = finite_n_spectrum._cv_features(tau, W, K, lam)
    m = len(finite_n_spectrum.CV_TILTS)
    se = x.std(0) / math.sqrt(x.shape[0])
    assert x.shape[1] == m + m * (m + 1) // 2
    assert np.all(np.abs(x.mean(0)) < 5 * se), x.mean(0) / se
    lin = x[:, :m]
    assert np.allclose(np.cov(lin.T), np.eye(m), atol=0.02)


def test_many_level_log_partition_matches_monte_carlo():
    n, tau = 10, 0.45                  # near the finite-N collapse noise of this spectrum
    mc, se = _mc_log_z(tau, n, W, draws=600_000, seed=13)
    th = finite_n.log_partition_mean(tau, n, W, K)
    assert se < 2.5e-3                 # |E log Z| ~ 7
    assert abs(th - mc) < 4 * se, (th, mc, se)


def test_regression_shrinks_the_scramble_spread():
    # independent scrambles: E log Z spread with the regression control variates is several times
    # smaller than with the annealed one alone (digits: 7-17x, docs/theory.md)
    tau, n = 0.1, 10.0
    plain, reg = [], []
    for seed in range(4):
        plain.append(finite_n._mean_over_u(tau, n, W, K, _terms(n), 12, 0.1, (128, seed),
                                           regression=False)[0])
        reg.append(finite_n._mean_over_u(tau, n, W, K, _terms(n), 12, 0.1, (128, seed))[0])
    assert np.std(reg) < 0.5 * np.std(plain), (np.std(reg), np.std(plain))
    assert abs(np.mean(reg) - np.mean(plain)) < 4 * np.std(plain)


@pytest.mark.slow
def test_many_level_collapse_noise_to_1e3():
    # 20 geometric levels over six decades (the digits PCA spectrum spans the same, but falls
    # faster: effective dimension ~3 here), default 256 points: the spread of f over 6
    # independent scrambles, in units of tau_C, stays below 1e-3 (measured 6.3e-4)
    w = np.geomspace(0.7, 1e-6, 20)
    k = np.ones(w.size)
    tau = float(finite_n.collapse_tau_finite_n(100, w.size, spectrum=w))
    f = [0.5 + finite_n.log_partition_mean(tau, 100, w, k, qmc_seed=s) / w.size for s in range(6)]
    up, down = (0.5 + finite_n.log_partition_mean(tau * x, 100, w, k) / w.size
                for x in (1.01, 1 / 1.01))
    slope = (up - down) / (2 * math.log(1.01))
    assert abs(f[0]) < 1e-5                     # seed 0 is the solver's own average
    assert np.std(f, ddof=1) / slope < 1e-3, (np.std(f, ddof=1), slope)


# -- planted probes (the official [BBDM24] protocol): memphase.physics.finite_n_planted -----------
def test_planted_one_point_is_exactly_zero():
    """N = 1: log Z = E_0 = -|z|^2 / 2 exactly, so f_planted = 1/2 - E|z|^2 / (2d) = 0 (any spectrum)."""
    f = finite_n.excess_entropy_finite_n([0.1, 0.5, 2.0], 1, 8, probe="planted")
    assert np.all(np.abs(f) < 1e-9), f


@pytest.mark.slow
def test_planted_one_point_is_exactly_zero_two_blocks():
    f2 = finite_n.excess_entropy_finite_n(0.4, 1, 6, spectrum=[3.0] * 2 + [0.3] * 4, probe="planted")
    assert abs(float(f2)) < 1e-7      # two blocks: S_0 splined from 240 inversions


@pytest.mark.parametrize("tau,n,var", [(0.5, 5, [1.0] * 6), (0.1, 12, [1.0] * 4),
                                       (0.3, 7, [2.0] * 3 + [0.2] * 3)])
def test_planted_matches_brute_force_monte_carlo(tau, n, var):
    """E log Z with u = y_1 + sqrt(tau) z planted on one of the N training points, brute force."""
    var = np.asarray(var, float)
    d, m = var.size, 100_000
    rng = np.random.default_rng(5)
    y = rng.standard_normal((m, n, d)) * np.sqrt(var)
    u = y[:, 0, :] + math.sqrt(tau) * rng.standard_normal((m, d))
    e = -((u[:, None, :] - y) ** 2).sum(-1) / (2 * tau)
    mx = e.max(1)
    log_z = mx + np.log(np.exp(e - mx[:, None]).sum(1))
    w, k = np.unique(var, return_counts=True)
    theory = finite_n.log_partition_mean(tau, n, w, k.astype(float), probe="planted")
    assert abs(theory - log_z.mean()) < 4 * log_z.std() / math.sqrt(m) + 1e-6


@pytest.mark.parametrize("n,d,spectrum", [
    (50, 16, None), pytest.param(300, 64, [4.0] * 8 + [0.5] * 56, marks=pytest.mark.slow)])
def test_planted_bounds_and_fresh_below_rem(n, d, spectrum):
    """f_planted >= max(0, f_REM) >= ... and f_fresh <= f_REM (Jensen: E log Z <= log E Z, the REM
    f being the annealed one) at every t: the planted f has no zero at finite N, and the fresh-probe
    t_C lies at larger tau than REM ("finite N collapses later than REM")."""
    var = np.ones(d) if spectrum is None else np.asarray(spectrum, float)
    t = np.array([0.05, 0.15, 0.3, 0.6, 1.0])
    tau = np.expm1(2 * t)
    kw = {} if spectrum is None else {"spectrum": var}
    planted = finite_n.excess_entropy_finite_n(t, n, d, probe="planted", **kw)
    fresh = finite_n.excess_entropy_finite_n(t, n, d, probe="fresh", **kw)
    rem = critical.excess_entropy_gaussian(tau, n, var)
    assert np.all(planted > 0), planted
    assert np.all(planted >= rem - 1e-7), planted - rem
    assert np.all(fresh <= rem + 1e-7), fresh - rem
    assert fresh[0] < 0 < planted[0]


def test_planted_collapse_time_is_refused_and_probe_names_are_checked():
    with pytest.raises(ValueError, match="no zero"):
        finite_n.collapse_time_finite_n(100, 16, probe="planted")
    with pytest.raises(ValueError, match="probe must be"):
        finite_n.excess_entropy_finite_n(0.5, 10, 4, probe="training")
    with pytest.raises(ValueError, match="at most 3"):
        finite_n.excess_entropy_finite_n(0.5, 10, 4, spectrum=[1.0, 2.0, 3.0, 4.0], probe="planted")
