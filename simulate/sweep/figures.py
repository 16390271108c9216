"""The figures of a finished sweep, drawn beside its results file."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..run.files import SweepError
from .plan import SweepPlan


# ----------------------------------------------------------------------------- figures


def _place(src: Path, dst: Path, replace: bool) -> bool:
    """Move `src` to `dst`; without `replace` never over an existing file (False if taken)."""
    if replace:
        os.replace(src, dst)
        return True
    try:
        os.link(src, dst)  # atomic: fails if dst exists
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        if dst.exists():
            return False
        os.replace(src, dst)
        return True
    src.unlink()
    return True


def draw_figures(plan: SweepPlan, ds, target, journal=None) -> list[Path]:
    """Draw the experiment's figure(s) of `ds` beside `target` and return the paths written.

    The figure is drawn in a temporary folder and then moved to <stem>.png (and whatever
    <stem>_*.png the experiment draws). A file the run did not create is never overwritten: if a
    name is taken, the figure goes to <stem>-1.png, <stem>-2.png, ... (a warning says so). Names
    recorded in `journal` (an earlier, interrupted attempt of this run) may be replaced."""
    return place_figures(lambda path: plan.exp.plot(ds, path), target, journal)


def place_figures(draw, target, journal=None) -> list[Path]:
    """Call `draw(path)` with path = <tmp>/<stem>.png in a temporary folder beside `target` and
    move what it drew (<stem>.png, <stem>_*.png) beside `target`, never over a file this run did
    not create: a taken name sends the figure(s) to <stem>-1.png, <stem>-2.png, ... (see
    `draw_figures`). Returns the paths written."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.fig-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        draw(tmp / f"{target.stem}.png")
        made = sorted(p.name for p in tmp.iterdir() if p.name.startswith(target.stem))
        ours = set(journal.figures()) if journal is not None else set()

        def names(stem):
            return [target.parent / (stem + n[len(target.stem):]) for n in made]

        k, stem = 0, target.stem
        while any(p.exists() and str(p) not in ours for p in names(stem)):
            k += 1
            stem = f"{target.stem}-{k}"
        dst = names(stem)
        if journal is not None:
            journal.note_figures(dst)
        for n, d in zip(made, dst):
            if not _place(tmp / n, d, replace=str(d) in ours):
                raise SweepError(f"{d} appeared while the figure was drawn; rerun to draw it")
        if k:
            print(f"memphase: warning: {names(target.stem)[0]} exists and was not written by this "
                  f"run; kept it, figure written to {dst[0]}", file=sys.stderr)
        return dst
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
