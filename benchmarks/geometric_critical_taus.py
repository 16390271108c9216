"""[ALD24] geometric memorization at d = 30: measured per-block critical taus (empirical score,
exact Jacobian) for every (anchor, signature), against both theories, with the threshold
sensitivity of the kept-fraction rule.

Setting of [ALD24] (Achilli et al., arXiv 2410.08727): d = 30, blocks (2, std 1.0) and (5, std
0.3), normal std 0.01, points on the unit sphere (official code; actual variances 0.352 and 0.059).
`memphase.simulate.experiments.geometric` measures, per anchor (train / fresh / mean), the critical tau of
each signature (collapse rho < 1/2, excess rho > 2; the largest tau at which more than half of the
block's (point, direction) pairs carry it) and, at training-point anchors, the kept-fraction
critical tau (r = 1 + tau lambda < threshold, half its peak) at thresholds 0.25, 0.5, 0.75. Printed
beside: the [ALD24] tau_c = v / (2 ln N) and the REM tau_C, both with the actual variances v.
The d-scaling of the same question: benchmarks/geometric_d_scaling.py.

memphase's protocol (Haar generator, log grid, noisy anchors), pinned since the job's defaults
became the official [ALD24] ones (issue 27).

Run: .venv/bin/python benchmarks/geometric_critical_taus.py [--quick]
     (about 2 minutes on one thread of the shared box; --quick: N = 1000, 2 seeds, seconds)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memphase.simulate.run.config import validate
from memphase.simulate.experiments import geometric


def config(n_train, seeds):
    return validate({"job": "geometric",
                     "grid": {"n_train": list(n_train), "d": [30], "std_ratio": [0.3],
                              "score": ["empirical"], "seeds": list(seeds)},
                     "data": {"normalize": "sphere", "protocol": "memphase"},
                     "measure": {"tau_min": 1e-5, "tau_max": 1.0, "n_tau": 31, "n_points": 24,
                                 "tau_spacing": "log", "schedule": "ou", "fd_spectrum": False,
                                 "anchors": ["train", "fresh", "mean"],
                                 "thresholds": [0.25, 0.5, 0.75], "relative_level": True,
                                 "probe_points": 0}},
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
    print(f"d = 30, blocks (2, 1.0), (5, 0.3), normal 0.01, unit sphere; seeds "
          f"{[int(s) for s in ds.seed.values]}; {time.perf_counter() - start:.0f} s")
    gm = lambda x: float(np.exp(np.log(x.where(np.isfinite(x))).mean("seed")))  # noqa: E731
    print("N      block  [ALD24]  REM     | critical tau (geometric mean over seeds): "
          "train/collapse  fresh/collapse  mean/collapse  mean/excess | kept rule (train) "
          "th 0.25 / 0.5 / 0.75")
    for n in ds.n_train.values:
        s = ds.sel(n_train=n)
        rem = float(s.critical_tau_rem)
        for b in (0, 1):
            ald = float(s.critical_tau_theory.sel(block=b))
            ct = s.critical_tau.sel(block=b)
            sig = "  ".join(f"{gm(ct.sel(anchor=a, signature=g)):.4f}" for a, g in
                            (("train", "collapse"), ("fresh", "collapse"), ("mean", "collapse"),
                             ("mean", "excess")))
            by = s.critical_tau_by_threshold.sel(block=b, anchor="train")
            kept = " / ".join(f"{float(by.sel(threshold=t).mean('seed')):.4f}"
                              for t in by.threshold.values)
            print(f"{n:<6d} {b:<6d} {ald:.4f}   {rem:.4f}  | {sig} | {kept}")


if __name__ == "__main__":
    main()
