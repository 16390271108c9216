"""The discrete-time DDPM protocol of [BUBM25]'s synthetic experiment, written from the description
of its official code (Bonnaire, Urfin, Biroli, Mezard, "Why diffusion models don't memorize: the
role of implicit dynamical regularization in training", arXiv 2505.17638; the protocol is listed
row by row in docs/conformance/bubm25.md):

- data: two Gaussian clusters of n/2 points each, N(+mu 1, sigma^2 I) then N(-mu 1, sigma^2 I)
  (`two_clusters`, torch's generator seeded with the dataset seed);
- network: a residual MLP of `n_blocks` blocks on the integer DDPM step k (`TimeStepResidualMLP`):
      h = W_in x;  per block  h <- LN(h + W_2 GELU(W_1 (h + PE[k])));  eps = W_out h,
  PE the transformer positional encoding of k (`positional_encoding`);
- training (`train_ddpm`): shuffled epochs of minibatches (the last, partial batch kept; full
  batch when n <= batch), k ~ U{1, ..., T-1} per point, x_k = sqrt(ab_k) x_0 + sqrt(1 - ab_k) eps,
  loss = mean over the batch and the d coordinates of (eps_theta - eps)^2; Adam or SGD with
  momentum at a constant rate; the weights after k updates kept at each requested k;
- generation: deterministic DDIM (eta = 0) on S steps k_i = int(linspace(0, T-1, S)) reversed
  (`sample_ddim`), or ancestral DDPM on all T steps (`sample_ddpm`) [Ho et al. 2020].
The chain itself (betas, alphabar) is `memphase.physics.ddpm.ddpm_chain`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from memphase.physics.ddpm import DDPMChain
from ..base.step_progress import report as report_step

__all__ = ["two_clusters", "positional_encoding", "TimeStepResidualMLP", "build_time_step_mlp",
           "ddpm_loss", "train_ddpm",
           "sample_ddim", "sample_ddpm", "ddim_steps", "official_training_times",
           "DDPM_OPTIMIZERS"]

DDPM_OPTIMIZERS = ("adam", "sgd_momentum")


def two_clusters(n: int, d: int, mu: float = 1.0, sigma: float = 1.0, seed: int = 0,
                 dtype=torch.float32) -> torch.Tensor:
    """(n, d): rows 0 .. n/2-1 from N(+mu 1, sigma^2 I), rows n/2 .. n-1 from N(-mu 1, sigma^2 I),
    drawn in that order from torch's CPU generator seeded with `seed` (the same numbers as
    `torch.manual_seed(seed)` then two `torch.randn` calls). n must be even."""
    if not isinstance(n, int) or n < 2 or n % 2:
        raise ValueError(f"n must be an even integer >= 2, got {n!r}")
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    g = torch.Generator().manual_seed(int(seed))
    m = torch.ones(d) * mu
    x1 = torch.randn(n // 2, d, generator=g) * sigma + m
    x2 = torch.randn(n // 2, d, generator=g) * sigma - m
    return torch.vstack((x1, x2)).to(dtype)


def positional_encoding(max_len: int, dim: int, min_freq: float = 1e-4) -> np.ndarray:
    """(max_len, dim) table PE[k, j] = cos(k w_j) (j even), sin(k w_j) (j odd),
    w_j = min_freq^(2 floor(j/2) / dim) [Vaswani et al. 2017, as in the BUBM25 official model]."""
    k = np.arange(max_len, dtype=np.float64)
    w = min_freq ** (2.0 * (np.arange(dim) // 2) / dim)
    arg = k[:, None] * w[None, :]
    out = np.empty_like(arg)
    out[:, 0::2] = np.cos(arg[:, 0::2])
    out[:, 1::2] = np.sin(arg[:, 1::2])
    return out


class _Block(nn.Module):
    def __init__(self, width: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", torch.tensor(positional_encoding(max_len, width),
                                                dtype=torch.float32), persistent=False)
        self.lin1 = nn.Linear(width, width)
        self.lin2 = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, h, k):
        out = self.lin2(nn.functional.gelu(self.lin1(h + self.pe[k].to(h.dtype))))
        return self.norm(h + out)


class TimeStepResidualMLP(nn.Module):
    """eps_theta(x, k) for integer DDPM steps k (module docstring): Linear d -> width, `n_blocks`
    blocks h <- LN(h + W_2 GELU(W_1 (h + PE[k]))), Linear width -> d. Parameters:
    (d + 1) w + n_blocks (2 (w^2 + w) + 2 w) + (w + 1) d (102,024 for d = 8, w = 128, 3 blocks).
    Initialization: torch's default Linear / LayerNorm init from the global generator (seed it, or
    build inside `torch.random.fork_rng`)."""

    kind = "time_step_residual_mlp"

    def __init__(self, d: int, width: int = 128, n_blocks: int = 3, max_len: int = 10000):
        super().__init__()
        for name, v in (("d", d), ("width", width), ("n_blocks", n_blocks), ("max_len", max_len)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.d = d
        # creation order = the official SimpleTimeModel's (input, output, then the blocks), so the
        # same torch generator state gives the same initial weights
        self.inp = nn.Linear(d, width)
        self.out = nn.Linear(width, d)
        self.blocks = nn.ModuleList(_Block(width, max_len) for _ in range(n_blocks))
        self.hparams = {"kind": self.kind, "d": d, "width": width, "n_blocks": n_blocks,
                        "max_len": max_len}

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, k)
        return self.out(h)

    @staticmethod
    def parameter_count(d: int, width: int = 128, n_blocks: int = 3) -> int:
        """The closed-form parameter count of the class docstring."""
        return (d + 1) * width + n_blocks * (2 * (width * width + width) + 2 * width) \
            + (width + 1) * d


def build_time_step_mlp(d: int, width: int = 128, n_blocks: int = 3, seed: int = 0,
                        after_data: int | None = None):
    """`TimeStepResidualMLP` initialized from torch's global generator seeded with `seed` (global
    state restored afterwards). after_data=n: first draw the n-point `two_clusters` set of
    dimension d from that generator, as the official [BUBM25] training script does before it builds its model,
    so the initial weights are the official ones for dataset seed `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if after_data is not None:
            torch.randn(after_data // 2, d)
            torch.randn(after_data // 2, d)
        return TimeStepResidualMLP(d, width, n_blocks)


def ddpm_loss(net: nn.Module, y: torch.Tensor, k: torch.Tensor, eps: torch.Tensor,
              chain: DDPMChain) -> torch.Tensor:
    """The official training loss: mean over batch and coordinates of
    (eps_theta(sqrt(ab_k) y + sqrt(1 - ab_k) eps, k) - eps)^2 (nn.MSELoss)."""
    ab = torch.as_tensor(chain.alphabar, dtype=y.dtype)[k][:, None]
    return ((net(torch.sqrt(ab) * y + torch.sqrt(1 - ab) * eps, k) - eps) ** 2).mean()


def official_training_times(budget: int) -> list[int]:
    """The checkpoint grid of the [BUBM25] official evaluation, kept up to `budget` (with the
    budget itself appended): 0; log-spaced from 251 to 1e4 (10 points) rounded down to multiples of
    250; from 1e4 to 1e6 (90 points) and 1e6 to 1e7 (10 points) rounded down to multiples of 5000;
    unique and sorted."""
    def mod_unique(a, m):
        return np.unique(a - a % m)
    parts = [np.array([0.0]), mod_unique(np.logspace(np.log10(251), 4, 10), 250),
             mod_unique(np.logspace(4, 6, 90), 5000), mod_unique(np.logspace(6, 7, 10), 5000)]
    grid = np.unique(np.hstack(parts).astype(int))
    out = [int(k) for k in grid if k <= budget]
    if out[-1] != budget:
        out.append(int(budget))
    return out


def _optimizer(net, optimizer: str, lr: float, momentum: float):
    # default betas (0.9, 0.999), eps 1e-8, no weight decay, as the official torch.optim calls
    if optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr)
    if optimizer == "sgd_momentum":
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(DDPM_OPTIMIZERS)}")


def train_ddpm(x: torch.Tensor, net: nn.Module, chain: DDPMChain, steps: int, *,
               batch_size: int = 512, optimizer: str = "adam", lr: float = 6e-4,
               momentum: float = 0.95, checkpoints=(), seed: int = 0) -> dict:
    """Train eps_theta(x_k, k) on the (n, d) set x for `steps` updates (module docstring).
    Shuffles, steps k and noise come from one torch Generator seeded with `seed`.
    Returns {"losses": (steps,) array, "checkpoints": {k: state_dict after k updates},
    "seconds": wall time}; k = 0 is the initial network."""
    n = x.shape[0]
    bs = min(int(batch_size), n)
    g = torch.Generator().manual_seed(int(seed))
    opt = _optimizer(net, optimizer, lr, momentum)
    wanted = set(int(c) for c in checkpoints)
    kept, losses = {}, np.empty(steps)
    net.train()

    def keep(step):
        if step in wanted:
            kept[step] = {k: v.detach().clone() for k, v in net.state_dict().items()}

    keep(0)
    start, step = time.perf_counter(), 0
    while step < steps:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            y = x[perm[i:i + bs]]
            k = torch.randint(1, chain.steps, (y.shape[0],), generator=g)
            eps = torch.randn(y.shape, generator=g, dtype=y.dtype)
            loss = ddpm_loss(net, y, k, eps, chain)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[step] = float(loss.detach())
            step += 1
            keep(step)
            report_step(step, steps)
            if step >= steps:
                break
    net.eval()
    return {"losses": losses, "checkpoints": kept, "seconds": time.perf_counter() - start}


def ddim_steps(total: int, n_steps: int) -> list[int]:
    """The DDIM step grid: int(linspace(0, total - 1, n_steps)) from the largest down."""
    return [int(k) for k in np.linspace(0, total - 1, n_steps).astype(int)[::-1]]


@torch.no_grad()
def sample_ddim(net: nn.Module, chain: DDPMChain, n: int, d: int, n_steps: int = 100,
                seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) [Song et al. 2021, eq. 12] from x ~ N(0, I) at k_1 = T-1 down
    to k_S = 0 along `ddim_steps`: x0_hat = (x - sqrt(1-ab_k) eps) / sqrt(ab_k);
    x <- sqrt(ab_k') x0_hat + sqrt(1 - ab_k') eps. Returns x at step 0 (no final denoising)."""
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, d, generator=g, dtype=dtype)
    ab = torch.tensor(chain.alphabar, dtype=dtype)
    ks = ddim_steps(chain.steps, n_steps)
    for k, kp in zip(ks[:-1], ks[1:]):
        eps = net(x, torch.full((n,), k, dtype=torch.long))
        x0 = (x - torch.sqrt(1 - ab[k]) * eps) / torch.sqrt(ab[k])
        x = torch.sqrt(ab[kp]) * x0 + torch.sqrt(torch.clamp(1 - ab[kp], min=1e-8)) * eps
    return x


@torch.no_grad()
def sample_ddpm(net: nn.Module, chain: DDPMChain, n: int, d: int, seed: int = 0,
                dtype=torch.float32) -> torch.Tensor:
    """Ancestral DDPM [Ho et al. 2020, Alg. 2] over every step k = T-1 .. 0:
    x <- (x - beta_k / sqrt(1 - ab_k) eps_theta(x, k)) / sqrt(alpha_k) + sqrt(beta_k) z,
    z = 0 for k <= 1 (as in the official sampler)."""
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, d, generator=g, dtype=dtype)
    beta = torch.tensor(chain.betas, dtype=dtype)
    s1ab = torch.tensor(np.sqrt(1.0 - chain.alphabar), dtype=dtype)
    for k in range(chain.steps - 1, -1, -1):
        eps = net(x, torch.full((n,), k, dtype=torch.long))
        z = torch.randn(x.shape, generator=g, dtype=dtype) if k > 1 else torch.zeros_like(x)
        x = (x - beta[k] / s1ab[k] * eps) / math.sqrt(1.0 - float(chain.betas[k])) \
            + torch.sqrt(beta[k]) * z
    return x
