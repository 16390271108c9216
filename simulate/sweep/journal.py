"""The journal of a sweep target (`<target>.cells/`): one file per finished cell, the manifest
with the config hash and the code identity of the run (see `memphase.simulate.sweep`)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import json
import os
import sys
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
        return self.dir / f"{key}.npz"

    def _error_path(self, key):
        return self.dir / f"{key}.error.json"

    def done_keys(self) -> set:
        if not self.exists():
            return set()
        return {p.name[:-4] for p in self.dir.glob("*.npz") if not p.name.startswith(".")}

    def failures(self) -> dict:
        out = {}
        if self.exists():
            for p in self.dir.glob("*.error.json"):
                with contextlib.suppress(OSError, ValueError):
                    out[p.name[: -len(".error.json")]] = json.loads(p.read_text())
        return out

    def record(self, key, cell, result, meta):
        arrays = _encode_result(result)
        arrays["__meta__"] = np.asarray(json.dumps({"cell": cell, "config_hash":
                                                    self.plan.config_hash, **meta,
                                                    "code": self.code}))
        _atomic_write(self._cell_path(key), lambda fh: np.savez(fh, **arrays))
        with contextlib.suppress(FileNotFoundError):
            self._error_path(key).unlink()

    def record_failure(self, key, cell, error, tb, meta):
        rec = {"cell": cell, "error": error, "traceback": tb, "time": _now(), **meta}
        _atomic_write(self._error_path(key), lambda fh: fh.write(json.dumps(rec, indent=1).encode()))

    def load(self, key):
        """(result dict, meta dict) of a finished cell, or None if its file is unreadable (it is
        then set aside as <key>.npz.corrupt and the cell counts as not done)."""
        p = self._cell_path(key)
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data.pop("__meta__")))
            if meta.get("config_hash") != self.plan.config_hash:
                raise ValueError("config hash mismatch")
        except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError
            print(f"memphase: warning: journal cell {p} unreadable ({e}); recomputing it",
                  file=sys.stderr)
            with contextlib.suppress(OSError):
                os.replace(p, p.with_name(p.name + ".corrupt"))
            return None
        return {k: _decode_value(v) for k, v in data.items()}, meta

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
