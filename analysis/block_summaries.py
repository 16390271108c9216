"""Per-block summaries of a Jacobian sweep and the threshold rule applied to theory [ALD24].

Split from `memphase.analysis.dimensions` (which re-exports every name here): the kept fraction and mean
|eigenvalue| per block recounted from stored eigenvalues, and the kept fractions / ratios the
[ALD24] and REM collapse theories predict under the same threshold rule.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "kept_fraction_per_block",
    "mean_abs_eigenvalue_per_block",
    "predicted_kept_fraction",
    "predicted_kept_ratio_rem",
]


# -- summaries of a sweep and the threshold rule applied to theory -----------------------------
def _block_masks(direction_block, blocks):
    direction_block = np.asarray(direction_block)
    return [direction_block == b for b in blocks]


def kept_fraction_per_block(eigenvalue, taus, direction_block, blocks,
                            threshold=0.5) -> np.ndarray:
    """Fraction of each block's directions kept, r = 1 + tau lambda >= threshold, mean over points.

    eigenvalue: (T, P, D) data-unit eigenvalues (`jacobian_sweep`'s "eigenvalue"), taus (T,),
    direction_block (D,) the block of each direction slot, blocks the block indices wanted.
    threshold: a float, or a (H,) sequence for a threshold-sensitivity study.
    Returns (T, n_blocks), or (H, T, n_blocks) for a sequence; nan for a block with no direction.
    Same rule as `tangent_dimensions` (lost when 1 + tau lambda < threshold) [ALD24].
    """
    eig = np.asarray(eigenvalue, dtype=np.float64)
    taus = np.asarray(taus, dtype=np.float64)
    if eig.ndim != 3 or eig.shape[0] != taus.size:
        raise ValueError(f"eigenvalue must be (T, P, D) with T = len(taus) = {taus.size}, got "
                         f"{eig.shape}")
    ths = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
    if np.any((ths <= 0) | (ths >= 1)):
        raise ValueError(f"thresholds must lie in (0, 1), got {ths.tolist()}")
    ratio = 1.0 + taus[:, None, None] * eig  # kept ratio r, (T, P, D)
    out = np.full((ths.size, taus.size, len(blocks)), np.nan)
    for j, mask in enumerate(_block_masks(direction_block, blocks)):
        if mask.any():
            kept = ratio[None, :, :, mask] >= ths[:, None, None, None]  # (H, T, P, k_b)
            out[:, :, j] = kept.mean(axis=(2, 3))
    return out if np.ndim(threshold) else out[0]


def mean_abs_eigenvalue_per_block(eigenvalue, direction_block, blocks) -> np.ndarray:
    """Mean |lambda| over points and the block's directions, (T, n_blocks) (nan for an empty
    block): the measured counterpart of the [ALD24] predicted singular values."""
    eig = np.abs(np.asarray(eigenvalue, dtype=np.float64))
    out = np.full((eig.shape[0], len(blocks)), np.nan)
    for j, mask in enumerate(_block_masks(direction_block, blocks)):
        if mask.any():
            out[:, j] = eig[:, :, mask].mean(axis=(1, 2))
    return out


def predicted_kept_fraction(tau, tau_c, variance, threshold: float = 0.5) -> np.ndarray:
    """Kept fraction a collapse theory predicts for a block of data variance s^2 at noise tau.

    A block is kept (1) when tau >= tau_c (no memorization: [ALD24] tau_c,i, or the REM tau_C of
    [BBDM24]) and the noise does not swamp it, s^2 / (tau + s^2) >= threshold (the
    population value of r = 1 + tau lambda, module docstring); otherwise lost (0). Broadcasts;
    nan where tau_c or the variance is nan.
    """
    tau = np.asarray(tau, dtype=np.float64)
    tau_c = np.asarray(tau_c, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    kept = (tau >= tau_c) & (var / (tau + var) >= threshold)
    return np.where(np.isnan(tau_c) | np.isnan(var), np.nan, kept.astype(np.float64))


def predicted_kept_ratio_rem(tau, variance, tau_collapse) -> np.ndarray:
    """REM picture of the kept ratio r = 1 + tau lambda of a direction of variance s^2 [BBDM24]:
    the population value s^2 / (tau + s^2) above the collapse tau_C (weights spread over
    exponentially many points), 0 below it (weights condensed on one training point,
    lambda = -1/tau, [BBDM24]). Broadcasts."""
    tau = np.asarray(tau, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    return np.where(tau >= np.asarray(tau_collapse, dtype=np.float64), var / (tau + var), 0.0)
