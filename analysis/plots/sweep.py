"""Figures of any memphase results file: phase diagrams (heatmaps over two axes) with theory
overlaid, per-block curves, memorization-ratio curves. Drives `memphase plot FILE`; experiments
reuse `heatmap_panel` for their own figures (`memphase.analysis.plots.collapse`). The conventions
below are implemented in `memphase.analysis.plots.sweep_conventions`.

Conventions (an experiment that follows them gets its theory drawn by `memphase plot`):

- Sweep axes are the [grid] keys of the config text stored in attrs["config"] ("seeds" is the dim
  `seed`) that are dims of the Dataset; every other dim (time, tau, block, ...) is internal.
- `<name>_theory` is the theory of `<name>` or of `<name>_measured`, in the same units: drawn as
  labelled contour lines on a heatmap of it and as dashed lines on curves of it.
- A variable with the attribute `boundary_axis = "<axis>"` holds positions along the dim <axis>
  (in that coordinate's units) as a function of its own dims, e.g. `collapse_time_theory` (d, alpha)
  with boundary_axis "time", or `memorization_boundary_alpha` (d,) with boundary_axis "alpha". It is
  drawn as a line on every heatmap with <axis> as x or y: a curve over the other plotted axis
  when it depends on it, else a straight line (dashed; attribute `line_style` overrides, e.g.
  ":" for the finite-N collapse time beside the dashed REM one).
- A `block` dim gives per-block curves; `memorization_ratio` (and `collapse_fraction`) with an
  `n_train` or `alpha` dim give memorization curves.

Dims that are not plotted are reduced by one rule, applied to the variable and to its overlays
alike: `seed` is averaged (NaN skipped); `score` gives one panel per value; any other dim takes the
value given by `--sel DIM=VALUE` (nearest coordinate) or else its last coordinate value (for the
reverse-time axis `time` that is the end of the trajectories). Panel titles state the selection.

Default axes of a heatmap of V: x = the last sweep axis of V with more than one value, y = its
first internal dim with more than one value (block excluded) if any, else the sweep axis before x.
Log scale on an axis whose values are positive and span a factor >= 8.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure


from .output import write_figure
from .sweep_conventions import (_AVERAGED, _FACET, _SIZE_AXES, _candidate_axes, _coord,
                                _main_variables, _numeric, boundary_variables, default_axes,
                                parse_selection, reduce_dims, sweep_axes, theory_partner)

__all__ = ["FORMATS", "plot_results", "sweep_axes", "theory_partner", "boundary_variables",
           "reduce_dims", "default_axes", "heatmap_panel", "curve_panel", "plot_phase_diagram",
           "plot_curves", "plot_block_curves", "plot_memorization_curves",
           "parse_selection", "write_figure", "legend_text"]

FORMATS = ("png", "pdf", "svg")


# ----------------------------------------------------------------------------- drawing


def _log_scale(values) -> bool:
    v = np.asarray(values, dtype=float)
    return bool(np.all(v > 0) and v.size > 1 and v.max() / v.min() >= 8)


def _log_values(values) -> bool:
    """Log scale for curve values: positive and spanning a factor >= 100."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size > 1 and np.all(v > 0) and v.max() / v.min() >= 100)


def _edges(values, log: bool) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] / 2, v[0] * 2]) if log and v[0] > 0 else np.array([v[0] - 0.5,
                                                                                  v[0] + 0.5])
    w = np.log(v) if log else v
    mid = 0.5 * (w[1:] + w[:-1])
    e = np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _grid_ticks(axis, values, max_ticks: int = 12):
    """Ticks at the grid values themselves (plain labels) when there are few of them."""
    v = np.unique(np.asarray(values, dtype=float))
    if v.size <= max_ticks:
        axis.set_ticks(v, labels=[_fmt(float(t)) for t in v])
        axis.set_minor_locator(matplotlib.ticker.NullLocator())


def quantity_units(da) -> str:
    """The unit to print for a variable: the suite's quantity ("OU time", "data variance", ...)
    that a CF file keeps in `quantity` beside units "1", else its units."""
    return da.attrs.get("quantity") or da.attrs.get("units", "")


def _label(ds, dim) -> str:
    if dim not in ds.coords:
        return dim
    units = quantity_units(ds[dim])
    return f"{dim} [{units}]" if units and units != "1" else dim


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _title(chosen: dict, score=None) -> str:
    """'score: dim=value, ...' (the facet first, then the dims reduced by selection)."""
    rest = ", ".join(f"{k}={_fmt(v)}" for k, v in chosen.items() if k != _FACET)
    return f"{score}: {rest}" if score is not None and rest else (score or rest)


def legend_text(ds, name) -> str:
    """The legend entry of an overlay variable: its name and, when short, its long_name."""
    long = str(ds[name].attrs.get("long_name", ""))
    long = long.split(" (")[0].split(":")[0].strip()
    return f"{name}: {long}" if long and len(long) <= 40 else name


def _draw_boundaries(ax, ds, x, y, keep_sel, panel_sel, limits=None):
    """Lines of the boundary variables along x or y (see the module docstring), each labelled
    with `legend_text` for the panel's legend; a line wholly outside `limits` ({axis: (lo, hi)},
    the panel's extent) is not drawn, so that the legend names only what the panel shows."""
    limits = limits or {}

    def inside(axis, v):
        lo, hi = limits.get(axis, (-np.inf, np.inf))
        return np.isfinite(v) & (v >= lo) & (v <= hi)

    for axis, other in ((x, y), (y, x)):
        for name in boundary_variables(ds, axis):
            b, _ = reduce_dims(ds[name], {other}, {**keep_sel, **panel_sel})
            vals = np.asarray(b.values, dtype=float)
            style = dict(color="w", lw=2.0, ls=ds[name].attrs.get("line_style", "--"))
            if b.ndim == 0:
                if inside(axis, vals):
                    (ax.axvline if axis == x else ax.axhline)(float(vals), **style,
                                                              label=legend_text(ds, name))
                continue
            o = _coord(ds, other)
            ok = np.isfinite(vals)
            if not inside(axis, vals[ok]).any():
                continue
            order = np.argsort(o[ok])
            xs, ys = (vals[ok][order], o[ok][order]) if axis == x else (o[ok][order],
                                                                        vals[ok][order])
            ax.plot(xs, ys, marker=".", **style, label=legend_text(ds, name))
            ax.plot(xs, ys, color="k", lw=0.8, ls=style["ls"])


LOG_COLOR_SPAN = 100.0  # max / min above which a positive heatmap gets logarithmic colours


def heatmap_panel(ax, ds, name, x, y, selection=None, *, score=None, colorbar=True, cmap=None,
                  vmin=None, vmax=None):
    """Heatmap of `name` over (x, y) on `ax`, other dims reduced by the module's rule (`score`
    fixed to `score` when given), with its theory partner as contours and boundary variables as
    dashed lines; color limits vmin, vmax (default: this panel's range, on a logarithmic scale
    when the values are positive and span more than LOG_COLOR_SPAN). Returns the dict of reduced
    dims."""
    if x == y:
        raise ValueError(f"x and y are both {x!r}")
    for a in (x, y):
        if ds.sizes.get(a, 0) < 2:
            raise ValueError(f"axis {a!r} has a single value: nothing to map; choose another axis")
    selection = dict(selection or {})
    panel_sel = {_FACET: score} if score is not None and _FACET in ds.dims else {}
    da, chosen = reduce_dims(ds[name], {x, y}, {**selection, **panel_sel})
    da = da.transpose(y, x)
    xs, ys = _coord(ds, x), _coord(ds, y)
    ox, oy = np.argsort(xs), np.argsort(ys)
    z = np.asarray(da.values, dtype=float)[np.ix_(oy, ox)]
    logx, logy = _log_scale(xs), _log_scale(ys)
    xe, ye = _edges(xs[ox], logx), _edges(ys[oy], logy)
    norm = None
    finite = z[np.isfinite(z)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else None)
    hi = vmax if vmax is not None else (finite.max() if finite.size else None)
    if lo is not None and hi is not None and lo > 0 and hi / lo > LOG_COLOR_SPAN:
        # a positive quantity spanning decades (here or over the panels sharing vmin, vmax):
        # logarithmic colours, or most cells share one hue
        from matplotlib.colors import LogNorm

        norm = LogNorm(vmin=lo, vmax=hi)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(z), shading="flat",
                         cmap=cmap or "viridis", **({"norm": norm} if norm is not None
                                                    else {"vmin": vmin, "vmax": vmax}))
    if colorbar:
        units = quantity_units(ds[name])
        ax.figure.colorbar(mesh, ax=ax, label=f"{name}" + (f" [{units}]" if units and units != "1"
                                                           else ""))
    partner = theory_partner(ds, name)
    if partner is not None:
        t, _ = reduce_dims(ds[partner], {x, y}, {**selection, **panel_sel})
        t = t.broadcast_like(da).transpose(y, x)
        tz = np.asarray(t.values, dtype=float)[np.ix_(oy, ox)]
        if np.isfinite(tz).sum() >= 4 and np.nanstd(tz) > 0:
            cs = ax.contour(xs[ox], ys[oy], tz, levels=6, colors="w", linewidths=0.9)
            ax.clabel(cs, fontsize=7, fmt="%.3g")
            ax.plot([], [], "w-", lw=0.9, label=f"contours: {partner}")
    _draw_boundaries(ax, ds, x, y, selection, panel_sel,
                     {x: (min(xe[0], xe[-1]), max(xe[0], xe[-1])),
                      y: (min(ye[0], ye[-1]), max(ye[0], ye[-1]))})
    if ax.get_legend_handles_labels()[0]:
        leg = ax.legend(fontsize=6, loc="best", framealpha=0.75)
        leg.get_frame().set_facecolor("0.35")
        for text in leg.get_texts():
            text.set_color("w")
    ax.set(xscale="log" if logx else "linear", yscale="log" if logy else "linear",
           xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]), xlabel=_label(ds, x), ylabel=_label(ds, y))
    _grid_ticks(ax.xaxis, xs)
    _grid_ticks(ax.yaxis, ys)
    ax.set_title(_title(chosen, score), fontsize=8)
    return chosen


def curve_panel(ax, ds, name, x, selection=None, *, color_axis=None, score=None):
    """Curves of `name` vs x (mean over seeds, error bars = std over seeds), one per value of
    `color_axis`; theory partner dashed; boundary variables along x as dotted vertical lines."""
    selection = dict(selection or {})
    panel_sel = {_FACET: score} if score is not None and _FACET in ds.dims else {}
    keep = {x} | ({color_axis} if color_axis else set())
    da = ds[name]
    spread = None
    if _AVERAGED in da.dims and da.sizes[_AVERAGED] > 1:
        spread, _ = reduce_dims(da.std(_AVERAGED, skipna=True), keep, {**selection, **panel_sel})
    mean, chosen = reduce_dims(da, keep, {**selection, **panel_sel})
    partner = theory_partner(ds, name)
    theory = reduce_dims(ds[partner], keep, {**selection, **panel_sel})[0] if partner else None
    colors = _coord(ds, color_axis) if color_axis else [None]
    cmap = matplotlib.colormaps["viridis"]
    xs = _coord(ds, x)
    order = np.argsort(xs)
    drawn = set()  # boundary variables already in the legend
    for i, c in enumerate(colors):
        col = cmap(i / max(len(colors) - 1, 1)) if color_axis else "C0"
        pick = (lambda a: a.sel({color_axis: c})) if color_axis else (lambda a: a)
        m = np.asarray(pick(mean).transpose(x, ...).values, dtype=float)
        err = (np.asarray(pick(spread).transpose(x, ...).values, dtype=float)
               if spread is not None else None)
        lab = f"{color_axis}={_fmt(c)}" if color_axis else name
        ax.errorbar(xs[order], m[order], yerr=None if err is None else err[order], fmt="o-",
                    color=col, label=lab, capsize=2, ms=4)
        if theory is not None:
            t = pick(theory)
            if x in t.dims:
                ax.plot(xs[order], np.asarray(t.transpose(x, ...).values, float)[order], "--",
                        color=col, lw=1.5, alpha=0.8,
                        label=f"{partner} (dashed)" if i == 0 else None)
        for bname in boundary_variables(ds, x):
            b = reduce_dims(ds[bname], {color_axis} if color_axis else set(),
                            {**selection, **panel_sel})[0]
            bv = float(pick(b).values) if b.ndim <= (1 if color_axis else 0) else np.nan
            lo, hi = xs.min(), xs.max()
            if np.isfinite(bv) and lo <= bv <= hi:
                ax.axvline(bv, color=col, ls=":", lw=1.2,
                           label=None if bname in drawn else f"{legend_text(ds, bname)} (dotted)")
                drawn.add(bname)
    units = quantity_units(ds[name])
    ax.set(xscale="log" if _log_scale(xs) else "linear", xlabel=_label(ds, x),
           ylabel=name + (f" [{units}]" if units and units != "1" else ""))
    ax.set_title(_title(chosen, score), fontsize=8)
    ax.legend(fontsize=7)
    return chosen


def _save(fig, stem: Path, formats) -> list[Path]:
    # constrained layout: no bbox_inches="tight" second pass
    return write_figure(fig, stem, formats, dpi=110)


def _figure(nrows, ncols, figsize):
    """A pyplot-free Figure (no backend, no global state) and its (nrows, ncols) axes array."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _facets(ds, name):
    if _FACET in ds[name].dims:
        return [str(s) for s in _coord(ds, _FACET)]
    return [None]


def _suptitle(fig, ds, text):
    """Title the figure with the job name (from the Dataset attrs)."""
    job = ds.attrs.get("job", "")
    fig.suptitle(f"{job}: {text}" if job else text, fontsize=10)


def plot_phase_diagram(ds, name, x, y, stem: Path, formats=("png", "pdf"), selection=None):
    """Heatmap of `name` over (x, y), one panel per score; files `<stem>.<fmt>`."""
    scores = [s for s in _facets(ds, name)
              if not (selection and _FACET in selection and s != selection[_FACET])]
    fig, axes = _figure(1, len(scores), (5.2 * len(scores), 4.2))
    values = np.asarray(ds[name].values, dtype=float)
    lim = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (None, None)
    for ax, s in zip(axes[0], scores):  # one color scale for every score
        heatmap_panel(ax, ds, name, x, y, selection, score=s, vmin=lim[0], vmax=lim[1])
    _suptitle(fig, ds, f"{name} ({ds[name].attrs.get('long_name', '')})")
    return _save(fig, stem, formats)


def plot_curves(ds, name, x, stem: Path, formats=("png", "pdf"), selection=None):
    """`name` vs x, one panel per score, colored by the first other sweep axis with > 1 value."""
    scores = [s for s in _facets(ds, name)
              if not (selection and _FACET in selection and s != selection[_FACET])]
    sweep, internal = _candidate_axes(ds, name)
    color = next((a for a in sweep + internal if a != x and not (selection and a in selection)),
                 None)
    fig, axes = _figure(1, len(scores), (5.2 * len(scores), 4.0))
    for ax, s in zip(axes[0], scores):
        curve_panel(ax, ds, name, x, selection, color_axis=color, score=s)
    _suptitle(fig, ds, f"{name} ({ds[name].attrs.get('long_name', '')})")
    return _save(fig, stem, formats)


def plot_memorization_curves(ds, stem: Path, formats=("png", "pdf"), selection=None):
    """Memorization ratio [GDPLLW23] and collapse fraction [BDKOS25] vs n_train or alpha (the sweep
    axis present), per score, colored by the other sweep axis, boundary lines dotted. None if the
    Dataset has no memorization_ratio over n_train / alpha."""
    if "memorization_ratio" not in ds.data_vars:
        return None
    dims = ds["memorization_ratio"].dims
    x = next((a for a in _SIZE_AXES if a in dims and ds.sizes[a] > 1), None)
    if x is None:
        return None
    names = [v for v in ("memorization_ratio", "collapse_fraction") if v in ds.data_vars]
    scores = _facets(ds, "memorization_ratio")
    sweep, _ = _candidate_axes(ds, "memorization_ratio")
    color = next((a for a in sweep if a != x), None)
    fig, axes = _figure(len(names), len(scores), (4.6 * len(scores), 3.6 * len(names)))
    for i, name in enumerate(names):
        for j, s in enumerate(scores):
            ax = axes[i, j]
            curve_panel(ax, ds, name, x, selection, color_axis=color, score=s)
            ax.set_ylim(-0.03, 1.03)
    drawn = any(ln.get_label().endswith("(dotted)") for ax in axes.ravel() for ln in ax.lines)
    # promise the boundary only where a panel draws it (it may lie beyond every N of the grid)
    _suptitle(fig, ds, "memorization vs training-set size" + (" (dotted: theory boundary)"
                                                              if drawn else ""))
    return _save(fig, stem, formats)


def plot_block_curves(ds, stem: Path, formats=("png", "pdf"), selection=None):
    """Per-block curves of every variable with a `block` dim: vs tau (or time, or the first sweep
    axis), solid/dashed/... per block, colored by the first sweep axis, theory partner as thick
    translucent lines; one row per variable, one column per score. None without a block dim."""
    if "block" not in ds.dims:
        return None
    names = [v for v in _main_variables(ds) if "block" in ds[v].dims]
    if not names:
        return None
    scores = _facets(ds, names[0])
    blocks = _coord(ds, "block")
    styles = ["-", "--", ":", "-."]
    fig, axes = _figure(len(names), len(scores), (4.8 * len(scores), 3.6 * len(names)))
    cmap = matplotlib.colormaps["viridis"]
    for i, name in enumerate(names):
        sweep, _ = _candidate_axes(ds, name)
        x = next((a for a in ("tau", "time") if a in ds[name].dims),
                 sweep[0] if sweep else None)
        if x is None:
            continue
        color = next((a for a in sweep if a != x), None)
        keep = {x, "block"} | ({color} if color else set())
        partner = theory_partner(ds, name)
        xs = _coord(ds, x)
        for j, s in enumerate(scores):
            ax = axes[i, j]
            sel = {**(selection or {}), **({_FACET: s} if s is not None else {})}
            da, chosen = reduce_dims(ds[name], keep, sel)
            th = reduce_dims(ds[partner], keep, sel)[0] if partner else None
            cvals = _coord(ds, color) if color else [None]
            for k, c in enumerate(cvals):
                col = cmap(k / max(len(cvals) - 1, 1))
                for bi, b in enumerate(blocks):
                    pick = {"block": b, **({color: c} if color else {})}
                    y = np.asarray(da.sel(pick).values, dtype=float)
                    lab = (f"{color}={_fmt(c)} " if color and bi == 0 else "") + \
                          (f"block {_fmt(b)}" if k == 0 else "")
                    ax.plot(xs, y, styles[bi % len(styles)], color=col, label=lab.strip() or None)
                    if th is not None and x in th.dims:
                        ax.plot(xs, np.asarray(th.sel(pick).values, dtype=float),
                                styles[bi % len(styles)], color=col, lw=3, alpha=0.3)
            if th is not None and x in th.dims:
                ax.plot([], [], "-", color="0.4", lw=3, alpha=0.3,
                        label=f"{partner} (thick translucent)")
            ax.set(xscale="log" if _log_scale(xs) else "linear", xlabel=_label(ds, x),
                   ylabel=name, title=_title(chosen, s),
                   yscale="log" if _log_values(da.values) else "linear")
            ax.title.set_fontsize(8)
            ax.legend(fontsize=6)
    _suptitle(fig, ds, "per-block curves (thick translucent: theory)")
    return _save(fig, stem, formats)


# ----------------------------------------------------------------------------- entry point


def plot_results(path, var=None, x=None, y=None, out=None, formats=("png", "pdf"),
                 selection=None) -> list[Path]:
    """Draw the figures of a results file (see the module docstring); return the files written.

    var: one variable (default: every plottable one); x, y: heatmap axes (default by the rule);
    out: folder (default: beside the file); formats: subset of FORMATS; selection: ['dim=value'].
    ValueError (one line) for an unknown variable, axis or format; ResultFileError for a missing,
    corrupt or foreign file.
    """
    from ..results import open_results

    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"unknown --format {','.join(bad) or '(empty)'}; choose from "
                         f"{','.join(FORMATS)}")
    path = Path(path)
    out_dir = Path(out) if out else path.parent
    with open_results(path) as ds:
        ds.load()
        if ds.attrs.get("job") == "validate" and var is None:
            # a validation table: one chart of measured against predicted critical times, not
            # a panel per check index
            from .common import plot_validation

            return plot_validation(ds, out_dir / path.stem, formats)
        sel = parse_selection(ds, selection)
        mains = _main_variables(ds)
        if var is not None and var not in ds.data_vars:
            raise ValueError(f"unknown --var {var!r} in {path}; variables: {mains}")
        if var is not None and not _numeric(ds, var):
            raise ValueError(f"--var {var!r} is not numeric")
        stem = out_dir / path.stem
        written: list[Path] = []
        names = [var] if var is not None else mains
        if var is None and (x is not None or y is not None):
            names = [n for n in mains if all(a is None or a in ds[n].dims for a in (x, y))]
            if not names:
                raise ValueError(f"no variable of {path} has axes "
                                 f"{' and '.join(repr(a) for a in (x, y) if a)}; dims: "
                                 f"{list(ds.dims)}")
        for name in names:
            ax_x, ax_y = default_axes(ds, name, x, y, fixed=tuple(sel))
            if ax_x is None:
                continue
            for a in (ax_x, ax_y):
                if a is not None and ds.sizes[a] < 2 and var is not None:
                    raise ValueError(f"axis {a!r} of {name!r} has a single value: nothing to "
                                     f"plot over; choose another --x/--y")
            if ax_y is None or ds.sizes[ax_y] < 2 or ds.sizes[ax_x] < 2:
                if ds.sizes[ax_x] >= 2 and (var is not None or ax_y is None):
                    written += plot_curves(ds, name, ax_x, Path(f"{stem}_{name}_vs_{ax_x}"),
                                           formats, sel)
                continue
            written += plot_phase_diagram(ds, name, ax_x, ax_y,
                                          Path(f"{stem}_{name}_{ax_x}-{ax_y}"), formats, sel)
        if var is None and x is None and y is None:
            written += plot_memorization_curves(ds, Path(f"{stem}_memorization"), formats,
                                                sel) or []
            written += plot_block_curves(ds, Path(f"{stem}_blocks"), formats, sel) or []
        if not written:
            raise ValueError(f"nothing to plot in {path}: no variable has an axis with more than "
                             f"one value" + (f" (variable {var!r})" if var else ""))
    return written
