"""Figure of the [H24] solvable linear model (`memphase.simulate.experiments.linear_model`): KL and squared
Hellinger distance to the sampling law vs N/d, and the two generalization criteria vs N."""

from __future__ import annotations

import numpy as np

from .common import plt, save

__all__ = ["plot_linear_model"]


def plot_linear_model(ds, path, formats=("png",)):
    """[H24], one line per (fit, d, T): (1) average KL(generated || sampling) vs N/d (infinite for
    N <= d, shaded) with the large-N expansion (dashed) and the N -> infinity limit (dotted);
    (2) the squared Hellinger distance (1 where the KL is infinite) and its limit; (3) the paper's
    reference criterion P = 1/2 + 1/2 E sign Delta (solid) and the symmetric one (dashed) vs N, the
    reference-set size n_ref marked; with one seed, the reference criterion's 95% Wilson interval
    over the training sets shaded."""
    fig, ax = plt.subplots(1, 3, figsize=(19, 4.8))
    cmap = plt.get_cmap("tab10")
    n = ds["n_train"].values.astype(float)
    fits = [str(f) for f in ds["fit"].values] if "fit" in ds.dims else [None]
    i, banded = 0, False
    for fit in fits:
        for d in ds["d"].values:
            for T in ds["T"].values:
                sel = ds.sel(d=d, T=T) if fit is None else ds.sel(d=d, T=T, fit=fit)
                col, i = cmap(i % 10), i + 1
                label = f"{fit or ''} d={d}, T={T:g}".strip()
                x = n / d
                kl = sel["kl_mean"].mean("seed").values
                fin = np.isfinite(kl)
                ax[0].plot(x[fin], kl[fin], "o-", color=col, ms=4, lw=0.8, label=label)
                if np.isfinite(sel["kl_large_n"].values).any():
                    big = x > 1.5
                    ax[0].plot(x[big], sel["kl_large_n"].values[big], "--", color=col, lw=1)
                ax[0].axhline(float(sel["kl_infinite_n"]), color=col, ls=":", lw=1)
                ax[1].plot(x, sel["hellinger2_mean"].mean("seed"), "o-", color=col, ms=4, lw=0.8,
                           label=label)
                ax[1].axhline(float(sel["hellinger2_infinite_n"]), color=col, ls=":", lw=1)
                ax[2].plot(n, sel["p_generalizing"].mean("seed"), "o-", color=col, ms=4,
                           label=label + " reference")
                if "p_generalizing_low" in sel and sel.sizes.get("seed", 1) == 1:
                    # one seed: its 95% Wilson interval over the training sets
                    ax[2].fill_between(n, sel["p_generalizing_low"].values.ravel(),
                                       sel["p_generalizing_high"].values.ravel(), color=col,
                                       alpha=0.15, lw=0)
                    banded = True
                ax[2].plot(n, sel["p_generalizing_symmetric"].mean("seed"), "x--", color=col,
                           lw=0.8, label=label + " symmetric")
    ax[0].axvspan(min(n.min() / ds["d"].values.max(), 0.5), 1.0, color="red", alpha=0.08,
                  label="KL = inf (N <= d)")
    ax[0].plot([], [], "--", color="0.3", lw=1, label="large-N expansion (dashed)")
    ax[0].plot([], [], ":", color="0.3", lw=1, label="N -> infinity limit (dotted)")
    ax[1].plot([], [], ":", color="0.3", lw=1, label="N -> infinity limit (dotted)")
    ax[0].set(xscale="log", yscale="log", xlabel="N / d", ylabel="KL(generated || sampling) (nats)",
              title="[H24] KL: mean over training sets, dashed large-N, dotted N -> inf")
    ax[1].set(xscale="log", xlabel="N / d", ylabel="squared Hellinger distance", ylim=(-0.02, 1.02),
              title="squared Hellinger distance (official code's metric)")
    ax[2].axhline(0.5, color="gray", lw=0.8)
    if banded:
        ax[2].fill_between([], [], [], color="0.5", alpha=0.3, lw=0,
                           label="reference: 95% Wilson interval over training sets")
    if "n_ref" in ds.attrs:
        ax[2].axvline(float(ds.attrs["n_ref"]), color="gray", ls=":", lw=1, label="n_ref")
    ax[2].set(xscale="log", xlabel="N", ylabel="P(generalizing)", ylim=(-0.03, 1.03),
              title="P = 1/2 + 1/2 E sign Delta: reference (paper) vs symmetric")
    for a in ax:
        a.title.set_fontsize(8)
    ax[0].legend(fontsize=6)
    ax[1].legend(fontsize=6)
    # right of the panel: inside, up to 8 lines + band would cover the curves
    ax[2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return save(fig, path, formats)
