"""The [BUBM25] protocol of the `training_dynamics` job (`protocol = "bubm25"`): the synthetic
experiment of Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638, re-implemented from the
description of its official code (training, tiny models, diffusion and f_mem scripts);
docs/conformance/bubm25.md lists every protocol item against memphase's own protocol.

One cell (N, seed, width, depth = number of blocks, d, lr, batch size):
  data      `memphase.simulate.learning.ddpm.two_clusters` (N/2 points at +mu 1, N/2 at -mu 1, std sigma),
            torch seed = the cell's seed (the official dataset seed);
  network   `TimeStepResidualMLP` (width, depth blocks, positional encoding of the DDPM step),
            initialized from the torch generator state after the data draw (as the official script);
  training  `train_ddpm`: DDPM chain of `bubm25.timesteps` linear betas, minibatch
            min(batch_size, N) points (shuffled epochs), Adam (or SGD momentum `bubm25.momentum`)
            at the constant rate lr, noise seed = seed;
  at each checkpoint k (the official grid or log-spaced, `bubm25.checkpoint_grid`):
    memorization_ratio  f_mem: fraction of `bubm25.n_samples` generated samples with
                        d1 / d2 < ratio_threshold (1/3), d1 <= d2 the distances to the two nearest
                        training points (the official f_mem rule); samples by DDIM-100 (eta = 0) or
                        ancestral DDPM (`bubm25.sampler`), sampling seed 10000 + seed, the same at
                        every checkpoint;
    score_error_population  sum |eps_theta - eps_pop|^2 / sum |eps_pop|^2 over n_eval fresh points
                        of the true law noised at fixed random steps k ~ U{1..T-1} (seed
                        (seed, 3)), eps_pop the exact two-cluster noise prediction
                        (`memphase.physics.ddpm.two_cluster_population_eps`);
    train_loss, heldout_loss  the official MSE loss on the training set / n_eval held-out points
                        with `loss_draws` fixed (k, eps) draws per point (seed 20000 + seed);
    collapse_fraction, sliced_wasserstein  as in memphase's protocol (reference: n_reference
                        fresh points, seed (seed, 2)).
  score_error_empirical and gaussian_kl are not measured (NaN): the law is not Gaussian.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from memphase.physics.ddpm import ddpm_chain, two_cluster_population_eps

from ..learning.checkpoints import log_checkpoints
from ..learning.ddpm import (build_time_step_mlp, ddpm_loss, official_training_times, sample_ddim,
                             sample_ddpm, train_ddpm, two_clusters)

__all__ = ["bubm25_checkpoints", "run_cell_bubm25", "SEED_STREAMS_BUBM25", "estimate_bubm25"]

SEED_STREAMS_BUBM25 = (
    "protocol bubm25: training set: torch seed = seed (official generate_GMM); network init: "
    "the same torch stream after the data draw (the official training script); batches, steps and training noise: torch seed = seed; sampling noise: "
    "10000 + seed (the same at every checkpoint); held-out and score-error points: numpy "
    "SeedSequence (seed, 1), their steps and noise (seed, 3); reference samples: (seed, 2); "
    "DSM-loss draws: 20000 + seed; sliced-Wasserstein projections: seed")


def bubm25_checkpoints(cfg) -> list[int]:
    """Checkpoint steps of the bubm25 protocol: the official evaluation grid up to the budget
    (`official_training_times`, step 0 left out) or log-spaced like memphase's."""
    t = cfg["training"]
    if cfg["bubm25"]["checkpoint_grid"] == "official":
        return [k for k in official_training_times(t["steps"]) if k > 0]
    return log_checkpoints(min(t["first_checkpoint"], t["steps"]), t["steps"], t["checkpoints"])


def _fresh(n, d, mu, sigma, rng) -> np.ndarray:
    """n points of (1/2) N(mu 1, sigma^2 I) + (1/2) N(-mu 1, sigma^2 I), signs drawn at random."""
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return sign[:, None] * mu + sigma * rng.standard_normal((n, d))


def _fixed_loss(net, pts, chain, draws, seed) -> float:
    g = torch.Generator().manual_seed(int(seed))
    y = pts.repeat(draws, 1)
    k = torch.randint(1, chain.steps, (y.shape[0],), generator=g)
    eps = torch.randn(y.shape, generator=g, dtype=y.dtype)
    with torch.no_grad():
        return float(ddpm_loss(net, y, k, eps, chain))


def run_cell_bubm25(cfg, cell) -> dict:
    from memphase.analysis.generalization import sliced_wasserstein
    from memphase.analysis.memorization import collapse_fraction, memorization_ratio

    b, m, t = cfg["bubm25"], cfg["measure"], cfg["training"]
    d, n, seed = cell["d"], cell["n_train"], cell["seed"]
    chain = ddpm_chain(b["timesteps"], b["beta_start"], b["beta_end"])
    x = two_clusters(n, d, b["mu"], b["sigma"], seed=seed)
    net = build_time_step_mlp(d, cell["width"], cell["depth"], seed=seed, after_data=n)
    steps = bubm25_checkpoints(cfg)
    batch = cell["batch_size"] or n
    res = train_ddpm(x, net, chain, t["steps"], batch_size=batch, optimizer=t["optimizer"],
                     lr=cell["lr"], momentum=b["momentum"], checkpoints=steps, seed=seed)
    held_np = _fresh(m["n_eval"], d, b["mu"], b["sigma"], np.random.default_rng([seed, 1]))
    ref = _fresh(m["n_reference"], d, b["mu"], b["sigma"], np.random.default_rng([seed, 2]))
    rng3 = np.random.default_rng([seed, 3])
    k_eval = rng3.integers(1, chain.steps, size=m["n_eval"])
    ab = chain.alphabar[k_eval][:, None]
    x_eval = np.sqrt(ab) * held_np + np.sqrt(1 - ab) * rng3.standard_normal(held_np.shape)
    eps_pop = two_cluster_population_eps(x_eval, k_eval, chain, b["mu"]) if b["sigma"] == 1.0 \
        else None
    held = torch.as_tensor(held_np, dtype=torch.float32)
    xe = torch.as_tensor(x_eval, dtype=torch.float32)
    ke = torch.as_tensor(k_eval, dtype=torch.long)
    curves = {k: [] for k in ("memorization_ratio", "collapse_fraction", "score_error_population",
                              "score_error_empirical", "gaussian_kl", "sliced_wasserstein",
                              "train_loss", "heldout_loss")}
    for k in steps:
        net.load_state_dict(res["checkpoints"][k])
        if b["sampler"] == "ddim":
            s = sample_ddim(net, chain, b["n_samples"], d, b["sampler_steps"], seed=10_000 + seed)
        else:
            s = sample_ddpm(net, chain, b["n_samples"], d, seed=10_000 + seed)
        curves["memorization_ratio"].append(memorization_ratio(s, x, m["ratio_threshold"]))
        curves["collapse_fraction"].append(collapse_fraction(s, x, m["collapse_tol"]))
        curves["sliced_wasserstein"].append(
            sliced_wasserstein(s, ref, m["n_projections"], seed) if torch.isfinite(s).all()
            else math.inf)
        if eps_pop is None:
            curves["score_error_population"].append(math.nan)
        else:
            with torch.no_grad():
                e = net(xe, ke).double().numpy()
            curves["score_error_population"].append(
                float(((e - eps_pop) ** 2).sum() / (eps_pop ** 2).sum()))
        curves["score_error_empirical"].append(math.nan)
        curves["gaussian_kl"].append(math.nan)
        curves["train_loss"].append(_fixed_loss(net, x, chain, m["loss_draws"], 20_000 + seed))
        curves["heldout_loss"].append(_fixed_loss(net, held, chain, m["loss_draws"],
                                                  20_000 + seed))
    w = m["loss_window"]
    losses = res["losses"]
    return {**{k: np.asarray(v, dtype=float) for k, v in curves.items()},
            "train_loss_running": np.asarray([float(np.mean(losses[max(0, k - w):k]))
                                              for k in steps]),
            "sliced_wasserstein_train": sliced_wasserstein(x, ref, m["n_projections"], seed),
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": res["seconds"]}


def estimate_bubm25(cfg, cell) -> dict:
    """Rough cost on one busy CPU thread (measured 2026-12-06: ~13 ms per update of the width-128,
    3-block network at batch <= 64, ~24 ms at batch 512; DDIM-100 on 1000 samples ~0.7 s,
    ancestral DDPM-1000 ~5.5 s). Memory: the kept checkpoints and the sample batch."""
    b, t = cfg["bubm25"], cfg["training"]
    batch = min(cell["batch_size"] or cell["n_train"], cell["n_train"])
    per_step = 0.013 + 0.011 * batch / 512
    k = len(bubm25_checkpoints(cfg))
    nfe = b["sampler_steps"] if b["sampler"] == "ddim" else b["timesteps"]
    per_ck = 0.7 * (b["n_samples"] / 1000) * (nfe / 100) + 0.1
    p = (cell["d"] + 1) * cell["width"] + cell["depth"] * (2 * cell["width"] ** 2
                                                            + 4 * cell["width"])
    mem = 4 * (k + 4) * p + 4 * b["n_samples"] * cell["width"] * 8 + 10_000 * cell["width"] * 4
    return {"memory_bytes": int(mem), "seconds": float(t["steps"] * per_step + k * per_ck + 1.0)}
