"""Reading-rule variants of tau_mem in the `random_features` job (measure.gap_fractions;
memphase.analysis.random_features.gap_crossing_times): f = 0.5 is memphase's tau_mem, and the
fitted exponent of tau_mem ~ psi_n^a depends on the fraction read."""

import math

import numpy as np
import pytest

from memphase.analysis.random_features import curve_timescales, gap_crossing_times
from memphase.simulate.config import ConfigError, validate
from memphase.simulate.experiments import random_features as rfx
from memphase.simulate.experiments import run_in_memory


def test_gap_crossing_times_closed_form():
    """Gap 1 - exp(-t) (limit 1): crossing of f at t = -log(1 - f), to the grid's log accuracy."""
    t = np.geomspace(1e-3, 1e3, 4000)
    got = gap_crossing_times(t, np.zeros_like(t), 1 - np.exp(-t), 1.0, [0.01, 0.5, 0.9])
    np.testing.assert_allclose(got, -np.log1p(-np.array([0.01, 0.5, 0.9])), rtol=1e-3)
    assert math.isinf(gap_crossing_times(t, 0 * t, 0.4 * (1 - np.exp(-t)), 1.0, [0.5])[0])
    assert math.isnan(gap_crossing_times(t, 0 * t, 0 * t, 0.0, [0.5])[0])


def test_job_stores_variants_and_half_matches_tau_mem():
    cfg = validate({"job": "random_features",
                    "grid": {"d": [8], "psi_p": [64.0], "psi_n": [2.0, 4.0, 8.0], "t": [0.01],
                             "seeds": [0, 1]},
                    "train": {"n_times": 160}, "measure": {"spectrum_points": 120,
                                                           "gap_fractions": [0.05, 0.5, 0.9]}},
                   rfx.SCHEMA)
    ds = run_in_memory(rfx, cfg)[1].squeeze()
    half = ds["tau_mem_at_fraction"].sel(gap_fraction=0.5)
    np.testing.assert_allclose(half.values, ds["tau_mem"].values, rtol=1e-12)
    a = ds["tau_mem_at_fraction_exponent"].values
    assert a[1] == pytest.approx(float(ds["tau_mem_exponent"]), abs=1e-12)
    # the onset reading grows faster with psi_n than the half point, the completion slower
    assert a[0] > a[1] + 0.1 and a[2] < a[1] - 0.1, a


def test_bad_fraction_is_a_config_error():
    with pytest.raises(ConfigError):
        validate({"job": "random_features", "measure": {"gap_fractions": [0.5, 1.0]}}, rfx.SCHEMA)
