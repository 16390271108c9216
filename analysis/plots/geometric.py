"""Figures of the geometric experiment [ALD24] (Achilli et al., arXiv 2410.08727).

`plot_geometric` writes the main figure (training-point anchor: tangent dimensions kept,
tau |lambda| with both theories, critical taus per block for every (anchor, signature), threshold
sensitivity), `<path>_spectra` (the official theory panel beside the measured spectra,
`plot_geometric_spectra`), `<path>_phase` and `<path>_learned` when the run has them. Conventions
of the quantities: docs/theory.md, "Geometric memorization ([ALD24])".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import plt, save

_MARK = {("train", "collapse"): "o", ("fresh", "collapse"): "^", ("mean", "collapse"): "v",
         ("origin", "collapse"): "<", ("train", "excess"): "s", ("fresh", "excess"): "D",
         ("mean", "excess"): "P", ("origin", "excess"): "X"}


def _anchor0(ds):
    """The anchor of the kept-fraction panels: "train" when measured, else the first."""
    if "anchor" not in ds.coords:
        return None
    anchors = list(ds["anchor"].values)
    if "kept_fraction" in ds:  # anchors this run measured (e.g. only "origin" in the official panel)
        kept = ds["kept_fraction"]
        measured = [a for a in anchors if np.isfinite(kept.sel(anchor=a).values).any()]
        anchors = measured or anchors
    return "train" if "train" in anchors else anchors[0]


def _at_anchor(obj, ds):
    a = _anchor0(ds)
    return obj.sel(anchor=a) if a is not None and "anchor" in obj.dims else obj


_BLOCK_STYLE = {0: "-", 1: "--"}


def _block_proxies(ax):
    """Legend entries for the line style of each tangent block (grey, no data)."""
    for b, ls in _BLOCK_STYLE.items():
        ax.plot([], [], ls, color="0.3", label=f"block {b} ({'solid' if ls == '-' else 'dashed'})")


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
    """Figures of a geometric run [ALD24]. Main figure (first d and std_ratio, mean over seeds,
    training-point anchor): tangent dimensions kept per block vs tau; tau |lambda| per block vs tau
    with the [ALD24] and REM theory curves; measured critical tau per block vs N for every
    (anchor, signature) with both theories; threshold sensitivity of the kept-fraction critical
    taus. Writes `<path>_spectra` (`plot_geometric_spectra`), `<path>_phase` when the run spans at least
    two sizes and two std ratios (`plot_geometric_phase`) and `<path>_learned` with learned scores
    (`plot_geometric_learned`). Returns the paths written."""
    path = Path(path)
    out = []
    score = _reference_score(ds)
    if score is not None:
        out += _plot_geometric_main(ds, score, path, formats)
        if "singular_value" in ds:
            out += plot_geometric_spectra(ds, path.with_name(path.stem + "_spectra"), formats)
    axis = _size_axis(ds)
    if score is not None and ds.sizes[axis] >= 2 and ds.sizes["std_ratio"] >= 2:
        out += plot_geometric_phase(ds, path.with_name(path.stem + "_phase"), formats)
    if "learned_kept_fraction" in ds:
        out += plot_geometric_learned(ds, path.with_name(path.stem + "_learned"), formats)
    return out


def _plot_geometric_main(ds, score, path, formats):
    axis = _size_axis(ds)
    d0, r0 = ds["d"].values[0], ds["std_ratio"].values[0]
    full = ds.sel(score=score, d=d0, std_ratio=r0)
    sel = _at_anchor(full, ds)
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
    _block_proxies(ax[0])
    ax[0].plot([], [], ":", color="0.3", lw=0.8, label="REM tau_C (per N, dotted)")
    ax[0].set(xscale="log", xlabel="tau (data variance)", ylabel="directions kept",
              title=f"{score} score, d={d0}, ratio={r0:g}, anchor {_anchor0(ds)}:\ntangent "
                    "dimensions kept")
    _block_proxies(ax[1])
    ax[1].plot([], [], "k-", lw=1.2, label="measured")
    ax[1].plot([], [], "k-", lw=3, alpha=0.3, label="[ALD24] (off scale below tau_c)")
    ax[1].plot([], [], "k:", lw=1.5, label="REM")
    ax[1].set(xscale="log", yscale="log", ylim=(3e-3, 3), xlabel="tau", ylabel="tau |lambda| (1 = lost)",
              title="tau |lambda| per block:\nmeasured (thin), [ALD24] theory (thick), REM (dotted)")
    # critical tau per block against N, both theories
    n = (ds["n_train"].sel(d=d0).values if axis == "alpha" else values).astype(float)
    crit = full["critical_tau"]
    one = dict(marker="_", ms=14, mew=2) if n.size == 1 else {}  # a single N: ticks, not lines
    for (a, sig), mk in _MARK.items():
        if a not in list(crit["anchor"].values) or not np.isfinite(
                crit.sel(anchor=a, signature=sig).values).any():
            continue
        for b, fill in ((0, None), (1, "none")):
            y = crit.sel(anchor=a, signature=sig, block=b)
            y = np.exp(np.log(y.where(np.isfinite(y))).mean("seed"))  # geometric mean, finite
            ax[2].plot(n, y, mk, mfc=fill, color="C0" if sig == "collapse" else "C1",
                       label=f"{a}/{sig}" if b == 0 else None)
    for b in (0, 1):
        ax[2].plot(n, sel["critical_tau_theory"].sel(block=b), _BLOCK_STYLE[b], color="C3",
                   label=f"[ALD24] block {b} (actual variances)", **one)
    ax[2].plot(n, sel["critical_tau_rem"], "k-.", label="REM tau_C (all blocks)", **one)
    ax[2].set(xscale="log", yscale="log", xlabel="training-set size N", ylabel="critical tau",
              title="critical tau per block, anchor/signature\n(filled block 0, open block 1)")
    # threshold sensitivity
    th = ds["threshold"].values
    for i, v in enumerate(values):
        col = cmap(i / max(len(values) - 1, 1))
        for b, ls in _BLOCK_STYLE.items():
            ax[3].plot(th, meas["critical_tau_by_threshold"].sel({axis: v, "block": b}), ls + "o",
                       color=col, label=_label_n(ds, v, d0) if b == 0 else None)
    ax[3].set_yscale("log")
    if not np.isfinite(meas["critical_tau_by_threshold"].values).any():
        ax[3].text(0.5, 0.5, f"critical_tau_by_threshold is NaN at anchor {_anchor0(ds)}:\n"
                   "nothing to show", ha="center", va="center", fontsize=8,
                   transform=ax[3].transAxes)
        ax[3].set_yscale("linear")
        ax[3].set_xticks([]), ax[3].set_yticks([])
    _block_proxies(ax[3])
    ax[3].set(xlabel="threshold on r = 1 + tau lambda",
              ylabel="kept-fraction critical tau",
              title="threshold sensitivity\n(solid block 0, dashed block 1)")
    for a in ax:
        a.title.set_fontsize(8)
    for a in (ax[0], ax[1]):
        a.legend(fontsize=7)
    # the critical-tau and threshold panels are full of points: their legends go below the axes
    for a in (ax[2], ax[3]):
        a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    return save(fig, path, formats)


def _theory_lost_fraction(alpha, ratio, d, attrs, block_dims, theory):
    """Lost fraction (0 or 1) of blocks 0 and 1 at tau_phase on an (alpha, ratio) mesh under the
    [ALD24] formula or the REM condition; shape (2, ratio, alpha)."""
    from memphase.analysis.dimensions import predicted_kept_fraction
    from memphase.physics import critical
    from memphase.physics.manifold import normalized_variances

    s1, tau, thr = float(attrs["std"]), float(attrs["tau_phase"]), float(attrs["threshold"])
    rest = max(float(attrs["normal_std"]), 1e-12)
    first = [0, block_dims[0]]  # a direction of each block
    out = np.full((2, ratio.size, alpha.size), np.nan)
    n = np.round(np.exp(alpha * d))
    ok = n >= 2
    for i, r in enumerate(ratio):
        nominal = critical.block_stds([(block_dims[0], s1), (block_dims[1], s1 * r)], d=d,
                                      rest_std=rest)
        mode = attrs["normalize"]
        mode = False if mode in ("none", 0) else ("radius" if mode == 1 else mode)
        stds = np.sqrt(normalized_variances(nominal**2, mode))  # actual variances
        if theory == "ald":
            tc = np.array([critical.subspace_collapse_tau(m, stds, bool(mode))[first]
                           for m in n[ok]]).T
        else:
            tc = np.broadcast_to(critical.collapse_tau(n[ok], stds**2), (2, ok.sum()))
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
        sub = _at_anchor(ds.sel(score=score, d=d), ds).mean("seed")
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
            for name, ls, text in (("ald", "-", "[ALD24] boundary"), ("rem", "--", "REM boundary")):
                z = theory[name][b]
                if np.nanmin(z) < 0.5 < np.nanmax(z):
                    a_.contour(fine_a, fine_r, z, levels=[0.5], colors="cyan", linestyles=ls)
                    a_.plot([], [], "c" + ls, label=text)
                else:  # promised in the legend only where drawn; say where it is instead
                    side = "lost" if np.nanmin(z) >= 0.5 else "kept"
                    a_.plot([], [], " ", label=f"{text}: outside this window (all {side})")
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
                a_.plot(alpha, s["critical_tau_kept"].sel(block=b), mk, color=col,
                        label=f"ratio {r:g}, block {b}")
                a_.plot(alpha, s["critical_tau_theory"].sel(block=b), _BLOCK_STYLE[b], color=col, lw=1)
            a_.plot(alpha, s["critical_tau_rem"], "-.", color=col, lw=2, alpha=0.6)
        for ls, lw, text in (("-", 1, "[ALD24] block 0 (solid)"), ("--", 1, "[ALD24] block 1 (dashed)"),
                             ("-.", 2, "REM tau_C (dash-dot)")):
            a_.plot([], [], ls, color="0.3", lw=lw, label=text)
        a_.set(yscale="log", xlabel="alpha", ylabel="critical tau",
               title=f"kept-fraction critical tau, anchor {_anchor0(ds)} (markers),\n[ALD24] "
                     "(solid b0 / dashed b1), REM (dash-dot); colour: std ratio")
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
    sel = _at_anchor(ds.sel(d=d0, std_ratio=r0), ds)
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


def plot_geometric_spectra(ds, path, formats=("png",), score=None):
    """The official [ALD24] theory panel beside the measured spectra (first d and std_ratio, one
    column per N, mean over seeds). Row 0: the [ALD24] predicted singular value of each block over
    the largest one at that tau, vs tau (`memphase.physics.critical.jacobian_singular_values` with the
    actual variances), with the [ALD24] tau_c (vertical lines) and the REM tau_C (dash-dot).
    Rows 1..: per anchor, the exact Jacobian singular values over their maximum (every rank, thin
    lines, mean over points), the official probe estimator (dots, first dropped,
    max-normalized) and, where measured (measure.fd_spectrum), the official empirical-panel
    finite-difference estimator (crosses, max-normalized here; stored raw)."""
    score = score or _reference_score(ds)
    axis = _size_axis(ds)
    d0, r0 = ds["d"].values[0], ds["std_ratio"].values[0]
    sel = ds.sel(score=score, d=d0, std_ratio=r0)
    anchors = [a for a in ds["anchor"].values  # the anchors this run measured
               if np.any(np.isfinite(sel["singular_value"].sel(anchor=a).values))]
    values = ds[axis].values
    tau = ds["tau"].values
    rank = int(d0)
    fig, ax = plt.subplots(1 + len(anchors), len(values), figsize=(4.2 * len(values),
                           3.1 * (1 + len(anchors))), squeeze=False)
    for j, v in enumerate(values):
        s = sel.sel({axis: v})
        a_ = ax[0, j]
        for b, col in ((-1, "C2"), (0, "C0"), (1, "C1")):
            a_.plot(tau, s["singular_value_theory_normalized"].sel(block=b), color=col,
                    label=f"block {b}" if b >= 0 else "normal space")
            if b >= 0 and np.isfinite(float(s["critical_tau_theory"].sel(block=b))):
                a_.axvline(float(s["critical_tau_theory"].sel(block=b)), color=col, ls=":", lw=0.8)
        if np.isfinite(float(s["critical_tau_rem"])):
            a_.axvline(float(s["critical_tau_rem"]), color="k", ls="-.", lw=0.8, label="REM tau_C")
        a_.plot([], [], ":", color="0.3", lw=0.8, label="[ALD24] tau_c (dotted, block colour)")
        a_.set(xscale="log", yscale="log", ylim=(1e-4, 1.5), xlabel="tau",
               ylabel="sv / max sv", title=f"[ALD24] theory (official panel), {_label_n(ds, v, d0)}")
        for i, a in enumerate(anchors, start=1):
            a_ = ax[i, j]
            m = s.sel(anchor=a).mean("seed")
            sv = m["singular_value"].isel(rank=slice(0, rank)).values
            a_.plot(tau, sv, color="0.3", lw=0.6)
            if "probe_singular_value" in m and np.any(np.isfinite(m["probe_singular_value"])):
                pr = m["probe_singular_value"].isel(probe_rank=slice(0, rank - 1)).values
                a_.plot(np.repeat(tau, pr.shape[1]), pr.ravel(), ".", color="C3", ms=1.5)
            a_.plot([], [], color="0.3", lw=0.6, label="exact Jacobian")
            a_.plot([], [], ".", color="C3", label="official probe estimator")
            if "fd_singular_value" in m and np.any(np.isfinite(m["fd_singular_value"])):
                fd = m["fd_singular_value"].isel(rank=slice(0, rank)).values
                fd = fd / np.maximum(np.nanmax(fd, axis=1, keepdims=True), 1e-300)
                a_.plot(np.repeat(tau, fd.shape[1]), fd.ravel(), "x", color="C0", ms=2, mew=0.5,
                        label="official finite differences")
            a_.set(xscale="log", yscale="log", ylim=(1e-4, 1.5), xlabel="tau", ylabel="sv / max sv",
                   title=f"measured, {score} score, anchor {a}")
    for a_ in ax.ravel():
        a_.title.set_fontsize(8)
        a_.legend(fontsize=6)
    fig.tight_layout()
    return save(fig, Path(path), formats)
