"""The one device/dtype policy of the suite.

Theory is float64 numpy (`physics`). Sampling runs in torch with the dtype and device chosen by
the config: `dtype` is "float32" or "float64", `device` is "cpu", "cuda", "cuda:N" or "auto"
(CUDA when available, else CPU).
"""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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


def generator(seed: int, device="cpu") -> torch.Generator:
    """A torch Generator seeded explicitly (every random draw goes through one of these)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator(device=resolve_device(device)).manual_seed(seed)
