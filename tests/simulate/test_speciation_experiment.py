"""Speciation experiment: config checks, the cell grid, and the measured t_S against theory."""

import math

import numpy as np
import pytest

from memphase.physics import critical
from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import run_in_memory, speciation


def _cfg(**grid):
    raw = {"job": "speciation", "grid": {"d": [64], "score": ["population"], **grid},
           "measure": {"n_traj": 150, "steps": 40, "n_boot": 100,
                       "offsets": [-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]}}
    return validate(raw, speciation.SCHEMA)


def test_population_cells_do_not_repeat_over_n_train():
    cfg = _cfg(score=["population", "empirical"], n_train=[64, 256], seeds=[0, 1])
    cells = speciation.cells(cfg)
    assert len(cells) == 2 * (1 + 2)
    assert {c["n_train"] for c in cells if c["score"] == "population"} == {0}


def test_branching_time_must_be_positive():
    cfg = _cfg(d=[2])
    cfg["measure"]["offsets"] = [-1.0, 0.0, 0.5]
    with pytest.raises(ConfigError, match="d = 2: branching time"):
        speciation.cells(cfg)


def test_measured_speciation_time_matches_theory_d64():
    """Cloning at d = 64 with the population score: the measured crossing of phi = 0.775 lies
    within 10% of the finite-d theory crossing (and of (1/2) ln d within 15%); the measured phi
    curve follows the theory curve within 0.1 at every branching time (150 trajectories: the
    binomial standard error of phi is <= 0.04)."""
    cfg = _cfg()
    ds = run_in_memory(speciation, cfg)[1]
    meas = float(ds["speciation_time_measured"].squeeze())
    curve_t = float(ds["speciation_time_cloning_theory"].squeeze())
    assert curve_t == pytest.approx(critical.speciation_time_from_cloning(8.0))
    assert abs(meas - curve_t) / curve_t < 0.10
    assert abs(meas - 0.5 * math.log(64)) / (0.5 * math.log(64)) < 0.15
    lo, hi = float(ds["speciation_time_lo"].squeeze()), float(ds["speciation_time_hi"].squeeze())
    assert lo <= meas <= hi
    diff = np.abs(ds["phi"].squeeze().values - ds["phi_theory"].squeeze().values)
    assert diff.max() < 0.1
    assert ds["phi"].attrs["units"] == "1" and ds["offset"].attrs["units"] == "OU time"
