"""Grid of the geometric-memorization experiment: training-set sizes (n_train or alpha axis,
N = round(e^{alpha d}) [BBDM24] Biroli et al., arXiv 2402.18491) and the tau grid of the Jacobian
sweeps. Shared by the cell plan (`geometric`) and the result assembly (`geometric_results`)."""

from __future__ import annotations

import math

import numpy as np

from ..run.config import ConfigError

#: largest training set
N_MAX = 10**6
#: smallest training set: the [ALD24] and REM theories need alpha = log N / d > 0
N_MIN = 2
N_MIN_WHY = ("the [ALD24] and REM theories need alpha = log N / d > 0; N = 1 gives NaN theory "
             "and critical taus")

CLOSED_FORM = ("empirical", "linear", "population")


def size_axis(cfg) -> str:
    """'n_train' or 'alpha': the grid axis that sets the training-set size (exactly one)."""
    g = cfg["grid"]
    given = [k for k in ("n_train", "alpha") if g[k]]
    if len(given) != 1:
        raise ConfigError("give exactly one of grid.n_train or grid.alpha "
                          f"(got {' and '.join(given) if given else 'neither'})")
    return given[0]


def n_train_of(alpha: float, d: int) -> int:
    """N = round(e^{alpha d}) [BBDM24]."""
    return int(round(math.exp(alpha * d)))


def taus(cfg) -> np.ndarray:
    """The tau grid: n_tau values in [tau_min, tau_max], log-spaced (measure.tau_spacing = "log")
    or evenly spaced ("linear", the official [ALD24] panel's linspace), plus tau_phase unless it
    is a grid value already (to 1e-9 relative; then the grid is kept exactly as spaced)."""
    m = cfg["measure"]
    space = np.linspace if m.get("tau_spacing", "linear") == "linear" else np.geomspace
    grid = space(m["tau_min"], m["tau_max"], m["n_tau"])
    if np.any(np.isclose(grid, m["tau_phase"], rtol=1e-9, atol=0.0)):
        return grid  # tau_phase on the grid up to rounding (linspace's 0.1 is 0.1 + 1e-17)
    return np.union1d(grid, [m["tau_phase"]])


def _n_table(cfg) -> np.ndarray:
    """N for every (size axis value, d)."""
    g = cfg["grid"]
    axis = size_axis(cfg)
    return np.array([[v if axis == "n_train" else n_train_of(v, d) for d in g["d"]]
                     for v in g[axis]], dtype=np.int64)
