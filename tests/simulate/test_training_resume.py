"""DSM training interrupted by SIGTERM and resumed equals the uninterrupted run, bitwise (CPU)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.cli import Terminated
from memphase.simulate.data import isotropic_gaussian
from memphase.simulate.learning.networks import build_network
from memphase.simulate.learning.training import TrainConfig, train_score
from memphase.simulate.learning.training_resume import RESUME_DIR_ENV

STEPS = 40


def _conf(dtype="float32", **kw):
    # shuffled minibatches, EMA, cosine lr, kept checkpoints: every piece of state a resume needs
    base = dict(steps=STEPS, batch_size=7, noise_draws=2, lr=3e-3, lr_schedule="cosine",
                ema_decay=0.9, checkpoint_steps=(10, 25, STEPS), seed=3, dtype=dtype)
    base.update(kw)
    return TrainConfig(**base)


def _data(dtype="float32", seed=0):
    return isotropic_gaussian(20, 3, seed=seed, dtype=dtype)


def _train(conf, data=None, callback=None):
    net = build_network("residual_mlp", 3, width=16, depth=1, seed=5)
    data = _data(conf.dtype) if data is None else data
    return train_score(data, OrnsteinUhlenbeck(), net, conf, callback=callback)


def _assert_same(a, b):
    assert torch.equal(torch.as_tensor(a.losses), torch.as_tensor(b.losses))
    for k in a.raw_state:
        assert torch.equal(a.raw_state[k], b.raw_state[k]), k
    for (k, v), w in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(v, w), k
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    for s in a.checkpoints:
        for k in a.checkpoints[s]:
            assert torch.equal(a.checkpoints[s][k], b.checkpoints[s][k]), (s, k)


def _sigterm_at(k):
    def cb(step, loss):
        if step == k:
            os.kill(os.getpid(), signal.SIGTERM)
    return cb


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, dtype):
    ref = _train(_conf(dtype))
    path = tmp_path / "train.pt"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        _train(_conf(dtype, resume_path=str(path)), callback=_sigterm_at(17))
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    assert path.exists()
    assert torch.load(path, weights_only=True)["step"] == 17  # the current step was finished
    steps_seen = []
    got = _train(_conf(dtype, resume_path=str(path)), callback=lambda s, l: steps_seen.append(s))
    assert steps_seen[0] == 18 and steps_seen[-1] == STEPS
    _assert_same(got, ref)
    # the finished file: a rerun trains nothing and returns the same result
    again = _train(_conf(dtype, resume_path=str(path)), callback=lambda s, l: steps_seen.append(-1))
    assert -1 not in steps_seen
    _assert_same(again, ref)


def test_periodic_saves_and_env_folder(tmp_path, monkeypatch):
    ref = _train(_conf())
    monkeypatch.setenv(RESUME_DIR_ENV, str(tmp_path / "resume"))
    with pytest.raises(Terminated):
        _train(_conf(save_every=5), callback=_sigterm_at(12))
    files = list((tmp_path / "resume").glob("train-*.pt"))
    assert len(files) == 1 and torch.load(files[0], weights_only=True)["step"] == 12
    _assert_same(_train(_conf(save_every=5)), ref)


def test_mismatching_resume_file_is_refused(tmp_path):
    path = tmp_path / "train.pt"
    _train(_conf(resume_path=str(path)))
    with pytest.raises(ValueError, match=r"lr: stored 0.003 != this run 0.002") as e:
        _train(_conf(resume_path=str(path), lr=2e-3))
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="data_sha256") as e:
        _train(_conf(resume_path=str(path)), data=_data(seed=1))
    assert "\n" not in str(e.value)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        _train(_conf(resume_path=str(path)))


def test_bad_resume_options():
    with pytest.raises(ValueError, match="save_every"):
        TrainConfig(save_every=-1)
    with pytest.raises(ValueError, match="resume_path"):
        TrainConfig(resume_path=3)


SCRIPT = textwrap.dedent("""
    import os, sys, time
    import torch
    from memphase.physics.schedules import OrnsteinUhlenbeck
    from memphase.simulate.cli import Terminated
    from memphase.simulate.data import isotropic_gaussian
    from memphase.simulate.learning.networks import build_network
    from memphase.simulate.learning.training import TrainConfig, train_score

    resume, marker, out = sys.argv[1:4]

    def cb(step, loss):
        if marker != "-":
            if step == 5:
                open(marker, "w").close()
            time.sleep(0.02)  # leave the parent time to send SIGTERM mid-training

    conf = TrainConfig(steps=%d, batch_size=7, noise_draws=2, lr=3e-3, lr_schedule="cosine",
                       ema_decay=0.9, checkpoint_steps=(10, 25), seed=3, resume_path=resume)
    net = build_network("residual_mlp", 3, width=16, depth=1, seed=5)
    try:
        res = train_score(isotropic_gaussian(20, 3, seed=0, dtype="float32"), OrnsteinUhlenbeck(),
                          net, conf, callback=cb)
    except Terminated:
        sys.exit(143)
    torch.save({"raw": res.raw_state, "losses": torch.as_tensor(res.losses)}, out)
""" % STEPS)


def test_subprocess_sigterm_exits_143_and_rerun_resumes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    resume, marker, out = tmp_path / "r.pt", tmp_path / "started", tmp_path / "out.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(script), str(resume)]
    proc = subprocess.Popen(cmd + [str(marker), str(out)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "training did not start"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert resume.exists() and not out.exists()
    stopped = torch.load(resume, weights_only=True)["step"]
    assert 5 <= stopped < STEPS
    subprocess.run(cmd + ["-", str(out)], env=env, check=True, timeout=120)
    got = torch.load(out, weights_only=True)
    ref = _train(TrainConfig(steps=STEPS, batch_size=7, noise_draws=2, lr=3e-3,
                             lr_schedule="cosine", ema_decay=0.9, checkpoint_steps=(10, 25),
                             seed=3))
    assert torch.equal(got["losses"], torch.as_tensor(ref.losses))
    for k, v in ref.raw_state.items():
        assert torch.equal(got["raw"][k], v), k


SWEEP = """
job = "quickstart"
output = "unused.h5"
[data]
d = 3
[grid]
n_train = [3]
score = ["empirical"]
seeds = [0, 1]
[sampler]
steps = 5
n_samples = 8
record = 5
[sweep]
threads = 1
"""


def test_sweep_cell_resumes_its_training(tmp_path, monkeypatch):
    """A sweep killed (SIGTERM) while a cell trains exits 143 keeping the resume file under
    <output>.cells/training/; the rerun continues that training and equals an uninterrupted one."""
    import memphase.simulate.experiments.quickstart as quickstart
    from memphase.simulate.cli import main

    monkeypatch.delenv(RESUME_DIR_ENV, raising=False)
    (tmp_path / "sweep.toml").write_text(SWEEP)
    out = tmp_path / "out.h5"
    real, trained, kill = quickstart.run_cell, [], {"at": 17}

    def training_cell(c, cell):
        if cell["seed"] == 1:
            def cb(step, loss):
                trained.append(step)
                if step == kill["at"]:
                    os.kill(os.getpid(), signal.SIGTERM)
            res = _train(_conf(), callback=cb)
            trained.append(res)
        return real(c, cell)

    monkeypatch.setattr(quickstart, "run_cell", training_cell)
    args = ["sweep", str(tmp_path / "sweep.toml"), "-o", str(out), "-q", "--no-plot"]
    assert main(args) == 143
    assert len(list((tmp_path / "out.h5.cells" / "training").glob("train-*.pt"))) == 1
    assert RESUME_DIR_ENV not in os.environ  # restored after the sweep
    kill["at"], trained[:] = None, []
    assert main(args) == 0
    assert trained[0] == 18  # continued after the step it was stopped at
    _assert_same(trained[-1], _train(_conf()))
    assert not (tmp_path / "out.h5.cells").exists()
