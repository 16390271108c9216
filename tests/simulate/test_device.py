"""The one device/dtype policy: "auto" falls back to the CPU without CUDA, an explicit CUDA
request without a GPU is a clear error, and a sampling run configured with device = "auto" runs
(on the GPU where there is one, else on the CPU) with the same results as an explicit device."""

import pytest
import torch

from physics.schedules import OrnsteinUhlenbeck
from simulate.data import isotropic_gaussian
from simulate.device import generator, resolve_device, resolve_dtype
from simulate.sampling import sample
from simulate.scores import EmpiricalScore


def test_auto_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_auto_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_dtype_and_seed_errors():
    assert resolve_dtype("float32") == torch.float32
    with pytest.raises(ValueError, match="float16"):
        resolve_dtype("float16")
    with pytest.raises(ValueError, match="non-negative integer"):
        generator(-1)


def test_auto_device_sampling_equals_explicit_device():
    ou = OrnsteinUhlenbeck()
    data = isotropic_gaussian(16, 3, seed=0)
    score = EmpiricalScore(data, ou)
    auto = sample(score, ou, 20, steps=30, seed=5, device="auto")
    explicit = sample(score, ou, 20, steps=30, seed=5, device=resolve_device("auto"))
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch.equal(auto, explicit)
