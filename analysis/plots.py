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
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
    n = ds["n_train"].values
    scores = list(ds["score"].values)
    d = ds.attrs.get("param_data_d", "")
    if d == "" and n[0] > 1:  # in memory, without provenance: alpha = log N / d
        d = int(round(np.log(n[0]) / float(ds["alpha"][0])))
    _quickstart_memorization(ax[0], ds, d)
    clock = str(ds.attrs.get("param_sampler_schedule", "schedule")).replace("ou", "OU")
    if "empirical" in ds["score"].values:
        emp = ds.sel(score="empirical")
        ax[1].errorbar(n, emp["collapse_time_measured"].mean("seed"),
                       yerr=emp["collapse_time_spread"].mean("seed"), fmt="o", capsize=3,
                       label="measured: last change of nearest point (mean ± std)")
    ax[1].plot(n, ds["collapse_time_theory"], "k-", label="theory: REM t_C (d -> infinity)")
    if "collapse_time_finite_n_theory" in ds:
        ax[1].plot(n, ds["collapse_time_finite_n_theory"], "k:", lw=2,
                   label="theory: finite-N t_C (excess entropy)")
    ax[1].set(xscale="log", xlabel="training-set size N", ylabel=f"collapse time t_C ({clock} time)",
              title="collapse time" + (f", d = {d}" if d != "" else ""))
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


def _quickstart_memorization(ax, ds, d):
    """Panel (a) of the quickstart figure: the memorization transition in N. At the run's end noise
    (tau_end = 1e-4 in the bundled config) the boundary N_b = (1 + s^2 / tau_end)^(d/2) lies far
    beyond any N (every empirical sample memorizes, no population sample does: the text box), so
    the panel cuts the recorded trajectories at three noise levels tau whose REM boundary
    N_b(tau) [BBDM24] falls inside the N grid: the fraction of empirical-score trajectories already
    on their final training point at tau vs N, beside N_b(tau) (dashed, same colour)."""
    n = np.asarray(ds["n_train"].values, dtype=float)
    s2 = float(ds.attrs.get("param_data_variance", 1.0))
    lines = []
    for s in ds["score"].values:
        sel = ds.sel(score=s)
        r = float(sel["memorization_ratio"].mean())
        c = float(sel["collapse_fraction"].mean())
        lines.append(f"{s} ratio {r:.2f}, collapse {c:.2f}")
    tau = np.asarray(ds["tau"].values, dtype=float)
    end = float(np.nanmin(tau))
    if d != "" and "empirical" in ds["score"].values and n.size >= 2:
        d = float(d)
        # noise levels whose boundary sits at three places inside the grid (log-spaced)
        targets = np.geomspace(n.min() * 2, n.max() / 2, 3)
        cmap = plt.get_cmap("plasma")
        frac = ds["same_as_final"].sel(score="empirical")
        for k, nb in enumerate(targets):
            i = int(np.argmin(np.abs(np.log(tau) - np.log(s2 / (nb ** (2 / d) - 1)))))
            t_i = float(tau[i])
            col = cmap(0.15 + 0.3 * k)
            y = frac.isel(time=i)
            ax.errorbar(n, y.mean("seed"), yerr=y.std("seed") if "seed" in y.dims else None,
                        fmt="o-", color=col, capsize=2, ms=4,
                        label=f"measured, tau = {t_i:.2g}")
            n_b = (1 + s2 / t_i) ** (d / 2)
            ax.axvline(n_b, color=col, ls="--", lw=1.2, label=f"REM N_b({t_i:.2g}) = {n_b:.3g}")
    nb_end = (1 + s2 / end) ** (float(d) / 2) if d != "" else np.nan
    ax.set(xscale="log", xlabel="training-set size N", ylim=(-0.05, 1.05),
           ylabel="fraction on its final training point",
           title=f"empirical score: memorized if stopped at noise tau\nend of run (tau = {end:.2g}, "
                 f"N_b = {nb_end:.2g}): " + "; ".join(lines))
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              title="dashed: REM N_b(tau) = (1 + s^2/tau)^(d/2)", title_fontsize=7)


def plot_validation(ds, path, formats=("png",)):
    """Measured vs predicted critical times (t_S by cloning, t_C by both estimators) with the
    identity line and 95% CIs; t_C rows against the finite-N theory (filled) and the REM limit
    (hollow, grey); checks outside their tolerance ringed in red."""
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
        fin = ds["theory_finite_n"].values[sel] if "theory_finite_n" in ds else np.full_like(th, np.nan)
        has_fin = np.isfinite(fin)
        if has_fin.any():  # t_C rows: measured against the finite-N theory, REM drawn hollow
            ax.plot(th[has_fin], me[has_fin], mk, mfc="none", color="0.5",
                    label=f"{name} vs REM (d -> infinity)")
            th = np.where(has_fin, fin, th)
            name = f"{name} vs finite-N theory"
        ax.errorbar(th, me, yerr=yerr, fmt=mk, label=name, capsize=2)
        ax.plot(th[~ok], me[~ok], mk, color="red", ms=11, mfc="none",
                label="outside tolerance" if (~ok).any() else None)
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
