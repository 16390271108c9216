"""Figures of results Datasets (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_quickstart", "save"]


def save(fig, path, formats=("png",)) -> list[Path]:
    """Save a figure under `path` with each suffix in `formats`; close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        p = path.with_suffix("." + fmt)
        fig.savefig(p, dpi=120, bbox_inches="tight")
        out.append(p)
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
