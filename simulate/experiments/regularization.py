"""Regularization against memorization [BDKOS25]: closed-form Tikhonov and floor-normalized scores
against a network trained with the Tikhonov penalty lambda |s_theta|^2 (docs/theory.md, Scores; [BDKOS25] arXiv 2501.15785).

Setting of [BDKOS25] (Baptista et al., arXiv 2501.15785), as in its official code (the default,
`sampler.schedule = "ve_bdkos25"`): N = 20 points of N(0, I_2); the VE schedule with diffusion
g(t) = 10^t, sigma(t)^2 = (10^{2t} - 1) / (2 ln 10) (`memphase.physics.schedules.ExponentialVE`; sigma(1) = 4.64);
initial samples sigma(1) z; the probability-flow ODE dx/dt = -(1/2) g^2 s integrated by RK45
(rtol = atol = sampler.tol = 1e-5) from t = 1 down to t = 0 for the Tikhonov scores with c > 0 (their
limit at sigma = 0 is (y_nn - x) / c) and down to t = sampler.t_end = 1e-6 (sigma ~ 1e-3) for the
singular ones (c = 0, floor); no Tweedie denoising. Networks are trained and sampled on the VP
schedule (beta 0.001..3, t ~ U(t_end, 1), EMA; `network.schedule = "linear_vp"`), as the official
code does. The earlier protocol stays available with `sampler.schedule = "ve_10t"`: geometric VE
sigma = 10^t, Heun (or RK45) from sigma_start = 10 to sigma_end = 1e-6, Tweedie-denoised, networks on
the same schedule (`network.schedule = "sampler"`).
Per sample: distance to the nearest training point; per cell: the collapse fraction
(distance < tol = 1e-2) and the median distance.

Cells (each with its seed; `grid.regularizer` picks the families run):
- tikhonov:  s_c = (sum_n w_n y_n - x) / (sigma^2 + c) for each c in grid.c (c = 0: empirical score);
- floor:     floor-normalized score with each tau_floor in grid.tau_floor;
- network:   FourierMLP/ResidualMLP of each width trained by DSM with penalty lambda (grid.lambda),
             sampled at each checkpoint in grid.train_steps (the early-stopping axis);
- reference: one per seed and one per calibration seed (when tikhonov or network run): the c = 0
             flow, recording the flow invariant K_i = |x_i - y_nn| / sigma at sigma_end. The
             theory below uses ONLY the calibration seeds (`grid.calibration_seeds`, disjoint from
             `grid.seeds`: other training sets, other sampling noise), so that it predicts the
             evaluated runs instead of being fitted on them; the evaluated seeds' own K are kept
             as `flow_ratio` (a diagnostic).

Theory (*derived*; docs/theory.md): for any VE, dx/dlog sigma = -sigma^2 s, so
    c = 0:  dx/dlog sigma = x - xhat(x, sigma)       (xhat = sum_n w_n y_n)
    c > 0:  dx/dlog sigma = sigma^2 / (sigma^2 + c) (x - xhat).
Once the posterior weights sit on one training point y, r = |x - y| obeys r ~ sigma at c = 0 (so
K = r / sigma is conserved: every sample collapses, fraction 1) and r^2 / (sigma^2 + c) = const at
c > 0, so as sigma -> 0 the sample freezes at r = K sqrt(c) (1 + c / sigma_1^2)^{-1/2} -> K sqrt(c)
for c << sigma_1^2 (sigma_1 ~ the spacing of the training points). Hence, from c = 0 runs alone
(on the calibration seeds, K pooled over their samples):
    median distance(c) = sqrt(c) median_i K_i,   collapse fraction(c) = P_i(K_i sqrt(c) < tol),
exponent 1/2 of median distance vs c (fitted on 0 < c <= measure.fit_max_strength and stored), and
fraction 1 at c = 0. The network with penalty lambda has the Tikhonov minimizer with c = lambda
(`memphase.simulate.training` docstring), so the same curves are its infinite-capacity limit.

Network noise range: lambda > 0 trains and samples only down to tau_end = max(tau_0,
network.penalty_tau_ratio * lambda) (default lambda / 100), tau_0 = tau(network.t_end) on the VP
schedule (official eps = 1e-3: tau_0 = 2.5e-6) or sigma_end^2 on the legacy one. Below sigma^2 = lambda / 100 the exact
Tikhonov flow moves a sample by < 0.5 % of its distance (r^2 / (sigma^2 + c) conserved), while the
penalty weight lambda / sigma^2 of the loss would exceed 100 and grow to ~1e10 at sigma = 1e-6,
which stalls Adam (measured: lambda = 1e-3 trained to tau = 1e-12 outputs eps ~ 0 everywhere and
samples never leave the prior). lambda = 0 trains and samples down to sigma_end. Networks with
different lambda thus also spread their capacity over different tau ranges (14 decades at
lambda = 0, 9 at lambda = 1e-3): at a fixed, short training budget this confounds the lambda axis
(measured: width 128, 4000 steps, median distance 0.13 at lambda = 0 vs 0.09 at lambda = 1e-3,
both far above sqrt(lambda) median K = 0.04: the networks are still capacity/steps-limited).

Randomness: training set `isotropic_gaussian(n_train, d, seed)`; sampling noise seed 10000 + seed
(the same initial noise in every cell of a seed: common random numbers); network initialization and
DSM batches seed = seed. Calibration seeds draw their own training sets and noise the same way
(stored as the `calibration_seed` coordinate and the `calibration_seeds` attribute).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import xarray as xr

from memphase.physics.schedules import ExponentialVE, GeometricVE, LinearVP

from ..config import Field
from ..data import isotropic_gaussian
from ..networks import NETWORKS, build_network, count_parameters
from ..sampling import sample
from ..scores import EmpiricalScore, FloorNormalizedScore, LearnedScore, TikhonovScore
from ..training import TrainConfig, train_score
from .common import fill_grid

REGULARIZERS = ("tikhonov", "floor", "network")
SAMPLER_SCHEDULES = ("ve_bdkos25", "ve_10t")
NETWORK_SCHEDULES = ("linear_vp", "sampler")
_ge0 = dict(check=lambda v: v >= 0, rule="must be >= 0")
_gt0 = dict(check=lambda v: v > 0, rule="must be > 0")

SCHEMA = {
    "job": Field("str", choices=("regularization",), help="experiment to run"),
    "output": Field("str", "data/results/regularization.h5", help="results file (HDF5)"),
    "data": {
        "n_train": Field("int", 20, check=lambda v: 2 <= v <= 10**5, rule="2 <= n_train <= 1e5",
                         help="training points N of N(0, variance I_d)"),
        "d": Field("int", 2, check=lambda v: 1 <= v <= 1024, rule="1 <= d <= 1024"),
        "variance": Field("float", 1.0, **_gt0),
    },
    "grid": {
        "regularizer": Field("list[str]", list(REGULARIZERS), choices=REGULARIZERS,
                             help="families run: tikhonov (c), floor (tau_floor), network (lambda)"),
        "c": Field("list[float]", [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], **_ge0,
                   help="Tikhonov strengths c (data variance units; 0 = empirical score)"),
        "tau_floor": Field("list[float]", [1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0], **_gt0,
                           help="floors of the floor-normalized score"),
        "lambda": Field("list[float]", [0.0, 1e-3, 1e-2], **_ge0,
                        help="Tikhonov penalties lambda of the network's DSM loss"),
        "width": Field("list[int]", [32, 128], check=lambda v: 1 <= v <= 4096, rule="1..4096",
                       help="network widths"),
        "train_steps": Field("list[int]", [500, 2000], check=lambda v: 1 <= v <= 10**6,
                             rule="1..1e6", help="checkpoints sampled (training runs to the largest)"),
        "seeds": Field("list[int]", [0, 1], check=lambda v: v >= 0, rule="must be >= 0"),
        "calibration_seeds": Field("list[int]", [1000, 1001, 1002, 1003],
                                   check=lambda v: v >= 0, rule="must be >= 0",
                                   help="seeds of the c = 0 runs whose flow invariants K calibrate "
                                        "the theory (other training sets and sampling noise than "
                                        "`seeds`; must not overlap them)"),
    },
    "sampler": {
        "schedule": Field("str", "ve_bdkos25", choices=SAMPLER_SCHEDULES,
                          help="ve_bdkos25: official VE g = 10^t, t from 1 to 0 (c > 0) or t_end; "
                               "ve_10t: geometric sigma = 10^t from sigma_start to sigma_end, "
                               "Tweedie-denoised (earlier protocol)"),
        "method": Field("str", "rk45", choices=("rk45", "ode"),
                        help="rk45: scipy RK45 with rtol = atol = tol (official); ode: Heun with "
                             "`steps` steps uniform in log sigma (ends at t_end, not 0)"),
        "tol": Field("float", 1e-5, **_gt0, help="RK45 rtol = atol (official 1e-5)"),
        "t_end": Field("float", 1e-6, check=lambda v: 0 < v < 1, rule="0 < t_end < 1",
                       help="ve_bdkos25: end time of the singular scores (c = 0, floor)"),
        "steps": Field("int", 300, check=lambda v: 1 <= v <= 100000, rule="1..100000",
                       help="Heun steps of the probability-flow ODE (uniform in log sigma)"),
        "n_samples": Field("int", 1000, check=lambda v: 1 <= v <= 10**6, rule="1..1e6"),
        "sigma_start": Field("float", 10.0, check=lambda v: 0 < v <= 10, rule="0 < sigma_start <= 10",
                             help="initial noise level (sigma = 10^t, t <= 1)"),
        "sigma_end": Field("float", 1e-6, **_gt0, help="final noise level"),
        "dtype": Field("str", "float64", choices=("float32", "float64"),
                       help="precision of the closed-form runs (networks use network.dtype)"),
    },
    "network": {
        "kind": Field("str", "fourier_mlp", choices=tuple(NETWORKS),
                      help="fourier_mlp ([BDKOS25] reference) or residual_mlp ([ALD24])"),
        "depth": Field("int", 2, check=lambda v: 1 <= v <= 64, rule="1..64"),
        "lr": Field("float", 1e-3, **_gt0, help="Adam learning rate (full batch)"),
        "noise_draws": Field("int", 8, check=lambda v: v >= 1, rule="must be >= 1",
                             help="noise draws per training point per step"),
        "penalty_tau_ratio": Field("float", 1e-2, check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                                   help="lambda > 0: train and sample down to tau = ratio * lambda"),
        "dtype": Field("str", "float32", choices=("float32", "float64")),
        "schedule": Field("str", "linear_vp", choices=NETWORK_SCHEDULES,
                          help="linear_vp: trained and sampled on the VP schedule, t ~ U(t_end, 1) "
                               "(official); sampler: the closed-form runs' schedule, log-tau "
                               "noise levels (earlier protocol)"),
        "t_end": Field("float", 1e-3, check=lambda v: 0 < v < 1, rule="0 < t_end < 1",
                       help="linear_vp: smallest time trained and sampled (official eps 1e-3)"),
        "ema_decay": Field("float", 0.9999, check=lambda v: 0 <= v < 1, rule="0 <= v < 1",
                           help="EMA of the weights (official 0.9999; 0 = off)"),
    },
    "measure": {
        "collapse_tol": Field("float", 1e-2, **_gt0, help="collapse-fraction distance tol"),
        "fit_max_strength": Field("float", 1e-3, **_gt0,
                                  help="fit the Tikhonov distance exponent on 0 < c <= this"),
    },
}


# ----------------------------------------------------------------------------- theory
def tikhonov_distance_theory(c, flow_ratio, tol: float):
    """Small-c theory of the Tikhonov flow [BDKOS25] (*derived*, module docstring): each sample
    freezes at distance sqrt(c) K_i from its training point, K_i = |x_i - y_nn| / sigma the
    invariant of the c = 0 flow. Returns (median_i sqrt(c) K_i, fraction_i[sqrt(c) K_i < tol]) as
    arrays over c; c = 0 gives (0, 1): everything collapses."""
    c = np.atleast_1d(np.asarray(c, dtype=float))
    k = np.asarray(flow_ratio, dtype=float)
    if np.any(c < 0) or k.ndim != 1 or k.size == 0:
        raise ValueError("need c >= 0 and a non-empty 1-d array of flow ratios")
    dist = np.sqrt(c)[:, None] * k[None, :]
    return np.median(dist, axis=1), np.mean(dist < tol, axis=1)


def prediction_halfwidth(per_seed_fraction, theory, n_samples: int, z: float = 1.96):
    """Half-width of the interval in which one NEW seed's collapse fraction (n_samples samples)
    should fall around the theory pooled over J calibration seeds:

        z s sqrt(1 + 1/J),   s = max(std_j f_j, sqrt(max(p (1 - p), 1/(4 n)) / n)),

    f_j the theory fraction of calibration seed j alone (training-set plus sampling spread of one
    seed; ddof 1), floored at the binomial std of n samples at p = theory. Arrays over the last
    axis of `per_seed_fraction` (J) broadcast against `theory`."""
    f = np.asarray(per_seed_fraction, dtype=float)
    p = np.asarray(theory, dtype=float)
    j = f.shape[-1]
    spread = np.std(f, axis=-1, ddof=1) if j > 1 else np.zeros(f.shape[:-1])
    binom = np.sqrt(np.maximum(p * (1 - p), 0.25 / n_samples) / n_samples)
    return z * np.maximum(spread, binom) * math.sqrt(1 + 1 / j)


def power_law_exponent(x, y, x_max: float = np.inf) -> float:
    """Least-squares slope of log y against log x over 0 < x <= x_max with y > 0 finite: the
    exponent a of y ~ x^a (a = 1/2 for the median distance vs c [BDKOS25]); nan if < 2 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (x <= x_max) & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


# ----------------------------------------------------------------------------- cells
def schedule(cfg):
    """The closed-form runs' schedule: "ve_bdkos25" = `ExponentialVE` (g = 10^t, t in [0, 1],
    official [BDKOS25] code); "ve_10t" = VE with sigma(t) = 10^t exactly (sigma_min = 1 at t = 0,
    sigma_max = 10 at t = 1), extended down to t = log10(sigma_end)."""
    if cfg["sampler"]["schedule"] == "ve_bdkos25":
        return ExponentialVE()
    return GeometricVE(sigma_min=1.0, sigma_max=10.0, t_min=math.log10(cfg["sampler"]["sigma_end"]))


def network_schedule(cfg):
    """The networks' schedule: the [BDKOS25] VP (`LinearVP`, beta 0.001..3) or the sampler's."""
    return LinearVP() if cfg["network"]["schedule"] == "linear_vp" else schedule(cfg)


def _official(cfg) -> bool:
    return cfg["sampler"]["schedule"] == "ve_bdkos25"


def closed_form_end_time(cfg, regularizer: str, c: float = 0.0) -> float:
    """End time of a closed-form run: ve_bdkos25 integrates to t = 0 when the score is regular
    there (Tikhonov c > 0, RK45) and to t_end otherwise; ve_10t ends at sigma_end."""
    sch = schedule(cfg)
    if not _official(cfg):
        return float(sch.t_lo)
    regular = regularizer == "tikhonov" and c > 0 and cfg["sampler"]["method"] == "rk45"
    return 0.0 if regular else float(cfg["sampler"]["t_end"])


def _time_range(cfg, tau_end=None) -> tuple[float, float]:
    sch = schedule(cfg)
    t_end = sch.t_lo if tau_end is None else float(sch.time_of_tau(tau_end))
    return math.log10(cfg["sampler"]["sigma_start"]), t_end


def _reference_sigma_end(cfg) -> float:
    """sigma at the end of the c = 0 (reference) run."""
    t_end = closed_form_end_time(cfg, "reference")
    return math.sqrt(float(schedule(cfg).noise_var(t_end)))


def network_tau_end(cfg, lam: float) -> float:
    """Smallest noise variance a network with penalty lambda is trained and sampled at."""
    if cfg["network"]["schedule"] == "linear_vp":
        tau0 = float(LinearVP().tau(cfg["network"]["t_end"]))
    elif _official(cfg):
        tau0 = float(schedule(cfg).tau(cfg["sampler"]["t_end"]))
    else:
        tau0 = cfg["sampler"]["sigma_end"] ** 2
    return max(tau0, cfg["network"]["penalty_tau_ratio"] * lam)


def calibration_seeds(cfg) -> list[int]:
    """Seeds of the c = 0 reference runs that calibrate the theory (`grid.calibration_seeds`):
    ValueError unless non-empty and disjoint from `grid.seeds`, so that no evaluated run (its
    training set, its sampling noise) enters the prediction it is compared with."""
    g = cfg["grid"]
    calib = list(dict.fromkeys(g["calibration_seeds"]))
    overlap = sorted(set(calib) & set(g["seeds"]))
    if not calib:
        raise ValueError("grid.calibration_seeds is empty: the theory needs c = 0 runs on seeds "
                         "other than grid.seeds")
    if overlap:
        raise ValueError(f"grid.calibration_seeds {overlap} also in grid.seeds: the theory must be "
                         f"calibrated on other seeds than the runs it predicts")
    return calib


def cells(cfg) -> list[dict]:
    sp, g = cfg["sampler"], cfg["grid"]
    if not sp["sigma_end"] < sp["sigma_start"]:
        raise ValueError(f"sampler.sigma_end ({sp['sigma_end']}) must be below sigma_start "
                         f"({sp['sigma_start']})")
    regs = g["regularizer"]
    out = []
    if "tikhonov" in regs or "network" in regs:
        calib = calibration_seeds(cfg)
        out += [{"regularizer": "reference", "seed": s} for s in list(g["seeds"]) + calib]
    if "tikhonov" in regs:
        out += [{"regularizer": "tikhonov", "c": c, "seed": s}
                for c, s in itertools.product(g["c"], g["seeds"])]
    if "floor" in regs:
        out += [{"regularizer": "floor", "tau_floor": f, "seed": s}
                for f, s in itertools.product(g["tau_floor"], g["seeds"])]
    if "network" in regs:
        out += [{"regularizer": "network", "lambda": lam, "width": w, "seed": s}
                for lam, w, s in itertools.product(g["lambda"], g["width"], g["seeds"])]
    return out


def _distances(x, train) -> np.ndarray:
    from memphase.analysis.memorization import nearest_neighbors

    dist, _ = nearest_neighbors(x.to(torch.float64), train.to(torch.float64), k=1)
    return dist[:, 0].cpu().numpy()


def _summary(dist, tol) -> dict:
    return {"collapse_fraction": float(np.mean(dist < tol)), "median_distance": float(np.median(dist))}


def _run_flow(cfg, score, sch, seed, dtype, t_max, t_min, denoise, official_init=True):
    """Probability-flow ODE samples on `sch` from t_max to t_min: RK45 (rtol = atol = tol) or Heun
    (`steps`, uniform in log tau); official_init: initial samples sigma(t_max) z as the [BDKOS25]
    code (else the score's `initial_sample`)."""
    sp = cfg["sampler"]
    x_init = None
    if official_init:
        gen = torch.Generator().manual_seed(10_000 + seed)
        x_init = math.sqrt(float(sch.noise_var(t_max))) * torch.randn(
            sp["n_samples"], score.dim, generator=gen, dtype=torch.float64)
    kw = dict(rtol=sp["tol"], atol=sp["tol"], grid="linear") if sp["method"] == "rk45" else {}
    return sample(score, sch, sp["n_samples"], method=sp["method"], steps=sp["steps"],
                  t_max=t_max, t_min=t_min, seed=10_000 + seed, record=1, dtype=dtype,
                  denoise_final=denoise, x_init=x_init, **kw)


def _sample(cfg, score, seed, dtype, tau_end=None, denoise=True, t_end=None):
    """Closed-form (or legacy-network) samples: ve_bdkos25 from t = 1 to t_end (no Tweedie);
    ve_10t from sigma_start down to tau_end (default sigma_end^2), Tweedie-denoised."""
    if _official(cfg):
        t_min = float(cfg["sampler"]["t_end"]) if t_end is None else t_end
        if tau_end is not None:
            t_min = max(t_min, float(score.schedule.time_of_tau(tau_end)))
        return _run_flow(cfg, score, score.schedule, seed, dtype, 1.0, t_min, False)
    t_max, t_min = _time_range(cfg, tau_end)
    sp = cfg["sampler"]
    if sp["method"] == "rk45":
        return _run_flow(cfg, score, score.schedule, seed, dtype, t_max, t_min, denoise, False)
    return sample(score, score.schedule, sp["n_samples"], method="ode", steps=sp["steps"],
                  t_max=t_max, t_min=t_min, seed=10_000 + seed, record=1, dtype=dtype,
                  denoise_final=denoise)


def _closed_form_cell(cfg, cell, data) -> dict:
    sch, tol = schedule(cfg), cfg["measure"]["collapse_tol"]
    reg = cell["regularizer"]
    if reg == "reference" or (reg == "tikhonov" and cell["c"] == 0):
        score = EmpiricalScore(data, sch)
    elif reg == "tikhonov":
        score = TikhonovScore(data, sch, cell["c"])
    else:
        score = FloorNormalizedScore(data, sch, cell["tau_floor"])
    dtype, seed = cfg["sampler"]["dtype"], cell["seed"]
    t_end = closed_form_end_time(cfg, reg, cell.get("c", 0.0))
    if reg != "reference":
        return _summary(_distances(_sample(cfg, score, seed, dtype, t_end=t_end), data.x), tol)
    # the state at the end time before Tweedie, in float64: K = r / sigma needs r resolved
    x = _sample(cfg, score, seed, "float64", denoise=False, t_end=t_end)
    sigma_end = math.sqrt(float(sch.noise_var(t_end)))
    x0 = x if _official(cfg) else x + sigma_end**2 * score(x, float(t_end))
    return {**_summary(_distances(x0, data.x), tol),
            "flow_ratio": _distances(x, data.x) / sigma_end}


def _network_cell(cfg, cell, data) -> dict:
    nc, g, tol = cfg["network"], cfg["grid"], cfg["measure"]["collapse_tol"]
    sch = network_schedule(cfg)
    vp = nc["schedule"] == "linear_vp"
    checkpoints = sorted(g["train_steps"])
    tau_end = network_tau_end(cfg, cell["lambda"])
    tau_max = float(sch.tau(1.0)) if vp or _official(cfg) else cfg["sampler"]["sigma_start"] ** 2
    net = build_network(nc["kind"], cfg["data"]["d"], width=cell["width"], depth=nc["depth"],
                        data_var=cfg["data"]["variance"], seed=cell["seed"])
    tc = TrainConfig(steps=checkpoints[-1], noise_draws=nc["noise_draws"], lr=nc["lr"],
                     tikhonov=cell["lambda"], tau_min=tau_end, tau_max=tau_max,
                     checkpoint_steps=checkpoints, seed=cell["seed"], dtype=nc["dtype"],
                     ema_decay=nc["ema_decay"], time_sampling="uniform_t" if vp else "log_tau")
    res = train_score(data, sch, net, tc)
    frac, med, loss = [], [], []
    for step in checkpoints:
        net.load_state_dict(res.checkpoints[step])
        score = LearnedScore(net, sch)
        if vp:   # official: the VP probability-flow ODE from t = 1 to t(tau_end), no Tweedie
            x = _run_flow(cfg, score, sch, cell["seed"], nc["dtype"], 1.0,
                          float(sch.time_of_tau(tau_end)), False)
        else:
            x = _sample(cfg, score, cell["seed"], nc["dtype"], tau_end)
        s = _summary(_distances(x, data.x), tol)
        frac.append(s["collapse_fraction"])
        med.append(s["median_distance"])
        loss.append(float(np.mean(res.losses[max(0, step - max(1, step // 10)):step])))
    return {"collapse_fraction": np.asarray(frac), "median_distance": np.asarray(med),
            "final_loss": np.asarray(loss), "tau_end": tau_end, "train_seconds": res.seconds}


def run_cell(cfg, cell) -> dict:
    dc = cfg["data"]
    dtype = cfg["network"]["dtype"] if cell["regularizer"] == "network" else cfg["sampler"]["dtype"]
    data = isotropic_gaussian(dc["n_train"], dc["d"], dc["variance"], seed=cell["seed"], dtype=dtype)
    if cell["regularizer"] == "network":
        return _network_cell(cfg, cell, data)
    return _closed_form_cell(cfg, cell, data)


def estimate(cfg, cell) -> dict:
    """Rough cost, calibrated on 2 shared cores: closed forms ~1 ms + B N (d+1) x 20 ns per score
    evaluation (2 per Heun step); networks ~6 ms per optimizer step plus 6 P flop per training
    example and 2 P per sample evaluation (P parameters) at ~3 GFLOP/s."""
    sp, dc, nc = cfg["sampler"], cfg["data"], cfg["network"]
    n, d, b = dc["n_train"], dc["d"], sp["n_samples"]
    evals = 2 * sp["steps"] + 2
    mem = 8 * (4 * b * d + 2 * b * n + n * (d + 1)) + (1 << 20)
    if cell["regularizer"] != "network":
        return {"memory_bytes": int(mem), "seconds": evals * (1e-3 + 2e-8 * b * n * (d + 1))}
    w, steps = cell["width"], max(cfg["grid"]["train_steps"])
    n_ckpt = len(cfg["grid"]["train_steps"])
    with torch.device("meta"):     # shapes only: no memory, no initialization work
        params = count_parameters(build_network(nc["kind"], d, width=w, depth=nc["depth"],
                                                seed=None))
    flops = 6 * params * n * nc["noise_draws"] * steps + 2 * params * b * evals * n_ckpt
    mem += 4 * (4 * params + 4 * w * max(n * nc["noise_draws"], b))
    return {"memory_bytes": int(mem), "seconds": 6e-3 * steps + 1e-3 * evals * n_ckpt + flops / 3e9}


# ----------------------------------------------------------------------------- assemble
def _grid_of(cell_list, results, reg, axes, coords, keys):
    extra = (len(coords["train_steps"]),) if reg == "network" else ()
    pairs = [(c, r) for c, r in zip(cell_list, results) if c["regularizer"] == reg]
    return fill_grid(pairs, axes, coords, keys, extra)


def _attrs(units, long_name, **kw):
    return {"units": units, "long_name": long_name, **kw}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g, ms = cfg["grid"], cfg["measure"]
    regs, tol, fit_max = g["regularizer"], ms["collapse_tol"], ms["fit_max_strength"]
    seeds = list(g["seeds"])
    coords = {"seed": ("seed", np.asarray(seeds), _attrs(
        "1", "seed: training set, network init/DSM batches; sampling noise seed 10000 + seed"))}
    data_vars = {}
    lookup = {"c": g["c"], "tau_floor": g["tau_floor"], "lambda": g["lambda"], "width": g["width"],
              "train_steps": sorted(g["train_steps"]), "seed": seeds}
    calib_k = None
    if "tikhonov" in regs or "network" in regs:
        calib = calibration_seeds(cfg)
        ref = {c["seed"]: r for c, r in zip(cell_list, results) if c["regularizer"] == "reference"}
        flow = np.stack([np.asarray(ref[s]["flow_ratio"], float) for s in seeds])
        calib_flow = np.stack([np.asarray(ref[s]["flow_ratio"], float) for s in calib])
        calib_k = calib_flow.ravel()
        coords["sample"] = ("sample", np.arange(flow.shape[1]), _attrs("1", "generated sample index"))
        coords["calibration_seed"] = ("calibration_seed", np.asarray(calib), _attrs(
            "1", "seed of a c = 0 calibration run (training set, sampling noise 10000 + seed); "
                 "disjoint from seed"))
        sigma_end = _reference_sigma_end(cfg)
        data_vars["flow_ratio"] = (("seed", "sample"), flow, _attrs(
            "1", "c = 0 flow invariant K = |x - y_nn| / sigma at the end of the c = 0 run "
                 "(before Tweedie) of the evaluated seeds (diagnostic; not used by the theory)",
            sigma_end=sigma_end))
        data_vars["calibration_flow_ratio"] = (("calibration_seed", "sample"), calib_flow, _attrs(
            "1", "c = 0 flow invariant K of the calibration runs: the theory's only input",
            sigma_end=sigma_end))
        data_vars["reference_collapse_fraction"] = (("seed",), np.array(
            [ref[s]["collapse_fraction"] for s in seeds]), _attrs(
            "1", "collapse fraction of the empirical score (c = 0)"))
    data_vars["distance_exponent_theory"] = ((), 0.5, _attrs(
        "1", "median distance ~ strength^(1/2) for Tikhonov c and network lambda [BDKOS25]"))

    def theory(strengths):
        """(median, fraction) over strengths from the pooled K of the calibration seeds only."""
        return tikhonov_distance_theory(strengths, calib_k, tol)

    def theory_halfwidth(strengths, frac):
        """`prediction_halfwidth` from each calibration seed's own theory fraction."""
        per_seed = np.stack([tikhonov_distance_theory(strengths, calib_flow[j], tol)[1]
                             for j in range(calib_flow.shape[0])], axis=-1)
        return prediction_halfwidth(per_seed, frac, calib_flow.shape[1])

    calib_note = dict(calibration="K pooled over the calibration_seed runs (disjoint from seed)")

    if "tikhonov" in regs:
        coords["c"] = ("c", np.asarray(g["c"], float), _attrs(
            "data variance", "Tikhonov strength c of s_c = (xhat - x) / (sigma^2 + c)"))
        out = _grid_of(cell_list, results, "tikhonov", ("c", "seed"), lookup,
                       ("collapse_fraction", "median_distance"))
        med_th, frac_th = theory(g["c"])
        data_vars.update({
            "tikhonov_collapse_fraction": (("c", "seed"), out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (Tikhonov)")),
            "tikhonov_median_distance": (("c", "seed"), out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (Tikhonov)")),
            "tikhonov_collapse_fraction_theory": (("c",), frac_th, _attrs(
                "1", "P(sqrt(c) K < tol): small-c theory from the c = 0 flow invariant",
                **calib_note)),
            "tikhonov_collapse_fraction_theory_halfwidth": (("c",), theory_halfwidth(g["c"], frac_th),
                                                            _attrs(
                "1", "95% half-width for one evaluated seed around the theory: 1.96 s sqrt(1 + 1/J), "
                     "s the seed-to-seed std of the J calibration seeds' fractions (floored at the "
                     "binomial std); `prediction_halfwidth`", **calib_note)),
            "tikhonov_median_distance_theory": (("c",), med_th, _attrs(
                "data units", "sqrt(c) median K: small-c theory from the c = 0 flow invariant",
                **calib_note)),
            "tikhonov_distance_exponent": (("seed",), np.array([power_law_exponent(
                g["c"], out["median_distance"][:, i], fit_max) for i in range(len(seeds))]), _attrs(
                "1", "fitted exponent a of median distance ~ c^a", fit_range=f"0 < c <= {fit_max:g}")),
        })
    if "floor" in regs:
        coords["tau_floor"] = ("tau_floor", np.asarray(g["tau_floor"], float), _attrs(
            "1", "floor of the unnormalized mixture mass, w = e^l / max(sum e^l, tau_floor)"))
        out = _grid_of(cell_list, results, "floor", ("tau_floor", "seed"), lookup,
                       ("collapse_fraction", "median_distance"))
        data_vars.update({
            "floor_collapse_fraction": (("tau_floor", "seed"), out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (floor)")),
            "floor_median_distance": (("tau_floor", "seed"), out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (floor)")),
        })
    if "network" in regs:
        lam = np.asarray(g["lambda"], float)
        coords["lambda"] = ("lambda", lam, _attrs(
            "data variance", "Tikhonov penalty lambda of the DSM loss (minimizer: c = lambda)"))
        coords["width"] = ("width", np.asarray(g["width"]), _attrs("1", "network width"))
        coords["train_steps"] = ("train_steps", np.asarray(lookup["train_steps"]), _attrs(
            "1", "optimizer steps at the sampled checkpoint"))
        axes = ("lambda", "width", "seed")
        out = _grid_of(cell_list, results, "network", axes, lookup,
                       ("collapse_fraction", "median_distance", "final_loss"))
        dims = axes + ("train_steps",)
        med_th, frac_th = theory(lam)
        expo = np.apply_along_axis(lambda y: power_law_exponent(lam, y), 0,
                                   out["median_distance"])
        data_vars.update({
            "network_collapse_fraction": (dims, out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (network)")),
            "network_median_distance": (dims, out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (network)")),
            "network_final_loss": (dims, out["final_loss"], _attrs(
                "1", "mean DSM loss (eq. L, per dimension) over the last 10% of steps")),
            "network_tau_end": (("lambda",), np.array([network_tau_end(cfg, v) for v in lam]), _attrs(
                "data variance", "smallest tau trained and sampled: max(tau_0, ratio lambda)")),
            "network_collapse_fraction_theory": (("lambda",), frac_th, _attrs(
                "1", "Tikhonov theory at c = lambda (infinite capacity)", **calib_note)),
            "network_median_distance_theory": (("lambda",), med_th, _attrs(
                "data units", "Tikhonov theory sqrt(lambda) median K (infinite capacity)",
                **calib_note)),
            "network_distance_exponent": (("width", "seed", "train_steps"), expo, _attrs(
                "1", "fitted exponent a of median distance ~ lambda^a (1/2 at infinite capacity)",
                fit_range="all lambda > 0 of the grid")),
        })
    sp, dc, nc = cfg["sampler"], cfg["data"], cfg["network"]
    data_str = f"[BDKOS25] N = {dc['n_train']} points of N(0, {dc['variance']:g} I_{dc['d']}), "
    method = (f"RK45 (rtol = atol = {sp['tol']:g})" if sp["method"] == "rk45"
              else f"Heun ({sp['steps']} steps uniform in log sigma)")
    if _official(cfg):
        setting = (data_str + "official VE g = 10^t, sigma^2 = (10^{2t} - 1)/(2 ln 10), "
                   f"probability-flow ODE by {method} from t = 1 (x = sigma(1) z) to t = 0 "
                   f"(Tikhonov c > 0) or t = {sp['t_end']:g} (c = 0, floor), no Tweedie")
    else:
        setting = (data_str + f"VE sigma = 10^t, probability-flow ODE ({method}) from sigma = "
                   f"{sp['sigma_start']:g} to {sp['sigma_end']:g}, Tweedie-denoised")
    net_sched = (f"trained (t ~ U) and sampled on the VP schedule beta 0.001..3 down to t = "
                 f"{nc['t_end']:g}" if nc["schedule"] == "linear_vp"
                 else "trained (log tau) and sampled on the sampler's schedule")
    extra = {} if calib_k is None else {"calibration_seeds": np.asarray(calibration_seeds(cfg),
                                                                         dtype=np.int64)}
    return xr.Dataset(data_vars, coords=coords, attrs={**extra,
        "setting": setting,
        "schedule": sp["schedule"],
        "collapse_tol": tol,
        "n_samples": sp["n_samples"],
        "network": f"{nc['kind']} depth {nc['depth']}, Adam lr {nc['lr']:g}, full batch x "
                   f"{nc['noise_draws']} noise draws, EMA {nc['ema_decay']:g}, {nc['dtype']}, "
                   + net_sched,
        "theory": "c = 0 collapses every sample; distance sqrt(c) K_i with K_i the c = 0 flow "
                  "invariant (module docstring of memphase.simulate.experiments.regularization), "
                  "calibrated on the calibration_seed runs, disjoint from the evaluated seeds",
    })


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.regularization_plots import plot_regularization

    plot_regularization(ds, path)
