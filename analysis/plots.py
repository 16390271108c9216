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


def plot_geometric(ds, path, formats=("png",)):
    """Per-block kept fraction and |Jacobian eigenvalue| vs tau (empirical score, each N) with the
    [ALD24] critical taus and singular values; measured vs theory critical tau per block."""
    score = "empirical" if "empirical" in ds["score"].values else str(ds["score"].values[0])
    sel = ds.sel(score=score).isel(d=0, std_ratio=0).mean("seed")
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.4))
    cmap = plt.get_cmap("viridis")
    n = sel["n_train"].values
    styles = {0: "-", 1: "--"}
    for i, nn in enumerate(n):
        col = cmap(i / max(len(n) - 1, 1))
        for b, ls in styles.items():
            s = sel.sel(n_train=nn, block=b)
            ax[0].plot(sel["tau"], s["kept_fraction"], ls, color=col,
                       label=f"N={nn} block {b}" if b == 0 or i == 0 else None)
            th = float(s["critical_tau_theory"])
            if np.isfinite(th):
                ax[0].axvline(th, color=col, ls=":", lw=0.8)
            ax[1].plot(sel["tau"], s["eigenvalue_abs"], ls, color=col)
            ax[1].plot(sel["tau"], s["singular_value_theory"], ls, color=col, alpha=0.35, lw=3)
    ax[0].set(xscale="log", xlabel="tau", ylabel="fraction of block kept",
              title=f"{score} score: tangent dimensions (solid block 0, dashed block 1; dotted: [ALD24] tau_c)")
    ax[0].title.set_fontsize(8)
    ax[0].legend(fontsize=7)
    ax[1].set(xscale="log", yscale="log", xlabel="tau", ylabel="|Jacobian eigenvalue| (data units)",
              title="measured (thin) vs [ALD24] singular values (thick)")
    for b, mk in ((0, "o"), (1, "s")):
        th = sel["critical_tau_theory"].sel(block=b).values
        me = sel["critical_tau"].sel(block=b).values
        ax[2].loglog(th, me, mk, label=f"block {b}")
    lims = np.array([np.nanmin(sel["critical_tau_theory"].values[..., 1:]),
                     np.nanmax(sel["critical_tau_theory"].values[..., 1:])])
    if np.all(np.isfinite(lims)):
        ax[2].plot(lims, lims, "k-", lw=0.8, label="measured = theory")
    ax[2].set(xlabel="[ALD24] tau_c", ylabel="measured tau_c", title="critical tau per block")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path, formats)
