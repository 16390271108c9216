import numpy as np
import pytest
import torch

from memphase.analysis.memorization import (block_variance, collapse_fraction, memorization_ratio,
                                   nearest_neighbors)
from memphase.analysis.observers import collapse_time_from_indices


@pytest.mark.parametrize("chunk", [None, 3, 17])
def test_nearest_neighbors_equals_brute_force(chunk, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 7, dtype=torch.float64, generator=g)
    y = torch.randn(50, 7, dtype=torch.float64, generator=g)
    d, i = (v.cpu() for v in nearest_neighbors(x.to(device), y.to(device), k=3, chunk=chunk))
    full = torch.cdist(x, y)
    ref_d, ref_i = torch.topk(full, 3, dim=1, largest=False)
    assert torch.equal(i, ref_i)
    assert torch.allclose(d, ref_d, rtol=1e-12)



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [None, 256, 300])
def test_nearest_neighbors_strip_path_equals_brute_force(dtype, chunk, device):
    """N large enough for the strip top-k (chunks of >= 128 columns), both dtypes."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, dtype=torch.float64, generator=g)
    y = torch.randn(2000, 5, dtype=torch.float64, generator=g)
    d, i = (v.cpu() for v in nearest_neighbors(x.to(dtype).to(device), y.to(dtype).to(device),
                                               k=2, chunk=chunk))
    ref_d, ref_i = torch.topk(torch.cdist(x, y), 2, dim=1, largest=False)
    assert torch.equal(i, ref_i)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(d.double(), ref_d, rtol=tol)


def test_memorization_ratio_and_collapse_fraction_on_constructed_points():
    y = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    x = torch.tensor([[0.001, 0.0],   # on y0: ratio ~1e-4, collapsed
                      [2.0, 0.0],     # d1 = 2, d2 = 8: ratio 0.25 < 1/3, not collapsed (tol 1e-2)
                      [4.0, 0.0],     # d1 = 4, d2 = 6: ratio 0.67, not memorized
                      [5.0, 5.0]], dtype=torch.float64)
    assert memorization_ratio(x, y) == pytest.approx(0.5)
    assert collapse_fraction(x, y, tol=1e-2) == pytest.approx(0.25)
    assert collapse_fraction(x, y, tol=2.5) == pytest.approx(0.5)
    assert memorization_ratio(x, y, per_sample=True).tolist() == [True, True, False, False]


def test_block_variance_projects_on_blocks(rng):
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    z = rng.standard_normal((50000, 5)) * np.array([2.0, 2.0, 0.5, 0.5, 0.1])
    x = torch.from_numpy(z @ q.T)
    v = block_variance(x, q, np.array([0, 0, 1, 1, -1]))
    np.testing.assert_allclose(v, [4.0, 0.25, 0.01], rtol=0.03)


def test_collapse_time_from_indices():
    times = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    idx = np.array([[1, 7, 3], [2, 7, 3], [2, 7, 4], [2, 7, 4], [2, 7, 4]])
    np.testing.assert_allclose(collapse_time_from_indices(times, idx), [4.5, 5.0, 3.5])


def test_bad_input():
    with pytest.raises(ValueError, match="d = 3 but the training set has d = 2"):
        nearest_neighbors(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="k must be between 1"):
        nearest_neighbors(torch.zeros(2, 3), torch.zeros(1, 3), k=2)
    with pytest.raises(ValueError, match="threshold"):
        memorization_ratio(torch.zeros(2, 3), torch.zeros(4, 3), threshold=2.0)


def test_highest_over_checkpoints_is_the_maximum_and_its_step():
    from memphase.analysis.memorization import highest_over_checkpoints

    assert highest_over_checkpoints({100: 0.2, 200: 0.7, 300: 0.5}) == (0.7, 200)
    assert highest_over_checkpoints({300: 0.4, 100: 0.4}) == (0.4, 100)     # ties: earliest
    assert highest_over_checkpoints({7: 1.0}) == (1.0, 7)
    with pytest.raises(ValueError, match="at least one"):
        highest_over_checkpoints({})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        highest_over_checkpoints({1: 1.5})
