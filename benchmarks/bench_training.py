"""Network training: DSM optimizer steps per second of memphase.simulate.learning.training.train_score.

    (a) suite   train_score(y, schedule, ResidualMLP, TrainConfig(steps, batch_size)): minibatch
                epochs, log-tau noise levels through the schedule, DSM loss (eq. L of
                simulate/learning/training.py), Adam, deterministic algorithms on
    (b) plain   the same network, batch, loss and optimizer in a bare loop (noise levels drawn
                directly in log tau, no epochs, no bookkeeping): the floor of one step

Both train the [ALD24] residual MLP (depth 3, embedding 64) on d = 16 Gaussian data for a fixed
number of steps, timed interleaved (best of k). overhead = t(a) / t(b) per step.
Target (ours; issue 8 names the benchmark without a number): overhead <= 1.2.

Usage: python benchmarks/bench_training.py [--quick] [--device cpu|cuda|auto] [--repeat K]
"""

from __future__ import annotations

import math
import sys

import torch

from common import best_times, markdown_table, setup

from memphase.physics.schedules import make_schedule
from memphase.simulate.learning.networks import build_network, count_parameters
from memphase.simulate.learning.training import TrainConfig, dsm_loss, train_score

D = 16
BATCH = 128


def plain_steps(net, y, schedule, steps, batch, seed=0):
    """Bare DSM loop: the work every training step must do, nothing else."""
    g = torch.Generator(device=y.device).manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lo, hi = math.log(1e-6), math.log(1e4)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, y.shape[0], (batch,), generator=g, device=y.device)
        yb = y[idx]
        log_tau = lo + (hi - lo) * torch.rand(batch, generator=g, dtype=y.dtype, device=y.device)
        tau = torch.exp(log_tau)
        s2 = tau / (1 + tau)                                   # OU: sigma^2 = tau m^2, m^2 = 1/(1+tau)
        z = torch.randn(yb.shape, generator=g, dtype=y.dtype, device=y.device)
        eps = net(yb + torch.sqrt(tau)[:, None] * z, log_tau)
        loss = dsm_loss(eps, z, s2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main(argv=None):
    args, timing, device = setup(__doc__, "Network training", argv)
    repeat = args.repeat
    widths = (64, 256) if args.quick else (64, 256, 1024)
    # enough steps that the per-call set-up (device moves, input checks, final state copy) is
    # amortized: the target is about the cost of a step
    steps = 50 if args.quick else 200
    schedule = make_schedule("ou")
    y = torch.randn(4096, D, generator=torch.Generator().manual_seed(0)).to(device)
    cfg = TrainConfig(steps=steps, batch_size=BATCH, device=str(device), dtype="float32")
    rows = []
    for width in widths:
        net_a = build_network("residual_mlp", D, seed=0, width=width)
        net_b = build_network("residual_mlp", D, seed=0, width=width).to(device)
        t = best_times({"a": lambda: train_score(y, schedule, net_a, cfg),
                        "b": lambda: plain_steps(net_b, y, schedule, steps, BATCH)},
                       repeat=repeat, device=device)
        rows.append([width, count_parameters(net_a), steps / t["a"], steps / t["b"],
                     t["a"] / t["b"]])
        print(f"  {rows[-1]}", file=sys.stderr)
    print(f"## Network training (device: {device}; {timing})\n")
    print(f"ResidualMLP [ALD24] (depth 3, embedding 64), d = {D}, batch {BATCH}, float32, "
          f"{steps} Adam steps per timed run, best of {repeat}. (a) memphase.simulate.learning.training."
          "train_score, (b) a bare DSM loop with the same network, loss and optimizer.\n")
    print(markdown_table(["width", "parameters", "(a) steps/s", "(b) steps/s",
                          "overhead (a)/(b)"], rows))
    met = all(r[4] <= 1.2 for r in rows)
    print(f"\nTarget: overhead <= 1.2: {'met' if met else 'NOT met'}.\n")


if __name__ == "__main__":
    main()
