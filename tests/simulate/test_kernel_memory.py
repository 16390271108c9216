"""The streaming kernel: memory bound and independence of the chunking (timings: benchmarks/).

Claims: (1) the largest temporary is ONE (B, chunk) logits block, and the default chunk does not
grow with N; (2) the result does not depend on the chunking (float64, 1e-12); (3) the fast
two-level argmax and the exp floor change nothing measurable; (4) autograd through the streamed
log-sum-exp gives d lse / dx = a * (weighted mean). The fast path's own tricks (base 2, lazy shift,
skipped clamp, nearest resolved at the end): tests/simulate/test_kernel_fused.py.
"""

import pytest
import torch

from memphase.simulate.scores import kernel
from memphase.simulate.scores.kernel import augment_keys, default_chunk, mixture_stats


def _problem(b=40, n=1000, d=5, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    x = spread * torch.randn(b, d, generator=g, dtype=torch.float64)
    return x, augment_keys(y), y


def _dense(x, y, a, c):
    logits = a * x @ y.T + c * (y * y).sum(1)[None, :]
    w = torch.softmax(logits, dim=1)
    return torch.logsumexp(logits, dim=1), w @ y, logits.argmax(dim=1)


def test_default_chunk_independent_of_n():
    assert default_chunk(64, 10**5) == default_chunk(64, 10**7)
    assert default_chunk(64, 10**7) * 64 <= max(kernel.LOGITS_BUDGET, 256 * 64)
    assert default_chunk(64, 100) == 100


def test_largest_temporary_is_one_logits_block(monkeypatch):
    """Every torch.mm output (the logits blocks, and the blocks of the rows whose maximum lies in
    one chunk when the nearest index is resolved at the end) has at most B * chunk elements."""
    monkeypatch.setattr(kernel, "LOGITS_BUDGET", 40 * 256)
    x, keys, _ = _problem(b=40, n=3000)
    chunk = default_chunk(40, 3000)
    assert chunk == 256
    sizes = []
    real_mm = torch.mm

    def spy(a, b, *args, **kw):
        out = real_mm(a, b, *args, **kw)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(kernel.torch, "mm", spy)
    mixture_stats(x, keys, 0.7, -0.2)
    n_chunks = -(-3000 // chunk)
    assert n_chunks <= len(sizes) <= 2 * n_chunks
    assert max(sizes) <= 40 * chunk
    assert sum(sizes[n_chunks:]) <= 40 * chunk        # the resolution blocks: one block in all


@pytest.mark.parametrize("chunk", [1, 7, 128, 256, 999])
def test_chunking_does_not_change_the_result(chunk):
    x, keys, y = _problem()
    a, c = 0.9 / 0.3, -0.81 / 0.6
    full = mixture_stats(x, keys, a, c, chunk=10**6)
    part = mixture_stats(x, keys, a, c, chunk=chunk)
    lse, mean, nearest = _dense(x, y, a, c)
    for st in (full, part):
        torch.testing.assert_close(st.lse, lse, rtol=0, atol=1e-12)
        torch.testing.assert_close(st.mean, mean, rtol=0, atol=1e-12)
        assert torch.equal(st.nearest, nearest)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wide_logits_match_dense_softmax(dtype):
    """Logit spreads of thousands (most weights underflow; the exp floor is active)."""
    x, keys, y = _problem(b=33, n=640, d=8, spread=20.0)
    a, c = 1.0 / 0.01, -1.0 / 0.02
    st = mixture_stats(x.to(dtype), keys.to(dtype), a, c, chunk=128)
    lse, mean, nearest = _dense(x, y, a, c)
    tol = 1e-12 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(st.mean.double(), mean, rtol=0, atol=tol)
    torch.testing.assert_close(st.lse.double(), lse, rtol=1e-6 if dtype == torch.float32 else 1e-14,
                               atol=0)
    assert torch.equal(st.nearest, nearest)


def test_row_argmax_equals_max():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(17, 32 * 9, generator=g, dtype=torch.float64)
    v, i = kernel._row_argmax(logits)
    v0, i0 = logits.max(dim=1)
    assert torch.equal(v, v0) and torch.equal(i, i0)


@pytest.mark.parametrize("chunk", [None, 13])
def test_autograd_through_streamed_lse(chunk):
    x, keys, _ = _problem(b=6, n=200)
    x.requires_grad_(True)
    a, c = 2.0, -1.5
    st = mixture_stats(x, keys, a, c, chunk=chunk)
    (grad,) = torch.autograd.grad(st.lse.sum(), x)
    torch.testing.assert_close(grad, a * st.mean.detach(), rtol=0, atol=1e-12)
