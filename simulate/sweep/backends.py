"""Computing cells: in process, on Dask (LocalCluster, a running scheduler) or on SLURM through
dask-jobqueue."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback

import numpy as np

from ..experiments import get_experiment
from ..run.slurm_options import cluster_kwargs
from ..run.files import SweepError
from .plan import BACKENDS, SweepPlan, cell_estimates, estimate_cell


# ----------------------------------------------------------------------------- computing cells


#: the Dask event topic on which workers send a training cell's steps to the driver's bar
STEPS_TOPIC = "memphase-training-steps"
#: a worker sends a cell's training step at most this often (seconds), and always the last one
STEPS_EVERY_S = 0.5


def _worker_step_sink(topic: str):
    """A `memphase.simulate.base.step_progress` sink for a cell running on a Dask worker: sends
    {"pid", "step", "total"} as an event on `topic` (throttled to STEPS_EVERY_S), which the
    driver's `Client.subscribe_topic` handler writes into the bar. None outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    last = [float("-inf")]

    def sink(step, total):
        now = time.monotonic()
        if step < total and now - last[0] < STEPS_EVERY_S:
            return
        last[0] = now
        worker.log_event(topic, {"pid": os.getpid(), "step": step, "total": total})
    return sink


#: experiment modules by job name, and whether this process's allocator is tuned: looked up once
#: per process, not once per cell (a tiny cell costs well under a millisecond of engine time)
_EXPERIMENTS: dict = {}
_TUNED: list = []


def compute_cell(job: str, cfg: dict, cell: dict, threads: int = 1, steps_topic=None):
    """Run one cell anywhere (in-process or on a Dask worker); never raises for a cell error.
    `steps_topic`: on a Dask worker, send the cell's training steps as events on that topic
    (`_worker_step_sink`).

    Returns ("ok", result, meta) or ("error", message, traceback, meta); meta has seconds, host.
    """
    import torch

    from ..base.step_progress import reporting

    if not _TUNED:
        from ..base.device import tune_allocator

        tune_allocator()
        _TUNED.append(True)
    exp = _EXPERIMENTS.get(job) or _EXPERIMENTS.setdefault(job, get_experiment(job))
    old = torch.get_num_threads()
    change = bool(threads) and threads != old
    if change:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    meta = {"host": _HOST, "pid": os.getpid()}
    sink = _worker_step_sink(steps_topic) if steps_topic else None
    try:
        with contextlib.ExitStack() as stack:
            if sink is not None:
                stack.enter_context(reporting(sink))
            result = exp.run_cell(cfg, cell)
        meta["seconds"] = round(time.perf_counter() - t0, 4)
        return ("ok", result, meta)
    except Exception as e:  # a cell's failure is data: it is recorded, not raised
        meta["seconds"] = round(time.perf_counter() - t0, 4)
        return ("error", f"{type(e).__name__}: {e}", traceback.format_exc(), meta)
    finally:
        if change:
            torch.set_num_threads(old)


_HOST = socket.gethostname()


def _iter_inprocess(plan, todo):
    for key, cell in todo:
        yield key, cell, compute_cell(plan.job, plan.cfg, cell, plan.opts["threads"])


def compute_cells(job: str, cfg: dict, cells: list, threads: int = 1, steps_topic=None) -> list:
    """`compute_cell` for each cell of a batch, in order (one Dask task for many tiny cells)."""
    return [compute_cell(job, cfg, cell, threads, steps_topic) for cell in cells]


#: a Dask task should carry at least this many estimated seconds of cells (tiny cells are batched,
#: so the scheduler's per-task cost, ~1 ms, stays small beside them) ...
BATCH_SECONDS = 0.5
#: ... and at most this many cells (a lost batch is recomputed whole)
MAX_BATCH = 256
#: batches in flight per worker process: enough to keep every worker busy, bounded so that a 10^6
#: cell sweep never holds 10^6 futures in the client and the scheduler
IN_FLIGHT_PER_WORKER = 4


def batch_size(plan, todo, sample: int = 32) -> int:
    """Cells per Dask task: BATCH_SECONDS over the median estimated cell time (of up to `sample`
    cells spread over `todo`), between 1 and MAX_BATCH."""
    if not todo:
        return 1
    step = max(1, len(todo) // sample)
    secs = [estimate_cell(plan.exp, plan.cfg, c)["seconds"] for _, c in todo[::step][:sample]]
    per = float(np.median(secs)) if secs else 0.0
    return int(min(MAX_BATCH, max(1, BATCH_SECONDS // per if per > 0 else MAX_BATCH)))


def _worker_slots(plan, client=None, backend=None) -> int:
    """Cells that run at once. SLURM: workers (SLURM jobs) x worker processes per job
    ([sweep.slurm] processes, else cores: the jobs may not have started yet). Local cluster or
    running scheduler: the client's worker threads now, at least `workers` ([sweep.slurm] is not
    read: it describes SLURM jobs this backend never submits)."""
    opts = plan.opts
    workers = int(opts["workers"] or 1)
    if (backend or opts.get("backend")) == "slurm":
        sl = opts.get("slurm") or {}
        return max(1, workers * int(sl.get("processes") or sl.get("cores") or 1))
    threads = 0
    with contextlib.suppress(Exception):
        threads = sum(client.nthreads().values()) if client is not None else 0
    return max(1, workers, threads)


def _iter_dask(client, plan, todo, batch=None, max_in_flight=None, backend=None,
               steps_topic=None):
    """Cells on Dask in batches (`batch_size`), at most `max_in_flight` batches submitted at a
    time (IN_FLIGHT_PER_WORKER per worker process), the config scattered to the workers once
    instead of pickled into every task. Yields (key, cell, outcome) as batches finish; a batch
    whose worker died yields an error outcome for each of its cells. `steps_topic`: the workers
    send training steps as events on it (`compute_cell`)."""
    from distributed import as_completed

    threads = plan.opts["threads"] or 1
    batch = batch or batch_size(plan, todo)
    max_in_flight = max_in_flight or IN_FLIGHT_PER_WORKER * _worker_slots(plan, client, backend)
    cfg = client.scatter([plan.cfg], broadcast=True)[0]
    chunks = iter([todo[i:i + batch] for i in range(0, len(todo), batch)])
    futs = {}

    def submit_next() -> bool:
        chunk = next(chunks, None)
        if chunk is None:
            return False
        extra = {"steps_topic": steps_topic} if steps_topic else {}
        fut = client.submit(compute_cells, plan.job, cfg, [c for _, c in chunk], threads,
                            pure=False, **extra)
        futs[fut] = chunk
        running.add(fut)
        return True

    running = as_completed()
    for _ in range(max_in_flight):
        if not submit_next():
            break
    for fut in running:
        chunk = futs.pop(fut)
        try:
            outs = fut.result()
        except Exception as e:  # the worker died (KilledWorker), lost connection, ...
            err = ("error", f"{type(e).__name__}: {e}", traceback.format_exc(), {"host": "?"})
            outs = [err] * len(chunk)
        fut.release()
        submit_next()
        for (key, cell), out in zip(chunk, outs):
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
        per = max(e["memory_bytes"] for e in cell_estimates(plan, plan.cells))
        mem = f"{int(np.ceil(s['cores'] * (2 * per / 1e9 + 1)))}GB"
    kw = cluster_kwargs(s, mem)
    return SLURMCluster(**kw)
