"""Convolutional noise predictors for square one-channel images (the 8x8 digits: d = 64), with the
contract of every network in `memphase.simulate.learning.networks` (forward(x, noise_level, labels=None),
x of shape (B, d), the c_in preconditioning and optional skip of `_NoiseNet`).

| network   | architecture (C = width channels, D = depth, E = emb_dim)                        |
|-----------|----------------------------------------------------------------------------------|
| ConvNet   | 3x3 conv 1->C, D residual blocks at C, head GN-SiLU-3x3 conv->1; no down-sampling |
| ConvUNet  | the same with one down/up level: side -> side/2 at 2C channels and back          |

The blocks are the residual block of DDPM [Ho et al. 2020, arXiv 2006.11239]. Both are listed in
`networks.NETWORKS` as "conv" and "conv_unet" (networks imports this module; this module imports
only `noise_net`). On the digits (docs/real_data.md, "Convolutional network")
both generalize better than the residual MLPs at N >= 100, and the U-Net memorizes small
training sets as the U-Nets of [GDPLLW23] do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .noise_net import _check_positive_int, _check_sizes, _NoiseNet, sinusoidal_embedding

__all__ = ["ConvNet", "ConvUNet", "conv_parameter_count"]


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 convolution keeping the image side (zero padding 1)."""
    return nn.Conv2d(c_in, c_out, 3, padding=1)


def group_count(c: int) -> int:
    """GroupNorm groups for c channels: the largest divisor of c not above min(8, c / 2), so that
    every group holds at least two channels (8 groups for c = 16, 32, 64; 4 for c = 8). With one
    channel per group GroupNorm would subtract each channel's mean over the pixels and erase the
    per-channel noise embedding added just before it (c = 1 cannot avoid that)."""
    top = max(1, min(8, c // 2))
    return max(g for g in range(1, top + 1) if c % g == 0)


class _ResBlock(nn.Module):
    """h + Conv3x3(SiLU(GN(Conv3x3(SiLU(GN(h))) + E e(nu)))): the DDPM residual block
    [Ho et al. 2020, arXiv 2006.11239] at a fixed number of channels c, GN with
    `group_count(c)` groups."""

    def __init__(self, c: int, emb_dim: int):
        super().__init__()
        groups = group_count(c)
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

    All convolutions keep the side (zero padding 1); GN = GroupNorm with `group_count(C)` groups;
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

    @classmethod
    def check_d(cls, d: int) -> None:
        """One-line ValueError unless d is a perfect square (side x side pixels)."""
        if math.isqrt(d) ** 2 != d:
            raise ValueError(f"network {cls.kind!r} needs a square image, d = side^2; got d = {d}")

    def __init__(self, d: int, width: int = 32, depth: int = 2, emb_dim: int = 32,
                 data_var: float = 1.0, skip: bool = False, n_classes: int | None = None):
        super().__init__(d, data_var, skip)
        _check_sizes(width, depth, emb_dim)
        self.check_d(d)
        self.side, self.emb_dim = math.isqrt(d), emb_dim
        self.inp = _conv3(1, width)
        self.blocks = nn.ModuleList(_ResBlock(width, emb_dim) for _ in range(depth))
        self.head_norm = nn.GroupNorm(group_count(width), width)
        self.out = _conv3(width, 1)
        self.hparams = {"kind": self.kind, "d": d, "width": width, "depth": depth,
                        "emb_dim": emb_dim, "data_var": float(data_var), "skip": skip}
        self._init_labels(n_classes, emb_dim)

    def _embedding(self, nu: torch.Tensor, labels, x: torch.Tensor) -> torch.Tensor:
        """e(nu), plus the label embedding E[c] of a label-conditioned network."""
        emb = sinusoidal_embedding(nu, self.emb_dim)
        lab = self._label_term(labels, x.shape[0], x)
        return emb if lab is None else emb + lab

    def _stem(self, x: torch.Tensor, noise_level: torch.Tensor, labels):
        """Scaled input, nu, the (label) embedding and the full-resolution features after the
        residual blocks: (x, nu, emb, h) with h of shape (B, width, side, side)."""
        x, nu = self._inputs(x, noise_level)
        emb = self._embedding(nu, labels, x)
        h = self.inp(x.reshape(-1, 1, self.side, self.side))
        for block in self.blocks:
            h = block(h, emb)
        return x, nu, emb, h

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels=None) -> torch.Tensor:
        x, nu, emb, h = self._stem(x, noise_level, labels)
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

    @classmethod
    def check_d(cls, d: int) -> None:
        """One-line ValueError unless d = side^2 with an even side (the stride-2 level)."""
        super().check_d(d)
        if math.isqrt(d) % 2:
            raise ValueError(f"network 'conv_unet' needs an even image side; got d = {d} = "
                             f"{math.isqrt(d)}^2")

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
        x, nu, emb, h = self._stem(x, noise_level, labels)
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
