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
