"""The training_dynamics job [BUBM25] through the experiment interface, on tiny configs."""

import math

import numpy as np
import pytest
import torch

from memphase.physics.schedules import make_schedule
from memphase.simulate.learning.checkpoints import (checkpoint_scores, fixed_dsm_loss, log_checkpoints,
                                  over_checkpoints)
from memphase.simulate.run.config import ConfigError
from memphase.simulate.experiments import get_experiment, run_in_memory
from memphase.simulate.experiments import training_dynamics as td
from memphase.simulate.learning.networks import build_network
from memphase.simulate.scores import EmpiricalScore
from memphase.simulate.learning.training import TrainConfig, train_score


def test_registered_and_checkpoints_log_spaced():
    assert get_experiment("training_dynamics") is td
    steps = log_checkpoints(200, 20000, 20)
    assert steps[0] == 200 and steps[-1] == 20000 and len(steps) == 20
    ratios = np.diff(np.log(steps))
    np.testing.assert_allclose(ratios, np.log(100) / 19, rtol=0.05)
    assert log_checkpoints(1, 5, 20) == [1, 2, 3, 4, 5]      # repeats after rounding dropped
    with pytest.raises(ValueError, match="exceeds the budget"):
        log_checkpoints(50, 10)


def test_few_points_trained_long_memorize_many_points_short_budget_censored():
    """N = 4 in d = 4 (8 noise draws per point, 3000 steps) ends with memorization ratio > 0.9,
    a finite tau_mem inside the budget and a held-out DSM loss above the training loss; N = 256
    with a 300-step budget never reaches 0.5: tau_mem = +inf with tau_mem_censored True (beyond
    the budget), not NaN, and almost no loss gap."""
    cfg = td.quick_config(grid={"n_train": [4], "lr": [3e-3]},
                          training={"steps": 3000, "noise_draws": 8})
    s = run_in_memory(td, cfg)[1].squeeze(drop=True)
    assert float(s["memorization_ratio"][-1]) > 0.9
    tau4 = float(s["tau_mem"])
    assert math.isfinite(tau4) and 50 <= tau4 <= 3000 and not bool(s["tau_mem_censored"])
    gap4 = float(s["loss_gap"][-1])
    assert gap4 > 0.1
    # one N memorized: no exponent, but the variables exist and say how many N were usable
    assert math.isnan(float(s["tau_mem_exponent"])) and int(s["tau_mem_exponent_n_points"]) == 1

    cfg = td.quick_config(grid={"n_train": [256]}, training={"steps": 300, "checkpoints": 4})
    _, ds = run_in_memory(td, cfg)
    s = ds.squeeze(drop=True)
    assert float(s["memorization_ratio"].max()) < 0.5
    assert math.isinf(float(s["tau_mem"])) and bool(s["tau_mem_censored"])
    assert ds.attrs["budget_steps"] == 300 and "censored" in ds["tau_mem"].attrs["long_name"]
    assert abs(float(s["loss_gap"][-1])) < 0.3 * gap4
    for name in list(ds.data_vars) + list(ds.coords):
        assert "long_name" in ds[name].attrs, name


def test_evaluate_checkpoint_of_the_empirical_score_is_the_memorizing_limit():
    """The per-checkpoint evaluation applied to the exact empirical score (the t -> infinity limit
    of DSM training): memorization ratio 1 for well separated points, score error against the
    empirical score 0, and against the population score the empirical score's own error."""
    cfg = td.quick_config(grid={"n_train": [6], "d": [8]})
    cell = td.cells(cfg)[0]
    sch = make_schedule("ou")
    probe = td.make_probe(cfg, cell, sch)
    out = td.evaluate_checkpoint(cfg, EmpiricalScore(probe.x, sch), probe, 0)
    assert out["memorization_ratio"] > 0.95 and out["collapse_fraction"] > 0.9
    assert out["score_error_empirical"] == pytest.approx(0.0, abs=1e-10)
    assert out["score_error_population"] > 0.05
    assert math.isnan(out["train_loss"])                     # not a network: no DSM loss


def test_over_checkpoints_and_fixed_loss_are_reproducible():
    """over_checkpoints stacks one measurement per kept checkpoint in step order and leaves the
    network untouched; fixed_dsm_loss uses the same draws for the same seed."""
    sch = make_schedule("ou")
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    net = build_network("residual_mlp", 3, seed=0, width=16, depth=1, emb_dim=8)
    res = train_score(x, sch, net, TrainConfig(steps=40, checkpoint_steps=(10, 40), seed=0))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    curve = over_checkpoints(net, res, sch, lambda s: {
        "loss": fixed_dsm_loss(s.network, x, sch, res.tau_range, 2, seed=5)})
    assert curve["train_step"].tolist() == [10, 40]
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    (_, s10), (_, s40) = list(checkpoint_scores(net, res, sch))
    assert fixed_dsm_loss(s40.network, x, sch, res.tau_range, 2, seed=5) == curve["loss"][1]
    assert fixed_dsm_loss(s10.network, x, sch, res.tau_range, 2, seed=5) == curve["loss"][0]
    assert fixed_dsm_loss(s10.network, x, sch, res.tau_range, 2, seed=6) != curve["loss"][0]


def test_config_errors_before_anything_runs():
    with pytest.raises(ConfigError, match="intrinsic_dim"):
        td.cells(td.quick_config(grid={"intrinsic_dim": [5]}))
    with pytest.raises(ConfigError, match="first_checkpoint"):
        td.cells(td.quick_config(training={"steps": 100, "first_checkpoint": 200}))
    with pytest.raises(ConfigError, match="gen_quality"):
        td.quick_config(measure={"gen_quality": "fid"})
    with pytest.raises(ConfigError, match="optimizer"):
        td.quick_config(training={"optimizer": "sgd2"})
    assert td.quick_config(training={"optimizer": "sgd_momentum"})["training"]["optimizer"] \
        == "sgd_momentum"
    cfg = td.quick_config()
    est = [td.estimate(cfg, c) for c in td.cells(cfg)]
    assert all(e["seconds"] > 0 and e["memory_bytes"] > 0 for e in est)
    assert est[1]["seconds"] >= est[0]["seconds"]            # more points: no cheaper


def test_linear_manifold_cell_and_plot(tmp_path):
    """A linear-manifold cell runs (Gaussian KL infinite: the law is singular; sliced Wasserstein
    finite), and the figure is written."""
    cfg = td.quick_config(grid={"n_train": [8, 32], "intrinsic_dim": [2]},
                          training={"steps": 300, "checkpoints": 4})
    _, ds = run_in_memory(td, cfg)
    assert np.isinf(ds["gaussian_kl"].values).all()
    assert np.isfinite(ds["sliced_wasserstein"].values).all()
    td.plot(ds, tmp_path / "td.png")
    assert (tmp_path / "td.png").stat().st_size > 1000
    from figure_checks import saved_figures, unexplained_dashed_lines  # issue 25: lines named

    with pytest.MonkeyPatch.context() as mp:
        figs = saved_figures(mp)
        td.plot(ds, tmp_path / "unused.png")
    assert len(figs) == 1 and unexplained_dashed_lines(figs[0]) == []
