"""Training dynamics of memorization [BUBM25]: when a learned score starts to memorize.

[BUBM25] Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638: a network trained by DSM on N points
generalizes after tau_gen (independent of N) and memorizes after tau_mem proportional to N.

Each cell (N, seed, width, depth, d, data model, learning rate, batch size) trains ONE network by
DSM (`memphase.simulate.learning.training`, constant learning rate by default so that steps measure time) and keeps
about `training.checkpoints` log-spaced checkpoints from `first_checkpoint` to the budget
`training.steps`. At each checkpoint (`evaluate_checkpoint`):
  - memorization: the [GDPLLW23] memorization ratio (|x - NN_1| / |x - NN_2| < 1/3) and the
    [BDKOS25] collapse fraction of reverse-SDE samples (same sampling noise at every checkpoint);
  - generalization: the relative error of the learned score against the population score (and,
    beside it, against the empirical score) at the mid noise level tau = measure.mid_tau, on
    fresh points of the noised true law; the Gaussian moment KL and the sliced Wasserstein
    distance between the samples and the true law (a fresh reference sample);
  - the DSM loss on the training set and on a held-out set, with fixed noise draws
    (`memphase.simulate.learning.checkpoints.fixed_dsm_loss`), and the running training loss.
The Dataset adds tau_gen(n_train), tau_mem(n_train), tau_mem_censored and the power-law fits
tau_mem ~ N^a, tau_gen ~ N^b with their intervals (`memphase.analysis.training_dynamics`).

Data: N(0, std^2 I_d) (intrinsic_dim = 0) or a linear manifold of dimension k = intrinsic_dim
[ALD24] (std along the manifold, normal_std off it); fresh points are drawn from the same law.
Seeds: see SEED_STREAMS.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from memphase.physics.schedules import make_schedule

from ..learning.checkpoints import fixed_dsm_loss, log_checkpoints, over_checkpoints
from ..run.config import ConfigError, Field
from ..run.cost import with_manifold_basis
from ..data import isotropic_gaussian, linear_manifold
from ..learning.networks import NETWORKS, build_network, count_parameters
from ..scores import EmpiricalScore, GaussianScore
from ..learning.training import OPTIMIZERS, TrainConfig, train_score
from .common import reverse_run, sampler_schema, sampler_time_range
from .recipes import check_networks
from .training_dynamics_bubm25 import (SEED_STREAMS_BUBM25, bubm25_checkpoints, estimate_bubm25,
                                       run_cell_bubm25)
from ..learning.ddpm import DDPM_OPTIMIZERS

__all__ = ["SCHEMA", "cells", "run_cell", "assemble", "plot", "estimate", "Probe", "make_probe",
           "evaluate_checkpoint", "checkpoint_steps", "quick_config", "GRID_AXES"]

PROTOCOLS = ("memphase", "bubm25")
_pos = dict(check=lambda v: v > 0, rule="must be > 0")
_nonneg = dict(check=lambda v: v >= 0, rule="must be >= 0")

GRID_AXES = ("d", "intrinsic_dim", "width", "depth", "lr", "batch_size", "n_train", "seed")
QUALITIES = ("score_error_population", "sliced_wasserstein", "gaussian_kl")

SCHEMA = {
    "job": Field("str", choices=("training_dynamics",)),
    "output": Field("str", "data/results/training_dynamics.h5"),
    "protocol": Field("str", "memphase", choices=PROTOCOLS,
                      help="memphase: Gaussian data, log-tau DSM network, reverse SDE; bubm25: "
                           "the [BUBM25] two-cluster DDPM protocol (`memphase docs bubm25`)"),
    "data": {
        "std": Field("float", 1.0, **_pos, help="std of every (tangent) direction"),
        "normal_std": Field("float", 0.0, **_nonneg, help="std off the manifold (k > 0 only)"),
    },
    "grid": {
        "n_train": Field("list[int]", [32, 64, 128, 256, 512, 1024],
                         check=lambda v: 2 <= v <= 10**6, rule="2..1e6"),
        "seeds": Field("list[int]", [0, 1, 2], **_nonneg),
        "width": Field("list[int]", [256], check=lambda v: 1 <= v <= 4096, rule="1..4096"),
        "depth": Field("list[int]", [2], check=lambda v: 1 <= v <= 64, rule="1..64"),
        "d": Field("list[int]", [8], check=lambda v: 1 <= v <= 4096, rule="1..4096"),
        "intrinsic_dim": Field("list[int]", [0], **_nonneg,
                               help="0: isotropic Gaussian in d; k >= 1: linear manifold of dim k"),
        "lr": Field("list[float]", [1e-3], **_pos, help="learning rate"),
        "batch_size": Field("list[int]", [32], **_nonneg,
                            help="training points per step (0: full batch; min(batch, N))"),
    },
    "training": {
        "steps": Field("int", 10000, check=lambda v: 1 <= v <= 10**7, rule="1..1e7",
                       help="training budget (optimizer steps); the last checkpoint"),
        "checkpoints": Field("int", 20, check=lambda v: 2 <= v <= 200, rule="2..200",
                             help="log-spaced checkpoints from first_checkpoint to steps"),
        "first_checkpoint": Field("int", 50, check=lambda v: v >= 1, rule="must be >= 1",
                                  help="first checkpoint (the generalization optimum of small "
                                       "networks on d = 8 data comes before 200 steps)"),
        "network": Field("str", "residual_mlp", choices=tuple(NETWORKS)),
        "embedding_dim": Field("int", 32, check=lambda v: v >= 2 and v % 2 == 0, rule="even >= 2"),
        "optimizer": Field("str", "adam", choices=OPTIMIZERS),
        "lr_schedule": Field("str", "constant", choices=("constant", "cosine"),
                             help="constant: steps measure training time"),
        "noise_draws": Field("int", 1, check=lambda v: v >= 1, rule="must be >= 1"),
        "weight_decay": Field("float", 0.0, **_nonneg),
        "ema_decay": Field("float", 0.0, check=lambda v: 0 <= v < 1, rule="in [0, 1)"),
        "skip": Field("bool", False, help="linear Gaussian skip in the network output"),
    },
    "bubm25": {
        "mu": Field("float", 1.0, **_pos, help="cluster means +-mu (1, ..., 1)"),
        "sigma": Field("float", 1.0, **_pos, help="cluster std"),
        "timesteps": Field("int", 1000, check=lambda v: 2 <= v <= 10**5, rule="2..1e5",
                           help="DDPM steps T (linear betas)"),
        "beta_start": Field("float", 1e-4, **_pos),
        "beta_end": Field("float", 2e-2, check=lambda v: 0 < v < 1, rule="in (0, 1)"),
        "momentum": Field("float", 0.95, check=lambda v: 0 <= v < 1, rule="in [0, 1)",
                          help="SGD momentum when training.optimizer = 'sgd_momentum'"),
        "sampler": Field("str", "ddim", choices=("ddim", "ddpm"),
                         help="ddim: deterministic DDIM on sampler_steps; ddpm: ancestral, T steps"),
        "sampler_steps": Field("int", 100, check=lambda v: v >= 2, rule="must be >= 2"),
        "n_samples": Field("int", 1000, check=lambda v: v >= 2, rule="must be >= 2",
                           help="generated samples per checkpoint for f_mem"),
        "checkpoint_grid": Field("str", "official", choices=("official", "log"),
                                 help="official: the [BUBM25] evaluation grid up to the budget; "
                                      "log: training.checkpoints log-spaced from first_checkpoint"),
    },
    "sampler": sampler_schema(steps=100, n_samples=256, t_max_tau=10.0, dtype="float32",
                              record=2),
    "measure": {
        "ratio_threshold": Field("float", 1 / 3, check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                                 help="[GDPLLW23] |x-NN1|/|x-NN2| threshold"),
        "collapse_tol": Field("float", 1e-2, **_pos),
        "mem_threshold": Field("float", 0.5, check=lambda v: 0 < v <= 1, rule="in (0, 1]",
                               help="tau_mem: memorization ratio crossing this"),
        "gen_quality": Field("str", "score_error_population", choices=QUALITIES,
                             help="quality measure defining tau_gen"),
        "gen_tolerance": Field("float", 0.2, **_nonneg,
                               help="tau_gen: quality <= (1 + tol) x its best"),
        "mid_tau": Field("float", 1.0, **_pos,
                         help="noise variance (data units) of the score-error measurement"),
        "n_eval": Field("int", 1024, check=lambda v: v >= 2, rule="must be >= 2",
                        help="points for the score error, and the held-out set size"),
        "n_reference": Field("int", 4096, check=lambda v: v >= 2, rule="must be >= 2",
                             help="fresh samples of the true law for the sliced Wasserstein"),
        "n_projections": Field("int", 128, check=lambda v: v >= 1, rule="must be >= 1"),
        "loss_draws": Field("int", 4, check=lambda v: v >= 1, rule="must be >= 1",
                            help="fixed (tau, z) draws per point for train/held-out DSM loss"),
        "loss_window": Field("int", 50, check=lambda v: v >= 1, rule="must be >= 1",
                             help="steps averaged in the running training loss"),
    },
}

SEED_STREAMS = ("training set: seed; held-out set and score-error points: SeedSequence (seed, 1);"
                " reference samples: (seed, 2); network init: 1009 seed; training noise: seed; "
                "sampling noise: 10000 + seed (the same at every checkpoint); DSM-loss draws: "
                "20000 + seed; noise of the score-error points: 30000 + seed; "
                "sliced-Wasserstein projections: seed")


def quick_config(**overrides) -> dict:
    """A validated tiny config (seconds): d = 4, N = 8 and 256, width 64, 1500 steps."""
    from ..run.config import validate

    raw = {"job": "training_dynamics",
           "grid": {"n_train": [8, 256], "seeds": [0], "width": [64], "d": [4]},
           "training": {"steps": 1500, "checkpoints": 8, "first_checkpoint": 50},
           "sampler": {"steps": 40, "n_samples": 128},
           "measure": {"n_eval": 256, "n_reference": 512, "n_projections": 32, "loss_draws": 2}}
    for key, val in overrides.items():
        if isinstance(val, dict):
            raw.setdefault(key, {}).update(val)
        else:
            raw[key] = val
    return validate(raw, SCHEMA)


# ------------------------------------------------------------------------------- cells
def checkpoint_steps(cfg) -> list[int]:
    """The checkpoint steps of the config: log-spaced (`memphase.simulate.learning.checkpoints.log_checkpoints`),
    or for protocol bubm25 its own grid (`training_dynamics_bubm25.bubm25_checkpoints`)."""
    if cfg.get("protocol", "memphase") == "bubm25":
        return bubm25_checkpoints(cfg)
    t = cfg["training"]
    return log_checkpoints(min(t["first_checkpoint"], t["steps"]), t["steps"], t["checkpoints"])


def cells(cfg) -> list[dict]:
    g = cfg["grid"]
    sampler_time_range(cfg)
    for d, k in itertools.product(g["d"], g["intrinsic_dim"]):
        if k > d:
            raise ConfigError(f"grid.intrinsic_dim = {k} exceeds d = {d}")
    if cfg["training"]["first_checkpoint"] > cfg["training"]["steps"]:
        raise ConfigError(f"training.first_checkpoint ({cfg['training']['first_checkpoint']}) "
                          f"exceeds training.steps ({cfg['training']['steps']})")
    if cfg["protocol"] == "bubm25":
        _check_bubm25(cfg)
    else:
        check_networks([cfg["training"]["network"]], g["d"])
    lists = [g["seeds" if a == "seed" else a] for a in GRID_AXES]
    return [dict(zip(GRID_AXES, vals)) for vals in itertools.product(*lists)]


# ------------------------------------------------------------------------------- data
@dataclass
class Probe:
    """What every checkpoint is measured against: the training set x (N, d), a held-out set and
    score-error points (n_eval, d) and reference samples (n_reference, d) of the true law, the
    population score of that law, the empirical score of x, and the law's mean and covariance."""

    x: torch.Tensor
    heldout: torch.Tensor
    reference: np.ndarray
    population: GaussianScore
    empirical: EmpiricalScore
    mean: np.ndarray
    cov: np.ndarray


def _fresh(cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of N(0, cov) (cov may be singular): z diag(sqrt(lambda)) U^T."""
    lam, u = np.linalg.eigh(cov)
    return (rng.standard_normal((n, len(lam))) * np.sqrt(np.clip(lam, 0, None))) @ u.T


def make_probe(cfg, cell, schedule) -> Probe:
    """The cell's training set (seed) and its `Probe` (seed streams in SEED_STREAMS)."""
    dc, m = cfg["data"], cfg["measure"]
    d, k, n, seed = cell["d"], cell["intrinsic_dim"], cell["n_train"], cell["seed"]
    if k == 0:
        data = isotropic_gaussian(n, d, dc["std"] ** 2, seed=seed, dtype="float64")
    else:
        data = linear_manifold(n, d, [(k, dc["std"])], normal_std=dc["normal_std"], seed=seed,
                               dtype="float64")
    dt = getattr(torch, cfg["sampler"]["dtype"])
    dev = cfg["sampler"]["device"]
    x = data.x.to(dtype=dt, device=dev)
    held = _fresh(data.cov, m["n_eval"], np.random.default_rng([seed, 1]))
    ref = _fresh(data.cov, m["n_reference"], np.random.default_rng([seed, 2]))
    return Probe(x=x, heldout=torch.as_tensor(held, dtype=dt, device=dev), reference=ref,
                 population=GaussianScore(data.mean, data.cov, schedule),
                 empirical=EmpiricalScore(x, schedule), mean=data.mean, cov=data.cov)


# ------------------------------------------------------------------------------- measurement
def evaluate_checkpoint(cfg, score, probe: Probe, seed: int) -> dict:
    """Every per-checkpoint measurement of a score (any score; the DSM losses need a
    LearnedScore): memorization_ratio, collapse_fraction, score_error_population,
    score_error_empirical, gaussian_kl, sliced_wasserstein, train_loss, heldout_loss.
    Samples use sampling seed 10000 + seed, the loss draws 20000 + seed; the score errors are
    averaged over x = m (y + sqrt(mid_tau) z), y the held-out points, z seeded 30000 + seed."""
    from memphase.analysis.generalization import (gaussian_moment_kl, relative_score_error,
                                         sliced_wasserstein)
    from memphase.analysis.memorization import collapse_fraction, memorization_ratio

    m = cfg["measure"]
    sch = make_schedule(cfg["sampler"]["schedule"])
    x = reverse_run(cfg, score, sch, 10_000 + seed)
    t_mid = float(sch.time_of_tau(m["mid_tau"]))
    x_mid = float(sch.mean_scale(t_mid)) * (
        probe.heldout + math.sqrt(m["mid_tau"]) * _eval_noise(probe.heldout, seed))
    out = {
        "memorization_ratio": memorization_ratio(x, probe.x, m["ratio_threshold"]),
        "collapse_fraction": collapse_fraction(x, probe.x, m["collapse_tol"]),
        "score_error_population": relative_score_error(score, probe.population, x_mid, t_mid),
        "score_error_empirical": relative_score_error(score, probe.empirical, x_mid, t_mid),
        "gaussian_kl": gaussian_moment_kl(x, probe.mean, probe.cov),
        "sliced_wasserstein": sliced_wasserstein(x, probe.reference, m["n_projections"], seed),
        "train_loss": math.nan, "heldout_loss": math.nan,
    }
    net = getattr(score, "network", None)
    if net is not None:
        tau_range = sampler_tau_range(cfg)
        for key, pts in (("train_loss", probe.x), ("heldout_loss", probe.heldout)):
            out[key] = fixed_dsm_loss(net, pts, sch, tau_range, m["loss_draws"], 20_000 + seed)
    return out


def _eval_noise(like: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(30_000 + seed)
    return torch.randn(like.shape, generator=g, dtype=torch.float64).to(like)


def sampler_tau_range(cfg) -> tuple[float, float]:
    """(tau_min, tau_max) trained on: the sampler's range in data units."""
    sp = cfg["sampler"]
    return float(sp["t_min_tau"]), float(sp["t_max_tau"])


def train_config(cfg, cell) -> TrainConfig:
    """The cell's DSM TrainConfig: budget, checkpoints, noise range = the sampler's tau range."""
    t, sp = cfg["training"], cfg["sampler"]
    lo, hi = sampler_tau_range(cfg)
    return TrainConfig(
        steps=t["steps"], batch_size=cell["batch_size"] or None, noise_draws=t["noise_draws"],
        lr=cell["lr"], lr_schedule=t["lr_schedule"], optimizer=t["optimizer"],
        weight_decay=t["weight_decay"], ema_decay=t["ema_decay"], tau_min=lo, tau_max=hi,
        checkpoint_steps=tuple(checkpoint_steps(cfg)), seed=cell["seed"], dtype=sp["dtype"],
        device=sp["device"])


def build_cell_network(cfg, cell):
    """The cell's network (init seed 1009 seed), data variance = the law's mean variance."""
    t = cfg["training"]
    key = "fourier_dim" if t["network"] == "fourier_mlp" else "emb_dim"
    d, k, dc = cell["d"], cell["intrinsic_dim"], cfg["data"]
    var = dc["std"] ** 2 if k == 0 else (k * dc["std"] ** 2 + (d - k) * dc["normal_std"] ** 2) / d
    return build_network(t["network"], cell["d"], seed=1009 * cell["seed"], width=cell["width"],
                         depth=cell["depth"], data_var=max(var, 1e-6), skip=t["skip"],
                         **{key: t["embedding_dim"]})


def _check_bubm25(cfg) -> None:
    """One-line ConfigError for a bubm25-protocol config this protocol cannot run."""
    g, t, b = cfg["grid"], cfg["training"], cfg["bubm25"]
    if t["optimizer"] not in DDPM_OPTIMIZERS:
        raise ConfigError(f"protocol bubm25 trains with training.optimizer in "
                          f"{list(DDPM_OPTIMIZERS)}, got {t['optimizer']!r}")
    if any(k != 0 for k in g["intrinsic_dim"]):
        raise ConfigError("protocol bubm25 draws two Gaussian clusters: grid.intrinsic_dim must be [0]")
    odd = [n for n in g["n_train"] if n % 2]
    if odd:
        raise ConfigError(f"protocol bubm25 needs even grid.n_train (two equal clusters), got {odd}")
    if b["sampler_steps"] > b["timesteps"]:
        raise ConfigError(f"bubm25.sampler_steps ({b['sampler_steps']}) exceeds bubm25.timesteps "
                          f"({b['timesteps']})")
    if b["beta_end"] < b["beta_start"] or b["beta_end"] * 1000 / b["timesteps"] >= 1:
        raise ConfigError(f"bubm25 needs beta_start <= beta_end and beta_end 1000 / timesteps < 1, "
                          f"got {b['beta_start']:g}, {b['beta_end']:g}, T = {b['timesteps']}")


def run_cell(cfg, cell) -> dict:
    from memphase.analysis.generalization import sliced_wasserstein

    if cfg["protocol"] == "bubm25":
        return run_cell_bubm25(cfg, cell)

    sch = make_schedule(cfg["sampler"]["schedule"])
    probe = make_probe(cfg, cell, sch)
    net = build_cell_network(cfg, cell)
    res = train_score(probe.x, sch, net, train_config(cfg, cell))
    curves = over_checkpoints(net, res, sch,
                              lambda s: evaluate_checkpoint(cfg, s, probe, cell["seed"]))
    w = cfg["measure"]["loss_window"]
    running = [float(np.mean(res.losses[max(0, k - w):k])) for k in curves["train_step"]]
    m = cfg["measure"]
    return {
        **{k: v for k, v in curves.items() if k != "train_step"},
        "train_loss_running": np.asarray(running),
        "sliced_wasserstein_train": sliced_wasserstein(probe.x, probe.reference,
                                                       m["n_projections"], cell["seed"]),
        "parameters": count_parameters(net),
        "train_seconds": res.seconds,
    }


def estimate(cfg, cell) -> dict:
    if cfg.get("protocol", "memphase") == "bubm25":
        return estimate_bubm25(cfg, cell)
    return _estimate_memphase(cfg, cell)


def _estimate_memphase(cfg, cell) -> dict:
    """Rough cost on one CPU thread. Training: steps x (0.5 ms (depth + 2) + 6 B P / 5e10 s),
    B = batch x noise draws, P ~ depth (w^2 + e w) + 2 d w parameters (measured: width 256,
    depth 2, d = 8, B = 128: 16000 steps and 14 checkpoints ~ 59 s of CPU); per checkpoint:
    sampler steps x (2 n_samples P / 5e10 s + 0.2 ms (depth + 2)) plus the score-error, loss
    and nearest-neighbour passes. Memory: checkpoints (4 P bytes each), Adam, activations, the
    probe sets."""
    t, sp, m = cfg["training"], cfg["sampler"], cfg["measure"]
    d, n, w, depth = cell["d"], cell["n_train"], cell["width"], cell["depth"]
    p = depth * (w * w + t["embedding_dim"] * w) + 2 * d * w
    b = (min(cell["batch_size"], n) if cell["batch_size"] else n) * t["noise_draws"]
    train_s = t["steps"] * (0.5e-3 * (depth + 2) + 6 * b * p / 5e10)
    k = len(checkpoint_steps(cfg))
    per_ck = (sp["steps"] * (2 * sp["n_samples"] * p / 5e10 + 2e-4 * (depth + 2))
              + 6 * (2 * m["n_eval"] + n) * m["loss_draws"] * p / 1e10
              + 3 * sp["n_samples"] * n * d / 1e9 + 0.05)
    item = 4 if sp["dtype"] == "float32" else 8
    mem = item * (k * p + 4 * p + 10 * b * w * depth + (n + m["n_eval"]) * d * m["loss_draws"]
                  * 3) + 8 * m["n_reference"] * d
    if cell.get("intrinsic_dim"):
        # linear_manifold's Haar d x d basis (issue #26: 0.7 GiB at d = 4096 that the terms miss)
        mem, train_s = with_manifold_basis(mem, train_s, d, n, item)
    return {"memory_bytes": int(mem), "seconds": float(train_s + k * per_ck + 1.0)}


# ------------------------------------------------------------------------------- dataset
CURVES = {
    "memorization_ratio": ("1", "fraction of samples with |x-NN1|/|x-NN2| < ratio_threshold "
                                "[GDPLLW23]"),
    "collapse_fraction": ("1", "fraction of samples within collapse_tol of a training point "
                               "[BDKOS25]"),
    "score_error_population": ("1", "relative squared error of the learned score vs the "
                                    "population score at tau = mid_tau"),
    "score_error_empirical": ("1", "relative squared error of the learned score vs the "
                                   "empirical score of the training set at tau = mid_tau"),
    "gaussian_kl": ("nat", "KL(N(sample mean, sample cov) || true law); inf when either "
                           "covariance is singular"),
    "sliced_wasserstein": ("data units", "sliced 2-Wasserstein distance between the samples and "
                                         "n_reference fresh samples of the true law"),
    "train_loss": ("1", "DSM loss per dimension on the training set, fixed noise draws"),
    "heldout_loss": ("1", "DSM loss per dimension on n_eval held-out points, fixed noise draws "
                          "(gap to train_loss: the memorization signal of [BUBM25])"),
    "train_loss_running": ("1", "mean minibatch DSM loss over the loss_window steps before the "
                                "checkpoint"),
}
SCALARS = {
    "sliced_wasserstein_train": ("data units", "sliced Wasserstein distance of the training set "
                                               "itself to the reference samples (a memorizing "
                                               "model's value)"),
    "parameters": ("1", "trainable parameters"),
    "train_seconds": ("s", "training wall time"),
}
COORDS = {
    "d": ("1", "data dimension"), "intrinsic_dim": ("1", "manifold dimension (0: isotropic)"),
    "width": ("1", "hidden width"), "depth": ("1", "hidden blocks / layers"),
    "lr": ("1", "learning rate"), "batch_size": ("1", "training points per step (0: full batch)"),
    "n_train": ("1", "training-set size N"), "seed": ("1", "random seed (attrs seed_streams)"),
}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    from memphase.analysis.training_dynamics import censored_exponents, training_dynamics_summary

    from .common import fill_grid

    g, m = cfg["grid"], cfg["measure"]
    values = {a: g["seeds" if a == "seed" else a] for a in GRID_AXES}
    steps = checkpoint_steps(cfg)
    pairs = list(zip(cell_list, results))
    curves = fill_grid(pairs, GRID_AXES, values, CURVES, trailing=(len(steps),))
    scalars = fill_grid(pairs, GRID_AXES, values, SCALARS)
    coords = {a: (a, np.asarray(values[a]), {"long_name": COORDS[a][1], "units": COORDS[a][0]})
              for a in GRID_AXES}
    coords["train_step"] = ("train_step", np.asarray(steps),
                            {"long_name": "optimizer steps at the checkpoint",
                             "units": "optimizer steps"})
    dims = GRID_AXES + ("train_step",)
    ds = xr.Dataset({k: (dims, v, {"units": CURVES[k][0], "long_name": CURVES[k][1]})
                     for k, v in curves.items()}, coords=coords)
    for k, v in scalars.items():
        ds[k] = (GRID_AXES, v, {"units": SCALARS[k][0], "long_name": SCALARS[k][1]})
    ds["loss_gap"] = (ds["heldout_loss"] - ds["train_loss"]).assign_attrs(
        units="1", long_name="held-out minus training DSM loss [BUBM25]")
    ds = ds.merge(training_dynamics_summary(ds, threshold=m["mem_threshold"],
                                            tolerance=m["gen_tolerance"],
                                            quality=m["gen_quality"]))
    ds = ds.merge(censored_exponents(ds[["tau_mem", "tau_mem_censored", "tau_gen",
                                         "tau_gen_censored"]], float(steps[-1])))
    bubm = cfg["protocol"] == "bubm25"
    ds.attrs.update({
        "protocol": cfg["protocol"],
        "seed_streams": SEED_STREAMS_BUBM25 if bubm else SEED_STREAMS,
        "budget_steps": cfg["training"]["steps"],
        "mem_threshold": m["mem_threshold"], "gen_tolerance": m["gen_tolerance"],
        "gen_quality": m["gen_quality"], "ratio_threshold": m["ratio_threshold"],
        "censoring": "tau_mem = +inf and tau_mem_censored = True when the memorization ratio "
                     "stays below mem_threshold up to budget_steps; censored N are left out of "
                     "the exponent fit (an N enters only when every seed memorized); "
                     "tau_gen_censored = True when the quality measure is within tolerance of "
                     "its best already at the first checkpoint (tau_gen <= first checkpoint)",
        "reference": "[BUBM25] Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638",
    })
    return ds


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.training_dynamics import plot_training_dynamics

    plot_training_dynamics(ds, path)
