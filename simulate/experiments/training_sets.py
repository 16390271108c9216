"""Training sets of the memorization and EMM experiments [GDPLLW23]: N points of the cell's data
law with balanced true and random class labels, and the population covariances the REM theory and
the networks' data variance use.

Synthetic law: an isotropic Gaussian in d, or a linear manifold of intrinsic dimension k [ALD24]
(Achilli et al., arXiv 2410.08727); with C > 1 classes, C cluster centres added in the tangent
space.
Digits: the scikit-learn handwritten digits in their top-d principal coordinates (true labels = the
digit classes). Seeds: data `seed`; class centres `(seed, 3)`; true labels `(seed, 1)`; random
labels `(seed, 2)` (balanced), or, with `data.random_labels = "gdpllw23"`, the official draw of
[GDPLLW23] (Gu et al., arXiv 2310.02664, `dataset_random.py`): Python's `random` seeded with 1024,
one `randint(0, C - 1)` per point in order, the same for every seed (`gdpllw23_random_labels`).
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass

import numpy as np
import torch

from ..data import isotropic_gaussian, linear_manifold

__all__ = ["TrainingSet", "make_training_set", "check_digits_grid", "RANDOM_LABELS",
           "gdpllw23_random_labels", "gdpllw23_min_n"]

#: how random labels are drawn: balanced (N / C per class, seed (seed, 2)) or the official
#: [GDPLLW23] i.i.d. draw (`gdpllw23_random_labels`)
RANDOM_LABELS = ("balanced", "gdpllw23")


def check_digits_grid(grid: dict, n_max: int) -> None:
    """ConfigError (one line, CLI exit 2) unless a grid fits the digits: d <= 61 principal
    components or d = 64 (the pixels themselves, `DIGITS_D`), intrinsic_dim [0], n_classes in
    {1, 10} and every training set (n_max) <= 1797 images; also the one-line error of a missing
    `memphase[data]` extra."""
    from ..run.config import ConfigError
    from ..data.real import DIGITS_D, DIGITS_N, require_data_extra

    require_data_extra()
    if any(d > 61 and d != DIGITS_D for d in grid["d"]) or set(grid["intrinsic_dim"]) != {0} \
            or not set(grid["n_classes"]) <= {1, 10} or n_max > DIGITS_N:
        raise ConfigError("data.model = 'digits' needs d <= 61 (principal components) or d = 64 "
                          "(pixels), "
                          f"intrinsic_dim = [0], n_classes in {{1, 10}} and n_train <= {DIGITS_N}")


@dataclass
class TrainingSet:
    """x (N, d); balanced true (cluster) and random labels; population covariances of the whole
    law and of one class (for the REM theory and the network's data variance)."""

    x: torch.Tensor
    true_labels: torch.Tensor
    random_labels: torch.Tensor
    cov_all: np.ndarray
    cov_class: np.ndarray

    def labels(self, mode: str):
        return {"none": None, "true": self.true_labels, "random": self.random_labels}[mode]


def _balanced_labels(n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of (0, 1, ..., C-1, 0, 1, ...): class sizes differ by at most 1."""
    return rng.permutation(np.arange(n) % c)


def gdpllw23_random_labels(n: int, c: int) -> np.ndarray:
    """Random labels as the official [GDPLLW23] `dataset_random.py` draws them: Python's random
    generator seeded with 1024, then randint(0, C - 1) for each of the N points in order (i.i.d.
    uniform, class sizes unequal; the labels of N points are the first N of those of a larger set)."""
    rng = _random.Random(1024)
    return np.array([rng.randint(0, c - 1) for _ in range(n)], dtype=np.int64)


def gdpllw23_min_n(c: int, n_max: int = 10**6) -> int | None:
    """Smallest N whose official random labels (`gdpllw23_random_labels`) fill all C classes;
    None if not within n_max points."""
    rng, seen = _random.Random(1024), set()
    for n in range(1, n_max + 1):
        seen.add(rng.randint(0, c - 1))
        if len(seen) == c:
            return n
    return None


def _random_labels(cfg, n: int, c: int, seed: int) -> np.ndarray:
    if cfg["data"].get("random_labels", "balanced") == "gdpllw23":
        return gdpllw23_random_labels(n, c)
    return _balanced_labels(n, c, np.random.default_rng([seed, 2]))


def make_training_set(cfg, d: int, intrinsic_dim: int, n_classes: int, n: int, seed: int
                      ) -> TrainingSet:
    """N points of the cell's data law (module docstring), seeded as
    `memorization.SEED_STREAMS` says.

    Base law: N(0, std^2 I_d) (intrinsic_dim 0) or the linear manifold [ALD24] with intrinsic_dim
    directions of std `std` and normal std. With C > 1: y_i += mu_{c_i}, mu_c = separation std u_c,
    u_c uniform unit vectors in the tangent space, c_i the balanced true labels. cov_all adds the
    between-class covariance (1/C) sum_c mu_c mu_c^T - mean mean^T to the base covariance cov_class.
    """
    dc = cfg["data"]
    dtype, device = cfg["sampler"]["dtype"], cfg["sampler"]["device"]
    if dc["model"] == "digits":
        return _digits_training_set(cfg, d, n_classes, n, seed)
    if intrinsic_dim == 0:  # drawn in the run's dtype: no float64 copy of the whole set
        data = isotropic_gaussian(n, d, dc["std"] ** 2, seed=seed, dtype=dtype)
        tangent = np.eye(d)
        cov = dc["std"] ** 2 * np.eye(d)
    else:
        data = linear_manifold(n, d, [(intrinsic_dim, dc["std"])], normal_std=dc["normal_std"],
                               seed=seed, dtype=dtype)
        tangent = data.basis[:, :intrinsic_dim]
        cov = data.cov
    x = data.x
    true = _balanced_labels(n, n_classes, np.random.default_rng([seed, 1]))
    random = _random_labels(cfg, n, n_classes, seed)
    cov_all = cov
    if n_classes > 1:
        g = np.random.default_rng([seed, 3]).standard_normal((n_classes, tangent.shape[1]))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        centres = dc["class_separation"] * dc["std"] * g @ tangent.T  # (C, d)
        shift = torch.as_tensor(centres, dtype=x.dtype)
        step = max(1, (32 << 20) // (8 * d))
        for i in range(0, n, step):  # in place, in row blocks: no (n, d) temporary
            x[i:i + step] += shift[torch.as_tensor(true[i:i + step])]
        centred = centres - centres.mean(0)
        cov_all = cov + centred.T @ centred / n_classes
    as_t = lambda a: torch.as_tensor(a)
    return TrainingSet(
        x=x.to(device=device),
        true_labels=as_t(true).to(device), random_labels=as_t(random).to(device),
        cov_all=cov_all, cov_class=cov)


def _digits_training_set(cfg, d: int, n_classes: int, n: int, seed: int) -> TrainingSet:
    """N digits in the top-d principal coordinates (`memphase.simulate.data.digits`, seed `seed`),
    or for d = 64 the centred pixels themselves (8 x 8 images: what a convolutional network
    needs); true labels = the digit classes, random labels balanced over n_classes ((seed, 2)); cov_all = the
    covariance of all 1,797 digits, cov_class = the mean within-class covariance (sum_c p_c C_c)."""
    from ..data import digits

    dtype, device = cfg["sampler"]["dtype"], cfg["sampler"]["device"]
    from ..data.real import DIGITS_D

    data = digits(n, seed=seed, scale=cfg["data"]["scale"],
                  n_components=None if d == DIGITS_D else d, dtype=dtype)
    real = data.__dict__["_real"]
    coords, every = real["coords"], real["labels_all"]
    within = sum(np.mean(every == c) * np.cov(coords[every == c].T, bias=True)
                 for c in np.unique(every))
    random = _random_labels(cfg, n, n_classes, seed)
    true = data.labels.cpu().numpy() if n_classes > 1 else np.zeros(n, dtype=np.int64)
    as_t = lambda a: torch.as_tensor(a)
    return TrainingSet(x=data.x.to(device=device), true_labels=as_t(true).to(device),
                       random_labels=as_t(random).to(device), cov_all=data.cov,
                       cov_class=np.atleast_2d(within))
