import numpy as np
import pytest
import torch


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_configure(config):
    torch.set_default_dtype(torch.float32)
    # tests are many small ops: one intra-op thread avoids thread-pool overhead and contention
    # (measured 13x faster small Jacobians on a loaded 2-core box); results do not depend on it
    torch.set_num_threads(1)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request) -> torch.device:
    """The device of a device-parametrized test: every such test runs on the CPU and, when CUDA
    is available, again on the GPU (skipped otherwise; `-m "not cuda"` drops those variants).
    Inputs are built on the CPU and moved; references are computed on the CPU."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    return torch.device(request.param)
