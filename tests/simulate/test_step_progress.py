"""Long cells show training steps (issue 25 part 2): every training loop reports "step k/K" to
the sink the in-process sweep installs, and the bar's postfix shows it."""

import torch

import memphase.simulate.sweep as sweep_mod
from memphase.physics.ddpm import ddpm_chain
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate import step_progress
from memphase.simulate.cli import main
from memphase.simulate.ddpm import build_time_step_mlp, train_ddpm
from memphase.simulate.networks import build_network
from memphase.simulate.random_features import draw_problem, feature_matrices, train_sgd
from memphase.simulate.sweep.progress import step_sink
from memphase.simulate.training import TrainConfig, train_score


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
