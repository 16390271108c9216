"""Noise-prediction networks eps_theta(x, nu) for learned scores (docs/theory.md, Scores).

Contract shared by every network: `forward(x, noise_level, labels=None)` with
    x            (B, d) in data units, x = x_t / m = y + sqrt(tau) z (the VE view of any schedule),
    noise_level  (B,) tensor nu = log tau, tau = sigma^2 / m^2 the data-scale noise variance,
    labels       (B,) integer class labels in [0, n_classes) of a label-conditioned network
                 (n_classes set), None otherwise (n_classes = 1: None means class 0),
and the output is the predicted noise eps_theta ~ z, shape (B, d). The score in the schedule's
own units is s = -eps_theta / sigma (`memphase.simulate.scores.LearnedScore`). Because x_t / m and tau are
the same for every schedule, one network trained without Tikhonov penalty serves OU, linear-VP
and VE sampling alike (the penalty lambda |eps|^2 / sigma^2 involves the schedule's sigma).

Inputs are preconditioned as in EDM [Karras et al. 2022, c_in]: the network sees
x / sqrt(data_var + tau), of unit variance at every noise level for data of variance data_var.
With skip=True (off by default: the reference networks have none) the output is
sqrt(tau / (data_var + tau)) x_in + F(x_in, nu), the exact eps of N(0, data_var I) data plus a
learned correction: the network then extrapolates linearly into the tails, where an untrained
F can otherwise under-predict eps at large tau and let rare reverse trajectories run away.

| network      | architecture                                                              |
|--------------|---------------------------------------------------------------------------|
| ResidualMLP  | Linear d->width, `depth` blocks h += Linear(SiLU(LN(h) + E_k e(nu))),     |
|              | e(nu) sinusoidal embedding of log tau, head LN-SiLU-Linear      [ALD24]  |
| FourierMLP   | ReLU MLP on [x, sin(2 pi b nu), cos(2 pi b nu)], b ~ N(0, scale^2) [BDKOS25] |
| ConvNet      | x as a side x side one-channel image; 3x3 conv 1->width, `depth` residual  |
|              | blocks (GN-SiLU-conv, + E_k e(nu), GN-SiLU-conv), head GN-SiLU-conv->1    |
|              | (the DDPM residual block [Ho et al. 2020] without down-sampling)          |
| ConvUNet     | ConvNet with one down/up level (side -> side/2 at 2 width channels)      |

The convolutional networks live in `memphase.simulate.learning.conv_networks` (registered in NETWORKS and
importable from here).

Label conditioning (`n_classes=C`): one class-conditional network, as the conditional EDM of
[GDPLLW23] (Gu et al., "On memorization in diffusion models", arXiv 2310.02664; EDM: Karras et al.,
arXiv 2206.00364): a learned vector E[c] (nn.Embedding(C, size of the noise embedding), N(0, 1)
init) is added to the noise embedding, e(nu) -> e(nu) + E[c] (the Fourier features for FourierMLP),
so the class enters every block the way the noise level does. The embedding is created after every
other parameter: a conditional network and the unconditional one of the same seed share all other
initial weights. n_classes=None (default): no embedding, and the hparams are those of before.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# shared input handling and embeddings (noise_net); the convolutional networks (conv_networks)
from .conv_networks import ConvNet, ConvUNet, conv_parameter_count  # noqa: F401
from .noise_net import (_check_positive_int, _check_sizes, _NoiseNet, check_labels,  # noqa: F401
                        sinusoidal_embedding)

__all__ = ["ResidualMLP", "FourierMLP", "ConvNet", "ConvUNet", "build_network", "count_parameters",
           "NETWORKS", "sinusoidal_embedding", "conv_parameter_count", "check_network_d",
           "check_labels"]


class ResidualMLP(_NoiseNet):
    """Residual MLP of [ALD24]: h = W_in x; per block h <- h + W_k SiLU(LN(h) + E_k e(nu));
    eps = W_out SiLU(LN(h)). e(nu) is the sinusoidal embedding of nu = log tau (dim emb_dim), plus
    the label embedding E[c] when n_classes is set (module docstring)."""

    kind = "residual_mlp"

    def __init__(self, d: int, width: int = 256, depth: int = 3, emb_dim: int = 64,
                 data_var: float = 1.0, skip: bool = False, n_classes: int | None = None):
        super().__init__(d, data_var, skip)
        _check_sizes(width, depth, emb_dim)
        self.emb_dim = emb_dim
        self.inp = nn.Linear(d, width)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(depth))
        self.embeds = nn.ModuleList(nn.Linear(emb_dim, width) for _ in range(depth))
        self.linears = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, d)
        self.hparams = {"kind": self.kind, "d": d, "width": width, "depth": depth,
                        "emb_dim": emb_dim, "data_var": float(data_var), "skip": skip}
        self._init_labels(n_classes, emb_dim)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels=None) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        emb = sinusoidal_embedding(nu, self.emb_dim)
        lab = self._label_term(labels, x.shape[0], x)
        if lab is not None:
            emb = emb + lab
        h = self.inp(x)
        for norm, embed, lin in zip(self.norms, self.embeds, self.linears):
            h = h + lin(nn.functional.silu(norm(h) + embed(emb)))
        return self._skip(x, nu) + self.out(nn.functional.silu(self.head_norm(h)))


class FourierMLP(_NoiseNet):
    """ReLU MLP of [BDKOS25] with Gaussian Fourier features of nu = log tau:
    f(nu) = [sin(2 pi b nu), cos(2 pi b nu)], b ~ N(0, fourier_scale^2) fixed (fourier_dim / 2 of
    them); eps = MLP([x, f(nu)]) with `depth` hidden ReLU layers of `width` units; f(nu) + E[c]
    when n_classes is set (module docstring)."""

    kind = "fourier_mlp"

    def __init__(self, d: int, width: int = 256, depth: int = 2, fourier_dim: int = 8,
                 fourier_scale: float = 0.25, data_var: float = 1.0, skip: bool = False,
                 n_classes: int | None = None):
        super().__init__(d, data_var, skip)
        for name, v in (("width", width), ("depth", depth), ("fourier_dim", fourier_dim)):
            _check_positive_int(name, v)
        if fourier_dim % 2:
            raise ValueError(f"fourier_dim must be even, got {fourier_dim}")
        if not (isinstance(fourier_scale, (int, float)) and fourier_scale > 0):
            raise ValueError(f"fourier_scale must be positive, got {fourier_scale!r}")
        self.register_buffer("freqs", fourier_scale * torch.randn(fourier_dim // 2))
        layers: list[nn.Module] = []
        n_in = d + fourier_dim
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, d))
        self.mlp = nn.Sequential(*layers)
        self.hparams = {"kind": self.kind, "d": d, "width": width, "depth": depth,
                        "fourier_dim": fourier_dim, "fourier_scale": float(fourier_scale),
                        "data_var": float(data_var), "skip": skip}
        self._init_labels(n_classes, fourier_dim)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels=None) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        arg = 2 * math.pi * nu[:, None] * self.freqs.to(x.dtype)[None, :]
        feats = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
        lab = self._label_term(labels, x.shape[0], x)
        if lab is not None:
            feats = feats + lab
        return self._skip(x, nu) + self.mlp(torch.cat([x, feats], dim=1))


NETWORKS = {ResidualMLP.kind: ResidualMLP, FourierMLP.kind: FourierMLP,
            ConvNet.kind: ConvNet, ConvUNet.kind: ConvUNet}


def build_network(kind: str, d: int, seed: int | None = 0, **params) -> nn.Module:
    """Build a network by kind ('residual_mlp', 'fourier_mlp', 'conv', 'conv_unet') with its
    parameters.

    Initialization (weights and Fourier frequencies) draws from torch's global generator seeded with
    `seed` inside `torch.random.fork_rng`, so it is reproducible and leaves the global state as it
    was; seed=None uses the global state as is.
    """
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}; choose one of {sorted(NETWORKS)}")
    if seed is None:
        return NETWORKS[kind](d, **params)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NETWORKS[kind](d, **params)


def check_network_d(kind: str, d: int) -> None:
    """One-line ValueError, before any compute, when network `kind` cannot take inputs of width d
    (unknown kind; 'conv' or 'conv_unet' with d not a perfect square; 'conv_unet' with an odd
    image side). Experiments call it when they check their config."""
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}; choose one of {sorted(NETWORKS)}")
    _check_positive_int("d", d)
    NETWORKS[kind].check_d(d)


def count_parameters(network: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad or not trainable_only)
