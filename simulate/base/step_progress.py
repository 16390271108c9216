"""Training steps inside a cell, for the progress bar: the training loops (`train_score`,
`train_ddpm`, `random_features.train_sgd`) call `report(step, total)` after every step; a caller
that shows progress (the in-process sweep, `memphase run`) installs a sink with `reporting`, and
the bar then reads "step k/K" while a long training cell runs. Without a sink `report` does
nothing (a Dask worker, a library call). Imports nothing from memphase, so any module can use it."""

from __future__ import annotations

import contextlib
import threading

__all__ = ["report", "reporting"]

_local = threading.local()


def report(step: int, total: int) -> None:
    """Tell the current sink (if any) that training step `step` of `total` is done."""
    sink = getattr(_local, "sink", None)
    if sink is not None:
        sink(int(step), int(total))


@contextlib.contextmanager
def reporting(sink):
    """Within the block, `report(step, total)` calls `sink(step, total)` (in this thread);
    the previous sink is restored afterwards. `sink=None` silences reports."""
    old = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = old
