"""Conformance of memphase with the official code of [GDPLLW23] (Gu, Du, Pang, Li, Lin, Wang,
"On memorization in diffusion models", arXiv 2310.02664; GitHub sail-sg/DiffMemorize). One test per
`same` row of docs/conformance/gdpllw23.md (the row is named in the test's docstring).

The official measurement is `mem_ratio.py`: for every saved snapshot but the first, generate
images with the EDM sampler from seeds 0..9999, save them as 8-bit PNGs, and compare each with the
training images (the `--knn-ref` zip, the training set itself) by Euclidean distance on the
flattened uint8 pixels divided by sqrt(C H W); `torch.topk(k = 2, largest = False)` gives the
nearest and second nearest, and a sample is memorized when d1 / d2 < 1/3; the README (Step III)
reports the highest ratio over the snapshots; EMM (Step IV) is the largest training-set size whose
ratio stays >= 1 - eps. The functions below re-derive these steps (written from reading the
official files, none of their code copied) and compare with memphase on the official generation
seeds (the default `--seeds=0-63` and the README's 0..9999, one torch generator per seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memphase.analysis.emm import emm_search
from memphase.analysis.memorization import highest_over_checkpoints, memorization_ratio
from memphase.simulate.run.config import validate
from memphase.simulate.experiments import emm as emm_experiment
from memphase.simulate.experiments import memorization

THRESHOLD = 1.0 / 3.0          # mem_ratio.calc_knn: (d1 / d2) < 1/3
EPS = 0.1                      # [GDPLLW23] EMM_eps with eps = 0.1 (1 - eps = 90 %)
SHAPE = (3, 8, 8)              # small C x H x W images (CIFAR-10 is 3 x 32 x 32)


# ----------------------------------------------------------------------------- official steps
def official_latents(seeds, shape=SHAPE) -> torch.Tensor:
    """generate(): one torch.Generator per seed, manual_seed(seed % 2^32), randn of one image."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s % (1 << 32)))
                        for s in seeds])


def official_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """generate(): images * 127.5 + 128, clipped to [0, 255], cast to uint8 (saved as PNG)."""
    return (images * 127.5 + 128).clip(0, 255).to(torch.uint8)


def official_knn(gen_uint8: torch.Tensor, ref_uint8: torch.Tensor):
    """calculate_knn_stats(): float32 pixels, cdist of the flattened images / sqrt(C H W), the two
    smallest distances and their indices."""
    n1, n2 = gen_uint8.shape[0], ref_uint8.shape[0]
    c, h, w = gen_uint8.shape[1:]
    a = gen_uint8.to(torch.float32).reshape(n1, c * h * w)
    b = ref_uint8.to(torch.float32).reshape(n2, c * h * w)
    dist = torch.cdist(a, b) / np.sqrt(h * w * c)
    return torch.topk(dist, k=2, dim=1, largest=False)


def official_ratio(gen_uint8, ref_uint8, per_sample=False):
    """calc_knn(): memorize = d1 / d2 < 1/3; the logged ratio is its mean."""
    d, _ = official_knn(gen_uint8, ref_uint8)
    mem = (d[:, 0] / d[:, 1]) < THRESHOLD
    return mem if per_sample else float(mem.double().mean())


def official_highest(snapshot_ratios: dict) -> float:
    """README Step III with mem_ratio.main(): snapshots sorted by name, the first (network-snapshot-
    000000, the untrained network) dropped, each one's ratio logged; the reported ratio is the
    highest of them."""
    names = sorted(snapshot_ratios)[1:]
    return max(snapshot_ratios[k] for k in names)


def official_emm(ratio_of_n: dict, eps: float = EPS) -> int:
    """EMM_eps = max{N : R(N) >= 1 - eps}, read off every evaluated size (brute force)."""
    return max(n for n, r in ratio_of_n.items() if r >= 1 - eps)


def images_near_training_points(train_uint8, seeds, near_fraction=0.5, jitter=6.0):
    """Generated-like uint8 images from the official per-seed latents: a share of them is a
    training image plus a small perturbation (memorized), the rest the latent itself."""
    lat = official_latents(seeds)
    out = official_to_uint8(lat)
    n_near = int(near_fraction * len(seeds))
    base = train_uint8[torch.arange(n_near) % train_uint8.shape[0]].to(torch.float32)
    near = (base + jitter * lat[:n_near]).clip(0, 255).to(torch.uint8)
    out[:n_near] = near
    return out


@pytest.fixture(scope="module")
def training_images():
    """64 uint8 training images from the official seed 1024 (train.py --seed=1024)."""
    gen = torch.Generator().manual_seed(1024)
    return torch.randint(0, 256, (64,) + SHAPE, generator=gen, dtype=torch.uint8)


# ----------------------------------------------------------------------------- tests (rows)
@pytest.mark.parametrize("seeds", [range(64), range(10_000)], ids=["seeds0-63", "seeds0-9999"])
def test_ratio_rule_same(training_images, seeds):
    """Rows "estimator (distance, NN_1 / NN_2)" and "threshold 1/3": memphase's
    `memorization_ratio` (per-sample mask and fraction) equals the official rule on the same
    images, the official generation seeds: Euclidean distance of the flattened images (the
    official division by sqrt(C H W) cancels in d1 / d2), top-2 nearest, strict d1 / d2 < 1/3."""
    gen = images_near_training_points(training_images, list(seeds))
    ref = official_ratio(gen, training_images, per_sample=True)
    flat = lambda a: a.to(torch.float64).reshape(a.shape[0], -1)
    got = memorization_ratio(flat(gen), flat(training_images), per_sample=True)
    assert torch.equal(got.cpu(), ref.cpu())
    assert 0.3 < float(ref.double().mean()) < 0.7            # both classes present
    assert memorization_ratio(flat(gen), flat(training_images)) == official_ratio(
        gen, training_images)


def test_reference_set_is_the_training_set_same():
    """Row "reference set": the official --knn-ref is the training zip itself (all its images,
    labels ignored); memphase's memorization experiment measures against the cell's whole
    training set, also with random labels: its ratio equals the official rule on its own samples."""
    cfg = validate({"job": "memorization",
                    "grid": {"n_train": [12], "score": ["empirical"], "d": [4], "n_classes": [2],
                             "label_mode": ["random"], "seeds": [0]},
                    "sampler": {"n_samples": 64, "steps": 40}}, memorization.SCHEMA)
    cell = memorization.cells(cfg)[0]
    ts, score, _, _ = memorization.prepare(cfg, cell)
    x = memorization.draw(cfg, cell, score)
    got = memorization.checkpoint_ratios(cfg, cell, ts, {0: score})[0]
    d = torch.cdist(x.double(), ts.x.double()) / math.sqrt(x.shape[1])
    top = torch.topk(d, k=2, dim=1, largest=False).values
    assert got == float(((top[:, 0] / top[:, 1]) < THRESHOLD).double().mean())


def test_highest_over_snapshots_same():
    """Row "reading rule": the recipe's ratio is the highest over the evaluated snapshots
    (`highest_over_checkpoints`, as `measure_ratio` and the EMM search use it) = the official
    maximum over the logged snapshot ratios; memphase never evaluates the untrained network that
    the official code skips."""
    rng = np.random.default_rng(1024)
    for _ in range(50):
        steps = sorted(rng.choice(np.arange(1, 10**5), size=rng.integers(2, 12), replace=False))
        ratios = {int(s): float(r) for s, r in zip(steps, rng.uniform(size=len(steps)))}
        official = official_highest({f"network-snapshot-{0:06d}": 1.0,
                                     **{f"network-snapshot-{s:06d}": r for s, r in ratios.items()}})
        best, step = highest_over_checkpoints(ratios)
        assert best == official and ratios[step] == best
    cfg = validate({"job": "memorization"}, memorization.SCHEMA)
    steps = memorization.checkpoint_steps(cfg, {"train_steps": 4000})
    assert 0 not in steps and steps[-1] == 4000


def test_emm_definition_same():
    """Row "EMM definition": EMM_0.1 = max{N : R(N) >= 0.9} [GDPLLW23]; memphase's default eps is
    0.1 and its search returns the brute-force answer on monotone curves, with the crossing
    bracketed to one integer (rel_resolution 0)."""
    assert emm_experiment.SCHEMA["search"]["eps"].default == EPS
    for n50, width in ((45, 0.3), (300, 0.15), (7, 0.5)):
        curve = lambda n: 1.0 / (1.0 + math.exp((math.log(n) - math.log(n50)) / width))
        table = {n: curve(n) for n in range(1, 5000)}
        res = emm_search(curve, 4, eps=EPS, rel_resolution=0.0, n_max=4999)
        assert res.emm == official_emm(table) and res.upper == res.emm + 1


def official_random_labels(n: int, c: int) -> list[int]:
    """dataset_random.open_cifar10_balance: `random.seed(1024)`, then for each of the N images in
    order `random.randint(0, num_classes - 1)` (Python's global generator; its state is restored
    here afterwards)."""
    import random

    state = random.getstate()
    try:
        random.seed(1024)
        return [int(random.randint(0, c - 1)) for _ in range(n)]
    finally:
        random.setstate(state)


@pytest.mark.parametrize("c", [2, 4, 10])
def test_random_labels_official_variant_same(c):
    """Row "random labels" (official variant, `data.random_labels = "gdpllw23"`): memphase's
    labels are the official i.i.d. draw for every N (a prefix of the draw for a larger N), and the
    memorization experiment's training set carries them for any seed."""
    from memphase.simulate.experiments.training_sets import gdpllw23_min_n, gdpllw23_random_labels

    for n in (c, 64, 1000):
        assert gdpllw23_random_labels(n, c).tolist() == official_random_labels(n, c)
    n_fill = gdpllw23_min_n(c)
    assert len(set(official_random_labels(n_fill, c))) == c > len(
        set(official_random_labels(n_fill - 1, c)))
    cfg = validate({"job": "memorization", "data": {"random_labels": "gdpllw23"},
                    "grid": {"n_train": [64], "score": ["empirical"], "d": [4], "n_classes": [c],
                             "label_mode": ["random"], "seeds": [3]}}, memorization.SCHEMA)
    ts = memorization.make_training_set(cfg, 4, 0, c, 64, 3)
    assert ts.random_labels.tolist() == official_random_labels(64, c)


def test_random_labels_official_variant_refuses_empty_classes():
    """With the official draw a small N can leave a class empty (C = 4: all four classes only
    from N = 11): such a grid is refused before any compute; the EMM search starts above it."""
    from memphase.simulate.experiments.training_sets import gdpllw23_min_n

    raw = {"job": "memorization", "data": {"random_labels": "gdpllw23"},
           "grid": {"n_train": [8, 64], "score": ["empirical"], "n_classes": [4],
                    "label_mode": ["random"]}}
    with pytest.raises(ValueError, match="class empty at n_train = 8"):
        memorization.cells(validate(raw, memorization.SCHEMA))
    raw["grid"]["n_train"] = [gdpllw23_min_n(4), 64]
    assert memorization.cells(validate(raw, memorization.SCHEMA))
    cfg = validate({"job": "emm", "data": {"random_labels": "gdpllw23"},
                    "grid": {"n_classes": [4], "label_mode": ["random"]}}, emm_experiment.SCHEMA)
    cell = {"n_classes": 4, "label_mode": "random"}
    assert emm_experiment._n_min(cfg, cell) == gdpllw23_min_n(4) == 11
