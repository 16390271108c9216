"""Reading results back: open a memphase HDF5 file with clear errors for missing, truncated,
corrupt or foreign files."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

__all__ = ["ResultFileError", "open_results", "open_sweep", "check_readable", "hdf5_open_error"]


class ResultFileError(ValueError):
    """A results file that cannot be read as a memphase Dataset; the message names the file."""


def check_readable(p: Path, what: str = "results file"):
    """ResultFileError naming `p` when it is missing, a folder, not a regular file (a FIFO, a
    socket or a device: opening one could block forever), or not readable by this user."""
    import os
    import stat

    if p.is_dir():
        raise ResultFileError(f"{p} is a folder, not a {what}")
    if not p.exists():
        raise ResultFileError(f"{what} not found: {p}")
    if not stat.S_ISREG(p.stat().st_mode):
        raise ResultFileError(f"{p} is not a regular file (a FIFO, socket or device), not a {what}")
    if not os.access(p, os.R_OK):
        raise ResultFileError(f"{p}: permission denied (cannot read the {what})")


def hdf5_open_error(p: Path, e: OSError) -> ResultFileError:
    """The one-line error for an HDF5 file h5py could not open."""
    text = str(e)
    if isinstance(e, PermissionError) or "errno = 13" in text or "Permission denied" in text:
        return ResultFileError(f"{p}: permission denied")
    if p.suffix.lower() == ".toml":
        return ResultFileError(f"{p} is a config, not a results file: run it (`memphase run {p}`) "
                               f"and give the results file it writes (its `output`)")
    return ResultFileError(f"{p} is not a readable HDF5 file (truncated or corrupt?): {e}")


def open_results(path, chunks=None) -> xr.Dataset:
    """Open a results file (HDF5, engine h5netcdf). `chunks` (e.g. {}) opens it lazily with Dask.

    Raises ResultFileError naming the file when it is missing, is not HDF5 (truncated or corrupt),
    or lacks the memphase provenance attributes (a foreign file).
    """
    p = Path(path)
    check_readable(p)
    import h5py

    try:
        with h5py.File(p, "r") as f:
            part = "memphase_part" in f.attrs
    except OSError as e:
        raise hdf5_open_error(p, e) from None
    if part:
        raise ResultFileError(f"{p} is one shard's part file, not a results file; assemble the "
                              f"parts with `memphase merge CONFIG`")
    try:
        ds = xr.open_dataset(p, engine="h5netcdf", chunks=chunks, phony_dims="sort")
    except Exception as e:  # h5netcdf/xarray raise many types for malformed files
        raise ResultFileError(f"{p} is HDF5 but not a readable xarray Dataset: {e}") from None
    if "memphase_version" not in ds.attrs:
        ds.close()
        raise ResultFileError(f"{p} is not a memphase results file (no provenance attributes)")
    return ds


def open_sweep(path) -> xr.Dataset:
    """Open a sweep's results file lazily: every variable Dask-backed (one chunk per variable
    as stored), read from disk only when computed. Same errors as `open_results`."""
    return open_results(path, chunks={})
