"""Resumable DSM training: the resume file of `train_score` and the SIGTERM guard around it.

A resume file holds everything a training run depends on at the end of a step: network weights,
optimizer and lr-schedule state, EMA weights, the kept checkpoints, the losses so far, the step,
the shuffled-epoch position and every RNG state (the training Generator, the global CPU state and
the CUDA states when CUDA is initialized). A run resumed from it is bitwise identical on CPU to an
uninterrupted one (tests/simulate/test_training_resume.py).

It also records the run's identity (`run_identity`): the config fields that determine the result,
the training data's shape and sha256, the initial network (hparams and sha256 of its weights) and
the tau range. A file of another run is refused with one line naming the difference.

`MEMPHASE_TRAIN_RESUME_DIR`: when TrainConfig.resume_path is None and this environment variable
names a folder, `train_score` keeps its resume file there as `train-<run hash>.pt`. The sweep
engine sets it to `<output>.cells/training/` while computing cells, so a requeued SLURM task
resumes the training of the cell it was in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import torch

from ..base.errors import Terminated
from ..base.fs import atomic_write, fsync_dir, make_dirs

RESUME_DIR_ENV = "MEMPHASE_TRAIN_RESUME_DIR"
# TrainConfig fields that do not change the trained function (not part of the run identity)
NOT_IDENTITY = ("device", "resume_path", "save_every")
FORMAT = 1


def _sha(t: torch.Tensor) -> str:
    a = t.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(a.view(torch.uint8).numpy().tobytes() if a.numel() else b"").hexdigest()


def run_identity(config, x: torch.Tensor, network, tau_range, labels=None) -> dict:
    """The identity of a training run: {'config', 'data_shape', 'data_sha256', 'network',
    'tau_range'} and, for a label-conditioned run, 'labels_sha256'; two runs with equal
    identities compute the same result."""
    h = hashlib.sha256()
    for k, v in network.state_dict().items():
        h.update(k.encode())
        h.update(_sha(v).encode())
    cfg = {k: v for k, v in config.to_dict().items() if k not in NOT_IDENTITY}
    extra = {} if labels is None else {"labels_sha256": _sha(labels.long())[:16]}
    return json.loads(json.dumps({**extra,
        "config": cfg, "data_shape": list(x.shape), "data_sha256": _sha(x)[:16],
        "network": {"hparams": dict(getattr(network, "hparams", {})),
                    "weights_sha256": h.hexdigest()[:16]},
        "tau_range": list(tau_range)}, sort_keys=True, default=str))


def run_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def resume_file(config, identity: dict):
    """config.resume_path, else `$MEMPHASE_TRAIN_RESUME_DIR/train-<run hash>.pt`, else None."""
    if config.resume_path is not None:
        return Path(config.resume_path)
    folder = os.environ.get(RESUME_DIR_ENV)
    if not folder:
        return None
    return Path(folder) / f"train-{run_hash(identity)}.pt"


def _difference(stored: dict, expected: dict) -> str:
    for part in ("config", "network"):
        a, b = stored.get(part, {}), expected.get(part, {})
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"{part} {k}: stored {a.get(k)!r} != this run {b.get(k)!r}"
    for k in sorted(set(stored) | set(expected)):
        if stored.get(k) != expected.get(k):
            return f"{k}: stored {stored.get(k)!r} != this run {expected.get(k)!r}"
    return ""


def load_state(path: Path, identity: dict):
    """The state saved in `path` (None if there is no file); ValueError (one line) when the file
    is unreadable or belongs to another run."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        stored = json.loads(state["identity"])
    except Exception as e:  # truncated, not a torch file, other format
        raise ValueError(f"resume file {path} is unreadable ({type(e).__name__}); delete it to "
                         f"train from scratch") from None
    if state.get("format") != FORMAT:
        raise ValueError(f"resume file {path} has format {state.get('format')!r}, expected {FORMAT}")
    diff = _difference(stored, identity)
    if diff:
        raise ValueError(f"resume file {path} belongs to another training run ({diff})")
    return state


def save_state(path: Path, state: dict, identity: dict):
    """Write the state atomically (temporary file beside `path`, fsync, os.replace)."""
    make_dirs(path.parent)
    blob = dict(state, identity=json.dumps(identity, sort_keys=True), format=FORMAT)
    atomic_write(path, lambda fh: torch.save(blob, fh))
    fsync_dir(path.parent)


def rng_states(gen: torch.Generator) -> dict:
    out = {"gen": gen.get_state(), "cpu": torch.get_rng_state(), "cuda": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(gen: torch.Generator, states: dict):
    gen.set_state(states["gen"])
    torch.set_rng_state(states["cpu"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class SigtermGuard:
    """While active (main thread only), SIGTERM sets `.requested` instead of interrupting; the
    previous handler is restored on exit. Elsewhere it is inert (requested stays False)."""

    def __init__(self, active: bool = True):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._old = None

    def _handle(self, signum, frame):
        self.requested = True

    def __enter__(self):
        if self.active:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGTERM, self._old)
        return False


def terminated():
    """The project's SIGTERM exception (`memphase.simulate.base.errors.Terminated`, re-exported by the CLI: exit status 143)."""
    return Terminated("SIGTERM during training; the resume file is saved, rerun to continue")


@contextlib.contextmanager
def resume_dir_env(folder):
    """Set MEMPHASE_TRAIN_RESUME_DIR to `folder` for the duration (unless already set): child
    processes started inside (Dask workers) inherit it."""
    if os.environ.get(RESUME_DIR_ENV):
        yield
        return
    os.environ[RESUME_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        os.environ.pop(RESUME_DIR_ENV, None)
