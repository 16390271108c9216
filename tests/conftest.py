import numpy as np
import pytest
import torch


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_configure(config):
    torch.set_default_dtype(torch.float32)
