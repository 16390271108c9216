"""Tests of the [H24] generalization criterion, the official model and the Gaussian divergences
(physics/linear_model/criterion.py, physics/linear_model/official.py, their drivers in
physics/linear_model/model.py)."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal

from memphase.physics.linear_model import (divergences_to_sampling, fit_generated_law,
                                  fit_linear_denoiser, fit_linear_denoiser_official,
                                  gaussian_kl, generalization_probability, generated_law,
                                  generated_law_official, hellinger_squared, kde_bandwidth,
                                  kde_distance, kl_generated_to_sampling, log_kde_cross_overlap,
                                  log_kde_self_overlap, noise_scales, official_large_n_limit,
                                  official_noise_scales,
                                  ols_denoiser, reference_delta, sign_probability)


def _npdf(x, mean, cov):
    return multivariate_normal(mean, cov).pdf(x)


# --------------------------------------------------------------------------------------------
# kernel-density integrals
# --------------------------------------------------------------------------------------------
def test_self_overlap_blocks_equal_brute_force():
    """Blocked log int K^2 (blocks of 7 on 30 points, several partial blocks) equals the plain
    double sum of N(y_i; y_j, 2 h^2 I), also far from the origin (points around 10 * 1)."""
    rng = np.random.default_rng(0)
    for shift in (0.0, 10.0):
        y = shift + rng.normal(size=(30, 3))
        h = 0.6
        brute = np.log(np.mean([[_npdf(a, b, 2 * h * h * np.eye(3)) for b in y] for a in y]))
        assert log_kde_self_overlap(y, h, block=7) == pytest.approx(brute, rel=1e-12, abs=1e-12)
        assert log_kde_self_overlap(y, h) == pytest.approx(brute, rel=1e-12, abs=1e-12)


def test_cross_overlap_and_distance_match_monte_carlo():
    """D(p, K) = int K^2 - 2 int p K against Monte Carlo: int p K = E_{x~p} K(x) and
    int K^2 = E_{x~K} K(x) (x drawn from the KDE mixture), d = 2, 5 points, 4e5 draws; within
    5 standard errors."""
    rng = np.random.default_rng(1)
    pts, h = rng.normal(size=(5, 2)), 0.5
    mean, cov = np.array([0.2, -0.1]), np.array([[0.7, 0.2], [0.2, 0.4]])
    M = 400_000

    def kde(x):
        return np.mean([_npdf(x, y, h * h * np.eye(2)) for y in pts], axis=0)

    xp = rng.multivariate_normal(mean, cov, size=M)
    xk = pts[rng.integers(0, 5, M)] + h * rng.normal(size=(M, 2))
    kp, kk = kde(xp), kde(xk)
    cross, self_ = log_kde_cross_overlap(mean, cov, pts, h), log_kde_self_overlap(pts, h)
    assert abs(math.exp(cross) - kp.mean()) < 5 * kp.std() / math.sqrt(M)
    assert abs(math.exp(self_) - kk.mean()) < 5 * kk.std() / math.sqrt(M)
    mc = kk.mean() - 2 * kp.mean()
    se = math.hypot(kk.std(), 2 * kp.std()) / math.sqrt(M)
    assert abs(kde_distance(mean, cov, pts, h) - mc) < 5 * se


def _official_distance(mu, sigma, data, std):
    """`distance` of the official [H24] code (LDM.py), re-derived in numpy: eps = std N^{-1/d},
    pair sum / ((2 pi)^{1/2} (2 eps^2)^{d/2} N^2) - 2 / (N sqrt(2 pi det(S + eps^2 I))) * single
    sum, S = sigma^T sigma (the code's product), single sum of exp(-(mu-y)^T (S+eps^2)^{-1} (mu-y)/2)."""
    n, d = data.shape
    eps = std * (1.0 / n) ** (1.0 / d)
    pair = sum(math.exp(-np.sum((a - b) ** 2) / (4 * eps**2)) for a in data for b in data)
    C = sigma.T @ sigma + eps**2 * np.eye(d)
    Ci = np.linalg.inv(C)
    single = sum(math.exp(-0.5 * (mu - y) @ Ci @ (mu - y)) for y in data)
    d2 = pair / (math.sqrt(2 * math.pi) * (2 * eps**2) ** (d / 2) * n**2)
    d3 = -2.0 / (n * math.sqrt(2 * math.pi * np.linalg.det(C))) * single
    return d2 + d3


def test_reference_delta_reproduces_the_official_formula():
    """Tiny case (d = 3, N = 6, reference 40 points, official model at T = 2, data around 10 * 1):
    the official e_TG - e_OG, rescaled by (2 pi)^{-(d-1)/2} (its (2 pi)^{1/2} normalization) and
    divided by int K_t^2 + int K_r^2, equals `reference_delta` on the code's covariance
    v B^T B; sign agreement over 30 training sets."""
    rng = np.random.default_rng(2)
    d, T = 3, 2.0
    signs = []
    for k in range(30):
        y = 10 + rng.normal(size=(6, d))
        ref = 10 + rng.normal(size=(40, d))
        B, b0 = fit_linear_denoiser_official(y, T, seed=rng)
        mean, cov = generated_law_official(B, b0, y, T, covariance="BtB")
        m, nv = official_noise_scales(T)
        v = m * m * np.mean(np.var(y, axis=0, ddof=1)) + nv
        sigma = B * math.sqrt(v)
        off = _official_distance(mean, sigma, y, 1.0) - _official_distance(mean, sigma, ref, 1.0)
        norm = (math.exp(log_kde_self_overlap(y, kde_bandwidth(6, d)))
                + math.exp(log_kde_self_overlap(ref, kde_bandwidth(40, d))))
        ours = reference_delta(mean, cov, y, ref)
        if k < 5:
            assert ours == pytest.approx(off * (2 * math.pi) ** (-(d - 1) / 2) / norm, rel=1e-9)
        signs.append(np.sign(ours) == np.sign(off))
    assert all(signs)


def test_sign_probability_is_the_official_mean_with_a_wilson_interval():
    """P = 1/2 + 1/2 mean sign (ties 1/2); Wilson 95% interval: 30 of 40 positive gives
    (0.5981, 0.8581) by the closed form; 40 of 40 gives the upper end 1 and low 0.9124."""
    d = np.r_[np.ones(30), -np.ones(10)]
    p, lo, hi = sign_probability(d)
    assert p == 0.75
    z, r = 1.96, 40
    c = (p + z * z / (2 * r)) / (1 + z * z / r)
    h = z / (1 + z * z / r) * math.sqrt(p * (1 - p) / r + z * z / (4 * r * r))
    assert (lo, hi) == pytest.approx((c - h, c + h), rel=1e-12)
    assert (lo, hi) == pytest.approx((0.5981, 0.8581), abs=1e-4)
    p1, lo1, hi1 = sign_probability(np.ones(40))
    assert p1 == 1.0 and hi1 == 1.0 and lo1 == pytest.approx(0.9124, abs=1e-4)
    assert sign_probability([1.0, 0.0, -1.0, 1.0])[0] == 0.625


def test_reference_delta_reuses_the_reference_self_overlap():
    rng = np.random.default_rng(3)
    y, ref = rng.normal(size=(8, 4)), rng.normal(size=(50, 4))
    mean, cov = generated_law(*fit_linear_denoiser(y, T=1.0))
    lk = log_kde_self_overlap(ref, kde_bandwidth(50, 4))
    assert reference_delta(mean, cov, y, ref, log_self_ref=lk) == pytest.approx(
        reference_delta(mean, cov, y, ref), rel=1e-13)


# --------------------------------------------------------------------------------------------
# the two criteria
# --------------------------------------------------------------------------------------------
def test_symmetric_criterion_tends_to_half_from_below():
    """d = 2, T = 1, 400 training sets (binomial stderr <= 0.025): P_sym well below 1/2 at N = 5
    (measured 0.315), within 0.1 of 1/2 and not above it (2 stderr) at N = 20 and 100 (0.45,
    0.47)."""
    p = [generalization_probability(n, 2, 400, 3, 1.0, criterion="symmetric") for n in (5, 20, 100)]
    assert p[0] < 0.4
    for q in p[1:]:
        assert 0.4 < q < 0.55
    assert p[0] < min(p[1:])


def test_reference_criterion_rises_to_one_with_n_at_d10():
    """d = 10, T = 1, 40 training sets, one shared reference set of 5000 points: P = 0 at N = 2
    (generated law on the training points' hull), then rises to >= 0.9 by N = 100 (measured
    0, 0.3, 0.825, 1.0 at N = 2, 5, 11, 100; with n_ref = 2000 it stalls near 0.8)."""
    p = [generalization_probability(n, 10, 40, 3, 1.0, n_ref=5000, reference="shared")
         for n in (2, 5, 11, 100)]
    assert p[0] < 0.05
    assert p[3] >= 0.9
    assert p[0] <= p[1] <= p[2] <= p[3]


def test_reference_criterion_erodes_as_n_reaches_n_ref():
    """d = 10, T = 1, n_ref = 400: P ~ 1 at N = 50, but at N = n_ref the bandwidths coincide and
    the criterion is the symmetric one (P <= 1/2 + 3 stderr, 60 training sets); the per-set
    statistic falls in between."""
    kw = dict(n_ref=400, reference="fresh", return_deltas=True)
    p_small, dl_small = generalization_probability(50, 10, 60, 4, 1.0, **kw)
    p_eq, dl_eq = generalization_probability(400, 10, 60, 4, 1.0, **kw)
    assert p_small >= 0.9
    assert p_eq < 0.5 + 3 * 0.5 / math.sqrt(60)
    assert np.median(dl_eq) < np.median(dl_small)


def test_generalization_probability_official_fit_runs_and_is_translation_invariant():
    """The official model is translation-equivariant, so the data mean (official 10 * 1) leaves
    every per-set statistic unchanged up to rounding."""
    kw = dict(fit="official", n_ref=300, reference="shared", return_deltas=True)
    _, a = generalization_probability(30, 5, 10, 7, 2.0, data_mean=0.0, **kw)
    _, b = generalization_probability(30, 5, 10, 7, 2.0, data_mean=10.0, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------
# the official model
# --------------------------------------------------------------------------------------------
def test_ols_denoiser_matches_direct_lstsq():
    """Overdetermined (N = 30 > d + 1 = 5): lstsq on [X, 1]; underdetermined (N = 3): the exact
    interpolating minimum-norm slope Y_c^T (X_c^+)^T."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=(30, 4))
    x = 0.3 * y + rng.normal(size=y.shape)
    B, b0 = ols_denoiser(x, y)
    coef, *_ = np.linalg.lstsq(np.hstack([x, np.ones((30, 1))]), y, rcond=None)
    np.testing.assert_allclose(B, coef[:4].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b0, coef[4], rtol=1e-10, atol=1e-12)
    y3, x3 = y[:3], x[:3]
    B3, b3 = ols_denoiser(x3, y3)
    xc, yc = x3 - x3.mean(0), y3 - y3.mean(0)
    np.testing.assert_allclose(B3, yc.T @ np.linalg.pinv(xc).T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x3 @ B3.T + b3, y3, atol=1e-10)  # interpolates


def test_official_fit_uses_scaled_noise_and_one_draw():
    """x = m y + sqrt(m^2 sigma^2) z with the seed's z: refit by hand."""
    rng = np.random.default_rng(6)
    y = 10 + rng.normal(size=(20, 3))
    m, s2 = noise_scales(T=2.0)
    assert official_noise_scales(2.0) == pytest.approx((m, m * m * s2), rel=1e-14)
    z = np.random.default_rng(11).standard_normal(y.shape)
    B, b0 = ols_denoiser(m * y + math.sqrt(m * m * s2) * z, y)
    B2, b2 = fit_linear_denoiser_official(y, 2.0, seed=11)
    np.testing.assert_allclose(B2, B, rtol=1e-12)
    np.testing.assert_allclose(b2, b0, rtol=1e-12)


def test_official_generated_law_matches_samples():
    """Prior N(m mu_N, v I) mapped by B x + beta_0: sample mean and covariance (2e5 draws)."""
    rng = np.random.default_rng(7)
    y = 10 + rng.normal(size=(12, 3))
    B, b0 = fit_linear_denoiser_official(y, 1.5, seed=1)
    mean, cov = generated_law_official(B, b0, y, 1.5, covariance="BBt")
    m, nv = official_noise_scales(1.5)
    v = m * m * np.mean(np.var(y, axis=0, ddof=1)) + nv
    x = m * y.mean(0) + math.sqrt(v) * rng.normal(size=(200_000, 3))
    g = x @ B.T + b0
    np.testing.assert_allclose(g.mean(0), mean, atol=0.02 * math.sqrt(np.abs(cov).max()) + 1e-3)
    np.testing.assert_allclose(np.cov(g.T), cov, atol=0.03 * np.abs(cov).max())
    _, cov_t = generated_law_official(B, b0, y, 1.5, covariance="BtB")
    np.testing.assert_allclose(np.linalg.eigvalsh(cov_t), np.linalg.eigvalsh(cov), rtol=1e-9)


def test_official_large_n_generated_variance():
    """*derived*: for N -> inf, B -> m / (m^2 + l sigma^2) I and v -> m^2 + l sigma^2 with
    l = m^2, so the generated variance is 1 / (2 - m^2) per direction (0.5046 at T = 2), not 1:
    checked at N = 2e5, d = 3, to 1%."""
    m, _ = noise_scales(T=2.0)
    y = 10 + np.random.default_rng(8).normal(size=(200_000, 3))
    mean, cov = fit_generated_law(y, 2.0, fit="official", seed=2)
    np.testing.assert_allclose(np.diag(cov), 1.0 / (2.0 - m * m), rtol=0.01)
    np.testing.assert_allclose(mean, 10.0, atol=0.02)
    kl, h2 = divergences_to_sampling(mean, cov, mu=np.full(3, 10.0))
    kl_inf, h2_inf = official_large_n_limit(3, 2.0)
    assert kl == pytest.approx(kl_inf, rel=0.03) and h2 == pytest.approx(h2_inf, rel=0.03)


@pytest.mark.parametrize("n,finite", [(4, False), (5, True)])
def test_official_divergences_infinite_up_to_n_equals_d(n, finite):
    """rank(B) = min(N - 1, d): KL = inf and H^2 = 1 for N <= d, finite / < 1 above."""
    y = 10 + np.random.default_rng(9).normal(size=(n, 4))
    kl, h2 = divergences_to_sampling(*fit_generated_law(y, 2.0, fit="official", seed=0),
                                     mu=np.full(4, 10.0))
    assert np.isfinite(kl) == finite
    assert (h2 < 1.0) == finite and 0.0 < h2 <= 1.0


def test_official_kl_at_n_equals_d_plus_one_is_finite_with_the_factor():
    """N = d + 1 = 101: v B B^T can be too ill-conditioned for an eigenvalue test, the singular
    values of sqrt(v) B are not; with the factor the KL is finite and equals the direct formula
    1/2 [tr - d + |delta|^2 + 0 - log det] from the singular values."""
    rng = np.random.default_rng(12)
    d = 100
    y = rng.normal(size=(d + 1, d))
    B, b0 = fit_linear_denoiser_official(y, 2.0, seed=3)
    mean, cov = generated_law_official(B, b0, y, 2.0, covariance="BBt")
    m, nv = official_noise_scales(2.0)
    F = math.sqrt(m * m * np.mean(np.var(y, axis=0, ddof=1)) + nv) * B
    kl, h2 = divergences_to_sampling(mean, cov, cov_factor=F)
    sv = np.linalg.svd(F, compute_uv=False)
    direct = 0.5 * (np.sum(F * F) - d + mean @ mean - 2 * np.sum(np.log(sv)))
    assert np.isfinite(kl) and kl == pytest.approx(direct, rel=1e-8)
    assert 0 < h2 <= 1.0


# --------------------------------------------------------------------------------------------
# Gaussian divergences
# --------------------------------------------------------------------------------------------
def test_hellinger_closed_form_matches_quadrature_1d():
    m1, v1, m2, v2 = 0.4, 0.3, -0.2, 1.1
    bc = integrate.quad(lambda x: math.sqrt(_npdf(x, m1, v1) * _npdf(x, m2, v2)), -15, 15,
                        epsabs=1e-14)[0]
    h2 = hellinger_squared([m1], [[v1]], [m2], [[v2]])
    assert h2 == pytest.approx(1 - bc, rel=1e-10)


def test_hellinger_closed_form_matches_grid_2d():
    m1, S1 = np.array([0.3, -0.1]), np.array([[0.8, 0.3], [0.3, 0.5]])
    m2, S2 = np.array([-0.2, 0.2]), np.array([[1.2, -0.1], [-0.1, 0.9]])
    g = np.linspace(-9, 9, 901)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    bc = np.sum(np.sqrt(_npdf(X, m1, S1) * _npdf(X, m2, S2))) * (g[1] - g[0]) ** 2
    assert hellinger_squared(m1, S1, m2, S2) == pytest.approx(1 - bc, rel=1e-7)
    assert hellinger_squared(m1, S1, m1, S1) == pytest.approx(0.0, abs=1e-12)
    assert hellinger_squared(m1, np.diag([1.0, 0.0]), m2, S2) == 1.0


def test_gaussian_kl_matches_the_linear_model_kl():
    y = np.random.default_rng(10).normal(size=(9, 3))
    mean, cov = generated_law(*fit_linear_denoiser(y, T=0.8))
    kl, _ = divergences_to_sampling(mean, cov, s=1.3)
    assert kl == pytest.approx(kl_generated_to_sampling(y, 0.8, 1.3), rel=1e-10)
    assert gaussian_kl(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: generalization_probability(5, 2, 10, 0, 1.0, criterion="mirror"),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, fit="sampled"),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, n_ref=0),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, smooth_generated=True),
    lambda: generalization_probability(1, 2, 10, 0, 1.0, fit="official"),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, fit="official", intercept=False),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, data_mean=math.nan),
    lambda: log_kde_self_overlap(np.zeros((3, 2)), 0.0),
    lambda: log_kde_self_overlap(np.zeros((3, 2)), 1.0, block=0),
    lambda: reference_delta(np.zeros(2), np.eye(2), np.zeros((3, 2)), np.zeros((4, 3))),
    lambda: ols_denoiser(np.zeros((3, 2)), np.zeros((4, 2))),
    lambda: generated_law_official(np.eye(2), np.zeros(3), np.zeros((4, 2)), 1.0),
    lambda: hellinger_squared(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)),
    lambda: gaussian_kl(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2)),
    lambda: fit_generated_law(np.zeros((4, 2)), 1.0, fit="nope"),
    lambda: fit_generated_law(np.zeros((4, 2)), 1.0, fit="official", covariance="AAt"),
    lambda: generated_law_official(np.eye(2), np.zeros(2), np.zeros((4, 2)), 1.0, covariance="B"),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, reference="recycled"),
    lambda: generalization_probability(5, 2, 10, 0, 1.0, covariance="bbt"),
    lambda: sign_probability([]),
    lambda: sign_probability([1.0, math.nan]),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
