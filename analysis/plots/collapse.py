"""Figure of the collapse experiment [BBDM24] (Biroli, Bonnaire, de Bortoli, Mezard, arXiv
2402.18491), drawn with the panels of `memphase.analysis.plots.sweep`."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from .sweep_conventions import _coord
from .sweep import _figure, _save, heatmap_panel

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
        if ds.sizes.get("d", 0) >= 2 and not _flat_ratio_note(ax[2], ds, score, axis):
            heatmap_panel(ax[2], ds, "memorization_ratio", axis, "d", score=score, vmin=0, vmax=1)
            ax[2].set_title(f"{score}: memorization ratio (dashed: t_C = end time)", fontsize=8)
    out = Path(path)
    return _save(fig, out.with_suffix(""), formats)


FLAT = 0.05  # a memorization-ratio heatmap whose values span less than this shows nothing


def _flat_ratio_note(ax, ds, score, axis) -> bool:
    """When the memorization ratio of `score` is the same everywhere on the grid (e.g. every N
    memorizes: the boundary N_b(d) lies beyond the largest N at this end noise), write that on
    `ax` with the numbers instead of drawing a one-colour heatmap; True if it did."""
    ratio = ds["memorization_ratio"].sel(score=score).mean("seed")
    v = np.asarray(ratio.values, float)
    if not np.isfinite(v).any() or np.nanmax(v) - np.nanmin(v) >= FLAT:
        return False
    lines = [f"{score} score: memorization ratio {np.nanmean(v):.2f} at every ({axis}, d)",
             "of the grid: no transition to draw."]
    bname = next((b for b in ("memorization_boundary_n_train", "memorization_boundary_alpha")
                  if b in ds and b.endswith(axis)), None)
    if bname is not None:
        nb = np.asarray(ds[bname].values, float)
        lines.append(f"Boundary {bname}: {np.nanmin(nb):.3g} ... {np.nanmax(nb):.3g}")
        lines.append(f"(grid {axis}: {_coord(ds, axis).min():g} ... {_coord(ds, axis).max():g}).")
    tau_end = ds.attrs.get("end_tau", ds.attrs.get("param_sampler_t_min_tau"))
    if tau_end is not None:
        lines.append(f"End noise tau_end = {float(tau_end):g}; a larger one moves the")
        lines.append("boundary into the grid (e.g. config collapse_digits_boundary).")
    for other in _coord(ds, "score"):
        if str(other) != score:
            o = float(ds["memorization_ratio"].sel(score=other).mean())
            lines.append(f"{other} score: mean memorization ratio {o:.2f}")
    ax.text(0.03, 0.5, "\n".join(lines), transform=ax.transAxes, fontsize=8, va="center")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_frame_on(False)
    ax.set_title(f"{score}: memorization ratio over ({axis}, d)", fontsize=8)
    return True
