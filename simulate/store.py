"""Writing results: one xarray Dataset per run in HDF5 (engine h5netcdf), written atomically
(temporary file in the same folder, then rename), with provenance in its attributes."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["provenance", "write_dataset", "package_version", "git_commit", "ENCODING_DEFAULTS"]

ENCODING_DEFAULTS = {"zlib": True, "complevel": 4}


def package_version() -> str:
    try:
        return metadata.version("memphase")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def git_commit() -> str:
    """The commit of the source tree the code runs from ('+dirty' if modified), or 'none'."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return "none"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "none"


def provenance(config_text: str, seeds, **extra) -> dict:
    """Attributes recording how a result was made (strings and numbers only, netCDF-safe)."""
    import torch

    attrs = {
        "memphase_version": package_version(),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "config": config_text,
        "seeds": json.dumps(list(seeds)),
    }
    for k, v in extra.items():
        attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v)
    return attrs


def write_dataset(ds, path) -> Path:
    """Write `ds` to `path` (HDF5 via h5netcdf, compressed) atomically: a crash leaves either the
    old file or the new one, never a half-written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    encoding = {v: dict(ENCODING_DEFAULTS) for v in ds.data_vars
                if ds[v].dtype.kind in "fiub" and ds[v].ndim > 0}
    try:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding, invalid_netcdf=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
