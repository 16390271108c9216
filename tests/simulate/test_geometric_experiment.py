"""The geometric experiment ([ALD24] linear manifolds) through the experiment interface."""

import numpy as np
import pytest

from simulate.config import ConfigError, validate
from simulate.experiments import geometric


def tiny_config(**grid):
    raw = {"job": "geometric", "data": {"block_dims": [2, 3], "normal_std": 0.01, "normalize": False},
           "grid": {"n_train": [1, 300], "d": [12], "std_ratio": [0.3],
                    "score": ["empirical", "population"], "seeds": [0], **grid},
           "measure": {"n_tau": 10, "n_points": 6, "tau_min": 1e-4, "tau_max": 1.0}}
    return validate(raw, geometric.SCHEMA)


def test_geometric_cells_assemble_with_theory():
    cfg = tiny_config()
    cells = geometric.cells(cfg)
    assert len(cells) == 4
    ds = geometric.assemble(cfg, cells, [geometric.run_cell(cfg, c) for c in cells])
    kept = ds["kept_fraction"].isel(d=0, std_ratio=0, seed=0)
    small = ds["tau"] < 1e-3
    # population score: nothing lost at small tau in either tangent block
    assert np.all(kept.sel(score="population", block=[0, 1]).where(small, drop=True) == 1.0)
    # empirical score with N = 1: every tangent direction lost well below the data scale
    assert np.all(kept.sel(score="empirical", n_train=1, block=[0, 1]).where(small, drop=True) == 0.0)
    # theory columns: the higher-variance block is lost first (larger tau_c) [ALD24]
    th = ds["critical_tau_theory"].sel(score="empirical", n_train=300).isel(d=0, std_ratio=0, seed=0)
    assert float(th.sel(block=0)) > float(th.sel(block=1)) > 0
    assert ds["critical_tau"].attrs["units"] == "data variance"


def test_geometric_config_errors():
    with pytest.raises(ConfigError, match="unknown key 'n_trains'"):
        validate({"job": "geometric", "grid": {"n_trains": [3]}}, geometric.SCHEMA)
    with pytest.raises(ValueError, match="must exceed the tangent dimension"):
        geometric.cells(tiny_config(d=[4]))
