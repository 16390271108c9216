"""Figure of the `training_dynamics` job [BUBM25]: the (N, training steps) phase diagram of the
memorization ratio with tau_gen and tau_mem drawn on it, and tau_mem (and tau_gen) vs N on
log-log axes with the power-law fit."""

from __future__ import annotations

import numpy as np

from .common import plt, save

__all__ = ["plot_training_dynamics", "fit_line"]

_FIXED = ("d", "intrinsic_dim", "depth", "lr", "batch_size")


def fit_line(n, tau, exponent: float, partial_rows: bool = False):
    """(N, tau) of the line with slope `exponent` through the geometric mean of the points
    (N, tau) the fit used; tau (N, S). Those are the finite tau of the N with finite tau at every
    seed (at least two such N), or with `partial_rows` every finite tau (at least one: the
    censored fit uses the values of N where some seeds are bounds, masked here as NaN)."""
    n = np.asarray(n, float)
    tau = np.asarray(tau, float).reshape(len(n), -1)
    good = np.isfinite(tau) & (tau > 0)
    if not partial_rows:
        good &= good.all(axis=1, keepdims=True)
    if good.any(axis=1).sum() < (1 if partial_rows else 2) or not np.isfinite(exponent):
        return None
    ln = np.broadcast_to(np.log(n)[:, None], tau.shape)
    b = np.mean(np.log(tau[good]) - exponent * ln[good])
    return n, np.exp(b + exponent * np.log(n))


def _seed_center(tau):
    """Geometric mean over seeds of finite values (inf when every seed is censored)."""
    t = np.asarray(tau, float)
    fin = np.isfinite(t) & (t > 0)
    out = np.full(t.shape[:-1], np.inf)
    has = fin.any(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.where(fin, np.log(np.where(fin, t, 1.0)), 0.0).sum(-1) / fin.sum(-1)
    out[has] = np.exp(lg[has])
    out[np.isnan(t).all(-1)] = np.nan
    return out


def plot_training_dynamics(ds, path, formats=("png",)):
    """Left: seed-mean memorization ratio over (N, training steps) (first value of the axes other
    than width; first width) with tau_gen and tau_mem (geometric seed mean; censored N marked at
    the budget). Right: tau_mem and tau_gen vs N per width, each seed a point, the fit
    tau ~ N^a as a line, censored tau_mem as triangles at the budget, tau_gen at the first
    checkpoint as open down-triangles (upper bounds; the line is then the censored (Tobit) fit,
    none where that is undetermined)."""
    sel = {k: ds[k].values[0] for k in _FIXED if k in ds.dims}
    sub = ds.sel(sel)
    widths = sub["width"].values
    budget = float(ds.attrs.get("budget_steps", ds["train_step"].values[-1]))
    fig, ax = plt.subplots(1, 2, figsize=(13, 5))
    first = sub.sel(width=widths[0])
    n, steps = first["n_train"].values, first["train_step"].values
    ratio = first["memorization_ratio"].mean("seed").transpose("train_step", "n_train").values
    mesh = ax[0].pcolormesh(_edges(n), _edges(steps), ratio, vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(mesh, ax=ax[0], label="memorization ratio (seed mean)")
    tm = _seed_center(first["tau_mem"].transpose("n_train", "seed").values)
    tg = _seed_center(first["tau_gen"].transpose("n_train", "seed").values)
    if np.isfinite(tm).any():
        ax[0].plot(n, np.where(np.isfinite(tm), tm, np.nan), "w-o", label="tau_mem")
    cens = ~np.isfinite(tm)
    if cens.any():
        ax[0].plot(n[cens], np.full(cens.sum(), budget), "w^", ms=9, label="tau_mem > budget")
    gc = (first["tau_gen_censored"].values.astype(bool) if "tau_gen_censored" in first
          else np.zeros(first["tau_gen"].shape, bool))
    note = ("" if not gc.any() else " (<= first checkpoint: unresolved)" if gc.all()
            else f" ({int(gc.sum())} of {gc.size} seeds <= first checkpoint: upper bounds)")
    ax[0].plot(n, tg, "r--s", label="tau_gen" + note)
    ax[0].set(xscale="log", yscale="log", xlabel="N (training points)", ylabel="training steps",
              title=f"width {widths[0]}; " + ", ".join(
                  f"{k} = {'full batch' if k == 'batch_size' and v == 0 else v}"
                  for k, v in sel.items()))
    ax[0].legend(loc="best", fontsize=8)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, w in enumerate(widths):
        c = colors[i % len(colors)]
        s = sub.sel(width=w)
        for var, mk, ls in (("tau_mem", "o", "-"), ("tau_gen", "s", ":")):
            t = s[var].transpose("n_train", "seed").values
            nn = np.repeat(n[:, None], t.shape[1], 1)
            fin = np.isfinite(t)
            a, lo, hi = _exponent(s, var, "")
            if var == "tau_gen" and f"{var}_censored" in s:
                # at the first checkpoint already: upper bounds, not times
                bound = s[f"{var}_censored"].transpose("n_train", "seed").values.astype(bool)
                bound &= fin
            else:
                bound = np.zeros_like(fin)
            ax[1].plot(nn[fin & ~bound], t[fin & ~bound], mk, color=c, alpha=0.6,
                       mfc="none" if var == "tau_gen" else c)
            if bound.any():
                ax[1].plot(nn[bound], t[bound], "v", color=c, alpha=0.6, mfc="none", ms=7,
                           label=f"tau_gen <= first checkpoint: upper bound ({int(bound.sum())}"
                                 f" of {bound.size})")
                # the plain fit would take the bounds for times: the censored (Tobit) fit
                a, lo, hi = _exponent(s, var, "_tobit")
                how = " (censored fit)"
            else:
                how = ""
            if var == "tau_mem" and (~fin & ~np.isnan(t)).any():
                at, alo, ahi = _exponent(s, var, "_tobit")
                if np.isfinite(at) and abs(at - a) >= 0.005:
                    how = f" (uncensored N); {at:.2f} [{alo:.2f}, {ahi:.2f}] (censored fit)"
            # with bounds: through every value that is a time (N with some bounds included)
            line = fit_line(n, np.where(bound, np.nan, t), a, partial_rows=bound.any())
            if line is not None:
                # a bootstrap over 2 seeds with one usable value per N can collapse to a point
                ci = (f" [{lo + 0.0:.2f}, {hi + 0.0:.2f}]" if hi - lo > 1e-9
                      else " (no interval: every resample gives the same fit)")
                ax[1].plot(*line, ls, color=c, label=f"{var}, width {w}: a = {a + 0.0:.2f}{ci}{how}")
            elif bound.any():
                ax[1].plot([], [], ls, color=c, label=f"{var}, width {w}: no exponent (too "
                                                      f"many upper bounds)")
            if var == "tau_mem" and (~fin).any():
                ax[1].plot(nn[~fin & ~np.isnan(t)], np.full((~fin & ~np.isnan(t)).sum(), budget),
                           "^", color=c, ms=9, label=f"tau_mem censored (width {w})")
    ax[1].axhline(budget, color="gray", lw=0.8, ls="--", label="training budget (dashed)")
    ax[1].set(xscale="log", yscale="log", xlabel="N (training points)",
              ylabel="training steps", title="tau_mem ~ N^a (filled), tau_gen (open)")
    ax[1].legend(fontsize=7)
    if n.size and n.max() / n.min() < 10:  # under a decade: label the N values, not log minors
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

        for a_ in ax:
            a_.xaxis.set_major_locator(FixedLocator(n))
            a_.xaxis.set_major_formatter(lambda x, _: f"{x:g}")
            a_.xaxis.set_minor_locator(NullLocator())
            a_.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    return save(fig, path, formats)


def _exponent(s, var, kind):
    """(a, ci_low, ci_high) of `var` ~ N^a: kind "" (plain fit) or "_tobit" (censored fit); NaN
    where the Dataset has no such fit."""
    names = [f"{var}_exponent{kind}", f"{var}_exponent{kind}_ci_low",
             f"{var}_exponent{kind}_ci_high"]
    return tuple(float(s[k]) if k in s else float("nan") for k in names)


def _edges(v):
    v = np.asarray(v, float)
    if len(v) == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5])
    lg = np.log(v)
    mid = (lg[1:] + lg[:-1]) / 2
    return np.exp(np.concatenate([[lg[0] - (mid[0] - lg[0])], mid, [lg[-1] + (lg[-1] - mid[-1])]]))
