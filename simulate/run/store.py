"""Writing results: one xarray Dataset per run in HDF5 (engine h5netcdf), written atomically
(temporary file in the same folder, then rename), with provenance in its attributes."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

from .files import make_dirs

__all__ = ["provenance", "write_dataset", "cf_conventions", "package_version", "git_commit",
           "ENCODING_DEFAULTS", "reserve_space"]

ENCODING_DEFAULTS = {"zlib": True, "complevel": 4}


def package_version() -> str:
    """memphase's version: the installed distribution's metadata (one place: pyproject.toml)."""
    try:
        return metadata.version("memphase")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _source_root() -> Path:
    return Path(__file__).resolve().parents[2]   # simulate/run/store.py -> the source tree


def _is_memphase_checkout(root: Path) -> bool:
    """True when `root` is the top of a git checkout of memphase itself (an editable install or a
    source tree), not a user's repository that happens to contain an installed memphase."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
        return False
    try:
        return 'name = "memphase"' in (root / "pyproject.toml").read_text()
    except OSError:
        return False


def _live_commit(root: Path) -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _built_commit() -> str | None:
    """The commit recorded when the wheel was built (setup.py writes memphase/_build_info.py)."""
    try:
        from memphase import _build_info  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(_build_info, "COMMIT", None) or None


SOURCE_PACKAGES = ("memphase.physics", "memphase.simulate", "memphase.analysis")


def package_source_files() -> list[tuple[str, Path]]:
    """Every Python source file of the installed memphase package, as (its name inside the
    package, e.g. 'simulate/sampling/samplers.py'; its path), sorted by name. Works the same for an
    editable install (the checkout's folders) and a wheel (site-packages). The folders come from
    the import system's specs (`find_spec`), so no package is imported (simulate never loads
    analysis for this)."""
    from importlib.util import find_spec

    files = {}
    for base in find_spec("memphase").submodule_search_locations:
        for f in Path(base).glob("*.py"):       # the top package's own files only
            files[f.name] = f
    for name in SOURCE_PACKAGES:
        prefix = name.split(".", 1)[1]
        for base in find_spec(name).submodule_search_locations:
            for f in Path(base).rglob("*.py"):
                files[f"{prefix}/{f.relative_to(base).as_posix()}"] = f
    return sorted(files.items())


def source_tree_hash(files) -> str:
    """sha256 (first 16 hex digits) over (name, content) of each (name, path) in `files`: any
    edit, added or removed file changes it."""
    h = hashlib.sha256()
    for name, path in files:
        data = Path(path).read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def package_source_hash() -> str:
    """`source_tree_hash` of the whole installed memphase source (`package_source_files`): what
    computed a result, whether or not the tree is a git checkout or was already dirty."""
    return source_tree_hash(package_source_files())


def git_commit() -> str:
    """memphase's own commit: the live checkout's HEAD ('+dirty' if modified) when the code runs
    from a git checkout of memphase (editable install), else the commit recorded in the wheel at
    build time, else 'unknown'. Never the commit of a repository that merely contains the venv."""
    root = _source_root()
    if _is_memphase_checkout(root):
        live = _live_commit(root)
        if live:
            return live
    return _built_commit() or "unknown"


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


# units strings the suite uses that CF/UDUNITS do not parse: all are dimensionless numbers in the
# suite's conventions (data-scale variances, schedule times, counts); CF gets units "1" and the
# quantity moves to the `quantity` attribute (read by the plots for axis labels).
CF_UNITS = {"1", "s", "seconds", "bytes"}


def cf_conventions(ds):
    """`ds` made readable by CF tools (CF-1.10): a `Conventions` attribute, and every units string
    that is not a CF unit replaced by "1" (dimensionless) with the original kept as `quantity`
    (e.g. "OU time", "data variance", "nats"); quantities in schedule time say so in their
    long_name. Returns a shallow copy; `ds` is not modified."""
    out = ds.copy()
    out.attrs["Conventions"] = "CF-1.10"
    for name in list(out.variables):
        attrs = dict(out[name].attrs)
        units = attrs.get("units")
        if units is None or units in CF_UNITS:
            continue
        attrs["units"] = "1"
        attrs.setdefault("quantity", str(units))
        long_name = attrs.get("long_name", name)
        if "time" in str(units) and str(units) not in long_name:
            attrs["long_name"] = f"{long_name} (in {units})"
        out[name].attrs = attrs
    return out


def write_dataset(ds, path) -> Path:
    """Write `ds` to `path` (HDF5 via h5netcdf, compressed) atomically: a crash leaves either the
    old file or the new one, never a half-written file under the final name.

    The HDF5 file is built in memory first; its bytes then go to a temporary beside `path` whose
    full size is reserved up front (`os.posix_fallocate`), so a full disk raises OSError(ENOSPC)
    before a byte is written, and HDF5 itself never writes to a full disk (it crashed there:
    segfaults, issue #26 item 5)."""
    path = Path(path)
    make_dirs(path.parent)
    ds = cf_conventions(ds)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    encoding = {v: dict(ENCODING_DEFAULTS) for v in ds.data_vars
                if ds[v].dtype.kind in "fiub" and ds[v].ndim > 0}
    data = ds.to_netcdf(engine="h5netcdf", encoding=encoding, invalid_netcdf=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with open(fd, "wb") as fh:
            reserve_space(fd, len(data))
            fh.write(data)
            fh.flush()
            os.fsync(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def reserve_space(fd: int, nbytes: int) -> None:
    """Allocate `nbytes` on disk for the open file `fd` before writing: OSError(ENOSPC) now rather
    than in the middle of the write. File systems without fallocate (EOPNOTSUPP, EINVAL) skip it."""
    import errno

    if nbytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
