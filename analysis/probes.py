"""Spectrum of the score Jacobian from score evaluations only: the [ALD24] probe estimators.

`official_probe_spectrum` is the estimator of the official [ALD24] code (Achilli et al., arXiv
2410.08727, `analyze_spectrum.py`); `probe_singular_values` a variant with antithetic probes and
no post-processing. Both serve learned scores, whose Jacobian has no closed form.
`finite_difference_jacobian` and `official_fd_spectrum` are the estimator of the official
empirical-score panel (`plots_synthetic_theory.ipynb`): central finite differences along the
coordinate axes, absolute values, SVD (docs/conformance/ald24.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["official_probe_spectrum", "probe_singular_values", "finite_difference_jacobian",
           "official_fd_spectrum", "OFFICIAL_PANEL_DROP"]

#: top singular values the official empirical-score panel drops before max-normalizing
#: (`in_idx = 6`; the official theory panel drops 7)
OFFICIAL_PANEL_DROP = 6


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


def finite_difference_jacobian(score, x0, t, *, step=None, basis=None,
                               schedule=None) -> np.ndarray:
    """Central finite-difference score Jacobian in data units, the estimator of the official
    [ALD24] empirical-score panel (Achilli et al., arXiv 2410.08727).

    With u = x / m(t) the data-unit point (x0 in the schedule's x units), s_u(u) = m s(m u, t) the
    data-unit score, e_j the columns of `basis` (default: the coordinate axes, as the official
    code) and h the total step (default sqrt(tau), tau = sigma^2 / m^2: the official step),

        J[:, :, j] = (s_u(u + (h/2) e_j) - s_u(u - (h/2) e_j)) / h        (in the basis e_j)

    i.e. column j is the derivative along e_j expressed in the same basis. A secant, not the
    Jacobian: for the empirical score at small tau the difference spans several weight
    changes (at the origin of the d = 30 unit-sphere set, tau = 0.01, its largest |entry|-matrix
    singular value is 1494 where the exact Jacobian gives 3532). Computed in float64 always.
    Returns (B, d, d) (or (d, d) for a (d,) x0).
    """
    single = x0.ndim == 1
    x0 = _check_x(x0[None] if single else x0, score)
    schedule = schedule if schedule is not None else getattr(score, "schedule", None)
    if schedule is None:
        raise ValueError("need a schedule (score.schedule or schedule=)")
    b, d = x0.shape
    m = float(schedule.mean_scale(float(t)))
    tau = float(schedule.noise_var(float(t))) / m**2
    h = math.sqrt(tau) if step is None else float(step)
    if not h > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    e = np.eye(d) if basis is None else np.asarray(basis, dtype=np.float64)
    if e.shape != (d, d):
        raise ValueError(f"basis must be ({d}, {d}), got {e.shape}")
    u0 = x0.detach().to("cpu", torch.float64) / m
    e_t = torch.from_numpy(e)
    shift = 0.5 * h * e_t.T                                          # (d, d): row j = (h/2) e_j
    pts = torch.cat([u0[:, None, :] + shift, u0[:, None, :] - shift], dim=1)  # (B, 2d, d)
    with torch.no_grad():
        out = score((m * pts).reshape(-1, d), float(t)).to(torch.float64).reshape(b, 2 * d, d)
    diff = m * (out[:, :d] - out[:, d:]) / h                         # (B, j, i) in coordinates
    jac = torch.einsum("bji,ik->bkj", diff, e_t)                     # (B, k, j) in the basis
    jac = jac.numpy()
    return jac[0] if single else jac


def official_fd_spectrum(score, x0, t, *, drop: int = OFFICIAL_PANEL_DROP, normalize: bool = True,
                         absolute: bool = True, basis=None, schedule=None) -> np.ndarray:
    """The official [ALD24] empirical-score panel spectrum (`plots_synthetic_theory.ipynb`).

    Singular values (descending) of |J_fd|, J_fd the central finite-difference Jacobian of
    `finite_difference_jacobian` (data units, coordinate axes, total step sqrt(tau)), with every
    entry replaced by its absolute value (absolute=True, as the official code); the top `drop`
    dropped (official panel: 6) and the rest divided by their maximum (normalize=True). Returns
    (d - drop,) or (B, d - drop).
    """
    jac = finite_difference_jacobian(score, x0, t, basis=basis, schedule=schedule)
    mat = np.abs(jac) if absolute else jac
    sv = np.linalg.svd(mat, compute_uv=False)
    if not 0 <= drop < sv.shape[-1]:
        raise ValueError(f"drop must be in [0, {sv.shape[-1] - 1}], got {drop}")
    sv = sv[..., drop:]
    if normalize:
        sv = sv / np.maximum(sv.max(axis=-1, keepdims=True), 1e-300)
    return sv
