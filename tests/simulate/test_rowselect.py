import pytest
import torch

from memphase.simulate.base.rowselect import row_topk


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 2, 5, 32])
@pytest.mark.parametrize("cols", [128, 1024, 1000])
def test_row_topk_equals_topk(k, cols, largest):
    """Same values as torch.topk (sorted), including many ties (small integers), and columns
    that hold those values; 1000 columns (not whole strips) take the fallback."""
    g = torch.Generator().manual_seed(k * cols)
    for v in (torch.randn(50, cols, generator=g),
              torch.randint(0, 20, (50, cols), generator=g).float()):
        val, idx = row_topk(v, k, largest=largest)
        ref = torch.topk(v, k, dim=1, largest=largest).values
        assert torch.equal(torch.sort(val, dim=1).values, torch.sort(ref, dim=1).values)
        assert torch.equal(torch.gather(v, 1, idx), val)
        assert all(len(set(r)) == k for r in idx.tolist())   # k distinct columns
