"""[BBDM24] Fig. 3 protocol (official `Gaussian_mixtures_entropy.py`) with memphase's estimator.

Two-class mixture ±m, |m|^2 = d, unit spread, P = 20000 training points; OU time grid
t_k = 8 (1 - 0.98 k / 20), k = 0..19; planted probes (x = e^{-t} y_mu + sqrt(Delta_t) z, mu uniform);
f / alpha beside the official saved curve (Saves/Gaussian_mixtures/Collapse/f(t)_num_GM.npy, whose
third block is the standard error / alpha) and the official theory line max(REM f, 0) / alpha.
Reduced: 2000 probes per time at d = 256 and 1000 at d = 1024 (official 250 000); d = 1024 only at
the four official times t = 2.512 ... 1.336 through its transition; d = 4096 not run.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python examples/bbdm24_official_collapse.py OFFICIAL.npy
"""

import json
import math
import sys
import time

import numpy as np

from memphase.analysis.critical_times import excess_entropy_mc
from memphase.physics import critical
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.data import gaussian_mixture
from memphase.simulate.scores import EmpiricalScore

P = 20000
official = np.load(sys.argv[1])           # (7, 20): t, f/alpha for d = 256, 1024, 4096, errors / alpha
grid = official[0]
plan = {256: (list(range(20)), 2000), 1024: (list(range(14, 18)), 1000)}
ou = OrnsteinUhlenbeck()
for j, d in enumerate([256, 1024]):
    ks, n_probes = plan[d]
    alpha = math.log(P) / d
    t0 = time.time()
    score = EmpiricalScore(gaussian_mixture(P, d, seed=421), ou)
    f, se = excess_entropy_mc(score, None, grid[ks], seed=421, probe="planted", n_probes=n_probes)
    rem = np.maximum(critical.excess_entropy_gaussian(np.expm1(2 * grid[ks]), P, np.ones(d)), 0)
    for i, k in enumerate(ks):
        print(json.dumps({"d": d, "t": float(grid[k]), "official": float(official[1 + j, k]),
                          "official_se": float(official[4 + j, k]), "memphase": float(f[i] / alpha),
                          "memphase_se": float(se[i] / alpha), "rem_clipped": float(rem[i] / alpha),
                          "n_probes": n_probes}), flush=True)
    print(json.dumps({"d": d, "seconds": round(time.time() - t0, 1)}), flush=True)
