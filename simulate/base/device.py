"""The one device/dtype policy of the suite.

Theory is float64 numpy (`physics`). Sampling runs in torch with the dtype and device chosen by
the config: `dtype` is "float32" or "float64", `device` is "cpu", "cuda", "cuda:N" or "auto"
(CUDA when available, else CPU).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# glibc mallopt parameters (malloc.h) and the values set by `tune_allocator`.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20          # glibc's own ceiling for the dynamic threshold (64-bit)
_TRIM_THRESHOLD = 256 << 20


def resolve_dtype(dtype) -> torch.dtype:
    """Map "float32" / "float64" (or a torch dtype) to a torch floating dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def resolve_device(device="cpu") -> torch.device:
    """Map "cpu" / "cuda[:N]" / "auto" to a torch device; "auto" falls back to CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def check_device(spec, available: bool = True) -> str:
    """Check a config's device string before anything runs; return it. "auto", "cpu", "cuda",
    "cuda:N" parse as torch devices of type cpu or cuda; with `available`, a CUDA device must be
    one this machine's torch sees (CUDA available, N < torch.cuda.device_count()). ValueError
    naming the problem otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"device must be a string, got {type(spec).__name__}")
    if spec == "auto":
        return spec
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{spec[:60]!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device type {dev.type!r} is not supported; use cpu, cuda, cuda:N or "
                         f"auto")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise ValueError(f"{spec!r}: there is one cpu device; use cpu")
    if dev.type == "cuda" and available:
        if not torch.cuda.is_available():
            raise ValueError(f"{spec!r} requested but torch sees no CUDA device here; use cpu or "
                             f"auto")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{spec!r} requested but torch sees {n} CUDA device"
                             f"{'s' * (n != 1)} (cuda:0 .. cuda:{n - 1})")
    return spec


def generator(seed: int, device="cpu") -> torch.Generator:
    """A torch Generator seeded explicitly (every random draw goes through one of these)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator(device=resolve_device(device)).manual_seed(seed)


@functools.cache
def tune_allocator() -> bool:
    """Keep freed (B, chunk)-sized CPU buffers in the heap instead of unmapping them (glibc only;
    idempotent; returns whether the allocator is tuned).

    Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536; setting any malloc
    threshold turns off glibc's dynamic mmap threshold, which then stays at 128 KiB, so every
    temporary above it (the kernel's logits block, network activations) is a fresh mmap whose
    pages fault in again on every call: sweep cells ran 1.4x slower on Dask workers than in
    process (benchmarks/bench_sweep.py). Setting the mmap threshold to glibc's own ceiling (32 MiB)
    and the trim threshold to 256 MiB restores in-process speed; called by each cell."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
