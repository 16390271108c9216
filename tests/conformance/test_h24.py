"""Conformance of memphase's [H24] official mode with the paper's official code (Halder, *A solvable
generative model with a linear, one-step denoiser*, arXiv 2411.17807; GitHub
I-Halder/a-solvable-generative-model-with-a-linear-one-step-denoiser, `LDM.py`).

Each test names the row of docs/conformance/h24.md it backs. The `_ldm_*` helpers below re-derive
LDM.py's computation step by step in float64 numpy, written from reading the official code
(`generate_gaussian`, `fwd`, `linear_generator` with scikit-learn's `LinearRegression`,
`distance`, `distance_th`, `c_det`, and the final `0.5 + 0.5 * np.mean(sign)`), and are compared
with memphase's functions on the same draws. LDM.py itself sets no seed (torch's global
generator), so "the official seeds" are the draws memphase makes from its own seeds, fed to both.
"""

import math

import numpy as np
import pytest

from memphase.physics import linear_model as lm

T = 2.0  # LDM.py: T = torch.tensor(2)
MEAN, STD = 10.0, 1.0  # LDM.py: mean_list = [10], std_list = [1]


# ------------------------------------------------------------------------------------------------
# LDM.py re-derived (own code)
# ------------------------------------------------------------------------------------------------
def _ldm_forward(y, z):
    """`fwd`: x = e^{-T} y - sqrt(l (1 - e^{-2T})) z with l = e^{-2T}, one draw z per point."""
    l = math.exp(-2 * T)
    return math.exp(-T) * y - math.sqrt(l * (1 - math.exp(-2 * T))) * z


def _ldm_ols(x, y):
    """`LinearRegression().fit(x, y)`: centre both, slope = minimum-norm least squares on the
    centred data (pseudo-inverse from the SVD, singular values below max(N, d) eps s_max dropped,
    the cutoff of scipy's `lstsq`, which scikit-learn calls: the centred X has rank N - 1 when
    N <= d, and its last singular value is rounding noise), intercept = mean(y) - slope mean(x).
    Returns (coef_ (d_out, d_in), intercept_)."""
    xm, ym = x.mean(0), y.mean(0)
    U, sv, Vt = np.linalg.svd(x - xm, full_matrices=False)
    keep = sv > max(x.shape) * np.finfo(np.float64).eps * sv[0]
    pinv = (Vt[keep].T / sv[keep]) @ U[:, keep].T
    coef = (pinv @ (y - ym)).T
    return coef, ym - coef @ xm


def _ldm_law(y, beta1, beta0):
    """`linear_generator`: mu = beta0 + beta1 e^{-T} mean(y); sigma = beta1 sqrt(e^{-2T}
    mean_i var_i(y) + l (1 - e^{-2T})) (torch.var: unbiased); the distances use sigma^T sigma."""
    l = math.exp(-2 * T)
    mu = beta0 + beta1 @ (math.exp(-T) * y.mean(0))
    sigma = beta1 * math.sqrt(math.exp(-2 * T) * np.mean(np.var(y, axis=0, ddof=1))
                              + l * (1 - math.exp(-2 * T)))
    return mu, sigma


def _c_det(a):
    """`c_det`: det, or 0 when det <= e^{-25}."""
    v = np.linalg.det(a)
    return v if v > math.exp(-25) else 0.0


def _ldm_distance(mu, sigma, data):
    """`distance`: (distance2 + distance3, distance2) with eps = std N^{-1/d},
    distance2 = sum_{i,j} exp(-|x_i - x_j|^2 / (4 eps^2)) / ((2 pi)^{1/2} (2 eps^2)^{d/2} N^2),
    distance3 = -2 / (N sqrt(2 pi c_det(S + eps^2 I))) sum_i exp(-(mu - x_i)^T (S + eps^2 I)^{-1}
    (mu - x_i) / 2), S = sigma^T sigma. (distance1, the int p^2 term, is computed but unused.)"""
    n, d = data.shape
    eps = STD * (1.0 / n) ** (1.0 / d)
    sq = np.sum(data * data, 1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * data @ data.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    pair = np.sum(np.exp(-d2 / (4 * eps**2)))
    C = sigma.T @ sigma + eps**2 * np.eye(d)
    Ci = np.linalg.inv(C)
    r = mu - data
    single = np.sum(np.exp(-0.5 * np.einsum("ij,jk,ik->i", r, Ci, r)))
    dist2 = pair / (math.sqrt(2 * math.pi) * (2 * eps**2) ** (d / 2) * n**2)
    dist3 = -2.0 / (n * math.sqrt(2 * math.pi * _c_det(C))) * single
    return dist2 + dist3, dist2


def _ldm_hellinger(mu, sigma):
    """`distance_th`: 1 - 2^{d/2} sqrt(sqrt(c_det(S)) sqrt(std^{2d})) / sqrt(c_det(S + std^2 I))
    exp(-(mu - m)^T (S + std^2 I)^{-1} (mu - m) / 4), S = sigma^T sigma, m = 10 * 1."""
    d = mu.size
    S = sigma.T @ sigma
    C = S + STD**2 * np.eye(d)
    r = mu - MEAN
    q = r @ np.linalg.solve(C, r)
    f1 = math.sqrt(_c_det(S))
    return 1 - 2 ** (d / 2) * math.sqrt(f1 * math.sqrt(STD ** (2 * d))) / math.sqrt(_c_det(C)) \
        * math.exp(-q / 4)


def _ldm_relative_delta(y, z, ref):
    """One training set of LDM.py: Delta = e_TG - e_OG, returned relative to the two kernel
    self-overlaps (distance2 of both sets); the (2 pi)^{(d-1)/2} normalization of LDM.py cancels
    in this ratio, so it equals memphase's `reference_delta`."""
    beta1, beta0 = _ldm_ols(_ldm_forward(y, z), y)
    mu, sigma = _ldm_law(y, beta1, beta0)
    e_tg, k_t = _ldm_distance(mu, sigma, y)
    e_og, k_r = _ldm_distance(mu, sigma, ref)
    return (e_tg - e_og) / (k_t + k_r)


# ------------------------------------------------------------------------------------------------
# rows
# ------------------------------------------------------------------------------------------------
def test_row_forward_noise_one_draw_e2T_scaling():
    """Row "forward noise": x = e^{-T} y + sqrt(e^{-2T}(1 - e^{-2T})) z, one draw per point, T = 2
    (LDM.py `fwd`, `l`); memphase `fit_linear_denoiser_official` on the same z (LDM.py subtracts
    the noise: fed -z, the same law) gives the same OLS fit."""
    rng = np.random.default_rng(0)
    y = MEAN + STD * rng.standard_normal((25, 100))
    z = np.random.default_rng(7).standard_normal(y.shape)
    beta1, beta0 = _ldm_ols(_ldm_forward(y, -z), y)
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=7)
    np.testing.assert_allclose(B, beta1, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(b0, beta0, rtol=1e-9, atol=1e-8)
    m, nv = lm.official_noise_scales(T)
    assert (m, nv) == pytest.approx((math.exp(-2.0), math.exp(-4.0) * (1 - math.exp(-4.0))),
                                    rel=1e-14)


@pytest.mark.parametrize("n,d", [(25, 100), (100, 100), (60, 10)])
def test_row_ols_with_intercept_like_sklearn(n, d):
    """Row "denoiser fit": ordinary least squares of y on x with intercept, minimum-norm slope for
    N <= d (LDM.py: scikit-learn `LinearRegression`). memphase `ols_denoiser` equals scikit-learn
    itself and the pseudo-inverse re-derivation at LDM.py's N = 25, 100 (d = 100) and N > d."""
    rng = np.random.default_rng(n + d)
    y = MEAN + rng.standard_normal((n, d))
    x = _ldm_forward(y, rng.standard_normal((n, d)))
    B, b0 = lm.ols_denoiser(x, y)
    coef, icpt = _ldm_ols(x, y)
    np.testing.assert_allclose(B, coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b0, icpt, rtol=1e-9, atol=1e-7)
    sk = pytest.importorskip("sklearn.linear_model")
    reg = sk.LinearRegression().fit(x, y)
    np.testing.assert_allclose(B, reg.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b0, reg.intercept_, rtol=1e-8, atol=1e-6)


def test_row_prior_mean_and_criterion_covariance_BtB():
    """Rows "generated mean" and "criterion covariance": mu = beta0 + B e^{-T} mean(y) and
    v B^T B with v = e^{-2T} mean var(y) (unbiased) + e^{-2T}(1 - e^{-2T}) (LDM.py
    `linear_generator`, `sigma.t() @ sigma`); memphase `generated_law_official` (default
    covariance "BtB") and `fit_generated_law(fit="official")` give the same; "BBt" is a different
    matrix with the same spectrum."""
    rng = np.random.default_rng(3)
    y = MEAN + rng.standard_normal((20, 10))
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=4)
    mu, sigma = _ldm_law(y, B, b0)
    mean, cov = lm.generated_law_official(B, b0, y, T)
    np.testing.assert_allclose(mean, mu, rtol=1e-13)
    np.testing.assert_allclose(cov, sigma.T @ sigma, rtol=1e-12, atol=1e-15)
    mean2, cov2 = lm.fit_generated_law(y, T, fit="official", seed=4)
    np.testing.assert_allclose(cov2, cov, rtol=1e-13)
    np.testing.assert_allclose(mean2, mean, rtol=1e-13)
    _, cov_bbt = lm.generated_law_official(B, b0, y, T, covariance="BBt")
    assert np.abs(cov_bbt - cov).max() > 1e-3 * np.abs(cov).max()
    np.testing.assert_allclose(np.linalg.eigvalsh(cov_bbt), np.linalg.eigvalsh(cov),
                               rtol=1e-8, atol=1e-12)


def test_row_bandwidth_per_set():
    """Row "bandwidths": eps_X = std N_X^{-1/d} with std the sampling std (1) and N_X the set's own
    size, N_train for the training set, 10^4 for the reference set (LDM.py `distance`)."""
    for n in (20, 25, 50, 100, 400, 10_000):
        for d in (10, 100):
            assert lm.kde_bandwidth(n, d, STD) == pytest.approx(STD * (1.0 / n) ** (1.0 / d),
                                                                rel=1e-14)


@pytest.mark.parametrize("d", [3, 10])
def test_row_distance_D_and_its_normalization(d):
    """Row "distance D(p, K) = int K^2 - 2 int p K": LDM.py's `distance` (distance2 + distance3)
    equals (2 pi)^{(d-1)/2} times memphase `kde_distance` (LDM.py normalizes the Gaussians with
    (2 pi)^{1/2} instead of (2 pi)^{d/2}: a positive factor common to every D, so the sign of
    Delta is unchanged), for the training set and for a reference set."""
    rng = np.random.default_rng(d)
    y = MEAN + rng.standard_normal((15, d))
    ref = MEAN + rng.standard_normal((300, d))
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=1)
    mu, sigma = _ldm_law(y, B, b0)
    mean, cov = lm.generated_law_official(B, b0, y, T)
    for pts in (y, ref):
        off, _ = _ldm_distance(mu, sigma, pts)
        ours = lm.kde_distance(mean, cov, pts, lm.kde_bandwidth(pts.shape[0], d, STD))
        assert off == pytest.approx((2 * math.pi) ** ((d - 1) / 2) * ours, rel=1e-9)


def test_row_c_det_threshold_never_acts_in_the_criterion():
    """Row "c_det threshold (criterion)": LDM.py zeroes determinants <= e^{-25}; in `distance` the
    determinant is det(S + eps^2 I) >= eps^{2d} = std^{2d} N^{-2}, above e^{-25} for every
    N < e^{12.5} (2.7e5): at LDM.py's d = 100, N = 25 and the reference N = 10^4 the
    log-determinant is far above -25, so the threshold never acts and memphase has none."""
    assert 2 * math.log(10_000) < 25
    rng = np.random.default_rng(5)
    y = MEAN + rng.standard_normal((25, 100))
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=0)
    _, cov = lm.generated_law_official(B, b0, y, T)
    for n in (25, 10_000):
        eps2 = lm.kde_bandwidth(n, 100, STD) ** 2
        logdet = np.linalg.slogdet(cov + eps2 * np.eye(100))[1]
        assert logdet >= 100 * math.log(eps2) - 1e-9 > -25


def test_row_delta_and_P_whole_pipeline_fresh_reference():
    """Rows "data", "reference set", "Delta", "P" (and every row above, end to end): memphase
    `generalization_probability(fit="official", reference="fresh", data_mean=10)` on seed 11,
    d = 10, N = 20, n_ref = 400 (LDM.py: 10^4; reduced for speed), 12 training sets, against the
    LDM.py pipeline re-derived on the same draws (per set: training set 10 + N(0, I), one noise
    draw, a fresh reference set): equal relative Delta per set, and P = 1/2 + 1/2 mean sign."""
    n, d, n_ref, R, seed = 20, 10, 400, 12, 11
    p, deltas = lm.generalization_probability(n, d, R, seed, T, fit="official", n_ref=n_ref,
                                              data_mean=MEAN, return_deltas=True)
    rng = np.random.default_rng(seed)
    own = []
    for _ in range(R):
        y = MEAN + STD * rng.standard_normal((n, d))
        z = rng.standard_normal((n, d))
        ref = MEAN + STD * rng.standard_normal((n_ref, d))  # fresh for every training set
        own.append(_ldm_relative_delta(y, -z, ref))
    np.testing.assert_allclose(deltas, own, rtol=1e-6, atol=1e-12)
    assert p == 0.5 + 0.5 * np.mean(np.sign(own))


def test_row_delta_official_size_d100():
    """Row "Delta" at LDM.py's own size d = 100, N = 25 (reference 1000 points, reduced from
    10^4 for speed): memphase `reference_delta` on v B^T B equals the re-derived LDM.py Delta
    relative to the self-overlaps, for 2 training sets."""
    rng = np.random.default_rng(12)
    for k in range(2):
        y = MEAN + rng.standard_normal((25, 100))
        ref = MEAN + rng.standard_normal((1000, 100))
        z = np.random.default_rng(100 + k).standard_normal(y.shape)
        mean, cov = lm.fit_generated_law(y, T, fit="official", seed=100 + k)
        ours = lm.reference_delta(mean, cov, y, ref, s=STD)
        assert ours == pytest.approx(_ldm_relative_delta(y, -z, ref), rel=1e-6, abs=1e-12)


def test_row_P_and_its_interval():
    """Row "P": `sign_probability` returns LDM.py's 0.5 + 0.5 mean(sign(e_TG - e_OG)) (a tie
    counts 1/2, np.sign(0) = 0) and a 95% Wilson interval that contains it."""
    d = np.array([0.3, -0.1, 0.0, 2.0, 1e-9, -4.0, 0.2])
    p, lo, hi = lm.sign_probability(d)
    assert p == 0.5 + 0.5 * np.mean(np.sign(d))
    assert lo < p < hi


def test_row_criterion_covariance_changes_P():
    """Why row "criterion covariance" matters: d = 10, N = 20, T = 2, 80 training sets, one
    reference set of 2000 points (reduced from 10^4 for speed; shared, so the comparison is paired:
    the same sets and noise draws): v B^T B (LDM.py) gives a P well above v B B^T (measured 0.69
    vs 0.39 here; 0.70 / 0.45 and 0.80 / 0.35 on seeds 1, 2; with n_ref = 10^4 and 400 sets
    0.84 vs 0.50, 138 of 400 sets changing sign)."""
    kw = dict(fit="official", n_ref=2000, reference="shared")
    p_t = lm.generalization_probability(20, 10, 80, 0, T, covariance="BtB", **kw)
    p_b = lm.generalization_probability(20, 10, 80, 0, T, covariance="BBt", **kw)
    assert p_t - p_b > 0.15
    assert p_t > 0.6 and p_b < 0.55


def test_row_hellinger_like_distance_th_where_c_det_does_not_act():
    """Row "squared Hellinger distance": where det(v B^T B) > e^{-25} (d = 3, N = 50) LDM.py's
    `distance_th` equals memphase `hellinger_squared` on the BtB law; at d = 100 the official law
    tends to 0.505 I (det ~ e^{-68}), so `c_det` zeroes it and LDM.py prints 1 while memphase
    gives the exact value < 1 (the row's "differs")."""
    rng = np.random.default_rng(8)
    y = MEAN + rng.standard_normal((50, 3))
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=2)
    mu, sigma = _ldm_law(y, B, b0)
    mean, cov = lm.generated_law_official(B, b0, y, T)
    h2 = lm.hellinger_squared(mean, cov, np.full(3, MEAN), STD**2 * np.eye(3))
    assert h2 == pytest.approx(_ldm_hellinger(mu, sigma), rel=1e-10)
    y = MEAN + rng.standard_normal((400, 100))
    B, b0 = lm.fit_linear_denoiser_official(y, T, seed=3)
    mu, sigma = _ldm_law(y, B, b0)
    mean, cov = lm.generated_law_official(B, b0, y, T)
    assert _ldm_hellinger(mu, sigma) == 1.0
    assert lm.hellinger_squared(mean, cov, np.full(100, MEAN), np.eye(100)) < 1.0


def test_row_experiment_defaults_to_the_official_protocol():
    """Rows "reference set", "criterion covariance" through the experiment: the [H24] experiment's
    defaults are reference = "fresh", generated_covariance = "BtB", and one cell
    (official fit, d = 6, N = 10, n_ref = 300, 8 sets, data mean 10) reproduces the LDM.py
    pipeline re-derived on the cell's own draws (SeedSequence([seed, N, d]); per set: training
    set, noise, the symmetric criterion's fresh set, the fresh reference set)."""
    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import linear_model as exp

    n, d, R, n_ref, seed = 10, 6, 8, 300, 2
    cfg = validate({"job": "linear_model", "data": {"mean": MEAN},
                    "grid": {"n_train": [n], "d": [d], "T": [T], "fit": ["official"],
                             "seeds": [seed]},
                    "measure": {"repeats": R, "n_ref": n_ref, "expected_kl_repeats": 0,
                                "mc_n_train": []}}, exp.SCHEMA)
    assert cfg["measure"]["reference"] == "fresh"
    assert cfg["measure"]["generated_covariance"] == "BtB"
    bare = validate({"job": "linear_model"}, exp.SCHEMA)["grid"]
    assert bare["fit"][0] == "official" and "expectation" in bare["fit"]  # ours beside
    assert bare["T"] == [T]  # LDM.py's diffusion time
    out = exp.run_cell(cfg, {"n_train": n, "d": d, "T": T, "fit": "official", "seed": seed})
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, d]).spawn(3)[0])
    own = []
    for _ in range(R):
        y = MEAN + rng.standard_normal((n, d))
        z = rng.standard_normal((n, d))
        rng.standard_normal((n, d))  # the symmetric criterion's fresh set
        ref = MEAN + rng.standard_normal((n_ref, d))
        own.append(_ldm_relative_delta(y, -z, ref))
    assert out["p_generalizing"] == 0.5 + 0.5 * np.mean(np.sign(own))
    assert out["reference_delta_mean"] == pytest.approx(np.mean(own), rel=1e-6, abs=1e-12)
    assert out["p_generalizing_low"] <= out["p_generalizing"] <= out["p_generalizing_high"]


def test_row_translation_equivariance_of_mean_zero_configs():
    """Row "data mean" of the canonical configs (mean 0 instead of LDM.py's 10): every per-set
    statistic of the official model is unchanged by the shift (same draws), so P is the same."""
    kw = dict(fit="official", n_ref=300, return_deltas=True)
    _, a = lm.generalization_probability(20, 5, 10, 7, T, data_mean=0.0, **kw)
    _, b = lm.generalization_probability(20, 5, 10, 7, T, data_mean=MEAN, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_row_validate_uses_the_official_protocol():
    """Row "validate": `linear_model_checks` runs the official protocol (v B^T B, fresh reference
    per set) and its interval contains its P (reduced: 10 sets, n_ref = 300)."""
    from memphase.simulate.cli.validate_papers import linear_model_checks

    rows = linear_model_checks(10, 300)
    ref = rows[0]
    assert "fresh reference" in ref.setting and "B^T B" in ref.setting
    assert ref.ci[0] <= ref.measured <= ref.ci[1]
