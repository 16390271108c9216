"""Figure of the `random_features` job [BUBM25]: loss curves with both timescales marked, the
spectrum of U beside the theory density, and tau_mem against psi_n."""

from __future__ import annotations

import matplotlib.ticker
import numpy as np

from .common import plt, save


def plot_random_features(ds, path, formats=("png",)):
    """Left: train / test loss and score error against training time tau (first d, psi_p, t, seed)
    for each psi_n, measured tau_gen and tau_mem marked by vertical lines of their own styles. Middle: the theory
    density of U and a histogram of U's eigenvalues rebuilt from the empirical CDF (first cell,
    largest psi_n). Right: tau_mem and tau_gen (each seed a point) against psi_n with the
    theory's bulk-mean prediction and the fitted exponent."""
    sub = ds.isel(d=0, psi_p=0, t=0)
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = plt.cm.viridis(np.linspace(0, 0.85, sub.sizes["psi_n"]))
    kappa = sub["kappa"].isel(psi_n=0, seed=0).item()
    tau = sub["time"].values / kappa
    gen_ls, mem_ls = (0, (6, 2, 1, 2)), (0, (1, 3))  # the vertical markers' own styles
    for c, pn in zip(colors, sub["psi_n"].values):
        one = sub.sel(psi_n=pn).isel(seed=0)
        ax[0].plot(tau, one["train_loss"], color=c, lw=1.2, label=f"psi_n={pn:g}")
        ax[0].plot(tau, one["test_loss"], color=c, lw=1.2, ls="--")
        ax[0].plot(tau, one["score_error"] / max(float(one["score_error"][0]), 1e-300), color=c,
                   lw=0.8, ls=":")
        ax[0].axvline(float(one["tau_gen"]), color=c, ls=gen_ls, lw=1.0)
        ax[0].axvline(float(one["tau_mem"]), color=c, ls=mem_ls, lw=1.4)
    for ls, lw, text in (("-", 1.2, "train loss"), ("--", 1.2, "test loss (dashed)"),
                         (":", 0.8, "score error / initial (dotted)"),
                         (gen_ls, 1.0, "tau_gen (vertical, dash-dot)"),
                         (mem_ls, 1.4, "tau_mem (vertical, sparse dots)")):
        ax[0].plot([], [], color="0.3", ls=ls, lw=lw, label=text)
    ax[0].set(xscale="log", yscale="log", xlabel="training time tau (steps x learning rate)",
              ylabel="loss", title="loss curves (colour: psi_n, first seed)")
    ax[0].legend(fontsize=6, ncol=2)
    one = sub.isel(psi_n=-1, seed=0)
    lam = one["lambda_grid"].values
    ok = np.isfinite(lam)
    lam, rho, cdf = lam[ok], one["density_theory"].values[ok], one["cdf_empirical"].values[ok]
    edges = np.geomspace(lam[0], lam[-1], 60)
    mass = np.diff(np.interp(edges, lam, cdf))
    ax[1].stairs(mass / np.diff(edges), edges, fill=True, alpha=0.35, label="eigenvalues of U")
    ax[1].plot(lam, rho, color="k", lw=1, label="theory density")
    ax[1].set(xscale="log", yscale="log", xlabel="lambda", ylabel="density",
              title=f"spectrum of U (psi_n={float(one['psi_n']):g}); KS "
                    f"{float(one['spectrum_distance']):.3f}")
    ax[1].legend(fontsize=7)
    pn = sub["psi_n"].values
    for name, mk in (("tau_mem", "o"), ("tau_gen", "s")):
        for k, sd in enumerate(sub["seed"].values):
            ax[2].plot(pn, sub[name].sel(seed=sd), mk, color="C0" if name == "tau_mem" else "C1",
                       ms=4, alpha=0.7, label=f"{name} measured (a point per seed)" if k == 0
                       else None)
        ax[2].plot(pn, sub[f"{name}_theory"].isel(seed=0), "-", color="C0" if name == "tau_mem"
                   else "C1", lw=1, label=f"{name} theory (bulk mean)")
    a = ds["tau_mem_exponent"].isel(d=0, psi_p=0, t=0).item()
    lo = ds["tau_mem_exponent_ci_low"].isel(d=0, psi_p=0, t=0).item()
    hi = ds["tau_mem_exponent_ci_high"].isel(d=0, psi_p=0, t=0).item()
    ax[2].set(xscale="log", yscale="log", xlabel="psi_n = n / d", ylabel="tau",
              title=f"tau_mem ~ psi_n^{a:.2f} [{lo:.2f}, {hi:.2f}]")
    ax[2].set_xticks(pn, [f"{v:g}" for v in pn])  # plain psi_n values, not 2x10^0
    ax[2].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, formats)
