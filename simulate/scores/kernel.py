"""Attention-shaped kernel of the empirical score: softmax over training points by streaming
log-sum-exp.

For queries x (B, d) and keys/values y_n (N, d), with per-query scalars a = m / v and
c = -m^2 / (2 v) (v the kernel variance, sigma^2 for the plain empirical score), the logits are

    l_bn = a_b x_b . y_n + c_b |y_n|^2  =  -(m^2 / 2v) |x_b / m - y_n|^2 + const_b     [docs/theory.md, Scores]

computed as ONE matmul of the augmented queries [a x, -s, c] (B, d+2) with the augmented keys
[y, 1, |y|^2] (N, d+2): the column of ones carries a per-row shift s into the matmul, so the
shifted logits l - s come out of BLAS without a separate subtraction pass. The training set is
streamed in chunks of rows; a running shift, a running sum of exponentials and a running weighted
sum of values are rescaled when the shift moves (the online softmax of flash attention). Memory is
O((B + N) d + B * chunk): no B x N x d tensor, and the B x N logits exist only one chunk at a time.

Fast path (no autograd). Per chunk: matmul, row max, exp2, row sum, matmul, all in place on ONE
preallocated (B, chunk) buffer (fresh 2-4 MiB blocks cost page faults). Why each choice
(measured in benchmarks/profile_kernel.py):
- logits in base 2 (a and c times log2 e), exponentials by `exp2`: about twice the throughput of
  `exp` on CPU (SLEEF); lse = ln 2 (s + log2 sum);
- the shift s is the row maximum of an EARLIER chunk: it moves (one extra in-place pass) only on
  the first chunk and when a row's chunk maximum exceeds s by more than `_SHIFT_SLACK` (2^32 of
  head room keeps sums and weighted sums finite in float32);
- the floor clamp before exp2 (needed: SLEEF is ~10x slower on underflowing inputs) is skipped when
  Cauchy-Schwarz bounds show no logit of the chunk can reach the floor (`_logit_lower_bounds`);
- the nearest index: with more than `_EAGER_ARGMAX_CHUNKS` chunks only the chunk holding each
  row's maximum is tracked (a max pass, ~3x cheaper than torch's argmax), and the argmax inside it
  is found once at the end (`_resolve_nearest`); with fewer, an argmax per chunk (`_row_argmax`);
- float64: a column-major accumulator for the second matmul (see `_mixture_stats_fast`).
The autograd path (an input requiring grad) keeps the plain out-of-place algorithm in natural log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..base.rowselect import STRIP, row_topk

__all__ = ["MixtureStats", "augment_keys", "mixture_stats", "mixture_second_moment",
           "default_chunk"]

# Elements of the (B, chunk) logits block: 2^19 = 2 MiB in float32, so that the passes over a
# block (max, exp, sum, second matmul) stay in cache; chunks of 256..1024 rows at B = 1024 are
# within noise of each other, larger ones are slower (benchmarks/profile_kernel.py).
LOGITS_BUDGET = 1 << 19
_LOG2E = 1.0 / math.log(2.0)
_LN2 = math.log(2.0)
# Shifted logits below this are raised to it before the exp: exp(-80) ~ 2e-35 (float32),
# exp(-700) ~ 1e-304 (float64) relative to the shift, far below rounding, but still a normal
# number. Without the clamp, SLEEF exp/exp2 take a ~10x slower path on inputs that underflow.
_EXP_FLOOR = {torch.float32: -80.0, torch.float64: -700.0, torch.float16: -15.0,
              torch.bfloat16: -80.0}
# The same floors in base 2 (exp2 of these is a normal number).
_EXP2_FLOOR = {k: v * _LOG2E for k, v in _EXP_FLOOR.items()}
# Up to this many chunks the nearest index comes from an argmax per chunk (~3x a max pass);
# beyond, from one recomputed block at the end (`_resolve_nearest`, ~1 matmul + 1 argmax pass).
_EAGER_ARGMAX_CHUNKS = 3
# Base-2 head room above the running shift before it is moved: exp2(32) ~ 4e9, so that sums of
# N <= 2^60 weights stay finite in float32.
_SHIFT_SLACK = 32.0


@dataclass
class MixtureStats:
    """Result of one streaming pass.

    lse:     (B,) log sum_n exp(l_bn)    (shift-form logits: add -|x|^2/(2v) for the absolute value)
    mean:    (B, d) softmax-weighted mean sum_n w_bn y_n
    nearest: (B,) index of the largest logit = nearest training point of x / m
    """

    lse: torch.Tensor
    mean: torch.Tensor
    nearest: torch.Tensor


def augment_keys(y: torch.Tensor) -> torch.Tensor:
    """[y, 1, |y|^2] of shape (N, d+2): keys, a column of ones (carries a per-row shift through the
    matmul) and the squared norms, in one matrix."""
    return torch.cat([y, torch.ones_like(y[:, :1]), (y * y).sum(dim=1, keepdim=True)],
                     dim=1).contiguous()


def default_chunk(batch: int, n: int) -> int:
    """Rows of the training set per chunk so that a (batch, chunk) block stays in LOGITS_BUDGET
    (a whole number of `memphase.simulate.base.rowselect` strips, at least 256)."""
    chunk = max(256, LOGITS_BUDGET // max(batch, 1))
    chunk -= chunk % STRIP              # whole strips for the row argmax (memphase.simulate.base.rowselect)
    return int(min(n, chunk))


def _column(x: torch.Tensor, v) -> torch.Tensor:
    """A python float or a (B,) / (B, 1) tensor as a (B, 1) column in x's dtype."""
    if isinstance(v, torch.Tensor):
        return v.to(x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
    return x.new_full((x.shape[0], 1), v)


def _augment_queries(x: torch.Tensor, a, c, shift=0.0) -> torch.Tensor:
    """[a x, -shift, c] of shape (B, d+2); a, c, shift python floats or (B,) / (B, 1) tensors."""
    return torch.cat([x * a, -_column(x, shift), _column(x, c)], dim=1)


def _row_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max, argmax) along dim 1, equal to `logits.max(dim=1)` up to ties but several times
    faster on CPU (`memphase.simulate.base.rowselect.row_topk` with k = 1)."""
    val, idx = row_topk(logits, 1)
    return val[:, 0], idx[:, 0]


def _mixture_stats_autograd(x, keys_aug, a, c, chunk) -> MixtureStats:
    """Out-of-place streaming log-sum-exp (natural log) that autograd can differentiate."""
    b, d = x.shape
    n = keys_aug.shape[0]
    q = _augment_queries(x, a, c)
    floor = _EXP_FLOOR[x.dtype]
    run_max = x.new_full((b,), -torch.inf)
    run_sum = x.new_zeros(b)
    run_val = x.new_zeros(b, d)
    nearest = torch.zeros(b, dtype=torch.long, device=x.device)
    # The running maximum is a constant shift of the log-sum-exp, so it is detached: the gradient
    # of M + log sum exp(l - M) does not depend on M.
    for start in range(0, n, chunk):
        kc = keys_aug[start:start + chunk]
        logits = torch.mm(q, kc.T)
        cmax, cidx = _row_argmax(logits.detach())
        nearest = torch.where(cmax > run_max, cidx + start, nearest)
        new_max = torch.maximum(run_max, cmax)
        scale = torch.exp(run_max - new_max)
        p = torch.exp(torch.clamp(logits - new_max[:, None], min=floor))
        run_sum = run_sum * scale + p.sum(dim=1)
        run_val = run_val * scale[:, None] + p @ kc[:, :d]
        run_max = new_max
    return MixtureStats(lse=run_max + torch.log(run_sum), mean=run_val / run_sum[:, None],
                        nearest=nearest)


def _resolve_nearest(q, keys_aug, winner, chunk) -> torch.Tensor:
    """argmax_n l_bn given `winner`, the chunk that holds each row's maximum: rows sorted by
    winning chunk, one (rows, chunk) logits block per distinct chunk (together at most B x chunk
    logits, i.e. one extra block)."""
    order = torch.argsort(winner)
    chunks, counts = torch.unique_consecutive(winner[order], return_counts=True)
    q_sorted = q[order]
    found, row = [], 0
    for ci, cnt in zip(chunks.tolist(), counts.tolist()):
        start = ci * chunk
        _, idx = _row_argmax(torch.mm(q_sorted[row:row + cnt], keys_aug[start:start + chunk].T))
        found.append(idx + start)
        row += cnt
    nearest = torch.empty_like(winner)
    nearest[order] = torch.cat(found)
    return nearest


def _logit_lower_bounds(q, keys_aug, chunk) -> torch.Tensor:
    """(n_chunks, B) lower bounds of the unshifted logits of each row over each chunk:

        q_b . [y, 0, |y|^2] >= -|a_b x_b| R_k + min(c_b, 0) R_k^2,   R_k^2 = max_{n in chunk k} |y_n|^2

    (Cauchy-Schwarz). When bound - shift stays above the exp floor for every row, the chunk needs
    no clamp: at small d this replaces a pass over the (B, chunk) block by O(B) work."""
    d = q.shape[1] - 2
    n = keys_aug.shape[0]
    norms2 = keys_aug[:, d + 1]
    pad = (-n) % chunk
    if pad:
        norms2 = torch.cat([norms2, norms2[-1:].expand(pad)])
    r2 = norms2.view(-1, chunk).amax(dim=1)                # (n_chunks,)
    xa = torch.linalg.vector_norm(q[:, :d], dim=1)          # |a_b x_b|
    cneg = torch.clamp(q[:, d + 1], max=0.0)
    return -r2.sqrt()[:, None] * xa[None, :] + r2[:, None] * cneg[None, :]


def _mixture_stats_fast(x, keys_aug, a, c, chunk, host_checks: bool | None = None
                        ) -> MixtureStats:
    """In-place, base-2 streaming log-sum-exp (see the module docstring).

    host_checks (default: x on the CPU) lets the host skip the re-shift and the clamp of a chunk
    when they are not needed; it costs a device-to-host sync per chunk, so on accelerators the
    shift follows the running maximum and every chunk is clamped (cheap there)."""
    b, d = x.shape
    n = keys_aug.shape[0]
    q = _augment_queries(x, a * _LOG2E, c * _LOG2E)       # base-2 logits; column d holds -shift
    floor = _EXP2_FLOOR[x.dtype]
    checks = x.device.type == "cpu" if host_checks is None else bool(host_checks)
    buf = x.new_empty(b * min(chunk, n))
    shift = x.new_zeros(b)
    best = x.new_full((b,), -torch.inf)                    # absolute base-2 maximum so far
    # nearest index: with few chunks an argmax per chunk; with more, only the chunk holding the
    # maximum is tracked and the argmax inside it is resolved once at the end (one extra block)
    per_chunk_argmax = -(-n // chunk) <= _EAGER_ARGMAX_CHUNKS
    winner = torch.zeros(b, dtype=torch.long, device=x.device)   # nearest index, or its chunk
    run_sum = x.new_zeros(b)
    # float64: a column-major (B, d) accumulator makes BLAS run the second matmul transposed,
    # y^T p^T, which MKL's dgemm does ~2x faster for small d (no difference in float32)
    run_val = x.new_zeros(d, b).T if x.dtype == torch.float64 else x.new_zeros(b, d)
    lower = _logit_lower_bounds(q, keys_aug, chunk) if checks else None
    for ci, start in enumerate(range(0, n, chunk)):
        kc = keys_aug[start:start + chunk]
        logits = buf[:b * kc.shape[0]].view(b, kc.shape[0])
        torch.mm(q, kc.T, out=logits)                      # l - shift, base 2
        if per_chunk_argmax:
            cmax, cidx = _row_argmax(logits)
            winner = torch.where(cmax + shift > best, cidx + start, winner)
        else:
            cmax = logits.amax(dim=1)
            winner = torch.where(cmax + shift > best, ci, winner)
        best = torch.maximum(best, cmax + shift)
        if start == 0 or not checks or bool((cmax > _SHIFT_SLACK).any()):
            # move the shift up to this chunk's maximum: on chunk 0 everywhere, then where it
            # exceeds the shift by more than the slack (host checks) or at all (no host checks)
            if start == 0:
                delta = cmax
            elif checks:
                delta = torch.where(cmax > _SHIFT_SLACK, cmax, torch.zeros_like(cmax))
            else:
                delta = torch.clamp(cmax, min=0.0)
            logits.sub_(delta[:, None])
            if start > 0:                                  # (accumulators are still 0 on chunk 0)
                rescale = torch.exp2(-delta)
                run_sum.mul_(rescale)
                run_val.mul_(rescale[:, None])
            shift.add_(delta)
            q[:, d] = -shift
        if not checks or float((lower[ci] - shift).min()) < floor:
            logits.clamp_(min=floor)
        logits.exp2_()
        run_sum.add_(logits.sum(dim=1))
        run_val.addmm_(logits, kc[:, :d])
    del logits, buf                                        # the resolution needs one block
    nearest = winner if per_chunk_argmax else _resolve_nearest(q, keys_aug, winner, chunk)
    lse = _LN2 * (shift + torch.log2(run_sum))
    return MixtureStats(lse=lse, mean=(run_val / run_sum[:, None]).contiguous(), nearest=nearest)


def mixture_stats(x: torch.Tensor, keys_aug: torch.Tensor, a, c, chunk: int | None = None
                  ) -> MixtureStats:
    """Streaming softmax statistics of logits l = a x.y + c |y|^2 over the rows of `keys_aug`:

        lse_b = log sum_n exp(l_bn),  mean_b = sum_n softmax_n(l_b.) y_n,  nearest_b = argmax_n l_bn.

    x: (B, d); keys_aug: (N, d+2) from `augment_keys`; a, c: floats or (B, 1) tensors.
    Extra memory: the (B, d+2) queries, O(B d) accumulators and ONE (B, chunk) logits block,
    independent of N (tests/simulate/test_kernel_memory.py).
    """
    b, d = x.shape
    if keys_aug.shape[1] != d + 2:
        raise ValueError(f"keys_aug must have d + 2 = {d + 2} columns (from augment_keys), "
                         f"got {keys_aug.shape[1]}")
    n = keys_aug.shape[0]
    if n < 1:
        raise ValueError("keys_aug is empty: need at least one training point")
    chunk = default_chunk(b, n) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    chunk = min(chunk, n)
    grad = torch.is_grad_enabled() and (
        x.requires_grad or keys_aug.requires_grad
        or any(isinstance(v, torch.Tensor) and v.requires_grad for v in (a, c)))
    if grad:
        return _mixture_stats_autograd(x, keys_aug, a, c, chunk)
    return _mixture_stats_fast(x, keys_aug, a, c, chunk)


def mixture_second_moment(x: torch.Tensor, keys_aug: torch.Tensor, a, c, lse: torch.Tensor,
                          chunk: int | None = None) -> torch.Tensor:
    """Softmax-weighted second moment sum_n w_bn y_n y_n^T, shape (B, d, d), given the exact
    log-normalizer `lse` from `mixture_stats` (second pass; w_bn = exp(l_bn - lse_b) with the
    -lse shift carried by the keys' column of ones; chunks sized so that the (chunk, d^2) outer
    products stay in LOGITS_BUDGET).

    Not used for Jacobians: E_w[y y^T] - mu mu^T from this (uncentred, expanded-logit) moment
    cancels catastrophically at small noise; `memphase.simulate.scores.covariance.mixture_covariance` is the
    centred computation."""
    b, d = x.shape
    n = keys_aug.shape[0]
    q = _augment_queries(x, a, c, shift=lse)
    if chunk is None:
        chunk = int(max(1, min(n, LOGITS_BUDGET // max(b, d * d, 1))))
    out = x.new_zeros(b, d * d)
    for start in range(0, n, chunk):
        kc = keys_aug[start:start + chunk]
        y = kc[:, :d]
        w = torch.exp(q @ kc.T)
        outer = (y[:, :, None] * y[:, None, :]).reshape(y.shape[0], d * d)
        out += w @ outer
    return out.reshape(b, d, d)
