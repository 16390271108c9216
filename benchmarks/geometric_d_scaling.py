"""[ALD24] geometric memorization, d-scaling study: which theory predicts the measured per-block
critical taus, per (anchor, signature), and does the block ratio approach s_1^2 / s_2^2 as d grows?

Setting ([ALD24] Achilli et al., arXiv 2410.08727, official code): linear manifold with blocks
(d/15, std 1) and (d/6, std 0.3), normal std 0.01, every point on the unit sphere; d = 30, 60, 120,
240 (block dims in proportion), N = 500, 4000, 32000 (alpha = ln N / d), 3 seeds; empirical score.
For each anchor ("train": training points, "fresh": fresh samples of the law, "mean": the data
mean, all plus noise sqrt(tau) z) `memphase.analysis.dimensions.jacobian_sweep` measures the posterior-
variance ratio rho per basis direction on a tau grid, and a block's critical tau per signature
("collapse": rho < 1/2; "excess": rho > 2) is the largest tau at which more than half of its
(point, direction) pairs carry it. Theories, both with the *actual* per-direction variances v_b of
the sphere law (`DataSample.variances`): [ALD24] tau_c,b = v_b / (2 ln N) (g = 0), and the REM
tau_C solving ln N = (1/2) sum_j log(1 + v_j / tau) (one tau for all blocks).

Printed (markdown): one row per (d, N, anchor, signature): measured taus (geometric mean over the
seeds with a finite value; "-" none), both theories, measured/theory ratios, and the measured block
ratio tau_0 / tau_1 beside v_0 / v_1 (actual) and the nominal 1 / 0.09 = 11.1; then a summary per
(anchor, signature): median |log10(measured / theory)| for each theory and the block ratio per d.

Run: nice -n 10 .venv/bin/python benchmarks/geometric_d_scaling.py [--quick]
     (about 5 CPU-minutes on one thread; --quick: d = 30, 60, N = 500, 4000, 2 seeds, seconds)
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from memphase.analysis.dimensions import ANCHORS, SIGNATURES, jacobian_sweep
from memphase.physics.critical import collapse_tau
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.data import linear_manifold
from memphase.simulate.scores import EmpiricalScore

NOMINAL_RATIO = 1.0 / 0.09


def blocks_of(d: int):
    return [(d // 15, 1.0), (d // 6, 0.3)]


def measure(d, n, seeds, taus, n_points):
    """{(anchor, signature): (seeds, 2) measured critical taus}, actual block variances (2,)."""
    out = {(a, s): np.full((len(seeds), 2), np.nan) for a in ANCHORS for s in SIGNATURES}
    sch = OrnsteinUhlenbeck()
    for i, seed in enumerate(seeds):
        data = linear_manifold(n, d, blocks_of(d), normal_std=0.01, normalize="sphere", seed=seed)
        score = EmpiricalScore(data, sch)
        for anchor in ANCHORS:
            ds = jacobian_sweep(score, data, taus, n_points=n_points, seed=seed, anchor=anchor,
                                spectrum=False)
            for s in SIGNATURES:
                out[anchor, s][i] = ds.critical_tau.sel(signature=s, block=[0, 1]).values
    v = data.variances()
    return out, v, np.array([v[0], v[d // 15]])


def gmean(x):
    x = x[np.isfinite(x)]
    return float(np.exp(np.mean(np.log(x)))) if x.size else np.nan


def fmt(x, spec=".4f"):
    return "-" if not np.isfinite(x) else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="d = 30, 60; N = 500, 4000; 2 seeds")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    dims = [30, 60] if args.quick else [30, 60, 120, 240]
    sizes = [500, 4000] if args.quick else [500, 4000, 32000]
    seeds = [0, 1] if args.quick else [0, 1, 2]
    taus = np.geomspace(1e-5, 1.0, 31)
    n_points = 32
    start = time.process_time()
    rows, summary = [], {(a, s): {"ald": [], "rem": [], "ratio": {}} for a in ANCHORS
                         for s in SIGNATURES}
    for d in dims:
        for n in sizes:
            meas, v_all, v = measure(d, n, seeds, taus, n_points)
            ald = v / (2.0 * math.log(n))
            rem = float(collapse_tau(n, v_all))
            for (a, s), m in meas.items():
                tau = np.array([gmean(m[:, 0]), gmean(m[:, 1])])
                ok = np.sum(np.all(np.isfinite(m), axis=1))
                ratio = tau[0] / tau[1]
                rows.append((d, n, a, s, ok, tau, ald, rem, ratio, v[0] / v[1]))
                fin = np.isfinite(tau)
                summary[a, s]["ald"] += list(np.abs(np.log10(tau[fin] / ald[fin])))
                summary[a, s]["rem"] += list(np.abs(np.log10(tau[fin] / rem)))
                summary[a, s]["ratio"].setdefault(d, []).append(ratio)
    print(f"d = {dims}, blocks (d/15, 1.0), (d/6, 0.3), normal 0.01, unit sphere; N = {sizes}; "
          f"seeds {seeds}; {n_points} points; tau grid 1e-5..1 ({taus.size}); "
          f"{time.process_time() - start:.0f} CPU s\n")
    print("| d | N | alpha | anchor | signature | seeds (both blocks) | tau_0 | tau_1 | ALD tau_0 | ALD tau_1 "
          "| REM tau_C | tau_0/ALD | tau_1/ALD | tau_0/REM | tau_1/REM | tau_0/tau_1 | v_0/v_1 |")
    print("|" + "---|" * 17)
    for d, n, a, s, ok, tau, ald, rem, ratio, vr in rows:
        print(f"| {d} | {n} | {math.log(n) / d:.3f} | {a} | {s} | {ok}/{len(seeds)} "
              f"| {fmt(tau[0])} | {fmt(tau[1])} | {ald[0]:.4f} | {ald[1]:.5f} | {rem:.4f} "
              f"| {fmt(tau[0] / ald[0], '.2f')} | {fmt(tau[1] / ald[1], '.2f')} "
              f"| {fmt(tau[0] / rem, '.2f')} | {fmt(tau[1] / rem, '.2f')} | {fmt(ratio, '.2f')} "
              f"| {vr:.2f} |")
    print(f"\nSummary per (anchor, signature): median |log10(measured / theory)| over blocks and "
          f"cells with a measured tau (0 = exact, 0.3 = factor 2), which theory is closer, and the "
          f"measured block ratio tau_0 / tau_1 (geometric mean over N) per d; [ALD24] predicts "
          f"v_0 / v_1 (actual; -> {NOMINAL_RATIO:.1f} as d grows), REM predicts 1.\n")
    print("| anchor | signature | cells | [ALD24] | REM | closer | " +
          " | ".join(f"ratio d={d}" for d in dims) + " |")
    print("|" + "---|" * (6 + len(dims)))
    for (a, s), sm in summary.items():
        n_ok = len(sm["ald"])
        e_ald = float(np.median(sm["ald"])) if n_ok else np.nan
        e_rem = float(np.median(sm["rem"])) if n_ok else np.nan
        closer = "-" if not n_ok else ("[ALD24]" if e_ald < e_rem else "REM")
        ratios = " | ".join(fmt(gmean(np.array(sm["ratio"][d])), ".2f") for d in dims)
        print(f"| {a} | {s} | {n_ok} | {fmt(e_ald, '.2f')} | {fmt(e_rem, '.2f')} | {closer} "
              f"| {ratios} |")
    vr = {d: next(r[9] for r in rows if r[0] == d) for d in dims}
    print("\nactual v_0 / v_1 per d: " + ", ".join(f"d={d}: {x:.2f}" for d, x in vr.items()))


if __name__ == "__main__":
    main()
