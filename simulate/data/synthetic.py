"""Data models: high-dimensional training sets drawn reproducibly from an explicit seed.

Every sampler returns a `DataSample` whose `.x` is a torch tensor of shape (n, d) and which carries
what analysis needs: the population mean and covariance (for the exact population score), the
orthonormal basis of the coordinates the data was built in, the block index of each basis
direction (linear manifolds) and class labels (mixtures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from memphase.physics.manifold import normalization_mode, normalized_variances

from ..base.device import resolve_device, resolve_dtype

__all__ = [
    "DataSample",
    "isotropic_gaussian",
    "spectrum_gaussian",
    "linear_manifold",
    "gaussian_mixture",
    "random_orthonormal_basis",
    "draw_held_out",
]


@dataclass
class DataSample:
    """A training set with the facts of the law it came from.

    x:          (n, d) torch tensor of samples.
    mean, cov:  population mean (d,) and covariance (d, d) in float64 numpy (None when the law is
                not Gaussian, e.g. normalized manifolds or mixtures).
    basis:      (d, d) orthonormal matrix; column i is direction i of the construction.
    block:      (d,) int array, block index of each basis direction (-1 for the normal space).
    block_stds: std of each block, in block order.
    labels:     (n,) int64 tensor of class labels, or None.
    params:     the arguments that rebuild the sample (provenance), seed included.
    """

    x: torch.Tensor
    mean: np.ndarray | None
    cov: np.ndarray | None
    basis: np.ndarray
    block: np.ndarray
    block_stds: list[float]
    labels: torch.Tensor | None = None
    params: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def d(self) -> int:
        return self.x.shape[1]

    def block_basis(self, b: int) -> np.ndarray:
        """(d, k_b) orthonormal basis of block b (b = -1: the normal space)."""
        return self.basis[:, self.block == b]

    def variances(self, method: str = "auto") -> np.ndarray:
        """Actual population variance along each basis direction, (d,) float64 (a copy).

        method "auto": exact where the law is known in closed form (a Gaussian law: the diagonal
        of basis^T cov basis; a normalized linear manifold: `memphase.physics.manifold.normalized_variances`,
        which is not the nominal s_i^2 [ALD24]; the two-class mixture), else "monte_carlo": the
        variance of 2e5 fresh draws of the law (`draw`, fixed seed), along each basis direction.
        Cached per method.
        """
        if method not in ("auto", "monte_carlo"):
            raise ValueError(f"method must be 'auto' or 'monte_carlo', got {method!r}")
        cache = self.__dict__.setdefault("_variance_cache", {})
        if method not in cache:
            exact = self._exact_variances() if method == "auto" else None
            if exact is None:
                y = self.draw(_MC_SAMPLES, seed=_MC_SEED) @ self.basis
                exact = y.var(axis=0)
            cache[method] = np.asarray(exact, dtype=np.float64)
        return cache[method].copy()

    def _exact_variances(self) -> np.ndarray | None:
        if self.cov is not None:
            return np.einsum("ij,ik,kj->j", self.basis, self.cov, self.basis)
        model = self.params.get("model")
        if model == "linear_manifold":
            return normalized_variances(_manifold_stds(self.params, self.block) ** 2,
                                        self.params.get("normalize", False))
        if model == "gaussian_mixture":
            stds = np.array([self.block_stds[b] for b in self.block])
            return stds**2
        return None

    def draw(self, n: int, seed: int) -> np.ndarray:
        """n fresh samples of the same law (same basis), float64 numpy (n, d), from `seed`.

        Known laws: Gaussian (mean, cov), linear manifolds (normalized or not), the two-class
        mixture; real data (`digits`, `array_data`): points of the loaded set held out of the
        training subset. Used for fresh anchors and Monte Carlo moments.
        """
        _check_n_d(n, self.d)
        if "_real" in self.__dict__:  # real data: held-out points of the loaded set
            return draw_held_out(self, n, seed)
        rng = _rng(seed)
        model = self.params.get("model")
        if model == "linear_manifold":
            stds = _manifold_stds(self.params, self.block)
            z = rng.standard_normal((n, self.d)) * stds
            return _normalize_rows(z, stds, self.params.get("normalize", False)) @ self.basis.T
        if model == "gaussian_mixture":
            m = np.asarray(self.params["centers"], dtype=np.float64)
            sign = 1.0 - 2.0 * rng.integers(0, 2, size=n)
            return sign[:, None] * m + self.params["spread"] * rng.standard_normal((n, self.d))
        if self.cov is not None:
            var = np.clip(np.einsum("ij,ik,kj->j", self.basis, self.cov, self.basis), 0, None)
            mean = np.zeros(self.d) if self.mean is None else self.mean
            return mean + (rng.standard_normal((n, self.d)) * np.sqrt(var)) @ self.basis.T
        raise NotImplementedError(f"no sampler for data model {model!r}")


_MC_SAMPLES, _MC_SEED = 200_000, 12345


def _manifold_stds(params, block) -> np.ndarray:
    """Nominal per-direction stds of a linear manifold (construction basis order)."""
    stds = np.full(len(block), float(params.get("normal_std", 0.0)))
    start = 0
    for k, s in params["blocks"]:
        stds[start:start + int(k)] = float(s)
        start += int(k)
    return stds


def _normalize_rows(z: np.ndarray, stds: np.ndarray, normalize) -> np.ndarray:
    """Rows of z = s * g normalized [ALD24]: sphere z / |z|; radius z sqrt(sum s^2) / |z|;
    unchanged when normalize is False."""
    mode = normalization_mode(normalize)
    if mode is False:
        return z
    radius = 1.0 if mode == "sphere" else float(np.sqrt(np.sum(stds**2)))
    return z * (radius / np.linalg.norm(z, axis=1, keepdims=True))


def _check_n_d(n, d):
    for name, v in (("n", n), ("d", d)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _rng(seed) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def random_orthonormal_basis(d: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthogonal matrix (QR of a Gaussian matrix with sign correction)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _to_torch(arr: np.ndarray, dtype, device) -> torch.Tensor:
    return torch.as_tensor(arr, dtype=resolve_dtype(dtype), device=resolve_device(device))


_CHUNK_BYTES = 32 << 20


def _gaussian_rows(rng, n: int, d: int, transform, dtype, device) -> torch.Tensor:
    """(n, d) points transform(z, rows) of standard normals z, made in `dtype`: for float32 the
    float64 draws come in row chunks (the same stream as one (n, d) draw) and are cast chunk by
    chunk, so the peak memory is the float32 set plus one chunk, not a float64 copy of it."""
    dt, dev = resolve_dtype(dtype), resolve_device(device)
    if dt == torch.float64:
        return torch.as_tensor(transform(rng.standard_normal((n, d)), slice(0, n)), device=dev)
    out = torch.empty((n, d), dtype=dt)
    step = max(1, _CHUNK_BYTES // (8 * d))
    for i in range(0, n, step):
        rows = slice(i, min(i + step, n))
        out[rows] = torch.from_numpy(transform(rng.standard_normal((rows.stop - i, d)), rows))
    return out.to(dev)


def isotropic_gaussian(n: int, d: int, variance: float = 1.0, seed: int = 0, *,
                       dtype="float64", device="cpu") -> DataSample:
    """n points of N(0, variance I_d)."""
    _check_n_d(n, d)
    if not np.isfinite(variance) or variance <= 0:
        raise ValueError(f"variance must be positive, got {variance!r}")
    rng = _rng(seed)
    scale = np.sqrt(variance)

    def draw(z, rows):
        z *= scale
        return z

    return DataSample(
        x=_gaussian_rows(rng, n, d, draw, dtype, device), mean=np.zeros(d),
        cov=variance * np.eye(d),
        basis=np.eye(d), block=np.zeros(d, dtype=int), block_stds=[float(np.sqrt(variance))],
        params={"model": "isotropic_gaussian", "n": n, "d": d, "variance": variance, "seed": seed},
    )


def spectrum_gaussian(n: int, variances, seed: int = 0, *, rotate: bool = True,
                      dtype="float64", device="cpu") -> DataSample:
    """n points of N(0, C), C = U diag(variances) U^T with U Haar-random (identity if not rotate)."""
    var = np.asarray(variances, dtype=np.float64)
    if var.ndim != 1 or var.size == 0:
        raise ValueError(f"variances must be a non-empty 1-D list, got shape {var.shape}")
    if np.any(~np.isfinite(var)) or np.any(var <= 0):
        raise ValueError(f"variances must be positive and finite, got min {var.min():g}")
    d = var.size
    _check_n_d(n, d)
    rng = _rng(seed)
    basis = random_orthonormal_basis(d, rng) if rotate else np.eye(d)
    scale = np.sqrt(var)
    x = _gaussian_rows(rng, n, d, lambda z, rows: (z * scale) @ basis.T, dtype, device)
    # one block per distinct variance, in decreasing order
    uniq = sorted(set(var.tolist()), reverse=True)
    block = np.array([uniq.index(v) for v in var])
    return DataSample(
        x=x, mean=np.zeros(d), cov=(basis * var) @ basis.T,
        basis=basis, block=block, block_stds=[float(np.sqrt(v)) for v in uniq],
        params={"model": "spectrum_gaussian", "n": n, "variances": var.tolist(),
                "rotate": rotate, "seed": seed},
    )


def _check_blocks(blocks, d):
    out = []
    for i, blk in enumerate(blocks):
        try:
            k, s = blk
        except (TypeError, ValueError):
            raise ValueError(f"block {i} must be a (dim, std) pair, got {blk!r}") from None
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"block {i}: dim must be a positive integer, got {k!r}")
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"block {i}: std must be positive, got {s!r}")
        out.append((int(k), float(s)))
    if not out:
        raise ValueError("blocks must contain at least one (dim, std) pair")
    total = sum(k for k, _ in out)
    if total > d:
        raise ValueError(f"blocks span {total} dimensions, more than d = {d}")
    return out


#: generators of `linear_manifold`: memphase's own (Haar basis, PCG64) and the official [ALD24] one
MANIFOLD_PROTOCOLS = ("memphase", "ald24")


def linear_manifold(n: int, d: int, blocks, normal_std: float = 0.0, normalize=False,
                    seed: int = 0, *, dtype="float64", device="cpu",
                    protocol: str = "memphase") -> DataSample:
    """Linear manifold of tangent blocks [ALD24]: y = sum_b sum_{i in b} s_b z_i e_i + normal noise.

    `blocks` is a list of (dim, std); the directions e_i are the columns of a Haar-random basis, the
    first sum(dim) spanning the tangent space, the rest the normal space with std `normal_std`.
    normalize (removes the fluctuations of |y|^2, the [ALD24] g = 0 case):
      False     no normalization (Gaussian, variance s_i^2 along e_i; [ALD24] g = 1);
      "sphere"  every point divided by its norm: the unit sphere, as the official [ALD24] code;
      "radius"  every point rescaled to the radius sqrt(sum_i s_i^2); True means "radius".
    Normalizing changes the variance along e_i away from s_i^2 (d = 30, stds 1 (x2), 0.3 (x5),
    0.01 (rest): 0.352 and 0.059 on the sphere, 0.862 and 0.145 at the radius, for nominal 1 and
    0.09); `DataSample.variances()` returns the actual values (`memphase.physics.manifold`).

    protocol="memphase" (default): Haar-random basis and numpy's PCG64 from `seed`;
    protocol="ald24": the official [ALD24] generator (`plots_synthetic_theory.ipynb`, after
    `np.random.seed(seed)`): the coordinate basis, one (n, d) draw of the legacy global
    RandomState, `stds * normal(0, 1, (n, d))`, rows divided by max(|row|, 1e-12)
    (docs/conformance/ald24.md; the official panel uses seed 2).
    """
    _check_n_d(n, d)
    blks = _check_blocks(blocks, d)
    if not np.isfinite(normal_std) or normal_std < 0:
        raise ValueError(f"normal_std must be >= 0, got {normal_std!r}")
    if protocol not in MANIFOLD_PROTOCOLS:
        raise ValueError(f"protocol must be one of {MANIFOLD_PROTOCOLS}, got {protocol!r}")
    mode = normalization_mode(normalize)
    official = protocol == "ald24"
    if official and mode == "radius":
        raise ValueError("protocol='ald24' normalizes to the unit sphere only (normalize='sphere' "
                         "or False)")
    rng = np.random.RandomState(int(seed)) if official else _rng(seed)
    basis = np.eye(d) if official else random_orthonormal_basis(d, rng)
    stds = np.full(d, float(normal_std))
    block = np.full(d, -1, dtype=int)
    start = 0
    for b, (k, s) in enumerate(blks):
        stds[start:start + k] = s
        block[start:start + k] = b
        start += k
    if official:
        z = stds * rng.normal(0.0, 1.0, (n, d))
        z = z / np.clip(np.linalg.norm(z, axis=1, keepdims=True), 1e-12, None) if mode else z
    else:
        z = _normalize_rows(rng.standard_normal((n, d)) * stds, stds, mode)
    x = z @ basis.T
    cov = None if mode else (basis * stds**2) @ basis.T
    return DataSample(
        x=_to_torch(x, dtype, device), mean=None if mode else np.zeros(d), cov=cov,
        basis=basis, block=block, block_stds=[s for _, s in blks],
        params={"model": "linear_manifold", "n": n, "d": d, "blocks": [list(b) for b in blks],
                "normal_std": normal_std, "normalize": mode, "seed": seed,
                "protocol": protocol},
    )


def gaussian_mixture(n: int, d: int, norm_m: float | None = None, spread: float = 1.0,
                     seed: int = 0, *, dtype="float64", device="cpu") -> DataSample:
    """Two classes at +m and -m with isotropic spread [BBDM24]: y = ±m + spread z, |m|^2 = d by
    default; m along a random unit direction (basis column 0); labels 0 (for +m) and 1 (for -m),
    each drawn with probability 1/2."""
    _check_n_d(n, d)
    if not np.isfinite(spread) or spread <= 0:
        raise ValueError(f"spread must be positive, got {spread!r}")
    norm_m = float(np.sqrt(d)) if norm_m is None else float(norm_m)
    if not np.isfinite(norm_m) or norm_m <= 0:
        raise ValueError(f"norm_m must be positive, got {norm_m!r}")
    rng = _rng(seed)
    basis = random_orthonormal_basis(d, rng)
    m = norm_m * basis[:, 0]
    labels = rng.integers(0, 2, size=n)
    sign = 1.0 - 2.0 * labels
    x = _gaussian_rows(rng, n, d, lambda z, rows: sign[rows, None] * m + spread * z, dtype,
                       device)
    block = np.ones(d, dtype=int)
    block[0] = 0
    return DataSample(
        x=x, mean=None, cov=None, basis=basis, block=block,
        block_stds=[float(np.sqrt(norm_m**2 + spread**2)), spread],
        labels=torch.as_tensor(labels, dtype=torch.int64, device=resolve_device(device)),
        params={"model": "gaussian_mixture", "n": n, "d": d, "norm_m": norm_m, "spread": spread,
                "seed": seed, "centers": m.tolist()},
    )


def draw_held_out(sample: DataSample, n: int, seed: int) -> np.ndarray:
    """n fresh points of a real-data law: points of the loaded set outside the training subset
    (without replacement when enough are held out, else with), float64 (n, d), from `seed`."""
    real = sample.__dict__["_real"]
    held = real["held_out"]
    rng = _rng(seed)
    pick = rng.choice(held, size=n, replace=n > held.size)
    return real["coords"][pick].copy()
