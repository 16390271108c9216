"""Sweeps: run every cell of a job config (axes x fixed params x seeds) on a backend, crash-safe.

A sweep config is a job config (see `memphase.simulate.experiments`): its [grid] lists are the axes, the
other keys are fixed parameters, seeds are an axis. An optional [sweep] table says how to run it
(backend, workers, threads, SLURM settings); it never changes the results, so it is not part of
the config identity (`config_hash`).

Workers compute, one writer stores. The driver process (the one running `memphase sweep`) is the
only one that writes files:

    <output>.lock       exclusive lock (pid, host): a second run on the same output is refused
    <output>.cells/     journal: manifest.json plus batch-<seq>.npz files of finished cells
                        (one per 512 cells or 2 s, each written to a temporary name, fsynced and
                        renamed: a kill loses at most the batch in flight; `journal`);
                        a failed cell leaves <cell key>.error.json and is retried on resume
    <output>.cells/training/   resume files of cells that train a network (written by the
                        process training it; MEMPHASE_TRAIN_RESUME_DIR, see
                        `memphase.simulate.learning.training_resume`): a killed or requeued run continues
                        that training where it stopped
    <output>            the final Dataset, written atomically once every cell is done; the
                        journal is then removed (the final file holds everything it held)

After a kill at any moment, rerunning the same command loads the finished cells and computes the
rest. The final Dataset is always assembled from the journal, so a resumed run and an
uninterrupted one give equal Datasets. Sharded runs (`--shard I/N`, e.g. SLURM job arrays) write
`<stem>.part-I-of-N.h5` instead (one array per result variable + a cell index: `shards`); `merge`
assembles the parts into the final file.
"""

from __future__ import annotations

import contextlib
import os
import json
import sys
import time
from pathlib import Path

import numpy as np

# every name of the former single module, unchanged (memphase.simulate.sweep.<name> keeps working)
from .plan import (  # noqa: F401
    BACKENDS,
    PROCESS_OVERHEAD,
    SWEEP_SCHEMA,
    SweepIncomplete,
    SweepPlan,
    config_hash,
    cell_key,
    load_sweep,
    RESULT_SUFFIXES,
    resolve_output,
    _leaves,
    estimate_cell,
    _fmt_bytes,
    _fmt_seconds,
    estimate_lines,
    assembly_seconds,
    available_memory,
    _parse_bytes,
    CONFIRM_SECONDS,
    check_confirmed,
    check_memory,
    SLURM_MEM_MARGIN,
    slurm_mem_request)
from .journal import (  # noqa: F401
    _now,
    _encode_result,
    _decode_value,
    code_identity,
    describe_code,
    _refuse_code_change,
    Journal)
from .backends import (  # noqa: F401
    STEPS_TOPIC,
    compute_cell,
    _iter_inprocess,
    _iter_dask,
    _workers_ignore_sigint,
    dask_client,
    make_slurm_cluster)
from .shards import (  # noqa: F401
    parse_shard,
    part_path,
    _write_part,
    read_part,
    find_parts)
from .progress import phase, step_event_handler, step_sink, ticking
from .figures import (  # noqa: F401
    _place,
    draw_figures)
from ..run.config import ConfigError  # noqa: F401
from ..run.config_bounds import check_devices, check_sweep_options
from ..run.slurm_options import check_scheduler_address
from ..run.files import (  # noqa: F401
    OutputLock, SweepError, check_free_space, disk_full, remove_stale_temporaries,
    atomic_write as _atomic_write, fsync_dir as _fsync_dir)

__all__ = ["SweepError", "SweepIncomplete", "SweepPlan", "SWEEP_SCHEMA", "BACKENDS", "load_sweep",
           "run_sweep", "merge_parts", "estimate_cell", "check_memory", "part_path", "parse_shard",
           "OutputLock", "Journal", "describe", "RESULT_SUFFIXES", "resolve_output",
           "draw_figures"]

# ----------------------------------------------------------------------------- driver


def _existing_is_same(target: Path, plan: SweepPlan, part: bool) -> bool:
    if part:
        import h5py

        from memphase.analysis.results import check_readable, hdf5_open_error

        check_readable(target, "part file")
        try:
            with h5py.File(target, "r") as f:
                old = f.attrs.get("config_hash")
        except OSError as e:
            raise hdf5_open_error(target, e) from None
        return old == plan.config_hash
    from memphase.analysis.results import open_results

    with open_results(target) as old:
        h = old.attrs.get("config_hash")
        return h == plan.config_hash if h is not None else old.attrs.get("config") == plan.text


def _assemble(plan, loaded, t0, backend):
    """The final Dataset from the journal's cells, with the provenance. wall_s counts from the
    start of the run (t0, time.time()) to the end of the assembly: the cells and every phase
    after them that computes (the job's theory in `assemble`), not only the cells."""
    from ..run.store import provenance

    results = [loaded[k][0] for k in plan.keys]
    metas = [loaded[k][1] for k in plan.keys]
    ds = plan.exp.assemble(plan.cfg, plan.cells, results)
    secs = [float(m.get("seconds", 0.0)) for m in metas]
    seeds = plan.cfg.get("grid", {}).get("seeds", [])
    ds.attrs.update(provenance(
        plan.text, seeds, job=plan.job, config_path=plan.path, config_hash=plan.config_hash,
        cells=len(plan.cells), backend=backend, runtime_s=round(sum(secs), 3),
        wall_s=round(time.time() - t0, 3),
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
              allow_code_change=False, yes=True) -> Path:
    """Run (or resume) a sweep; return the path written (final file, or part file for a shard).

    `yes=False` (the command line without --yes) refuses, before anything runs, cells whose
    estimated compute exceeds CONFIRM_SECONDS (`check_confirmed`).

    Refuses (SweepError / ConfigError) an output that is not .h5/.hdf5/.nc, a held lock, a
    journal of another config without `new`, a journal of cells computed by other code (another
    memphase version, commit or memphase source) without `allow_code_change`, or an existing
    final file of another config. Raises SweepIncomplete if cells failed. `figures`, if a list,
    receives the figure paths drawn.
    """
    plan = load_sweep(config_path)
    if workers is not None:
        plan.opts["workers"] = int(workers)
        if not 1 <= plan.opts["workers"] <= 100000:
            raise ConfigError(f"--workers {workers}: must be 1 .. 100000")
    if threads is not None:
        plan.opts["threads"] = int(threads)
        if plan.opts["threads"] < 0:
            raise ConfigError(f"--threads {threads}: must be >= 0 (0: torch's default)")
    check_sweep_options(plan.opts)  # the command line's values obey the config's bounds
    if scheduler:
        try:
            check_scheduler_address(scheduler)
        except ValueError as e:
            raise ConfigError(f"--scheduler {scheduler!r}: {e}") from None
        plan.opts["scheduler"] = scheduler
        backend = backend or "scheduler"
    backend = backend or plan.opts["backend"]
    if backend not in BACKENDS:
        raise SweepError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if backend != plan.opts["backend"]:  # e.g. `memphase run` of a [sweep] backend = "slurm"
        check_devices(plan.cfg, backend)  # config: the cells run here, so CUDA must be here
    shard = parse_shard(shard, plan.opts["shards"])
    out = resolve_output(output or plan.cfg["output"], plan.job)
    target = part_path(out, *shard) if shard else out
    mine = [(k, c) for i, (k, c) in enumerate(zip(plan.keys, plan.cells))
            if shard is None or i % shard[1] == shard[0]]

    if not target.exists():
        try:
            check_confirmed(plan, [c for _, c in mine], yes)  # cheap: samples a large grid
        except ConfigError:
            # a cell that cannot fit at all is said first: --yes would not help it
            check_memory(plan, [c for _, c in mine], backend, plan.opts["workers"])
            raise
        check_memory(plan, [c for _, c in mine], backend, plan.opts["workers"])
        # before compute and before the lock: a full disk is refused naming the file, leaving
        # nothing behind (the final write checks again with the Dataset's real size)
        check_free_space(target, 0)
    with OutputLock(target):
        journal = Journal(target, plan, code=code_identity(plan.job))
        journal.check_ours()  # a folder of the user's own at <target>.cells: refused, untouched
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
        mine_keys = {k for k, _ in mine}
        # one read per batch file; unreadable ones are set aside and their cells recomputed
        loaded = journal.load_all(mine_keys)
        todo = [(k, c) for k, c in mine if k not in loaded]
        loaded = {k: None for k in loaded}  # only the count is needed until the end
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
                from ..learning.training_resume import resume_dir_env

                # a cell that trains a network keeps its resume file here: a requeued task
                # continues that training (removed with the journal)
                stack.enter_context(resume_dir_env(journal.dir / "training"))
                if not todo:
                    stream = iter(())
                elif backend == "inprocess":
                    stream = _iter_inprocess(plan, todo)
                else:
                    client = stack.enter_context(dask_client(plan, backend))
                    topic = None
                    if progress:  # training cells on the workers show "step k/K" here too
                        topic = STEPS_TOPIC
                        client.subscribe_topic(topic, step_event_handler(bar, failed))
                    stream = _iter_dask(client, plan, todo, backend=backend, steps_topic=topic)
                stack.enter_context(ticking(bar))  # the clock moves during a long cell
                if backend == "inprocess" and progress:  # training cells show "step k/K"
                    from ..base.step_progress import reporting

                    stack.enter_context(reporting(step_sink(bar, failed)))
                try:
                    _record_stream(stream, journal, bar, failed)
                except BaseException:
                    # the last batch is written on every way out that unwinds (SIGTERM, Ctrl-C)
                    _flush_quietly(journal)
                    raise
        finally:
            bar.close()
        journal.flush()  # a full disk raises here, naming the journal
        if failed:
            cell, msg = next(iter(failed.values()))
            raise SweepIncomplete(
                f"{len(failed)} of {len(mine)} cells failed (first: {cell}: {msg}); errors are in "
                f"{journal.dir}; finished cells are kept and rerunning the same command retries "
                f"only the missing ones")
        # the final result is always built from the journal: resumed == uninterrupted
        loaded = journal.load_all(mine_keys)
        lost = next((k for k, _ in mine if k not in loaded), None)
        if lost is not None:
            raise SweepIncomplete(f"journal cell {lost} was unreadable; rerun to recompute it")
        if shard:
            check_free_space(target, sum(np.asarray(v).nbytes for k, _ in mine
                                         for v in loaded[k][0].values()), "the part file")
            with phase("writing the part file", progress):
                _write_part(target, plan, shard, [(k, c, *loaded[k]) for k, c in mine])
        else:
            with phase(f"{plan.job}: assembling the results and their theory", progress):
                ds = _assemble(plan, loaded, t0, backend)
            with phase(f"{plan.job}: writing {target.name}", progress):
                _write_final(ds, target)
        _finish(plan, target, journal, plot and not shard, figures, ds=None if shard else ds,
                progress=progress)
    return target


def _record_stream(stream, journal, bar, failed):
    """Journal each outcome of `stream` as it arrives (finished cells in batches, failures at
    once) and move the progress bar."""
    for key, cell, out_ in stream:
        if out_[0] == "ok":
            journal.record(key, cell, out_[1], out_[2])
            bar.update(1)
        else:
            _, msg, tb, meta = out_
            journal.record_failure(key, cell, msg, tb, meta)
            failed[key] = (cell, msg)
            bar.write(f"memphase: cell {cell} failed: {msg}", file=sys.stderr)
        if out_[0] != "ok" or bar.n % 64 == 0:  # the postfix costs more than a tiny cell
            bar.set_postfix(done=bar.n, failed=len(failed), refresh=False)


def _flush_quietly(journal):
    """Write the journal's pending batch while another exception unwinds; a failure to write
    it (full disk) is a warning, the unwinding exception stays the one reported."""
    try:
        journal.flush()
    except Exception as e:  # noqa: BLE001
        print(f"memphase: warning: the last journal batch was not written ({e}); its cells "
              f"are recomputed by the next run", file=sys.stderr)


def _write_final(ds, target):
    """The final Dataset, atomically, after a free-space check (HDF5 crashes on a full disk)."""
    from ..run.store import write_dataset

    check_free_space(target, ds.nbytes)
    try:
        write_dataset(ds, target)
    except OSError as e:
        if disk_full(e):  # ENOSPC, EDQUOT: the disk filled up while writing
            raise SweepError(f"disk full while writing {target}; free some space and rerun the "
                             f"same command (finished cells are kept)") from None
        raise


def _finish(plan, target, journal, plot, figures, ds=None, progress=False):
    """After the final write: draw the figure, then remove the journal (its presence beside a
    finished file means the figure may be missing: the next run draws it)."""
    if plot:
        with phase(f"{plan.job}: drawing figures", progress):
            _draw(plan, target, journal, figures, ds)
    journal.remove()


def _draw(plan, target, journal, figures, ds):
    if ds is None:
        from memphase.analysis.results import open_results

        with open_results(target) as ds:
            drawn = draw_figures(plan, ds.load(), target, journal)
    else:
        drawn = draw_figures(plan, ds, target, journal)
    if figures is not None:
        figures.extend(drawn)


def merge_parts(config_path, output=None, progress=True, plot=True, figures=None,
                allow_code_change=False) -> Path:
    """Assemble `<stem>.part-I-of-N.h5` (all I) into the final Dataset, written atomically;
    output, figure and code-version rules as in `run_sweep` (parts computed by different code
    are refused without `allow_code_change`)."""
    plan = load_sweep(config_path)
    out = resolve_output(output or plan.cfg["output"], plan.job)
    with OutputLock(out):
        journal = Journal(out, plan)  # only a marker here: final file written, figure pending
        journal.check_ours()
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
        with phase(f"{plan.job}: assembling the results and their theory", progress):
            ds = _assemble(plan, loaded, t0, f"shards/{n}")
        journal.open(new=True)
        with phase(f"{plan.job}: writing {out.name}", progress):
            _write_final(ds, out)
        _finish(plan, out, journal, plot, figures, ds=ds, progress=progress)
    return out


# ----------------------------------------------------------------------------- info


def describe(path) -> list[str]:
    """Lines describing a config (plan, estimate, journal status) or a results/part file."""
    p = Path(path)
    if p.suffix == ".toml":
        plan = load_sweep(p)
        out = Path(os.path.expanduser(plan.cfg["output"]))
        lines = [f"config {p}: job {plan.job!r}, config hash {plan.config_hash}",
                 "axes: " + ", ".join(f"{k}[{len(v)}]" for k, v in plan.axes.items())
                 + f" -> {len(plan.cells)} cells",
                 f"backend {plan.opts['backend']}, workers {plan.opts['workers']}, "
                 f"threads per cell {plan.opts['threads']}"]
        lines += estimate_lines(plan)
        lines.append(f"slurm memory per task: --mem={slurm_mem_request(plan)} (largest cell "
                     f"estimate + process, x{SLURM_MEM_MARGIN}; `memphase examples "
                     f"slurm/submit_array.sh` asks for it)")
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

    from memphase.analysis.results import ResultFileError, check_readable, open_results

    check_readable(p)  # a FIFO named like a results file would block h5py's open
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
