"""The one device/dtype policy: "auto" falls back to the CPU without CUDA, an explicit CUDA
request without a GPU is a clear error, and a sampling run configured with device = "auto" runs
(on the GPU where there is one, else on the CPU) with the same results as an explicit device."""

import pytest
import torch

from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.data import isotropic_gaussian
from memphase.simulate.base.device import generator, resolve_device, resolve_dtype, tune_allocator
from memphase.simulate.sampling import sample
from memphase.simulate.scores import EmpiricalScore


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


ALLOC_SCRIPT = """
import resource, sys, torch
torch.set_num_threads(1)
from memphase.simulate.base.device import tune_allocator
from memphase.simulate.scores.kernel import augment_keys, mixture_stats
tuned = tune_allocator() if sys.argv[1] == "tune" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
g = torch.Generator().manual_seed(0)
x, keys = torch.randn(1024, 16, generator=g), augment_keys(torch.randn(4096, 16, generator=g))
mixture_stats(x, keys, 2.0, -1.0)
before = faults()
for _ in range(10):
    mixture_stats(x, keys, 2.0, -1.0)
print(tuned, (faults() - before) / 10)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc only")
def test_tune_allocator_stops_page_faults_under_dask_malloc_settings():
    """Under Dask's MALLOC_TRIM_THRESHOLD_=65536 each kernel call (B = 1024, N = 4096, d = 16)
    faults its 2 MiB logits block in again (~1000 minor page faults per call measured); after
    tune_allocator the freed blocks are reused (~50 measured)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")

    def run(mode):
        out = subprocess.run([sys.executable, "-c", ALLOC_SCRIPT, mode], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        return out[0] == "True", float(out[1])

    tuned, faults_tuned = run("tune")
    if not tuned:
        pytest.skip("not glibc: no allocator to tune")
    _, faults_plain = run("plain")
    assert faults_plain > 500          # the slow path the tuning removes is really there
    assert faults_tuned < 0.3 * faults_plain
    assert tune_allocator() == tune_allocator()    # idempotent
