"""Figures of the issue-7 experiments: the [BDKOS25] regularization study
(`memphase.simulate.experiments.regularization`) and the [H24] solvable linear model
(`memphase.simulate.experiments.linear_model`)."""

from __future__ import annotations

import numpy as np

from .linear_model import plot_linear_model  # noqa: F401  (moved; kept importable here)
from .common import plt, save

__all__ = ["plot_regularization", "plot_linear_model"]


def _positive(x, *ys):
    """Rows with x > 0 (log axes), as numpy arrays; y <= 0 (e.g. a median distance of exactly 0
    after Tweedie denoising) becomes nan so that log axes skip it."""
    x = np.asarray(x, dtype=float)
    ok = x > 0
    return (x[ok],) + tuple(np.where(np.asarray(y, float) > 0, np.asarray(y, float), np.nan)[ok]
                            for y in ys)


def _curves(ds):
    """(label, strength coordinate, fraction, median distance, style) per regularizer / width,
    seed-averaged; networks at their last checkpoint."""
    out = []
    if "tikhonov_collapse_fraction" in ds:
        out.append(("Tikhonov c", ds["c"], ds["tikhonov_collapse_fraction"].mean("seed"),
                    ds["tikhonov_median_distance"].mean("seed"), "o-"))
    if "floor_collapse_fraction" in ds:
        out.append(("floor tau_floor", ds["tau_floor"], ds["floor_collapse_fraction"].mean("seed"),
                    ds["floor_median_distance"].mean("seed"), "s-"))
    if "network_collapse_fraction" in ds:
        last = ds["train_steps"].values[-1]
        for w in ds["width"].values:
            sel = ds.sel(width=w, train_steps=last).mean("seed")
            out.append((f"network lambda, width {w}, {last} steps", ds["lambda"],
                        sel["network_collapse_fraction"], sel["network_median_distance"], "^-"))
    return out


def plot_regularization(ds, path, formats=("png",)):
    """[BDKOS25]: collapse fraction and median nearest-training-point distance vs regularization
    strength (log-log, sqrt reference line, one curve per regularizer / network width) with the
    small-c theory from the c = 0 flow invariant; networks' median distance vs training steps."""
    has_net = "network_median_distance" in ds
    fig, ax = plt.subplots(1, 3 if has_net else 2, figsize=(16 if has_net else 11, 4.4))
    strengths = np.concatenate([np.asarray(ds[k], float) for k in ("c", "lambda", "tau_floor")
                                if k in ds.coords])
    strengths = strengths[strengths > 0]
    # log strength axes need a positive strength; a run of c = 0 alone (the empirical score)
    # is drawn on a linear axis instead of failing (issue #26 item 10)
    logx = strengths.size > 0
    for label, x, frac, med, style in _curves(ds):
        xs, f, m = _positive(x, frac, med) if logx else (np.asarray(x, float), frac, med)
        ax[0].plot(xs, f, style, label=label)
        ax[1].plot(xs, m, style, label=label)
    if "network_median_distance" in ds and 0.0 in ds["lambda"].values:
        last = ds["train_steps"].values[-1]
        for w, ls in zip(ds["width"].values, ("-", "--", ":", "-.") * 8):
            m0 = float(ds["network_median_distance"].sel({"lambda": 0.0, "width": w,
                                                          "train_steps": last}).mean("seed"))
            ax[1].axhline(m0, color="gray", ls=ls, lw=0.8, label=f"network lambda = 0, width {w}")
    if "tikhonov_median_distance_theory" in ds:
        f_th, m_th = (ds[k] for k in ("tikhonov_collapse_fraction_theory",
                                       "tikhonov_median_distance_theory"))
        if "seed" in f_th.dims:   # files written before the theory was calibrated on other seeds
            f_th, m_th = f_th.mean("seed"), m_th.mean("seed")
        xs, f, m = _positive(ds["c"], f_th, m_th)
        ax[0].plot(xs, f, "k--", lw=1, label="theory P(sqrt(c) K < tol)")
        ax[1].plot(xs, m, "k--", lw=1, label="theory sqrt(c) median K")
    if strengths.size and "flow_ratio" in ds:
        ref = np.geomspace(strengths.min(), strengths.max(), 50)
        k = float(np.median(ds["calibration_flow_ratio" if "calibration_flow_ratio" in ds
                               else "flow_ratio"].values))
        ax[1].plot(ref, 3 * k * np.sqrt(ref), ":", color="gray", label="reference ~ strength^(1/2)")
    title = "collapse fraction"
    if "reference_collapse_fraction" in ds:
        title += f" (c = 0: {float(ds['reference_collapse_fraction'].mean()):.3f})"
    ax[0].set(xscale="log" if logx else "linear", xlabel="strength (c, tau_floor or lambda)",
              ylabel=f"fraction within {ds.attrs.get('collapse_tol', 1e-2):g} of a training point",
              ylim=(-0.03, 1.03), title=title)
    expo = ""
    if "tikhonov_distance_exponent" in ds:
        expo = f"; fitted Tikhonov exponent {float(ds['tikhonov_distance_exponent'].mean()):.3f}"
    positive_y = any(np.any(np.asarray(line.get_ydata(), float) > 0) for line in ax[1].lines)
    ax[1].set(xscale="log" if logx else "linear", yscale="log" if positive_y else "linear",
              xlabel="strength (c, tau_floor or lambda)",
              ylabel="median distance to nearest training point", title="median distance" + expo)
    for a in ax[:2]:
        a.legend(fontsize=7)
    if has_net:
        steps = ds["train_steps"].values
        cmap = plt.get_cmap("viridis")
        lam = ds["lambda"].values
        for i, lv in enumerate(lam):
            for w, ls in zip(ds["width"].values, ("-", "--", ":", "-.") * 8):
                med = ds["network_median_distance"].sel({"lambda": lv, "width": w}).mean("seed")
                ax[2].plot(steps, med, ls, marker="o", color=cmap(i / max(len(lam) - 1, 1)),
                           label=f"lambda {lv:g}, width {w}")
        ax[2].set(xscale="log", yscale="log", xlabel="training steps",
                  ylabel="median distance", title="network: early stopping")
        ax[2].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, formats)
