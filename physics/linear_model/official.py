"""The [H24] linear one-step model as the paper's official code fits it (Halder, arXiv 2411.17807,
code `LDM.py`), beside the exact-expectation fit of `memphase.physics.linear_model.fit_linear_denoiser`.

Differences from the expectation fit (docs/theory.md, "Solvable linear model ([H24])"):
- forward noise scaled by l = m^2 (= e^{-2T}):  x_n = m y_n + sqrt(l sigma^2) z_n,
  sigma^2 = 1 - e^{-2T}, m = e^{-T};
- ordinary least squares of y on x with intercept on ONE noise draw z_n per training point,
  D(x) = B x + beta_0 (the minimum-norm solution when N <= d, as scikit-learn's LinearRegression);
- generation from the forward marginal of the training set, x ~ N(m mu_N, v I) with
  v = m^2 mean_i Var_i(y) + l sigma^2 (unbiased per-coordinate variances), so the samples the
  model generates follow N(beta_0 + m B mu_N, v B B^T);
- but every distance of the official code (its criterion `distance` and its Hellinger distance
  `distance_th`) is evaluated with the covariance v B^T B (`sigma.t() @ sigma` with
  sigma = sqrt(v) B): same spectrum, other eigenvectors, and a different P(generalizing)
  (d = 10, N = 20, T = 2: about 0.84 with v B^T B, 0.50 with v B B^T; 138 of 400 training sets
  change sign). `generated_law_official(..., covariance="BtB")` (the default) reproduces the
  code, covariance="BBt" gives the law of the generated samples.
The model is translation-equivariant: the official data mean 10 * 1 changes nothing.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import _check_train, noise_scales

__all__ = ["official_noise_scales", "ols_denoiser", "fit_linear_denoiser_official",
           "generated_law_official", "official_large_n_limit", "COVARIANCES"]

#: covariance of the official fit's generated law in its distances: "BtB" = v B^T B, what the
#: official code `LDM.py` evaluates (default); "BBt" = v B B^T, the law of the generated samples
COVARIANCES = ("BtB", "BBt")


def official_noise_scales(T=None, m=None, sigma2=None) -> tuple[float, float]:
    """(m, l sigma^2) of the official [H24] forward noise x = m y + sqrt(l sigma^2) z with
    l = m^2 (= e^{-2T} for the OU kernel m = e^{-T}, sigma^2 = 1 - e^{-2T})."""
    m, sigma2 = noise_scales(T, m, sigma2)
    return m, m * m * sigma2


def ols_denoiser(noised, train) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary least squares of `train` (targets y_n) on `noised` (inputs x_n) with intercept:
    minimize sum_n |y_n - B x_n - beta_0|^2. With centred X_c, Y_c: B^T = X_c^+ Y_c (the
    minimum-norm solution when X_c has rank < d), beta_0 = mean(y) - B mean(x) [H24 official code,
    scikit-learn LinearRegression]. Returns (B (d, d), beta_0 (d,))."""
    y = _check_train(train, "train")
    x = _check_train(noised, "noised")
    if x.shape != y.shape:
        raise ValueError(f"noised must have the shape of train {y.shape}, got {x.shape}")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    coef_t, *_ = np.linalg.lstsq(x - x_mean, y - y_mean, rcond=None)
    B = coef_t.T
    return B, y_mean - B @ x_mean


def fit_linear_denoiser_official(train, T=None, seed=0, *, m=None, sigma2=None):
    """The official [H24] fit: one noise draw per point, x_n = m y_n + sqrt(m^2 sigma^2) z_n
    (z_n ~ N(0, I) from `seed`, an int or a numpy Generator), then OLS with intercept
    (`ols_denoiser`). Returns (B, beta_0)."""
    y = _check_train(train)
    m, noise_var = official_noise_scales(T, m, sigma2)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = m * y + math.sqrt(noise_var) * rng.standard_normal(y.shape)
    return ols_denoiser(x, y)


def generated_law_official(B, beta0, train, T=None, *, m=None, sigma2=None, covariance="BtB"):
    """Generated law of the official [H24] model: the prior N(m mu_N, v I),
    v = m^2 mean_i Var_i(y) + m^2 sigma^2 (unbiased variances of the training set), mapped by
    D(x) = B x + beta_0 gives samples of law N(beta_0 + m B mu_N, v B B^T).
    covariance="BtB" (default) returns the covariance v B^T B that the official code `LDM.py`
    evaluates all its distances with (`sigma.t() @ sigma`, sigma = sqrt(v) B); "BBt" returns
    v B B^T, the covariance of the generated samples. Returns (mean, cov)."""
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {', '.join(map(repr, COVARIANCES))}, "
                         f"got {covariance!r}")
    y = _check_train(train)
    n, d = y.shape
    B = np.asarray(B, dtype=np.float64)
    beta0 = np.asarray(beta0, dtype=np.float64)
    if B.shape != (d, d) or beta0.shape != (d,):
        raise ValueError(f"B must be ({d}, {d}) and beta0 ({d},), got {B.shape} and {beta0.shape}")
    if n < 2:
        raise ValueError("the official prior variance needs N >= 2 training points")
    m, noise_var = official_noise_scales(T, m, sigma2)
    v = m * m * float(np.mean(np.var(y, axis=0, ddof=1))) + noise_var
    cov = v * (B.T @ B if covariance == "BtB" else B @ B.T)
    return beta0 + m * (B @ y.mean(axis=0)), 0.5 * (cov + cov.T)


def official_large_n_limit(d, T=None, s=1.0, *, m=None, sigma2=None) -> tuple[float, float]:
    """N -> infinity limit of the official [H24] model's (KL, squared Hellinger distance) to the
    sampling law N(mu, s^2 I_d) (*derived*): C_N -> s^2 I gives B -> m s^2 / (m^2 s^2 + l sigma^2) I,
    v -> m^2 s^2 + l sigma^2, l = m^2, so the generated law is N(mu, r s^2 I) with
        r = s^2 / (s^2 + sigma^2)      (1 / (2 - e^{-2T}) for s = 1: 0.5046 at T = 2),
        KL -> (d/2) (r - 1 - log r),   H^2 -> 1 - [r^{1/4} / ((1 + r)/2)^{1/2}]^d.
    The l = e^{-2T} scaling makes the noise comparable to the signal at every T, so the model
    stays biased (r < 1/2 ... 1) at large N, unlike the expectation fit's r -> 1 as T -> 0."""
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be an integer >= 1, got {d}")
    m, sigma2 = noise_scales(T, m, sigma2)
    s = float(s)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"s must be finite and > 0, got {s}")
    r = s * s / (s * s + sigma2)
    kl = 0.5 * d * (r - 1.0 - math.log(r))
    log_bc = d * (0.25 * math.log(r) - 0.5 * math.log(0.5 * (1.0 + r)))
    return kl, float(-math.expm1(log_bc))
