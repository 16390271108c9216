"""Nearest-neighbour search: the suite's chunked matmul search against brute force.

    (a) suite    memphase.analysis.memorization.nearest_neighbors(x, y, k=2): chunked |y|^2 - 2 x.y blocks,
                 running top-k, exact distances recomputed on the winners
    (c) numpy    B x N x d differences, norms, np.argpartition + sort (the brute force of paper
                 code); timed on the first r rows (r N d below ~256 MiB) and EXTRAPOLATED linearly
                 to B rows, as in bench_empirical_score.py
    (d) cdist    torch.cdist (B x N distances at once) + torch.topk

The samples are the forward process at t = 0.5 started on training points (bench_empirical_score's
`make_problem`), so the nearest neighbour is well separated from the second. Reported: time ratios
(c)/(a), (d)/(a); the fraction of rows whose two indices agree with (d), and the largest distance
difference. Target (ours; issue 8 names the benchmark without a number): (a) at least 10x faster
than (c) and not slower than (d), with identical neighbours.

Usage: python benchmarks/bench_nearest.py [--quick] [--device cpu|cuda|auto] [--repeat K]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from common import best_times, markdown_table, setup
from bench_empirical_score import make_problem

from memphase.analysis.memorization import nearest_neighbors

K = 2
NUMPY_BUDGET = 256 * 2**20


def numpy_knn(x, y, k=K):
    """Brute force: all B x N distances from explicit differences, then a partial sort."""
    dist = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    idx = np.argpartition(dist, k, axis=1)[:, :k]
    dk = np.take_along_axis(dist, idx, 1)
    order = np.argsort(dk, axis=1)
    return np.take_along_axis(dk, order, 1), np.take_along_axis(idx, order, 1)


def cdist_knn(x, y, k=K):
    dist, idx = torch.topk(torch.cdist(x, y), k, dim=1, largest=False)
    return dist, idx


def compare(b, n, d, dtype, device, repeat) -> list:
    y, x, *_ = make_problem(b, n, d, dtype, device)
    itemsize = torch.finfo(dtype).bits // 8
    rows = int(max(1, min(b, NUMPY_BUDGET // (n * d * itemsize))))
    xn, yn = x[:rows].cpu().numpy(), y.cpu().numpy()
    t = best_times({"a": lambda: nearest_neighbors(x, y, k=K), "d": lambda: cdist_knn(x, y)},
                   repeat=repeat, device=device)
    t["c"] = best_times({"c": lambda: numpy_knn(xn, yn)}, repeat=max(1, repeat - 1),
                        warmup=0)["c"] * b / rows
    da, ia = nearest_neighbors(x, y, k=K)
    dd, idd = cdist_knn(x, y)
    dc, ic = numpy_knn(xn, yn)
    agree = float((ia == idd).all(dim=1).double().mean())
    agree_c = float((ia[:rows].cpu().numpy() == ic).all(axis=1).mean())
    err = float((da - dd).abs().max())
    return [str(dtype).replace("torch.", ""), b, n, d, 1e3 * t["a"], t["c"] / t["a"],
            f"{rows}/{b}" + (" (extrap.)" if rows < b else ""), t["d"] / t["a"], agree, agree_c,
            err]


def main(argv=None):
    args, timing, device = setup(__doc__, "Nearest-neighbour search", argv)
    repeat = args.repeat
    configs = [(256, 4096, 16), (256, 4096, 256)] if args.quick else \
        [(1024, 16384, 16), (1024, 16384, 256), (1024, 65536, 64)]
    rows = []
    for dtype in (torch.float32, torch.float64):
        for b, n, d in configs:
            rows.append(compare(b, n, d, dtype, device, repeat))
            print(f"  {rows[-1]}", file=sys.stderr)
    print(f"## Nearest-neighbour search (device: {device}; {timing})\n")
    print(f"k = {K} nearest training points of each sample, best of {repeat}. (a) "
          "memphase.analysis.memorization.nearest_neighbors, (c) numpy B x N x d brute force "
          "(extrapolated from r rows), (d) torch.cdist + topk. 'agree' = fraction of rows with "
          "the same two indices as (d) / as (c).\n")
    print(markdown_table(["dtype", "B", "N", "d", "t(a) ms", "(c)/(a)", "c rows", "(d)/(a)",
                          "agree (d)", "agree (c)", "max |dist (a) - (d)|"], rows))
    met = all(r[5] >= 10 and r[7] >= 1 and r[8] == 1 and r[9] == 1 for r in rows)
    print(f"\nTarget: (c)/(a) >= 10, (d)/(a) >= 1, identical neighbours: "
          f"{'met' if met else 'NOT met'}.\n")


if __name__ == "__main__":
    main()
