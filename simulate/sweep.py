"""Sweeps: run every cell of a job config (axes x fixed params x seeds) on a backend, crash-safe.

A sweep config is a job config (see `simulate.experiments`): its [grid] lists are the axes, the
other keys are fixed parameters, seeds are an axis. An optional [sweep] table says how to run it
(backend, workers, threads, SLURM settings); it never changes the results, so it is not part of
the config identity (`config_hash`).

Workers compute, one writer stores. The driver process (the one running `memphase sweep`) is the
only one that writes files:

    <output>.lock       exclusive lock (pid, host): a second run on the same output is refused
    <output>.cells/     journal: manifest.json plus one <cell key>.npz per finished cell, each
                        written to a temporary name and renamed (a kill leaves no half cell);
                        a failed cell leaves <cell key>.error.json and is retried on resume
    <output>            the final Dataset, written atomically once every cell is done; the
                        journal is then removed (the final file holds everything it held)

After a kill at any moment, rerunning the same command loads the finished cells and computes the
rest. The final Dataset is always assembled from the journal, so a resumed run and an
uninterrupted one give equal Datasets. Sharded runs (`--shard I/N`, e.g. SLURM job arrays) write
`<stem>.part-I-of-N.h5` instead; `merge` assembles the parts into the final file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cost import sampling_bytes, sampling_seconds
from .config import ConfigError, Field, load_toml, validate
from .experiments import get_experiment
from .slurm_options import SLURM_SCHEMA, cluster_kwargs
from .files import (OutputLock, SweepError, check_free_space, disk_full, remove_stale_temporaries,
                    atomic_write as _atomic_write, fsync_dir as _fsync_dir)

__all__ = ["SweepError", "SweepIncomplete", "SweepPlan", "SWEEP_SCHEMA", "BACKENDS", "load_sweep",
           "run_sweep", "merge_parts", "estimate_cell", "check_memory", "part_path", "parse_shard",
           "OutputLock", "Journal", "describe", "RESULT_SUFFIXES", "resolve_output",
           "draw_figures"]

BACKENDS = ("inprocess", "local", "scheduler", "slurm")
#: memory of one Python/torch worker process beyond its cell (added to every memory estimate)
PROCESS_OVERHEAD = 300 * 2**20

SWEEP_SCHEMA = {
    "backend": Field("str", "inprocess", choices=BACKENDS,
                     help="inprocess, local (dask LocalCluster), scheduler (running Dask "
                          "scheduler) or slurm (dask-jobqueue)"),
    "workers": Field("int", 2, check=lambda v: 1 <= v <= 100000, rule="1 <= workers",
                     help="worker processes (local) or SLURM jobs (slurm)"),
    "threads": Field("int", 1, check=lambda v: v >= 0, rule="must be >= 0",
                     help="torch threads per cell (0: torch's default); the same on every "
                          "backend keeps results bit-identical"),
    "scheduler": Field("str", "", help="address of a running Dask scheduler, tcp://host:port"),
    "shards": Field("int", 0, check=lambda v: 0 <= v <= 100000, rule="0 (unset) or the number "
                    "of shards", help="shard count N of `--shard I` (SLURM job arrays: "
                                      "--array=0-(N-1)); 0: give N as --shard I/N or MEMPHASE_SHARDS"),
    "slurm": SLURM_SCHEMA,
}


class SweepIncomplete(RuntimeError):
    """Some cells failed; they are recorded in the journal and retried by the next run."""


# ----------------------------------------------------------------------------- the plan


@dataclass
class SweepPlan:
    """A validated sweep: experiment module, config, its text and hash, the cells, run options."""

    exp: object
    cfg: dict
    text: str
    opts: dict
    cells: list
    keys: list
    config_hash: str
    path: str = ""
    axes: dict = field(default_factory=dict)

    @property
    def job(self) -> str:
        return self.cfg["job"]


def config_hash(cfg: dict) -> str:
    """sha256 of the validated config without 'output' (where results go is not what they are)."""
    ident = {k: v for k, v in cfg.items() if k != "output"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def cell_key(cell: dict) -> str:
    """Stable file-name key of one cell: its parameters hashed."""
    return hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:16]


def load_sweep(config_path) -> SweepPlan:
    """Parse and validate a sweep/job config before anything runs. ConfigError names the file.
    Beyond each key's schema: the bounds of `simulate.config_bounds` (cell count, devices,
    [sweep] values, numerical scales), checked before the cells are enumerated."""
    from . import config_bounds

    raw, text = load_toml(config_path)
    where = str(config_path)
    if "job" not in raw:
        raise ConfigError(f"{where}: missing required key 'job'")
    raw = dict(raw)
    sweep_raw = raw.pop("sweep", {})
    try:
        exp = get_experiment(raw["job"])
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    try:
        cfg = validate(raw, exp.SCHEMA)
        opts = validate(sweep_raw, SWEEP_SCHEMA, "sweep")
        config_bounds.check_plan(cfg, opts)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ArithmeticError as e:  # a value past the float range that no bound caught
        raise ConfigError(f"{where}: a config value overflows the float range ({e})") from None
    for key in ("job_extra", "job_extra_directives"):
        opts["slurm"][key] = [s for s in opts["slurm"][key] if s]
    try:
        cells = exp.cells(cfg)
        config_bounds.check_cells(cells)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ArithmeticError as e:
        raise ConfigError(f"{where}: a config value overflows the float range ({e})") from None
    keys = [cell_key(c) for c in cells]
    if len(set(keys)) != len(keys):
        seen: set = set()
        dup = next(c for c, k in zip(cells, keys) if k in seen or seen.add(k))
        raise ConfigError(f"{where}: cell {dup} appears twice; a [grid] list repeats a value")
    axes = {k: v for k, v in cfg.get("grid", {}).items() if isinstance(v, list) and v}
    return SweepPlan(exp, cfg, text, opts, cells, keys, config_hash(cfg), where, axes)


# ----------------------------------------------------------------------------- output paths

#: suffixes of a results file (HDF5 / netCDF-4); anything else is refused before any compute, so
#: that the figure (<name>.png beside it) can never be written over the results
RESULT_SUFFIXES = (".h5", ".hdf5", ".nc")


def resolve_output(output, job: str) -> Path:
    """The results path of a run: `output` itself, or <folder>/<job>.h5 when `output` names a
    folder (ends with '/' or is an existing folder). SweepError (one line) when the suffix is not
    one of RESULT_SUFFIXES or when a folder on the way is a file."""
    text = str(output)
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        p = p / f"{job}.h5"
    if p.suffix.lower() not in RESULT_SUFFIXES:
        raise SweepError(f"output {text!r} must end in {', '.join(RESULT_SUFFIXES)} (an HDF5/"
                         f"netCDF results file; the figure goes beside it as <name>.png)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SweepError(f"cannot write {p}: {parent} is a file, not a folder")
            break
    return p


# ----------------------------------------------------------------------------- estimates


def _leaves(cfg: dict) -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_leaves(v))
        else:
            out[k] = v
    return out


def estimate_cell(exp, cfg: dict, cell: dict) -> dict:
    """{'memory_bytes', 'seconds'} for one cell: the experiment's own `estimate(cfg, cell)` if it
    has one, else a sampling run of the cell's score (`simulate.cost.sampling_seconds`, calibrated
    on the benchmarks); memory the training set, the samples and one (B, chunk) logits block
    (PROCESS_OVERHEAD comes on top: the Python/torch process)."""
    if hasattr(exp, "estimate"):
        return dict(exp.estimate(cfg, cell))
    p = _leaves(cfg)
    p.update(cell)
    d, n = int(p.get("d", 1)), int(p.get("n_train", 1))
    b, steps, rec = int(p.get("n_samples", 1)), int(p.get("steps", 1)), int(p.get("record", 1))
    dtype = p.get("dtype", "float64")
    seconds = sampling_seconds(str(p.get("score", "empirical")), b, n, d, steps, rec, dtype,
                               str(p.get("method", "sde")))
    return {"memory_bytes": sampling_bytes(b, n, d, rec, dtype), "seconds": seconds}


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.2g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def estimate_lines(plan: SweepPlan, cells=None) -> list[str]:
    cells = plan.cells if cells is None else cells
    if not cells:
        return ["estimate: nothing to compute"]
    est = [estimate_cell(plan.exp, plan.cfg, c) for c in cells]
    mem = max(e["memory_bytes"] for e in est)
    sec = [e["seconds"] for e in est]
    return [f"estimate per cell: memory <= {_fmt_bytes(mem)} "
            f"(+ ~{_fmt_bytes(PROCESS_OVERHEAD)} per worker process), "
            f"time {_fmt_seconds(min(sec))} .. {_fmt_seconds(max(sec))} per thread (rough); "
            f"total {_fmt_seconds(sum(sec))} of compute for {len(cells)} cells"]


# ----------------------------------------------------------------------------- memory


def available_memory() -> int:
    """Bytes of memory available to new processes on this machine (MemAvailable, else total)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse_bytes(text: str) -> int:
    """'8GB', '512 MiB', '2G' -> bytes (binary units, as SLURM reads them)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", text, flags=re.I)
    if not m:
        raise ConfigError(f"[sweep.slurm] memory = {text!r}: expected e.g. '8GB' or '512MB'")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def check_memory(plan: SweepPlan, cells, backend: str, workers: int = 1, limit: int | None = None):
    """Refuse, before anything runs, a cell whose estimated memory cannot fit: in this machine's
    available memory (shared by `workers` local processes), or in the SLURM job's [sweep.slurm]
    memory. The message names the cell and what to change."""
    if not cells:
        return
    est = [(estimate_cell(plan.exp, plan.cfg, c)["memory_bytes"], c) for c in cells]
    need, cell = max(est, key=lambda e: e[0])
    if limit is None:
        if backend == "slurm":
            if not plan.opts["slurm"]["memory"]:
                return  # sized from the estimate in make_slurm_cluster
            sl = plan.opts["slurm"]
            limit = _parse_bytes(sl["memory"]) // max(sl["processes"] or sl["cores"], 1)
            where = "[sweep.slurm] memory per worker"
        elif backend == "scheduler":
            return  # remote workers: their memory is not known here
        else:
            share = workers if backend == "local" else 1
            limit = available_memory() // share
            where = f"available memory on this machine ({share} worker process{'es' * (share > 1)})"
    else:
        where = "the memory limit"
    if need + PROCESS_OVERHEAD > limit:
        raise ConfigError(
            f"cell {cell} needs about {_fmt_bytes(need + PROCESS_OVERHEAD)} but {where} is "
            f"{_fmt_bytes(limit)}; reduce n_samples / n_train / d for that cell, use "
            f"dtype = \"float32\", use fewer workers, or run where more memory is available "
            f"(SLURM: raise [sweep.slurm] memory)")


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
    16 hex digits) of the experiment module's source file."""
    import inspect

    from .store import git_commit, package_version

    try:
        src = Path(inspect.getsourcefile(get_experiment(job))).read_bytes()
        digest = hashlib.sha256(src).hexdigest()[:16]
    except (OSError, TypeError):
        digest = "unknown"
    return {"memphase_version": package_version(), "git_commit": git_commit(),
            "source_hash": digest}


def describe_code(code) -> str:
    if not isinstance(code, dict):
        return "unrecorded code version (journal of an older memphase)"
    return (f"memphase {code.get('memphase_version')}, commit {code.get('git_commit')}, "
            f"experiment source {code.get('source_hash')}")


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

    def open(self, new: bool = False, allow_code_change: bool = False):
        """Create the journal, or resume it: refused (SweepError) when it holds another config
        (unless `new`: discarded) or cells of other code (unless `allow_code_change`)."""
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
        self.dir.mkdir(parents=True, exist_ok=True)
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
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps([str(p) for p in paths]).encode()
        _atomic_write(self.dir / "figures.json", lambda fh: fh.write(text))

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- computing cells


def compute_cell(job: str, cfg: dict, cell: dict, threads: int = 1):
    """Run one cell anywhere (in-process or on a Dask worker); never raises for a cell error.

    Returns ("ok", result, meta) or ("error", message, traceback, meta); meta has seconds, host.
    """
    import torch

    from .device import tune_allocator

    tune_allocator()
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    meta = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        result = get_experiment(job).run_cell(cfg, cell)
        meta["seconds"] = round(time.perf_counter() - t0, 4)
        return ("ok", result, meta)
    except Exception as e:  # a cell's failure is data: it is recorded, not raised
        meta["seconds"] = round(time.perf_counter() - t0, 4)
        return ("error", f"{type(e).__name__}: {e}", traceback.format_exc(), meta)
    finally:
        if threads:
            torch.set_num_threads(old)


def _iter_inprocess(plan, todo):
    for key, cell in todo:
        yield key, cell, compute_cell(plan.job, plan.cfg, cell, plan.opts["threads"])


def _iter_dask(client, plan, todo):
    from distributed import as_completed

    threads = plan.opts["threads"] or 1
    futs = {}
    for key, cell in todo:
        fut = client.submit(compute_cell, plan.job, plan.cfg, cell, threads, pure=False)
        futs[fut] = (key, cell)
    for fut in as_completed(list(futs)):
        key, cell = futs.pop(fut)
        try:
            out = fut.result()
        except Exception as e:  # the worker died (KilledWorker), lost connection, ...
            out = ("error", f"{type(e).__name__}: {e}", traceback.format_exc(), {"host": "?"})
        fut.release()
        yield key, cell, out


@contextlib.contextmanager
def _workers_ignore_sigint():
    """Start worker processes with SIGINT ignored (inherited through exec; Python then installs
    no KeyboardInterrupt handler): a Ctrl-C reaches the whole process group, and only the driver
    should react (one line), closing the cluster, instead of every worker printing a traceback."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def dask_client(plan: SweepPlan, backend: str):
    """A distributed.Client for the backend (closing what it started on exit)."""
    import logging

    from distributed import Client

    opts = plan.opts
    if backend == "local":
        from distributed import LocalCluster

        import warnings

        with _workers_ignore_sigint(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "port in use" and similar start-up chatter
            # cell errors come back as data (compute_cell); a worker's own log at shutdown
            # (lost heartbeat after Ctrl-C) is noise
            cluster = LocalCluster(n_workers=opts["workers"], threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   silence_logs=logging.CRITICAL)
        client = Client(cluster)
    elif backend == "scheduler":
        addr = opts["scheduler"]
        if not addr:
            raise SweepError("backend 'scheduler' needs an address: --scheduler tcp://host:port")
        import dask

        try:  # waits distributed.comm.timeouts.connect (dask config, default 30 s)
            client = Client(addr, timeout=dask.config.get("distributed.comm.timeouts.connect"))
        except (OSError, TimeoutError) as e:
            raise SweepError(f"cannot reach the Dask scheduler at {addr}: {e}") from None
        cluster = None
    elif backend == "slurm":
        cluster = make_slurm_cluster(plan)
        cluster.scale(jobs=opts["workers"])
        client = Client(cluster)
    else:
        raise SweepError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def make_slurm_cluster(plan: SweepPlan):
    """A dask-jobqueue SLURMCluster from [sweep.slurm]: each SLURM job runs `cores` worker
    processes of one thread; memory defaults to 2x the largest cell estimate + 1 GB per worker."""
    from dask_jobqueue import SLURMCluster

    s = plan.opts["slurm"]
    mem = ""
    if not s["memory"]:
        per = max(estimate_cell(plan.exp, plan.cfg, c)["memory_bytes"] for c in plan.cells)
        mem = f"{int(np.ceil(s['cores'] * (2 * per / 1e9 + 1)))}GB"
    kw = cluster_kwargs(s, mem)
    return SLURMCluster(**kw)


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

    from .store import git_commit, package_version

    def write(fh):
        with h5py.File(fh, "w") as f:
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

    _atomic_write(path, write)


def read_part(path, plan: SweepPlan | None = None) -> dict:
    """{key: (result, meta)} of a part file; ResultFileError naming the file when it is missing,
    corrupt, foreign, or (given a plan) made with a different config."""
    import h5py

    from analysis.results import ResultFileError, check_readable, hdf5_open_error

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


# ----------------------------------------------------------------------------- figures


def _place(src: Path, dst: Path, replace: bool) -> bool:
    """Move `src` to `dst`; without `replace` never over an existing file (False if taken)."""
    if replace:
        os.replace(src, dst)
        return True
    try:
        os.link(src, dst)  # atomic: fails if dst exists
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        if dst.exists():
            return False
        os.replace(src, dst)
        return True
    src.unlink()
    return True


def draw_figures(plan: SweepPlan, ds, target, journal=None) -> list[Path]:
    """Draw the experiment's figure(s) of `ds` beside `target` and return the paths written.

    The figure is drawn in a temporary folder and then moved to <stem>.png (and whatever
    <stem>_*.png the experiment draws). A file the run did not create is never overwritten: if a
    name is taken, the figure goes to <stem>-1.png, <stem>-2.png, ... (a warning says so). Names
    recorded in `journal` (an earlier, interrupted attempt of this run) may be replaced."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.fig-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        plan.exp.plot(ds, tmp / f"{target.stem}.png")
        made = sorted(p.name for p in tmp.iterdir() if p.name.startswith(target.stem))
        ours = set(journal.figures()) if journal is not None else set()

        def names(stem):
            return [target.parent / (stem + n[len(target.stem):]) for n in made]

        k, stem = 0, target.stem
        while any(p.exists() and str(p) not in ours for p in names(stem)):
            k += 1
            stem = f"{target.stem}-{k}"
        dst = names(stem)
        if journal is not None:
            journal.note_figures(dst)
        for n, d in zip(made, dst):
            if not _place(tmp / n, d, replace=str(d) in ours):
                raise SweepError(f"{d} appeared while the figure was drawn; rerun to draw it")
        if k:
            print(f"memphase: warning: {names(target.stem)[0]} exists and was not written by this "
                  f"run; kept it, figure written to {dst[0]}", file=sys.stderr)
        return dst
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- driver


def _existing_is_same(target: Path, plan: SweepPlan, part: bool) -> bool:
    if part:
        import h5py

        from analysis.results import check_readable, hdf5_open_error

        check_readable(target, "part file")
        try:
            with h5py.File(target, "r") as f:
                old = f.attrs.get("config_hash")
        except OSError as e:
            raise hdf5_open_error(target, e) from None
        return old == plan.config_hash
    from analysis.results import open_results

    with open_results(target) as old:
        h = old.attrs.get("config_hash")
        return h == plan.config_hash if h is not None else old.attrs.get("config") == plan.text


def _assemble(plan, loaded, wall, backend):
    from .store import provenance

    results = [loaded[k][0] for k in plan.keys]
    metas = [loaded[k][1] for k in plan.keys]
    ds = plan.exp.assemble(plan.cfg, plan.cells, results)
    secs = [float(m.get("seconds", 0.0)) for m in metas]
    seeds = plan.cfg.get("grid", {}).get("seeds", [])
    ds.attrs.update(provenance(
        plan.text, seeds, job=plan.job, config_path=plan.path, config_hash=plan.config_hash,
        cells=len(plan.cells), backend=backend, runtime_s=round(sum(secs), 3),
        wall_s=round(wall, 3),
        cell_seconds_total=round(sum(secs), 3), cell_seconds_max=round(max(secs), 3),
        hosts=sorted({m.get("host", "?") for m in metas}),
        code_versions=code_versions(metas), **key_parameters(plan.cfg)))
    return ds


def key_parameters(cfg: dict) -> dict:
    """Every fixed (non-grid) config value as its own attribute `param_<table>_<key>`, e.g.
    `param_data_d`, `param_sampler_steps`, `param_sampler_dtype`: a notebook reads d, N, the
    schedule, thresholds, steps and dtype without parsing the config text. Grid axes are
    coordinates already; nested lists become JSON."""
    out = {}

    def walk(table, prefix):
        for k, v in table.items():
            if prefix == "" and k in ("grid", "sweep"):
                continue
            name = f"{prefix}_{k}" if prefix else k
            if isinstance(v, dict):
                walk(v, name)
            elif isinstance(v, bool):
                out[f"param_{name}"] = int(v)
            elif isinstance(v, (int, float, str)):
                out[f"param_{name}"] = v
            elif v is not None:
                out[f"param_{name}"] = json.dumps(v)

    walk(cfg, "")
    return out


def code_versions(metas) -> list[dict]:
    """Every code version that computed cells (`code_identity` + 'cells': how many), in order of
    first appearance; cells of a journal that predates the record count as 'unrecorded'."""
    out: dict = {}
    for m in metas:
        code = m.get("code") if isinstance(m.get("code"), dict) else {"source_hash": "unrecorded"}
        key = json.dumps(code, sort_keys=True)
        out.setdefault(key, dict(code, cells=0))["cells"] += 1
    return list(out.values())


def run_sweep(config_path, output=None, backend=None, workers=None, scheduler=None, shard=None,
              new=False, progress=True, plot=True, threads=None, figures=None,
              allow_code_change=False) -> Path:
    """Run (or resume) a sweep; return the path written (final file, or part file for a shard).

    Refuses (SweepError / ConfigError) an output that is not .h5/.hdf5/.nc, a held lock, a
    journal of another config without `new`, a journal of cells computed by other code (another
    memphase version, commit or experiment source) without `allow_code_change`, or an existing
    final file of another config. Raises SweepIncomplete if cells failed. `figures`, if a list,
    receives the figure paths drawn.
    """
    plan = load_sweep(config_path)
    if workers is not None:
        plan.opts["workers"] = int(workers)
    if threads is not None:
        plan.opts["threads"] = int(threads)
    if scheduler:
        plan.opts["scheduler"] = scheduler
        backend = backend or "scheduler"
    backend = backend or plan.opts["backend"]
    if backend not in BACKENDS:
        raise SweepError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    shard = parse_shard(shard, plan.opts["shards"])
    out = resolve_output(output or plan.cfg["output"], plan.job)
    target = part_path(out, *shard) if shard else out
    mine = [(k, c) for i, (k, c) in enumerate(zip(plan.keys, plan.cells))
            if shard is None or i % shard[1] == shard[0]]

    if not target.exists():
        check_memory(plan, [c for _, c in mine], backend, plan.opts["workers"])
    with OutputLock(target):
        journal = Journal(target, plan, code=code_identity(plan.job))
        remove_stale_temporaries(target, journal.dir)
        if target.exists():
            if not _existing_is_same(target, plan, part=bool(shard)):
                raise SweepError(f"{target} exists and was made with a different config; choose "
                                 f"another --output (finished results are never overwritten)")
            if journal.exists() and journal.stored_hash() in (plan.config_hash, None):
                # killed after the final write, before the figure and the cleanup
                _finish(plan, target, journal, plot and not shard, figures)
            return target
        journal.open(new=new, allow_code_change=allow_code_change)
        t0 = time.time()
        loaded = {}
        for k in journal.done_keys() & {k for k, _ in mine}:
            got = journal.load(k)
            if got is not None:
                loaded[k] = got
        todo = [(k, c) for k, c in mine if k not in loaded]
        failed = {}
        if progress and todo:
            for line in estimate_lines(plan, [c for _, c in todo]):
                print(line, file=sys.stderr)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(mine), initial=len(loaded), unit="cell", disable=not progress,
                   desc=f"{plan.job}" + (f" shard {shard[0]}/{shard[1]}" if shard else ""))
        bar.set_postfix(done=len(loaded), failed=0)
        try:
            with contextlib.ExitStack() as stack:
                if not todo:
                    stream = iter(())
                elif backend == "inprocess":
                    stream = _iter_inprocess(plan, todo)
                else:
                    client = stack.enter_context(dask_client(plan, backend))
                    stream = _iter_dask(client, plan, todo)
                for key, cell, out_ in stream:
                    if out_[0] == "ok":
                        journal.record(key, cell, out_[1], out_[2])
                        bar.update(1)
                    else:
                        _, msg, tb, meta = out_
                        journal.record_failure(key, cell, msg, tb, meta)
                        failed[key] = (cell, msg)
                        bar.write(f"memphase: cell {cell} failed: {msg}", file=sys.stderr)
                    bar.set_postfix(done=bar.n, failed=len(failed))
        finally:
            bar.close()
        if failed:
            cell, msg = next(iter(failed.values()))
            raise SweepIncomplete(
                f"{len(failed)} of {len(mine)} cells failed (first: {cell}: {msg}); errors are in "
                f"{journal.dir}; finished cells are kept and rerunning the same command retries "
                f"only the missing ones")
        # the final result is always built from the journal: resumed == uninterrupted
        for k, _ in mine:
            got = journal.load(k)
            if got is None:
                raise SweepIncomplete(f"journal cell {k} was unreadable; rerun to recompute it")
            loaded[k] = got
        wall = time.time() - t0
        if shard:
            check_free_space(target, sum(np.asarray(v).nbytes for k, _ in mine
                                         for v in loaded[k][0].values()), "the part file")
            _write_part(target, plan, shard, [(k, c, *loaded[k]) for k, c in mine])
        else:
            ds = _assemble(plan, loaded, wall, backend)
            _write_final(ds, target)
        _finish(plan, target, journal, plot and not shard, figures, ds=None if shard else ds)
    return target


def _write_final(ds, target):
    """The final Dataset, atomically, after a free-space check (HDF5 crashes on a full disk)."""
    from .store import write_dataset

    check_free_space(target, ds.nbytes)
    try:
        write_dataset(ds, target)
    except OSError as e:
        if disk_full(e):  # ENOSPC, EDQUOT: the disk filled up while writing
            raise SweepError(f"disk full while writing {target}; free some space and rerun the "
                             f"same command (finished cells are kept)") from None
        raise


def _finish(plan, target, journal, plot, figures, ds=None):
    """After the final write: draw the figure, then remove the journal (its presence beside a
    finished file means the figure may be missing: the next run draws it)."""
    if plot:
        if ds is None:
            from analysis.results import open_results

            with open_results(target) as ds:
                drawn = draw_figures(plan, ds.load(), target, journal)
        else:
            drawn = draw_figures(plan, ds, target, journal)
        if figures is not None:
            figures.extend(drawn)
    journal.remove()


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


def merge_parts(config_path, output=None, progress=True, plot=True, figures=None,
                allow_code_change=False) -> Path:
    """Assemble `<stem>.part-I-of-N.h5` (all I) into the final Dataset, written atomically;
    output, figure and code-version rules as in `run_sweep` (parts computed by different code
    are refused without `allow_code_change`)."""
    plan = load_sweep(config_path)
    out = resolve_output(output or plan.cfg["output"], plan.job)
    with OutputLock(out):
        journal = Journal(out, plan)  # only a marker here: final file written, figure pending
        remove_stale_temporaries(out, journal.dir)
        if out.exists():
            if not _existing_is_same(out, plan, part=False):
                raise SweepError(f"{out} exists and was made with a different config; choose "
                                 f"another --output (finished results are never overwritten)")
            if journal.exists() and journal.stored_hash() in (plan.config_hash, None):
                _finish(plan, out, journal, plot, figures)
            return out
        found = find_parts(out)
        if not found:
            raise SweepError(f"no part files {out.stem}.part-I-of-N{out.suffix} in "
                             f"{out.parent}; run `memphase sweep CONFIG --shard I/N` first")
        if len(found) > 1:
            raise SweepError(f"part files of different shard counts {sorted(found)} beside {out}; "
                             f"remove the stale ones")
        (n, parts), = found.items()
        missing = sorted(set(range(n)) - set(parts))
        if missing:
            raise SweepError(f"missing part files for shards {missing} of {n} (e.g. "
                             f"{part_path(out, missing[0], n)}); rerun those shards")
        t0 = time.time()
        loaded = {}
        for i in sorted(parts):
            loaded.update(read_part(parts[i], plan))
        lost = [c for k, c in zip(plan.keys, plan.cells) if k not in loaded]
        if lost:
            raise SweepError(f"{len(lost)} cells are in no part file (first: {lost[0]})")
        codes = code_versions([m for _, m in loaded.values()])
        if len(codes) > 1 and not allow_code_change:
            _refuse_code_change(f"the part files of {out}", codes[0], codes[1],
                                "or rerun the shards computed by the old code")
        ds = _assemble(plan, loaded, time.time() - t0, f"shards/{n}")
        journal.open(new=True)
        _write_final(ds, out)
        _finish(plan, out, journal, plot, figures, ds=ds)
    return out


# ----------------------------------------------------------------------------- info


def describe(path) -> list[str]:
    """Lines describing a config (plan, estimate, journal status) or a results/part file."""
    p = Path(path)
    if p.suffix == ".toml":
        plan = load_sweep(p)
        out = Path(plan.cfg["output"])
        lines = [f"config {p}: job {plan.job!r}, config hash {plan.config_hash}",
                 "axes: " + ", ".join(f"{k}[{len(v)}]" for k, v in plan.axes.items())
                 + f" -> {len(plan.cells)} cells",
                 f"backend {plan.opts['backend']}, workers {plan.opts['workers']}, "
                 f"threads per cell {plan.opts['threads']}"]
        lines += estimate_lines(plan)
        lines.append(f"output {out}: " + ("exists" if out.exists() else "not written yet"))
        j = Journal(out, plan)
        if j.exists():
            fails = j.failures()
            same = j.stored_hash() == plan.config_hash
            lines.append(f"journal {j.dir}: {len(j.done_keys())} cells done, {len(fails)} failed"
                         + ("" if same else " (DIFFERENT config: resume refused without --new)"))
            for rec in list(fails.values())[:5]:
                lines.append(f"  failed {rec.get('cell')}: {rec.get('error')}")
        for n, parts in find_parts(out).items():
            lines.append(f"part files: {len(parts)} of {n} shards present")
        return lines
    import h5py

    from analysis.results import ResultFileError, open_results

    with contextlib.suppress(OSError):
        with h5py.File(p, "r") as f:
            if "memphase_part" in f.attrs:
                cells = read_part(p)
                return [f"part file {p}: shard {f.attrs['memphase_part']}, {len(cells)} cells, "
                        f"config hash {f.attrs['config_hash']}; assemble with `memphase merge`"]
    try:
        ds = open_results(p)
    except ResultFileError:
        raise
    with ds:
        lines = [f"results {p}: dims " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items())]
        for name, v in ds.data_vars.items():
            unit = v.attrs.get("quantity", v.attrs.get("units", "?"))
            lines.append(f"  {name}{tuple(v.dims)} [{unit}] "
                         f"{v.attrs.get('long_name', '')}")
        for k in ("job", "cells", "backend", "seeds", "memphase_version", "git_commit", "host",
                  "created", "runtime_s", "cell_seconds_total"):
            if k in ds.attrs:
                lines.append(f"  {k}: {ds.attrs[k]}")
    return lines
