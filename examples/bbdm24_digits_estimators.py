"""Collapse-time estimators side by side on the digits (issue #22 part 4): the `collapse_digits.toml`
protocol (empirical score, top-d PCA coordinates, same sampler and seeds), per cell

- mean and median of the last-change time t_hat_C (memphase's midpoint rule) and the mean with the
  official [BBDM24] rule ("after": the first recording on the final point);
- the zero of the Monte-Carlo excess entropy with fresh probes = held-out digits (13 times on
  tau_C * [1/8, 8], the collapse experiment's grid; only where >= 200 digits are held out);

each as a ratio to the REM t_C with the PCA spectrum. One JSON line per (d, N, seed).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python examples/bbdm24_digits_estimators.py
"""

import json
import time

import numpy as np
import torch

from memphase.analysis.critical_times import crossing_time, excess_entropy_mc
from memphase.analysis.observers import NearestTrainingPoint, collapse_time_from_indices
from memphase.physics import critical
from memphase.simulate.data.real import draw_held_out
from memphase.simulate.experiments import collapse
from memphase.simulate.experiments.common import reverse_run
from memphase.simulate.run.runner import load_job
from memphase.physics.schedules import make_schedule
from memphase.simulate.scores import EmpiricalScore

_, cfg, _ = load_job("data/configs/collapse_digits.toml")
sch = make_schedule(cfg["sampler"]["schedule"])
for d in (8, 16, 32, 61):
    var = collapse.spectrum(cfg, d)
    for n in (300, 1000, 1797):
        tau_c = float(critical.collapse_tau(n, var))
        t_rem = float(critical.collapse_time(n, var, sch))
        for seed in cfg["grid"]["seeds"]:
            t0 = time.time()
            data = collapse._data(cfg, n, d, seed)
            score = EmpiricalScore(data, sch)
            obs = NearestTrainingPoint(data)
            reverse_run(cfg, score, sch, collapse.SEED_OFFSETS["sampling"] + seed, [obs])
            r = obs.result()
            mid = r["collapse_time"]
            after = collapse_time_from_indices(r["t"], r["index"], rule="after")
            zero = float("nan")
            if 1797 - n >= 200:
                fresh = torch.tensor(draw_held_out(data, 1797 - n, collapse.SEED_OFFSETS["fresh"] + seed))
                taus = tau_c * np.geomspace(1 / 8, 8, 13)
                times = np.asarray(sch.time_of_tau(taus), dtype=float)
                f, _ = excess_entropy_mc(score, fresh, times, seed=collapse.SEED_OFFSETS["entropy_mc"] + seed)
                zero = crossing_time(times, f, 0.0)
            print(json.dumps({"d": d, "n": n, "seed": seed, "t_rem": t_rem,
                              "mean": float(mid.mean()) / t_rem, "median": float(np.median(mid)) / t_rem,
                              "mean_after": float(after.mean()) / t_rem, "entropy_zero": zero / t_rem,
                              "seconds": round(time.time() - t0, 1)}), flush=True)
