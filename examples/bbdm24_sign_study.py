"""Sign pattern of (measured - finite-N) excess-entropy t_C over seeds (issue #22 part 4).

Runs the eight excess-entropy rows of the full `memphase validate` plan
(`memphase.simulate.cli.validate.FULL.collapse`, fresh probes, 4000 probe points, 13 times on
[0.85, 1.15] x the finite-N t_C) for the seeds given on the command line; each seed draws a new
training set, new probe points and new noise. One JSON line per row on stdout.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python examples/bbdm24_sign_study.py 1 2 3
"""

import json
import sys
import time

from memphase.simulate.cli.validate import FULL, excess_entropy_check

for seed in [int(s) for s in sys.argv[1:]]:
    for d, alpha in FULL.collapse:
        t0 = time.time()
        row = excess_entropy_check(d, alpha, FULL, seed)
        print(json.dumps({"seed": seed, "d": d, "alpha": alpha, "rem": row.theory,
                          "finite_n": row.theory_finite_n, "measured": row.measured,
                          "ci": list(row.ci), "seconds": round(time.time() - t0, 1)}), flush=True)
