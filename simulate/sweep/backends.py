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
from ..slurm_options import cluster_kwargs
from ..files import SweepError
from .plan import BACKENDS, SweepPlan, estimate_cell


# ----------------------------------------------------------------------------- computing cells


def compute_cell(job: str, cfg: dict, cell: dict, threads: int = 1):
    """Run one cell anywhere (in-process or on a Dask worker); never raises for a cell error.

    Returns ("ok", result, meta) or ("error", message, traceback, meta); meta has seconds, host.
    """
    import torch

    from ..device import tune_allocator

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
