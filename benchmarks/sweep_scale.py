"""Sweep engine at scale (issue 23): what the engine costs per tiny cell, and the merge, against
the cells' own compute timed in the same run. Prints ratios only.

The cells are the cheapest quickstart cells (d = 1, n_train in {2, 3}, the population and the
empirical score, 2 steps, 1 sample, 2 records; seeds fill the count). For each count N:

- 'real' (N <= --real-max): `run_sweep` in process computes every cell, then the same config runs
  as 2 shards and `merge_parts` assembles them. Ratios:
    wall / cells        wall of the whole in-process `run_sweep` (plan, journal, assembly with
                        the job's theory, final write) over the summed compute of its cells
                        (each cell's own seconds, recorded by the run); target < 1.5 (issue 23)
    engine / cells      (wall - summed compute) / summed compute (also in ms per cell)
    merge / cells       `merge_parts` wall over the summed cell compute (N <= MERGE_REAL_MAX)
    bare / recorded     a direct loop of the cells' `run_cell` on a sample (no engine) over the
                        per-cell seconds the run recorded for the same cells (1: the recorded
                        compute is the bare compute)
- 'stub' (every N, with --stub): each cell returns a precomputed result of the right shapes
  instead of computing (the engine alone: journal batches, read-back, part columns, assembly,
  final write). Ratios against the bare compute of a sample of real cells timed in the same
  process: engine / cell, merge / cells, and the projected wall / cells = 1 + engine / cells.

Usage: python benchmarks/sweep_scale.py [--cells 10000 100000] [--real-max 20000] [--stub]
(`--cells 100000 --real-max 100000`: 10^5 real cells, about 7 min on one core)
Run it as `OMP_NUM_THREADS=1 nice -n 10 ...`: one thread per cell, as sweeps run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """job = "quickstart"
output = "{output}"
[data]
d = 1
[grid]
n_train = [2, 3]
score = ["population", "empirical"]
seeds = {{start = 0, stop = {last}, num = {seeds}}}
[sampler]
steps = 2
n_samples = 1
record = 2
[sweep]
threads = 1
"""


#: largest real count that is also run as shards + merge (that computes every cell again)
MERGE_REAL_MAX = 20000


def write_config(folder: Path, n: int, name: str) -> Path:
    seeds = max(1, n // 4)
    if seeds > 10000:  # at most 10^4 values per list: widen n_train instead
        return write_config_large(folder, n, name)
    p = folder / f"{name}.toml"
    p.write_text(CONFIG.format(output=folder / f"{name}.h5", last=seeds - 1, seeds=seeds))
    return p


def write_config_large(folder: Path, n: int, name: str) -> Path:
    """n cells as n_train in 2 .. (n / 2 / 10^4 + 1) x 2 scores x 10^4 seeds (or fewer)."""
    seeds = min(10000, max(1, n // 4))
    n_train = max(2, n // (2 * seeds))
    text = CONFIG.format(output=folder / f"{name}.h5", last=seeds - 1, seeds=seeds)
    text = text.replace("n_train = [2, 3]",
                        f"n_train = {{start = 2, stop = {n_train + 1}, num = {n_train}}}")
    p = folder / f"{name}.toml"
    p.write_text(text)
    return p


def bare_seconds(plan, sample: int = 400) -> float:
    """Mean seconds of `run_cell` over an even sample of the plan's cells (no engine)."""
    step = max(1, len(plan.cells) // sample)
    cells = plan.cells[::step][:sample]
    plan.exp.run_cell(plan.cfg, cells[0])  # warm
    t0 = time.perf_counter()
    for c in cells:
        plan.exp.run_cell(plan.cfg, c)
    return (time.perf_counter() - t0) / len(cells)


def recorded_seconds(path) -> float:
    from memphase.analysis.results import open_results

    with open_results(path) as ds:
        return float(ds.attrs["cell_seconds_total"])


def shards_then_merge(cfg, out, n_shards: int = 2):
    from memphase.simulate.sweep import merge_parts, run_sweep

    t0 = time.perf_counter()
    for i in range(n_shards):
        run_sweep(cfg, output=out, shard=f"{i}/{n_shards}", progress=False, plot=False)
    t1 = time.perf_counter()
    # the tree may change while the benchmark runs (git "+dirty"): the parts are still this code
    merge_parts(cfg, output=out, progress=False, plot=False, allow_code_change=True)
    return t1 - t0, time.perf_counter() - t1


def real(folder: Path, n: int) -> list[str]:
    from memphase.simulate.sweep import load_sweep, run_sweep

    cfg = write_config(folder, n, f"real{n}")
    plan = load_sweep(cfg)
    n = len(plan.cells)
    t0 = time.perf_counter()
    out = run_sweep(cfg, progress=False, plot=False)
    wall = time.perf_counter() - t0
    cells = recorded_seconds(out)
    bare = bare_seconds(plan)
    merge = float("nan")
    if n <= MERGE_REAL_MAX:  # the shards compute every cell a second time
        _, merge = shards_then_merge(cfg, folder / f"real{n}-sharded.h5")
    return [f"| {n} | real | {wall / cells:.3f} | {(wall - cells) / cells:.3f} | "
            f"{1e3 * (wall - cells) / n:.3f} | {merge / cells:.4f} | {bare / (cells / n):.2f} |"]


def stub(folder: Path, n: int) -> list[str]:
    import memphase.simulate.experiments.quickstart as quickstart
    from memphase.simulate.sweep import load_sweep, run_sweep

    cfg = write_config_large(folder, n, f"stub{n}")
    t0 = time.perf_counter()
    plan = load_sweep(cfg)
    planning = time.perf_counter() - t0
    n = len(plan.cells)
    bare = bare_seconds(plan)
    canned = {c["n_train"]: quickstart.run_cell(plan.cfg, c) for c in plan.cells[:4]}
    canned.update({k: canned[2] for k in {c["n_train"] for c in plan.cells} - set(canned)})
    real_run_cell = quickstart.run_cell
    quickstart.run_cell = lambda cfg_, cell: dict(canned[cell["n_train"]])
    try:
        t0 = time.perf_counter()
        run_sweep(cfg, progress=False, plot=False)
        engine = time.perf_counter() - t0
        _, merge = shards_then_merge(cfg, folder / f"stub{n}-sharded.h5")
    finally:
        quickstart.run_cell = real_run_cell
    cells = n * bare
    return [f"| {n} | stub | {1 + engine / cells:.3f} (projected) | {engine / cells:.3f} | "
            f"{1e3 * engine / n:.3f} | {merge / cells:.4f} | planning / cells "
            f"{planning / cells:.4f} |"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--real-max", type=int, default=40000,
                    help="largest count computed for real (larger: stub only)")
    ap.add_argument("--stub", action="store_true", help="also the engine alone (stub cells)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="memphase-sweep-scale-") as tmp:
        for n in args.cells:
            if n <= args.real_max:
                rows += real(Path(tmp), n)
                print(rows[-1], file=sys.stderr)
            if args.stub or n > args.real_max:
                rows += stub(Path(tmp), n)
                print(rows[-1], file=sys.stderr)
    print("## Sweep engine at scale (ratios to the summed cell compute of the same run)\n")
    print("| cells | cells computed | wall / cells | engine / cells | engine ms per cell | "
          "merge / cells | bare / recorded |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print("\nTarget (issue 23): an in-process sweep of 10^5 tiny cells under 1.5x the summed "
          "cell compute; engine below 0.5 ms per tiny cell.")


if __name__ == "__main__":
    main()
