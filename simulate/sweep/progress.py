"""Progress that moves: a bar whose elapsed time ticks every second even while one long cell
runs, and one line per phase after the cells (assembly with the job's theory, figures), so that
a run never sits silent with a frozen clock; inside a training cell the bar also shows the
training step ("step k/K", `step_sink`)."""

from __future__ import annotations

import contextlib
import sys
import threading

__all__ = ["ticking", "phase", "step_sink", "step_event_handler"]

TICK_S = 1.0


@contextlib.contextmanager
def ticking(bar, interval: float = TICK_S):
    """Refresh `bar` (a tqdm) every `interval` seconds from a daemon thread while the block runs,
    so its elapsed time and rate move between updates. Nothing happens for a disabled bar."""
    if getattr(bar, "disable", False):
        yield bar
        return
    stop = threading.Event()

    def tick():
        while not stop.wait(interval):
            bar.refresh()

    thread = threading.Thread(target=tick, name="memphase-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def phase(desc: str, progress: bool = True, interval: float = TICK_S):
    """A one-line ticking timer `desc: 00:07` on stderr for a step with no count (assembling the
    results and their theory, drawing figures); nothing when `progress` is false."""
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", disable=not progress,
               file=sys.stderr, leave=True)
    try:
        with ticking(bar, interval):
            yield bar
    finally:
        bar.close()


def step_sink(bar, failed):
    """A sink for `memphase.simulate.base.step_progress.reporting`: each training step reported
    inside a cell sets the bar's postfix to `done=.., failed=.., step k/K` (drawn by the next
    refresh, at least every second under `ticking`); `failed` is the sweep's dict of failed
    cells. The next `bar.set_postfix(done=.., failed=..)` after the cell clears the step."""
    def sink(step, total):
        bar.set_postfix_str(f"done={bar.n}, failed={len(failed)}, step {step}/{total}",
                            refresh=False)
    return sink


def step_event_handler(bar, failed):
    """A `distributed.Client.subscribe_topic` handler for the steps that Dask workers send
    (`backends.STEPS_TOPIC`): each event `(time, {"pid", "step", "total"})` updates that worker's
    latest step, and the bar's postfix shows every worker's, `step k/K` (one worker) or
    `steps k1/K1 k2/K2` (several), through `step_sink`'s format."""
    latest: dict = {}

    def handler(event):
        msg = event[1]
        latest[msg["pid"]] = (int(msg["step"]), int(msg["total"]))
        if msg["step"] >= msg["total"]:
            latest.pop(msg["pid"])  # that worker's training finished
        steps = " ".join(f"{k}/{n}" for k, n in latest.values())
        word = "step" if len(latest) == 1 else "steps"
        bar.set_postfix_str(f"done={bar.n}, failed={len(failed)}" + (f", {word} {steps}"
                                                                     if steps else ""),
                            refresh=False)
    return handler
