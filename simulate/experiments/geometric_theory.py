"""Theory side of the geometric experiment [ALD24]: the data law's actual variances and both
collapse theories per (N, d, std_ratio), per block (normal space, block 1, block 2).

Every comparison uses the *actual* per-direction variances of the (normalized) law
(`memphase.physics.manifold.normalized_variances`), not the nominal std^2 ([ALD24] Achilli et al., arXiv
2410.08727; docs/theory.md, "Geometric memorization ([ALD24])").
"""

from __future__ import annotations

import numpy as np

from memphase.physics import critical
from memphase.physics.manifold import normalized_variances

#: the anchors of memphase.analysis.dimensions.ANCHORS, the official [ALD24] one ("origin": the exact
#: data mean, no noise) first, then memphase's variants (each plus noise sqrt(tau) z)
ANCHORS = ("origin", "train", "fresh", "mean")
#: which anchors belong to which protocol (stored as the coordinate anchor_protocol)
ANCHOR_PROTOCOL = {"origin": "ald24", "train": "memphase", "fresh": "memphase",
                   "mean": "memphase"}
SIGNATURES = ("collapse", "excess")  # as memphase.analysis.posterior_variance.SIGNATURES
BLOCKS = np.array([-1, 0, 1])  # normal space, block 1, block 2


def _blocks(cfg, ratio):
    (k1, k2), s1 = cfg["data"]["block_dims"], cfg["data"]["std"]
    return [(k1, s1), (k2, s1 * ratio)]


def _stds(cfg, ratio, d) -> np.ndarray:
    """Nominal per-direction stds (construction basis order)."""
    return critical.block_stds(_blocks(cfg, ratio), d=d,
                               rest_std=max(cfg["data"]["normal_std"], 1e-12))


def is_digits(cfg) -> bool:
    return cfg["data"].get("model", "linear_manifold") == "digits"


def data_protocol(cfg) -> str:
    """The data generator a config resolves to: data.protocol, or for "auto" (the default) the
    official [ALD24] generator ("ald24": coordinate basis, np.random.seed draws) where it exists,
    i.e. a linear manifold on the unit sphere or not normalized, else memphase's own ("memphase":
    Haar basis, PCG64; the only one for normalize = "radius"). Digits have no generator: "digits".
    Stored in every result as the attribute data_protocol."""
    dc = cfg["data"]
    if is_digits(cfg):
        return "digits"
    if dc["protocol"] != "auto":
        return dc["protocol"]
    return "memphase" if dc["normalize"] == "radius" else "ald24"


def _mode(cfg):
    if is_digits(cfg):
        return False  # real data are not normalized: the [ALD24] g = 1 case
    return False if cfg["data"]["normalize"] == "none" else cfg["data"]["normalize"]


def digits_variances(cfg, d) -> np.ndarray:
    """The top-d PCA eigenvalues of the scikit-learn digits with the config's scaling."""
    from ..data.real import digits

    dc = cfg["data"]
    return digits(2, seed=0, scale=dc["scale"], whiten=dc["whiten"],
                  n_components=int(d)).variances()


def actual_variances(cfg, ratio, d) -> np.ndarray:
    """Actual per-direction variances of the data law (after normalization) [ALD24]: what every
    theory comparison uses (`memphase.physics.manifold.normalized_variances`); digits: PCA eigenvalues."""
    if is_digits(cfg):
        return digits_variances(cfg, d)
    return normalized_variances(_stds(cfg, ratio, d) ** 2, _mode(cfg))


def representative(cfg, d: int) -> np.ndarray:
    """A direction of each block (normal, 1, 2): the middle one of the block, in variance order
    (on linear manifolds every direction of a block shares its variance; on real data the bands
    of principal directions do not, and the middle one stands for the band's median)."""
    k1, k2 = cfg["data"]["block_dims"]
    k = k1 + k2
    return np.array([k + (d - k) // 2, k1 // 2, k1 + k2 // 2])


def block_theory(cfg, n: int, d: int, ratio: float, grid) -> dict:
    """Both theories for one (N, d, std_ratio), per block (normal, 1, 2), with the *actual*
    per-direction variances v of the data law (`actual_variances`) [ALD24, BBDM24]: critical taus
    ([ALD24] tau_c,b = root of tau^2 = (g sum v^2/2 + tau v_b)/(2 ln N); REM tau_C), predicted
    mean |Jacobian eigenvalue| on the grid, predicted kept fractions (threshold rule of
    `memphase.analysis.dimensions.predicted_kept_fraction`) and the official theory panel: the [ALD24]
    predicted singular value of each block divided by the largest one at that tau. nan for N < 2."""
    from memphase.analysis.dimensions import predicted_kept_fraction, predicted_kept_ratio_rem

    ms = cfg["measure"]
    v = actual_variances(cfg, ratio, d)
    stds, normalized = np.sqrt(v), bool(_mode(cfg))
    first = representative(cfg, d)  # a direction of each block
    var = v[first]
    nan_t, nan_b = np.full((grid.size, 3), np.nan), np.full(3, np.nan)
    if n < 2:
        return {"tau_ald": nan_b, "tau_rem": np.nan, "sv_ald": nan_t, "sv_rem": nan_t,
                "sv_ald_norm": nan_t, "kept_ald": nan_t, "kept_rem": nan_t, "var": var}
    tau_ald = critical.subspace_collapse_tau(n, stds, normalized=normalized)[first]
    tau_rem = float(critical.collapse_tau(n, v))
    sv_all = critical.jacobian_singular_values(grid, n, stds, normalized=normalized)
    r_rem = predicted_kept_ratio_rem(grid[:, None], var, tau_rem)
    return {
        "tau_ald": tau_ald,
        "tau_rem": tau_rem,
        "sv_ald": sv_all[:, first],
        "sv_ald_norm": sv_all[:, first] / sv_all.max(axis=1, keepdims=True),
        "sv_rem": (1.0 - r_rem) / grid[:, None],
        "kept_ald": predicted_kept_fraction(grid[:, None], tau_ald, var, ms["threshold"]),
        "kept_rem": predicted_kept_fraction(grid[:, None], tau_rem, var, ms["threshold"]),
        "var": var,
    }


def block_theory_variances(cfg, d: int, ratio: float) -> np.ndarray:
    """Actual variance of a direction of each block (normal, 1, 2)."""
    return actual_variances(cfg, ratio, d)[representative(cfg, d)]
