"""The solvable linear one-step diffusion model of [H24] (Halder, arXiv 2411.17807; docs/theory.md,
"Solvable linear model ([H24])").

Setting. Training set y_1..y_N in R^d drawn from the sampling law N(mu, S) (default N(0, s^2 I)).
Forward noising to diffusion time T: x_T = m y + sigma z, z ~ N(0, I), with the OU/VP kernel
m = e^{-T}, sigma^2 = 1 - e^{-2T} (or any m > 0, sigma^2 > 0 given directly). A one-step denoiser
D(x) = A x + b is fitted by least squares, L(A, b) = (1/N) sum_n E_z |y_n - A (m y_n + sigma z) - b|^2
(the exact expectation over the noise, given the training set). Generation maps the prior
x ~ N(0, I) through D, so the generated law is the Gaussian N(b, A A^T) and everything is exact.

Closed forms (*derived* from [H24]'s setting; mu_N, C_N the empirical mean and the biased empirical
covariance (1/N) sum_n (y_n - mu_N)(y_n - mu_N)^T):
    A = m C_N (m^2 C_N + sigma^2 I)^{-1},   b = (I - m A) mu_N                      (intercept=True)
    A = m M_N (m^2 M_N + sigma^2 I)^{-1},   b = 0,   M_N = (1/N) sum_n y_n y_n^T       (intercept=False)
A is symmetric and shares the eigenvectors of C_N; an eigenvalue lambda of C_N becomes
a(lambda) = m lambda / (m^2 lambda + sigma^2) in A and f(lambda) = a(lambda)^2 in the generated
covariance A A^T. Since a(0) = 0, rank(A A^T) = rank(C_N) = min(N - 1, d) (min(N, d) without
intercept): for too few training points the generated law lives on the affine hull of the training
set and KL(generated || sampling) is infinite.

The paper's official code fits the model differently (noise scaled by l = e^{-2T}, OLS on one noise
draw per point, prior matched to the training set): `fit="official"`, implemented in
`memphase.physics.linear_model.official`. The kernel-density distances of the generalization criterion and
the KL / squared Hellinger distance between Gaussians live in `memphase.physics.linear_model.criterion`; all
public names of both are importable from here.

This module is pure float64 numpy/scipy; the only functions that draw random numbers are the
Monte-Carlo helpers `fit_linear_denoiser_sampled`, `expected_kl`, `fit_generated_law` (official
fit) and `generalization_probability`, which take a seed, as [H24]'s averages and generalization
criterion are over training sets.

Measured (d = 10, `expected_kl`, 4000 repeats): the training-set average of the KL is largest at
the first finite size N = d + 1 (18.3 at T = 1, 10.7 at T = 0.3, 27.8 at T = 2) and falls
monotonically beyond it towards (d/2) phi(s^2) (`kl_large_n_limit`), i.e. the "peak near N ~ d"
of [H24] is the edge of the divergence at N <= d.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import (_check_int, _check_positive, _check_train, _sampling_law,
                     _vector_and_matrix, noise_scales)
from .criterion import (gaussian_kl, hellinger_squared, kde_bandwidth, kde_distance,
                        kde_l2_distance, log_kde_cross_overlap, log_kde_self_overlap,
                        reference_delta, relative_distance, sign_probability)
from .official import (COVARIANCES, fit_linear_denoiser_official,
                       generated_law_official,
                       official_large_n_limit, official_noise_scales, ols_denoiser)

__all__ = [
    "noise_scales",
    "empirical_moments",
    "fit_linear_denoiser",
    "fit_linear_denoiser_sampled",
    "generated_law",
    "kl_from_moments",
    "kl_generated_to_sampling",
    "kl_large_n_limit",
    "expected_kl",
    "fit_generated_law",
    "divergences_to_sampling",
    "generalization_probability",
    "FITS",
    "CRITERIA",
    "REFERENCES",
]

FITS = ("expectation", "official")
CRITERIA = ("reference", "symmetric")
#: reference set of the [H24] criterion: "fresh" = n_ref new samples per training set (the
#: official code `LDM.py`), "shared" = one set for all training sets of a call (cheaper; every P
#: then carries that one draw's luck)
REFERENCES = ("fresh", "shared")


# ---------------------------------------------------------------------------------------------
# the fit and the generated law
# ---------------------------------------------------------------------------------------------
def empirical_moments(train, intercept=True) -> tuple[np.ndarray, np.ndarray]:
    """(mu_N, C_N) of the training set [H24]: mu_N = (1/N) sum_n y_n and, with intercept,
    C_N = (1/N) sum_n (y_n - mu_N)(y_n - mu_N)^T (biased covariance); without intercept the raw
    second moment M_N = (1/N) sum_n y_n y_n^T. These are the only statistics the fit depends on."""
    y = _check_train(train)
    n = y.shape[0]
    mean = y.mean(axis=0)
    yc = y - mean if intercept else y
    cov = yc.T @ yc / n
    return mean, 0.5 * (cov + cov.T)


def _gain(lam, m, sigma2):
    """Eigenvalue map of the fit: a(lambda) = m lambda / (m^2 lambda + sigma^2) [H24] *derived*."""
    return m * lam / (m * m * lam + sigma2)


def _denoiser_from_moments(mean, cov, m, sigma2, intercept):
    d = cov.shape[0]
    # A = m C (m^2 C + sigma^2 I)^{-1}; C and (m^2 C + sigma^2 I)^{-1} commute, so solve() is exact.
    a = np.linalg.solve(m * m * cov + sigma2 * np.eye(d), m * cov)
    a = 0.5 * (a + a.T)
    b = mean - m * (a @ mean) if intercept else np.zeros(d)
    return a, b


def fit_linear_denoiser(train, T=None, m=None, sigma2=None, *, intercept=True):
    """Exact least-squares one-step denoiser D(x) = A x + b of [H24] (expectation over the noise).

    Minimizes L = (1/N) sum_n E_z |y_n - A (m y_n + sigma z) - b|^2. Setting dL/db = 0 and dL/dA = 0
    with E x = m mu_N, Cov x = m^2 C_N + sigma^2 I, Cov(y, x) = m C_N gives (*derived*)
        A = m C_N (m^2 C_N + sigma^2 I)^{-1},   b = (I - m A) mu_N,
    with C_N the biased empirical covariance. With intercept=False (b fixed to 0, appropriate for
    a zero-mean sampling law) C_N is replaced by the raw second moment M_N = (1/N) sum y_n y_n^T.
    Returns (A, b), A of shape (d, d) (symmetric), b of shape (d,).
    """
    m, sigma2 = noise_scales(T, m, sigma2)
    mean, cov = empirical_moments(train, intercept)
    return _denoiser_from_moments(mean, cov, m, sigma2, intercept)


def fit_linear_denoiser_sampled(train, T=None, draws=1000, seed=0, *, m=None, sigma2=None,
                                intercept=True):
    """Least-squares fit of D(x) = A x + b on explicit noise draws (Monte-Carlo check of [H24]).

    Each training point is noised `draws` times, x_{n,k} = m y_n + sigma z_{n,k}, and (A, b) solve
    min sum_{n,k} |y_n - A x_{n,k} - b|^2 (ordinary least squares, b = 0 if intercept=False).
    As draws -> infinity this converges to `fit_linear_denoiser` at rate (N draws)^{-1/2}.
    """
    y = _check_train(train)
    m, sigma2 = noise_scales(T, m, sigma2)
    draws = _check_int(draws, "draws")
    n, d = y.shape
    rng = np.random.default_rng(seed)
    targets = np.repeat(y, draws, axis=0)
    x = m * targets + math.sqrt(sigma2) * rng.standard_normal((n * draws, d))
    if intercept:
        x = np.hstack([x, np.ones((n * draws, 1))])
    coef, *_ = np.linalg.lstsq(x, targets, rcond=None)
    a = coef[:d].T
    b = coef[d] if intercept else np.zeros(d)
    return a, b


def generated_law(A, b, prior_cov=None):
    """Generated law of the one-step model [H24]: x ~ N(0, P) (P = I, the VP prior) mapped by
    D(x) = A x + b is Gaussian N(b, A P A^T). Returns (mean, cov)."""
    b, A = _vector_and_matrix(b, A, "b", "A")
    d = A.shape[0]
    if prior_cov is None:
        cov = A @ A.T
    else:
        P = np.asarray(prior_cov, dtype=np.float64)
        if P.shape != (d, d):
            raise ValueError(f"prior_cov must have shape ({d}, {d}), got {P.shape}")
        cov = A @ P @ A.T
    return b.copy(), 0.5 * (cov + cov.T)


# ---------------------------------------------------------------------------------------------
# KL divergence to the sampling law
# ---------------------------------------------------------------------------------------------
def kl_from_moments(mean, cov, T=None, *, m=None, sigma2=None, s=1.0, mu=None, S=None,
                    intercept=True, n=None) -> float:
    """Exact KL(generated || sampling) of [H24] from the training moments (mu_N, C_N).

    With C_N = U diag(lambda) U^T the generated law is N(b, U diag(f(lambda)) U^T),
    f(lambda) = (m lambda / (m^2 lambda + sigma^2))^2, b = (I - m A) mu_N, and for the sampling law
    N(mu, S) (default S = s^2 I)
        KL = 1/2 [ tr(S^{-1} Sigma_g) - d + (b - mu)^T S^{-1} (b - mu) + log det S - sum_i log f(lambda_i) ].
    If C_N is singular (always when N <= d with intercept, N < d without) the generated law is
    concentrated on the affine hull of the training set, a null set of the sampling law, so the
    generated law is not absolutely continuous and KL = +inf. `n` (optional, the training-set size)
    makes that rank condition structural; otherwise a zero eigenvalue is detected numerically
    (lambda <= 64 d eps lambda_max).
    """
    m, sigma2 = noise_scales(T, m, sigma2)
    mean, cov = _vector_and_matrix(mean, cov, "mean", "cov")
    d = cov.shape[0]
    mu, S, s = _sampling_law(d, s, mu, S)
    if n is not None:
        n = _check_int(n, "n")
        if n - int(bool(intercept)) < d:
            return math.inf
    lam, U = np.linalg.eigh(0.5 * (cov + cov.T))
    if lam[-1] <= 0 or lam[0] <= 64 * d * np.finfo(np.float64).eps * lam[-1]:
        return math.inf
    a = _gain(lam, m, sigma2)
    f = a * a
    b = mean - m * (U @ (a * (U.T @ mean))) if intercept else np.zeros(d)
    delta = b - mu
    logdet_g = float(np.sum(np.log(f)))
    if S is None:
        tr = float(np.sum(f)) / s**2
        maha = float(delta @ delta) / s**2
        logdet_s = 2.0 * d * math.log(s)
    else:
        L = np.linalg.cholesky(S)
        W = np.linalg.solve(L, U * np.sqrt(f))  # L^{-1} Sigma_g^{1/2}
        tr = float(np.sum(W * W))
        v = np.linalg.solve(L, delta)
        maha = float(v @ v)
        logdet_s = 2.0 * float(np.sum(np.log(np.diag(L))))
    return 0.5 * (tr - d + maha + logdet_s - logdet_g)


def kl_generated_to_sampling(train, T=None, s=1.0, *, m=None, sigma2=None, mu=None, S=None,
                             intercept=True) -> float:
    """Exact KL(generated || N(mu, S)) of the one-step linear model fitted to `train` [H24].

    KL = 1/2 [ tr(S^{-1} A A^T) - d + (b - mu)^T S^{-1} (b - mu) + log det S - log det(A A^T) ],
    A, b from `fit_linear_denoiser` (*derived*; see `kl_from_moments`). It is +inf for N <= d
    (intercept; N < d without), where rank(A A^T) = rank(C_N) < d, finite for N >= d + 1; its
    average over training sets is largest just above N = d (tiny eigenvalues of a square-ish
    Wishart matrix, -log f(lambda_min) large) and then falls monotonically in N [H24].
    """
    y = _check_train(train)
    mean, cov = empirical_moments(y, intercept)
    return kl_from_moments(mean, cov, T, m=m, sigma2=sigma2, s=s, mu=mu, S=S,
                           intercept=intercept, n=y.shape[0])


def kl_large_n_limit(n, d, T=None, s=1.0, *, m=None, sigma2=None, intercept=True):
    """Large-N expansion of the training-set average of the [H24] KL, sampling law N(0, s^2 I).

    *derived*: with r(l) = f(l)/s^2, phi(l) = r - 1 - log r, KL = 1/2 sum_i phi(lambda_i) + |b|^2/(2 s^2).
    Expanding phi around lambda = s^2 and using the Wishart moments of C_N
    (E tr(C_N - s^2 I) = -delta d s^2/N, E |C_N - s^2 I|_F^2 = d(d+1) s^4/N + O(d^2/N^2), delta = 1
    with intercept, 0 without) and E|b|^2 = d s^2 (1 - m a(s^2))^2 / N + O(d^2/N^2):
        E KL = (d/2) phi(s^2) + (1/N) [ d(d+1) s^4 phi''(s^2)/4 - delta d s^2 phi'(s^2)/2
                                       + delta (d/2) (sigma^2/(m^2 s^2 + sigma^2))^2 ] + O(d^3/N^2),
    phi' = u (r - 1), phi'' = (u' + u^2)(r - 1) + u^2, u = (log f)' = 2 sigma^2 / (l (m^2 l + sigma^2)),
    u' = -2/l^2 + 2 m^4/(m^2 l + sigma^2)^2, all at l = s^2. Leading behaviour in d/N:
    KL/d -> phi(s^2)/2 + (d/N) s^4 phi''(s^2)/4; the N -> infinity value (d/2) phi(s^2) is the bias
    of the one-step model at finite T (zero only if f(s^2) = s^2). n may be an array or inf.
    """
    m, sigma2 = noise_scales(T, m, sigma2)
    s = _check_positive(s, "s")
    d = _check_int(d, "d")
    n = np.asarray(n, dtype=np.float64)
    if np.any(~(n >= 1)):
        raise ValueError("n must be >= 1")
    lam = s * s
    den = m * m * lam + sigma2
    r = (m * lam / den) ** 2 / lam
    u = 2.0 * sigma2 / (lam * den)
    du = -2.0 / lam**2 + 2.0 * m**4 / den**2
    phi = r - 1.0 - math.log(r)
    dphi = u * (r - 1.0)
    ddphi = (du + u * u) * (r - 1.0) + u * u
    delta = 1.0 if intercept else 0.0
    c1 = (d * (d + 1) * lam**2 * ddphi / 4.0 - delta * d * lam * dphi / 2.0
          + delta * 0.5 * d * (sigma2 / den) ** 2)
    return 0.5 * d * phi + c1 / n


def expected_kl(n, d, T=None, repeats=1000, seed=0, s=1.0, *, m=None, sigma2=None, intercept=True,
                control_variate=True, return_stderr=False):
    """Monte-Carlo estimate of E_{training sets} KL(generated || N(0, s^2 I)) of [H24] at size n.

    *derived*: for y_n iid N(0, s^2 I) the fit depends only on (mu_N, C_N), which are independent
    with mu_N ~ N(0, s^2 I / N) and N C_N ~ Wishart_d(N - delta, s^2 I) (delta = 1 with intercept;
    without, C_N -> M_N and b = 0). By rotation invariance U^T mu_N is again N(0, s^2 I / N)
    independent of the spectrum lambda of C_N, so with a_i = a(lambda_i), f_i = a_i^2,
        KL = 1/2 sum_i [ f_i/s^2 - 1 - log(f_i/s^2) + (1 - m a_i)^2 g_i^2 / s^2 ],   g = U^T mu_N,
    and only the Wishart spectrum is drawn (Bartlett factor: d chi^2 and d(d-1)/2 normal numbers per
    repeat, independent of n). Returns +inf when N - delta < d (rank-deficient C_N, see
    `kl_generated_to_sampling`). With control_variate=True the exactly known
    E tr C_N = (N - delta) d s^2 / N is used as a control variate (same mean, smaller variance;
    O(1/repeats) bias from the fitted coefficient). return_stderr=True also returns the standard
    error of the estimate.
    """
    n, d = _check_int(n, "n"), _check_int(d, "d")
    repeats = _check_int(repeats, "repeats", lo=2)
    m, sigma2 = noise_scales(T, m, sigma2)
    s = _check_positive(s, "s")
    delta = 1 if intercept else 0
    dof = n - delta
    if dof < d:
        return (math.inf, 0.0) if return_stderr else math.inf
    rng = np.random.default_rng(seed)
    # Bartlett: W = L L^T ~ Wishart_d(dof, I), L_ii^2 ~ chi^2(dof - i), i = 0..d-1, L_ij ~ N(0,1) i > j
    L = np.zeros((repeats, d, d))
    il = np.tril_indices(d, -1)
    L[:, il[0], il[1]] = rng.standard_normal((repeats, il[0].size))
    L[:, np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(dof - np.arange(d), size=(repeats, d)))
    # eigenvalues of W = squared singular values of L
    lam = s * s * np.linalg.svd(L, compute_uv=False) ** 2 / n
    lam = np.maximum(lam, np.finfo(np.float64).tiny)
    a = _gain(lam, m, sigma2)
    r = a * a / (s * s)
    kl = 0.5 * np.sum(r - 1.0 - np.log(r), axis=1)
    if intercept:
        g2 = s * s * rng.standard_normal((repeats, d)) ** 2 / n
        kl = kl + 0.5 * np.sum((1.0 - m * a) ** 2 * g2, axis=1) / (s * s)
    if control_variate:
        tr = lam.sum(axis=1)
        var_tr = np.var(tr, ddof=1)
        beta = np.cov(kl, tr)[0, 1] / var_tr if var_tr > 0 else 0.0
        kl = kl - beta * (tr - dof * d * s * s / n)
    mean = float(np.mean(kl))
    if return_stderr:
        return mean, float(np.std(kl, ddof=1) / math.sqrt(repeats))
    return mean




# ---------------------------------------------------------------------------------------------
# the two fits side by side, divergences, and the generalization criterion
# ---------------------------------------------------------------------------------------------
def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def fit_generated_law(train, T=None, *, fit="expectation", m=None, sigma2=None, intercept=True,
                      seed=0, covariance="BtB"):
    """Generated law (mean, cov) of the [H24] model fitted to `train`.

    fit="expectation": exact least squares over the noise, N(b, A A^T) (`fit_linear_denoiser`,
    `generated_law`; prior N(0, I)); A is symmetric, so `covariance` changes nothing.
    fit="official": the paper's code (Halder, arXiv 2411.17807, `LDM.py`): noise scaled by l = m^2,
    OLS on one noise draw per point (from `seed`, an int or a Generator), prior N(m mu_N, v I),
    mean beta_0 + m B mu_N; covariance="BtB" (default) gives v B^T B, the covariance the code
    evaluates its distances with, "BBt" gives v B B^T, the law of the generated samples
    (`generated_law_official`). The official fit always has an intercept.
    """
    _check_choice(fit, "fit", FITS)
    _check_choice(covariance, "covariance", COVARIANCES)
    if fit == "expectation":
        return generated_law(*fit_linear_denoiser(train, T, m=m, sigma2=sigma2,
                                                  intercept=intercept))
    if not intercept:
        raise ValueError("fit='official' always fits an intercept (intercept must be True)")
    B, beta0 = fit_linear_denoiser_official(train, T, seed, m=m, sigma2=sigma2)
    return generated_law_official(B, beta0, train, T, m=m, sigma2=sigma2, covariance=covariance)


def divergences_to_sampling(gen_mean, gen_cov, s=1.0, mu=None, *, cov_factor=None):
    """(KL(generated || N(mu, s^2 I)), squared Hellinger distance to it) of a Gaussian generated
    law [H24]; KL = +inf and H^2 = 1 when the generated covariance is singular (N <= d).
    cov_factor: optional F with gen_cov = F F^T (e.g. sqrt(v) B of the official fit), whose
    singular values give log det gen_cov accurately when it is ill-conditioned (N ~ d + 1).
    See `gaussian_kl`, `hellinger_squared`."""
    gen_mean, gen_cov = _vector_and_matrix(gen_mean, gen_cov, "gen_mean", "gen_cov")
    d = gen_cov.shape[0]
    mu, _, s = _sampling_law(d, s, mu, None)
    cov = s * s * np.eye(d)
    return (gaussian_kl(gen_mean, gen_cov, mu, cov, cov1_factor=cov_factor),
            hellinger_squared(gen_mean, gen_cov, mu, cov, cov1_factor=cov_factor))


def generalization_probability(n, d, repeats, seed, T=None, *, m=None, sigma2=None, s=1.0,
                               intercept=True, smooth_generated=False, criterion="reference",
                               n_ref=10_000, fit="expectation", data_mean=0.0,
                               reference="fresh", covariance="BtB", return_deltas=False,
                               return_interval=False):
    """[H24] probability that the linear model generalizes, P = 1/2 + 1/2 E[sign Delta], over
    `repeats` training sets of n points of N(data_mean 1, s^2 I_d) (Monte Carlo from `seed`).

    criterion="reference" (default; the paper's, official code `LDM.py`, Halder, arXiv 2411.17807):
    Delta = D(p_gen, K_train) - D(p_gen, K_ref), D(p, K) = int K^2 - 2 int p K, K_ref the KDE of
    `n_ref` fresh samples; each KDE has the bandwidth of its own size, eps_X = s N_X^{-1/d}
    (`reference_delta`). reference="fresh" (default, as the official code): a new reference set
    for every training set; reference="shared": one for all repeats (its O(n_ref^2 d)
    self-overlap computed once; P then carries that one draw's luck).
    P -> 1 with N while N << n_ref; as N -> n_ref the two sets become alike and P erodes.

    criterion="symmetric" (this suite's earlier criterion, not the paper's): a fresh set of the
    same size n and one shared bandwidth s n^{-1/d} (`relative_distance`). The two KDEs are then
    exchangeable except that p_gen was fitted on the training set, which can only pull p_gen
    towards K_train: P tends to 1/2 from below as N grows, by construction.

    fit: "expectation" or "official", covariance: "BtB" (official default) or "BBt"
    (`fit_generated_law`); smooth_generated (symmetric only) compares p_gen * k_h with the KDEs.
    return_deltas=True also returns the per-set statistics (relative Delta, same sign as Delta);
    return_interval=True also returns the 95% Wilson interval (low, high) of P over the training
    sets (`sign_probability`), which includes the reference-set variance when reference="fresh".
    Draw order per training set: training set, official noise (official fit), then the fresh
    or reference set.
    """
    n, d = _check_int(n, "n"), _check_int(d, "d")
    repeats = _check_int(repeats, "repeats")
    _check_choice(criterion, "criterion", CRITERIA)
    _check_choice(fit, "fit", FITS)
    _check_choice(reference, "reference", REFERENCES)
    _check_choice(covariance, "covariance", COVARIANCES)
    noise_scales(T, m, sigma2)
    s = _check_positive(s, "s")
    n_ref = _check_int(n_ref, "n_ref")
    data_mean = float(data_mean)
    if not np.isfinite(data_mean):
        raise ValueError(f"data_mean must be finite, got {data_mean}")
    if smooth_generated and criterion == "reference":
        raise ValueError("smooth_generated applies to criterion='symmetric' only")
    if fit == "official" and (n < 2 or not intercept):
        raise ValueError("fit='official' needs n >= 2 and intercept=True")
    rng = np.random.default_rng(seed)

    def draw(k):
        return data_mean + s * rng.standard_normal((k, d))

    h = kde_bandwidth(n, d, s)
    shared = criterion == "reference" and reference == "shared"
    ref = log_self_ref = None
    if shared:
        ref = draw(n_ref)
        log_self_ref = log_kde_self_overlap(ref, kde_bandwidth(n_ref, d, s))
    deltas = np.empty(repeats)
    for r in range(repeats):
        train = draw(n)
        mean, cov = fit_generated_law(train, T, fit=fit, m=m, sigma2=sigma2, intercept=intercept,
                                      seed=rng, covariance=covariance)
        if criterion == "symmetric":
            deltas[r] = relative_distance(mean, cov, train, draw(n), h,
                                          smooth_generated=smooth_generated)
        else:
            deltas[r] = reference_delta(mean, cov, train, ref if shared else draw(n_ref), s=s,
                                        log_self_ref=log_self_ref)
    p, lo, hi = sign_probability(deltas)
    out = (p,)
    if return_deltas:
        out += (deltas,)
    if return_interval:
        out += ((lo, hi),)
    return out if len(out) > 1 else p
