"""The journal of a sweep target (`<target>.cells/`): finished cells in batch files, the manifest
with the config hash and the code identity of the run (see `memphase.simulate.sweep`).

Cells are journaled in batches: `Journal.record` keeps a finished cell in memory and writes the
pending cells as one file `batch-<seq>.npz` (temporary name, fsync, rename, fsync of the folder)
once BATCH_CELLS cells are pending or BATCH_SECONDS have passed since the last write, whichever
comes first, and on every exit of the run that unwinds (Ctrl-C, SIGTERM, an error): one fsync per
batch instead of one per cell. A kill -9 loses at most the cells of the batch not yet written.
A batch file stores each variable once, stacked over the batch's cells of the same shapes
(`pack_cells`), so reading the journal back is a few array reads per batch. Journals of older
memphase versions (one `<key>.npz` per cell) are still read."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..experiments import get_experiment
from ..run.files import SweepError, atomic_write as _atomic_write, fsync_dir as _fsync_dir, make_dirs
from ..run.store import git_commit, package_source_hash, package_version
from .plan import SweepPlan


# ----------------------------------------------------------------------------- journal


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _encode_result(result: dict) -> dict:
    arrays = {}
    for k, v in result.items():
        if k.startswith("__"):
            raise ValueError(f"run_cell result key {k!r} is reserved")
        a = np.asarray(v)
        if a.dtype.kind == "O":
            raise ValueError(f"run_cell result {k!r} is not numeric or string data")
        arrays[k] = a
    return arrays


def _decode_value(a: np.ndarray):
    return a.item() if a.ndim == 0 else a


def pack_cells(items, encoded: bool = False) -> list[tuple[list, dict]]:
    """[(keys, {name: stacked array})]: the results of `items` ((key, result) pairs; `encoded`:
    results already `_encode_result`-ed) grouped by their signature (names, dtypes, shapes),
    each variable of a group stacked along a new first axis in the order of its keys. Cells of
    one sweep usually form a single group."""
    groups: dict = {}
    for key, result in items:
        arrays = result if encoded else _encode_result(result)
        sig = tuple((k, a.dtype.str, a.shape) for k, a in arrays.items())
        keys, cols = groups.setdefault(sig, ([], {k: [] for k in arrays}))
        keys.append(key)
        for k, a in arrays.items():
            cols[k].append(a)
    return [(keys, {k: np.stack(v) for k, v in cols.items()}) for keys, cols in groups.values()]


def unpack_cells(keys, cols: dict) -> dict:
    """{key: result dict} of one `pack_cells` group (scalars as Python numbers, arrays as views
    into the stacked block); the inverse of `pack_cells`."""
    cols = {k: (v.tolist() if v.ndim == 1 and v.dtype.kind != "U" else v)
            for k, v in cols.items()}
    out = {}
    for j, key in enumerate(keys):
        out[str(key)] = {k: (v[j] if isinstance(v, list) else _decode_value(v[j]))
                         for k, v in cols.items()}
    return out


#: cells per journal batch file (one fsync per batch) ...
BATCH_CELLS = 512
#: ... or seconds since the last batch was written, whichever comes first: a run of slow cells
#: writes every cell on its own, a run of tiny cells one file per BATCH_CELLS
BATCH_SECONDS = 2.0


def code_identity(job: str) -> dict:
    """The code computing `job`'s cells: {'memphase_version', 'git_commit', 'source_hash'}, the
    package version, the commit of the source tree ('+dirty' if modified) and the sha256 (first
    16 hex digits) of the whole installed memphase source (`store.package_source_hash`: every
    module, not only the experiment's, so a change anywhere, e.g. in the sampler, is seen even
    in a tree that was already dirty or in a wheel without git). `job` must name an experiment."""
    get_experiment(job)
    return {"memphase_version": package_version(), "git_commit": git_commit(),
            "source_hash": package_source_hash()}


def describe_code(code) -> str:
    if not isinstance(code, dict):
        return "unrecorded code version (journal of an older memphase)"
    return (f"memphase {code.get('memphase_version')}, commit {code.get('git_commit')}, "
            f"memphase source {code.get('source_hash')}")


def _refuse_code_change(where, old, new, other="or with --new to discard them"):
    raise SweepError(f"{where} holds cells computed by other code ({describe_code(old)}) than "
                     f"{'this run' if other.startswith('or with --new') else 'other cells'} "
                     f"({describe_code(new)}); refusing to mix code versions in one result; "
                     f"rerun with --allow-code-change to keep them (the result's code_versions "
                     f"attribute lists both) {other}")


class Journal:
    """Per-cell checkpoints of one sweep target: `<target>.cells/` (see the module docstring).

    The manifest records the config hash and the code identity (`code_identity`) of the run that
    created it; every cell records the code that computed it."""

    def __init__(self, target, plan: SweepPlan, code: dict | None = None):
        self.dir = Path(target).with_name(Path(target).name + ".cells")
        self.plan = plan
        self.manifest = self.dir / "manifest.json"
        self.code = code

    def exists(self) -> bool:
        return self.dir.is_dir()

    def _manifest(self):
        try:
            man = json.loads(self.manifest.read_text())
            if not isinstance(man, dict) or "config_hash" not in man:
                raise ValueError("not a manifest")
            return man
        except FileNotFoundError:
            return None
        except PermissionError:
            raise SweepError(f"journal manifest {self.manifest}: permission denied") from None
        except (OSError, ValueError, UnicodeDecodeError):
            raise SweepError(f"journal manifest {self.manifest} is unreadable; rerun with --new "
                             f"to discard the journal (or delete {self.dir})") from None

    def stored_hash(self):
        man = self._manifest()
        return None if man is None else man["config_hash"]

    def _write_manifest(self, man):
        _atomic_write(self.manifest, lambda fh: fh.write(json.dumps(man, indent=1).encode()))
        _fsync_dir(self.dir)

    def check_ours(self):
        """SweepError (one line, nothing touched) when `<target>.cells` exists but is not a
        journal: a file, or a folder without manifest.json holding anything memphase does not
        write there (a journal is created empty and gets its manifest before anything else)."""
        if self.dir.exists() or self.dir.is_symlink():
            if not self.dir.is_dir() or self.dir.is_symlink():
                raise SweepError(f"{self.dir} exists and is not a memphase journal folder; "
                                 f"refusing to use or delete it: move it away or choose "
                                 f"another --output")
            if not self.manifest.exists() and any(not self._own(p) for p in self.dir.iterdir()):
                raise SweepError(f"{self.dir} holds files but no manifest.json: it is not a "
                                 f"memphase journal; refusing to use or delete it: move it "
                                 f"away or choose another --output")

    def open(self, new: bool = False, allow_code_change: bool = False):
        """Create the journal, or resume it: refused (SweepError) when it holds another config
        (unless `new`: discarded) or cells of other code (unless `allow_code_change`), and when
        `<target>.cells` is not a journal (`check_ours`), even with `new`."""
        self.check_ours()
        try:
            man = self._manifest() if self.exists() else None
        except SweepError:
            if not new:
                raise
            self.remove()  # unreadable: discarded as asked
            man = None
        if man is not None and man["config_hash"] != self.plan.config_hash:
            if not new:
                raise SweepError(f"{self.dir} holds cells of a different config (hash "
                                 f"{man['config_hash']}, now {self.plan.config_hash}); refusing "
                                 f"to resume; rerun with --new to discard them")
            self.remove()
            man = None
        if man is not None and self.code is not None and man.get("code") != self.code:
            if new:
                self.remove()
                man = None
            elif not allow_code_change:
                _refuse_code_change(self.dir, man.get("code"), self.code)
            else:
                man["code"] = self.code
                man["code_history"] = man.get("code_history", []) + [self.code]
                self._write_manifest(man)
        make_dirs(self.dir)
        if man is None:
            man = {"config_hash": self.plan.config_hash, "job": self.plan.job,
                   "cells": len(self.plan.cells), "created": _now(), "config": self.plan.text,
                   "code": self.code, "code_history": [self.code]}
            self._write_manifest(man)
        return self

    def _cell_path(self, key):
        """The per-cell file of journals written before batches (still read)."""
        return self.dir / f"{key}.npz"

    def _error_path(self, key):
        return self.dir / f"{key}.error.json"

    def _batches(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("batch-*.npz") if p.is_file())

    def _legacy_cells(self) -> list[Path]:
        return [p for p in self.dir.glob("*.npz")
                if not p.name.startswith((".", "batch-")) and p.is_file()]

    def done_keys(self) -> set:
        """Keys of the journaled cells (written batches, cells of an older per-cell journal and
        the batch pending in memory)."""
        if not self.exists():
            return set(getattr(self, "_pending_keys", ()))
        keys = {p.name[:-4] for p in self._legacy_cells()}
        for p in self._batches():
            with contextlib.suppress(Exception):
                with np.load(p, allow_pickle=False) as z:
                    keys.update(str(k) for k in z["__keys__"])
        return keys | set(getattr(self, "_pending_keys", ()))

    def failures(self) -> dict:
        out = {}
        if self.exists():
            for p in self.dir.glob("*.error.json"):
                with contextlib.suppress(OSError, ValueError):
                    out[p.name[: -len(".error.json")]] = json.loads(p.read_text())
        return out

    # -- writing: cells are buffered and written in batches (module docstring)

    def _start_batches(self):
        if not hasattr(self, "_pending"):
            self._pending: list = []
            self._pending_keys: list = []
            self._last_write = time.monotonic()
            seqs = [int(p.name[6:-4]) for p in self._batches() if p.name[6:-4].isdigit()]
            self._seq = max(seqs, default=-1) + 1
            self._failed = set(self.failures()) if self.exists() else set()

    def record(self, key, cell, result, meta):
        """Journal a finished cell: buffered, written with its batch (`flush`)."""
        self._start_batches()
        arrays = _encode_result(result)  # a result that cannot be stored fails here, at its cell
        self._pending.append((key, cell, arrays, meta))
        self._pending_keys.append(key)
        if (len(self._pending) >= BATCH_CELLS
                or time.monotonic() - self._last_write >= BATCH_SECONDS):
            self.flush()

    def flush(self):
        """Write the pending cells as one batch file (atomic: temporary, fsync, rename)."""
        self._start_batches()
        self._last_write = time.monotonic()
        if not self._pending:
            return
        pending = self._pending
        arrays = {"__keys__": np.asarray([k for k, *_ in pending])}
        for gi, (keys, cols) in enumerate(pack_cells([(k, r) for k, _, r, _ in pending],
                                                     encoded=True)):
            arrays[f"{gi}.__keys__"] = np.asarray(keys)
            for name, a in cols.items():
                arrays[f"{gi}.{name}"] = a
        arrays["__meta__"] = np.asarray(json.dumps({
            "config_hash": self.plan.config_hash, "code": self.code,
            "cells": [dict(meta, cell=cell) for _, cell, _, meta in pending]}))
        path = self.dir / f"batch-{self._seq:07d}.npz"
        _atomic_write(path, lambda fh: np.savez(fh, **arrays))
        _fsync_dir(self.dir)
        self._seq += 1
        self._pending, self._pending_keys = [], []
        for key, *_ in pending:
            if key in self._failed:
                with contextlib.suppress(FileNotFoundError):
                    self._error_path(key).unlink()
                self._failed.discard(key)

    def record_failure(self, key, cell, error, tb, meta):
        self._start_batches()
        self._failed.add(key)
        rec = {"cell": cell, "error": error, "traceback": tb, "time": _now(), **meta}
        _atomic_write(self._error_path(key), lambda fh: fh.write(json.dumps(rec, indent=1).encode()))

    # -- reading

    def _set_aside(self, p: Path, e):
        print(f"memphase: warning: journal file {p} unreadable ({e}); recomputing its cells",
              file=sys.stderr)
        with contextlib.suppress(OSError):
            os.replace(p, p.with_name(p.name + ".corrupt"))

    def _read_batch(self, p: Path, want=None) -> dict:
        """{key: (result, meta)} of one batch file (only the keys in `want`, if given); an
        unreadable file is set aside as <name>.corrupt and yields nothing."""
        try:
            data, head = self._read_npz(p)
            keys = [str(k) for k in data.pop("__keys__")]
            metas = dict(zip(keys, head["cells"]))
            out = {}
            groups: dict = {}
            for name, a in data.items():
                gi, _, var = name.partition(".")
                groups.setdefault(gi, {})[var] = a
            if sorted(str(k) for g in groups.values() for k in g["__keys__"]) != sorted(keys):
                raise ValueError("the batch's cell index disagrees with its groups")
            for cols in groups.values():
                gkeys = cols.pop("__keys__")
                if want is not None:
                    sel = np.flatnonzero([str(k) in want for k in gkeys])
                    if len(sel) < len(gkeys):
                        gkeys, cols = gkeys[sel], {k: v[sel] for k, v in cols.items()}
                for k, res in unpack_cells(gkeys, cols).items():
                    meta = metas[k]
                    meta["code"] = head.get("code")
                    meta["config_hash"] = head["config_hash"]
                    out[k] = (res, meta)
        except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError
            self._set_aside(p, e)
            return {}
        return out

    def load_all(self, want=None) -> dict:
        """{key: (result dict, meta dict)} of every journaled cell (only those in the set `want`,
        if given): one read per batch file. Unreadable files are set aside (`*.corrupt`) and
        their cells count as not done. Pending cells are written first (`flush`)."""
        if hasattr(self, "_pending"):
            self.flush()
        out = {}
        if not self.exists():
            return out
        for p in self._batches():
            out.update(self._read_batch(p, want))
        for p in self._legacy_cells():
            key = p.name[:-4]
            if (want is None or key in want) and key not in out:
                got = self.load(key)
                if got is not None:
                    out[key] = got
        return out

    def load(self, key):
        """(result dict, meta dict) of a finished cell of a per-cell journal (older memphase),
        or None if its file is unreadable (it is then set aside as <key>.npz.corrupt and the
        cell counts as not done)."""
        p = self._cell_path(key)
        try:
            data, meta = self._read_npz(p)
        except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError
            print(f"memphase: warning: journal cell {p} unreadable ({e}); recomputing it",
                  file=sys.stderr)
            with contextlib.suppress(OSError):
                os.replace(p, p.with_name(p.name + ".corrupt"))
            return None
        return {k: _decode_value(v) for k, v in data.items()}, meta

    def _read_npz(self, p: Path) -> tuple[dict, dict]:
        """The arrays and the JSON header (`__meta__`) of one journal file (a batch or an older
        per-cell file); raises if it is unreadable or was written for another config."""
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        head = json.loads(str(data.pop("__meta__")))
        if head.get("config_hash") != self.plan.config_hash:
            raise ValueError("config hash mismatch")
        return data, head

    def figures(self) -> list[str]:
        """Figure paths an earlier attempt of this run was placing (see `draw_figures`)."""
        try:
            return list(json.loads((self.dir / "figures.json").read_text()))
        except (OSError, ValueError, TypeError):
            return []

    def note_figures(self, paths):
        make_dirs(self.dir)
        text = json.dumps([str(p) for p in paths]).encode()
        _atomic_write(self.dir / "figures.json", lambda fh: fh.write(text))

    #: names memphase writes in a journal folder (everything `remove` may delete)
    OWN = ("manifest.json", "figures.json", "*.npz", "*.npz.corrupt", "*.error.json",
           ".*.tmp-*")
    #: names memphase writes in the journal's training/ folder (resume files of training cells)
    OWN_TRAINING = ("train-*.pt", ".*.tmp-*")

    def _own(self, p: Path) -> bool:
        """Whether `p` (an entry of the journal folder) has a name memphase writes there."""
        if p.name == "training":
            return p.is_dir() and not p.is_symlink() and all(
                q.is_file() and any(fnmatch.fnmatch(q.name, pat) for pat in self.OWN_TRAINING)
                for q in p.iterdir())
        return any(fnmatch.fnmatch(p.name, pat) for pat in self.OWN) and p.is_file()

    def remove(self):
        """Delete what memphase wrote in the journal (`OWN`, and training/ resume files
        `train-*.pt`), then the folder if that emptied it. Anything else is kept, with a warning
        naming it: a run never deletes files it did not write."""
        if not self.dir.is_dir() or self.dir.is_symlink():
            return
        for pat in self.OWN:
            for p in self.dir.glob(pat):
                if p.is_file() and not p.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
        train = self.dir / "training"
        if train.is_dir() and not train.is_symlink():
            for pat in self.OWN_TRAINING:
                for p in train.glob(pat):
                    if p.is_file() and not p.is_symlink():
                        with contextlib.suppress(FileNotFoundError):
                            p.unlink()
            with contextlib.suppress(OSError):
                train.rmdir()
        try:
            self.dir.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            left = sorted(str(p.relative_to(self.dir)) for p in self.dir.rglob("*"))
            print(f"memphase: warning: kept {self.dir}: it holds files memphase did not write "
                  f"({', '.join(left[:3])}{', ...' if len(left) > 3 else ''})", file=sys.stderr)
