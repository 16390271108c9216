"""Figures of the `memorization` and `emm` experiments [GDPLLW23] (matplotlib, Agg backend)."""

from __future__ import annotations

import numpy as np

from .common import plt, save

__all__ = ["plot_memorization", "plot_emm", "recipe_label"]

RECIPE_DIMS = ("network", "width", "depth", "embedding_dim", "weight_decay", "ema_decay",
               "train_steps")


def recipe_label(sel, dims=RECIPE_DIMS) -> str:
    """'width=128 depth=3 ...' for the recipe coordinates that vary (scalar coords of `sel`)."""
    parts = []
    for d in dims:
        if d in sel.coords and sel[d].ndim == 0:
            parts.append(f"{d}={sel[d].item()}")
    return " ".join(parts)


def _varying(ds, dims):
    return [d for d in dims if d in ds.dims and ds.sizes[d] > 1]


def _stack_recipes(da, dims):
    """Iterate (label, sub-array) over every combination of the varying recipe dims."""
    var = _varying(da, dims)
    first = {d: 0 for d in dims if d in da.dims and d not in var}
    da = da.isel(first)
    if not var:
        yield "", da
        return
    for idx in np.ndindex(*[da.sizes[d] for d in var]):
        sub = da.isel(dict(zip(var, idx)))
        yield recipe_label(sub, var), sub


def _mean_sem(da):
    m = da.mean("seed")
    n = da.notnull().sum("seed")
    s = da.std("seed", ddof=1) / np.sqrt(n) if da.sizes["seed"] > 1 else 0 * m
    return m, s.fillna(0)


def plot_memorization(ds, path, formats=("png",)):
    """Three panels: (1) ratio vs N per recipe (learned) and the empirical score, unconditional;
    (2) conditioning: ratio vs N with true and random labels and the random-label prediction
    R_none(N / C), per C > 1; (3) collapse time: last-change estimate with the learned and the
    empirical score against the REM theory. First value of d, intrinsic_dim taken."""
    base = ds.isel(d=0, intrinsic_dim=0)
    n = ds["n_train"].values
    multi = [v for v in ds["n_classes"].values if v > 1]
    # without a class count C > 1 there is nothing to condition on: no (empty) middle panel
    fig, axes = plt.subplots(1, 3 if multi else 2, figsize=(16 if multi else 11, 4.4))
    ax = list(axes) if multi else [axes[0], None, axes[1]]
    cmap = plt.get_cmap("viridis")
    uncond = base.sel(label_mode="none") if "none" in ds["label_mode"].values else None
    c0 = int(base["n_classes"].values[0])
    if uncond is not None:
        u = uncond.sel(n_classes=c0)
        if "learned" in ds["score"].values:
            curves = list(_stack_recipes(u["memorization_ratio"].sel(score="learned"), RECIPE_DIMS))
            for i, (lab, da) in enumerate(curves):
                m, s = _mean_sem(da)
                ax[0].errorbar(n, m, yerr=s, fmt="o-", color=cmap(i / max(len(curves) - 1, 1)),
                               label=f"learned {lab}".strip(), ms=4)
        if "empirical" in ds["score"].values:
            m, s = _mean_sem(u["memorization_ratio"].sel(score="empirical").isel(
                {d: 0 for d in RECIPE_DIMS}))
            ax[0].errorbar(n, m, yerr=s, fmt="k--s", label="empirical score", ms=4)
    ax[0].axhline(0.9, color="gray", lw=0.8, ls=":", label="1 - eps = 0.9 (EMM)")
    ax[0].set(xscale="log", xlabel="training-set size N", ylabel="memorization ratio",
              ylim=(-0.03, 1.03), title=f"unconditional, C = {c0}")
    ax[0].legend(fontsize=7)

    score = "learned" if "learned" in ds["score"].values else "empirical"
    sc = base.sel(score=score).isel({d: 0 for d in RECIPE_DIMS})
    colours = {"none": "0.5", "true": "tab:blue", "random": "tab:red"}
    lines = ["-", "--", "-.", ":"]
    for j, c in enumerate(multi):
        ls = lines[j % len(lines)]
        for mode in ds["label_mode"].values:
            m, s = _mean_sem(sc["memorization_ratio"].sel(n_classes=c, label_mode=mode))
            ax[1].errorbar(n, m, yerr=s, fmt="o", ls=ls, color=colours[str(mode)], ms=4,
                           label=f"C={c} {mode} labels")
        pred = sc["ratio_random_label_prediction"].sel(n_classes=c).mean("seed")
        ax[1].plot(n, pred, ls, color="k", lw=2.5, alpha=0.35,
                   label=f"C={c} prediction R_none(N/C)")
    if multi:
        ax[1].set(xscale="log", xlabel="training-set size N", ylabel="memorization ratio",
                  ylim=(-0.03, 1.03), title=f"{score} score: conditioning")
        ax[1].legend(fontsize=7)

    if uncond is not None:
        u = uncond.sel(n_classes=c0).isel({d: 0 for d in RECIPE_DIMS})
        for s_name, fmt in (("learned", "o"), ("empirical", "s")):
            if s_name in ds["score"].values:
                m, _ = _mean_sem(u["collapse_time_measured"].sel(score=s_name))
                ax[2].plot(n, m, fmt, label=f"{s_name}: last change of nearest point")
        th = u["collapse_time_theory"].sel(score=ds["score"].values[0]).mean("seed")
        ax[2].plot(n, th, "k-", label="REM theory t_C")
    ax[2].set(xscale="log", xlabel="training-set size N", ylabel="collapse time (schedule time)",
              title="collapse time")
    ax[2].legend(fontsize=7)
    _plain_log_ticks([a for a in ax if a is not None])
    fig.tight_layout()
    return save(fig, path, formats)


def _plain_log_ticks(axes):
    """Plain numbers on log axes at 1, 2, 5 x 10^k, no minor-tick labels (they overlap below one
    decade; a single '10' on a short axis says nothing)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for a in np.ravel(axes):
        for axis, scale in ((a.xaxis, a.get_xscale()), (a.yaxis, a.get_yscale())):
            if scale == "log":
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(ScalarFormatter())
                axis.set_minor_formatter(NullFormatter())


def plot_emm(ds, path, formats=("png",)):
    """Two panels: (1) every evaluated (N, ratio) point of each search with the EMM bracket;
    (2) EMM with its bracket (bar up to emm_upper) and each seed's own crossing vs the first
    varying grid axis."""
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.4))
    cell_dims = list(ds["emm"].dims)
    varying = _varying(ds, cell_dims)
    flat = ds.stack(cell=cell_dims) if cell_dims else ds.expand_dims(cell=[0])
    cmap = plt.get_cmap("viridis")
    k = flat.sizes["cell"]
    for i in range(k):
        c = flat.isel(cell=i)
        col = cmap(i / max(k - 1, 1))
        nn, rr = c["evaluated_n"].values, c["evaluated_ratio"].values
        ok = np.isfinite(nn)
        order = np.argsort(nn[ok])
        who = recipe_label(c, varying)
        ax[0].plot(nn[ok][order], rr[ok][order], "o-", color=col, ms=3,
                   label=(who or "search") if k <= 8 else None)
        if np.isfinite(c["emm"]) and np.isfinite(c["emm_upper"]):
            lo, hi = float(c["emm"]), float(c["emm_upper"])
            # each search's bracket with its numbers (the sparse log ticks hide them)
            lab = (f"{who}: " if who and k > 1 else "") + f"EMM bracket [{lo:g}, {hi:g})"
            ax[0].axvspan(lo, hi, color=col, alpha=0.25, label=lab if k <= 8 else None)
    thr = 1 - float(ds.attrs.get("eps", 0.1))
    ax[0].axhline(thr, color="gray", ls=":", label=f"1 - eps = {thr:g}")
    ax[0].set(xscale="log", xlabel="training-set size N", ylabel="seed-mean memorization ratio",
              ylim=(-0.03, 1.03), title="EMM search: evaluated points")
    ax[0].legend(fontsize=7)
    x_dim = varying[0] if varying else (cell_dims[0] if cell_dims else None)
    if x_dim is not None:
        rest = [d for d in cell_dims if d != x_dim]
        sub = ds.stack(other=rest) if rest else ds.expand_dims(other=[0])
        xs = ds[x_dim].values
        for j in range(sub.sizes["other"]):
            s = sub.isel(other=j)
            emm, up = s["emm"].values, s["emm_upper"].values
            xv = np.arange(len(xs)) if xs.dtype.kind in "OUS" else xs
            lab = recipe_label(s, [d for d in rest if ds.sizes[d] > 1])
            ax[1].errorbar(xv, emm, yerr=[np.zeros_like(emm), up - emm], fmt="o-", capsize=3,
                           label=((f"{lab}: " if lab else "") + "EMM, bar to upper (bracket)")
                           if sub.sizes["other"] <= 8 else None)
            if "seed_emm" in s:  # each seed's own crossing (its spread: emm_seed_std)
                se = s["seed_emm"].transpose(x_dim, ...).values.reshape(len(xs), -1)
                xx = np.repeat(np.asarray(xv, float)[:, None], se.shape[1], 1)
                ok = np.isfinite(se)
                ax[1].plot(xx[ok], se[ok], "x", color="k", ms=6,
                           label="each seed's own crossing" if j == 0 and ok.any() else None)
            below = np.isnan(emm) & np.isfinite(up)  # EMM < n_min: upper bound only
            above = np.isfinite(emm) & np.isnan(up)  # not crossed by n_max: lower bound only
            ax[1].plot(np.asarray(xv)[below], up[below], "v", color="tab:red", ms=8,
                       label="EMM below this N" if below.any() else None)
            ax[1].plot(np.asarray(xv)[above], emm[above], "^", color="tab:green", ms=8,
                       label="EMM above this N" if above.any() else None)
        if xs.dtype.kind in "OUS":
            ax[1].set_xticks(np.arange(len(xs)), [str(v) for v in xs])
        elif len(xs) <= 12:  # the grid values themselves
            ax[1].set_xticks(xs, [f"{v:g}" for v in xs])
        ax[1].set(xlabel=x_dim, ylabel="EMM (training-set size N)",
                  yscale="log",
                  title=f"EMM_eps, eps = {ds.attrs.get('eps', 0.1)}")
        if ax[1].get_legend_handles_labels()[0]:
            ax[1].legend(fontsize=7)
    _plain_log_ticks(ax)
    if k == 1:  # one search: tick every evaluated N, so the bracket reads off the axis
        nn = flat.isel(cell=0)["evaluated_n"].values
        nn = np.unique(nn[np.isfinite(nn)])
        if 0 < nn.size <= 12:
            ax[0].set_xticks(nn, [f"{v:g}" for v in nn])
            ax[0].set_xticks([], minor=True)
    fig.tight_layout()
    return save(fig, path, formats)
