"""Finite-N planted-probe theory on the official [BBDM24] Fig. 3 grid (P = 20000; isotropic unit
Gaussian data, the official theory's model) beside the official saved f / alpha and the clipped
REM line, at the official times t <= 4.08 (the ten smallest; at t ~ 8 one value takes a minute and
f / alpha is 1 there). One JSON line per (d, t).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python examples/bbdm24_planted_theory.py OFFICIAL.npy
"""

import json
import math
import sys

import numpy as np

from memphase.physics import critical

P = 20000
official = np.load(sys.argv[1])
grid = official[0][10:]
official = official[:, 10:]
for j, d in enumerate([256, 1024, 4096]):
    alpha = math.log(P) / d
    planted = critical.excess_entropy_finite_n(grid, P, d, probe="planted")
    fresh = critical.excess_entropy_finite_n(grid, P, d, probe="fresh")
    rem = np.maximum(critical.excess_entropy_gaussian(np.expm1(2 * grid), P, np.ones(d)), 0)
    for k in range(grid.size):
        print(json.dumps({"d": d, "t": float(grid[k]), "official": float(official[1 + j, k]),
                          "official_se": float(official[4 + j, k]),
                          "planted_theory": float(planted[k] / alpha),
                          "fresh_theory": float(fresh[k] / alpha),
                          "rem_clipped": float(rem[k] / alpha)}), flush=True)
