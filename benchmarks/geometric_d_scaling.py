"""[ALD24] geometric memorization, d-scaling study: which observable, at which anchor, follows
the [ALD24] v / (2 ln N), which the REM tau_C, and which does not depend on N at all?

Setting ([ALD24] Achilli et al., arXiv 2410.08727, official code): linear manifold with blocks
(d/15, std 1) and (d/6, std 0.3), normal std 0.01, every point on the unit sphere; empirical score.
Anchors (`memphase.analysis.dimensions.jacobian_sweep`): "train" (training points + noise),
"fresh" (fresh samples of the law + noise), "mean" (the data mean + noise: a memphase variant),
"origin" (the exact data mean, no noise: the official empirical-score panel).
Observables, per basis direction u of actual variance v_u:
- "gauss": rho = u^T Cov_w u / (tau v / (v + tau)), the posterior variance over a Gaussian's
  (a named variant; for sphere data it is not 1 even as N -> infinity);
- "law": rho_law = u^T Cov_w u / u^T Cov_law u, over the posterior of the same law
  (`memphase.analysis.law_posterior`, importance sampling with M law draws, exact at the
  origin; nan where the law's ESS < 20): what finite N does, and nothing else.
Signatures: "collapse" (ratio < 1/2), "excess" (ratio > 2); a block's critical tau is the largest
tau where more than half of its (point, direction) pairs carry it. Theories, all with the actual
variances v_b: [ALD24] tau_c,b = v_b / (2 ln N) (g = 0); REM tau_C, ln N = (1/2) sum_j
log(1 + v_j / tau) (one tau for all blocks); "v_b" (N-independent: at the origin the weights are
1/N and rho_gauss = 1 + v/tau, so the excess starts at tau = v_b).

Printed (markdown): every row (d, N, anchor, observable, signature), "-" where no seed shows the
signature; then a summary per (anchor, observable, signature): median |log10(measured/theory)|
for each theory, the N-exponent (median slope of log tau against log ln N over (d, block, N
pairs): -1 for [ALD24], 0 for no N-dependence) and the block ratio per d.

Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/geometric_d_scaling.py [--quick]
     (about 200 CPU s on one thread, 0.6 GB; 13 min wall on the loaded shared 2-core box;
     --quick: d = 30, N = 500, 4000, one seed, M = 2^14, 10 CPU s)
Reduced from the earlier study to fit a shared CPU: d = 30, 60, 120 (no 240), N = 250, 1000, 4000
(no 32000: the law's importance sampling needs M >> N), 2 seeds (not 3), 8 points (not 32).
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
OBSERVABLES = ("gauss", "law")


def blocks_of(d: int):
    return [(d // 15, 1.0), (d // 6, 0.3)]


def law_samples_of(d: int, quick: bool) -> int:
    """Law draws M (memory ~ 8 M d bytes; the law's own estimate condenses where M / N is small,
    and those pairs are left out by the ESS >= 20 rule)."""
    return 2**14 if quick or d > 60 else 2**16


#: anchors where rho_law is computed ("fresh" left out to fit the shared CPU; origin is exact)
LAW_ANCHORS = ("train", "mean", "origin")


def measure(d, n, seeds, taus, n_points, quick):
    """{(anchor, observable, signature): (seeds, 2) critical taus}, actual variances (d,), (2,),
    the smallest law ESS seen at the largest tau with a law collapse (diagnostic)."""
    out = {(a, o, s): np.full((len(seeds), 2), np.nan) for a in ANCHORS for o in OBSERVABLES
           for s in SIGNATURES}
    sch = OrnsteinUhlenbeck()
    for i, seed in enumerate(seeds):
        data = linear_manifold(n, d, blocks_of(d), normal_std=0.01, normalize="sphere", seed=seed)
        score = EmpiricalScore(data, sch)
        for anchor in ANCHORS:
            ds = jacobian_sweep(score, data, taus, n_points=1 if anchor == "origin" else n_points,
                                seed=seed, anchor=anchor, spectrum=False,
                                law_samples=law_samples_of(d, quick) if anchor in LAW_ANCHORS
                                else 0)
            for s in SIGNATURES:
                out[anchor, "gauss", s][i] = ds.critical_tau.sel(signature=s, block=[0, 1]).values
                if "critical_tau_law" in ds:
                    out[anchor, "law", s][i] = ds.critical_tau_law.sel(signature=s,
                                                                       block=[0, 1]).values
    v = data.variances()
    return out, v, np.array([v[0], v[d // 15]])


def gmean(x):
    x = x[np.isfinite(x)]
    return float(np.exp(np.mean(np.log(x)))) if x.size else np.nan


def fmt(x, spec=".4f"):
    return "-" if not np.isfinite(x) else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="d = 30; N = 500, 4000; 1 seed")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    dims = [30] if args.quick else [30, 60, 120]
    sizes = [500, 4000] if args.quick else [250, 1000, 4000]
    seeds = [0] if args.quick else [0, 1]
    taus = np.geomspace(1e-5, 1.0, 46)
    n_points = 8
    start = time.process_time()
    rows = []
    keys = [(a, o, s) for a in ANCHORS for o in OBSERVABLES for s in SIGNATURES]
    summary = {k: {"ald": [], "rem": [], "vb": [], "ratio": {}, "taus": {}} for k in keys}
    for d in dims:
        for n in sizes:
            meas, v_all, v = measure(d, n, seeds, taus, n_points, args.quick)
            ald = v / (2.0 * math.log(n))
            rem = float(collapse_tau(n, v_all))
            for k in keys:
                m = meas[k]
                tau = np.array([gmean(m[:, 0]), gmean(m[:, 1])])
                ok = int(np.sum(np.all(np.isfinite(m), axis=1)))
                ratio = tau[0] / tau[1]
                rows.append((d, n, *k, ok, tau, ald, rem, v, ratio))
                fin = np.isfinite(tau)
                sm = summary[k]
                sm["ald"] += list(np.abs(np.log10(tau[fin] / ald[fin])))
                sm["rem"] += list(np.abs(np.log10(tau[fin] / rem)))
                sm["vb"] += list(np.abs(np.log10(tau[fin] / v[fin])))
                sm["ratio"].setdefault(d, []).append(ratio)
                for b in (0, 1):
                    sm["taus"].setdefault((d, b), []).append((n, tau[b]))
    print(f"d = {dims}, blocks (d/15, 1.0), (d/6, 0.3), normal 0.01, unit sphere; N = {sizes}; "
          f"seeds {seeds}; {n_points} points (origin: 1); tau grid 1e-5..1 ({taus.size}); law "
          f"(anchors {', '.join(LAW_ANCHORS)}) "
          f"draws M = {', '.join(f'{law_samples_of(d, args.quick)} (d={d})' for d in dims)}, "
          f"law ESS >= 20; {time.process_time() - start:.0f} CPU s\n")
    print("| d | N | anchor | observable | signature | seeds | tau_0 | tau_1 | ALD tau_0 | ALD tau_1 "
          "| REM tau_C | v_0 | v_1 | tau_0/ALD | tau_1/ALD | tau_0/REM | tau_1/REM | tau_0/tau_1 "
          "| v_0/v_1 |")
    print("|" + "---|" * 19)
    for d, n, a, o, s, ok, tau, ald, rem, v, ratio in rows:
        print(f"| {d} | {n} | {a} | {o} | {s} | {ok}/{len(seeds)} | {fmt(tau[0])} | {fmt(tau[1])} "
              f"| {ald[0]:.4f} | {ald[1]:.5f} | {rem:.4f} | {v[0]:.4f} | {v[1]:.4f} "
              f"| {fmt(tau[0] / ald[0], '.2f')} | {fmt(tau[1] / ald[1], '.2f')} "
              f"| {fmt(tau[0] / rem, '.2f')} | {fmt(tau[1] / rem, '.2f')} | {fmt(ratio, '.2f')} "
              f"| {v[0] / v[1]:.2f} |")
    print("\nSummary per (anchor, observable, signature), every one: cells with a measured tau, "
          "median |log10(measured / theory)| (0 = exact, 0.3 = factor 2) for [ALD24] "
          "v_b/(2 ln N), REM tau_C and v_b, the closest, the N-exponent (median over d and block "
          "of the slope of log tau against log ln N between consecutive N: [ALD24] -1, "
          "N-independent 0) and the block ratio tau_0/tau_1 (geometric mean over N) per d.\n")
    print("| anchor | observable | signature | cells | [ALD24] | REM | v_b | closest | N-exponent | "
          + " | ".join(f"ratio d={d}" for d in dims) + " |")
    print("|" + "---|" * (10 + len(dims)))
    for k, sm in summary.items():
        n_ok = len(sm["ald"])
        errs = {name: float(np.median(sm[key])) if n_ok else np.nan
                for name, key in (("[ALD24]", "ald"), ("REM", "rem"), ("v_b", "vb"))}
        closest = "-" if not n_ok else min(errs, key=errs.get)
        slopes = []
        for pts in sm["taus"].values():
            for (n1, t1), (n2, t2) in zip(pts, pts[1:]):
                if np.isfinite(t1) and np.isfinite(t2):
                    slopes.append(math.log(t2 / t1) / math.log(math.log(n2) / math.log(n1)))
        slope = float(np.median(slopes)) if slopes else np.nan
        ratios = " | ".join(fmt(gmean(np.array(sm["ratio"][d])), ".2f") for d in dims)
        print(f"| {k[0]} | {k[1]} | {k[2]} | {n_ok} | {fmt(errs['[ALD24]'], '.2f')} "
              f"| {fmt(errs['REM'], '.2f')} | {fmt(errs['v_b'], '.2f')} | {closest} "
              f"| {fmt(slope, '.2f')} | {ratios} |")
    vr = {d: next(r[9][0] / r[9][1] for r in rows if r[0] == d) for d in dims}
    print("\nactual v_0 / v_1 per d: " + ", ".join(f"d={d}: {x:.2f}" for d, x in vr.items()))
    rem_exp = {}
    for d in dims:
        rem_n = [next(r[8] for r in rows if r[0] == d and r[1] == n) for n in sizes]
        rem_exp[d] = [math.log(t2 / t1) / math.log(math.log(n2) / math.log(n1))
                      for (n1, t1), (n2, t2) in zip(zip(sizes, rem_n), zip(sizes[1:], rem_n[1:]))]
    print("REM tau_C N-exponent (same slope, theory) per d: " + ", ".join(
        f"d={d}: " + "/".join(f"{x:.2f}" for x in e) for d, e in rem_exp.items()))


if __name__ == "__main__":
    main()
