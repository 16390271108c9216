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


# -- geometric memorization [ALD24] -------------------------------------------------------------
_BLOCK_STYLE = {0: "-", 1: "--"}


def _size_axis(ds) -> str:
    return str(ds.attrs.get("size_axis", "n_train"))


def _reference_score(ds):
    """Closed-form score to show: empirical when measured, else the first one (None if none)."""
    if "score" not in ds.coords:
        return None
    scores = list(ds["score"].values)
    return "empirical" if "empirical" in scores else scores[0]


def _label_n(ds, sel_axis_value, d):
    axis = _size_axis(ds)
    n = int(ds["n_train"].sel({axis: sel_axis_value, "d": d})) if axis == "alpha" else int(sel_axis_value)
    return f"N={n}" + (f" (alpha={sel_axis_value:g})" if axis == "alpha" else "")


def plot_geometric(ds, path, formats=("png",)):
    """Figures of a geometric run [ALD24]. Main figure (first d and std_ratio, mean over seeds):
    tangent dimensions kept per block vs tau; tau |lambda| per block vs tau with the [ALD24] and
    REM theory curves; measured critical tau per block vs N with both theories; threshold
    sensitivity of the measured critical taus. Writes `<path>_phase` when the run spans at least
    two sizes and two std ratios (`plot_geometric_phase`) and `<path>_learned` with learned scores
    (`plot_geometric_learned`). Returns the paths written."""
    path = Path(path)
    out = []
    score = _reference_score(ds)
    if score is not None:
        out += _plot_geometric_main(ds, score, path, formats)
    axis = _size_axis(ds)
    if score is not None and ds.sizes[axis] >= 2 and ds.sizes["std_ratio"] >= 2:
        out += plot_geometric_phase(ds, path.with_name(path.stem + "_phase"), formats)
    if "learned_kept_fraction" in ds:
        out += plot_geometric_learned(ds, path.with_name(path.stem + "_learned"), formats)
    return out


def _plot_geometric_main(ds, score, path, formats):
    axis = _size_axis(ds)
    d0, r0 = ds["d"].values[0], ds["std_ratio"].values[0]
    sel = ds.sel(score=score, d=d0, std_ratio=r0)
    meas = sel.mean("seed")
    tau = ds["tau"].values
    fig, ax = plt.subplots(1, 4, figsize=(21, 4.6))
    cmap = plt.get_cmap("viridis")
    values = ds[axis].values
    for i, v in enumerate(values):
        col = cmap(i / max(len(values) - 1, 1))
        m = meas.sel({axis: v})
        for b, ls in _BLOCK_STYLE.items():
            mb = m.sel(block=b)
            kb = float(sel["block_dim"].sel(block=b))
            ax[0].plot(tau, kb * mb["kept_fraction"], ls, color=col,
                       label=_label_n(ds, v, d0) if b == 0 else None)
            ax[1].plot(tau, tau * mb["eigenvalue_abs"], ls, color=col, lw=1.2)
            ax[1].plot(tau, tau * mb["singular_value_theory"], ls, color=col, lw=3, alpha=0.3)
            ax[1].plot(tau, tau * mb["singular_value_rem"], ":", color=col, lw=1.5)
        tc_rem = float(m["critical_tau_rem"])
        if np.isfinite(tc_rem):
            ax[0].axvline(tc_rem, color=col, ls=":", lw=0.8)
    ax[0].set(xscale="log", xlabel="tau (data variance)", ylabel="directions kept",
              title=f"{score} score, d={d0}, ratio={r0:g}: tangent dims (solid block 0, dashed "
                    "block 1; dotted: REM tau_C)")
    ax[1].plot([], [], "k-", lw=1.2, label="measured")
    ax[1].plot([], [], "k-", lw=3, alpha=0.3, label="[ALD24] (off scale below tau_c)")
    ax[1].plot([], [], "k:", lw=1.5, label="REM")
    ax[1].set(xscale="log", yscale="log", ylim=(3e-3, 3), xlabel="tau", ylabel="tau |lambda| (1 = lost)",
              title="measured (thin), [ALD24] theory (thick), REM (dotted)")
    # critical tau per block against N, both theories
    n = (ds["n_train"].sel(d=d0).values if axis == "alpha" else values).astype(float)
    for b, mk in ((0, "o"), (1, "s")):
        y = sel["critical_tau"].sel(block=b)
        ax[2].errorbar(n, y.mean("seed"), yerr=y.std("seed"), fmt=mk, label=f"measured block {b}")
        ax[2].plot(n, sel["critical_tau_theory"].sel(block=b), _BLOCK_STYLE[b], color="C3",
                   label=f"[ALD24] block {b}")
    ax[2].plot(n, sel["critical_tau_rem"], "k-.", label="REM tau_C (all blocks)")
    ax[2].set(xscale="log", yscale="log", xlabel="training-set size N", ylabel="critical tau",
              title="critical tau per block")
    # threshold sensitivity
    th = ds["threshold"].values
    for i, v in enumerate(values):
        col = cmap(i / max(len(values) - 1, 1))
        for b, ls in _BLOCK_STYLE.items():
            ax[3].plot(th, meas["critical_tau_by_threshold"].sel({axis: v, "block": b}), ls + "o",
                       color=col, label=_label_n(ds, v, d0) if b == 0 else None)
    ax[3].set(yscale="log", xlabel="threshold on r = 1 + tau lambda", ylabel="measured critical tau",
              title="threshold sensitivity (solid block 0, dashed block 1)")
    for a in ax:
        a.title.set_fontsize(8)
        a.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, formats)


def _theory_lost_fraction(alpha, ratio, d, attrs, block_dims, theory):
    """Lost fraction (0 or 1) of blocks 0 and 1 at tau_phase on an (alpha, ratio) mesh under the
    [ALD24] formula or the REM condition; shape (2, ratio, alpha)."""
    from analysis.dimensions import predicted_kept_fraction
    from physics import critical

    s1, tau, thr = float(attrs["std"]), float(attrs["tau_phase"]), float(attrs["threshold"])
    rest = max(float(attrs["normal_std"]), 1e-12)
    first = [0, block_dims[0]]  # a direction of each block
    out = np.full((2, ratio.size, alpha.size), np.nan)
    n = np.round(np.exp(alpha * d))
    ok = n >= 2
    for i, r in enumerate(ratio):
        stds = critical.block_stds([(block_dims[0], s1), (block_dims[1], s1 * r)], d=d,
                                   rest_std=rest)
        if theory == "ald":
            tc = np.array([critical.subspace_collapse_tau(m, stds, bool(attrs["normalize"]))[first]
                           for m in n[ok]]).T
        else:
            tc = np.broadcast_to(critical.rem_subspace_collapse_tau(n[ok], stds), (2, ok.sum()))
        var = stds[first] ** 2
        out[:, i, ok] = 1.0 - predicted_kept_fraction(tau, tc, var[:, None], thr)
    return out


def plot_geometric_phase(ds, path, formats=("png",), score=None):
    """Phase diagram at tau = tau_phase: heatmaps over (alpha, std_ratio) of the measured fraction
    of each tangent block lost (one column per d), with the [ALD24] boundary (solid) and the REM
    boundary (dashed) from the theory on a fine grid; bottom row: measured critical tau per block
    vs alpha with both theories (three std ratios)."""
    score = score or _reference_score(ds)
    axis = _size_axis(ds)
    ds_d = ds["d"].values
    fig, ax = plt.subplots(3, len(ds_d), figsize=(5.2 * len(ds_d), 12), squeeze=False)
    block_dims = [int(ds["block_dim"].isel(d=0).sel(block=b)) for b in (0, 1)]
    ratios = ds["std_ratio"].values
    for j, d in enumerate(ds_d):
        sub = ds.sel(score=score, d=d).mean("seed")
        alpha = (ds["alpha"].values if axis == "alpha" else ds["alpha"].sel(d=d).values)
        fine_a = np.linspace(alpha.min(), alpha.max(), 50)
        fine_r = np.linspace(ratios.min(), ratios.max(), 25)
        theory = {name: _theory_lost_fraction(fine_a, fine_r, int(d), ds.attrs, block_dims, name)
                  for name in ("ald", "rem")}
        for b in (0, 1):
            lost = (sub["lost_dims"].sel(block=b) / sub["block_dim"].sel(block=b))
            lost = lost.transpose("std_ratio", axis).values
            a_ = ax[b, j]
            im = a_.pcolormesh(alpha, ratios, lost, shading="nearest", cmap="magma", vmin=0, vmax=1)
            for name, ls in (("ald", "-"), ("rem", "--")):
                z = theory[name][b]
                if np.nanmin(z) < 0.5 < np.nanmax(z):
                    a_.contour(fine_a, fine_r, z, levels=[0.5], colors="cyan", linestyles=ls)
            a_.plot([], [], "c-", label="[ALD24] boundary")
            a_.plot([], [], "c--", label="REM boundary")
            a_.set(xlabel="alpha = log N / d", ylabel="std ratio (block 1 / block 0)",
                   title=f"{score}, d={d}: fraction of block {b} lost at tau={ds.attrs['tau_phase']:g}")
            a_.legend(fontsize=7, loc="lower right")
            fig.colorbar(im, ax=a_)
        a_ = ax[2, j]
        picks = ratios[np.unique(np.linspace(0, len(ratios) - 1, min(3, len(ratios))).round().astype(int))]
        for k, r in enumerate(picks):
            col = f"C{k}"
            s = sub.sel(std_ratio=r)
            for b, mk in ((0, "o"), (1, "s")):
                a_.plot(alpha, s["critical_tau"].sel(block=b), mk, color=col,
                        label=f"ratio {r:g}, block {b}")
                a_.plot(alpha, s["critical_tau_theory"].sel(block=b), _BLOCK_STYLE[b], color=col, lw=1)
            a_.plot(alpha, s["critical_tau_rem"], "-.", color=col, lw=2, alpha=0.6)
        a_.set(yscale="log", xlabel="alpha", ylabel="critical tau",
               title="measured (markers), [ALD24] (solid b0 / dashed b1), REM (dash-dot)")
        a_.legend(fontsize=6)
        for a in ax[:, j]:
            a.title.set_fontsize(8)
    fig.tight_layout()
    return save(fig, path, formats)


def plot_geometric_learned(ds, path, formats=("png",)):
    """Learned scores (first d and std_ratio, mean over seeds), rows = tangent blocks: fraction of
    the block lost at tau_phase over (N, width) at the last checkpoint and over (N, training steps)
    at the largest width; lost fraction vs N for each width beside the empirical score of the
    same training sets and both theories."""
    axis = _size_axis(ds)
    d0, r0 = ds["d"].values[0], ds["std_ratio"].values[0]
    sel = ds.sel(d=d0, std_ratio=r0)
    lost = (sel["learned_lost_dims"] / sel["block_dim"]).mean("seed")
    n = (ds["n_train"].sel(d=d0).values if axis == "alpha" else ds[axis].values).astype(float)
    idx = np.arange(n.size)
    fig, ax = plt.subplots(2, 3, figsize=(16, 8.5))
    for row, b in enumerate((0, 1)):
        lb = lost.sel(block=b)
        for col, (other, fixed) in enumerate((("width", dict(train_step=lb["train_step"].values[-1])),
                                              ("train_step", dict(width=lb["width"].values[-1])))):
            z = lb.sel(**fixed).transpose(other, axis).values
            a_ = ax[row, col]
            im = a_.pcolormesh(idx, np.arange(z.shape[0]), z, shading="nearest", cmap="magma",
                               vmin=0, vmax=1)
            a_.set_xticks(idx, [f"{int(v)}" for v in n], fontsize=7)
            a_.set_yticks(np.arange(z.shape[0]), [str(v) for v in lb[other].values], fontsize=7)
            fixed_txt = ", ".join(f"{k}={int(v)}" for k, v in fixed.items())
            a_.set(xlabel="training-set size N", ylabel=other.replace("_", " "),
                   title=f"learned, block {b} lost at tau={ds.attrs['tau_phase']:g} ({fixed_txt})")
            a_.title.set_fontsize(8)
            fig.colorbar(im, ax=a_)
        a_ = ax[row, 2]
        for k, w in enumerate(lb["width"].values):
            a_.plot(n, lb.sel(width=w).isel(train_step=-1), "o-", color=f"C{k}",
                    label=f"learned, width {w}")
        if "lost_dims" in ds and "empirical" in list(ds["score"].values):
            emp = (sel["lost_dims"].sel(score="empirical") / sel["block_dim"]).mean("seed")
            a_.plot(n, emp.sel(block=b), "ks-", label="empirical score")
        for name, ls in (("lost_dims_theory", "--"), ("lost_dims_rem", ":")):
            a_.plot(n, (sel[name] / sel["block_dim"]).sel(block=b), "k" + ls, alpha=0.6,
                    label="[ALD24]" if name.endswith("theory") else "REM")
        a_.set(xscale="log", ylim=(-0.05, 1.05), xlabel="training-set size N",
               ylabel=f"fraction of block {b} lost", title="last checkpoint vs empirical score")
        a_.title.set_fontsize(8)
        a_.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, formats)
