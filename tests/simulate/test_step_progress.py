"""Long cells show training steps (issue 25 part 2): every training loop reports "step k/K" to
the sink the in-process sweep installs, and the bar's postfix shows it."""

import torch

import memphase.simulate.sweep as sweep_mod
from memphase.physics.ddpm import ddpm_chain
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.base import step_progress
from memphase.simulate.cli import main
from memphase.simulate.learning.ddpm import build_time_step_mlp, train_ddpm
from memphase.simulate.learning.networks import build_network
from memphase.simulate.learning.random_features import draw_problem, feature_matrices, train_sgd
from memphase.simulate.sweep.progress import step_sink
from memphase.simulate.learning.training import TrainConfig, train_score


def _recorded(fn):
    seen = []
    with step_progress.reporting(lambda k, n: seen.append((k, n))):
        fn()
    return seen


def test_report_without_a_sink_does_nothing_and_the_sink_is_restored():
    step_progress.report(1, 2)                      # no sink: no error, no effect
    outer = []
    with step_progress.reporting(lambda k, n: outer.append(k)):
        with step_progress.reporting(None):
            step_progress.report(1, 2)
        step_progress.report(3, 4)
    step_progress.report(5, 6)
    assert outer == [3]


def test_train_score_reports_every_step():
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net = build_network("residual_mlp", 2, width=8, depth=1, seed=0)
    seen = _recorded(lambda: train_score(x, OrnsteinUhlenbeck(), net,
                                         TrainConfig(steps=7, ema_decay=0.0)))
    assert seen == [(k, 7) for k in range(1, 8)]


def test_train_ddpm_reports_every_step():
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    net = build_time_step_mlp(2, 8, 1, seed=0)
    seen = _recorded(lambda: train_ddpm(x, net, ddpm_chain(100), 5, batch_size=4))
    assert seen == [(k, 5) for k in range(1, 6)]


def test_random_features_train_sgd_reports_every_step():
    pb = draw_problem(4, 2, 1, 0.3, seed=0)
    mats = feature_matrices(pb, "tanh", seed=1, noise_draws=50)
    seen = _recorded(lambda: train_sgd(pb, mats, 6, [0, 6], seed=2))
    assert seen == [(k, 6) for k in range(1, 7)]


class _FakeBar:
    n = 3

    def __init__(self):
        self.postfix = None

    def set_postfix_str(self, s, refresh=True):
        self.postfix = s


def test_step_sink_writes_step_k_of_K_into_the_bar():
    bar = _FakeBar()
    step_sink(bar, {"a": 1})(250, 1000)
    assert bar.postfix == "done=3, failed=1, step 250/1000"


def test_run_of_a_training_job_feeds_the_bar(tmp_path, monkeypatch):
    """`memphase run` of a job whose cells train (random_features, official GD loop, 2 cells of
    40 steps): the sink the sweep installs receives each cell's steps."""
    seen = []

    def recording_sink(bar, failed):
        inner = step_sink(bar, failed)

        def sink(k, n):
            seen.append((k, n))
            inner(k, n)
        return sink

    monkeypatch.setattr(sweep_mod, "step_sink", recording_sink)
    cfg = tmp_path / "rf.toml"
    cfg.write_text(f'job = "random_features"\noutput = "{tmp_path / "rf.h5"}"\n[grid]\nd = [4]\n'
                   'psi_p = [2.0]\npsi_n = [1.0]\nt = [0.3]\nseeds = [0, 1]\n[model]\n'
                   'features = "tanh"\nnoise_draws = 50\n[train]\nmethod = "gd"\ns_max = 0.4\n'
                   's_min = 0.01\nn_times = 4\n[measure]\nspectrum_points = 50\n')
    assert main(["run", str(cfg), "--no-plot"]) == 0
    total = seen[-1][1]
    assert total > 1 and seen.count((total, total)) == 2      # both cells trained to the end
    assert [k for k, n in seen if n == total][:3] == [1, 2, 3]


def test_step_events_from_workers_feed_the_bar():
    """Dask backends: each worker's latest step (events on backends.STEPS_TOPIC) in the
    postfix; a worker whose training finished drops out."""
    from memphase.simulate.sweep.progress import step_event_handler

    bar = _FakeBar()
    handle = step_event_handler(bar, {})
    handle((0.0, {"pid": 11, "step": 10, "total": 100}))
    assert bar.postfix == "done=3, failed=0, step 10/100"
    handle((0.1, {"pid": 12, "step": 5, "total": 50}))
    assert bar.postfix == "done=3, failed=0, steps 10/100 5/50"
    handle((0.2, {"pid": 11, "step": 100, "total": 100}))
    assert bar.postfix == "done=3, failed=0, step 5/50"


def test_a_dask_worker_sends_its_cells_steps(tmp_path):
    """A cell computed on a Dask worker with a steps topic sends its training steps as events
    (throttled; the last step always), which a subscribed client receives."""
    import time

    from distributed import Client, LocalCluster

    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import random_features as rfx
    from memphase.simulate.sweep.backends import STEPS_EVERY_S, STEPS_TOPIC, compute_cells

    cfg = validate({"job": "random_features", "grid": {"d": [4], "psi_p": [2.0], "psi_n": [1.0],
                                                        "t": [0.3], "seeds": [0]},
                    "model": {"features": "tanh", "noise_draws": 50},
                    "train": {"method": "gd", "s_max": 0.4, "s_min": 0.01, "n_times": 4},
                    "measure": {"spectrum_points": 50}}, rfx.SCHEMA)
    cell = rfx.cells(cfg)[0]
    got = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.subscribe_topic(STEPS_TOPIC, got.append)
        t0 = time.monotonic()
        (out,) = client.submit(compute_cells, "random_features", cfg, [cell], 1,
                               steps_topic=STEPS_TOPIC, pure=False).result()
        assert out[0] == "ok", out[1:3]
        elapsed = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    steps = [msg for _, msg in got]
    assert steps, "no step event reached the client"
    assert steps[-1]["step"] == steps[-1]["total"] > 1      # the last step is always sent
    # throttled: one event per STEPS_EVERY_S at most, plus the last, not one per step
    assert len(steps) <= 2 + elapsed / STEPS_EVERY_S
