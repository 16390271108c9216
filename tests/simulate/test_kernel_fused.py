"""The fast (no-autograd) path of the streaming kernel against a dense float64 softmax.

Claims: (1) base-2 logits + exp2 give lse, weighted mean and nearest index of the dense softmax
(float64 to 1e-12, float32 to float rounding) for any chunking, scalar or per-row (a, c);
(2) the lazy shift survives a row maximum that jumps by far more than the slack in a late chunk
(no overflow) and a first chunk far above all later ones (underflow handled by the clamp);
the nearest index from an argmax per chunk (few chunks) or resolved at the end (many);
(3) the accelerator branch (no host checks: shift every chunk, clamp always) equals the CPU branch;
(4) the Cauchy-Schwarz logit bounds that let the clamp be skipped are true lower bounds, and the
clamp is skipped exactly when they allow it; (5) fast path == autograd path; (6) the second
moment with the shift carried by the keys equals the dense one; (7) the same on CUDA if present.
"""

import math

import pytest
import torch

from memphase.simulate.scores import kernel
from memphase.simulate.scores.kernel import (augment_keys, mixture_second_moment, mixture_stats)



def _dense(x, y, a, c):
    """float64 reference: lse, softmax mean and argmax of l = a x.y + c |y|^2."""
    x, y = x.double(), y.double()
    a = a.double() if isinstance(a, torch.Tensor) else a
    c = c.double() if isinstance(c, torch.Tensor) else c
    logits = a * x @ y.T + c * (y * y).sum(1)[None, :]
    return torch.logsumexp(logits, 1), torch.softmax(logits, 1) @ y, logits.argmax(1), logits


def _problem(b, n, d, seed=0, spread=1.0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    x = y[torch.randint(0, n, (b,), generator=g)] + spread * torch.randn(
        b, d, generator=g, dtype=torch.float64)
    return x.to(device), y.to(device)


def _check(st, ref, dtype, lse_scale):
    lse, mean, nearest, _ = ref
    atol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(st.mean.double(), mean, rtol=0, atol=atol * mean.abs().max())
    torch.testing.assert_close(st.lse.double(), lse, rtol=0, atol=atol * lse_scale)
    assert torch.equal(st.nearest.cpu(), nearest.cpu())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [1, 33, 128, 256, 10**6])
def test_fast_path_equals_dense_softmax(device, dtype, chunk):
    x, y = _problem(b=50, n=700, d=7, spread=0.5, device=device)
    a, c = 3.0, -1.5
    ref = _dense(x, y, a, c)
    st = mixture_stats(x.to(dtype), augment_keys(y).to(dtype), a, c, chunk=chunk)
    _check(st, ref, dtype, ref[3].abs().max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_row_coefficients(dtype):
    """(B, 1) tensors a and c (per-sample times) of both signs."""
    x, y = _problem(b=40, n=300, d=5, seed=2)
    g = torch.Generator().manual_seed(3)
    a = (torch.rand(40, 1, generator=g, dtype=torch.float64) * 6 - 1)
    c = (torch.rand(40, 1, generator=g, dtype=torch.float64) * 4 - 3)
    ref = _dense(x, y, a, c)
    st = mixture_stats(x.to(dtype), augment_keys(y).to(dtype), a.to(dtype), c.to(dtype), chunk=64)
    _check(st, ref, dtype, ref[3].abs().max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("where", ["last", "first"])
@pytest.mark.parametrize("chunk", [128, 256])   # 4 chunks: nearest resolved at the end; 2: eager
def test_maximum_far_from_the_first_chunk(dtype, where, chunk):
    """The first chunk of training points sits 10 away from the rest; tiny variance v = 1e-3.
    Queries on points of the LAST chunk: the row maximum jumps by ~1e5 (base 2) after chunk 0,
    far beyond the slack and exp2's range (no overflow allowed). Queries on points of the FIRST
    chunk: every later logit underflows relative to the shift (the clamp must act)."""
    _, y = _problem(b=1, n=512, d=4, seed=4)
    y[:128] += 10.0
    x = (y[-16:] if where == "last" else y[:16]) + 1e-3
    v = 1e-3
    a, c = 1.0 / v, -1.0 / (2 * v)
    ref = _dense(x, y, a, c)
    gap = (ref[3][:, :128].amax(1) - ref[3][:, 128:].amax(1)).abs().min()
    assert gap > 1e4
    st = mixture_stats(x.to(dtype), augment_keys(y).to(dtype), a, c, chunk=chunk)
    assert torch.isfinite(st.lse).all() and torch.isfinite(st.mean).all()
    _check(st, ref, dtype, ref[3].abs().max())
    expected = torch.arange(512 - 16, 512) if where == "last" else torch.arange(16)
    assert torch.equal(st.nearest, expected)


@pytest.mark.parametrize("chunk", [32, 100])
def test_accelerator_branch_equals_host_checked_branch(chunk):
    x, y = _problem(b=30, n=640, d=6, seed=5, spread=0.3)
    keys = augment_keys(y)
    for a, c in [(2.0, -1.0), (300.0, -150.0)]:
        host = kernel._mixture_stats_fast(x, keys, a, c, chunk, host_checks=True)
        dev = kernel._mixture_stats_fast(x, keys, a, c, chunk, host_checks=False)
        torch.testing.assert_close(dev.lse, host.lse, rtol=1e-14, atol=0)
        torch.testing.assert_close(dev.mean, host.mean, rtol=0, atol=1e-12)
        assert torch.equal(dev.nearest, host.nearest)


@pytest.mark.parametrize("chunk", [64, 100])
def test_logit_lower_bounds_are_lower_bounds(chunk):
    x, y = _problem(b=25, n=450, d=9, seed=6, spread=2.0)
    keys = augment_keys(y)
    g = torch.Generator().manual_seed(7)
    a = torch.randn(25, 1, generator=g, dtype=torch.float64) * 3
    c = torch.randn(25, 1, generator=g, dtype=torch.float64)
    q = kernel._augment_queries(x, a, c)
    bounds = kernel._logit_lower_bounds(q, keys, chunk)
    logits = q @ keys.T
    for k, start in enumerate(range(0, 450, chunk)):
        assert (bounds[k] <= logits[:, start:start + chunk].amin(1) + 1e-9).all()


@pytest.mark.parametrize("spread,clamped", [(0.3, False), (30.0, True)])
def test_clamp_skipped_only_when_the_bound_allows(monkeypatch, spread, clamped):
    """Small logit spreads: no clamp pass at all; huge spreads: the clamp runs and the result
    still matches the dense softmax (exp2 of underflowing inputs would be wrong-or-slow)."""
    x, y = _problem(b=20, n=256, d=3, seed=8, spread=spread)
    a, c = (1.0, -0.5) if not clamped else (50.0, -25.0)
    calls = []
    real = torch.Tensor.clamp_

    def spy(self, *args, **kw):
        calls.append(self.shape)
        return real(self, *args, **kw)

    monkeypatch.setattr(torch.Tensor, "clamp_", spy)
    st = mixture_stats(x.float(), augment_keys(y).float(), a, c, chunk=64)
    assert (len(calls) > 0) == clamped
    ref = _dense(x, y, a, c)
    _check(st, ref, torch.float32, ref[3].abs().max())


def test_fast_path_equals_autograd_path():
    x, y = _problem(b=12, n=300, d=4, seed=9, spread=0.7)
    keys = augment_keys(y)
    fast = mixture_stats(x, keys, 4.0, -2.0, chunk=64)
    slow = mixture_stats(x.clone().requires_grad_(True), keys, 4.0, -2.0, chunk=64)
    torch.testing.assert_close(fast.lse, slow.lse.detach(), rtol=1e-14, atol=0)
    torch.testing.assert_close(fast.mean, slow.mean.detach(), rtol=0, atol=1e-12)
    assert torch.equal(fast.nearest, slow.nearest)


def test_second_moment_equals_dense():
    x, y = _problem(b=10, n=200, d=3, seed=10, spread=0.5)
    keys = augment_keys(y)
    a, c = 2.0, -1.0
    st = mixture_stats(x, keys, a, c, chunk=64)
    second = mixture_second_moment(x, keys, a, c, st.lse, chunk=37)
    w = torch.softmax(_dense(x, y, a, c)[3], 1)
    ref = torch.einsum("bn,ni,nj->bij", w, y, y)
    torch.testing.assert_close(second, ref, rtol=0, atol=1e-12)


def test_bad_keys_and_chunk_are_rejected():
    x, y = _problem(b=3, n=10, d=2)
    with pytest.raises(ValueError, match="d \\+ 2"):
        mixture_stats(x, y, 1.0, -0.5)
    with pytest.raises(ValueError, match="chunk"):
        mixture_stats(x, augment_keys(y), 1.0, -0.5, chunk=0)
