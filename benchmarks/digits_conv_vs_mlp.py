"""Convolutional vs residual-MLP denoisers on the scikit-learn digits in pixel space (d = 64).

Is the small convolutional network (`memphase.simulate.learning.networks.ConvNet`, kind "conv") clearly
better than the residual MLPs of the memorization experiment at this size? Per training-set size N
(subsets of the 1,797 digits drawn by seed; pixels / 16, centred: `data_real.digits(scale="unit")`)
and seed, every network is trained with the recipe of data/configs/memorization_digits.toml (DSM,
Adam lr 3e-3 cosine, batch 64, noise_draws 4, log tau uniform in [1e-3, 10], float32, no skip)
and measured on:

  held     DSM loss (eq. L, no penalty) on the 1797 - N held-out digits, log tau uniform in
           [1e-3, 10], 4 fixed noise draws per point (`checkpoints.fixed_dsm_loss`): generalization,
           lower is better; also per tau on a grid (2 draws per point);
  train    the same on the N training digits;
  ratio    memorization ratio [GDPLLW23] (|x - NN1| / |x - NN2| < 1/3 against the training set) of
           128 reverse-SDE samples (OU, 150 steps, tau 10 -> 1e-3, the config's [sampler]) of the
           final network (the experiment takes the highest over checkpoints);
  conf     mean top-class probability of the samples under a logistic-regression digit classifier
           fit on all 1,797 digits: a crude "looks like a digit" number (printed beside it: the
           real digits, and 1,797 draws of the Gaussian with the digits' mean and covariance);
  dist     mean distance of a sample to the nearest of all 1,797 digits (pixels / 16, clipped to
           [0, 1]): how far samples sit from the data (real digits: the distance to the nearest
           other digit; printed beside it with the PCA Gaussian's);
  rough    roughness sum_pixels (squared differences of horizontal and vertical neighbours) of
           the clipped samples over that of the real digits: 1 = as smooth as digits, > 1 speckled,
           < 1 blurred.

Networks (`--nets`, default conv mlp96 mlp128): conv (width 32 = channels, depth 2 residual
blocks, 40,033 parameters), unet (`ConvUNet`: width 16, depth 1, one 8x8 -> 4x4 level, 39,745),
the residual MLP of the same size (width 96, depth 2, 37,984) and the configs' MLP (width 128,
depth 2, 58,816); embedding dim 32 for all. Every number is also printed as a ratio to mlp128,
always trained in the same run (same subset, seed, noise draws). `--figure PATH` writes a PNG
grid of samples (seed 0).

Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/digits_conv_vs_mlp.py \\
         [--figure docs/figures/digits_conv_vs_mlp.png]
     (N = 100, 300, 1000, seeds 0 1, 2000 steps: measured 445 CPU s, 674 with --nets conv unet
     mlp96 mlp128; a training of 2000 steps takes ~62 CPU s for conv, ~44 for unet, ~4 for an
     MLP; --quick: N = 100 and 300, seed 0, 1000 steps, measured 70 CPU s)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memphase.analysis.memorization import memorization_ratio, nearest_neighbors
from memphase.physics.schedules import make_schedule
from memphase.simulate.learning.checkpoints import fixed_dsm_loss
from memphase.simulate.data import digits  # before data_real (which data.py imports at its end)
from memphase.simulate.data.real import draw_held_out, to_pixels
from memphase.simulate.experiments.common import reverse_run
from memphase.simulate.learning.networks import build_network, count_parameters
from memphase.simulate.scores import LearnedScore
from memphase.simulate.learning.training import TrainConfig, train_score

NETS = {"conv": ("conv", 32, 2), "unet": ("conv_unet", 16, 1), "mlp96": ("residual_mlp", 96, 2),
        "mlp128": ("residual_mlp", 128, 2)}
DEFAULT_NETS = ("conv", "mlp96", "mlp128")
REFERENCE = "mlp128"
TAU_RANGE = (1e-3, 10.0)
TAU_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
# the [sampler] section of data/configs/memorization_digits.toml
SAMPLER = {"sampler": {"method": "sde", "steps": 150, "n_samples": 128, "schedule": "ou",
                       "t_min_tau": TAU_RANGE[0], "t_max_tau": TAU_RANGE[1], "record": 2,
                       "dtype": "float32", "device": "cpu"}}


def digit_classifier():
    """Logistic regression on all 1,797 digits (pixels / 16): predict_proba on pixel rows."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    bunch = load_digits()
    return LogisticRegression(max_iter=2000, C=1.0).fit(bunch.data / 16.0, bunch.target)


def train(kind, width, depth, sample, seed, steps):
    x = sample.x
    d = x.shape[1]
    net = build_network(kind, d, seed=1009 * seed, width=width, depth=depth, emb_dim=32,
                        data_var=float(np.trace(sample.cov)) / d, skip=False)
    cfg = TrainConfig(steps=steps, batch_size=64, noise_draws=4, lr=3e-3, lr_schedule="cosine",
                      optimizer="adam", tau_min=TAU_RANGE[0], tau_max=TAU_RANGE[1], seed=seed,
                      dtype="float32")
    return train_score(x, make_schedule("ou"), net, cfg)


def roughness(pix) -> float:
    """Mean over images of the summed squared neighbour differences of 8x8 images."""
    img = np.asarray(pix).reshape(-1, 8, 8)
    return float(((np.diff(img, axis=1) ** 2).sum((1, 2))
                  + (np.diff(img, axis=2) ** 2).sum((1, 2))).mean())


def measure(net, sample, held, seed, classifier, all_pixels):
    sch = make_schedule("ou")
    train_x = sample.x
    out = {"params": count_parameters(net),
           "held": fixed_dsm_loss(net, held, sch, TAU_RANGE, draws=4, seed=7),
           "train": fixed_dsm_loss(net, train_x, sch, TAU_RANGE, draws=4, seed=7)}
    for tau in TAU_GRID:
        out[f"held@{tau:g}"] = fixed_dsm_loss(net, held, sch, (tau, tau), draws=2, seed=8)
    x = reverse_run(SAMPLER, LearnedScore(net, sch), sch, 10_000 + seed)
    out["ratio"] = memorization_ratio(x, train_x)
    pix = to_pixels(sample, x) / 16.0
    pix = np.clip(pix, 0, 1)
    out["conf"] = float(classifier.predict_proba(pix).max(axis=1).mean())
    out["dist"] = float(nearest_neighbors(pix, all_pixels, k=1)[0].mean())
    out["rough"] = roughness(pix) / roughness(all_pixels)
    out["samples"] = pix
    return out


def figure(path, samples, ns, names, per_row=12):
    """Rows: for each N, one row of samples per network (seed 0), grey levels 0..1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, name) for n in ns for name in names]
    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 0.5, len(rows) * 0.55))
    for r, (n, name) in enumerate(rows):
        for c in range(per_row):
            ax = axes[r, c]
            ax.imshow(samples[n, name][c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"{name}\nN={n}", rotation=0, ha="right", va="center", fontsize=6)
    fig.subplots_adjust(left=0.14, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 100, 300; seed 0; 1000 steps")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="training-set sizes")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--nets", nargs="+", default=list(DEFAULT_NETS), choices=sorted(NETS),
                    help=f"networks to compare ({REFERENCE} is always added)")
    ap.add_argument("--figure", default=None, help="PNG of generated digits (seed 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ns = args.n or ([100, 300] if args.quick else [100, 300, 1000])
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    steps = args.steps or (1000 if args.quick else 2000)
    nets = {k: NETS[k] for k in NETS if k in args.nets or k == REFERENCE}
    classifier = digit_classifier()
    everything = digits(None, 0, scale="unit")
    real = to_pixels(everything, everything.x) / 16.0
    gauss = to_pixels(everything, np.random.default_rng(0).multivariate_normal(
        np.zeros(64), everything.cov, size=1797)) / 16.0
    gauss = np.clip(gauss, 0, 1)
    conf = lambda p: float(classifier.predict_proba(p).max(axis=1).mean())  # noqa: E731
    loo = float(nearest_neighbors(real, real, k=2)[0][:, 1].mean())
    g_dist = float(nearest_neighbors(gauss, real, k=1)[0].mean())
    print(f"references: classifier confidence real digits {conf(real):.3f}, PCA Gaussian "
          f"{conf(gauss):.3f}; nearest-digit distance real digits (to another) {loo:.3f}, "
          f"PCA Gaussian {g_dist:.3f}; roughness PCA Gaussian / digits "
          f"{roughness(gauss) / roughness(real):.3f}")
    rows, samples = {}, {}
    start = time.process_time()
    for n in ns:
        for seed in seeds:
            sample = digits(n, seed, scale="unit", dtype="float32")
            n_held = 1797 - n
            held = torch.as_tensor(draw_held_out(sample, n_held, seed), dtype=torch.float32)
            for name, (kind, width, depth) in nets.items():
                t0 = time.process_time()
                res = train(kind, width, depth, sample, seed, steps)
                m = measure(res.network, sample, held, seed, classifier, real)
                m["cpu_s"] = time.process_time() - t0
                pix = m.pop("samples")
                if seed == seeds[0]:
                    samples[n, name] = pix
                rows[n, seed, name] = m
                print(f"  N={n} seed={seed} {name}: held {m['held']:.4f} train {m['train']:.4f} "
                      f"ratio {m['ratio']:.3f} conf {m['conf']:.3f} dist {m['dist']:.3f} "
                      f"rough {m['rough']:.3f} ({m['cpu_s']:.0f} CPU s)", flush=True)
    print(f"\nDigits, pixel space d = 64, {steps} DSM steps, seeds {seeds}; "
          f"{time.process_time() - start:.0f} CPU s. mean over seeds [min, max]; "
          f"'/ref' = per-seed ratio to {REFERENCE} (same subset, seed, noise draws)")
    cols = ["held", "train", "ratio", "conf", "dist", "rough"] + [f"held@{t:g}" for t in TAU_GRID]
    print("| N | net | params | " + " | ".join(cols) + " | held / ref | train / ref |")
    print("|---" * (len(cols) + 5) + "|")
    for n in ns:
        for name in nets:
            per = [rows[n, s, name] for s in seeds]
            ref = [rows[n, s, REFERENCE] for s in seeds]
            cell = lambda k: f"{np.mean([p[k] for p in per]):.4f}"  # noqa: E731
            rel = lambda k: _spread([p[k] / r[k] for p, r in zip(per, ref)])  # noqa: E731
            print(f"| {n} | {name} | {per[0]['params']} | "
                  + " | ".join(cell(k) for k in cols) + f" | {rel('held')} | {rel('train')} |")
    if args.figure:
        figure(args.figure, samples, ns, list(nets))


def _spread(v):
    v = np.asarray(v)
    return f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]" if v.size > 1 else f"{v[0]:.3f}"


if __name__ == "__main__":
    main()
