"""Learned score: a noise-prediction network trained by DSM (docs/theory.md, Scores).

    s_theta(x, t) = -eps_theta(x / m, log tau) / sigma,   tau = sigma^2 / m^2,

with the network contract of `memphase.simulate.learning.networks` (data-unit input x_t / m, noise level log tau).
A label-conditioned network (n_classes set; the class-conditional network of [GDPLLW23] Gu et al.,
arXiv 2310.02664) gives the conditional score s_theta(x, t | c) = -eps_theta(x / m, log tau, c) /
sigma: call `score(x, t, labels)`, or `score.given(labels)` for the samplers' plain `score(x, t)`.
"""

from __future__ import annotations

import copy
import math

import torch

from .base import Score, bind_labels, check_batch, time_coefficients

__all__ = ["LearnedScore"]


class LearnedScore(Score):
    """Score of a trained eps-network: s = -eps_theta(x / m, log tau) / sigma [ALD24, BDKOS25].

    The result has x's dtype and device. When the network's dtype or device differ from x's, a
    converted copy is made on first use and cached: call `refresh()` after changing the weights.
    Gradients flow only when x requires grad (so autograd Jacobians work); otherwise no_grad.
    """

    name = "learned"

    def __init__(self, network: torch.nn.Module, schedule, dim: int | None = None):
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        d = getattr(network, "d", dim)
        if d is None:
            raise ValueError("the network has no attribute d; pass dim=")
        if dim is not None and dim != d:
            raise ValueError(f"dim={dim} does not match the network's d={d}")
        self.network = network.eval()
        self.schedule = schedule
        self.dim = int(d)
        self._copies: dict = {}

    @property
    def data_variance(self) -> float:
        v = getattr(self.network, "data_var", None)
        return float(v) if v is not None else 1.0

    def refresh(self):
        """Forget the cached dtype/device copies of the network."""
        self._copies.clear()

    def prepare(self, x: torch.Tensor) -> None:
        """Build the dtype/device copy of the network for x now, outside any torch.func transform
        (copying parameters inside jacrev/vmap fails)."""
        self._network_for(x.detach())

    def _network_for(self, x: torch.Tensor) -> torch.nn.Module:
        p = next(self.network.parameters(), None)
        if p is None or (p.dtype == x.dtype and p.device == x.device):
            return self.network
        key = (x.dtype, x.device)
        if key not in self._copies:
            self._copies[key] = copy.deepcopy(self.network).to(device=x.device, dtype=x.dtype).eval()
        return self._copies[key]

    def eps(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        """eps_theta(x / m, log tau[, labels]) at schedule time t (float or (B,) tensor); labels
        (B,) integer classes for a label-conditioned network (the network checks them)."""
        check_batch(x, self.dim)
        m, s2 = time_coefficients(self.schedule, t, x)
        if isinstance(m, torch.Tensor):
            level = torch.log(s2[:, 0] / (m[:, 0] * m[:, 0]))
        else:
            level = torch.full((x.shape[0],), math.log(s2 / (m * m)), dtype=x.dtype,
                               device=x.device)
        net = self._network_for(x)
        with torch.set_grad_enabled(x.requires_grad and torch.is_grad_enabled()):
            return net(x / m, level) if labels is None else net(x / m, level, labels)

    def __call__(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        check_batch(x, self.dim)
        _, s2 = time_coefficients(self.schedule, t, x)
        sigma = torch.sqrt(s2) if isinstance(s2, torch.Tensor) else math.sqrt(s2)
        return -self.eps(x, t, labels) / sigma

    def denoise(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        """Tweedie posterior mean (x + sigma^2 s) / m = (x - sigma eps) / m."""
        m, s2 = time_coefficients(self.schedule, t, x)
        return (x + s2 * self(x, t, labels)) / m

    def given(self, labels) -> Score:
        """The conditional score with the class labels of the batch fixed: a plain score(x, t)
        for the samplers (label-conditioned networks)."""
        return bind_labels(self, labels)

    def describe(self) -> dict:
        return {"score": self.name, **dict(getattr(self.network, "hparams", {}))}
