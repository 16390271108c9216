"""Figures of results Datasets (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .output import write_figure  # noqa: E402

__all__ = ["plot_quickstart", "plot_validation", "validation_deviations", "save"]


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


def validation_deviations(ds) -> dict:
    """Per check of a validate Dataset: the relative deviation measured / theory - 1 and its 95%
    interval (ci / theory - 1), the same against the finite-N theory where one exists (NaN
    elsewhere), and the tolerance on the same relative scale (an absolute tolerance divided by
    |theory|). Rows whose theory is 0 get measured - theory and their absolute tolerance
    instead (`absolute` True). Returns numpy arrays keyed by name."""
    th = np.asarray(ds["theory"].values, dtype=float)
    me = np.asarray(ds["measured"].values, dtype=float)
    lo = np.asarray(ds["ci_low"].values, dtype=float)
    hi = np.asarray(ds["ci_high"].values, dtype=float)
    tol = np.asarray(ds["tolerance"].values, dtype=float)
    tol_abs = (np.asarray(ds["tolerance_is_absolute"].values).astype(bool)
               if "tolerance_is_absolute" in ds else np.zeros(th.shape, bool))
    absolute = th == 0
    scale = np.where(absolute, 1.0, np.abs(th))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = (me - th) / scale
        dlo, dhi = (lo - th) / scale, (hi - th) / scale
        fin = (np.asarray(ds["theory_finite_n"].values, dtype=float) if "theory_finite_n" in ds
               else np.full(th.shape, np.nan))
        dev_fin = np.where(absolute, np.nan, me / fin - 1)
        rel_tol = np.where(tol_abs & ~absolute, tol / scale, tol)
    return {"deviation": dev, "ci_low": dlo, "ci_high": dhi, "deviation_finite_n": dev_fin,
            "tolerance": rel_tol, "absolute": absolute}


VALIDATION_LINTHRESH = 1e-3  # symlog: linear within +-0.1%, logarithmic beyond


def plot_validation(ds, path, formats=("png",)):
    """One row per check of `memphase validate`: the relative deviation measured / theory - 1
    (filled marker) with its 95% interval (bar), against the finite-N theory where the check has
    one (hollow diamond), and the check's tolerance (grey band), on a symmetric-log axis (linear
    within +-0.1%) so that 0.1% and 8% effects are both visible; an absolute tolerance is drawn
    relative to |theory|. Rows with a zero theory show measured - theory ("abs" in the label).
    Red: outside tolerance; grey label: reported (not gated)."""
    v = validation_deviations(ds)
    n = v["deviation"].size
    q = [str(x) for x in ds["quantity"].values]
    st = [str(x) for x in ds["setting"].values] if "setting" in ds.coords else [""] * n
    ok = np.asarray(ds["within_tolerance"].values).astype(bool)
    gated = (np.asarray(ds["gated"].values).astype(bool) if "gated" in ds
             else np.ones(n, bool))
    height = max(3.2, 1.6 + 0.26 * n)  # inches; the legend goes ~0.55 in below the axes
    fig, ax = plt.subplots(figsize=(9, height))
    y = np.arange(n)[::-1]
    for i in range(n):
        tol = v["tolerance"][i]
        if np.isfinite(tol):
            ax.fill_betweenx([y[i] - 0.35, y[i] + 0.35], -tol, tol, color="0.88", lw=0,
                             label="tolerance" if i == 0 else None)
        col = "C0" if ok[i] else "red"
        lo, hi = v["ci_low"][i], v["ci_high"][i]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [y[i], y[i]], "-", color=col, lw=1.5)
    if np.isfinite(v["ci_low"]).any():
        ax.plot([], [], "-", color="C0", lw=1.5, label="95% interval (red: outside tolerance)")
    ax.plot(v["deviation"], y, "o", color="C0", ms=5, ls="none",
            label="measured / theory - 1 (abs rows, theory 0: measured)")
    bad = ~ok
    ax.plot(v["deviation"][bad], y[bad], "o", color="red", ms=5, ls="none",
            label="outside tolerance" if bad.any() else None)
    fin = np.isfinite(v["deviation_finite_n"])
    if fin.any():
        ax.plot(v["deviation_finite_n"][fin], y[fin], "D", mfc="none", color="C2", ms=6,
                ls="none", label="measured / finite-N theory - 1")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=VALIDATION_LINTHRESH)
    spread = np.concatenate([np.abs(v[k][np.isfinite(v[k])]) for k in
                             ("deviation", "ci_low", "ci_high", "deviation_finite_n", "tolerance")])
    if spread.size:
        edge = max(2 * VALIDATION_LINTHRESH, 1.6 * float(spread.max()))
        ax.set_xlim(-edge, edge)
    labels = [f"{'abs ' if v['absolute'][i] else ''}{q[i]} [{st[i]}]"[:70] for i in range(n)]
    ax.set_yticks(y, labels, fontsize=7)
    for lab, g in zip(ax.get_yticklabels(), gated):
        if not g:
            lab.set_color("0.5")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set(xlabel=f"relative deviation (symlog, linear within +-{VALIDATION_LINTHRESH:g})",
           title="memphase validate: measured vs theory (grey labels: reported, not gated)")
    ax.title.set_fontsize(9)
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.55 / (height - 1.6)),
              ncol=2)
    fig.tight_layout()
    return save(fig, path, formats)
