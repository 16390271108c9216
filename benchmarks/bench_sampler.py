"""Sampler overhead: full reverse SDE (Euler-Maruyama) and probability-flow ODE (Heun) runs with
the empirical score, against the time of the score calls they make.

    overhead = t(sample run) / (number of score calls x t(one score call))

Euler-Maruyama makes steps + 1 score calls, Heun 2 steps + 1. The single-call time is the best of
k calls at mid-trajectory times; overhead 1 means the sampler's own arithmetic is free.
Target: overhead <= 1.2.

Usage: python benchmarks/bench_sampler.py [--quick] [--device cpu|cuda|auto] [--repeat K]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from common import best_times, markdown_table, setup

from memphase.physics.schedules import make_schedule
from memphase.simulate.sampling import default_time_range, sample, time_grid
from memphase.simulate.scores.empirical import EmpiricalScore


def main(argv=None):
    args, timing, device = setup(__doc__, "Sampler overhead", argv)
    repeat = args.repeat
    configs = [(256, 2048, 16), (256, 2048, 256)] if args.quick else \
        [(1024, 16384, 16), (1024, 16384, 256), (256, 4096, 64)]
    steps = 10 if args.quick else 20
    sched = make_schedule("ou")
    t_max, t_min = default_time_range(sched, tau_max=10.0, tau_min=1e-3)
    ts = time_grid(sched, steps, t_max, t_min)
    rows = []
    for dtype_name in ("float32", "float64"):
        dtype = getattr(torch, dtype_name)
        for b, n, d in configs:
            g = torch.Generator().manual_seed(0)
            y = torch.randn(n, d, generator=g, dtype=dtype).to(device)
            score = EmpiricalScore(y, sched)
            x = torch.randn(b, d, generator=g, dtype=dtype).to(device)
            t_mid = [float(t) for t in ts[:: max(1, steps // 4)]]
            calls = {f"score@{t:.3g}": (lambda t=t: score(x, t)) for t in t_mid}
            runs = {m: (lambda m=m: sample(score, sched, b, method=m, steps=steps, t_max=t_max,
                                           t_min=t_min, dtype=dtype, device=device, record=None))
                    for m in ("sde", "ode")}
            t = best_times({**calls, **runs}, repeat=repeat, device=device)
            t_call = float(np.mean([t[k] for k in calls]))
            for m, n_calls in (("sde", steps + 1), ("ode", 2 * steps + 1)):
                rows.append([dtype_name, b, n, d, m, steps, 1e3 * t_call,
                             1e3 * t[m] / steps, t[m] / (n_calls * t_call)])
    print(f"## Sampler overhead (device: {device}; {timing})\n")
    print("overhead = t(run) / (score calls x t(score call)); t(score call) is the mean over "
          "4 times on the grid of the best-of-k call time. Target <= 1.2.\n")
    print(markdown_table(["dtype", "B", "N", "d", "method", "steps", "t(score) ms",
                          "t(step) ms", "overhead"], rows))
    worst = max(r[-1] for r in rows)
    print(f"\nTarget: overhead <= 1.2: max {worst:.3g}, {'met' if worst <= 1.2 else 'NOT met'}.\n")


if __name__ == "__main__":
    main()
