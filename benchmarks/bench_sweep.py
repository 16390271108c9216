"""Sweep throughput: cells per minute of memphase.simulate.sweep.run_sweep, in process and on a Dask
LocalCluster with 1 and 2 worker processes (one torch thread per cell), and the scale-out
efficiency

    efficiency = throughput(2 workers) / (2 x throughput(1 worker)).

The sweep is a small `quickstart` config (empirical score, several N and seeds) written to a
temporary directory; each run writes its own output there (removed at the end). Throughput is
measured over the whole `run_sweep` call (config parsing, journal, cluster start, assembly);
'steady' subtracts the measured start-and-stop time of an idle LocalCluster of the same size.
Wall clock always (the work runs in other processes); --device sets the cells' sampler device.
Target (issue 8): efficiency >= 0.8 with 2 workers (steady state: a sweep on a cluster runs for
hours, the LocalCluster start of a few seconds is a one-off). Only meaningful on an otherwise idle machine
with >= 2 free cores.

Usage: python benchmarks/bench_sweep.py [--quick]
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

from common import markdown_table, setup

from memphase.simulate.sweep import estimate_cell, load_sweep, run_sweep

CONFIG = """job = "quickstart"
output = "{output}"

[data]
d = 16

[grid]
n_train = {n_train}
score = ["empirical"]
seeds = {seeds}

[sampler]
method = "sde"
steps = {steps}
n_samples = {n_samples}
dtype = "float32"
record = 10
device = "{device}"

[sweep]
threads = 1
"""


def cluster_start_stop(workers: int) -> float:
    """Seconds to start and close an idle LocalCluster + Client of `workers` processes."""
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    client.close()
    cluster.close()
    return time.perf_counter() - t0


def main(argv=None):
    args, timing, device = setup(__doc__, "Sweep throughput", argv)
    if args.quick:
        n_train, seeds, steps, n_samples = [256, 1024], [0, 1, 2], 60, 256
    else:
        # cells of a few seconds, as in real sweeps: worker start-up (process spawn, torch
        # import) is then a small part of the run
        n_train, seeds, steps, n_samples = [512, 1024, 2048, 4096], [0, 1, 2, 3], 200, 1024
    n_cells = len(n_train) * len(seeds)
    rows, cpm = [], {}
    with tempfile.TemporaryDirectory(prefix="memphase-bench-sweep-") as tmp:
        cfg = Path(tmp) / "sweep.toml"
        cfg.write_text(CONFIG.format(output=Path(tmp) / "unused.h5", n_train=n_train,
                                     seeds=seeds, steps=steps, n_samples=n_samples,
                                     device=str(device)))
        plan = load_sweep(cfg)
        estimated = sum(estimate_cell(plan.exp, plan.cfg, c)["seconds"] for c in plan.cells)
        for name, backend, workers in (("in process", "inprocess", 1),
                                       ("dask, 1 worker", "local", 1),
                                       ("dask, 2 workers", "local", 2)):
            out = Path(tmp) / f"{backend}-{workers}.h5"
            t0 = time.perf_counter()
            run_sweep(cfg, output=out, backend=backend, workers=workers, progress=False,
                      plot=False, threads=1)
            wall = time.perf_counter() - t0
            start = cluster_start_stop(workers) if backend == "local" else 0.0
            cpm[name] = 60 * n_cells / wall
            rows.append([name, n_cells, wall, cpm[name], start, 60 * n_cells / (wall - start)])
            print(f"  {rows[-1]}", file=sys.stderr)
    eff = cpm["dask, 2 workers"] / (2 * cpm["dask, 1 worker"])
    steady = rows[2][5] / (2 * rows[1][5])
    print(f"## Sweep throughput (device: {device}; wall clock)\n")
    print(f"`run_sweep` of a quickstart config: {n_cells} cells (N in {n_train}, seeds {seeds}, "
          f"empirical score, d = 16, {n_samples} samples, {steps} SDE steps, float32, 1 torch "
          "thread per cell). 'cluster start+stop' is an idle LocalCluster of the same size; "
          "'steady' excludes it.\n")
    print(markdown_table(["backend", "cells", "wall s", "cells/min", "cluster start+stop s",
                          "steady cells/min"], rows))
    print(f"\nPlanning estimate (`memphase.simulate.run.cost`, printed by `memphase sweep` before a run): "
          f"{estimated:.3g} s of compute for the {n_cells} cells; measured in process "
          f"{rows[0][2]:.3g} s (estimate / measured = {estimated / rows[0][2]:.2f}).")
    verdict = "met" if eff >= 0.8 else ("met in steady state (the one-off cluster start is "
                                        "the difference)" if steady >= 0.8 else "NOT met")
    print(f"\nScale-out efficiency with 2 workers: {eff:.2f} including the cluster start, "
          f"{steady:.2f} steady. Target >= 0.8: {verdict}. Workers run each cell under "
          "`memphase.simulate.base.device.tune_allocator` (Dask's MALLOC_TRIM_THRESHOLD_ otherwise made cells "
          "1.4x slower on workers than in process).\n")


if __name__ == "__main__":
    main()
