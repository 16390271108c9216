"""Denoising score matching (DSM) training of a noise-prediction network (docs/theory.md, Scores).

Per step, for a batch of training points y and per-sample noise levels tau:

    x_t = m y + sigma z,  z ~ N(0, I),   fed to the network as x_t / m = y + sqrt(tau) z, nu = log tau
    loss = mean_batch [ |eps_theta - z|^2 + lambda |eps_theta|^2 / sigma^2 ] / d          (eq. L)

The penalty is lambda |s_theta|^2 with s_theta = -eps_theta / sigma [BDKOS25].

lambda <-> c. With s = -eps/sigma and z = -sigma g, g = grad log p(x_t | y) = -(x_t - m y)/sigma^2:
    |eps - z|^2 + lambda |eps|^2 / sigma^2 = sigma^2 [ |s - g|^2 + (lambda / sigma^2) |s|^2 ].
At fixed t the factor sigma^2 > 0 does not move the minimizer, which pointwise in x solves
    (1 + lambda/sigma^2) s = E[g | x_t = x] = (m sum_n w_n y_n - x) / sigma^2
    =>  s = (m sum_n w_n y_n - x) / (sigma^2 + lambda),
the Tikhonov score s_c with c = lambda (c in the units of sigma^2, i.e. of x_t^2). This holds
because the eps loss weights |s - g|^2 by sigma^2; with the plain score loss |s - g|^2 the same
penalty would give c = lambda sigma^2 (time dependent). Tested in tests/simulate/test_learned.py.

Noise levels: by default log tau ~ U(log tau_min, log tau_max) (dense at small tau, where
memorization happens; matches the samplers' log-tau grid); time_sampling="uniform_t" draws t
uniformly instead. The default tau range is the samplers' `default_time_range` (tau in
[1e-6, 1e4] clipped to the schedule's interval), so training covers every time sampling visits.

Randomness: network initialization is seeded by `networks.build_network`; batches, noise levels and
noise come from one explicit torch Generator seeded with `config.seed`, so on CPU two runs with the
same config give bitwise-identical weights.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..base.device import generator, resolve_device, resolve_dtype
from ..sampling import default_time_range
from . import training_resume as _resume
from ..base.step_progress import report as report_step

__all__ = ["TrainConfig", "TrainResult", "train_score", "dsm_loss", "sample_noise_levels",
           "save_checkpoint", "load_checkpoint", "OPTIMIZERS", "TIME_SAMPLINGS", "LR_SCHEDULES"]

OPTIMIZERS = ("adam", "adamw", "radam", "sgd", "sgd_momentum")
SGD_MOMENTUM = 0.9  # heavy-ball momentum of "sgd_momentum"
TIME_SAMPLINGS = ("log_tau", "uniform_t")
LR_SCHEDULES = ("constant", "cosine")
# keys of TrainConfig that do not change the trained function and are not compared on load
_NOT_COMPARED = ("device", "resume_path", "save_every")


@dataclass
class TrainConfig:
    """Every parameter of a DSM training run.

    steps:            optimizer steps.
    batch_size:       training points per step (None: full batch); minibatches are drawn as
                      shuffled epochs (without replacement).
    noise_draws:      independent (tau, z) draws per training point per step (useful for tiny N).
    lr, betas:        optimizer learning rate and Adam betas.
    lr_schedule:      "constant" or "cosine" (lr annealed to 0 over `steps`: removes the SGD noise
                      floor of the final weights).
    optimizer:        "adam" (weight_decay as L2), "adamw" (decoupled), "radam" [ALD24], "sgd"
                      (plain stochastic gradient descent), "sgd_momentum" (heavy-ball momentum
                      0.9); the two SGD variants ignore `betas` and take weight_decay as L2.
    weight_decay:     weight-decay strength (sweep axis).
    tikhonov:         lambda of the penalty lambda |s_theta|^2 = lambda |eps|^2 / sigma^2; the
                      minimizer is the Tikhonov score with c = lambda (module docstring).
    ema_decay:        EMA of the weights (0: off); effective decay min(ema_decay, (1+k)/(10+k)).
    time_sampling:    "log_tau" (uniform in log tau) or "uniform_t" (uniform in schedule time).
    tau_min, tau_max: noise-level range (None: the samplers' default range for the schedule).
    checkpoint_steps: steps after which the (EMA) weights are kept, for early stopping.
    grad_clip:        max global gradient norm (None: no clipping).
    seed:             seed of the data/noise Generator.
    dtype, device:    training precision and device ("auto" picks CUDA when available).
    deterministic:    run under torch.use_deterministic_algorithms(True) (restored afterwards).
    resume_path:      file to checkpoint the whole run to (None: nothing is written, unless the
                      environment variable MEMPHASE_TRAIN_RESUME_DIR names a folder, where the
                      file is then `train-<run hash>.pt`; sweeps set it to `<output>.cells/
                      training/`). If the file exists and belongs to this run (same config
                      fields, data shape and checksum, initial network, tau range) training
                      continues from it: weights, optimizer, lr schedule, EMA, kept checkpoints,
                      losses, step, epoch position and RNG states are restored, so the result is
                      bitwise that of an uninterrupted run on CPU. A file of another run is
                      refused (ValueError naming the difference). The file is written atomically
                      at the end, every `save_every` steps, and on SIGTERM: the handler, installed
                      only while training (main thread), lets the current step finish, saves and
                      raises memphase.simulate.base.errors.Terminated (CLI exit status 143).
    save_every:       also save the resume file every this many steps (0: only on SIGTERM and at
                      the end).
    """

    steps: int = 1000
    batch_size: int | None = None
    noise_draws: int = 1
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    lr_schedule: str = "constant"
    optimizer: str = "adam"
    weight_decay: float = 0.0
    tikhonov: float = 0.0
    ema_decay: float = 0.0
    time_sampling: str = "log_tau"
    tau_min: float | None = None
    tau_max: float | None = None
    checkpoint_steps: tuple = ()
    grad_clip: float | None = None
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    deterministic: bool = True
    resume_path: str | None = None
    save_every: int = 0

    def __post_init__(self):
        def pos_int(name, v):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        pos_int("steps", self.steps)
        pos_int("noise_draws", self.noise_draws)
        if self.batch_size is not None:
            pos_int("batch_size", self.batch_size)
        for name in ("lr", "weight_decay", "tikhonov", "ema_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {list(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of "
                             f"{list(LR_SCHEDULES)}")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"unknown time_sampling {self.time_sampling!r}; choose one of "
                             f"{list(TIME_SAMPLINGS)}")
        for name in ("tau_min", "tau_max"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0 < v < math.inf):
                raise ValueError(f"{name} must be a positive finite number or None, got {v!r}")
        if self.tau_min is not None and self.tau_max is not None and self.tau_min > self.tau_max:
            raise ValueError(f"tau_min must be <= tau_max, got {self.tau_min} > {self.tau_max}")
        self.betas = tuple(float(b) for b in self.betas)
        self.checkpoint_steps = tuple(sorted({int(s) for s in self.checkpoint_steps}))
        bad = [s for s in self.checkpoint_steps if not 1 <= s <= self.steps]
        if bad:
            raise ValueError(f"checkpoint_steps must lie in [1, steps={self.steps}], got {bad}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        resolve_dtype(self.dtype)
        if (not isinstance(self.save_every, (int, np.integer)) or isinstance(self.save_every, bool)
                or self.save_every < 0):
            raise ValueError(f"save_every must be a non-negative integer, got {self.save_every!r}")
        if self.resume_path is not None:
            if not isinstance(self.resume_path, (str, os.PathLike)) or not str(self.resume_path):
                raise ValueError(f"resume_path must be a file path or None, got "
                                 f"{self.resume_path!r}")
            self.resume_path = str(self.resume_path)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """losses: (steps,) float64 loss per step (eq. L); checkpoints: step -> state_dict (the EMA
    weights when ema_decay > 0, else the raw weights); raw_state: final raw weights; network: the
    trained network holding the weights to sample with (EMA when ema_decay > 0);
    tau_range: the (tau_min, tau_max) trained on; seconds: wall time."""

    losses: np.ndarray
    checkpoints: dict
    config: TrainConfig
    network: nn.Module
    raw_state: dict
    tau_range: tuple
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def dsm_loss(eps: torch.Tensor, z: torch.Tensor, sigma2: torch.Tensor, tikhonov: float = 0.0):
    """mean_batch [ |eps - z|^2 + lambda |eps|^2 / sigma^2 ] / d (eq. L); sigma2 of shape (B,)."""
    loss = ((eps - z) ** 2).mean(1)
    if tikhonov > 0:
        loss = loss + tikhonov * (eps * eps).mean(1) / sigma2
    return loss.mean()


def _tau_range(schedule, config: TrainConfig) -> tuple[float, float]:
    t_max, t_min = default_time_range(schedule)
    lo = float(schedule.tau(t_min)) if config.tau_min is None else float(config.tau_min)
    hi = float(schedule.tau(t_max)) if config.tau_max is None else float(config.tau_max)
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < tau_min <= tau_max, got [{lo:g}, {hi:g}]")
    return lo, hi


def sample_noise_levels(schedule, n: int, tau_range, time_sampling: str, gen, dtype, device):
    """(tau, sigma^2) for n draws: log tau uniform in log tau_range ("log_tau") or t uniform
    between the times of tau_range ("uniform_t"); sigma^2 = noise_var(t(tau))."""
    u = torch.rand(n, generator=gen, dtype=torch.float64, device=device).cpu().numpy()
    lo, hi = tau_range
    if time_sampling == "log_tau":
        tau = np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        t = schedule.time_of_tau(tau)
    else:
        t_lo, t_hi = float(schedule.time_of_tau(lo)), float(schedule.time_of_tau(hi))
        t = t_lo + u * (t_hi - t_lo)
        tau = schedule.tau(t)
    s2 = schedule.noise_var(t)
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)
    return as_t(tau), as_t(s2)


def _make_optimizer(network, config: TrainConfig):
    if config.optimizer in ("sgd", "sgd_momentum"):
        momentum = SGD_MOMENTUM if config.optimizer == "sgd_momentum" else 0.0
        return torch.optim.SGD(network.parameters(), lr=config.lr, momentum=momentum,
                               weight_decay=config.weight_decay)
    kw = dict(lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(network.parameters(), **kw)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(network.parameters(), **kw)
    return torch.optim.RAdam(network.parameters(), **kw)


def _clone_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def train_score(train_x, schedule, network: nn.Module, config: TrainConfig | None = None, *,
                progress: bool = False, callback=None, labels=None) -> TrainResult:
    """Train eps_theta by DSM (eq. L) on the (N, d) training set `train_x` (tensor or DataSample).

    labels: (N,) integer class labels of the points for a label-conditioned network (its
    n_classes set, `memphase.simulate.learning.networks`): every noised point is fed with its own label,
    eps_theta(y_i + sqrt(tau) z, log tau, c_i), the conditional DSM loss of [GDPLLW23] (one
    class-conditional network). None: unconditional (a network with n_classes = 1 then sees
    class 0).

    The network is moved to config.dtype / config.device and trained in place; at the end it holds
    the EMA weights when config.ema_decay > 0 (the raw weights are in result.raw_state).
    `callback(step, loss)`, if given, is called after every step (loss a float).
    With a resume file (TrainConfig.resume_path or MEMPHASE_TRAIN_RESUME_DIR) training continues
    from it and is checkpointed on SIGTERM (see TrainConfig).
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    x = getattr(train_x, "x", train_x)
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"train_x must be an (N, d) tensor or a DataSample, got "
                         f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    d = getattr(network, "d", x.shape[1])
    if x.shape[1] != d:
        raise ValueError(f"training set has d = {x.shape[1]} but the network expects d = {d}")
    if not torch.isfinite(x).all():
        raise ValueError("training set contains NaN or inf")
    dev, dt = resolve_device(config.device), resolve_dtype(config.dtype)
    if labels is not None:
        from .networks import check_labels

        n_cls = getattr(network, "n_classes", None)
        if n_cls is None:
            raise ValueError("labels given but the network is not label-conditioned "
                             "(build it with n_classes)")
        labels = check_labels(labels, x.shape[0], n_cls, dev)
    x = x.to(device=dev, dtype=dt)
    network.to(device=dev, dtype=dt).train()
    tau_range = _tau_range(schedule, config)
    path, identity, saved = None, None, None
    if config.resume_path is not None or os.environ.get(_resume.RESUME_DIR_ENV):
        identity = _resume.run_identity(config, x, network, tau_range, labels)
        path = _resume.resume_file(config, identity)
        saved = _resume.load_state(path, identity)
    gen = generator(config.seed, dev)
    opt = _make_optimizer(network, config)
    lr_sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
                if config.lr_schedule == "cosine" else None)
    ema = copy.deepcopy(network).eval() if config.ema_decay > 0 else None
    if ema is not None:
        for p in ema.parameters():
            p.requires_grad_(False)
    n = x.shape[0]
    bs = n if config.batch_size is None else min(config.batch_size, n)
    losses = torch.empty(config.steps, dtype=torch.float64, device=dev)
    checkpoints: dict = {}
    wanted = set(config.checkpoint_steps)
    perm, pos, done = None, n, 0
    if saved is not None:
        network.load_state_dict(saved["network"])
        opt.load_state_dict(saved["optimizer"])
        if lr_sched is not None:
            lr_sched.load_state_dict(saved["lr_sched"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        checkpoints = {int(k): {n_: v.to(dev) for n_, v in sd.items()}
                       for k, sd in saved["checkpoints"].items()}
        done = int(saved["step"])
        losses[:done] = saved["losses"].to(dev)
        perm = None if saved["perm"] is None else saved["perm"].to(dev)
        pos = int(saved["pos"])
        _resume.set_rng_states(gen, saved["rng"])

    def save(step):
        _resume.save_state(path, {
            "step": step, "network": _cpu_state(network), "optimizer": opt.state_dict(),
            "lr_sched": None if lr_sched is None else lr_sched.state_dict(),
            "ema": None if ema is None else _cpu_state(ema),
            "checkpoints": {k: {n_: v.cpu() for n_, v in sd.items()} for k, sd in checkpoints.items()},
            "losses": losses[:step].cpu(), "perm": None if perm is None else perm.cpu(), "pos": pos,
            "rng": _resume.rng_states(gen)}, identity)

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    start = time.perf_counter()
    try:
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        bar = tqdm(range(done + 1, config.steps + 1), desc="DSM training", leave=False,
                   disable=not progress)
        with _resume.SigtermGuard(active=path is not None) as guard:
            for step in bar:
                y_lab = labels
                if bs == n:
                    y = x
                else:  # shuffled epochs
                    if pos + bs > n:
                        perm, pos = torch.randperm(n, generator=gen, device=dev), 0
                    idx = perm[pos:pos + bs]
                    y = x[idx]
                    y_lab = None if labels is None else labels[idx]
                    pos += bs
                if config.noise_draws > 1:
                    y = y.repeat(config.noise_draws, 1)
                    y_lab = None if y_lab is None else y_lab.repeat(config.noise_draws)
                tau, s2 = sample_noise_levels(schedule, y.shape[0], tau_range,
                                              config.time_sampling, gen, dt, dev)
                z = torch.randn(y.shape, generator=gen, dtype=dt, device=dev)
                x_data = y + torch.sqrt(tau)[:, None] * z          # x_t / m = y + sqrt(tau) z
                eps = (network(x_data, torch.log(tau)) if y_lab is None
                       else network(x_data, torch.log(tau), y_lab))
                loss = dsm_loss(eps, z, s2, config.tikhonov)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
                opt.step()
                if lr_sched is not None:
                    lr_sched.step()
                losses[step - 1] = loss.detach()
                if ema is not None:
                    decay = min(config.ema_decay, (1 + step) / (10 + step))
                    with torch.no_grad():
                        for pe, p in zip(ema.parameters(), network.parameters()):
                            pe.lerp_(p, 1 - decay)
                        for be, b in zip(ema.buffers(), network.buffers()):
                            be.copy_(b)
                if step in wanted:
                    checkpoints[step] = _clone_state(ema if ema is not None else network)
                if progress and step % 100 == 0:
                    bar.set_postfix(loss=f"{float(loss):.4g}")
                if callback is not None:
                    callback(step, float(loss.detach()))
                report_step(step, config.steps)
                if path is not None:
                    if guard.requested:
                        save(step)
                        raise _resume.terminated()
                    if config.save_every and step % config.save_every == 0 and step < config.steps:
                        save(step)
            if path is not None and done < config.steps:
                save(config.steps)
            if guard.requested:  # SIGTERM after the last step: saved, still honour it
                raise _resume.terminated()
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
    raw_state = _clone_state(network)
    if ema is not None:
        network.load_state_dict(ema.state_dict())
    network.eval()
    return TrainResult(losses=losses.cpu().numpy(), checkpoints=checkpoints, config=config,
                       network=network, raw_state=raw_state, tau_range=tau_range,
                       seconds=time.perf_counter() - start)


def _cpu_state(module: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_checkpoint(path, network: nn.Module, config: TrainConfig, state_dict: dict | None = None):
    """torch.save {state_dict, config (dict), network (its hparams)} to path.

    state_dict defaults to the network's current weights (pass a TrainResult checkpoint to save an
    early-stopped one)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    state = network.state_dict() if state_dict is None else state_dict
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in state.items()},
                "config": config.to_dict(),
                "network": dict(getattr(network, "hparams", {}))}, path)


def _mismatch(stored: dict, expected: dict, skip=()) -> list[str]:
    keys = sorted((set(stored) | set(expected)) - set(skip))
    missing = object()
    return [k for k in keys if stored.get(k, missing) != expected.get(k, missing)]


def load_checkpoint(path, expected_config, network: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint written by `save_checkpoint`, checking it was trained with expected_config
    (a TrainConfig or dict); 'device' is not compared. Returns `network` with the weights loaded,
    or a network rebuilt from the stored hparams when network is None.

    Raises ValueError naming the mismatching keys (config or network hparams)."""
    from .networks import build_network

    expected = (expected_config.to_dict() if isinstance(expected_config, TrainConfig)
                else TrainConfig(**expected_config).to_dict())
    blob = torch.load(path, map_location="cpu", weights_only=True)
    bad = _mismatch(blob["config"], expected, _NOT_COMPARED)
    if bad:
        detail = ", ".join(f"{k}: stored {blob['config'].get(k)!r} != expected {expected.get(k)!r}"
                           for k in bad)
        raise ValueError(f"checkpoint {path} was trained with a different config ({detail})")
    hp = dict(blob["network"])
    if network is None:
        if "kind" not in hp:
            raise ValueError(f"checkpoint {path} stores no network hparams; pass network=")
        kind, d = hp.pop("kind"), hp.pop("d")
        network = build_network(kind, d, seed=0, **hp)  # weights overwritten below
    else:
        bad = _mismatch(hp, dict(getattr(network, "hparams", {})))
        if bad:
            raise ValueError(f"checkpoint {path} holds a different network: keys {bad} differ")
    network.load_state_dict(blob["state_dict"])
    return network.eval()
