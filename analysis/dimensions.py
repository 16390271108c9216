"""Tangent dimensions of the score [ALD24]: the spectrum of the score Jacobian near the data.

Units. A schedule noises data as x_t = m(t) y + sigma(t) z. In the data-scale variable u = x / m
(the VE process with noise variance tau = sigma^2 / m^2, SCIENCE.md section 1) the score is
s_u(u) = m s(m u), so the Jacobian in data units is

    J_data = m(t)^2 J_x,        J_x = grad_x s(x, t)   (the schedule's x units).

For the population score of N(mu, C) this gives J_data = -(C + tau I)^{-1}, eigenvalues
-1/(tau + s_i^2) (SCIENCE.md section 2). For the empirical score,
J_data = (Cov_w(y) / tau - I) / tau, so a direction where the posterior weights w have collapsed onto
one training point (Cov_w -> 0) has eigenvalue -1/tau: the direction is *lost* [ALD24].

Collapse ratio and the threshold rule (used by `tangent_dimensions`). Write each data-unit
eigenvalue as lambda = -1/(tau + s_eff^2); s_eff^2 is the variance the score attributes to that
direction. We use the kept ratio

    r = 1 + tau * lambda = s_eff^2 / (tau + s_eff^2),

equal to s^2 / (tau + s^2) -> 1 for a resolved direction of the population score when tau << s^2,
and to 0 for a collapsed direction (lambda = -1/tau). For the empirical score r = c_w / tau, c_w
the posterior (softmax-weighted) variance of the training points along the direction. A direction
is **lost when r < threshold** (default 1/2: the score assigns the direction less variance than the
noise, s_eff^2 < tau; equivalently the posterior variance is below half the noise variance).
The rule separates -1/(tau + s^2) from -1/tau cleanly whenever tau << s^2 (r = 1 - tau/s^2 + ...
against 0); note that it also calls a direction lost when tau > s^2 even for the population score
(the noise swamps it): `critical_tau_per_block` therefore looks for the collapse from the small-tau
side.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "score_jacobian",
    "jacobian_data_units",
    "jacobian_spectrum_data_units",
    "probe_singular_values",
    "block_spectra",
    "kept_ratio",
    "tangent_dimensions",
    "critical_tau_per_block",
    "jacobian_sweep",
    "kept_fraction_per_block",
    "mean_abs_eigenvalue_per_block",
    "predicted_kept_fraction",
    "predicted_kept_ratio_rem",
]


# -- Jacobians -------------------------------------------------------------------------------------
def _check_x(x, score) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, d) torch tensor, got {getattr(x, 'shape', type(x))}")
    dim = getattr(score, "dim", x.shape[1])
    if x.shape[1] != dim:
        raise ValueError(f"x has dimension {x.shape[1]} but the score expects d = {dim}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    return x


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
    ((m^2/sigma^2) Cov_w(y) - I)/sigma^2, population score -(m^2 C + sigma^2 I)^{-1}, SCIENCE.md
    section 2); "autograd" differentiates `score(x, t)` with torch.func.jacrev (learned or analytic
    scores); "auto" uses the closed form when the score has a working one, else autograd.
    """
    x = _check_x(x, score)
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
    -1/(tau + s_i^2), s_i^2 the eigenvalues of C (SCIENCE.md section 2); a direction lost to
    memorization sits at -1/tau [ALD24]."""
    return _symmetric_eigvalsh(jacobian_data_units(score, x, t, method, schedule))


# -- the [ALD24] probe estimator ----------------------------------------------------------------
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
    if sigma is None:
        sigma = math.sqrt(float(score.schedule.noise_var(float(t))))
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"probe scale sigma must be > 0, got {sigma!r}")
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


# -- per-block spectra and tangent dimensions ---------------------------------------------------
def block_spectra(jac, basis, block) -> dict[int, np.ndarray]:
    """Eigenvalues of the symmetrized Jacobian compressed to each block: for the block basis B_b
    (the columns of `basis` with block == b; b = -1 is the normal space),

        eigvalsh(B_b^T (J + J^T)/2 B_b),   ascending, shape (B, k_b).

    jac: (B, d, d) or (d, d) (tensor or array, any units; pass data units for `tangent_dimensions`).
    Returns {b: eigenvalues} for every block index present, in increasing b (-1 first).
    Couplings between blocks are dropped (exact when J is block-diagonal in the basis, as for the
    population score of a linear manifold).
    """
    j = torch.as_tensor(np.asarray(jac) if not isinstance(jac, torch.Tensor) else jac)
    j = j.detach().to("cpu", torch.float64)
    if j.ndim == 2:
        j = j[None]
    basis = np.asarray(basis, dtype=np.float64)
    block = np.asarray(block)
    d = j.shape[-1]
    if j.ndim != 3 or j.shape[-2] != d:
        raise ValueError(f"jac must have shape (B, d, d), got {tuple(j.shape)}")
    if basis.shape != (d, d) or block.shape != (d,):
        raise ValueError(f"basis must be ({d}, {d}) and block ({d},), got {basis.shape} and "
                         f"{block.shape}")
    sym = 0.5 * (j + j.transpose(-1, -2))
    out = {}
    for b in np.unique(block):
        bb = torch.from_numpy(basis[:, block == b])
        out[int(b)] = torch.linalg.eigvalsh(bb.T @ sym @ bb).numpy()
    return out


def kept_ratio(eigs, tau) -> np.ndarray:
    """r = 1 + tau lambda = s_eff^2 / (tau + s_eff^2) for data-unit eigenvalues lambda (module
    docstring): ~1 for a resolved direction (tau << s^2), 0 for a lost one (lambda = -1/tau)."""
    return 1.0 + float(tau) * np.asarray(eigs, dtype=np.float64)


def tangent_dimensions(eigs_by_block, tau, threshold: float = 0.5) -> dict[int, np.ndarray]:
    """Number of directions kept per block at data-scale noise tau [ALD24].

    A direction with data-unit eigenvalue lambda is lost when r = 1 + tau lambda < threshold, i.e.
    when lambda lies within threshold/tau of the collapsed value -1/tau (module docstring; for
    threshold 1/2: when the score assigns the direction less variance than the noise, -1/lambda -
    tau < tau). The population value -1/(tau + s^2) has r = s^2/(tau + s^2), kept for tau < s^2.

    eigs_by_block: {b: (..., k_b)} data-unit eigenvalues (from `block_spectra`).
    Returns {b: (...) integer count of kept directions}.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    if not float(tau) > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    return {b: np.sum(kept_ratio(e, tau) >= threshold, axis=-1) for b, e in eigs_by_block.items()}


def critical_tau_per_block(taus, kept_fraction, level: float = 0.5,
                           relative: bool = False, min_peak: float = 0.1) -> np.ndarray:
    """Collapse noise variance of each block from its kept fraction on a tau grid [ALD24].

    kept_fraction: (T,) or (T, n_blocks), the fraction of a block's directions kept at each tau.
    Scanning up from the smallest tau, tau_c is where the fraction first reaches `level` (half the
    directions kept): the upper edge of the small-tau region where more than half are lost,
    interpolated linearly in log tau between the bracketing grid points. Looking from below
    skips the trivial loss at tau > s^2, where noise swamps the direction even for the population
    score. nan when the block is already kept at the smallest tau (collapse below the grid) or
    never reaches `level` (lost on the whole grid).

    relative=True applies `level` to kept_fraction / max over the grid (per block): half of the
    directions the block keeps at its best. Use it when some directions are lost at every tau for
    a reason other than memorization, e.g. the radial direction of normalized data (a sphere), or
    when finite N never resolves the whole block; blocks whose peak is below `min_peak` (never
    resolved, like the normal space) give nan.
    """
    taus = np.asarray(taus, dtype=np.float64)
    frac = np.asarray(kept_fraction, dtype=np.float64)
    squeeze = frac.ndim == 1
    frac = frac[:, None] if squeeze else frac
    if taus.ndim != 1 or frac.shape[0] != taus.size or taus.size < 2:
        raise ValueError(f"taus must be (T,) with T >= 2 and kept_fraction (T, ...), got "
                         f"{taus.shape} and {np.shape(kept_fraction)}")
    if np.any(taus <= 0):
        raise ValueError("taus must be positive")
    order = np.argsort(taus)
    lt, frac = np.log(taus[order]), frac[order]
    if relative:
        peak = frac.max(axis=0)
        ok = peak >= min_peak
        frac = np.where(ok, frac / np.where(ok, peak, 1.0), 0.0)
    out = np.full(frac.shape[1], np.nan)
    for j in range(frac.shape[1]):
        f = frac[:, j]
        if f[0] >= level:
            continue
        above = np.nonzero(f >= level)[0]
        if above.size == 0:
            continue
        i = above[0]
        w = (level - f[i - 1]) / (f[i] - f[i - 1])
        out[j] = math.exp(lt[i - 1] + w * (lt[i] - lt[i - 1]))
    return out[0] if squeeze else out


# -- sweep -----------------------------------------------------------------------------------
def jacobian_sweep(score, data, taus, n_points: int = 16, seed: int = 0, schedule=None, *,
                   anchors=None, noise_scale: float = 1.0, threshold: float = 0.5,
                   method: str = "auto"):
    """Per-block Jacobian spectrum and tangent dimensions across noise levels [ALD24].

    For each tau on the grid (schedule time t = schedule.time_of_tau(tau)) evaluate the score at
    n_points points near the data,

        x = m(t) (y + noise_scale sqrt(tau) z),   z ~ N(0, I),

    i.e. draws of the forward kernel x_t | x_0 = y (noise_scale = 1, default) from anchors y: by
    default n_points training points chosen without replacement (seeded); pass `anchors` (a (P, d)
    tensor, e.g. fresh samples of the data law) to probe elsewhere. The same anchors and z are used
    at every tau. The data-unit Jacobian m^2 grad_x s is compressed to each block of data.basis
    (`block_spectra`) and directions are counted kept by the rule of `tangent_dimensions`.

    Returns an xarray Dataset with dims (tau, point, direction) and (tau, block, point):
    eigenvalue (data units, per block in ascending order at the positions of that block's
    directions), kept_ratio, kept_dims, kept_fraction (tau, block), critical_tau (block), and the
    [ALD24] theory tau_c per block when `data` is a linear manifold.
    """
    import xarray as xr

    schedule = schedule if schedule is not None else getattr(score, "schedule", None)
    if schedule is None:
        raise ValueError("need a schedule (score.schedule or schedule=)")
    taus = np.sort(np.asarray(taus, dtype=np.float64).ravel())
    if taus.size == 0 or np.any(~np.isfinite(taus)) or np.any(taus <= 0):
        raise ValueError("taus must be a non-empty grid of positive finite values")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale!r}")
    x_train = getattr(data, "x", None)
    basis, block = np.asarray(data.basis), np.asarray(data.block)
    rng = np.random.default_rng(seed)
    if anchors is None:
        if x_train is None:
            raise ValueError("data has no training points: pass anchors")
        if not 1 <= n_points <= x_train.shape[0]:
            raise ValueError(f"n_points must be in [1, {x_train.shape[0]}], got {n_points}")
        idx = np.sort(rng.choice(x_train.shape[0], size=n_points, replace=False))
        y = x_train[torch.as_tensor(idx)].to(torch.float64)
    else:
        y = torch.as_tensor(anchors, dtype=torch.float64)
        if y.ndim != 2 or y.shape[1] != basis.shape[0]:
            raise ValueError(f"anchors must have shape (P, {basis.shape[0]}), got {tuple(y.shape)}")
    p, d = y.shape
    z = torch.from_numpy(rng.standard_normal((p, d))).to(y.device)
    dtype = x_train.dtype if x_train is not None else torch.float64

    blocks = sorted(int(b) for b in np.unique(block))
    order = np.concatenate([np.nonzero(block == b)[0] for b in blocks])  # directions by block
    dir_block = block[order]
    eig = np.empty((taus.size, p, d))
    kept = np.empty((taus.size, len(blocks), p), dtype=np.int64)
    times = np.asarray(schedule.time_of_tau(taus), dtype=np.float64)
    for i, (tau, t) in enumerate(zip(taus, times)):
        m = float(schedule.mean_scale(t))
        x = (m * (y + noise_scale * math.sqrt(tau) * z)).to(dtype)
        jac = jacobian_data_units(score, x, float(t), method, schedule)
        spec = block_spectra(jac, basis, block)
        eig[i] = np.concatenate([spec[b] for b in blocks], axis=-1)
        counts = tangent_dimensions(spec, tau, threshold)
        kept[i] = np.stack([counts[b] for b in blocks])

    dims = np.array([int(np.sum(block == b)) for b in blocks])
    frac = kept.mean(axis=2) / dims
    stds = list(getattr(data, "block_stds", []))
    params = dict(getattr(data, "params", {}) or {})
    normal_std = float(params.get("normal_std", np.nan))
    block_std = [normal_std if b < 0 else (stds[b] if b < len(stds) else np.nan) for b in blocks]
    ds = xr.Dataset(
        {
            "eigenvalue": (("tau", "point", "direction"), eig, {
                "long_name": "eigenvalue of the symmetrized score Jacobian compressed to its block",
                "units": "1/data variance (data units: m^2 grad_x s)",
                "collapsed_value": "-1/tau"}),
            "kept_ratio": (("tau", "point", "direction"), 1.0 + taus[:, None, None] * eig, {
                "long_name": "kept ratio r = 1 + tau lambda (1 resolved, 0 lost)",
                "units": "1"}),
            "kept_dims": (("tau", "block", "point"), kept, {
                "long_name": f"directions kept (r >= {threshold})", "units": "count"}),
            "kept_fraction": (("tau", "block"), frac, {
                "long_name": "fraction of the block's directions kept, mean over points",
                "units": "1"}),
            "critical_tau": (("block",), critical_tau_per_block(taus, frac), {
                "long_name": "tau below which more than half of the block is lost",
                "units": "data variance"}),
        },
        coords={
            "tau": ("tau", taus, {"long_name": "data-scale noise variance sigma^2/m^2",
                                  "units": "data variance"}),
            "t": ("tau", times, {"long_name": f"{getattr(schedule, 'name', '')} schedule time",
                                 "units": "schedule time"}),
            "block": ("block", np.array(blocks), {"long_name": "block index (-1: normal space)"}),
            "block_dim": ("block", dims, {"long_name": "directions in the block"}),
            "block_std": ("block", np.asarray(block_std, dtype=np.float64),
                          {"long_name": "data std along the block", "units": "data std"}),
            "direction_block": ("direction", dir_block,
                                {"long_name": "block of each direction slot"}),
            "point": ("point", np.arange(p)),
        },
        attrs={
            "source": "[ALD24] geometric memorization; memphase.analysis.dimensions.jacobian_sweep",
            "threshold": threshold,
            "threshold_rule": "lost when 1 + tau * lambda < threshold",
            "points": "x = m(t) (y + noise_scale sqrt(tau) z), y anchors",
            "noise_scale": noise_scale,
            "anchors": "training points" if anchors is None else "given",
            "seed": seed,
            "score": str(getattr(score, "describe", lambda: {})()),
            "schedule": str(getattr(schedule, "to_dict", lambda: {})()),
            "method": method,
        },
    )
    n_train = int(getattr(score, "n_train", data.x.shape[0]))
    if params.get("model") == "linear_manifold" and n_train >= 2:
        try:
            from physics.critical import block_collapse_tau
        except ImportError:  # theory module not available
            block_collapse_tau = None
        if block_collapse_tau is not None:
            rest = float(params.get("normal_std") or 0.0)
            spans = sum(int(k) for k, _ in params["blocks"])
            extra = dict(rest_std=rest, d=params["d"]) if rest > 0 and spans < params["d"] else {}
            theory = block_collapse_tau(n_train,
                                        params["blocks"], normalized=bool(params.get("normalize")),
                                        **extra)
            th = np.full(len(blocks), np.nan)
            for j, b in enumerate(blocks):
                if b >= 0:
                    th[j] = theory[b]
            ds["critical_tau_theory"] = (("block",), th, {
                "long_name": "[ALD24] theory tau_c (physics.critical.block_collapse_tau)",
                "units": "data variance"})
    return ds


# -- summaries of a sweep and the threshold rule applied to theory -----------------------------
def _block_masks(direction_block, blocks):
    direction_block = np.asarray(direction_block)
    return [direction_block == b for b in blocks]


def kept_fraction_per_block(eigenvalue, taus, direction_block, blocks,
                            threshold=0.5) -> np.ndarray:
    """Fraction of each block's directions kept, r = 1 + tau lambda >= threshold, mean over points.

    eigenvalue: (T, P, D) data-unit eigenvalues (`jacobian_sweep`'s "eigenvalue"), taus (T,),
    direction_block (D,) the block of each direction slot, blocks the block indices wanted.
    threshold: a float, or a (H,) sequence for a threshold-sensitivity study.
    Returns (T, n_blocks), or (H, T, n_blocks) for a sequence; nan for a block with no direction.
    Same rule as `tangent_dimensions` (lost when 1 + tau lambda < threshold) [ALD24].
    """
    eig = np.asarray(eigenvalue, dtype=np.float64)
    taus = np.asarray(taus, dtype=np.float64)
    if eig.ndim != 3 or eig.shape[0] != taus.size:
        raise ValueError(f"eigenvalue must be (T, P, D) with T = len(taus) = {taus.size}, got "
                         f"{eig.shape}")
    ths = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
    if np.any((ths <= 0) | (ths >= 1)):
        raise ValueError(f"thresholds must lie in (0, 1), got {ths.tolist()}")
    ratio = 1.0 + taus[:, None, None] * eig  # kept ratio r, (T, P, D)
    out = np.full((ths.size, taus.size, len(blocks)), np.nan)
    for j, mask in enumerate(_block_masks(direction_block, blocks)):
        if mask.any():
            kept = ratio[None, :, :, mask] >= ths[:, None, None, None]  # (H, T, P, k_b)
            out[:, :, j] = kept.mean(axis=(2, 3))
    return out if np.ndim(threshold) else out[0]


def mean_abs_eigenvalue_per_block(eigenvalue, direction_block, blocks) -> np.ndarray:
    """Mean |lambda| over points and the block's directions, (T, n_blocks) (nan for an empty
    block): the measured counterpart of the [ALD24] predicted singular values."""
    eig = np.abs(np.asarray(eigenvalue, dtype=np.float64))
    out = np.full((eig.shape[0], len(blocks)), np.nan)
    for j, mask in enumerate(_block_masks(direction_block, blocks)):
        if mask.any():
            out[:, j] = eig[:, :, mask].mean(axis=(1, 2))
    return out


def predicted_kept_fraction(tau, tau_c, variance, threshold: float = 0.5) -> np.ndarray:
    """Kept fraction a collapse theory predicts for a block of data variance s^2 at noise tau.

    A block is kept (1) when tau >= tau_c (no memorization: [ALD24] tau_c,i, or the REM tau_C of
    SCIENCE.md section 3) and the noise does not swamp it, s^2 / (tau + s^2) >= threshold (the
    population value of r = 1 + tau lambda, module docstring); otherwise lost (0). Broadcasts;
    nan where tau_c or the variance is nan.
    """
    tau = np.asarray(tau, dtype=np.float64)
    tau_c = np.asarray(tau_c, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    kept = (tau >= tau_c) & (var / (tau + var) >= threshold)
    return np.where(np.isnan(tau_c) | np.isnan(var), np.nan, kept.astype(np.float64))


def predicted_kept_ratio_rem(tau, variance, tau_collapse) -> np.ndarray:
    """REM picture of the kept ratio r = 1 + tau lambda of a direction of variance s^2 [BBDM24]:
    the population value s^2 / (tau + s^2) above the collapse tau_C (weights spread over
    exponentially many points), 0 below it (weights condensed on one training point,
    lambda = -1/tau, SCIENCE.md sections 2-3). Broadcasts."""
    tau = np.asarray(tau, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    return np.where(tau >= np.asarray(tau_collapse, dtype=np.float64), var / (tau + var), 0.0)
