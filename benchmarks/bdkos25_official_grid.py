"""[BDKOS25] official grids on the official seeds: collapse fraction of the Tikhonov and
floor-normalized ("empirical Bayes") closed-form scores, re-derived official computation beside
memphase's (docs/conformance/bdkos25.md).

Setting ([BDKOS25] Baptista et al., arXiv 2501.15785, official code 2DGaussianPoints): the
official training set (numpy seed 1, 20 points of N(0, I_2)), the official 1000 latents (torch
seed 0 after the notebooks' test draws), VE g = 10^t, RK45 rtol = atol = 1e-5 from t = 1 to t = 0
(Tikhonov, c = logspace(-1, -5, 9)) or t = 1e-6 (floor, tau = logspace(-2, 1, 7); c = 0), collapse
tol 1e-2. The official side is the re-derivation in tests/conformance/test_bdkos25.py (float32
score evaluations as the official ODEsampler); the memphase side is `TikhonovScore`,
`FloorNormalizedScore`, `EmpiricalScore` through `memphase.simulate.sampling.sample` (RK45,
float64) and `memphase.analysis.memorization.collapse_fraction`.

Printed (markdown): per strength, both fractions with the Wilson 95% interval of the official one,
their difference and the number of samples whose official end point lies within the largest end
point gap of the threshold (the fractions may differ by at most that count / 1000).

Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bdkos25_official_grid.py [--n 1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import torch

from memphase.analysis.memorization import collapse_fraction
from memphase.physics.schedules import ExponentialVE
from memphase.simulate.scores import EmpiricalScore, FloorNormalizedScore, TikhonovScore

_TEST = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "test_bdkos25.py"
_spec = importlib.util.spec_from_file_location("conformance_bdkos25", _TEST)
off = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(off)


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction p of n."""
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def row(label, score_off, score_mem, lat, data, t1):
    y = torch.from_numpy(data)
    x_off = off.official_flow(score_off, lat, t1)
    x_mem = off.memphase_flow(score_mem, lat, t1)
    gap = float((x_mem - x_off).norm(dim=1).max())
    dist = torch.cdist(x_off.double(), y).min(1).values
    border = int(((dist - off.TOL).abs() <= gap).sum())
    f_off = off.official_collapse_fraction(x_off, data)
    f_mem = collapse_fraction(x_mem, y, tol=off.TOL)
    lo, hi = wilson(f_off, lat.shape[0])
    print(f"| {label} | {f_off:.3f} [{lo:.3f}, {hi:.3f}] | {f_mem:.3f} | {f_mem - f_off:+.3f} | "
          f"{gap:.1e} | {border} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="official latents used (first n of 1000)")
    args = ap.parse_args()
    t0 = time.time()
    data = off.official_training_data()
    y32 = torch.tensor(data, dtype=torch.float32)
    y64 = torch.from_numpy(data)
    lat = off.official_latents(args.n)
    sch = ExponentialVE()
    head = ("| {} | official (Wilson 95%) | memphase | difference | largest end-point gap | "
            "samples within the gap of tol |\n|---|---|---|---|---|---|")
    print(head.format("c (Tikhonov)"))
    row("0 (empirical, to t = 1e-6)",
        lambda x, t: off.official_score(x, y32, t, dtype=torch.float32),
        EmpiricalScore(y64, sch), lat, data, off.EPS_SINGULAR)
    for c in np.logspace(-1, -5, 9):
        row(f"{c:.3g}", lambda x, t, c=c: off.official_score(x, y32, t, c=c, dtype=torch.float32),
            TikhonovScore(y64, sch, float(c)), lat, data, 0.0)
    print()
    print(head.format("tau (floor)"))
    lat = off.official_latents(args.n, notebook="floor")
    for tau in np.logspace(-2, 1, 7):
        row(f"{tau:.3g}",
            lambda x, t, tau=tau: off.official_floor_score(x, y32, t, float(tau),
                                                           dtype=torch.float32),
            FloorNormalizedScore(y64, sch, float(tau)), lat, data, off.EPS_SINGULAR)
    print(f"\n{args.n} official latents; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
