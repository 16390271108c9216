"""The score Jacobian in the schedule's x units and in data units, always in float64.

Units. A schedule noises data as x_t = m(t) y + sigma(t) z. In the data-scale variable u = x / m
(the VE process with noise variance tau = sigma^2 / m^2, docs/theory.md) the score is
s_u(u) = m s(m u), so the Jacobian in data units is J_data = m(t)^2 grad_x s(x, t). Population
score of N(mu, C): J_data = -(C + tau I)^{-1} ([BBDM24] Biroli et al., arXiv 2402.18491); the
empirical score: J_data = (Cov_w(y) / tau - I) / tau. Used by the tangent-dimension measurements
of `memphase.analysis.dimensions` ([ALD24] Achilli et al., arXiv 2410.08727), which re-exports
these functions.
"""

from __future__ import annotations

import numpy as np
import torch

from memphase.analysis.probes import _check_x  # one check of a (B, d) batch for both modules

__all__ = ["score_jacobian", "jacobian_data_units", "jacobian_spectrum_data_units"]


def _autograd_jacobian(score, x: torch.Tensor, t) -> torch.Tensor:
    """J[b] = d s(x_b) / d x_b by reverse mode: torch.func.jacrev of x -> sum_b s(x, t)_b,
    (d, B, d) -> (B, d, d); falls back to d plain backward passes when the score cannot run under
    torch.func (e.g. it converts a per-sample t tensor to numpy).

    Valid because every score acts row-wise (s(x)_b depends on x_b only, the score contract), so
    d(sum_b' s_b'i)/d x_bj = d s_bi / d x_bj; summing over the batch instead of vmapping keeps
    per-sample t tensors working.
    """
    x = x.detach()
    if hasattr(score, "prepare"):  # e.g. LearnedScore: convert the network before the transform
        score.prepare(x)
    with torch.enable_grad():
        try:
            jac = torch.func.jacrev(lambda xx: score(xx, t).sum(0))(x)  # (d_out, B, d_in)
            return jac.permute(1, 0, 2).contiguous()
        except RuntimeError:
            pass
        xg = x.clone().requires_grad_(True)
        out = score(xg, t)
        rows = [torch.autograd.grad(out[:, i].sum(), xg, retain_graph=i < out.shape[1] - 1)[0]
                for i in range(out.shape[1])]
    return torch.stack(rows, dim=1)


def score_jacobian(score, x: torch.Tensor, t, method: str = "auto") -> torch.Tensor:
    """Jacobian grad_x s(x, t) of a score at a batch x (B, d), shape (B, d, d), in x units.

    method: "exact" uses `score.jacobian` (closed form: empirical score
    ((m^2/sigma^2) Cov_w(y) - I)/sigma^2, population score -(m^2 C + sigma^2 I)^{-1},
    [BBDM24]); "autograd" differentiates `score(x, t)` with torch.func.jacrev (learned or analytic
    scores); "auto" uses the closed form when the score has a working one, else autograd.

    Always float64: a float32 x is promoted before the Jacobian is formed (the result is float64
    whatever x's dtype). Near a tie between two training points at small tau the kept ratio
    1 + tau lambda cancels to ~1e-9 of its terms, so a Jacobian rounded to float32 was off by up
    to 17% there (issue #27, part 4).
    """
    x = _check_x(x, score)
    if x.dtype != torch.float64:
        x = x.to(torch.float64)
    if method not in ("auto", "exact", "autograd"):
        raise ValueError(f"method must be 'auto', 'exact' or 'autograd', got {method!r}")
    if method in ("auto", "exact"):
        jac_fn = getattr(score, "jacobian", None)
        if jac_fn is not None:
            try:
                return jac_fn(x, t)
            except NotImplementedError:
                if method == "exact":
                    raise
        elif method == "exact":
            raise ValueError(f"{type(score).__name__} has no closed-form jacobian; "
                             f"use method='autograd'")
    return _autograd_jacobian(score, x, t)


def _mean_scale_sq(score, x: torch.Tensor, t, schedule=None):
    """m(t)^2 as a float or a (B, 1, 1) tensor (per-sample t)."""
    schedule = schedule if schedule is not None else getattr(score, "schedule", None)
    if schedule is None:
        raise ValueError("need a schedule (score.schedule or schedule=) to convert to data units")
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        m = schedule.mean_scale(t.detach().to("cpu", torch.float64).numpy())
        return torch.as_tensor(m**2, dtype=x.dtype, device=x.device)[:, None, None]
    return float(schedule.mean_scale(float(t))) ** 2


def jacobian_data_units(score, x: torch.Tensor, t, method: str = "auto", schedule=None):
    """J_data = m(t)^2 grad_x s(x, t), the Jacobian of the score of u = x / m (module docstring).

    Population score of N(mu, C): J_data = -(C + tau I)^{-1}. Shape (B, d, d).
    """
    jac = score_jacobian(score, x, t, method)
    return _mean_scale_sq(score, x, t, schedule) * jac


def _symmetric_eigvalsh(jac) -> np.ndarray:
    j = torch.as_tensor(jac).detach().to("cpu", torch.float64)
    return torch.linalg.eigvalsh(0.5 * (j + j.transpose(-1, -2))).numpy()


def jacobian_spectrum_data_units(score, x: torch.Tensor, t, method: str = "auto",
                                 schedule=None) -> np.ndarray:
    """Eigenvalues (ascending, float64, (B, d)) of the symmetrized data-unit Jacobian
    (J_data + J_data^T)/2, J_data = m(t)^2 grad_x s. Population score of N(0, C): exactly
    -1/(tau + s_i^2), s_i^2 the eigenvalues of C ([BBDM24]); a direction lost to
    memorization sits at -1/tau [ALD24]."""
    return _symmetric_eigvalsh(jacobian_data_units(score, x, t, method, schedule))
