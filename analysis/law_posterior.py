"""Posterior of the data law itself, the reference of the law-normalized ratio [ALD24].

The posterior-variance ratio of `memphase.analysis.posterior_variance` divides by the posterior
variance of a Gaussian of the law's covariance, tau v / (v + tau). Unit-sphere data are not
Gaussian: near the centre of the sphere the law's own posterior is wider than the Gaussian one
(at the exact origin it is the prior, variance v, so rho = 1 + v / tau for the law itself, at any
N). A memorization signature must therefore compare the empirical posterior with the posterior of
the same law (Achilli et al., *Losing dimensions*, arXiv 2410.08727; docs/theory.md):

    rho_law,u = u^T Cov_w[y | x] u / u^T Cov_law[y | x] u,

the ratio of the finite-N posterior (softmax over the N training points) to the N -> infinity
one. Both posteriors are p(y | u) ∝ p(y) exp(-|u - y|^2 / (2 tau)) (u = x / m in data units,
tau the data-scale noise variance); the empirical one with p the training set, the law's with p
the law. For z ~ N(0, diag(s^2)) and y = z / |z| the law is the angular central Gaussian, density
on the sphere ∝ (y^T S^-1 y)^(-d/2).

`law_posterior_variances` integrates the law's posterior by self-normalized importance
sampling with the law as proposal: M fresh draws y_k of the law, weights softmax_k(u.y_k / tau -
|y_k|^2 / (2 tau)) (the empirical posterior of M fresh points, M >> N), in B independent batches;
the error is the spread of the batch estimates, and the effective sample size (sum w)^2 / sum w^2
says when it fails (ESS ~ 1: the M-point estimate itself has condensed). At the exact origin the
law's posterior is its prior and the exact variances are used instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["LawPosterior", "law_posterior_variances"]


class LawPosterior:
    """Result of `law_posterior_variances`: variance (B, K) along each direction, its standard
    error `stderr` (B, K) from the spread of the batch estimates, and `ess` (B,) the effective
    sample size of the pooled weights."""

    def __init__(self, variance, stderr, ess):
        self.variance, self.stderr, self.ess = variance, stderr, ess


def _batch_moments(samples, u, tau, dirs, centre):
    """(log sum_k e^l, log sum_k e^{2l}, weighted first and second moments of the projections)
    for one batch of law samples (float64 torch)."""
    proj = (samples - centre) @ dirs                                   # (M_b, K)
    logits = (u @ samples.T - 0.5 * (samples * samples).sum(1)[None, :]) / tau  # (P, M_b)
    lse = torch.logsumexp(logits, dim=1)
    lse2 = torch.logsumexp(2.0 * logits, dim=1)
    w = torch.exp(logits - lse[:, None])
    return lse, lse2, w @ proj, w @ (proj * proj)


def law_posterior_variances(draw, u, tau: float, directions, *, n_samples: int = 2**18,
                            batches: int = 8, seed: int = 0, centre=None,
                            exact_at_origin=None) -> LawPosterior:
    """Posterior variance of the data law along each direction at data-unit points u (P, d).

    draw(n, seed) -> (n, d) float64 array of fresh samples of the law (`DataSample.draw`);
    n_samples law draws in `batches` batches of n_samples / batches, batch b drawn with seed
    seed + b (recorded by the caller). Self-normalized importance sampling with the law as
    proposal (module docstring): the pooled estimate combines the batches by their log masses;
    stderr = std over the batch estimates / sqrt(batches). exact_at_origin: (K,) the law's exact
    variances along the directions, used for points with u = 0 exactly (the posterior is the
    prior there; stderr 0, ess inf). Returns a LawPosterior with (P, K) arrays and ess (P,).
    """
    if n_samples < batches or batches < 2:
        raise ValueError(f"need batches >= 2 and n_samples >= batches, got {n_samples}, {batches}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    u = np.asarray(u, dtype=np.float64)
    if exact_at_origin is not None and np.all(u == 0.0):  # the posterior is the prior: no draws
        exact = np.broadcast_to(np.asarray(exact_at_origin, dtype=np.float64),
                                (u.shape[0], np.shape(directions)[1])).copy()
        return LawPosterior(exact, np.zeros_like(exact), np.full(u.shape[0], np.inf))
    x = torch.as_tensor(u)
    dirs = torch.as_tensor(np.asarray(directions, dtype=np.float64))
    d = x.shape[1]
    c = torch.zeros(d, dtype=torch.float64) if centre is None else torch.as_tensor(
        np.asarray(centre, dtype=np.float64))
    per = n_samples // batches
    lses, lse2s, m1s, m2s = [], [], [], []
    for b in range(batches):
        y = torch.as_tensor(np.asarray(draw(per, int(seed) + b), dtype=np.float64))
        lse, lse2, m1, m2 = _batch_moments(y, x, float(tau), dirs, c)
        lses.append(lse)
        lse2s.append(lse2)
        m1s.append(m1)
        m2s.append(m2)
    lse, lse2 = torch.stack(lses), torch.stack(lse2s)                  # (B, P)
    m1, m2 = torch.stack(m1s), torch.stack(m2s)                        # (B, P, K)
    total = torch.logsumexp(lse, dim=0)                                # (P,)
    wb = torch.exp(lse - total[None, :])[:, :, None]                   # batch weights
    mean = (wb * m1).sum(0)
    var = torch.clamp((wb * m2).sum(0) - mean * mean, min=0.0)
    per_batch = torch.clamp(m2 - m1 * m1, min=0.0)                     # (B, P, K)
    stderr = per_batch.std(dim=0) / math.sqrt(batches)
    ess = torch.exp(2.0 * total - torch.logsumexp(lse2, dim=0))
    var, stderr, ess = var.numpy(), stderr.numpy(), ess.numpy()
    if exact_at_origin is not None:
        origin = np.all(np.asarray(u) == 0.0, axis=1)
        if origin.any():
            var[origin] = np.asarray(exact_at_origin, dtype=np.float64)[None, :]
            stderr[origin] = 0.0
            ess[origin] = np.inf
    return LawPosterior(var, stderr, ess)
