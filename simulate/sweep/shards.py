"""Shards of a sweep (`--shard I/N`, e.g. SLURM job arrays): their part files, written and read."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import numpy as np

from ..run.files import SweepError, atomic_write as _atomic_write
from .plan import SweepPlan
from .journal import _now, _encode_result, _decode_value


# ----------------------------------------------------------------------------- shards and parts


def parse_shard(spec, shards: int | None = None):
    """'I/N' -> (I, N) with 0 <= I < N (SLURM: --array=0-(N-1), --shard $SLURM_ARRAY_TASK_ID/N).

    'I' alone takes N from `shards` (the config's [sweep] shards), else from the environment
    variable MEMPHASE_SHARDS: the shard count is a property of the sweep, given once, never the
    size of the current job array (a resubmitted subset of tasks is a smaller array). An 'I/N'
    whose N disagrees with a given `shards` is refused."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+)\s*)?", str(spec))
    if not m:
        raise SweepError(f"--shard {spec!r} must be I/N with 0 <= I < N, e.g. 0/8")
    n = int(m[2]) if m[2] is not None else None
    env = os.environ.get("MEMPHASE_SHARDS", "").strip()
    if n is None:
        if shards:
            n = int(shards)
        elif env:
            if not env.isdigit() or int(env) < 1:
                raise SweepError(f"MEMPHASE_SHARDS={env!r} must be the number of shards, e.g. 8")
            n = int(env)
        else:
            raise SweepError(f"--shard {spec!r} needs the shard count: --shard {m[1]}/N, "
                             f"MEMPHASE_SHARDS=N or [sweep] shards = N")
    elif shards and n != shards:
        raise SweepError(f"--shard {spec!r} disagrees with the config's [sweep] shards = {shards}")
    if not int(m[1]) < n:
        raise SweepError(f"--shard {spec!r} must be I/N with 0 <= I < N (N = {n}), e.g. 0/{n}")
    return int(m[1]), n


def part_path(output, i: int, n: int) -> Path:
    out = Path(output)
    return out.with_name(f"{out.stem}.part-{i}-of-{n}{out.suffix or '.h5'}")


def _write_part(path: Path, plan: SweepPlan, shard, items):
    """One HDF5 part file (plain h5py): root attrs identify it; group cells/<key> per cell."""
    import h5py

    from ..run.store import git_commit, package_version

    def write(tmp):  # by path: libhdf5 reads back its metadata (issue 23)
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"memphase_part": f"{shard[0]}/{shard[1]}", "config_hash":
                            plan.config_hash, "config": plan.text, "job": plan.job,
                            "memphase_version": package_version(), "git_commit": git_commit(),
                            "created": _now(), "host": socket.gethostname()})
            g = f.create_group("cells")
            for key, cell, result, meta in items:
                c = g.create_group(key)
                c.attrs["cell"] = json.dumps(cell)
                c.attrs["meta"] = json.dumps(meta)
                for k, a in _encode_result(result).items():
                    if a.dtype.kind == "U":
                        c.create_dataset(k, data=a.astype(object), dtype=h5py.string_dtype())
                    elif a.ndim:
                        c.create_dataset(k, data=a, compression="gzip")
                    else:
                        c.create_dataset(k, data=a)

    _atomic_write(path, write, by_path=True)


def read_part(path, plan: SweepPlan | None = None) -> dict:
    """{key: (result, meta)} of a part file; ResultFileError naming the file when it is missing,
    corrupt, foreign, or (given a plan) made with a different config."""
    import h5py

    from memphase.analysis.results import ResultFileError, check_readable, hdf5_open_error

    p = Path(path)
    check_readable(p, "part file")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise hdf5_open_error(p, e) from None
    with f:
        if "memphase_part" not in f.attrs or "cells" not in f:
            raise ResultFileError(f"{p} is not a memphase sweep part file")
        if plan is not None and f.attrs["config_hash"] != plan.config_hash:
            raise ResultFileError(f"{p} was made with a different config "
                                  f"(hash {f.attrs['config_hash']}, now {plan.config_hash})")
        out = {}
        try:
            for key, g in f["cells"].items():
                res = {}
                for k, d in g.items():
                    v = d[()]
                    if isinstance(v, bytes):
                        v = v.decode()
                    elif isinstance(v, np.ndarray) and v.dtype.kind == "O":
                        v = np.asarray([s.decode() if isinstance(s, bytes) else s for s in v])
                    res[k] = _decode_value(np.asarray(v)) if not isinstance(v, str) else v
                out[key] = (res, json.loads(g.attrs["meta"]))
        except (OSError, KeyError, ValueError) as e:
            raise ResultFileError(f"{p} is damaged: {e}") from None
    return out




def find_parts(output) -> dict:
    """{N: {I: path}} of the part files of `output` on disk."""
    out = Path(output)
    pat = re.compile(re.escape(out.stem) + r"\.part-(\d+)-of-(\d+)" + re.escape(out.suffix) + "$")
    found: dict = {}
    for p in out.parent.glob(f"{out.stem}.part-*-of-*{out.suffix}"):
        m = pat.match(p.name)
        if m:
            found.setdefault(int(m[2]), {})[int(m[1])] = p
    return found
