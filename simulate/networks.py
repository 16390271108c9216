"""Noise-prediction networks eps_theta(x, nu) for learned scores (docs/theory.md, Scores).

Contract shared by every network: `forward(x, noise_level)` with
    x            (B, d) in data units, x = x_t / m = y + sqrt(tau) z (the VE view of any schedule),
    noise_level  (B,) tensor nu = log tau, tau = sigma^2 / m^2 the data-scale noise variance,
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
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ResidualMLP", "FourierMLP", "ConvNet", "ConvUNet", "build_network", "count_parameters",
           "NETWORKS", "sinusoidal_embedding", "conv_parameter_count", "check_network_d",
           "check_labels"]


def _check_positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


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
    eps = W_out SiLU(LN(h)). e(nu) is the sinusoidal embedding of nu = log tau (dim emb_dim)."""

    kind = "residual_mlp"

    def __init__(self, d: int, width: int = 256, depth: int = 3, emb_dim: int = 64,
                 data_var: float = 1.0, skip: bool = False):
        super().__init__(d, data_var, skip)
        for name, v in (("width", width), ("depth", depth), ("emb_dim", emb_dim)):
            _check_positive_int(name, v)
        if emb_dim % 2:
            raise ValueError(f"emb_dim must be even, got {emb_dim}")
        self.emb_dim = emb_dim
        self.inp = nn.Linear(d, width)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(depth))
        self.embeds = nn.ModuleList(nn.Linear(emb_dim, width) for _ in range(depth))
        self.linears = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, d)
        self.hparams = {"kind": self.kind, "d": d, "width": width, "depth": depth,
                        "emb_dim": emb_dim, "data_var": float(data_var), "skip": skip}

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        emb = sinusoidal_embedding(nu, self.emb_dim)
        h = self.inp(x)
        for norm, embed, lin in zip(self.norms, self.embeds, self.linears):
            h = h + lin(nn.functional.silu(norm(h) + embed(emb)))
        return self._skip(x, nu) + self.out(nn.functional.silu(self.head_norm(h)))


class FourierMLP(_NoiseNet):
    """ReLU MLP of [BDKOS25] with Gaussian Fourier features of nu = log tau:
    f(nu) = [sin(2 pi b nu), cos(2 pi b nu)], b ~ N(0, fourier_scale^2) fixed (fourier_dim / 2 of
    them); eps = MLP([x, f(nu)]) with `depth` hidden ReLU layers of `width` units."""

    kind = "fourier_mlp"

    def __init__(self, d: int, width: int = 256, depth: int = 2, fourier_dim: int = 8,
                 fourier_scale: float = 0.25, data_var: float = 1.0, skip: bool = False):
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

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        arg = 2 * math.pi * nu[:, None] * self.freqs.to(x.dtype)[None, :]
        return self._skip(x, nu) + self.mlp(torch.cat([x, torch.sin(arg), torch.cos(arg)], dim=1))


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 convolution keeping the image side (zero padding 1)."""
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class _ResBlock(nn.Module):
    """h + Conv3x3(SiLU(GN(Conv3x3(SiLU(GN(h))) + E e(nu)))): the DDPM residual block
    [Ho et al. 2020, arXiv 2006.11239] at a fixed number of channels c, GN with gcd(c, 8) groups."""

    def __init__(self, c: int, emb_dim: int):
        super().__init__()
        groups = math.gcd(c, 8)
        self.norm1, self.conv1 = nn.GroupNorm(groups, c), _conv3(c, c)
        self.embed = nn.Linear(emb_dim, c)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c), _conv3(c, c)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        silu = nn.functional.silu
        a = self.conv1(silu(self.norm1(h))) + self.embed(emb)[:, :, None, None]
        return h + self.conv2(silu(self.norm2(a)))


class ConvNet(_NoiseNet):
    """Convolutional noise predictor for square one-channel images, d = side^2 (row-major pixels,
    e.g. the 8x8 digits: d = 64).

        h = Conv3x3(1 -> C)(x_in)                                   C = width channels
        per block k = 1..depth (DDPM residual block [Ho et al. 2020, arXiv 2006.11239]):
            a = Conv3x3(SiLU(GN(h))) + E_k e(nu)                  (e(nu) broadcast over pixels)
            h = h + Conv3x3(SiLU(GN(a)))
        eps = Conv3x3(C -> 1)(SiLU(GN(h)))

    All convolutions keep the side (zero padding 1); GN = GroupNorm with gcd(C, 8) groups;
    e(nu) the sinusoidal embedding of nu = log tau (dim emb_dim), E_k linear emb_dim -> C.
    No down-sampling: 1 + 2 depth + 1 convolutions of radius 1, so every output pixel sees a
    (4 depth + 5)-wide window (13 at depth 2: all of an 8x8 image but, from a corner pixel, the
    farthest row and column), and away from the borders the network commutes with pixel shifts
    (convolutions and zero padding; GroupNorm's statistics do not change when a pattern moves
    inside a uniform background). On the digits in pixel space its held-out DSM loss is 26-34 %
    below the residual MLP's (docs/real_data.md, "Convolutional network").

    Parameters (C = width, E = emb_dim, D = depth; `conv_parameter_count`):
        10 C  +  D (18 C^2 + 7 C + E C)  +  2 C  +  9 C + 1
        (input conv; per block two convs, two GroupNorms, one embedding; head GroupNorm;
        output conv),
    e.g. 40,033 at C = 32, D = 2, E = 32 (the residual MLP of width 128, depth 2 at d = 64: 58,816).

    Label conditioning (n_classes = K): a learned vector E[c] (nn.Embedding(K, E), created last) is
    added to e(nu), so the class enters every block as the noise level does (the conditional EDM
    of [GDPLLW23] Gu et al., arXiv 2310.02664); K E more parameters; forward(x, noise_level,
    labels) with labels (B,) integers in [0, K).
    """

    kind = "conv"

    def __init__(self, d: int, width: int = 32, depth: int = 2, emb_dim: int = 32,
                 data_var: float = 1.0, skip: bool = False, n_classes: int | None = None):
        super().__init__(d, data_var, skip)
        for name, v in (("width", width), ("depth", depth), ("emb_dim", emb_dim)):
            _check_positive_int(name, v)
        if emb_dim % 2:
            raise ValueError(f"emb_dim must be even, got {emb_dim}")
        check_network_d(self.kind, d)
        self.side, self.emb_dim = math.isqrt(d), emb_dim
        self.inp = _conv3(1, width)
        self.blocks = nn.ModuleList(_ResBlock(width, emb_dim) for _ in range(depth))
        self.head_norm = nn.GroupNorm(math.gcd(width, 8), width)
        self.out = _conv3(width, 1)
        self.hparams = {"kind": self.kind, "d": d, "width": width, "depth": depth,
                        "emb_dim": emb_dim, "data_var": float(data_var), "skip": skip}
        self._init_labels(n_classes, emb_dim)

    def _embedding(self, nu: torch.Tensor, labels, x: torch.Tensor) -> torch.Tensor:
        """e(nu), plus the label embedding E[c] of a label-conditioned network."""
        emb = sinusoidal_embedding(nu, self.emb_dim)
        lab = self._label_term(labels, x.shape[0], x)
        return emb if lab is None else emb + lab

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels=None) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        emb = self._embedding(nu, labels, x)
        h = self.inp(x.reshape(-1, 1, self.side, self.side))
        for block in self.blocks:
            h = block(h, emb)
        eps = self.out(nn.functional.silu(self.head_norm(h))).reshape(-1, self.d)
        return self._skip(x, nu) + eps


class ConvUNet(ConvNet):
    """`ConvNet` with one down/up level: a tiny U-Net for square images of even side.

        h = Conv3x3(1 -> C)(x_in);  `depth` blocks(C)                       side x side
        m = Conv3x3 stride 2 (C -> 2C)(h);  `depth` blocks(2C)               side/2 x side/2
        h = h + Conv3x3(2C -> C)(nearest-upsample x2 (m));  `depth` blocks(C)
        eps = Conv3x3(C -> 1)(SiLU(GN(h)))

    blocks as in `ConvNet`; the skip connection adds (no concatenation). Commutes with shifts by
    an even number of pixels away from the borders (not with odd ones: the stride-2 grid).
    Parameters: 10 C + D (108 C^2 + 28 C + 4 E C) + 36 C^2 + 14 C + 1 (`conv_parameter_count`),
    39,745 at C = 16, D = 1, E = 32. On the digits it fits and memorizes small training sets
    faster than `ConvNet` (memorization ratio 0.98 at N = 10, 0 from N = 300) and draws the most
    digit-like samples (docs/real_data.md, "Convolutional network").
    """

    kind = "conv_unet"

    def __init__(self, d: int, width: int = 16, depth: int = 1, emb_dim: int = 32,
                 data_var: float = 1.0, skip: bool = False, n_classes: int | None = None):
        super().__init__(d, width, depth, emb_dim, data_var, skip)  # checks d (even side)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(_ResBlock(2 * width, emb_dim) for _ in range(depth))
        self.up = _conv3(2 * width, width)
        self.up_blocks = nn.ModuleList(_ResBlock(width, emb_dim) for _ in range(depth))
        self.hparams["kind"] = self.kind
        self._init_labels(n_classes, emb_dim)  # last: the other weights do not depend on it

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels=None) -> torch.Tensor:
        x, nu = self._inputs(x, noise_level)
        emb = self._embedding(nu, labels, x)
        h = self.inp(x.reshape(-1, 1, self.side, self.side))
        for block in self.blocks:
            h = block(h, emb)
        m = self.down(h)
        for block in self.mid:
            m = block(m, emb)
        h = h + self.up(nn.functional.interpolate(m, scale_factor=2, mode="nearest"))
        for block in self.up_blocks:
            h = block(h, emb)
        eps = self.out(nn.functional.silu(self.head_norm(h))).reshape(-1, self.d)
        return self._skip(x, nu) + eps


def conv_parameter_count(width: int, depth: int, emb_dim: int, unet: bool = False) -> int:
    """Trainable parameters of `ConvNet` (unet=False) or `ConvUNet` (unet=True), independent of
    the image size; C = width, D = depth, E = emb_dim, a block of c channels holding
    18 c^2 + 7 c + E c:
        ConvNet    10 C + D (18 C^2 + 7 C + E C) + 11 C + 1
        ConvUNet   10 C + D (108 C^2 + 28 C + 4 E C) + 36 C^2 + 14 C + 1."""
    for name, v in (("width", width), ("depth", depth), ("emb_dim", emb_dim)):
        _check_positive_int(name, v)
    c, e = width, emb_dim
    block = lambda ch: 18 * ch * ch + 7 * ch + e * ch  # noqa: E731
    n = 10 * c + depth * block(c) + 2 * c + 9 * c + 1
    if unet:  # down / up convolutions, `depth` blocks at 2C and `depth` more at C
        n += (18 * c * c + 2 * c) + (18 * c * c + c) + depth * (block(2 * c) + block(c))
    return n


NETWORKS = {ResidualMLP.kind: ResidualMLP, FourierMLP.kind: FourierMLP, ConvNet.kind: ConvNet,
            ConvUNet.kind: ConvUNet}


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
    side = math.isqrt(d)
    if kind in (ConvNet.kind, ConvUNet.kind) and side * side != d:
        raise ValueError(f"network {kind!r} needs a square image, d = side^2; got d = {d}")
    if kind == ConvUNet.kind and side % 2:
        raise ValueError(f"network 'conv_unet' needs an even image side; got d = {d} = {side}^2")


def count_parameters(network: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad or not trainable_only)
