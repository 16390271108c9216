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
Training sets and initial noise: memphase's own per seed by default (`data.generator = "seeded"`,
`sampler.latents = "seeded"`); the official variant (`"bdkos25"` for both, `bdkos25_official`;
data/configs/regularization_official.toml) uses the official training set and the official
notebooks' latents for the evaluated seeds (docs/conformance/bdkos25.md).
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
(`memphase.simulate.learning.training` docstring), so the same curves are its infinite-capacity limit.

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

from ..run.config import Field
from ..data import isotropic_gaussian
from ..learning.networks import NETWORKS, build_network, count_parameters
from ..sampling import sample
from ..scores import EmpiricalScore, FloorNormalizedScore, LearnedScore, TikhonovScore
from ..learning.training import TrainConfig, train_score
from . import bdkos25_official
from .regularization_results import assemble  # noqa: F401 (the experiment's assemble)
from .regularization_setup import (_official, _time_range, calibration_seeds,  # noqa: F401
                                   closed_form_end_time, network_schedule, network_tau_end,
                                   schedule)
from .regularization_theory import (power_law_exponent, prediction_halfwidth,  # noqa: F401
                                    tikhonov_distance_theory)

REGULARIZERS = ("tikhonov", "floor", "network")
GENERATORS = ("seeded", "bdkos25")
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
        "generator": Field("str", "seeded", choices=GENERATORS,
                           help="seeded: isotropic_gaussian(n_train, d, variance, seed) per seed; "
                                "bdkos25: the official [BDKOS25] training set (numpy legacy seed "
                                "1, 20 points of N(0, I_2)) for every evaluated seed (calibration "
                                "seeds keep their own sets)"),
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
        "t_end": Field("float", 1e-6, check=lambda v: 1e-30 <= v < 1,
                       rule="1e-30 <= t_end < 1: sigma^2(t) ~ t near 0, and below eps^2 ~ 5e-32 "
                            "the noise is under float64's resolution of unit-scale data",
                       help="ve_bdkos25: end time of the singular scores (c = 0, floor)"),
        "steps": Field("int", 300, check=lambda v: 1 <= v <= 100000, rule="1..100000",
                       help="Heun steps of the probability-flow ODE (uniform in log sigma)"),
        "n_samples": Field("int", 1000, check=lambda v: 1 <= v <= 10**6, rule="1..1e6"),
        "sigma_start": Field("float", 10.0, check=lambda v: 0 < v <= 10, rule="0 < sigma_start <= 10",
                             help="initial noise level (sigma = 10^t, t <= 1)"),
        "sigma_end": Field("float", 1e-6, **_gt0, help="final noise level"),
        "dtype": Field("str", "float64", choices=("float32", "float64"),
                       help="precision of the closed-form runs (networks use network.dtype)"),
        "latents": Field("str", "seeded", choices=GENERATORS,
                         help="initial noise z of the closed-form runs of the evaluated seeds: "
                              "seeded (torch generator 10000 + seed) or bdkos25 (the official "
                              "notebooks' torch-seed-0 latents, n_samples <= 1000; Tikhonov and "
                              "reference from VE_TikonovRegularization, floor from VE_EmpircalBayes)"),
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
        "t_end": Field("float", 1e-3, check=lambda v: 1e-8 <= v < 1,
                       rule="1e-8 <= t_end < 1: the schedule takes times within 1e-9 of 0 as 0 "
                            "(tau = 0, a singular score)",
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


# ----------------------------------------------------------------------------- cells
def cells(cfg) -> list[dict]:
    sp, g = cfg["sampler"], cfg["grid"]
    if not sp["sigma_end"] < sp["sigma_start"]:
        raise ValueError(f"sampler.sigma_end ({sp['sigma_end']}) must be below sigma_start "
                         f"({sp['sigma_start']})")
    dc = cfg["data"]
    if dc["generator"] == "bdkos25" and (dc["n_train"], dc["d"], dc["variance"]) != (
            bdkos25_official.N_TRAIN, bdkos25_official.DIM, 1.0):
        raise ValueError(f"data.generator = \"bdkos25\" is the official set of 20 points of "
                         f"N(0, I_2): needs n_train = 20, d = 2, variance = 1 (got {dc['n_train']}, "
                         f"{dc['d']}, {dc['variance']:g})")
    if sp["latents"] == "bdkos25" and (sp["n_samples"] > bdkos25_official.N_LATENTS
                                       or dc["d"] != bdkos25_official.DIM or not _official(cfg)):
        raise ValueError("sampler.latents = \"bdkos25\" needs sampler.schedule = \"ve_bdkos25\", "
                         f"d = 2 and n_samples <= {bdkos25_official.N_LATENTS} (the official draw)")
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


def _run_flow(cfg, score, sch, seed, dtype, t_max, t_min, denoise, official_init=True,
              latents=None):
    """Probability-flow ODE samples on `sch` from t_max to t_min: RK45 (rtol = atol = tol) or Heun
    (`steps`, uniform in log tau); official_init: initial samples sigma(t_max) z as the [BDKOS25]
    code (else the score's `initial_sample`), z = `latents` if given, else drawn from seed
    10000 + seed."""
    sp = cfg["sampler"]
    x_init = None
    if official_init:
        if latents is None:
            gen = torch.Generator().manual_seed(10_000 + seed)
            latents = torch.randn(sp["n_samples"], score.dim, generator=gen, dtype=torch.float64)
        x_init = math.sqrt(float(sch.noise_var(t_max))) * latents
    kw = dict(rtol=sp["tol"], atol=sp["tol"], grid="linear") if sp["method"] == "rk45" else {}
    return sample(score, sch, sp["n_samples"], method=sp["method"], steps=sp["steps"],
                  t_max=t_max, t_min=t_min, seed=10_000 + seed, record=1, dtype=dtype,
                  denoise_final=denoise, x_init=x_init, **kw)


def _sample(cfg, score, seed, dtype, tau_end=None, denoise=True, t_end=None, latents=None):
    """Closed-form (or legacy-network) samples: ve_bdkos25 from t = 1 to t_end (no Tweedie);
    ve_10t from sigma_start down to tau_end (default sigma_end^2), Tweedie-denoised."""
    if _official(cfg):
        t_min = float(cfg["sampler"]["t_end"]) if t_end is None else t_end
        if tau_end is not None:
            t_min = max(t_min, float(score.schedule.time_of_tau(tau_end)))
        return _run_flow(cfg, score, score.schedule, seed, dtype, 1.0, t_min, False,
                         latents=latents)
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
    lat = None
    if cfg["sampler"]["latents"] == "bdkos25" and not _is_calibration(cfg, cell):
        lat = bdkos25_official.latents("floor" if reg == "floor" else "tikhonov",
                                       cfg["sampler"]["n_samples"])
    if reg != "reference":
        return _summary(_distances(_sample(cfg, score, seed, dtype, t_end=t_end, latents=lat),
                                   data.x), tol)
    # the state at the end time before Tweedie, in float64: K = r / sigma needs r resolved
    x = _sample(cfg, score, seed, "float64", denoise=False, t_end=t_end, latents=lat)
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


def _is_calibration(cfg, cell) -> bool:
    """A c = 0 run of a calibration seed (those never take the official training set or latents)."""
    return cell["regularizer"] == "reference" and cell["seed"] in cfg["grid"]["calibration_seeds"]


def training_data(cfg, cell, dtype):
    """The cell's training set: the official [BDKOS25] set (`data.generator = "bdkos25"`,
    evaluated seeds) or isotropic_gaussian(n_train, d, variance, seed)."""
    dc = cfg["data"]
    if dc["generator"] == "bdkos25" and not _is_calibration(cfg, cell):
        return bdkos25_official.training_set(dtype)
    return isotropic_gaussian(dc["n_train"], dc["d"], dc["variance"], seed=cell["seed"], dtype=dtype)


def run_cell(cfg, cell) -> dict:
    dtype = cfg["network"]["dtype"] if cell["regularizer"] == "network" else cfg["sampler"]["dtype"]
    data = training_data(cfg, cell, dtype)
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


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.regularization import plot_regularization

    plot_regularization(ds, path)
