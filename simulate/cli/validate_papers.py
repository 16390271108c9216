"""`memphase validate` rows for the [BDKOS25], [H24] and [ALD24] protocols (docs/theory.md).

Each function returns `memphase.simulate.cli.validate.Check` rows; the experiments' own cell functions
do the measuring (`run_in_memory` of the regularization and geometric experiments,
`memphase.physics.linear_model.generalization_probability`), so a row checks the same code a sweep runs.
Rows whose theory is not expected to hold are reported (gated=False) with the reason in the note.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import Check

__all__ = ["tikhonov_checks", "linear_model_checks", "geometric_checks", "geometric_origin_checks",
           "random_features_checks", "random_features_slow_bulk_checks",
           "TIKHONOV_C"]

#: Tikhonov strength of the transition row: the flow-invariant theory puts ~0.4 of the samples
#: within 1e-2 of a training point there ([BDKOS25] setting, docs/theory.md)
TIKHONOV_C = 1e-4


def tikhonov_checks(n_samples: int, seed: int = 0) -> list:
    """[BDKOS25] Baptista et al., arXiv 2501.15785, official protocol (N = 20 points of N(0, I_2),
    VE g = 10^t probability-flow ODE by RK45, `memphase.simulate.experiments.regularization`):
    collapse fraction (distance < 1e-2 to a training point) at c = 0 (theory 1) and at
    c = TIKHONOV_C, where the theory is the experiment's own column
    `tikhonov_collapse_fraction_theory` = P_i(sqrt(c) K_i < 1e-2), K_i = |x_i - y_nn| / sigma the
    invariant of the c = 0 flow, pooled over the experiment's calibration seeds (other training
    sets and noise than `seed`: a prediction, not a fit).

    Tolerances from the sample count n: at c = 0, zero misses in n samples bound the miss rate
    by 3 / n at 95% ("rule of three"), so the fraction must be >= 1 - 3 / n. At c > 0 the measured
    fraction of one new seed and the mean over J calibration seeds differ by the spread of one
    seed's fraction (training set and n samples) times sqrt(1 + 1/J): gated at 1.96 of that, the
    spread s estimated by the std of the J calibration seeds' own fractions and floored at the
    binomial std (`regularization.prediction_halfwidth`, the experiment's
    `tikhonov_collapse_fraction_theory_halfwidth`)."""
    from ..run.config import validate
    from ..experiments import regularization, run_in_memory

    cfg = validate({"job": "regularization",
                    "grid": {"regularizer": ["tikhonov"], "c": [0.0, TIKHONOV_C], "seeds": [seed]},
                    "sampler": {"n_samples": n_samples}}, regularization.SCHEMA)
    ds = run_in_memory(regularization, cfg)[1].isel(seed=0)
    setting = f"[BDKOS25] d=2 N=20 VE g=10^t RK45, {n_samples} samples"
    frac = ds["tikhonov_collapse_fraction"].values
    theory = ds["tikhonov_collapse_fraction_theory"].values
    half = lambda p: 1.96 * math.sqrt(max(p * (1 - p), 0.25 / n_samples) / n_samples)
    out = [Check("collapse fraction (Tikhonov c=0)", setting, 1.0, float(frac[0]),
                 (float(frac[0]) - max(half(frac[0]), 3.0 / n_samples), 1.0),
                 tolerance=3.0 / n_samples, absolute=True,
                 note="theory 1 (K = r / sigma conserved); tol 3/n: rule of three")]
    n_cal = ds["calibration_seed"].size
    tol = float(ds["tikhonov_collapse_fraction_theory_halfwidth"].values[1])
    p = float(frac[1])
    out.append(Check(f"collapse fraction (Tikhonov c={TIKHONOV_C:g})", setting, float(theory[1]), p,
                     (p - half(p), p + half(p)), tolerance=tol, absolute=True,
                     note=f"theory P(sqrt(c) K < 1e-2) from the c=0 flows of {n_cal} other seeds; "
                          f"tol {tol:.3f} = 1.96 s sqrt(1 + 1/{n_cal}), s the seed-to-seed std "
                          "(floored at the binomial std): regularization.prediction_halfwidth"))
    return out


def linear_model_checks(repeats: int, n_ref: int, seed: int = 0, n: int = 50, d: int = 10) -> list:
    """[H24] Halder, arXiv 2411.17807, official protocol (`LDM.py`; docs/conformance/h24.md):
    P(generalizing) of the official fit at T = 2, d = 10, N = 50, criterion covariance v B^T B, a
    fresh reference set of n_ref points per training set, so the 95% Wilson interval over the
    `repeats` training sets includes the reference-set variance. Independent code with the same
    protocol gives 0.975 (40 sets) and `data/configs/linear_model_official.toml` (100 sets) the
    value in docs/conformance/h24.md; gated P >= 0.9 (tolerance 0.1 from 1; binomial std <= 0.05
    at 40 sets for P >= 0.9). The symmetric criterion's value is reported beside it, not gated:
    it tends to 1/2 from below by construction (the two KDEs are exchangeable except that the
    generated law was fitted on the training set)."""
    from memphase.physics.linear_model import generalization_probability


    kw = dict(T=2.0, fit="official", covariance="BtB", return_interval=True)
    setting = f"[H24] d={d} N={n} T=2 official fit, v B^T B, {repeats} sets"
    p_ref, ci_ref = generalization_probability(n, d, repeats, seed, criterion="reference",
                                               n_ref=n_ref, reference="fresh", **kw)
    p_sym, ci_sym = generalization_probability(n, d, repeats, seed, criterion="symmetric", **kw)
    return [
        Check("P(generalizing) reference criterion",
              setting + f", fresh reference of {n_ref} per set", 1.0, p_ref, ci_ref,
              tolerance=0.1, absolute=True,
              note="the paper's criterion, LDM.py protocol; gated P >= 0.9; 95% Wilson interval "
                   "over training sets incl. reference-set variance"),
        Check("P(generalizing) symmetric criterion", setting, 0.5, p_sym, ci_sym,
              tolerance=1.96 * math.sqrt(0.25 / repeats), absolute=True, gated=False,
              note="reported, not gated: tends to 1/2 from below by construction"),
    ]


def geometric_checks(n_points: int, seed: int = 0, n_train: int = 1000, d: int = 30) -> list:
    """[ALD24] Achilli et al., arXiv 2410.08727, protocol: d = 30 unit-sphere linear manifold,
    blocks (2, std 1) and (5, std 0.3), normal std 0.01, N = 1000, empirical score, one seed,
    `memphase.simulate.experiments.geometric` (`jacobian_sweep` per anchor) with memphase's
    protocol pinned (Haar generator, log grid 1e-4..1, 24 values; the job's defaults are the
    official ones since issue 27). Reported, not gated:
    (a) training-point anchor, collapse signature: each block's critical tau against the REM
        tau_C ([BBDM24], actual variances). docs/theory.md (d-scaling study) measures ratios
        1.01-1.45 for d >= 60, N >= 1000 but 1.8-2.7x (block 0) at d = 30: finite-d, not gated;
    (b) data-mean anchor plus noise (a memphase variant, not the official protocol), excess
        signature: the block ratio tau_0 / tau_1 against the [ALD24] per-direction prediction
        v_0 / v_1; that formula is not confirmed by the d-scaling study. The official panel's
        protocol (exact origin) is `geometric_origin_checks`."""
    from ..run.config import validate
    from ..experiments import geometric, run_in_memory

    cfg = validate({"job": "geometric", "data": {"protocol": "memphase"},  # memphase's variant
                    "grid": {"n_train": [n_train], "d": [d], "std_ratio": [0.3],
                             "score": ["empirical"], "seeds": [seed]},
                    "measure": {"anchors": ["train", "mean"], "n_points": n_points,
                                "probe_points": 0, "tau_spacing": "log", "tau_min": 1e-4,
                                "n_tau": 24, "schedule": "ou", "fd_spectrum": False}},
                   geometric.SCHEMA)
    ds = run_in_memory(geometric, cfg)[1].squeeze()
    setting = f"[ALD24] d={d} N={n_train} sphere, {n_points} points"
    tau = ds["critical_tau"]
    rem = float(ds["critical_tau_rem"])
    out = []
    for b in (0, 1):
        m = float(tau.sel(anchor="train", signature="collapse", block=b))
        std = float(ds["block_std"].sel(block=b))
        out.append(Check(f"tau_c/REM (train anchor, collapse) block {b}", setting + f" std {std:g}",
                         rem, m, tolerance=0.5, gated=False,
                         note=f"ratio {m / rem:.2f}; not gated at d=30 (finite d): the d-scaling study "
                              "measures 1.8-2.7 (block 0), 0.75-0.97 (block 1) at d=30, "
                              "1.01-1.45 only for d >= 60, N >= 1000 (`memphase docs theory`)"))
    t0, t1 = (float(tau.sel(anchor="mean", signature="excess", block=b)) for b in (0, 1))
    v = ds["block_variance"]
    v0, v1 = float(v.sel(block=0)), float(v.sel(block=1))
    out.append(Check("tau_0/tau_1 (mean anchor, excess)", setting, v0 / v1, t0 / t1, tolerance=0.5,
                     gated=False, note="[ALD24] v_0/v_1; reported, not gated: [ALD24] per-direction "
                                       "formula not confirmed by the d-scaling study"))
    return out


def random_features_checks(seed: int = 0, d_spectrum: int = 400, d_train: int = 8,
                           seeds: int = 2) -> list:
    """[BUBM25] Bonnaire, Urfin, Biroli, Mézard, arXiv 2505.17638, random-features theory
    (`memphase.simulate.experiments.random_features`, docs/training_dynamics.md):

    (a) spectrum of U: Kolmogorov distance between the eigenvalues of the Gaussian-equivalent U and
        the theory CDF (saddle point of plot_spectrum_U.py) at the official setting psi_p = 2,
        psi_n = 1, t = 0.01, d = 400, Sigma levels (0.5, 1.5) (the paper's two-level case), gated
        at 0.02 (measured 0.005 at seeds 0..2; the grid resolves the CDF to ~1e-3). The Sigma = I
        case (psi_p = psi_n + 1: a hard edge at s_t^2 that finite d smooths) is reported, not gated.
    (b) tau_mem ~ psi_n^a: exponent of the measured tau_mem (train-test gap at half its limit) over
        psi_n = 2, 4, 8 at psi_p = 64, t = 0.01, d = d_train, exact gradient flow; theory a = 1,
        gated |a - 1| <= 0.25 (measured 1.06 [1.02, 1.10] at d = 8, 1.04 at d = 16). The theory's
        own exponent (mean of the sample bulk, predicted_timescales) is a computed row, gated at
        0.05. About 15 s on one core."""
    from ..run.config import validate
    from ..experiments import random_features as rfx
    from ..experiments import run_in_memory

    out = []
    for levels, gated in (((0.5, 1.5), True), ((1.0,), False)):
        cfg = validate({"job": "random_features", "data": {"sigma_levels": list(levels)},
                        "grid": {"d": [d_spectrum], "psi_p": [2.0], "psi_n": [1.0], "t": [0.01],
                                 "seeds": [seed]},
                        "train": {"n_times": 8}, "measure": {"spectrum_points": 300}}, rfx.SCHEMA)
        ks = float(run_in_memory(rfx, cfg)[1]["spectrum_distance"].squeeze())
        out.append(Check(f"RF spectrum of U: Kolmogorov distance (Sigma levels {levels})",
                         f"[BUBM25] d={d_spectrum} psi_p=2 psi_n=1 t=0.01 Gaussian equivalent",
                         0.0, ks, tolerance=0.02 if gated else 0.04, absolute=True, gated=gated,
                         note="theory: saddle-point density of plot_spectrum_U.py" + (
                             "" if gated else "; reported: hard edge at s_t^2 (psi_p = psi_n + 1)")))
    cfg = validate({"job": "random_features",
                    "grid": {"d": [d_train], "psi_p": [64.0], "psi_n": [2.0, 4.0, 8.0],
                             "t": [0.01], "seeds": list(range(seed, seed + seeds))},
                    "train": {"n_times": 120}, "measure": {"spectrum_points": 200}}, rfx.SCHEMA)
    ds = run_in_memory(rfx, cfg)[1].squeeze()
    a = float(ds["tau_mem_exponent"])
    ci = (float(ds["tau_mem_exponent_ci_low"]), float(ds["tau_mem_exponent_ci_high"]))
    setting = f"[BUBM25] RF d={d_train} psi_p=64 psi_n=2,4,8 t=0.01, {seeds} seeds, exact flow"
    out.append(Check("RF tau_mem ~ psi_n^a: a (measured)", setting, 1.0, a, ci, tolerance=0.25,
                     absolute=True, note="tau_mem: train-test gap at half its limit; 95% "
                                         "seed-bootstrap interval"))
    th = ds["tau_mem_theory"].isel(seed=0).values
    pn = ds["psi_n"].values
    a_th = float(np.polyfit(np.log(pn), np.log(th), 1)[0])
    out.append(Check("RF tau_mem ~ psi_n^a: a (theory bulk)", setting, 1.0, a_th, tolerance=0.05,
                     absolute=True, note="1 / (kappa x mean of the sample bulk of the theory density)"))
    return out


def random_features_slow_bulk_checks(seed: int = 0, d: int = 8, seeds: int = 2) -> list:
    """[BUBM25] random-features model: why the measured (half-gap) tau_mem is ~40 x the sample-bulk
    time (docs/training_dynamics.md, "Why tau_mem is ~40 x the sample-bulk time"). The gap is
    carried by the slow bulk of U at lambda_slow ~ s_t^2 + v_t^2 psi_p / (psi_n F_t),
    F_t = Gamma_t^2 / Delta_t (`memphase.physics.random_features.slow_bulk_factor`): one row per
    diffusion time t = 0.01 (F_t = 50.5) and t = 0.1 (F_t = 5.5), the geometric mean over
    psi_n = 4, 8 and `seeds` seeds of tau_mem / tau_mem_slow_leading, theory 1, gated at 35 %
    (measured 1.06 and 0.87 at d = 8, psi_p = 64, seeds 0-1, exact flow); the note gives the
    ratio to the sample-bulk time, which follows F_t. About 5 s on one core."""
    from ..run.config import validate
    from ..experiments import random_features as rfx
    from ..experiments import run_in_memory

    out = []
    for t in (0.01, 0.1):
        cfg = validate({"job": "random_features",
                        "grid": {"d": [d], "psi_p": [64.0], "psi_n": [4.0, 8.0], "t": [t],
                                 "seeds": list(range(seed, seed + seeds))},
                        "train": {"n_times": 240}, "measure": {"spectrum_points": 200}}, rfx.SCHEMA)
        ds = run_in_memory(rfx, cfg)[1]
        tau = ds["tau_mem"].values
        slow = float(np.exp(np.mean(np.log(tau / ds["tau_mem_slow_leading"].values))))
        sample = float(np.exp(np.mean(np.log(tau / ds["tau_mem_leading"].values))))
        share = float(ds["slow_gain_share"].mean())
        out.append(Check(f"RF half-gap tau_mem / slow-bulk time (t={t})",
                         f"[BUBM25] RF d={d} psi_p=64 psi_n=4,8, {seeds} seeds, exact flow",
                         1.0, slow, tolerance=0.35, kind="measured",
                         note=f"slow bulk s^2 + v^2 psi_p / (psi_n F_t); tau_mem / sample-bulk "
                              f"time = {sample:.3g}; slow modes carry {share:.0%} of the "
                              f"train-loss drop"))
    return out


def geometric_origin_checks(seed: int = 0, n_train: int = 1000, d: int = 30) -> list:
    """[ALD24] official empirical-score panel protocol (docs/conformance/ald24.md): the exact
    origin of the d = 30 unit-sphere set (no noise), N = 1000. There every weight is 1/N and
    rho = (u^T C_N u / v)(1 + v / tau), so the excess signature (rho > 2) sets in at tau = v_b,
    the block's actual variance, for any N: gated at 15% (C_N scatters by ~sqrt(2 / N) per
    direction; grid step 2%). What the official panel shows, not a memorization threshold."""
    import numpy as np

    from memphase.analysis.dimensions import jacobian_sweep
    from memphase.physics.schedules import make_schedule

    from ..data import linear_manifold
    from ..scores import EmpiricalScore

    k1, k2 = max(1, d // 15), max(1, d // 6)
    data = linear_manifold(n_train, d, [(k1, 1.0), (k2, 0.3)], normal_std=0.01,
                           normalize="sphere", seed=seed)
    sch = make_schedule("ou")
    ds = jacobian_sweep(EmpiricalScore(data, sch), data, np.geomspace(1e-3, 1.0, 301),
                        n_points=1, seed=seed, anchor="origin", spectrum=False)
    out = []
    for b in (0, 1):
        v = float(ds["block_variance"].sel(block=b))
        m = float(ds["critical_tau"].sel(signature="excess", block=b))
        out.append(Check(f"excess onset tau/v_b (origin anchor) block {b}",
                         f"[ALD24] d={d} N={n_train} sphere, exact origin", 1.0, m / v,
                         tolerance=0.15,
                         note=f"tau {m:.4g} vs v_b {v:.4g}: N-independent (weights 1/N at the "
                              "origin); the official panel's enhanced singular value"))
    return out
