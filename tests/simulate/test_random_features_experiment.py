"""The random_features job [BUBM25] through the experiment interface, on tiny configs."""

import numpy as np
import pytest

from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import get_experiment, run_in_memory
from memphase.simulate.experiments import random_features as rfx


def _cfg(**over):
    base = {"job": "random_features",
            "grid": {"d": [8], "psi_p": [16.0], "psi_n": [1.0, 2.0, 4.0], "t": [0.05],
                     "seeds": [0, 1]},
            "train": {"n_times": 60, "s_max": 1e5},
            "measure": {"spectrum_points": 150}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    return validate(base, rfx.SCHEMA)


@pytest.fixture(scope="module")
def exact_ds():
    return run_in_memory(rfx, _cfg())[1]


def test_registered():
    assert get_experiment("random_features") is rfx


def test_dataset_shape_and_timescales(exact_ds):
    ds = exact_ds
    assert ds["train_loss"].dims == ("d", "psi_p", "psi_n", "t", "seed", "time")
    assert ds["tau_mem"].dims == ("d", "psi_p", "psi_n", "t", "seed")
    assert "psi_n" in ds["tau_mem_exponent"].coords or ds["tau_mem_exponent"].dims == ("d", "psi_p", "t")
    # losses start at 1 (A = 0) and the train loss ends below the test loss (memorization)
    np.testing.assert_allclose(ds["train_loss"].isel(time=0), 1.0, atol=5e-3)
    assert bool((ds["test_loss"].isel(time=-1) > ds["train_loss"].isel(time=-1)).all())
    assert bool((ds["tau_mem"] > 10 * ds["tau_gen"]).all())
    # tau_gen does not depend on psi_n (within a factor 1.5), tau_mem grows with it
    tg = ds["tau_gen"].mean("seed").squeeze().values
    assert tg.max() / tg.min() < 1.5
    tm = ds["tau_mem"].mean("seed").squeeze().values
    assert np.all(np.diff(tm) > 0)
    # the empirical spectrum follows the theory even at p = 128 (Kolmogorov distance)
    assert float(ds["spectrum_distance"].max()) < 0.08
    assert np.isfinite(ds["tau_mem_exponent"]).all()


def test_gd_method_runs_official_loop():
    cfg = _cfg(grid={"psi_p": [4.0], "psi_n": [2.0], "t": [0.1], "seeds": [0], "d": [6]},
               model={"features": "tanh", "noise_draws": 500},
               train={"method": "gd", "s_max": 20.0, "s_min": 0.02, "n_times": 12})
    ds = run_in_memory(rfx, cfg)[1]
    tr = ds["train_loss"].squeeze().values
    assert tr[-1] < tr[0] < 1.0


@pytest.mark.parametrize("over, msg", [
    ({"grid": {"d": [2048], "psi_p": [4.0]}}, "p = psi_p d"),
    ({"train": {"s_min": 10.0, "s_max": 1.0}}, "s_max"),
    ({"train": {"method": "gd"}}, "tanh"),
])
def test_bad_configs_fail_before_compute(over, msg):
    cfg = _cfg(**over)
    with pytest.raises(ConfigError, match=msg):
        rfx.cells(cfg)


def test_plot_writes_png(exact_ds, tmp_path):
    rfx.plot(exact_ds, tmp_path / "rf")
    assert (tmp_path / "rf.png").exists()


def test_plot_names_every_dashed_line(exact_ds, monkeypatch):
    """Issue 25: the dashed / dotted curves and the tau_gen, tau_mem markers are in the legend."""
    from figure_checks import saved_figures, unexplained_dashed_lines

    figs = saved_figures(monkeypatch)
    rfx.plot(exact_ds, "unused.png")
    assert len(figs) == 1 and unexplained_dashed_lines(figs[0]) == []
