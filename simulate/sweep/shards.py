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
from .journal import _now, _decode_value, pack_cells, unpack_cells


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


#: the part file layout `_write_part` writes: 2 = one array per variable (stacked over the
#: shard's cells of the same shapes) + a cell index; 1 (memphase before issue 23's part 2, still
#: read) = one HDF5 group per cell
PART_LAYOUT = 2


def _write_part(path: Path, plan: SweepPlan, shard, items):
    """One HDF5 part file (plain h5py), a few array writes whatever the number of cells: root
    attrs identify it (memphase_part_layout = 2); group `columns/<g>` per result signature
    (`journal.pack_cells`, usually one) holds `keys` (the cell index), one dataset per result
    variable with the cells along the first axis, `meta` (one JSON list: cell, seconds, host,
    pid of each cell), `cells` (one JSON list of the cells' parameters) and `code` (index into
    the root attr `codes`, the code versions; -1: none recorded)."""
    import h5py

    from ..run.store import git_commit, package_version

    codes: list = []

    def code_index(meta):
        if "code" not in meta:
            return -1
        c = meta["code"]
        if c not in codes:
            codes.append(c)
        return codes.index(c)

    cells = {key: cell for key, cell, _, _ in items}
    metas = {key: meta for key, _, _, meta in items}
    groups = pack_cells([(key, result) for key, _, result, _ in items])

    def write(tmp):  # by path: libhdf5 reads back its metadata (issue 23)
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"memphase_part": f"{shard[0]}/{shard[1]}", "config_hash":
                            plan.config_hash, "config": plan.text, "job": plan.job,
                            "memphase_version": package_version(), "git_commit": git_commit(),
                            "created": _now(), "host": socket.gethostname(),
                            "memphase_part_layout": PART_LAYOUT})
            root = f.create_group("columns")
            for gi, (keys, cols) in enumerate(groups):
                g = root.create_group(str(gi))
                g.create_dataset("keys", data=np.asarray(keys, dtype="S"))
                g.create_dataset("code", data=np.asarray([code_index(metas[k]) for k in keys],
                                                         dtype=np.int32))
                rows = [{m: v for m, v in metas[k].items() if m != "code"} for k in keys]
                g.create_dataset("meta", data=json.dumps(rows), dtype=h5py.string_dtype())
                g.create_dataset("cells", data=json.dumps([cells[k] for k in keys]),
                                 dtype=h5py.string_dtype())
                for name, a in cols.items():
                    if a.dtype.kind == "U":
                        d = g.create_dataset(name, data=a.astype(object),
                                             dtype=h5py.string_dtype())
                        d.attrs["numpy_dtype"] = a.dtype.str
                    else:
                        g.create_dataset(name, data=a)
            f.attrs["codes"] = json.dumps(codes)

    _atomic_write(path, write, by_path=True)


def _read_columns(f) -> dict:
    """{key: (result, meta)} of a part file of layout 2 (see `_write_part`)."""
    codes = json.loads(f.attrs["codes"])
    out = {}
    for g in f["columns"].values():
        keys = [k.decode() for k in g["keys"][()]]
        rows = json.loads(g["meta"][()])
        code = g["code"][()]
        cols = {}
        for name, d in g.items():
            if name in ("keys", "meta", "code", "cells"):
                continue
            a = d[()]
            if "numpy_dtype" in d.attrs:
                a = np.asarray([s.decode() if isinstance(s, bytes) else s for s in a.ravel()],
                               dtype=d.attrs["numpy_dtype"]).reshape(a.shape)
            cols[name] = a
        if len(rows) != len(keys) or any(len(a) != len(keys) for a in cols.values()):
            raise ValueError("the cell index and the columns disagree in length")
        for (k, res), row, ci in zip(unpack_cells(keys, cols).items(), rows, code):
            out[k] = (res, dict(row, code=codes[int(ci)]) if ci >= 0 else row)
    return out


def _read_groups(f) -> dict:
    """{key: (result, meta)} of a part file of layout 1 (one group per cell; older memphase)."""
    out = {}
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
    return out


def read_part(path, plan: SweepPlan | None = None) -> dict:
    """{key: (result, meta)} of a part file (layout 2, or layout 1 of older memphase);
    ResultFileError naming the file when it is missing, corrupt, foreign, or (given a plan)
    made with a different config."""
    import h5py

    from memphase.analysis.results import ResultFileError, check_readable, hdf5_open_error

    p = Path(path)
    check_readable(p, "part file")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise hdf5_open_error(p, e) from None
    with f:
        if "memphase_part" not in f.attrs or ("cells" not in f and "columns" not in f):
            raise ResultFileError(f"{p} is not a memphase sweep part file")
        if plan is not None and f.attrs["config_hash"] != plan.config_hash:
            raise ResultFileError(f"{p} was made with a different config "
                                  f"(hash {f.attrs['config_hash']}, now {plan.config_hash})")
        try:
            return _read_columns(f) if "columns" in f else _read_groups(f)
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ResultFileError(f"{p} is damaged: {e}") from None


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
