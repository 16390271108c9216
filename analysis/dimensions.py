"""Tangent dimensions of the score [ALD24]: the spectrum of the score Jacobian near the data.

Units. A schedule noises data as x_t = m(t) y + sigma(t) z. In the data-scale variable u = x / m
(the VE process with noise variance tau = sigma^2 / m^2, docs/theory.md) the score is
s_u(u) = m s(m u), so the Jacobian in data units is

    J_data = m(t)^2 J_x,        J_x = grad_x s(x, t)   (the schedule's x units).

For the population score of N(mu, C) this gives J_data = -(C + tau I)^{-1}, eigenvalues
-1/(tau + s_i^2) ([BBDM24]). For the empirical score,
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

from memphase.analysis.posterior_variance import on_log_tau_grid

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
    "ANCHORS",
    "SIGNATURES",
    "variance_ratio",
    "signature_critical_tau",
    "official_probe_spectrum",
    "kept_fraction_per_block",
    "mean_abs_eigenvalue_per_block",
    "predicted_kept_fraction",
    "predicted_kept_ratio_rem",
]


# -- Jacobians (memphase.analysis.score_jacobian, re-exported) ---------------------------------
from memphase.analysis.score_jacobian import (_autograd_jacobian,  # noqa: E402,F401
                                              _symmetric_eigvalsh, jacobian_data_units,
                                              jacobian_spectrum_data_units, score_jacobian)


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
    lt, frac, squeeze = on_log_tau_grid(taus, kept_fraction, "kept_fraction")
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
#: where the Jacobian is probed: "origin" is the official [ALD24] empirical-score panel (the exact
#: data mean, no noise); "mean" adds noise to it (a memphase variant, not the official protocol)
ANCHORS = ("train", "fresh", "mean", "origin")


def _law_mean(data) -> torch.Tensor:
    """Population mean of the data law: data.mean, 0 for the centred models (linear manifolds,
    normalized or not, and the +-m mixture), else the training-set mean."""
    if getattr(data, "mean", None) is not None:
        return torch.as_tensor(data.mean, dtype=torch.float64)
    if (getattr(data, "params", None) or {}).get("model") in ("linear_manifold", "gaussian_mixture"):
        return torch.zeros(data.x.shape[1], dtype=torch.float64)
    return data.x.to(torch.float64).mean(0)


def _anchor_points(data, anchor, anchors, n_points, rng, seed) -> tuple[torch.Tensor, str]:
    if anchors is not None:
        y = torch.as_tensor(anchors, dtype=torch.float64)
        d = np.asarray(data.basis).shape[0]
        if y.ndim != 2 or y.shape[1] != d:
            raise ValueError(f"anchors must have shape (P, {d}), got {tuple(y.shape)}")
        return y, "given"
    x_train = getattr(data, "x", None)
    if x_train is None:
        raise ValueError("data has no training points: pass anchors")
    if anchor == "train":
        if not 1 <= n_points <= x_train.shape[0]:
            raise ValueError(f"n_points must be in [1, {x_train.shape[0]}], got {n_points}")
        idx = np.sort(rng.choice(x_train.shape[0], size=n_points, replace=False))
        return x_train[torch.as_tensor(idx)].to(torch.float64), "training points"
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    if anchor == "fresh":
        y = torch.from_numpy(data.draw(n_points, seed=int(seed) + 7919))
        return y.to(torch.float64), "fresh samples of the law"
    if anchor == "origin":
        return (_law_mean(data).expand(n_points, -1).clone(),
                "exact data mean, no noise (official [ALD24] empirical-score panel)")
    return (_law_mean(data).expand(n_points, -1).clone(),
            "data mean plus noise sqrt(tau) z (memphase variant; not the official protocol)")


def jacobian_sweep(score, data, taus, n_points: int = 16, seed: int = 0, schedule=None, *,
                   anchor: str = "train", anchors=None, noise_scale: float = 1.0,
                   threshold: float = 0.5, method: str = "auto", variances=None,
                   spectrum: bool = True, probe_points: int = 0, fd_spectrum: bool = False,
                   law_samples: int = 0, law_seed: int | None = None, law_min_ess: float = 20.0):
    """Per-block Jacobian spectrum, posterior-variance ratio and critical taus vs noise [ALD24].

    For each tau on the grid (schedule time t = schedule.time_of_tau(tau)) the score is probed at
    n_points points x = m(t) (y + noise_scale sqrt(tau) z), z ~ N(0, I), from anchors y:
      anchor="train"  training points chosen without replacement (x a draw of the forward kernel
                      from a training point; the posterior condenses on the anchor itself);
      anchor="fresh"  fresh samples of the data law (`DataSample.draw`);
      anchor="mean"   the data mean plus noise (a memphase variant, NOT the official protocol);
      anchor="origin" the exact data mean, no noise added at any tau (the official [ALD24]
                      empirical-score panel, `test_point = zeros`): every point of a unit-sphere
                      law is at distance 1, the weights are exactly 1/N and rho = 1 + v/tau;
    `anchors` (a (P, d) tensor) overrides them. The same anchors and z serve every tau.

    Per direction u of data.basis (population variance v_u: the actual variances of the law,
    `data.variances()`, unless `variances` is given) the posterior-variance ratio
    rho_u = u^T Cov[y|x] u / (tau v_u / (v_u + tau)) (`memphase.analysis.posterior_variance`); a block's
    critical tau per signature ("collapse": rho < 1/2; "excess": rho > 2) is the largest tau at
    which more than half of its (point, direction) pairs carry it (`signature_critical_tau`).

    spectrum=True (default) also computes the data-unit Jacobian m^2 grad_x s: its eigenvalues
    compressed to each block (`block_spectra`; kept fraction by the rule of `tangent_dimensions`)
    and its singular values. spectrum=False computes rho alone, for the plain empirical score in
    O(N d) per point (`empirical_posterior_variances`). probe_points > 0 adds the official [ALD24]
    probe estimator (`official_probe_spectrum`, at x0 = m(t) y of the first probe_points anchors).
    fd_spectrum=True adds the estimator of the official empirical-score panel at the probe points
    (`memphase.analysis.probes.finite_difference_jacobian`: central differences along the basis
    directions, total step sqrt(tau)): the singular values of |J_fd| (raw; the official panel
    drops the top 6 and max-normalizes) and the ratio rho from its diagonal.
    law_samples > 0 adds the law-normalized ratio rho_law = u^T Cov_w u / u^T Cov_law[y|x] u
    (`memphase.analysis.law_posterior`: the law's own posterior by importance sampling with
    law_samples draws of `data.draw`, seeds law_seed + b, law_seed = seed + 104729 by default; exact
    at the origin), its signature fractions and critical taus, its standard error and ESS;
    rho_law is nan where the law's effective sample size is below law_min_ess (the law's own
    M-point estimate has condensed there), and fractions count the resolved pairs only.

    Returns an xarray Dataset: variance_ratio (tau, point, direction), signature_fraction
    (signature, tau, block), critical_tau (signature, block); with spectrum: eigenvalue,
    kept_ratio (tau, point, direction), kept_dims (tau, block, point), kept_fraction (tau, block),
    critical_tau_kept (block, the kept-fraction rule of `critical_tau_per_block`), singular_value
    (tau, point, rank); with probes: probe_singular_value (tau, probe_point, probe_rank); the
    [ALD24] theory tau_c per block (actual variances) when `data` is a linear manifold.
    """
    import xarray as xr

    from memphase.analysis.posterior_variance import (SIGNATURES, empirical_posterior_variances,
                                             signature_critical_tau, signature_fraction,
                                             variance_ratio)
    from memphase.analysis.probes import finite_difference_jacobian, official_probe_spectrum

    schedule = schedule if schedule is not None else getattr(score, "schedule", None)
    if schedule is None:
        raise ValueError("need a schedule (score.schedule or schedule=)")
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    taus = np.sort(np.asarray(taus, dtype=np.float64).ravel())
    if taus.size < 2 or np.any(~np.isfinite(taus)) or np.any(taus <= 0):
        raise ValueError("taus must be a grid of at least two positive finite values")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale!r}")
    if not isinstance(probe_points, (int, np.integer)) or probe_points < 0:
        raise ValueError(f"probe_points must be a non-negative integer, got {probe_points!r}")
    basis, block = np.asarray(data.basis), np.asarray(data.block)
    var = np.asarray(data.variances() if variances is None else variances, dtype=np.float64)
    if var.shape != block.shape:
        raise ValueError(f"variances must have shape {block.shape}, got {var.shape}")
    fast = not spectrum and getattr(score, "name", "") == "empirical" and hasattr(score, "train")
    if not spectrum and not fast and method == "exact" and not hasattr(score, "jacobian"):
        raise ValueError(f"{type(score).__name__} has no closed-form jacobian")
    rng = np.random.default_rng(seed)
    y, anchor_desc = _anchor_points(data, anchor, anchors, n_points, rng, seed)
    p, d = y.shape
    probe_points = min(int(probe_points), p)
    z = torch.from_numpy(rng.standard_normal((p, d)))
    x_train = getattr(data, "x", None)
    dtype = torch.float64  # Jacobian spectra in float64 always (score_jacobian)

    blocks = sorted(int(b) for b in np.unique(block))
    order = np.concatenate([np.nonzero(block == b)[0] for b in blocks])  # directions by block
    dir_block, dirs = block[order], basis[:, order]
    rho = np.empty((taus.size, p, d))
    eig = np.empty((taus.size, p, d)) if spectrum else None
    sv = np.empty((taus.size, p, d)) if spectrum else None
    kept = np.empty((taus.size, len(blocks), p), dtype=np.int64) if spectrum else None
    probe = np.empty((taus.size, probe_points, d - 1)) if probe_points else None
    fd_sv = np.empty((taus.size, p, d)) if fd_spectrum else None
    fd_rho = np.empty((taus.size, p, d)) if fd_spectrum else None
    if law_samples:
        from memphase.analysis.law_posterior import law_posterior_variances

        law_seed = int(seed) + 104729 if law_seed is None else int(law_seed)
        law_draws: dict = {}
        law_draw = lambda n, s: law_draws.setdefault(s, data.draw(n, s))  # noqa: E731
        law_ratio, law_se = np.empty((taus.size, p, d)), np.empty((taus.size, p, d))
        law_ess = np.empty((taus.size, p))
    times = np.asarray(schedule.time_of_tau(taus), dtype=np.float64)
    for i, (tau, t) in enumerate(zip(taus, times)):
        m = float(schedule.mean_scale(t))
        u = y if anchor == "origin" and anchors is None else y + noise_scale * math.sqrt(tau) * z
        if fast:
            post = empirical_posterior_variances(score.train, u, tau, dirs)
            rho[i] = post * (var[order] + tau) / (tau * var[order])
        else:
            jac = jacobian_data_units(score, (m * u).to(dtype), float(t), method, schedule)
            j64 = torch.as_tensor(jac).detach().to("cpu", torch.float64)
            diag = torch.einsum("ik,bij,jk->bk", torch.from_numpy(dirs), j64,
                                torch.from_numpy(dirs)).numpy()
            rho[i] = variance_ratio(diag, tau, var[order])
            post = tau * (1.0 + tau * diag)  # Tweedie: Cov[y|u] = tau (I + tau J_data)
            if spectrum:
                spec = block_spectra(j64, basis, block)
                eig[i] = np.concatenate([spec[b] for b in blocks], axis=-1)
                counts = tangent_dimensions(spec, tau, threshold)
                kept[i] = np.stack([counts[b] for b in blocks])
                sv[i] = torch.linalg.svdvals(j64).numpy()
        if fd_spectrum:
            jfd = finite_difference_jacobian(score, (m * u).to(dtype), float(t), basis=dirs,
                                             schedule=schedule)
            fd_sv[i] = np.linalg.svd(np.abs(jfd), compute_uv=False)
            fd_rho[i] = variance_ratio(np.diagonal(jfd, axis1=1, axis2=2), tau, var[order])
        if law_samples:
            lp = law_posterior_variances(law_draw, u.numpy(), float(tau), dirs,
                                         n_samples=int(law_samples), seed=law_seed,
                                         centre=_law_mean(data).numpy(),
                                         exact_at_origin=var[order])
            ok = (lp.ess[:, None] >= law_min_ess) & (lp.variance > 0)
            lv = np.where(ok, lp.variance, 1.0)
            law_ratio[i] = np.where(ok, post / lv, np.nan)
            law_se[i] = np.where(ok, post * lp.stderr / lv**2, np.nan)
            law_ess[i] = lp.ess
        if probe_points:
            probe[i] = official_probe_spectrum(score, (m * y[:probe_points]).to(dtype), float(t),
                                               seed=seed + i)

    sig_names = list(SIGNATURES)
    frac_sig = np.stack([signature_fraction(rho, dir_block, blocks, s) for s in sig_names])
    crit_sig = np.stack([signature_critical_tau(taus, f) for f in frac_sig])
    dims = np.array([int(np.sum(block == b)) for b in blocks])
    stds = list(getattr(data, "block_stds", []))
    params = dict(getattr(data, "params", {}) or {})
    normal_std = float(params.get("normal_std", np.nan))
    block_std = [normal_std if b < 0 else (stds[b] if b < len(stds) else np.nan) for b in blocks]
    block_var = [float(var[block == b].mean()) for b in blocks]
    dv = {
        "variance_ratio": (("tau", "point", "direction"), rho, {
            "long_name": "posterior-variance ratio rho = u^T Cov[y|x] u / (tau v_u / (v_u + tau))",
            "units": "1", "population_value": 1.0}),
        "signature_fraction": (("signature", "tau", "block"), frac_sig, {
            "long_name": "fraction of the block's (point, direction) pairs carrying the signature",
            "units": "1"}),
        "critical_tau": (("signature", "block"), crit_sig, {
            "long_name": "largest tau at which more than half of the block's (point, direction) "
                         "pairs carry the signature (inf: above the grid; nan: never)",
            "units": "data variance"}),
    }
    if spectrum:
        frac = kept.mean(axis=2) / dims
        dv.update({
            "eigenvalue": (("tau", "point", "direction"), eig, {
                "long_name": "eigenvalue of the symmetrized score Jacobian compressed to its block",
                "units": "1/data variance (data units: m^2 grad_x s)", "collapsed_value": "-1/tau"}),
            "kept_ratio": (("tau", "point", "direction"), 1.0 + taus[:, None, None] * eig, {
                "long_name": "kept ratio r = 1 + tau lambda (1 resolved, 0 lost)", "units": "1"}),
            "kept_dims": (("tau", "block", "point"), kept, {
                "long_name": f"directions kept (r >= {threshold})", "units": "count"}),
            "kept_fraction": (("tau", "block"), frac, {
                "long_name": "fraction of the block's directions kept, mean over points",
                "units": "1"}),
            "critical_tau_kept": (("block",), critical_tau_per_block(taus, frac), {
                "long_name": "tau below which more than half of the block is lost (kept-fraction "
                             "rule, scanned from small tau)", "units": "data variance"}),
            "singular_value": (("tau", "point", "rank"), sv, {
                "long_name": "singular values of the data-unit score Jacobian (exact), descending",
                "units": "1/data variance"}),
        })
    if fd_spectrum:
        frac_fd = np.stack([signature_fraction(fd_rho, dir_block, blocks, s) for s in sig_names])
        dv.update({
            "fd_singular_value": (("tau", "point", "rank"), fd_sv, {
                "long_name": "official [ALD24] empirical-score panel estimator: singular values of "
                             "|J_fd| (central differences along the basis, total step sqrt(tau), "
                             "absolute values), raw, descending", "units": "1/data variance"}),
            "fd_variance_ratio": (("tau", "point", "direction"), fd_rho, {
                "long_name": "rho from the diagonal of the finite-difference Jacobian",
                "units": "1"}),
            "critical_tau_fd": (("signature", "block"),
                                np.stack([signature_critical_tau(taus, f) for f in frac_fd]), {
                "long_name": "critical tau of each signature of the finite-difference rho",
                "units": "data variance"}),
        })
    if law_samples:
        frac_law = np.stack([signature_fraction(law_ratio, dir_block, blocks, s, resolved=True)
                             for s in sig_names])
        dv.update({
            "law_variance_ratio": (("tau", "point", "direction"), law_ratio, {
                "long_name": "rho_law = u^T Cov_w[y|x] u / u^T Cov_law[y|x] u (empirical over the "
                             "law's own posterior; 1 as N -> infinity)", "units": "1",
                "law_samples": int(law_samples), "law_seed": int(law_seed),
                "law_min_ess": float(law_min_ess)}),
            "law_variance_ratio_stderr": (("tau", "point", "direction"), law_se, {
                "long_name": "standard error of rho_law from the law's importance sampling "
                             "(spread of 8 batches)", "units": "1"}),
            "law_ess": (("tau", "point"), law_ess, {
                "long_name": "effective sample size of the law's importance sampling (inf: exact "
                             "at the origin)", "units": "count"}),
            "law_signature_fraction": (("signature", "tau", "block"), frac_law, {
                "long_name": "fraction of the block's pairs whose rho_law carries the signature",
                "units": "1"}),
            "critical_tau_law": (("signature", "block"),
                                 np.stack([signature_critical_tau(taus, f) for f in frac_law]), {
                "long_name": "largest tau at which more than half of the block's pairs carry the "
                             "signature of rho_law (collapse < 1/2, excess > 2)",
                "units": "data variance"}),
        })
    if probe_points:
        dv["probe_singular_value"] = (("tau", "probe_point", "probe_rank"), probe, {
            "long_name": "official [ALD24] probe estimator: svd of s(x0 + sigma z_k)/sigma, first "
                         "dropped, max-normalized", "units": "1"})
    ds = xr.Dataset(
        dv,
        coords={
            "tau": ("tau", taus, {"long_name": "data-scale noise variance sigma^2/m^2",
                                  "units": "data variance"}),
            "t": ("tau", times, {"long_name": f"{getattr(schedule, 'name', '')} schedule time",
                                 "units": "schedule time"}),
            "signature": ("signature", sig_names,
                          {"long_name": "; ".join(f"{k}: {v[1]}" for k, v in SIGNATURES.items())}),
            "block": ("block", np.array(blocks), {"long_name": "block index (-1: normal space)"}),
            "block_dim": ("block", dims, {"long_name": "directions in the block"}),
            "block_std": ("block", np.asarray(block_std, dtype=np.float64),
                          {"long_name": "nominal data std along the block", "units": "data std"}),
            "block_variance": ("block", np.asarray(block_var),
                               {"long_name": "actual population variance along the block "
                                             "(mean over its directions)", "units": "data variance"}),
            "direction_block": ("direction", dir_block,
                                {"long_name": "block of each direction slot"}),
            "point": ("point", np.arange(p)),
        },
        attrs={
            "source": "[ALD24] geometric memorization; memphase.analysis.dimensions.jacobian_sweep",
            "anchor": anchor if anchors is None else "given",
            "anchors": anchor_desc,
            "threshold": threshold,
            "threshold_rule": "lost when 1 + tau * lambda < threshold",
            "points": "x = m(t) (y + noise_scale sqrt(tau) z), y anchors",
            "noise_scale": noise_scale,
            "seed": seed,
            "score": str(getattr(score, "describe", lambda: {})()),
            "schedule": str(getattr(schedule, "to_dict", lambda: {})()),
            "method": method,
        },
    )
    n_train = int(getattr(score, "n_train", x_train.shape[0] if x_train is not None else 0))
    if params.get("model") == "linear_manifold" and n_train >= 2:
        from memphase.physics.critical import subspace_collapse_tau

        tau_c = subspace_collapse_tau(n_train, np.sqrt(np.maximum(var, 1e-300)),
                                      normalized=bool(params.get("normalize")))
        th = np.array([np.nan if b < 0 else float(tau_c[block == b].mean()) for b in blocks])
        ds["critical_tau_theory"] = (("block",), th, {
            "long_name": "[ALD24] theory tau_c with the actual variances "
                         "(memphase.physics.critical.subspace_collapse_tau)", "units": "data variance"})
    return ds


from memphase.analysis.block_summaries import (kept_fraction_per_block,  # noqa: E402  (re-exported)
                                      mean_abs_eigenvalue_per_block, predicted_kept_fraction,
                                      predicted_kept_ratio_rem)
from memphase.analysis.posterior_variance import (SIGNATURES, signature_critical_tau,  # noqa: E402
                                         variance_ratio)
from memphase.analysis.probes import official_probe_spectrum, probe_singular_values  # noqa: E402
