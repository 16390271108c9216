"""Spectrum of the score Jacobian from score evaluations only: the [ALD24] probe estimators.

`official_probe_spectrum` is the estimator of the official [ALD24] code (Achilli et al., arXiv
2410.08727, `analyze_spectrum.py`); `probe_singular_values` a variant with antithetic probes and
no post-processing. Both serve learned scores, whose Jacobian has no closed form.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["official_probe_spectrum", "probe_singular_values"]


def _probe_scale(score, t, sigma) -> float:
    """The probe scale: `sigma` as given, else the schedule's noise std sigma(t); must be > 0."""
    if sigma is None:
        sigma = math.sqrt(float(score.schedule.noise_var(float(t))))
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"probe scale sigma must be > 0, got {sigma!r}")
    return sigma


def _check_x(x, score) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, d) torch tensor, got {getattr(x, 'shape', type(x))}")
    dim = getattr(score, "dim", x.shape[1])
    if x.shape[1] != dim:
        raise ValueError(f"x has dimension {x.shape[1]} but the score expects d = {dim}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    return x


def probe_singular_values(score, x0: torch.Tensor, sigma=None, t=None, k: int | None = None,
                          seed: int = 0, *, probes: str = "orthonormal",
                          antithetic: bool = True) -> np.ndarray:
    """[ALD24] estimator of the score-Jacobian spectrum from score evaluations only.

    For each point x0 (a (d,) or (B, d) tensor) draw K probes z_i and stack the rows

        r_i = sigma * s(x0 + sigma z_i, t)                                  (antithetic=False, [ALD24])
        r_i = sigma * (s(x0 + sigma z_i, t) - s(x0 - sigma z_i, t)) / 2     (antithetic=True)

    into a (K, d) matrix R and return its singular values (descending; (K',) or (B, K'),
    K' = min(K, d)). Linearizing s(x0 + delta) = s(x0) + J_x delta + O(delta^2):

        R = sigma 1 s(x0)^T + sigma^2 Z J_x^T   (plain),   R = sigma^2 Z J_x^T + O(sigma^4)  (antithetic),

    Z the (K, d) probe matrix. With K = d orthonormal probes Z is orthogonal and the antithetic
    singular values are exactly sigma^2 times the singular values of J_x (to O(sigma^2) relative);
    with K < d orthonormal probes they are those of J_x compressed to a random K-dimensional subspace
    (interlacing: biased low). probes="gaussian" uses z_i ~ N(0, I) with R scaled by 1/sqrt(K), so
    that E[Z^T Z] = I (unbiased only as K >> d). The plain [ALD24] stack equals the antithetic one
    when s(x0) = 0 (x0 a fixed point, e.g. a training point once the score has collapsed onto it).

    Units: with the probe scale sigma = sigma(t) (default when sigma is None), sigma^2 J_x =
    tau J_data, so the values are tau |lambda_i| in data units: tau / (tau + s_i^2) for a resolved
    direction of the population score (-> 0 when tau << s_i^2) and 1 for a lost one (lambda = -1/tau).
    """
    if t is None:
        raise ValueError("t (the schedule time) is required")
    single = x0.ndim == 1
    x0 = _check_x(x0[None] if single else x0, score)
    b, d = x0.shape
    sigma = _probe_scale(score, t, sigma)
    k = d if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if probes not in ("orthonormal", "gaussian"):
        raise ValueError(f"probes must be 'orthonormal' or 'gaussian', got {probes!r}")
    if probes == "orthonormal" and k > d:
        raise ValueError(f"at most d = {d} orthonormal probes, got k = {k}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(b, max(k, d) if probes == "orthonormal" else k, d, generator=gen,
                    dtype=torch.float64)
    if probes == "orthonormal":  # Haar-random orthonormal frame per point, first k rows
        q, r = torch.linalg.qr(z.transpose(1, 2))
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
        z = q.transpose(1, 2)[:, :k]
        norm = 1.0
    else:
        norm = 1.0 / math.sqrt(k)
    z = z.to(dtype=x0.dtype, device=x0.device)
    t_rep = t.repeat_interleave(k) if isinstance(t, torch.Tensor) and t.ndim == 1 else t
    plus = (x0[:, None, :] + sigma * z).reshape(b * k, d)
    with torch.no_grad():
        rows = score(plus, t_rep).reshape(b, k, d)
        if antithetic:
            minus = (x0[:, None, :] - sigma * z).reshape(b * k, d)
            rows = 0.5 * (rows - score(minus, t_rep).reshape(b, k, d))
    mat = (sigma * norm) * rows.to(torch.float64)
    sv = torch.linalg.svdvals(mat).cpu().numpy()
    return sv[0] if single else sv


def official_probe_spectrum(score, x0, t, sigma=None, seed: int = 0, *, drop_first: bool = True,
                            normalize: bool = True) -> np.ndarray:
    """The official [ALD24] spectrum estimator (`analyze_spectrum.py` of their code).

    For each point x0 (in the schedule's x units; (d,) or (B, d)), with Z a Haar-random orthogonal
    (d, d) matrix (rows z_k) and sigma = sigma(t) by default, stack the rows

        r_k = s(x0 + sigma z_k, t) / sigma

    and take the singular values of R (descending), drop the first (the rank-one s(x0)/sigma term)
    and divide by the largest remaining one. For a linear score s(x) = A x + b with s(x0) = 0,
    R = Z A^T and the values are exactly those of A. Returns (d - 1,) or (B, d - 1) (d without
    dropping), float64.
    """
    single = x0.ndim == 1
    x0 = x0[None] if single else x0
    if x0.ndim != 2:
        raise ValueError(f"x0 must be (d,) or (B, d), got shape {tuple(x0.shape)}")
    b, d = x0.shape
    sigma = _probe_scale(score, t, sigma)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    g = torch.randn(b, d, d, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    z = (q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]).transpose(1, 2)
    z = z.to(dtype=x0.dtype, device=x0.device)
    with torch.no_grad():
        rows = score((x0[:, None, :] + sigma * z).reshape(b * d, d), t).reshape(b, d, d)
    sv = torch.linalg.svdvals(rows.to(torch.float64) / sigma).cpu().numpy()
    if drop_first and d > 1:
        sv = sv[:, 1:]
    if normalize:
        sv = sv / np.maximum(sv.max(axis=1, keepdims=True), 1e-300)
    return sv[0] if single else sv
