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

__all__ = ["ResidualMLP", "FourierMLP", "ConvNet", "ConvUNet", "build_network", "count_parameters",
           "NETWORKS", "sinusoidal_embedding", "conv_parameter_count", "check_network_d",
           "check_labels"]
_CONV_NAMES = ("ConvNet", "ConvUNet", "conv_parameter_count")  # defined in conv_networks


def _check_positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _check_sizes(width, depth, emb_dim) -> None:
    """One-line ValueError unless width, depth, emb_dim are positive integers, emb_dim even."""
    for name, v in (("width", width), ("depth", depth), ("emb_dim", emb_dim)):
        _check_positive_int(name, v)
    if emb_dim % 2:
        raise ValueError(f"emb_dim must be even, got {emb_dim}")


def sinusoidal_embedding(nu: torch.Tensor, dim: int, f_min: float = 0.01, f_max: float = 4.0):
    """[sin(w_k nu), cos(w_k nu)], w_k geometric from f_min to f_max (k < dim/2), shape (B, dim).

    The transformer embedding [Vaswani 2017] with frequencies fitted to nu = log tau, which spans
    about [-14, 9]: the slowest period (2 pi / 0.01) covers the range monotonically, the fastest
    resolves changes of tau by ~25 %.
    """
    half = dim // 2
    w = torch.exp(torch.linspace(math.log(f_min), math.log(f_max), half,
                                 dtype=nu.dtype, device=nu.device))
    arg = nu[:, None] * w[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class _NoiseNet(nn.Module):
    """Shared input handling: validation and the c_in preconditioning."""

    kind = "network"

    def __init__(self, d: int, data_var: float, skip: bool):
        super().__init__()
        if not isinstance(skip, bool):
            raise ValueError(f"skip must be a bool, got {skip!r}")
        self.skip = skip
        _check_positive_int("d", d)
        if not (isinstance(data_var, (int, float)) and math.isfinite(data_var) and data_var > 0):
            raise ValueError(f"data_var must be a positive number, got {data_var!r}")
        self.d = d
        self.register_buffer("data_var", torch.tensor(float(data_var)))
        self.hparams: dict = {}

    def _skip(self, x_in: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
        """Linear skip sqrt(tau / (v + tau)) x_in: the exact eps of N(0, v I) data (0 when off)."""
        if not self.skip:
            return torch.zeros_like(x_in)
        tau = torch.exp(nu)
        return torch.sqrt(tau / (self.data_var.to(x_in.dtype) + tau))[:, None] * x_in

    @classmethod
    def check_d(cls, d: int) -> None:
        """One-line ValueError when this network cannot take inputs of width d (any d here)."""

    def _init_labels(self, n_classes, size: int) -> None:
        """The label embedding nn.Embedding(n_classes, size) (None: unconditional). Called last in
        the subclass __init__, so the other initial weights do not depend on n_classes."""
        if n_classes is not None:
            _check_positive_int("n_classes", n_classes)
            self.label_embedding = nn.Embedding(n_classes, size)
            self.hparams["n_classes"] = n_classes
        else:
            self.label_embedding = None
        self.n_classes = n_classes

    def _label_term(self, labels, batch: int, like: torch.Tensor):
        """E[labels] of shape (B, size), or None for an unconditional network; one-line ValueError
        for labels of the wrong kind, shape or range (`check_labels`)."""
        if self.n_classes is None:
            if labels is not None:
                raise ValueError("this network is not label-conditioned (n_classes = None): "
                                 "labels must be None")
            return None
        if labels is None:
            if self.n_classes != 1:
                raise ValueError(f"this network is conditioned on n_classes = {self.n_classes} "
                                 "labels: pass labels, a (B,) integer tensor")
            labels = torch.zeros(batch, dtype=torch.long, device=like.device)
        labels = check_labels(labels, batch, self.n_classes, like.device)
        return self.label_embedding(labels).to(like.dtype)

    def _inputs(self, x: torch.Tensor, noise_level: torch.Tensor):
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"x must have shape (B, {self.d}), got {tuple(x.shape)}")
        if noise_level.shape != (x.shape[0],):
            raise ValueError(f"noise_level must have shape ({x.shape[0]},), got "
                             f"{tuple(noise_level.shape)}")
        nu = noise_level.to(x.dtype)
        c_in = torch.rsqrt(self.data_var.to(x.dtype) + torch.exp(nu))  # 1 / sqrt(v + tau)
        return x * c_in[:, None], nu


def check_labels(labels, batch: int, n_classes: int, device=None) -> torch.Tensor:
    """labels as a (batch,) int64 tensor on `device`; ValueError (one line) unless they are
    integers of shape (batch,) in [0, n_classes)."""
    t = torch.as_tensor(labels, device=device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(t.shape)}")
    if batch and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}) (n_classes = {n_classes}), got "
                         f"values in [{int(t.min())}, {int(t.max())}]")
    return t.long()


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


NETWORKS = {ResidualMLP.kind: ResidualMLP, FourierMLP.kind: FourierMLP}  # + conv_networks (end)


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


def __getattr__(name):
    """The convolutional networks, importable from here (PEP 562: resolved on first use, so
    either module may be imported first)."""
    if name in _CONV_NAMES:
        from . import conv_networks

        return getattr(conv_networks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from . import conv_networks  # noqa: E402,F401  (registers 'conv' and 'conv_unet' in NETWORKS)
