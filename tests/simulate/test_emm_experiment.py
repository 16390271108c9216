"""The emm experiment [GDPLLW23]: EMM search per recipe through the experiment interface.

Cheap stand-in for a trained network: the empirical score sampled only down to tau_min = 0.02 (the
Tweedie output there is a softmax average of nearby training points), whose memorization ratio
falls with N once the training points crowd within ~sqrt(tau_min) of each other."""

import numpy as np
import pytest

from memphase.simulate.run.config import validate
from memphase.simulate.experiments import emm, get_experiment, memorization as mem, run_in_memory



def config(grid=None, search=None):
    raw = {"job": "emm",
           "grid": {"d": [2, 4], "score": ["empirical"], "seeds": [0, 1], **(grid or {})},
           "sampler": {"steps": 60, "n_samples": 128, "record": 4, "t_min_tau": 0.02,
                       "dtype": "float64"},
           "search": {"n_start": 4, "n_max": 4096, "rel_resolution": 0.1, **(search or {})}}
    return validate(raw, emm.SCHEMA)


def test_registered():
    assert get_experiment("emm") is emm


def test_emm_brackets_the_crossing_and_grows_with_d():
    """Per d: the stored bracket is consistent with the evaluated points (seed-mean ratio >= 0.9
    at EMM, < 0.9 at emm_upper, upper - emm <= max(1, 0.1 emm)), re-measuring a point reproduces
    it (seeded), points beyond n_evaluations are NaN padding, and EMM grows with d (training
    points lie farther apart, so the same tau_min resolves more of them)."""
    cfg = config()
    cells, ds = run_in_memory(emm, cfg)
    assert len(cells) == 2
    sel = ds.squeeze(drop=True)  # dims left: d, seed, evaluation
    for d in (2, 4):
        s = sel.sel(d=d)
        lo, hi, k = float(s["emm"]), float(s["emm_upper"]), int(s["n_evaluations"])
        ns, r = s["evaluated_n"].values, s["evaluated_ratio"].values
        assert np.all(np.isfinite(ns[:k])) and np.all(np.isnan(ns[k:]))
        assert r[ns == lo][0] >= 0.9 > r[ns == hi][0]
        assert hi - lo <= max(1, 0.1 * lo)
        assert not np.any((ns[:k] > lo) & (ns[:k] < hi))  # nothing evaluated inside the bracket
    again = [mem.measure_ratio(cfg, {**cells[1], "n_train": int(sel.sel(d=4)["emm"]), "seed": s})
             for s in (0, 1)]
    stored = sel.sel(d=4)["evaluated_ratio_seeds"].where(
        sel.sel(d=4)["evaluated_n"] == sel.sel(d=4)["emm"], drop=True).values[0]
    np.testing.assert_array_equal(again, stored)
    assert float(sel.sel(d=4)["emm"]) > 4 * float(sel.sel(d=2)["emm"])
    for name in list(ds.data_vars) + list(ds.coords):
        assert "long_name" in ds[name].attrs, name
    assert ds.attrs["eps"] == 0.1


def test_censored_search_is_recorded_not_failed():
    """n_max below the crossing: EMM is the last N evaluated (a lower bound), emm_upper NaN."""
    cfg = config({"d": [4]}, {"n_max": 16})
    (cell,) = emm.cells(cfg)
    res = emm.run_cell(cfg, cell)
    assert res["emm"] == 16 and np.isnan(res["emm_upper"])
    assert res["n_evaluations"] == 3  # 4, 8, 16


def test_search_config_errors():
    with pytest.raises(ValueError, match="n_min <= n_start <= n_max"):
        emm.cells(config(search={"n_start": 64, "n_max": 32}))
    with pytest.raises(ValueError, match="eps"):
        config(search={"eps": 1.0})
    est = emm.estimate(config(), emm.cells(config())[0])
    assert est["seconds"] > 0 and est["memory_bytes"] > 0


def test_emm_takes_digits_and_refuses_more_than_1797():
    """data.model = "digits": the search draws digit subsets (n_max <= 1797); n_max = 2000 is a
    one-line ConfigError (CLI exit 2) before any compute. The exact empirical score on digits
    copies a training image at every N down to tau_min = 1e-3 (docs/real_data.md), so the
    search is censored at n_max: EMM = n_max, emm_upper = NaN."""
    pytest.importorskip("sklearn")
    from memphase.simulate.run.config import ConfigError

    raw = {"job": "emm", "data": {"model": "digits"},
           "grid": {"d": [8], "score": ["empirical"], "seeds": [0]},
           "sampler": {"steps": 40, "n_samples": 32, "record": 4, "t_min_tau": 1e-3},
           "search": {"n_start": 8, "n_max": 32}}
    cfg = validate(raw, emm.SCHEMA)
    (cell,) = emm.cells(cfg)
    res = emm.run_cell(cfg, cell)
    assert res["emm"] == 32 and np.isnan(res["emm_upper"]) and res["n_evaluations"] == 3
    bad = validate({**raw, "search": {"n_start": 8, "n_max": 2000}}, emm.SCHEMA)
    with pytest.raises(ConfigError, match="n_max = 2000 exceeds the 1797") as e:
        emm.cells(bad)
    assert "\n" not in str(e.value)
