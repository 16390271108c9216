"""Figures explain themselves (issue 25, part 5): every dashed, dotted or dash-dot line of a figure
is named in its panel's legend (by its own label or by a legend entry of the same line style),
boundary lines outside a panel are not named, heatmaps of quantities spanning decades get
logarithmic colours also with shared limits, panel titles stay inside their column, and the
validate chart plots measured / theory - 1 with its interval.

The Datasets are synthetic: each experiment's own `assemble` on made-up cell results (its theory
variables are real), so that nothing samples."""

import math
import tomllib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from memphase.analysis import plots  # noqa: E402  (first: plots and geometric_plots import each other)
from memphase.analysis import collapse_plots, geometric_plots, sweep_plots  # noqa: E402
from memphase.physics.schedules import make_schedule  # noqa: E402
from memphase.simulate.config import validate  # noqa: E402
from memphase.simulate.experiments import collapse, quickstart, speciation  # noqa: E402

from figure_checks import COLLAPSE_GRID as COLLAPSE, unexplained_dashed_lines  # noqa: E402

@pytest.fixture
def captured(monkeypatch):
    """Figures the plot functions would save: kept open and returned instead."""
    figs = []

    def keep(fig, *a, **k):
        figs.append(fig)
        return []

    from memphase.analysis.plots import common  # the module whose `save` the figures call

    for mod, name in ((common, "save"), (geometric_plots, "save"), (sweep_plots, "_save"),
                      (collapse_plots, "_save")):
        monkeypatch.setattr(mod, name, keep)
    yield figs
    for f in figs:
        plt.close(f)


# ----------------------------------------------------------------------------- synthetic runs



def _trajectory(n, d, tau, emp):
    ou = make_schedule("ou")
    t = np.asarray(ou.time_of_tau(tau))
    t_c = 0.5 * np.log1p(1 / np.expm1(2 * np.log(n) / d))
    return t, {"nearest_distance": 30 * tau + 1e-3, "same_as_final":
               (t <= t_c).astype(float) if emp else 0.5 * (t <= t_c), "time": t, "tau": tau,
               "collapse_time_measured": 1.1 * t_c, "collapse_time_spread": 0.1 * t_c}


@pytest.fixture(scope="module")
def collapse_ds():
    cfg = validate(tomllib.loads(COLLAPSE), collapse.SCHEMA)
    cells = collapse.cells(cfg)
    tau = np.geomspace(1e3, 0.1, 12)
    res = []
    for c in cells:
        n_b = collapse.memorization_boundary_n(c["d"], 0.1, 1.0)
        emp = c["score"] == "empirical"
        ratio = 1 / (1 + (c["n_train"] / n_b) ** 2) if emp else 0.0
        _, traj = _trajectory(c["n_train"], c["d"], tau, emp)
        res.append({"memorization_ratio": ratio, "collapse_fraction": 0.9 * ratio, **traj})
    ds = collapse.assemble(cfg, cells, res)
    ds.attrs.update({"config": COLLAPSE, "job": "collapse"})
    return ds


@pytest.fixture(scope="module")
def quickstart_ds():
    raw = {"job": "quickstart", "data": {"d": 16},
           "grid": {"n_train": [4, 16, 64, 256, 1024, 4096], "seeds": [0, 1]},
           "sampler": {"t_min_tau": 1e-4, "t_max_tau": 1e3}}
    cfg = validate(raw, quickstart.SCHEMA)
    cells = quickstart.cells(cfg)
    tau = np.geomspace(1e3, 1e-4, 40)
    res = []
    for c in cells:
        emp = c["score"] == "empirical"
        _, traj = _trajectory(c["n_train"], 16, tau, emp)
        res.append({"memorization_ratio": float(emp), "collapse_fraction": float(emp), **traj})
    ds = quickstart.assemble(cfg, cells, res)
    ds.attrs.update({"param_data_d": 16, "param_data_variance": 1.0})
    return ds


@pytest.fixture(scope="module")
def speciation_ds():
    raw = {"job": "speciation", "grid": {"d": [16, 64], "score": ["population", "empirical"],
                                         "n_train": [256]}}
    cfg = validate(raw, speciation.SCHEMA)
    cells = speciation.cells(cfg)
    res = []
    for c in cells:
        ts = 0.5 * math.log(c["d"])
        phi = np.linspace(1.0, 0.5, len(cfg["measure"]["offsets"]))
        res.append({"phi": phi, "phi_lo": phi - 0.02, "phi_hi": phi + 0.02, "t_s": ts,
                    "t_s_lo": ts - 0.1, "t_s_hi": ts + 0.1})
    return speciation.assemble(cfg, cells, res)


# ----------------------------------------------------------------------------- legends


def test_collapse_figure_names_every_dashed_line(collapse_ds, captured):
    collapse_plots.plot_collapse(collapse_ds, "unused.png")
    (fig,) = captured
    assert unexplained_dashed_lines(fig) == []
    # panel (c) promises the boundary N_b(d) = 11^(d/2): it is drawn and in the legend
    c = next(ax for ax in fig.axes if "memorization ratio" in ax.get_title())
    labels = [t.get_text() for t in c.get_legend().get_texts()]
    assert any(lab.startswith("memorization_boundary_n_train") for lab in labels)
    line = next(ln for ln in c.get_lines() if ln.get_label().startswith("memorization_boundary"))
    d = collapse_ds["d"].values
    np.testing.assert_allclose(line.get_xdata(), 11.0 ** (d / 2), rtol=1e-9)


def test_memphase_plot_figures_name_every_dashed_line(collapse_ds, captured):
    """`memphase plot` panels: heatmaps (boundaries, contours) and curves (theory, boundaries)."""
    sweep_plots.plot_phase_diagram(collapse_ds, "memorization_ratio", "n_train", "d", None)
    sweep_plots.plot_phase_diagram(collapse_ds, "same_as_final", "n_train", "time", None)
    sweep_plots.plot_memorization_curves(collapse_ds, None)
    sweep_plots.plot_curves(collapse_ds, "collapse_time_measured", "n_train", None)
    assert len(captured) == 4
    for fig in captured:
        assert unexplained_dashed_lines(fig) == []
    # a boundary wholly outside the panel (N_b(12) = 11^6 > 4096 on the d = 12 curve panel) is
    # neither drawn nor named
    curves = captured[2]
    for ax in curves.axes:
        for ln in ax.get_lines():
            if ln.get_label().startswith("memorization_boundary"):
                assert ln.get_xdata()[0] <= 4096


def test_boundary_outside_the_heatmap_is_not_in_its_legend(collapse_ds):
    fig, ax = plt.subplots()
    sweep_plots.heatmap_panel(ax, collapse_ds, "same_as_final", "n_train", "time", {"d": 12},
                              score="empirical")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # N_b(12) = 1.8e6 lies beyond n_train = 4096: not drawn; the REM t_C curve is
    assert not any(lab.startswith("memorization_boundary") for lab in labels)
    assert any(lab.startswith("collapse_time_theory") for lab in labels)
    plt.close(fig)


def test_heatmap_with_shared_limits_spanning_decades_is_logarithmic(collapse_ds, captured):
    """The nearest-distance heatmap saturated: shared limits over the score panels disabled the
    logarithmic colours."""
    sweep_plots.plot_phase_diagram(collapse_ds, "nearest_distance", "n_train", "time", None)
    (fig,) = captured
    meshes = [c for ax in fig.axes for c in ax.collections if hasattr(c, "get_array")
              and c.get_array() is not None and c.norm is not None and ax.get_xlabel()]
    assert meshes and all(isinstance(m.norm, LogNorm) for m in meshes)
    fig2, ax = plt.subplots()
    sweep_plots.heatmap_panel(ax, collapse_ds, "memorization_ratio", "n_train", "d", vmin=0,
                              vmax=1)
    assert not isinstance(ax.collections[0].norm, LogNorm)
    plt.close(fig2)


def test_quickstart_memorization_panel_shows_the_transition(quickstart_ds, captured):
    plots.plot_quickstart(quickstart_ds, "unused.png")
    (fig,) = captured
    assert unexplained_dashed_lines(fig) == []
    ax = fig.axes[0]
    # three noise levels; each REM boundary N_b(tau) = (1 + 1/tau)^8 lies inside the N grid
    bounds = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(bounds) == 3
    for ln in bounds:
        assert 4 <= ln.get_xdata()[0] <= 4096
    # and the measured fractions move across it (not flat)
    for cont in ax.containers:
        y = np.asarray(cont.lines[0].get_ydata(), float)
        assert y.max() - y.min() > 0.5


def test_speciation_legends_name_only_their_panel(speciation_ds, captured, monkeypatch):
    monkeypatch.setattr("memphase.analysis.plots.save", lambda fig, *a, **k: captured.append(fig))
    speciation.plot(speciation_ds, "unused.png")
    (fig,) = captured
    assert unexplained_dashed_lines(fig) == []
    left, right = fig.axes
    left_labels = [t.get_text() for t in left.get_legend().get_texts()]
    right_labels = [t.get_text() for t in right.get_legend().get_texts()]
    # the level phi = 0.7752 is drawn (dotted) in the left panel and named there; the right
    # panel names the time at which the theory reaches it, the line it draws (dashed)
    assert any(lab.startswith("phi = ") for lab in left_labels)
    assert not any(lab.startswith("phi = ") or "phi(t) = " in lab and "where" not in lab
                   for lab in right_labels)
    dashed = [ln for ln in right.get_lines() if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(),
                               speciation_ds["speciation_time_cloning_theory"].values)


def test_geometric_figure_titles_stay_in_their_column_and_name_dashed_lines(captured):
    from memphase.simulate.experiments import geometric, run_in_memory

    raw = {"job": "geometric",
           "data": {"block_dims": [2, 3], "normal_std": 0.01, "normalize": "none"},
           "grid": {"n_train": [20, 300], "d": [12], "std_ratio": [0.3, 1.0],
                    "score": ["empirical"], "seeds": [0]},
           "measure": {"n_tau": 8, "n_points": 4, "tau_min": 1e-4, "tau_max": 1.0,
                       "tau_phase": 0.01}}
    _, ds = run_in_memory(geometric, validate(raw, geometric.SCHEMA))
    geometric_plots.plot_geometric(ds, "unused.png")
    main = captured[0]
    assert unexplained_dashed_lines(main) == []
    main.canvas.draw()
    r = main.canvas.get_renderer()
    axes = sorted(main.axes, key=lambda a: a.get_position().x0)
    for left, right in zip(axes, axes[1:]):
        title = left.title.get_window_extent(r)
        assert title.x1 <= right.get_window_extent(r).x0 + 1, left.get_title()
    for fig in captured[1:]:
        assert unexplained_dashed_lines(fig) == []
    # the phase diagram names a boundary in its legend only where it draws that contour
    phase = next(f for f in captured if any("lost at tau" in a.get_title() for a in f.axes))
    for ax in phase.axes:
        if "lost at tau" not in ax.get_title():
            continue
        named = [t.get_text() for t in ax.get_legend().get_texts() if "boundary" in t.get_text()]
        drawn = [c for c in ax.collections if type(c).__name__ == "QuadContourSet"]
        assert len(named) == 2
        assert sum("outside" not in t for t in named) == len(drawn), named


# ----------------------------------------------------------------------------- validate chart


def test_validate_chart_plots_measured_over_theory_minus_one(captured):
    from memphase.simulate.validate import Check, to_dataset

    checks = [Check("t_S (cloning)", "d=64", 2.08, 2.0904, (2.05, 2.12)),         # +0.5%
              Check("t_C (excess entropy)", "d=64", 1.00, 1.08, (1.05, 1.09),    # +8%
                    theory_finite_n=1.071, versus_finite_n=True),
              Check("tau_c", "published", 0.02, 0.02002, tolerance=0.01),        # +0.1%
              Check("collapse fraction", "c=0", 1.0, 0.99, (0.98, 1.0), tolerance=0.02,
                    absolute=True)]
    ds = to_dataset(checks)
    plots.plot_validation(ds, "unused.png")
    (fig,) = captured
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    main = next(ln for ln in ax.get_lines() if ln.get_label().startswith("measured / theory"))
    x = np.asarray(main.get_xdata(), float)
    np.testing.assert_allclose(x[:3], [2.0904 / 2.08 - 1, 0.08, 0.001], rtol=1e-9)
    assert x[3] == pytest.approx(0.99 - 1.0)  # absolute row: measured - theory
    # the 95% interval of the first row: ci / theory - 1
    y0 = main.get_ydata()[0]
    seg = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2
               and np.allclose(ln.get_ydata(), y0))
    np.testing.assert_allclose(sorted(seg.get_xdata()), [2.05 / 2.08 - 1, 2.12 / 2.08 - 1])
    fin = next(ln for ln in ax.get_lines() if "finite-N" in ln.get_label())
    np.testing.assert_allclose(fin.get_xdata(), [1.08 / 1.071 - 1])
    # 0.1% and 8% effects are both resolved: on the symlog axis they are far from 0
    to_px = ax.transData.transform
    zero = to_px((0, 0))[0]
    assert to_px((0.001, 0))[0] - zero > 0.05 * (to_px((0.1, 0))[0] - zero)


def test_flat_memorization_panel_is_replaced_by_its_numbers(collapse_ds, captured):
    """collapse_digits (tau_end = 1e-3: every N memorizes) drew a one-colour heatmap; now the
    panel states the ratio and where the boundary lies instead."""
    flat = collapse_ds.copy()
    flat["memorization_ratio"] = flat["memorization_ratio"] * 0 + 1.0
    collapse_plots.plot_collapse(flat, "unused.png")
    collapse_plots.plot_collapse(collapse_ds, "unused.png")
    flat_fig, fig = captured
    panel = next(ax for ax in flat_fig.axes if "over (n_train, d)" in ax.get_title())
    text = "\n".join(t.get_text() for t in panel.texts)
    assert "memorization ratio 1.00 at every" in text and "memorization_boundary_n_train" in text
    assert not panel.collections  # no heatmap
    assert any("memorization ratio (dashed" in ax.get_title() for ax in fig.axes)


def test_memorization_curves_promise_the_boundary_only_when_drawn(collapse_ds, captured):
    sweep_plots.plot_memorization_curves(collapse_ds, None)
    far = collapse_ds.copy()
    far["memorization_boundary_n_train"] = far["memorization_boundary_n_train"] * 0 + 1e12
    sweep_plots.plot_memorization_curves(far, None)
    near, beyond = captured
    assert "dotted: theory boundary" in near._suptitle.get_text()
    assert "boundary" not in beyond._suptitle.get_text()
    assert not any(ln.get_label().startswith("memorization_boundary")
                   for ax in beyond.axes for ln in ax.lines)


def test_emm_figure_panels_show_the_same_bracket(captured, monkeypatch):
    """The emm_digits_conv search (n_start 8, growth 2, rel_resolution 0.25): 8, 16, 32 bracket the
    crossing, bisection evaluates round(sqrt(16 * 32)) = 23 (ratio >= 0.9) and
    round(sqrt(23 * 32)) = 27 (< 0.9), so EMM = 23 with bracket [23, 27). Both panels must show
    [23, 27), the left one with the numbers readable (ticks at every evaluated N, the bracket in
    its legend), the right one's coloured bar from 23 to 27 and each seed's crossing as a point."""
    from memphase.analysis.plots import memorization as mem_plots
    from memphase.simulate.experiments import emm

    monkeypatch.setattr(mem_plots, "save", lambda fig, *a, **k: captured.append(fig) or [])
    cfg = validate({"job": "emm", "grid": {"seeds": [0, 1]},
                    "search": {"n_start": 8, "rel_resolution": 0.25, "max_evaluations": 16}},
                   emm.SCHEMA)
    (cell,) = emm.cells(cfg)
    n = [8, 16, 32, 23, 27]
    r = {8: 0.97, 16: 0.93, 32: 0.76, 23: 0.92, 27: 0.82}
    pad_n, pad_r = np.full(16, np.nan), np.full((16, 2), np.nan)
    pad_n[:5] = n
    pad_r[:5] = [[r[k] - 0.01, r[k] + 0.01] for k in n]
    ds = emm.assemble(cfg, [cell], [{
        "emm": 23.0, "emm_upper": 27.0, "seed_emm": np.array([22.4, 23.6]), "emm_seed_std": 0.6,
        "emm_seed_sem": 0.42, "n_evaluations": 5, "evaluated_n": pad_n,
        "evaluated_ratio_seeds": pad_r}])
    mem_plots.plot_emm(ds, "unused.png")
    (fig,) = captured
    left, right = fig.axes[:2]
    (span,) = [p for p in left.patches if p.get_label().startswith("EMM bracket")]
    # axvspan: a Rectangle (matplotlib >= 3.9) or a Polygon in data x, axes y
    xs = ([span.get_x(), span.get_x() + span.get_width()] if hasattr(span, "get_width")
          else np.asarray(span.get_xy())[:, 0])
    assert (min(xs), max(xs)) == pytest.approx((23, 27))
    assert span.get_label() == "EMM bracket [23, 27)"
    ticks = [t.get_text() for t in left.get_xticklabels()]
    assert ticks == ["8", "16", "23", "27", "32"]
    bars = right.get_legend_handles_labels()
    assert any("bracket" in lab for lab in bars[1]) and any("crossing" in lab for lab in bars[1])
    # the coloured bar: the errorbar's vertical segment runs from EMM to emm_upper
    segs = [c for c in right.collections if len(c.get_segments())]
    ends = [(float(s[:, 1].min()), float(s[:, 1].max())) for c in segs for s in c.get_segments()]
    assert ends == [(23.0, 27.0)]
    (seeds,) = [ln for ln in right.get_lines() if ln.get_label() == "each seed's own crossing"]
    assert sorted(seeds.get_ydata()) == [22.4, 23.6]
    assert unexplained_dashed_lines(fig) == []
