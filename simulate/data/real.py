"""Real data: the scikit-learn handwritten digits and any (n, d) array from .npy / HDF5.

Both return a `memphase.simulate.data.DataSample` whose law is the *empirical distribution of the whole
loaded set* (the "population"): `mean`/`cov` are that set's mean and covariance (ddof = 0), the
`basis` columns are its principal directions in decreasing order of variance and `variances()`
the PCA eigenvalues, so every per-direction tool (Jacobian spectra, tangent dimensions, the
[ALD24] and REM theories with the PCA spectrum) works unchanged. A training set is a subset of
N points drawn without replacement from the seed; `draw` returns held-out points (fresh samples).

Coordinates:
  n_components = None, whiten = False   pixel space (d = the array's width), centred on the mean
                                        of the loaded set; basis = the principal directions;
  n_components = k                      the top-k PCA coordinates (d = k, basis = identity);
  whiten = True                         PCA coordinates divided by sqrt(eigenvalue): unit variance
                                        along every kept direction (k defaults to the rank).
Bands: `bands = [k1, k2, ...]` groups the principal directions by variance: block 0 = the top k1,
block 1 = the next k2, ..., block -1 = the rest (the geometric experiment's blocks).

The digits need the optional extra `data` (scikit-learn, whose wheel ships the 1,797 8x8 images):
`pip install memphase[data]`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base.errors import ConfigError
from ..base.device import resolve_device
from .synthetic import DataSample, _rng, _to_torch, draw_held_out


__all__ = ["digits", "array_data", "load_array", "positive_spectrum", "principal_axes", "require_data_extra", "to_pixels",
           "draw_held_out", "DIGITS_N", "DIGITS_D",
           "SCALES"]

DIGITS_N, DIGITS_D = 1797, 64



#: pixel scalings: "unit" maps the pixel range to [0, 1] (digits: divide by 16, the maximum
#: grey level; arrays: (x - min) / (max - min) over the whole array), "none" keeps the values
SCALES = ("unit", "none")
_REL_TOL = 1e-12  # variances below this fraction of the largest count as zero (rank)
_MAX_ABS = 1e150  # larger values overflow the covariance (squares of sums) in float64
# the d x d covariance, its eigenvectors and the population covariance of pixel coordinates:
# about 3 d x d float64 matrices; refused above this many bytes (give n_components instead)
MAX_PIXEL_BYTES = 4 * 2**30


def require_data_extra():
    """`sklearn.datasets.load_digits`, or a one-line ConfigError naming the extra `data` when
    scikit-learn is missing (experiments call it while checking their config)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("data model 'digits' needs scikit-learn: install memphase[data] "
                          "(pip install 'memphase[data]')") from None
    return load_digits


def _load_digits():
    """(1797, 64) float64 grey levels 0..16 and (1797,) int labels."""
    bunch = require_data_extra()()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def load_array(path, dataset: str | None = None) -> np.ndarray:
    """The (n, d) float64 array stored in `path`: a .npy file, or an HDF5 file (.h5, .hdf5) with
    `dataset` its name (None: the file's only dataset). ValueError naming the problem otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if dataset is not None:
            raise ValueError(f"dataset = {dataset!r} applies to HDF5 files, not {p.name}")
        arr = np.load(p, allow_pickle=False)
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(p, "r") as fh:
            names = []
            fh.visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
            if dataset is None:
                if len(names) != 1:
                    raise ValueError(f"{p.name} holds {len(names)} datasets {names[:5]}; "
                                     f"name one with dataset=")
                dataset = names[0]
            if dataset not in names:
                raise ValueError(f"{p.name} has no dataset {dataset!r}; it has {names[:5]}")
            arr = fh[dataset][()]
    else:
        raise ValueError(f"data file {p.name}: expected .npy, .h5 or .hdf5, got {suffix or 'none'!r}")
    arr = np.asarray(arr)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValueError(f"{p.name}: expected an (n, d) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{p.name}: expected numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{p.name}: expected real numbers, got complex dtype {arr.dtype} (an "
                         f"imaginary part would be dropped)")
    if arr.shape[0] < 2:
        raise ValueError(f"{p.name}: expected at least 2 points (rows), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{p.name}: the array holds non-finite values")
    big = float(np.abs(arr).max())
    if big > _MAX_ABS:
        raise ValueError(f"{p.name}: values up to {big:.3g} overflow the covariance in float64; "
                         f"rescale the array (e.g. scale = 'unit')")
    return arr


def principal_axes(xc: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (all d, descending, >= 0) and the first k eigenvectors (d x k; all d when
    k is None) of the covariance C = xc^T xc / n of the centred rows xc (n x d).

    When n < d the non-zero spectrum is that of the n x n Gram matrix G = xc xc^T / n
    (G u = lam u gives C (xc^T u) = lam (xc^T u)), so only n x n and d x k are allocated:
    v = xc^T u / sqrt(n lam). Eigenvectors of zero eigenvalues are only built by the d x d path."""
    n, d = xc.shape
    if n < d and k is not None:
        lam, u = np.linalg.eigh(xc @ xc.T / n)
        order = np.argsort(lam)[::-1]
        lam, u = np.clip(lam[order], 0.0, None), u[:, order]
        vec = xc.T @ u[:, :k] / np.sqrt(n * np.where(lam[:k] > 0, lam[:k], 1.0))
        eig = np.zeros(d)
        eig[:n] = lam
        return eig, vec
    eig, vec = np.linalg.eigh(xc.T @ xc / n)
    order = np.argsort(eig)[::-1]
    eig, vec = np.clip(eig[order], 0.0, None), vec[:, order]
    return eig, vec if k is None else vec[:, :k]


def positive_spectrum(variances) -> np.ndarray:
    """The variances above 1e-12 of the largest: the spectrum the collapse theories take (a
    direction of zero variance carries no information and drops out of every formula)."""
    v = np.asarray(variances, dtype=np.float64)
    return v[v > _REL_TOL * v.max()]


def _check_options(scale, whiten, n_components, bands):
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not isinstance(whiten, (bool, np.bool_)):
        raise ValueError(f"whiten must be true or false, got {whiten!r}")
    if n_components is not None and (not isinstance(n_components, (int, np.integer))
                                     or isinstance(n_components, bool) or n_components < 1):
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    for k in bands or ():
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"bands must list positive integers, got {bands!r}")


def _subset(total: int, n, seed) -> np.ndarray | None:
    """Sorted indices of n of `total` points without replacement from the seed (None: all)."""
    rng = _rng(seed)
    if n is None:
        return None
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= total:
        raise ValueError(f"n must be an integer in [1, {total}] (points available), got {n!r}")
    return np.sort(rng.choice(total, size=int(n), replace=False))


def _from_array(raw: np.ndarray, labels, *, model, n, seed, scale, whiten, n_components, bands,
                dtype, device, params, unit_range=None) -> DataSample:
    """Shared pipeline: scale, PCA of the whole set, coordinates, subset, bands."""
    _check_options(scale, whiten, n_components, bands)
    idx = _subset(raw.shape[0], n, seed)
    if scale == "unit":
        lo, hi = unit_range if unit_range is not None else (raw.min(), raw.max())
        if not hi > lo:
            raise ValueError("scale = 'unit' needs a non-constant array (max > min)")
        xs = (raw - lo) / (hi - lo)
    else:
        lo, hi = 0.0, 1.0
        xs = raw
    center = xs.mean(axis=0)
    xc = xs - center
    width = raw.shape[1]
    if not (whiten or n_components is not None) and 3 * 8 * width**2 > MAX_PIXEL_BYTES:
        raise ValueError(f"d = {width} columns in pixel coordinates need d x d covariance "
                         f"matrices ({3 * 8 * width**2 / 2**30:.3g} GiB); give n_components "
                         f"(principal coordinates, computed from the n x n Gram matrix)")
    m = min(raw.shape)
    if 2 * 8 * m**2 > MAX_PIXEL_BYTES:
        raise ValueError(f"an ({raw.shape[0]}, {width}) array needs {m} x {m} matrices for its "
                         f"principal axes ({2 * 8 * m**2 / 2**30:.3g} GiB); subsample the rows")
    k_axes = None if not (whiten or n_components is not None) else (
        min(raw.shape) if n_components is None else int(n_components))
    eig, vec = principal_axes(xc, k_axes)
    vec = vec * np.where(vec.sum(axis=0) < 0, -1.0, 1.0)  # a deterministic sign per direction
    if not eig[0] > 0:
        raise ValueError("the array is constant: every variance is 0")
    rank = int(np.sum(eig > _REL_TOL * eig[0]))
    if n_components is not None and n_components > rank:
        raise ValueError(f"n_components = {n_components} exceeds the rank {rank} of the data "
                         f"(directions of non-zero variance)")
    if whiten or n_components is not None:
        k = rank if n_components is None else int(n_components)
        proj = vec[:, :k]
        scale_k = np.sqrt(eig[:k]) if whiten else np.ones(k)
        coords = (xc @ proj) / scale_k
        var = eig[:k] / scale_k**2
        basis, d, space = np.eye(k), k, "pca_whitened" if whiten else "pca"
    else:
        coords, var, basis, d, space = xc, eig, vec, width, "pixels"
        proj, scale_k = None, None
    block = np.full(d, -1, dtype=int)
    start = 0
    for b, k in enumerate(bands or ()):
        if start + k > d:
            raise ValueError(f"bands {list(bands)} span more than the d = {d} directions")
        block[start:start + k] = b
        start += k
    block_stds = [float(np.sqrt(var[block == b].mean())) for b in range(len(bands or ()))]
    if not block_stds:
        block, block_stds = np.zeros(d, dtype=int), [float(np.sqrt(var.mean()))]
    pop_cov = (basis * var) @ basis.T
    train = coords if idx is None else coords[idx]
    lab = labels if idx is None or labels is None else labels[idx]
    held = (np.arange(raw.shape[0]) if idx is None
            else np.setdiff1d(np.arange(raw.shape[0]), idx))
    sample = DataSample(
        x=_to_torch(train, dtype, device), mean=np.zeros(d), cov=pop_cov, basis=basis,
        block=block, block_stds=block_stds,
        labels=None if lab is None else torch.as_tensor(lab, dtype=torch.int64,
                                                        device=resolve_device(device)),
        params={"model": model, "n": int(train.shape[0]), "seed": seed, "scale": scale,
                "whiten": bool(whiten), "n_components": n_components,
                "bands": None if bands is None else [int(k) for k in bands],
                "coordinates": space, **params},
    )
    # kept out of params (provenance stays small): what `draw`, `to_pixels` and tests need
    sample.__dict__["_real"] = {"coords": coords, "held_out": held, "center": center,
                                "proj": proj, "scale_k": scale_k, "lo": lo, "hi": hi,
                                "pca_variances": eig, "labels_all": labels}
    return sample


def digits(n: int | None = None, seed: int = 0, *, scale: str = "unit", whiten: bool = False,
           n_components: int | None = None, bands=None, dtype="float64",
           device="cpu") -> DataSample:
    """The scikit-learn handwritten digits (1,797 8x8 images, d = 64, labels 0..9) as a training
    set of n images drawn by `seed` (None: all, in order).

    Pixels: scale "unit" divides the grey levels 0..16 by 16 ([0, 1]), "none" keeps 0..16; the
    images are then centred on the mean image of all 1,797 digits. The law is the empirical
    distribution of all 1,797 images: `variances()` are their PCA eigenvalues (three pixels are
    always blank, so the rank is 61). Needs the extra `data` (scikit-learn).
    """
    raw, labels = _load_digits()
    return _from_array(raw, labels, model="digits", n=n, seed=seed, scale=scale, whiten=whiten,
                       n_components=n_components, bands=bands, dtype=dtype, device=device,
                       params={}, unit_range=(0.0, 16.0))


def array_data(path, n: int | None = None, seed: int = 0, *, dataset: str | None = None,
               labels=None, scale: str = "none", whiten: bool = False,
               n_components: int | None = None, bands=None, dtype="float64",
               device="cpu") -> DataSample:
    """Any (n_total, d) array from a .npy or HDF5 file (`load_array`) as a training set, exactly
    as `digits`: n points drawn by `seed`, optional unit scaling ((x - min)/(max - min) over the
    array), centring on the array's mean, PCA basis and eigenvalues, optional whitening and bands.
    `labels`: an (n_total,) integer array or None."""
    raw = load_array(path, dataset)
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (raw.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"labels must be {raw.shape[0]} integers, got shape {lab.shape}")
        lab = lab.astype(np.int64)
    return _from_array(raw, lab, model="array_data", n=n, seed=seed, scale=scale, whiten=whiten,
                       n_components=n_components, bands=bands, dtype=dtype, device=device,
                       params={"path": str(path), "dataset": dataset})


def to_pixels(sample: DataSample, x) -> np.ndarray:
    """Points in the sample's coordinates -> pixel values in the original units (undoes the
    whitening, projection, centring and scaling), float64 (n, width)."""
    real = sample.__dict__["_real"]
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if real["proj"] is not None:
        x = (x * real["scale_k"]) @ real["proj"].T
    return (x + real["center"]) * (real["hi"] - real["lo"]) + real["lo"]
