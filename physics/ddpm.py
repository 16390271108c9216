"""The discrete DDPM chain with linear betas [Ho et al. 2020, arXiv 2006.11239], as used by
[BUBM25] (Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638) for its synthetic experiment.

    beta_k = linear from s beta_start to s beta_end over k = 0 .. T-1,  s = 1000 / T,
    alpha_k = 1 - beta_k,   alphabar_k = prod_{j <= k} alpha_j,
    x_k = sqrt(alphabar_k) x_0 + sqrt(1 - alphabar_k) eps.

The step index k is the network's time input. In the suite's common noise scale (docs/theory.md)
step k is the data-unit noise variance tau_k = (1 - alphabar_k) / alphabar_k and the OU time
t_k = -(1/2) log alphabar_k (`memphase.physics.schedules.ddpm_to_ou_times`, s = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DDPMChain", "ddpm_chain", "two_cluster_population_eps"]


@dataclass(frozen=True)
class DDPMChain:
    """betas, alphas, alphabar (T,) float64 arrays of the chain; tau = (1 - alphabar)/alphabar."""

    betas: np.ndarray
    alphas: np.ndarray
    alphabar: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.betas.size)

    @property
    def tau(self) -> np.ndarray:
        return (1.0 - self.alphabar) / self.alphabar


def ddpm_chain(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2) -> DDPMChain:
    """The linear-beta DDPM chain of T = `steps` steps (module docstring); betas are rescaled by
    1000 / T so that T = 1000 gives 1e-4 .. 2e-2 [Ho et al. 2020; BUBM25 official code]."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    scale = 1000.0 / steps
    lo, hi = scale * beta_start, scale * beta_end
    if not (0 < lo <= hi < 1):
        raise ValueError(f"need 0 < beta_start <= beta_end < 1 after the 1000/T rescaling, got "
                         f"{lo:g}, {hi:g}")
    betas = np.linspace(lo, hi, int(steps), dtype=np.float64)
    alphas = 1.0 - betas
    return DDPMChain(betas=betas, alphas=alphas, alphabar=np.cumprod(alphas))


def two_cluster_population_eps(x: np.ndarray, k, chain: DDPMChain, mu: float = 1.0
                               ) -> np.ndarray:
    """Exact noise prediction E[eps | x_k = x] for data (1/2) N(+mu 1, I) + (1/2) N(-mu 1, I)
    (unit cluster variance) at DDPM step k [BUBM25] synthetic data (docs/conformance/bubm25.md):

        x_k | cluster +- ~ N(+- sqrt(ab) m, I) (since ab + (1 - ab) = 1),  m = mu 1,
        score s(x) = sqrt(ab) m tanh(sqrt(ab) m . x) - x,   eps = -sqrt(1 - ab) s(x).

    x (B, d); k an int or (B,) integer array of steps."""
    x = np.asarray(x, dtype=np.float64)
    ab = np.broadcast_to(np.asarray(chain.alphabar[np.asarray(k)], dtype=np.float64),
                         (x.shape[0],))
    m = mu * np.ones(x.shape[1])
    r = np.sqrt(ab)[:, None] * m[None, :]
    score = r * np.tanh((r * x).sum(1))[:, None] - x
    return -np.sqrt(1.0 - ab)[:, None] * score
