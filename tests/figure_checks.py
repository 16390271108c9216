"""Checks on drawn figures shared by the tests (issue 25, part 5: figures explain themselves)."""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

DASHED = ("--", ":", "-.")

#: the collapse grid of the synthetic results the figure tests draw (3 d x 4 N x 2 scores x 2 seeds)
COLLAPSE_GRID = """job = "collapse"
[grid]
d = [4, 8, 12]
n_train = [8, 64, 512, 4096]
score = ["empirical", "population"]
seeds = [0, 1]
[sampler]
t_min_tau = 0.1
"""


def unexplained_dashed_lines(fig) -> list[str]:
    """Dashed / dotted / dash-dot lines with data that their axes' legend does not name: neither
    the line's own label is in the legend nor a legend handle has its line style."""
    bad = []
    for ax in fig.axes:
        leg = ax.get_legend()
        labels = {t.get_text() for t in leg.get_texts()} if leg else set()
        handles = (getattr(leg, "legend_handles", None) or getattr(leg, "legendHandles", [])
                   ) if leg else []
        styles = {h.get_linestyle() for h in handles if isinstance(h, Line2D)}
        for ln in ax.get_lines():
            ls = ln.get_linestyle()
            if ls not in DASHED or len(np.atleast_1d(ln.get_xdata())) == 0:
                continue
            if ln.get_label() in labels or ls in styles:
                continue
            bad.append(f"{ax.get_title()[:50]!r}: {ls} line {ln.get_label()!r}")
    return bad


def saved_figures(monkeypatch) -> list:
    """Make Figure.savefig record the figure instead of writing it; returns the (growing) list."""
    figs = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figs.append(self))
    return figs
