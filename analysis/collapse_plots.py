"""Figure of the collapse experiment [BBDM24] (Biroli, Bonnaire, de Bortoli, Mezard, arXiv
2402.18491), drawn with the panels of `memphase.analysis.sweep_plots`."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from .sweep_conventions import _coord
from .sweep_plots import _figure, _save, heatmap_panel

__all__ = ["plot_collapse"]


def plot_collapse(ds, path, formats=("png",)) -> list[Path]:
    """Figure of the collapse experiment [BBDM24]: (a) measured t_C (last change; squares: excess
    entropy) vs REM theory, empirical score, hollow where t_C < end time (censored), dotted: the
    finite-N theory t_C(N, d) per d; (b) fraction of trajectories on their final training point
    over (N or alpha, time) at the largest d with the REM (dashed) and finite-N (dotted) t_C lines:
    the (alpha, t) phase diagram; (c) memorization ratio over (N or alpha, d) with
    the boundary N_b(d) where t_C = end time."""
    axis = ds.attrs.get("size_axis", "n_train" if "n_train" in ds.dims else "alpha")
    score = "empirical" if "empirical" in _coord(ds, "score") else str(_coord(ds, "score")[0])
    fig, ax = _figure(1, 3, (16, 4.6))
    ax = ax[0]
    emp = ds.sel(score=score).mean("seed")
    t_end = float(ds.attrs.get("end_time", np.nan))
    th = emp["collapse_time_theory"].broadcast_like(emp["collapse_time_measured"])
    cmap = matplotlib.colormaps["viridis"]
    dvals = _coord(ds, "d")
    for i, d in enumerate(dvals):
        col = cmap(i / max(len(dvals) - 1, 1))
        t = np.asarray(th.sel(d=d).values, float)
        m = np.asarray(emp["collapse_time_measured"].sel(d=d).values, float)
        ok = t > t_end if np.isfinite(t_end) else np.ones_like(t, bool)
        ax[0].plot(t[ok], m[ok], "o", color=col, label=f"d={d}")
        ax[0].plot(t[~ok], m[~ok], "o", mfc="none", color=col)
        if "collapse_time_entropy" in emp:
            e = np.asarray(emp["collapse_time_entropy"].sel(d=d).values, float)
            ax[0].plot(t, e, "s", color=col, ms=4, alpha=0.7)
        if "collapse_time_finite_n_theory" in emp:
            fin = np.asarray(emp["collapse_time_finite_n_theory"].broadcast_like(
                emp["collapse_time_measured"]).sel(d=d).values, float)
            order = np.argsort(t)
            ax[0].plot(t[order], fin[order], ":", color=col, lw=1.2,
                       label="finite-N theory" if i == 0 else None)
    ax[0].plot([], [], "o", mfc="none", color="0.4", label="open: REM t_C < end time (censored)")
    if "collapse_time_entropy" in emp:
        ax[0].plot([], [], "s", color="0.4", ms=4, alpha=0.7, label="squares: excess-entropy t_C")
    lim = np.array([np.nanmin(th.values), np.nanmax(th.values)])
    if np.all(np.isfinite(lim)):
        ax[0].plot(lim, lim, "k-", lw=0.8, label="measured = theory")
    if np.isfinite(t_end):
        ax[0].axhline(t_end, color="0.5", ls=":", label="end time")
    ax[0].set(xlabel="REM t_C (schedule time)", ylabel="measured t_C (last change)",
              title=f"{score} score: collapse time")
    ax[0].legend(fontsize=7)
    if ds.sizes.get(axis, 0) >= 2:
        heatmap_panel(ax[1], ds, "same_as_final", axis, "time", {"d": float(dvals.max())},
                      score=score, vmin=0, vmax=1)
        ax[1].set_title(f"{score}, d={dvals.max()}: on final point (dashed: REM t_C, dotted: "
                        "finite-N t_C)",
                        fontsize=8)
        if ds.sizes.get("d", 0) >= 2:
            heatmap_panel(ax[2], ds, "memorization_ratio", axis, "d", score=score, vmin=0, vmax=1)
            ax[2].set_title(f"{score}: memorization ratio (dashed: t_C = end time)", fontsize=8)
    out = Path(path)
    return _save(fig, out.with_suffix(""), formats)
