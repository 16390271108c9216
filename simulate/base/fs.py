"""File-system primitives shared by every layer that writes: `make_dirs` (mkdir -p without
recursion), `fsync_dir`, `atomic_write` (temporary + fsync + rename; a full disk raises
SweepError naming the file). Moved from simulate.run.files (issue 24), which re-exports them."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from .errors import SweepError

__all__ = ["make_dirs", "fsync_dir", "atomic_write", "disk_full"]

_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def make_dirs(path) -> Path:
    """`mkdir -p path`, iteratively: Path.mkdir(parents=True) and os.makedirs recurse once per
    missing folder and raise RecursionError past ~1000 of them (a deep path under PATH_MAX)."""
    path = Path(path)
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            if not p.is_dir():
                raise
    return path


def disk_full(e: OSError) -> bool:
    return isinstance(e, OSError) and e.errno in _DISK_FULL


def fsync_dir(path: Path):
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write, *, by_path: bool = False):
    """write(fh) into `.<name>.tmp-<pid>` beside `path`, fsync, rename over `path`. A full disk
    raises SweepError naming the file (the temporary is removed).

    `fh` is opened read-write ("w+b"): writers such as libhdf5 read back what they wrote (once a
    file's metadata outgrows their cache), which a write-only file object refuses. With
    `by_path`, write(tmp) gets the temporary's path instead and opens it itself (libhdf5's own
    file driver: much faster than a Python file object for files of many groups)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if by_path:
            write(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            with open(tmp, "w+b") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if disk_full(e):
            raise SweepError(f"disk full while writing {path} ({e.strerror}); free some space "
                             f"and rerun the same command: finished cells are kept") from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
