"""Figures for real data: generated digits beside their nearest training digits, and the per-band
critical noise against the band variance with the [ALD24] and REM theories."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_digit_pairs", "plot_band_critical_tau", "nearest_training"]


def nearest_training(x, train) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest training point of each row of x and the distance ratio
    |x - NN1| / |x - NN2| [GDPLLW23] (float64 numpy in, numpy out)."""
    x, train = np.asarray(x, dtype=np.float64), np.asarray(train, dtype=np.float64)
    d2 = (x**2).sum(1)[:, None] - 2 * x @ train.T + (train**2).sum(1)[None]
    order = np.argsort(d2, axis=1)[:, :2]
    rows = np.arange(x.shape[0])
    near = np.sqrt(np.clip(d2[rows[:, None], order], 0, None))
    return order[:, 0], near[:, 0] / np.maximum(near[:, 1], 1e-300)


def plot_digit_pairs(panels, path, side: int = 8) -> None:
    """One column pair per panel: generated images (left) and their nearest training images
    (right). panels: list of (title, generated (k, side*side), nearest (k, side*side), ratios (k,))
    in pixel units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(p[1].shape[0] for p in panels)
    fig, axes = plt.subplots(k, 2 * len(panels), figsize=(1.3 * 2 * len(panels), 1.2 * k + 0.6),
                             squeeze=False)
    for j, (title, gen, near, ratio) in enumerate(panels):
        for i in range(k):
            for c, img in ((2 * j, gen), (2 * j + 1, near)):
                ax = axes[i, c]
                ax.set_xticks([]), ax.set_yticks([])
                if i < img.shape[0]:
                    ax.imshow(img[i].reshape(side, side), cmap="gray_r", vmin=0, vmax=16)
            if i < gen.shape[0]:
                axes[i, 2 * j].set_ylabel(f"r={ratio[i]:.2f}", fontsize=7)
        axes[0, 2 * j].set_title(f"{title}\ngenerated", fontsize=8)
        axes[0, 2 * j + 1].set_title("nearest\ntraining", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_band_critical_tau(ds, path, score: str = "empirical", signature: str = "collapse",
                           anchors=("train", "fresh", "mean")) -> None:
    """Measured per-band critical tau (mean over seeds) against the band variance on log axes,
    one panel per anchor, one colour per N; the [ALD24] per-band tau_c (dashed, markers x) and
    the REM tau_C (one value for every band, dotted) with the PCA spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    var = ds["block_variance"].isel(d=0, std_ratio=0).values
    ns = ds["n_train"].values
    fig, axes = plt.subplots(1, len(anchors), figsize=(4.2 * len(anchors), 3.6), squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 0.9, ns.size))
    order = np.argsort(var)
    for a, anchor in zip(axes[0], anchors):
        for c, n in zip(colors, ns):
            sel = dict(n_train=n, d=ds["d"].values[0], std_ratio=ds["std_ratio"].values[0])
            meas = ds["critical_tau"].sel(score=score, anchor=anchor, signature=signature,
                                          **sel).values
            meas = np.where(np.isfinite(meas), meas, np.nan)
            y = np.nanmean(meas, axis=0) if np.isfinite(meas).any() else meas[0]
            a.plot(var[order], y[order], "o-", color=c, label=f"N={n}")
            ald = ds["critical_tau_theory"].sel(**sel).values
            a.plot(var[order], ald[order], "x--", color=c,
                   label="[ALD24] tau_c (x, dashed)" if c is colors[0] else None)
            a.axhline(float(ds["critical_tau_rem"].sel(**sel)), color=c, ls=":",
                      label="REM tau_C (dotted)" if c is colors[0] else None)
        a.set_xscale("log"), a.set_yscale("log")
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.set_xlabel("band variance (PCA eigenvalue)")
        a.set_title(f"anchor {anchor}, signature {signature}", fontsize=9)
    axes[0, 0].set_ylabel(f"critical tau ({score} score)")
    axes[0, 0].legend(fontsize=7, title="o measured, x [ALD24], : REM", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
