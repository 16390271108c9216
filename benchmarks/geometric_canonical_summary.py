"""Tables of the canonical [ALD24] geometric run (data/configs/geometric.toml: the official protocol,
memphase's anchors beside it) for docs/theory.md, "Geometric memorization ([ALD24])".

Achilli et al., *Losing dimensions: geometric memorization in generative diffusion*, arXiv
2410.08727. Reads a finished result file and prints, per training-set size N and block (over
the seeds: mean, and the seed range in brackets; 95% t-interval of the block ratio):
  1. the official anchor (the exact origin, no noise): the "excess" onset tau (rho > 2, the
     Gaussian-normalized ratio; the official panel's enhanced singular value) against the
     block's actual variance v_b and the [ALD24] tau_c = v_b / (2 ln N), and the official
     finite-difference estimator's top singular value at var = 0.01 (raw);
  2. memphase's noisy anchors on the same grid: training points (collapse, rho < 1/2) against
     the REM tau_C, the data mean plus noise (excess), fresh samples (collapse);
  3. the linear and Gaussian ("population") scores: cells carrying any signature.

Run:
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/memphase run data/configs/geometric.toml -o /tmp/ald24/geometric.h5
    .venv/bin/python benchmarks/geometric_canonical_summary.py /tmp/ald24/geometric.h5
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from memphase.analysis.results import open_results


def _fmt(x) -> str:
    x = np.asarray(x, dtype=float)
    ok = x[np.isfinite(x)]
    above = int(np.isinf(x).sum())  # inf: the signature holds at the top of the grid
    if ok.size == 0:
        return f"above grid ({above} seeds)" if above else "-"
    if ok.size == 1:
        return f"{ok[0]:.4f} (1 seed)"
    return f"{ok.mean():.4f} [{ok.min():.4f}, {ok.max():.4f}]" + (
        f" ({ok.size} seeds)" if ok.size < x.size else "")


def _ratio_ci(r) -> str:
    r = np.asarray(r, dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    if r.size < 2:
        return "-" if r.size == 0 else f"{r[0]:.2f}"
    lr = np.log(r)
    h = stats.t.ppf(0.975, r.size - 1) * lr.std(ddof=1) / np.sqrt(r.size)
    return f"{np.exp(lr.mean()):.2f} [{np.exp(lr.mean() - h):.2f}, {np.exp(lr.mean() + h):.2f}]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="result file of data/configs/geometric.toml")
    args = ap.parse_args(argv)
    ds = open_results(args.path).isel(d=0, std_ratio=0)
    print(f"protocol: {ds.attrs.get('protocol')}; data {ds.attrs.get('data_protocol')}; grid "
          f"{ds.attrs.get('tau_grid')}; seeds {[int(s) for s in ds.seed.values]}")
    emp = ds.sel(score="empirical")
    v = ds["block_variance"]
    v0, v1 = float(v.sel(block=0)), float(v.sel(block=1))
    tau = ds["tau"].values
    i01 = int(np.argmin(np.abs(tau - 0.01)))
    print(f"\nactual variances v_0 = {v0:.4f}, v_1 = {v1:.4f}, v_0/v_1 = {v0 / v1:.2f}")
    print("\n1. official anchor (exact origin), empirical score, excess onset (rho > 2)")
    print("| N | tau_0 | tau_1 | tau_0/v_0 | tau_1/v_1 | tau_0/tau_1 (95% t) | [ALD24] tau_c,0 "
          "| [ALD24] tau_c,1 | FD top sv at var 0.01 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in ds.n_train.values:
        c = emp["critical_tau"].sel(n_train=n, anchor="origin", signature="excess")
        t0, t1 = c.sel(block=0).values, c.sel(block=1).values
        th = ds["critical_tau_theory"].sel(n_train=n)
        fd = emp["fd_singular_value"].sel(n_train=n, anchor="origin").isel(tau=i01, rank=0)
        print(f"| {int(n)} | {_fmt(t0)} | {_fmt(t1)} | {_fmt(t0 / v0)} | {_fmt(t1 / v1)} "
              f"| {_ratio_ci(t0 / t1)} | {float(th.sel(block=0)):.4f} "
              f"| {float(th.sel(block=1)):.4f} | {_fmt(fd.values)} |")
    print("\n2. memphase's anchors (each plus noise sqrt(tau) z), empirical score, same grid")
    print("| N | anchor | signature | tau_0 | tau_1 | REM tau_C | tau_0/tau_1 (95% t) |")
    print("|---|---|---|---|---|---|---|")
    for n in ds.n_train.values:
        rem = float(ds["critical_tau_rem"].sel(n_train=n))
        for a, sig in (("train", "collapse"), ("fresh", "collapse"), ("mean", "excess"),
                       ("mean", "collapse")):
            c = emp["critical_tau"].sel(n_train=n, anchor=a, signature=sig)
            t0, t1 = c.sel(block=0).values, c.sel(block=1).values
            print(f"| {int(n)} | {a} | {sig} | {_fmt(t0)} | {_fmt(t1)} | {rem:.4f} "
                  f"| {_ratio_ci(t0 / t1)} |")
    print("\n3. linear and population scores: (anchor, signature) cells with a finite critical "
          "tau (or above the grid) in a tangent block")
    for s in [x for x in ds.score.values if x != "empirical"]:
        c = ds["critical_tau"].sel(score=s, block=[0, 1])
        hit = int((~np.isnan(c.values)).sum())  # nan: never; inf: above the grid
        print(f"{s}: {hit} of {c.size}")


if __name__ == "__main__":
    main()
