"""Figures of results Datasets (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .sweep_plots import write_figure  # noqa: E402

__all__ = ["plot_quickstart", "plot_validation", "plot_geometric", "plot_geometric_phase",
           "plot_geometric_learned", "save"]


def save(fig, path, formats=("png",)) -> list[Path]:
    """Save a figure under `path` with each suffix in `formats`; close it."""
    out = write_figure(fig, Path(path).with_suffix(""), formats, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_quickstart(ds, path, formats=("png",)):
    """Three panels: memorization vs N per score; measured vs theory collapse time; fraction of
    trajectories already on their final training point vs tau."""
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    n = ds["n_train"].values
    for s in ds["score"].values:
        sel = ds.sel(score=s)
        ax[0].plot(n, sel["memorization_ratio"].mean("seed"), "o-", label=f"{s}: ratio < 1/3")
        ax[0].plot(n, sel["collapse_fraction"].mean("seed"), "s--", label=f"{s}: collapse frac.")
    ax[0].set(xscale="log", xlabel="training-set size N", ylabel="fraction of samples",
              title="memorization", ylim=(-0.03, 1.03))
    ax[0].legend(fontsize=8)
    if "empirical" in ds["score"].values:
        emp = ds.sel(score="empirical")
        ax[1].errorbar(n, emp["collapse_time_measured"].mean("seed"),
                       yerr=emp["collapse_time_spread"].mean("seed"), fmt="o",
                       label="measured (last change of nearest point)")
    ax[1].plot(n, ds["collapse_time_theory"], "k-", label="theory t_C (REM)")
    ax[1].set(xscale="log", xlabel="training-set size N", ylabel="collapse time (schedule time)",
              title=f"collapse time, d = {ds.attrs.get('d', '')}".rstrip(", d = "))
    ax[1].legend(fontsize=8)
    if "empirical" in ds["score"].values:
        cmap = plt.get_cmap("viridis")
        for i, nn in enumerate(n):
            frac = ds["same_as_final"].sel(score="empirical", n_train=nn).mean("seed")
            ax[2].plot(ds["tau"], frac, color=cmap(i / max(len(n) - 1, 1)), label=f"N = {nn}")
        ax[2].set(xscale="log", xlabel="noise variance tau (data units)",
                  ylabel="fraction on final training point", title="empirical score: condensation")
        ax[2].invert_xaxis()
        ax[2].legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path, formats)


def plot_validation(ds, path, formats=("png",)):
    """Measured vs predicted critical times (t_S by cloning, t_C by both estimators) with the
    identity line and 95% CIs; failed checks in red."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    q = ds["quantity"].values
    markers = {"t_S (cloning)": "o", "t_C (excess entropy)": "s", "t_C (last change)": "^"}
    lim = [np.inf, -np.inf]
    for name, mk in markers.items():
        sel = q == name
        if not sel.any():
            continue
        th, me = ds["theory"].values[sel], ds["measured"].values[sel]
        lo, hi = ds["ci_low"].values[sel], ds["ci_high"].values[sel]
        ok = ds["within_tolerance"].values[sel].astype(bool)
        yerr = np.vstack([np.clip(me - lo, 0, None), np.clip(hi - me, 0, None)])
        yerr = np.where(np.isfinite(yerr), yerr, 0)
        ax.errorbar(th, me, yerr=yerr, fmt=mk, label=name, capsize=2)
        ax.plot(th[~ok], me[~ok], mk, color="red", ms=11, mfc="none")
        lim = [min(lim[0], th.min(), np.nanmin(me)), max(lim[1], th.max(), np.nanmax(me))]
    if np.isfinite(lim).all():
        pad = 0.05 * (lim[1] - lim[0] + 1e-9)
        grid = np.array([lim[0] - pad, lim[1] + pad])
        ax.plot(grid, grid, "k-", lw=0.8, label="measured = theory")
        ax.fill_between(grid, 0.9 * grid, 1.1 * grid, color="0.85", label="±10%")
    ax.set(xlabel="theory (OU time)", ylabel="measured (OU time)", title="critical times")
    ax.legend(fontsize=8)
    return save(fig, path, formats)


# -- geometric memorization [ALD24]: analysis/geometric_plots.py ---------------------------------
from .geometric_plots import (plot_geometric, plot_geometric_learned,  # noqa: E402,F401
                              plot_geometric_phase, plot_geometric_spectra)
