"""Memorization observables on generated samples: nearest training points, the memorization
ratio of [GDPLLW23], the collapse fraction of [BDKOS25], and per-block variance [ALD24]."""

from __future__ import annotations

import numpy as np
import torch

from memphase.simulate.base.rowselect import STRIP, row_topk

__all__ = [
    "nearest_neighbors",
    "memorization_ratio",
    "highest_over_checkpoints",
    "collapse_fraction",
    "block_variance",
]

# Elements of one (query chunk, training chunk) distance block.
_BLOCK = 1 << 22


def _as_tensor(x, like=None) -> torch.Tensor:
    x = getattr(x, "x", x)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor or array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"expected shape (B, d), got {tuple(x.shape)}")
    if like is not None:
        x = x.to(dtype=like.dtype, device=like.device)
    return x


def nearest_neighbors(x, train, k: int = 2, chunk: int | None = None):
    """The k nearest training points of each sample: (distances (B, k), indices (B, k)).

    |x - y|^2 - |x|^2 = [x, 1] . [-2 y, |y|^2] by ONE chunked matmul of augmented matrices
    (O(B k) memory beyond one (B, chunk) block), the k smallest per chunk by
    `memphase.simulate.base.rowselect.row_topk`, then exact distances recomputed on the k winners (no
    cancellation in the returned values). The default chunk is a whole number of row_topk strips.
    """
    x = _as_tensor(x)
    y = _as_tensor(train, like=x)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples have d = {x.shape[1]} but the training set has d = {y.shape[1]}")
    n = y.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the training-set size {n}, got {k}")
    b = x.shape[0]
    if not chunk:
        chunk = max(k, min(n, _BLOCK // max(b, 1)))
        if chunk > STRIP:
            chunk -= chunk % STRIP                         # whole strips for row_topk
    xq = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    keys = torch.cat([-2.0 * y, (y * y).sum(1, keepdim=True)], dim=1)
    buf = x.new_empty(b * min(chunk, n))
    best_d = x.new_full((b, k), torch.inf)
    best_i = torch.zeros(b, k, dtype=torch.long, device=x.device)
    for start in range(0, n, chunk):
        kc = keys[start:start + chunk]
        d2 = buf[:b * kc.shape[0]].view(b, kc.shape[0])
        torch.mm(xq, kc.T, out=d2)                         # |x - y|^2 - |x|^2
        dc, ic = row_topk(d2, min(k, kc.shape[0]), largest=False)
        cand_d = torch.cat([best_d, dc], 1)
        cand_i = torch.cat([best_i, ic + start], 1)
        order = torch.topk(cand_d, k, dim=1, largest=False).indices
        best_d = torch.gather(cand_d, 1, order)
        best_i = torch.gather(cand_i, 1, order)
    dist = torch.linalg.vector_norm(x[:, None, :] - y[best_i], dim=2)  # (B, k, d): k small
    order = torch.argsort(dist, dim=1)
    return torch.gather(dist, 1, order), torch.gather(best_i, 1, order)


def memorization_ratio(x, train, threshold: float = 1.0 / 3.0, per_sample: bool = False):
    """Fraction of samples with |x - NN_1| / |x - NN_2| < threshold [GDPLLW23] (1/3 by default).

    per_sample=True returns the boolean mask instead of the fraction.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    dist, _ = nearest_neighbors(x, train, k=2)
    mem = dist[:, 0] < threshold * dist[:, 1]
    return mem if per_sample else float(mem.double().mean())


def collapse_fraction(x, train, tol: float = 1e-2, per_sample: bool = False):
    """Fraction of samples with min_n |x - y_n| < tol [BDKOS25] (tol = 1e-2 by default)."""
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    dist, _ = nearest_neighbors(x, train, k=1)
    hit = dist[:, 0] < tol
    return hit if per_sample else float(hit.double().mean())


def block_variance(x, basis, block, n_blocks: int | None = None) -> np.ndarray:
    """Per-block variance of samples projected on each block's basis [ALD24]:

    v_b = (1/k_b) sum_{i in b} Var(x . e_i)   (mean variance per direction of block b).
    `basis` (d, d) orthonormal, `block` (d,) block index per column (-1: normal space, returned last).
    """
    x = _as_tensor(x).to(torch.float64)
    basis = np.asarray(basis, dtype=np.float64)
    block = np.asarray(block)
    if basis.shape != (x.shape[1], x.shape[1]) or block.shape != (x.shape[1],):
        raise ValueError(f"basis must be ({x.shape[1]}, {x.shape[1]}) and block ({x.shape[1]},), "
                         f"got {basis.shape} and {block.shape}")
    proj = (x @ torch.from_numpy(basis).to(x.device)).cpu().numpy()
    var = proj.var(axis=0)
    nb = n_blocks if n_blocks is not None else int(block.max()) + 1
    out = [var[block == b].mean() if np.any(block == b) else np.nan for b in range(nb)]
    if np.any(block < 0):
        out.append(var[block < 0].mean())
    return np.asarray(out)


def highest_over_checkpoints(ratios: dict) -> tuple[float, float]:
    """(highest ratio, its training step) over {step: memorization ratio}: the memorization ratio
    of a training recipe is the highest over its checkpoints, the official procedure of
    [GDPLLW23] Gu et al., "On memorization in diffusion models", arXiv 2310.02664 (ties: the
    earliest step)."""
    if not ratios:
        raise ValueError("need at least one checkpoint ratio")
    vals = {float(k): float(v) for k, v in ratios.items()}
    if any(not 0.0 <= v <= 1.0 for v in vals.values()):
        raise ValueError(f"memorization ratios must lie in [0, 1], got {sorted(vals.values())}")
    best = max(vals.values())
    return best, min(k for k, v in vals.items() if v == best)
