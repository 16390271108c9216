"""The solvable linear one-step diffusion model of [H24] (SCIENCE.md section 4, last bullet).

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

This module is pure float64 numpy/scipy; the only functions that draw random numbers are the
Monte-Carlo helpers `fit_linear_denoiser_sampled`, `expected_kl` and `generalization_probability`,
which take a seed, as [H24]'s averages and generalization criterion are over training sets.

Measured (d = 10, `expected_kl`, 4000 repeats): the training-set average of the KL is largest at
the first finite size N = d + 1 (18.3 at T = 1, 10.7 at T = 0.3, 27.8 at T = 2) and falls
monotonically beyond it towards (d/2) phi(s^2) (`kl_large_n_limit`), i.e. the "peak near N ~ d"
of [H24] is the edge of the divergence at N <= d.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

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
    "kde_bandwidth",
    "kde_l2_distance",
    "relative_distance",
    "generalization_probability",
]


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def noise_scales(T=None, m=None, sigma2=None) -> tuple[float, float]:
    """(m, sigma^2) of the forward kernel x_T = m y + sigma z [H24]: either the OU/VP time T > 0,
    m = e^{-T}, sigma^2 = 1 - e^{-2T} (SCIENCE.md section 1), or m > 0 and sigma^2 > 0 directly."""
    if T is not None:
        if m is not None or sigma2 is not None:
            raise ValueError("give either T or (m, sigma2), not both")
        T = float(T)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"diffusion time T must be finite and > 0, got {T}")
        return math.exp(-T), -math.expm1(-2.0 * T)
    if m is None or sigma2 is None:
        raise ValueError("give the diffusion time T, or both m and sigma2")
    m, sigma2 = float(m), float(sigma2)
    if not np.isfinite(m) or m <= 0:
        raise ValueError(f"m must be finite and > 0, got {m}")
    if not np.isfinite(sigma2) or sigma2 <= 0:
        raise ValueError(f"sigma2 must be finite and > 0, got {sigma2}")
    return m, sigma2


def _vector_and_matrix(v, M, v_name: str, M_name: str, d: int | None = None):
    """float64 (v (d,), M (d, d)); d from M (which must be square) unless given, in which case
    v is checked first."""
    v = np.asarray(v, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    if d is None:
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"{M_name} must be a square (d, d) matrix, got shape {M.shape}")
        d = M.shape[0]
    if v.shape != (d,):
        raise ValueError(f"{v_name} must have shape ({d},), got {v.shape}")
    if M.shape != (d, d):
        raise ValueError(f"{M_name} must have shape ({d}, {d}), got {M.shape}")
    return v, M


def _check_train(train, name="train") -> np.ndarray:
    y = np.asarray(train, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"{name} must have shape (N, d), got shape {y.shape}")
    if y.shape[0] < 1:
        raise ValueError(f"{name} needs N >= 1 points, got N = {y.shape[0]}")
    if y.shape[1] < 1:
        raise ValueError(f"{name} needs dimension d >= 1, got d = {y.shape[1]}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains non-finite values")
    return y


def _check_positive(x, name) -> float:
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {x}")
    return x


def _check_int(n, name, lo=1) -> int:
    if isinstance(n, bool) or int(n) != n or int(n) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {n}")
    return int(n)


def _sampling_law(d, s=1.0, mu=None, S=None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(mu, S or None, s): S None means the isotropic S = s^2 I."""
    s = _check_positive(s, "s")
    mu = np.zeros(d) if mu is None else np.asarray(mu, dtype=np.float64)
    if mu.shape != (d,):
        raise ValueError(f"sampling mean mu must have shape ({d},), got {mu.shape}")
    if S is not None:
        S = np.asarray(S, dtype=np.float64)
        if S.shape != (d, d):
            raise ValueError(f"sampling covariance S must have shape ({d}, {d}), got {S.shape}")
        if not np.allclose(S, S.T, rtol=1e-12, atol=0):
            raise ValueError("sampling covariance S must be symmetric")
        if np.linalg.eigvalsh(S)[0] <= 0:
            raise ValueError("sampling covariance S must be positive definite")
    return mu, S, s


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
# distances to kernel density estimates (all Gaussian integrals)
# ---------------------------------------------------------------------------------------------
def kde_bandwidth(n, d, s=1.0) -> float:
    """Kernel bandwidth h = s N^{-1/d} of [H24]'s kernel density estimates (one point per
    volume s^d: the kernels just touch)."""
    n, d = _check_int(n, "n"), _check_int(d, "d")
    return _check_positive(s, "s") * n ** (-1.0 / d)


def _log_gauss(points, mean, cov):
    """log N(points_i; mean, cov) for each row, via a Cholesky factor (cov positive definite)."""
    d = cov.shape[0]
    L = np.linalg.cholesky(cov)
    v = np.linalg.solve(L, (points - mean).T)
    return (-0.5 * np.sum(v * v, axis=0) - np.sum(np.log(np.diag(L)))
            - 0.5 * d * math.log(2.0 * math.pi))


def _log_kde_self(points, h):
    """log int KDE^2 = log (1/N^2) sum_{i,j} N(y_i; y_j, 2 h^2 I)."""
    n, d = points.shape
    sq = np.sum(points * points, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)
    return (logsumexp(-d2 / (4.0 * h * h)) - 2.0 * math.log(n)
            - 0.5 * d * math.log(4.0 * math.pi * h * h))


def _log_terms(gen_mean, gen_cov, points, h, smooth_generated):
    """(log int p^2 or inf, log int p KDE, log int KDE^2) with p the (optionally h-smoothed)
    generated law; uses int N(x; a, A) N(x; c, B) dx = N(a; c, A + B)."""
    n, d = points.shape
    eye = np.eye(d)
    k = 1.0 if smooth_generated else 0.0
    cross_cov = gen_cov + (1.0 + k) * h * h * eye
    log_cross = logsumexp(_log_gauss(points, gen_mean, cross_cov)) - math.log(n)
    self_cov = 2.0 * gen_cov + 2.0 * k * h * h * eye
    lam = np.linalg.eigvalsh(self_cov)
    if lam[0] <= 64 * d * np.finfo(np.float64).eps * max(lam[-1], 1.0):
        log_self = math.inf  # a singular Gaussian has no square-integrable density
    else:
        log_self = -0.5 * float(np.sum(np.log(lam))) - 0.5 * d * math.log(2.0 * math.pi)
    return log_self, log_cross, _log_kde_self(points, h)


def _check_law(gen_mean, gen_cov, points):
    points = _check_train(points, "points")
    d = points.shape[1]
    gen_mean, gen_cov = _vector_and_matrix(gen_mean, gen_cov, "gen_mean", "gen_cov", d)
    return gen_mean, 0.5 * (gen_cov + gen_cov.T), points


def kde_l2_distance(gen_mean, gen_cov, points, h, *, smooth_generated=False) -> float:
    """Squared L2 distance between the generated Gaussian N(b, Sigma_g) and the Gaussian KDE
    K(x) = (1/N) sum_n N(x; y_n, h^2 I) of `points` [H24]:
        |p - K|^2 = N(0; 0, 2 Sigma_g) - (2/N) sum_n N(y_n; b, Sigma_g + h^2 I)
                    + (1/N^2) sum_{n,n'} N(y_n; y_n', 2 h^2 I),
    from int N(x; a, A) N(x; c, B) dx = N(a; c, A + B). It is +inf if Sigma_g is singular (no
    square-integrable density). smooth_generated=True compares p * k_h = N(b, Sigma_g + h^2 I) with
    the KDE instead (a Gaussian-kernel MMD, always finite).
    """
    gen_mean, gen_cov, points = _check_law(gen_mean, gen_cov, points)
    h = _check_positive(h, "h")
    log_self, log_cross, log_kk = _log_terms(gen_mean, gen_cov, points, h, smooth_generated)
    if not np.isfinite(log_self):
        return math.inf
    return float(math.exp(log_self) - 2.0 * math.exp(log_cross) + math.exp(log_kk))


def relative_distance(gen_mean, gen_cov, train, fresh, h=None, *, s=1.0,
                      smooth_generated=False) -> float:
    """[H24] generalization statistic: (D_train - D_fresh) / (int K_train^2 + int K_fresh^2).

    D_X = |p_gen - K_X|^2 is the squared L2 distance of the generated law to the Gaussian KDE of the
    point set X (training set, or N fresh samples of the sampling law), bandwidth h = s N^{-1/d} by
    default. The int p_gen^2 term cancels in the difference, so the statistic stays finite when the
    generated covariance is singular (N < d):
        D_train - D_fresh = int K_t^2 - int K_f^2 - 2 [int p K_t - int p K_f].
    Positive: the generated law is farther from the training-set KDE than from a fresh KDE
    ("generalizing"); negative: closer to the training set ("memorizing").
    """
    gen_mean, gen_cov, train = _check_law(gen_mean, gen_cov, train)
    fresh = _check_train(fresh, "fresh")
    if fresh.shape[1] != train.shape[1]:
        raise ValueError(f"fresh must have d = {train.shape[1]} columns, got {fresh.shape[1]}")
    if h is None:
        h = kde_bandwidth(train.shape[0], train.shape[1], s)
    h = _check_positive(h, "h")
    _, lc_t, lk_t = _log_terms(gen_mean, gen_cov, train, h, smooth_generated)
    _, lc_f, lk_f = _log_terms(gen_mean, gen_cov, fresh, h, smooth_generated)
    top = max(lk_t, lk_f)  # work relative to the largest self term (no overflow at large d)
    kt, kf = math.exp(lk_t - top), math.exp(lk_f - top)
    ct, cf = math.exp(lc_t - top), math.exp(lc_f - top)
    return float((kt - kf - 2.0 * (ct - cf)) / (kt + kf))


def generalization_probability(n, d, repeats, seed, T=None, *, m=None, sigma2=None, s=1.0,
                               intercept=True, smooth_generated=False) -> float:
    """Fraction of training sets for which the [H24] model generalizes (Monte Carlo over sets):
    P[ D(p_gen, K_train) > D(p_gen, K_fresh) ], training and fresh sets of n points each from
    N(0, s^2 I), bandwidth h = s n^{-1/d}; see `relative_distance`. [H24] calls the regime
    generalizing when this probability tends to 1."""
    n, d = _check_int(n, "n"), _check_int(d, "d")
    repeats = _check_int(repeats, "repeats")
    m, sigma2 = noise_scales(T, m, sigma2)
    s = _check_positive(s, "s")
    rng = np.random.default_rng(seed)
    h = kde_bandwidth(n, d, s)
    wins = 0
    for _ in range(repeats):
        train = s * rng.standard_normal((n, d))
        fresh = s * rng.standard_normal((n, d))
        A, b = fit_linear_denoiser(train, m=m, sigma2=sigma2, intercept=intercept)
        mean, cov = generated_law(A, b)
        wins += relative_distance(mean, cov, train, fresh, h,
                                  smooth_generated=smooth_generated) > 0
    return wins / repeats
