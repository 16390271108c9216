"""[ALD24] official spectrum figure, reproduced (docs/conformance/ald24.md).

Computes the official theory panel and the official empirical-score panel (seed-2 data on the
unit sphere, exact origin, finite differences, var = linspace(1, 0.01, 100), top 6 dropped) with
the exact Jacobian beside it, writes docs/figures/ald24_official_panel.png and prints the numbers
the conformance table quotes: the raw top singular values at var = 0.01, and the var at which
each block's excess signature starts at the origin (rho = (u^T C_N u / v)(1 + v / var) > 2, the
training-set covariance C_N: weights are exactly 1/N there), for the finite-difference diagonal
and the exact Jacobian, on a fine log grid.

Run: nice -n 10 .venv/bin/python benchmarks/ald24_official_panel.py [--out PATH]
     (about 40 CPU s on one thread; the N = 2^17 row is most of it)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memphase.analysis.ald24_panel import (official_empirical_panel, official_theory_panel,
                                           plot_official_panels)
from memphase.analysis.dimensions import jacobian_sweep
from memphase.physics.schedules import make_schedule
from memphase.simulate.data import linear_manifold
from memphase.simulate.scores import EmpiricalScore


def origin_block_taus(n, d, seed, protocol="ald24"):
    """Excess-signature critical tau per block at the exact origin (exact and finite-difference
    rho) on 121 log-spaced taus in [1e-3, 1]."""
    data = linear_manifold(n, d, [(d // 15, 1.0), (d // 6, 0.3)], normal_std=0.01,
                           normalize="sphere", seed=seed, protocol=protocol)
    sch = make_schedule("ve")
    ds = jacobian_sweep(EmpiricalScore(data, sch), data, np.geomspace(1e-3, 1.0, 121),
                        n_points=1, seed=seed, schedule=sch, anchor="origin", fd_spectrum=True)
    ex = ds.critical_tau.sel(signature="excess", block=[0, 1]).values
    fd = ds.critical_tau_fd.sel(signature="excess", block=[0, 1]).values
    return ex, fd, ds.block_variance.sel(block=[0, 1]).values


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/figures/ald24_official_panel.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.process_time()
    emp = official_empirical_panel()
    theory = official_theory_panel()
    plot_official_panels(emp, theory, args.out)
    i = int(np.argmin(np.abs(emp["var"] - 0.01)))
    print(f"var = {emp['var'][i]:.2f}: top singular values |J_fd| {emp['fd_raw'][i, :3].round(1)}, "
          f"exact {emp['exact_raw'][i, :3].round(1)}")
    print("| d | N | seed | data | v_0 | v_1 | exact tau_0 | exact tau_1 | exact ratio "
          "| fd tau_0 | fd tau_1 | fd ratio | v_0/v_1 |")
    print("|" + "---|" * 13)
    for d, n, seed, proto in ((30, 1000, 2, "ald24"), (30, 2**17, 2, "ald24"),
                              (30, 1000, 0, "memphase"), (60, 1000, 0, "memphase")):
        ex, fd, v = origin_block_taus(n, d, seed, proto)
        print(f"| {d} | {n} | {seed} | {proto} | {v[0]:.4f} | {v[1]:.4f} | {ex[0]:.4f} "
              f"| {ex[1]:.4f} | {ex[0] / ex[1]:.2f} | {fd[0]:.4f} | {fd[1]:.4f} "
              f"| {fd[0] / fd[1]:.2f} | {v[0] / v[1]:.2f} |")
    print(f"\n{time.process_time() - start:.1f} CPU s; figure {args.out}")


if __name__ == "__main__":
    main()
