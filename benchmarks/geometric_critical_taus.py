"""[ALD24] geometric memorization: measured per-block critical tau (empirical score, exact Jacobian)
against both theories, with a threshold-sensitivity study.

Setting of [ALD24] (SCIENCE.md section 5): d = 30, blocks (2, std 1.0) and (5, std 0.3), normal std
0.01, points normalized to a sphere. For each N and seed, `simulate.experiments.geometric` measures
the kept fraction of each block on a tau grid (lost when r = 1 + tau lambda < threshold) and reads
the critical tau where the fraction reaches half its peak (relative level: normalization loses the
radial direction at every tau), for thresholds 0.25, 0.5, 0.75. Printed beside it: the [ALD24]
block formula tau_c = s^2 / (2 ln N) and the REM tau_C on the same spectrum (one tau for all
blocks), with relative errors of the seed mean at threshold 1/2.

Run: .venv/bin/python benchmarks/geometric_critical_taus.py [--quick]
     (about 1 minute on one thread of the shared box; --quick: N = 1000, 2 seeds, seconds)
"""

from __future__ import annotations

import argparse
import time

import torch

from simulate.config import validate
from simulate.experiments import geometric


def config(n_train, seeds):
    return validate({"job": "geometric",
                     "grid": {"n_train": list(n_train), "d": [30], "std_ratio": [0.3],
                              "score": ["empirical"], "seeds": list(seeds)},
                     "measure": {"tau_min": 1e-3, "tau_max": 1.0, "n_tau": 24, "n_points": 24,
                                 "thresholds": [0.25, 0.5, 0.75], "relative_level": True}},
                    geometric.SCHEMA)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1000 only, 2 seeds")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = config([1000] if args.quick else [250, 1000, 20000], [0, 1] if args.quick else [0, 1, 2, 3])
    start = time.perf_counter()
    cells = geometric.cells(cfg)
    ds = geometric.assemble(cfg, cells, [geometric.run_cell(cfg, c) for c in cells])
    ds = ds.sel(score="empirical").isel(d=0, std_ratio=0)
    print(f"d = 30, blocks (2, 1.0), (5, 0.3), normal 0.01, normalized; seeds "
          f"{[int(s) for s in ds.seed.values]}; {time.perf_counter() - start:.0f} s")
    print("N      block  [ALD24]  REM     | measured tau_c (mean +- sd over seeds) at threshold"
          " 0.25 / 0.5 / 0.75 | rel. err. vs ALD24, vs REM (th 0.5)")
    for n in ds.n_train.values:
        s = ds.sel(n_train=n)
        rem = float(s.critical_tau_rem)
        for b in (0, 1):
            ald = float(s.critical_tau_theory.sel(block=b))
            by = s.critical_tau_by_threshold.sel(block=b)
            cols = " / ".join(f"{float(by.sel(threshold=t).mean('seed')):.4f}+-"
                              f"{float(by.sel(threshold=t).std('seed')):.4f}"
                              for t in by.threshold.values)
            mid = float(by.sel(threshold=0.5).mean("seed"))
            print(f"{n:<6d} {b:<6d} {ald:.4f}   {rem:.4f}  | {cols} | "
                  f"{mid / ald - 1:+.2f}, {mid / rem - 1:+.2f}")


if __name__ == "__main__":
    main()
