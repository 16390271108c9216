"""Distances of the [H24] linear model's generated law: kernel-density distances for the
generalization criterion, and the KL and squared Hellinger distance to the sampling law.

All are Gaussian integrals in closed form (docs/theory.md, "Solvable linear model ([H24])"), from
    int N(x; a, A) N(x; c, B) dx = N(a; c, A + B).
With K_X(x) = (1/N_X) sum_n N(x; y_n, h_X^2 I) the Gaussian kernel density estimate of a point set X
and p = N(b, Sigma_g) the generated law,
    int K_X^2   = (1/N_X^2) sum_{n,n'} N(y_n; y_n', 2 h_X^2 I)          (a double sum over centres),
    int p K_X   = (1/N_X)   sum_n N(y_n; b, Sigma_g + h_X^2 I),
    D(p, K_X)   = int K_X^2 - 2 int p K_X   (= |p - K_X|^2 - int p^2;
                                             [H24] Halder, arXiv 2411.17807, official `LDM.py`).
Everything is evaluated in the log domain (logsumexp) in float64; the double sum is done in
blocks of at most `block` x `block` pairs (memory O(block^2), not O(N^2)), upper-triangular blocks
only, so N = 10^4 centres cost 5e7 pair distances (one matmul per block).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .checks import _check_int, _check_positive, _check_train, _vector_and_matrix

__all__ = [
    "kde_bandwidth",
    "log_kde_self_overlap",
    "log_kde_cross_overlap",
    "kde_distance",
    "kde_l2_distance",
    "relative_distance",
    "reference_delta",
    "sign_probability",
    "gaussian_kl",
    "hellinger_squared",
]

_BLOCK = 512


def kde_bandwidth(n, d, s=1.0) -> float:
    """Kernel bandwidth h = s N^{-1/d} of [H24]'s kernel density estimates (one point per
    volume s^d: the kernels just touch). The official criterion uses it per set: N_train for the
    training set, n_ref for the reference set."""
    n, d = _check_int(n, "n"), _check_int(d, "d")
    return _check_positive(s, "s") * n ** (-1.0 / d)


def _log_gauss(points, mean, cov):
    """log N(points_i; mean, cov) for each row, via a Cholesky factor (cov positive definite)."""
    d = cov.shape[0]
    L = np.linalg.cholesky(cov)
    v = np.linalg.solve(L, (points - mean).T)
    return (-0.5 * np.sum(v * v, axis=0) - np.sum(np.log(np.diag(L)))
            - 0.5 * d * math.log(2.0 * math.pi))


def log_kde_self_overlap(points, h, *, block=_BLOCK) -> float:
    """log int K^2 = log (1/N^2) sum_{i,j} N(y_i; y_j, 2 h^2 I) of the Gaussian KDE of `points`
    (bandwidth h) [H24]. Blocked over pairs (memory O(block^2)), points centred on their mean
    before |y_i|^2 + |y_j|^2 - 2 y_i.y_j, diagonal exactly 0; cost N^2 d / 2 multiply-adds."""
    y = _check_train(points, "points")
    h = _check_positive(h, "h")
    block = _check_int(block, "block")
    n, d = y.shape
    y = y - y.mean(axis=0)
    sq = np.einsum("ij,ij->i", y, y)
    scale = 1.0 / (4.0 * h * h)
    parts = []
    for i0 in range(0, n, block):
        yi, si = y[i0:i0 + block], sq[i0:i0 + block]
        for j0 in range(i0, n, block):
            d2 = si[:, None] + sq[None, j0:j0 + block] - 2.0 * (yi @ y[j0:j0 + block].T)
            np.maximum(d2, 0.0, out=d2)
            if j0 == i0:
                np.fill_diagonal(d2, 0.0)
            d2 *= -scale
            top = float(d2.max())
            d2 -= top
            np.exp(d2, out=d2)
            parts.append(top + math.log(float(d2.sum())) + (0.0 if j0 == i0 else math.log(2.0)))
    return float(logsumexp(parts) - 2.0 * math.log(n) - 0.5 * d * math.log(4.0 * math.pi * h * h))


def log_kde_cross_overlap(gen_mean, gen_cov, points, h) -> float:
    """log int p K = log (1/N) sum_n N(y_n; b, Sigma_g + h^2 I), p = N(b, Sigma_g) [H24]
    (finite for singular Sigma_g: the h^2 I makes the sum positive definite)."""
    gen_mean, gen_cov, points = _check_law(gen_mean, gen_cov, points)
    h = _check_positive(h, "h")
    cov = gen_cov + h * h * np.eye(points.shape[1])
    return float(logsumexp(_log_gauss(points, gen_mean, cov)) - math.log(points.shape[0]))


def _log_self_gauss(cov) -> float:
    """log int N(x; b, cov)^2 dx = log N(0; 0, 2 cov), or +inf if cov is singular."""
    d = cov.shape[0]
    lam = np.linalg.eigvalsh(2.0 * cov)
    if lam[0] <= 64 * d * np.finfo(np.float64).eps * max(lam[-1], 1.0):
        return math.inf  # a singular Gaussian has no square-integrable density
    return -0.5 * float(np.sum(np.log(lam))) - 0.5 * d * math.log(2.0 * math.pi)


def _log_terms(gen_mean, gen_cov, points, h, smooth_generated):
    """(log int p^2 or inf, log int p K, log int K^2) with p the (optionally h-smoothed)
    generated law."""
    d = points.shape[1]
    p_cov = gen_cov + h * h * np.eye(d) if smooth_generated else gen_cov
    return (_log_self_gauss(p_cov), log_kde_cross_overlap(gen_mean, p_cov, points, h),
            log_kde_self_overlap(points, h))


def _check_law(gen_mean, gen_cov, points, name="points"):
    points = _check_train(points, name)
    d = points.shape[1]
    gen_mean, gen_cov = _vector_and_matrix(gen_mean, gen_cov, "gen_mean", "gen_cov", d)
    return gen_mean, 0.5 * (gen_cov + gen_cov.T), points


def kde_distance(gen_mean, gen_cov, points, h) -> float:
    """The official [H24] distance D(p, K) = int K^2 - 2 int p K between the generated Gaussian
    p = N(b, Sigma_g) and the Gaussian KDE of `points` with bandwidth h (the squared L2 distance
    without its int p^2 term, which cancels between sets; finite for singular Sigma_g).
    May under/overflow at large d: compare sets with `reference_delta` (log domain)."""
    gen_mean, gen_cov, points = _check_law(gen_mean, gen_cov, points)
    h = _check_positive(h, "h")
    return float(math.exp(log_kde_self_overlap(points, h))
                 - 2.0 * math.exp(log_kde_cross_overlap(gen_mean, gen_cov, points, h)))


def kde_l2_distance(gen_mean, gen_cov, points, h, *, smooth_generated=False) -> float:
    """Squared L2 distance between the generated Gaussian N(b, Sigma_g) and the Gaussian KDE
    K(x) = (1/N) sum_n N(x; y_n, h^2 I) of `points` [H24]:
        |p - K|^2 = N(0; 0, 2 Sigma_g) - (2/N) sum_n N(y_n; b, Sigma_g + h^2 I)
                    + (1/N^2) sum_{n,n'} N(y_n; y_n', 2 h^2 I).
    It is +inf if Sigma_g is singular (no square-integrable density). smooth_generated=True
    compares p * k_h = N(b, Sigma_g + h^2 I) with the KDE instead (a Gaussian-kernel MMD).
    """
    gen_mean, gen_cov, points = _check_law(gen_mean, gen_cov, points)
    h = _check_positive(h, "h")
    log_self, log_cross, log_kk = _log_terms(gen_mean, gen_cov, points, h, smooth_generated)
    if not np.isfinite(log_self):
        return math.inf
    return float(math.exp(log_self) - 2.0 * math.exp(log_cross) + math.exp(log_kk))


def _relative(lk_t, lc_t, lk_r, lc_r) -> float:
    """(D_t - D_r) / (int K_t^2 + int K_r^2) from the logs, relative to the largest self term."""
    top = max(lk_t, lk_r)
    kt, kr = math.exp(lk_t - top), math.exp(lk_r - top)
    ct, cr = math.exp(lc_t - top), math.exp(lc_r - top)
    return float((kt - kr - 2.0 * (ct - cr)) / (kt + kr))


def relative_distance(gen_mean, gen_cov, train, fresh, h=None, *, s=1.0,
                      smooth_generated=False) -> float:
    """Symmetric generalization statistic (this suite's earlier criterion, not [H24]'s):
    (D_train - D_fresh) / (int K_train^2 + int K_fresh^2), both KDEs with ONE bandwidth
    h = s N^{-1/d} (default) and `fresh` of the same size N as `train`.

    D_X = |p_gen - K_X|^2; the int p_gen^2 term cancels in the difference, so the statistic stays
    finite when the generated covariance is singular (N < d):
        D_train - D_fresh = int K_t^2 - int K_f^2 - 2 [int p K_t - int p K_f].
    Positive: the generated law is farther from the training-set KDE than from the fresh one.
    """
    gen_mean, gen_cov, train = _check_law(gen_mean, gen_cov, train, "train")
    fresh = _check_train(fresh, "fresh")
    if fresh.shape[1] != train.shape[1]:
        raise ValueError(f"fresh must have d = {train.shape[1]} columns, got {fresh.shape[1]}")
    if h is None:
        h = kde_bandwidth(train.shape[0], train.shape[1], s)
    h = _check_positive(h, "h")
    _, lc_t, lk_t = _log_terms(gen_mean, gen_cov, train, h, smooth_generated)
    _, lc_f, lk_f = _log_terms(gen_mean, gen_cov, fresh, h, smooth_generated)
    return _relative(lk_t, lc_t, lk_f, lc_f)


def reference_delta(gen_mean, gen_cov, train, reference, *, s=1.0, log_self_ref=None) -> float:
    """The official [H24] generalization statistic Delta = D(p, K_train) - D(p, K_ref), returned
    relative to (int K_train^2 + int K_ref^2) (same sign; Halder, arXiv 2411.17807, code `LDM.py`).

    D(p, K_X) = int K_X^2 - 2 int p K_X with the bandwidth of each set's own size,
    eps_X = s N_X^{-1/d} (N_train for the training set, N_ref for the reference set of fresh
    samples of the sampling law). Delta > 0: the generated law is farther from the training-set
    KDE than from the reference KDE ("generalizing"). `log_self_ref` (optional) is a precomputed
    `log_kde_self_overlap(reference, eps_ref)`, the only O(N_ref^2) term.
    """
    gen_mean, gen_cov, train = _check_law(gen_mean, gen_cov, train, "train")
    reference = _check_train(reference, "reference")
    n, d = train.shape
    if reference.shape[1] != d:
        raise ValueError(f"reference must have d = {d} columns, got {reference.shape[1]}")
    h_t, h_r = kde_bandwidth(n, d, s), kde_bandwidth(reference.shape[0], d, s)
    lk_r = log_kde_self_overlap(reference, h_r) if log_self_ref is None else float(log_self_ref)
    return _relative(log_kde_self_overlap(train, h_t),
                     log_kde_cross_overlap(gen_mean, gen_cov, train, h_t),
                     lk_r, log_kde_cross_overlap(gen_mean, gen_cov, reference, h_r))


def sign_probability(deltas, z=1.96) -> tuple[float, float, float]:
    """[H24] P = 1/2 + 1/2 mean(sign Delta) over training sets (Halder, arXiv 2411.17807, code
    `LDM.py`: `0.5 + 0.5 * np.mean(sign)`) and its Wilson score interval at z standard errors
    (z = 1.96: 95%), treating P as the fraction k / R of R independent sets with Delta > 0
    (a tie Delta = 0 counts 1/2):
        centre = (P + z^2 / 2R) / (1 + z^2 / R),
        half   = z / (1 + z^2 / R) sqrt(P (1 - P) / R + z^2 / 4R^2).
    The interval covers whatever varies from set to set: with a fresh reference set per training
    set (the official protocol) that includes the reference set's own draw; with one shared
    reference set it is conditional on that set. Returns (P, low, high)."""
    d = np.asarray(deltas, dtype=np.float64).ravel()
    if d.size < 1 or np.any(np.isnan(d)):
        raise ValueError("deltas must be a non-empty array without nan")
    z = _check_positive(z, "z")
    r = d.size
    p = float(0.5 + 0.5 * np.mean(np.sign(d)))
    den = 1.0 + z * z / r
    centre = (p + z * z / (2 * r)) / den
    half = z / den * math.sqrt(max(p * (1 - p), 0.0) / r + z * z / (4 * r * r))
    return p, max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------------------
# divergences between Gaussians (generated law vs sampling law)
# ---------------------------------------------------------------------------------------------
def _two_laws(mean1, cov1, mean2, cov2):
    mean1, cov1 = _vector_and_matrix(mean1, cov1, "mean1", "cov1")
    mean2, cov2 = _vector_and_matrix(mean2, cov2, "mean2", "cov2", cov1.shape[0])
    return mean1, 0.5 * (cov1 + cov1.T), mean2, 0.5 * (cov2 + cov2.T)


def _logdet_or_none(cov, factor=None):
    """log det of a symmetric PSD matrix, None if it is (numerically) singular. With `factor`
    F (cov = F F^T) the singular values of F are used: the test sigma_min > 64 d eps sigma_max
    then covers twice the dynamic range (cond(F)^2 = cond(cov))."""
    d = cov.shape[0]
    if factor is not None:
        sv = np.linalg.svd(np.asarray(factor, dtype=np.float64), compute_uv=False)
        if sv.shape != (d,) or sv[0] <= 0 or sv[-1] <= 64 * d * np.finfo(np.float64).eps * sv[0]:
            return None
        return 2.0 * float(np.sum(np.log(sv)))
    lam = np.linalg.eigvalsh(cov)
    if lam[-1] <= 0 or lam[0] <= 64 * d * np.finfo(np.float64).eps * lam[-1]:
        return None
    return float(np.sum(np.log(lam)))


def gaussian_kl(mean1, cov1, mean2, cov2, *, cov1_factor=None) -> float:
    """KL(N(m1, S1) || N(m2, S2)) = 1/2 [tr(S2^{-1} S1) - d + (m1 - m2)^T S2^{-1} (m1 - m2)
    + log det S2 - log det S1]; +inf if S1 is singular (not absolutely continuous), S2 must be
    positive definite. cov1_factor: optional square F with S1 = F F^T, for log det S1 from the
    singular values of F (ill-conditioned S1, e.g. the official [H24] fit at N = d + 1)."""
    mean1, cov1, mean2, cov2 = _two_laws(mean1, cov1, mean2, cov2)
    d = cov1.shape[0]
    try:
        L = np.linalg.cholesky(cov2)
    except np.linalg.LinAlgError:
        raise ValueError("cov2 must be positive definite") from None
    ld1 = _logdet_or_none(cov1, cov1_factor)
    if ld1 is None:
        return math.inf
    W = np.linalg.solve(L, cov1)
    tr = float(np.trace(np.linalg.solve(L.T, W)))
    v = np.linalg.solve(L, mean1 - mean2)
    ld2 = 2.0 * float(np.sum(np.log(np.diag(L))))
    return 0.5 * (tr - d + float(v @ v) + ld2 - ld1)


def hellinger_squared(mean1, cov1, mean2, cov2, *, cov1_factor=None) -> float:
    """Squared Hellinger distance H^2 = 1 - BC between N(m1, S1) and N(m2, S2), with the
    Bhattacharyya coefficient, S = (S1 + S2)/2, delta = m1 - m2,
        BC = det(S1)^{1/4} det(S2)^{1/4} / det(S)^{1/2} exp(-delta^T S^{-1} delta / 8);
    H^2 = 1 if either covariance is singular (mutually singular laws). In [0, 1]; it is the
    distance the official [H24] code reports (Halder, arXiv 2411.17807, `LDM.py`).
    cov1_factor as in `gaussian_kl`."""
    mean1, cov1, mean2, cov2 = _two_laws(mean1, cov1, mean2, cov2)
    ld1, ld2 = _logdet_or_none(cov1, cov1_factor), _logdet_or_none(cov2)
    if ld1 is None or ld2 is None:
        return 1.0
    S = 0.5 * (cov1 + cov2)
    L = np.linalg.cholesky(S)
    v = np.linalg.solve(L, mean1 - mean2)
    log_bc = (0.25 * (ld1 + ld2) - float(np.sum(np.log(np.diag(L)))) - float(v @ v) / 8.0)
    return float(-math.expm1(min(log_bc, 0.0)))
