"""What every noise-prediction network shares (`memphase.simulate.learning.networks` has the
contract): size checks, the sinusoidal embedding of nu = log tau, label checks and `_NoiseNet`
(input validation and the c_in preconditioning). One layer under networks and conv_networks, so
that neither imports the other's module for them (issue 24)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_embedding", "check_labels"]


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
