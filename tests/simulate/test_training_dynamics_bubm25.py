"""The `protocol = "bubm25"` path of the training_dynamics job end to end on a tiny config, its
config checks, and the memphase default left unchanged (docs/conformance/bubm25.md)."""

import math

import numpy as np
import pytest

from memphase.simulate.run.config import ConfigError
from memphase.simulate.experiments import training_dynamics as td


def _cfg(**over):
    base = dict(protocol="bubm25",
                grid={"n_train": [8, 16], "seeds": [0, 1], "width": [16], "depth": [1], "d": [4],
                      "lr": [6e-4], "batch_size": [512]},
                training={"steps": 60, "checkpoints": 4, "first_checkpoint": 10},
                bubm25={"checkpoint_grid": "log", "n_samples": 40, "sampler_steps": 5},
                measure={"n_eval": 64, "n_reference": 64, "n_projections": 8, "loss_draws": 1})
    for k, v in over.items():
        if isinstance(v, dict):
            base.setdefault(k, {}).update(v)
        else:
            base[k] = v
    return td.quick_config(**base)


def test_bubm25_cells_run_and_assemble():
    cfg = _cfg()
    cells = td.cells(cfg)
    assert len(cells) == 4
    steps = td.checkpoint_steps(cfg)
    assert steps[0] == 10 and steps[-1] == 60
    res = [td.run_cell(cfg, c) for c in cells]
    ds = td.assemble(cfg, cells, res)
    assert ds.attrs["protocol"] == "bubm25" and "official" in ds.attrs["seed_streams"]
    fm = ds["memorization_ratio"].values
    assert np.all((fm >= 0) & (fm <= 1))
    assert np.isnan(ds["gaussian_kl"].values).all()           # not measured for the mixture
    err = ds["score_error_population"].values
    assert np.all(np.isfinite(err) & (err > 0))
    assert int(ds["parameters"].values.ravel()[0]) == 4 * 16 + 16 + (2 * (256 + 16) + 32) + 17 * 4
    for v in ("tau_mem_exponent_tobit", "tau_gen_exponent_tobit"):
        assert v in ds
    # same cell twice: bitwise reproducible (every draw seeded)
    again = td.run_cell(cfg, cells[0])
    np.testing.assert_array_equal(again["train_loss"], res[0]["train_loss"])


def test_bubm25_official_grid_is_default():
    cfg = _cfg(training={"steps": 1000}, bubm25={"checkpoint_grid": "official"})
    assert td.checkpoint_steps(cfg) == [250, 500, 750, 1000]
    assert td.estimate(cfg, td.cells(cfg)[0])["seconds"] > 0


@pytest.mark.parametrize("over, words", [
    ({"grid": {"n_train": [7]}}, "even grid.n_train"),
    ({"training": {"optimizer": "radam"}}, "training.optimizer"),
    ({"grid": {"intrinsic_dim": [1]}}, "intrinsic_dim"),
    ({"bubm25": {"sampler_steps": 2000}}, "sampler_steps"),
])
def test_bubm25_config_errors_are_one_line(over, words):
    with pytest.raises(ConfigError) as e:
        td.cells(_cfg(**over))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_memphase_protocol_stays_default():
    cfg = td.quick_config()
    assert cfg["protocol"] == "memphase"
    assert td.checkpoint_steps(cfg)[0] == 50 and not math.isnan(td.estimate(cfg, td.cells(cfg)[0])["seconds"])
