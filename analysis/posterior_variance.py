"""Per-direction posterior-variance ratio and the two signatures of a lost direction [ALD24].

Tweedie: for any score, the posterior covariance of the clean point given the noisy one, in data
units (u = x / m, noise variance tau), is

    Cov[y | u] = tau (I + tau J_data),        J_data = m^2 grad_x s   (memphase.analysis.dimensions).

For the empirical score it is Cov_w(y), the softmax-weighted covariance of the training points.
Along a unit direction u of population variance v_u, the Gaussian (population) posterior variance
is tau v_u / (v_u + tau), and the ratio

    rho_u = u^T Cov[y|x] u / (tau v_u / (v_u + tau)) = (1 + tau u^T J_data u) (v_u + tau) / v_u

is exactly 1 for the population score of a Gaussian law, -> 0 when the posterior collapses onto
one training point (the [BBDM24] collapse, "collapse" signature: rho < 1/2) and >> 1 when it
spreads over a few far-apart training points (the enhanced singular value of the [ALD24] v_i term,
"excess" signature: rho > 2). [ALD24] Achilli et al., arXiv 2410.08727; docs/theory.md.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "SIGNATURES",
    "variance_ratio",
    "empirical_posterior_variances",
    "signature_fraction",
    "signature_critical_tau",
]

#: signature name -> (test on rho, rule in words)
SIGNATURES = {
    "collapse": (lambda rho: rho < 0.5, "rho < 1/2 (posterior collapsed onto one training point)"),
    "excess": (lambda rho: rho > 2.0, "rho > 2 (posterior spread over far-apart training points)"),
}


def variance_ratio(jac_diag, tau, variances) -> np.ndarray:
    """rho_u = (1 + tau J_uu)(v_u + tau) / v_u from the data-unit Jacobian diagonal J_uu = u^T J u
    (Tweedie, module docstring); = 1 for the population score of a Gaussian law. Broadcasts
    jac_diag (..., D) against variances (D,); tau a scalar or broadcastable."""
    j = np.asarray(jac_diag, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(v <= 0):
        raise ValueError("variances must be > 0 for the variance ratio")
    return (1.0 + tau * j) * (v + tau) / v


def empirical_posterior_variances(train, u, tau, directions) -> np.ndarray:
    """u_k^T Cov_w(y) u_k for the empirical score at data-unit points u (B, d), float64 [BBDM24]:

        w = softmax_n((u . y_n - |y_n|^2 / 2) / tau),   Cov_w along u_k = sum_n w_n c_nk^2 - (sum_n w_n c_nk)^2,

    c_nk = (y_n - ybar) . u_k the projections centred on the training mean (logits relative to the
    row maximum inside softmax). Two (B, N) x (N, K) matmuls: O(N d) per point instead of the
    O(N d^2) full Jacobian. Absolute error ~1e-16 max|c|^2, negligible against the Gaussian posterior
    variance tau v / (v + tau) that rho divides by for tau >> 1e-14. train (N, d), directions
    (d, K) orthonormal columns. Returns (B, K).
    """
    y = torch.as_tensor(train).to(torch.float64)
    x = torch.as_tensor(u).to(torch.float64)
    dirs = torch.as_tensor(np.asarray(directions, dtype=np.float64), device=y.device)
    proj = (y - y.mean(0)) @ dirs                                    # (N, K), centred
    logits = (x @ y.T - 0.5 * (y * y).sum(1)[None, :]) / float(tau)  # (B, N)
    w = torch.softmax(logits, dim=1)
    mean = w @ proj
    return torch.clamp(w @ (proj * proj) - mean * mean, min=0.0).cpu().numpy()


def signature_fraction(rho, direction_block, blocks, signature: str,
                       resolved: bool = False) -> np.ndarray:
    """Fraction of each block's (point, direction) pairs carrying `signature` ("collapse":
    rho < 1/2; "excess": rho > 2). rho (T, P, D); returns (T, n_blocks), nan for an empty block.
    resolved=True counts only the pairs where rho is not nan (nan where none is)."""
    if signature not in SIGNATURES:
        raise ValueError(f"signature must be one of {sorted(SIGNATURES)}, got {signature!r}")
    test = SIGNATURES[signature][0]
    rho = np.asarray(rho, dtype=np.float64)
    direction_block = np.asarray(direction_block)
    out = np.full((rho.shape[0], len(blocks)), np.nan)
    for j, b in enumerate(blocks):
        mask = direction_block == b
        if mask.any() and resolved:
            sub = rho[:, :, mask]
            ok = ~np.isnan(sub)
            hits = np.sum(test(np.where(ok, sub, 1.0)) & ok, axis=(1, 2))
            cnt = np.sum(ok, axis=(1, 2))
            out[:, j] = np.where(cnt > 0, hits / np.maximum(cnt, 1), np.nan)
        elif mask.any():
            out[:, j] = test(rho[:, :, mask]).mean(axis=(1, 2))
    return out


def on_log_tau_grid(taus, values, name: str):
    """(log tau ascending, values (T, k) in that order, squeeze) for per-block fractions on a tau
    grid: taus (T,) positive with T >= 2, values (T,) or (T, k); `squeeze` says values were (T,).
    The shared input rule of the critical-tau estimators (`signature_critical_tau`,
    `memphase.analysis.dimensions.critical_tau_per_block`)."""
    taus = np.asarray(taus, dtype=np.float64)
    frac = np.asarray(values, dtype=np.float64)
    squeeze = frac.ndim == 1
    frac = frac[:, None] if squeeze else frac
    if taus.ndim != 1 or taus.size < 2 or frac.shape[0] != taus.size:
        raise ValueError(f"taus must be (T,) with T >= 2 and {name} (T, ...), got {taus.shape} "
                         f"and {np.shape(values)}")
    if np.any(taus <= 0):
        raise ValueError("taus must be positive")
    order = np.argsort(taus)
    return np.log(taus[order]), frac[order], squeeze


def signature_critical_tau(taus, fraction) -> np.ndarray:
    """A block's critical tau: the largest tau at which more than half of its (point, direction)
    pairs carry the signature [ALD24 protocol, docs/theory.md].

    fraction (T,) or (T, n_blocks) on the grid taus (T,). Refined between grid points: the 1/2
    crossing, linear in log tau, between the largest grid tau with fraction > 1/2 and the next one
    up. nan when no grid tau has fraction > 1/2; +inf when the largest grid tau already does (the
    critical tau lies above the grid).
    """
    lt, frac, squeeze = on_log_tau_grid(taus, fraction, "fraction")
    out = np.full(frac.shape[1], np.nan)
    for j in range(frac.shape[1]):
        f = frac[:, j]
        hits = np.nonzero(f > 0.5)[0]
        if hits.size == 0:
            continue
        i = hits[-1]
        if i == f.size - 1:
            out[j] = np.inf
            continue
        w = (f[i] - 0.5) / (f[i] - f[i + 1])
        out[j] = math.exp(lt[i] + w * (lt[i + 1] - lt[i]))
    return out[0] if squeeze else out
