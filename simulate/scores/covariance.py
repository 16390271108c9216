"""Posterior covariance of the empirical mixture from centred values: the Jacobian's kernel.

The Jacobian of every closed-form empirical score is built from the posterior (softmax-weighted)
covariance of the training points [BBDM24, arXiv 2402.18491; BDKOS25, arXiv 2501.15785]:

    w_bn = softmax_n(l_bn),  l_bn = -(m^2 / 2v) |x_b / m - y_n|^2,
    Cov_w(b) = sum_n w_bn (y_n - mu_b)(y_n - mu_b)^T,  mu_b = sum_n w_bn y_n.

At small noise (v -> 0) two cancellations ruin the textbook formula E_w[y y^T] - mu mu^T with the
expanded logits m x.y_n / v - m^2 |y_n|^2 / 2v of the score kernel: (i) the expanded logits are
O(|x||y| / v) and carry an absolute rounding error eps |x||y| / v, which becomes a relative error of
every weight (5e-6 at v = 1e-8, d = 512); (ii) Cov_w ~ (weight of the runner-up) |y_1 - y_2|^2 is
obtained as the difference of two O(|y|^2) matrices, and the result is then multiplied by m^2 / v.
Here instead (docs/theory.md, "Empirical-score Jacobian"):

- the logits come from the differences diff_bn = x_b / m - y_n (their rounding error is relative to
  |x / m - y_n|^2, which is small exactly for the points that carry weight), shifted by the row
  maximum, so that the weights are exact to a few ulps;
- the covariance is a two-pass, mean-centred sum: pass 1 accumulates sum_n w_bn diff_bn (an online
  softmax over chunks of training points), pass 2 sums w_bn (diff_bn - dbar_b)(diff_bn - dbar_b)^T
  with dbar_b = sum_n w_bn diff_bn, i.e. values centred on the weighted mean. Chunks whose weights
  all underflow to 0 (most of them at small noise) are skipped.

Cost: two elementwise passes over (B, chunk, d) differences plus one batched (d x chunk)(chunk x d)
product per chunk: O(B N d^2), like the second-moment pass it replaces. Memory: one (B, chunk, d)
block, chunk = `COV_BUDGET` / (B d) by default, and the (B, d, d) result. float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kernel import LOGITS_BUDGET, _augment_queries, augment_keys, mixture_stats

__all__ = ["CentredStats", "mixture_covariance", "COV_BUDGET", "EXPANDED_LIMIT"]

# Elements of one (B, chunk, d) block of differences (16 MiB in float64).
COV_BUDGET = 1 << 21
# The fast expanded path is used while k R^2 <= EXPANDED_LIMIT (k = m^2 / 2v, R the largest
# distance of x / m and of the training points to the training mean): its logits and its second
# moment then carry absolute errors ~ eps k R^2 ~ 2e-13, relative to a Jacobian of norm >= 1 / v.
EXPANDED_LIMIT = 1e3


@dataclass
class CentredStats:
    """Result of `mixture_covariance` (all float64).

    log_mass: (B,) log sum_n exp(l_bn) with the absolute logits l_bn = -(m^2 / 2v)|x_b/m - y_n|^2
    mean:     (B, d) weighted mean mu_b = sum_n w_bn y_n
    cov:      (B, d, d) weighted covariance sum_n w_bn (y_n - mu_b)(y_n - mu_b)^T (symmetric)
    offset:   (B, d) x_b / m - mu_b, computed from the differences (no cancellation)
    nearest:  (B,) argmin_n |x_b / m - y_n|
    """

    log_mass: torch.Tensor
    mean: torch.Tensor
    cov: torch.Tensor
    offset: torch.Tensor
    nearest: torch.Tensor


def _scaled_query(x: torch.Tensor, m, v):
    """u = x / m and k = m^2 / (2 v) as float64 (k a float or a (B, 1) column)."""
    k = m * m / (2 * v)
    if isinstance(k, torch.Tensor):
        k = k.to(torch.float64).reshape(-1, 1)
    mm = m.to(torch.float64).reshape(-1, 1) if isinstance(m, torch.Tensor) else m
    return x / mm, k


def mixture_covariance(x: torch.Tensor, y: torch.Tensor, m, v, chunk: int | None = None,
                       method: str = "auto") -> CentredStats:
    """Posterior weights, mean and covariance of the mixture (1/N) sum_n N(m y_n, v I) at x,
    computed from centred values (module docstring):

        w_bn ∝ exp(-(m^2 / 2v) |x_b/m - y_n|^2),  Cov_w = sum_n w_bn (y_n - mu_b)(y_n - mu_b)^T.

    x: (B, d) float64; y: (N, d) float64 on x's device; m, v: floats or (B, 1) tensors (scale and
    kernel variance); chunk: training points per block (default: from the memory budgets).
    method: "differences" (difference-form logits, two-pass mean-centred sum: exact at any noise),
    "expanded" (matmul logits and second moment about the training mean: the fast path, exact to
    ~1e-12 only while k (max|x/m - c| + max|y - c|)^2 <= `EXPANDED_LIMIT`, k = m^2 / 2v, c the
    training mean), or "auto" (expanded within that limit, else differences).
    """
    if x.dtype != torch.float64 or y.dtype != torch.float64:
        raise ValueError(f"mixture_covariance works in float64, got x {x.dtype}, y {y.dtype}")
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or y.shape[0] < 1:
        raise ValueError(f"need x (B, d) and y (N >= 1, d), got {tuple(x.shape)}, {tuple(y.shape)}")
    if method not in ("auto", "differences", "expanded"):
        raise ValueError(f"method must be 'auto', 'differences' or 'expanded', got {method!r}")
    u, k = _scaled_query(x, m, v)
    centre = y.mean(dim=0)
    if method == "auto":
        k_max = float(k.max()) if isinstance(k, torch.Tensor) else k
        reach = float(torch.linalg.vector_norm(u - centre, dim=1).max()
                      + torch.linalg.vector_norm(y - centre, dim=1).max())
        method = "expanded" if k_max * reach * reach <= EXPANDED_LIMIT else "differences"
    if method == "expanded":
        return _covariance_expanded(x, y, centre, m, v, chunk)
    return _covariance_differences(u, y, k, chunk)


def _covariance_differences(u, y, k, chunk) -> CentredStats:
    """The exact path: difference-form logits and a two-pass mean-centred covariance."""
    x = u
    b, d = x.shape
    n = y.shape[0]
    if chunk is None:
        chunk = max(1, COV_BUDGET // max(b * d, 1))
    chunk = int(min(max(int(chunk), 1), n))

    def logits_of(start):
        diff = u[:, None, :] - y[None, start:start + chunk, :]      # (B, C, d): x/m - y_n
        return diff, -k * (diff * diff).sum(dim=2)                   # (B, C)

    # pass 1: online softmax -> row maximum, normalizer, nearest index, sum_n w_bn diff_bn
    run_max = x.new_full((b,), -torch.inf)
    run_sum = x.new_zeros(b)
    run_diff = x.new_zeros(b, d)
    nearest = torch.zeros(b, dtype=torch.long, device=x.device)
    for start in range(0, n, chunk):
        diff, logits = logits_of(start)
        cmax, cidx = logits.max(dim=1)
        nearest = torch.where(cmax > run_max, cidx + start, nearest)
        new_max = torch.maximum(run_max, cmax)
        rescale = torch.exp(run_max - new_max)
        w = torch.exp(logits - new_max[:, None])
        run_sum = run_sum * rescale + w.sum(dim=1)
        run_diff = run_diff * rescale[:, None] + torch.bmm(w[:, None, :], diff)[:, 0]
        run_max = new_max
    dbar = run_diff / run_sum[:, None]                                # x/m - mu, centred
    # pass 2: the covariance of the differences about their weighted mean
    cov = x.new_zeros(b, d, d)
    for start in range(0, n, chunk):
        diff, logits = logits_of(start)
        w = torch.exp(logits - run_max[:, None]) / run_sum[:, None]
        keep = (w > 0).any(dim=0)
        n_keep = int(keep.sum())
        if n_keep == 0:
            continue
        if n_keep < w.shape[1]:
            diff, w = diff[:, keep], w[:, keep]
        cz = diff - dbar[:, None, :]
        cov += torch.bmm((cz * w[:, :, None]).transpose(1, 2), cz)
    cov = 0.5 * (cov + cov.transpose(1, 2))
    return CentredStats(log_mass=run_max + torch.log(run_sum), mean=u - dbar, cov=cov,
                        offset=dbar, nearest=nearest)


def _covariance_expanded(x, y, centre, m, v, chunk) -> CentredStats:
    """The fast path (well-conditioned noise levels): the streaming kernel on keys centred at the
    training mean c gives the log-normalizer; one more pass accumulates, with ONE normalizer,
    Z = sum_n e^{l_n - lse}, S1 = sum e^{..} (y_n - c), S2 = sum e^{..} (y_n - c)(y_n - c)^T as
    matmuls against the (chunk, d^2) outer products, and Cov = S2 / Z - (S1 / Z)(S1 / Z)^T."""
    b, d = x.shape
    n = y.shape[0]
    yc = y - centre
    keys = augment_keys(yc)
    mc = m if not isinstance(m, torch.Tensor) else m.to(torch.float64).reshape(-1, 1)
    xc = x - mc * centre                                    # m (x/m - c)
    a, c2 = m / v, -(m * m) / (2 * v)
    st = mixture_stats(xc, keys, a, c2)
    q = _augment_queries(xc, a, c2, shift=st.lse)
    if chunk is None:
        chunk = int(max(1, min(n, LOGITS_BUDGET // max(b, d * d, 1))))
    z = x.new_zeros(b)
    s1 = x.new_zeros(b, d)
    s2 = x.new_zeros(b, d * d)
    for start in range(0, n, chunk):
        kc = keys[start:start + chunk]
        yk = kc[:, :d]
        w = torch.exp(q @ kc.T)
        z += w.sum(dim=1)
        s1 += w @ yk
        s2 += w @ (yk[:, :, None] * yk[:, None, :]).reshape(yk.shape[0], d * d)
    mean_c = s1 / z[:, None]
    cov = s2.reshape(b, d, d) / z[:, None, None] - mean_c[:, :, None] * mean_c[:, None, :]
    cov = 0.5 * (cov + cov.transpose(1, 2))
    u, k = _scaled_query(x, m, v)
    uc = u - centre
    k_col = k[:, 0] if isinstance(k, torch.Tensor) else k
    log_mass = st.lse + torch.log(z) - k_col * (uc * uc).sum(dim=1)
    return CentredStats(log_mass=log_mass, mean=centre + mean_c, cov=cov, offset=uc - mean_c,
                        nearest=st.nearest)
