"""The training_dynamics figure reads the censoring right (issue 25, looked at on the canonical
runs): tau_gen values at the first checkpoint are upper bounds, drawn as such and fitted by the
censored (Tobit) fit, or no line where that fit is undetermined; legends name only what is
drawn; batch_size 0 reads "full batch". The Datasets are made up: only the variables the figure
reads, with the names and dims of the `training_dynamics` job."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from memphase.analysis.plots import training_dynamics as tdp  # noqa: E402

N = np.array([8, 16, 32, 64])
STEPS = np.array([50, 100, 200, 400, 800, 1600])


def dataset(tau_gen, gen_bound, tau_mem, tobit_gen=(-0.46, -0.94, -0.15), batch_size=0, n=N):
    s = tau_gen.shape[1]
    dims = ("width", "batch_size", "n_train", "seed")
    ds = xr.Dataset(
        {"memorization_ratio": (dims + ("train_step",), np.linspace(0, 1, STEPS.size)
                                * np.ones((1, 1, n.size, s, 1))),
         "tau_gen": (dims, tau_gen[None, None]), "tau_gen_censored": (dims, gen_bound[None, None]),
         "tau_mem": (dims, tau_mem[None, None]),
         "tau_mem_censored": (dims, ~np.isfinite(tau_mem)[None, None])},
        coords={"width": [256], "batch_size": [batch_size], "n_train": n, "seed": np.arange(s),
                "train_step": STEPS})
    mem = (0.5, 0.41, 0.62)  # (a, ci_low, ci_high)
    for var, kind, fit in (("tau_mem", "", mem), ("tau_gen", "", (-0.38, -0.6, -0.1)),
                           ("tau_mem", "_tobit", mem), ("tau_gen", "_tobit", tobit_gen)):
        for k, v in zip(("", "_ci_low", "_ci_high"), fit):
            ds[f"{var}_exponent{kind}{k}"] = (("width", "batch_size"), [[v]])
    ds.attrs["budget_steps"] = 1600
    return ds


@pytest.fixture
def figs(monkeypatch):
    from figure_checks import saved_figures

    out = saved_figures(monkeypatch)
    monkeypatch.setattr(tdp, "save", lambda fig, *a, **k: out.append(fig) or [])
    return out


def panels(fig):
    """(phase diagram, tau vs N) panels, without the colour bar."""
    left = next(a for a in fig.axes if a.get_title().startswith("width"))
    right = next(a for a in fig.axes if a.get_title().startswith("tau_mem ~ N^a"))
    return left, right


def lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def fullbatch_like():
    """The full-batch run's pattern: 7 of 16 tau_gen at the first checkpoint (50 steps)."""
    tg = np.array([[179, 179, 179, 130], [50, 179, 50, 50], [50, 50, 179, 50], [69, 50, 69, 95.]])
    bound = np.array([[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 0, 0]], bool)
    tm = np.outer(N, np.ones(4)) ** 0.5 * 150.0
    return tg, bound, tm


def test_tau_gen_bounds_are_drawn_as_bounds_and_fitted_as_censored(figs):
    tg, bound, tm = fullbatch_like()
    tdp.plot_training_dynamics(dataset(tg, bound, tm), "unused.png")
    (fig,) = figs
    left, right = panels(fig)
    named = lines(right)
    (tri,) = [ln for lab, ln in named.items() if lab.startswith("tau_gen <= first checkpoint")]
    assert tri.get_marker() == "v" and len(tri.get_xdata()) == bound.sum() == 7
    assert "(7 of 16)" in tri.get_label()
    np.testing.assert_array_equal(np.sort(tri.get_ydata()), np.sort(tg[bound]))
    # the open squares are the 9 values that are times
    squares = [ln for ln in right.get_lines() if ln.get_marker() == "s"]
    assert sum(len(ln.get_xdata()) for ln in squares) == (~bound).sum()
    # the line is the censored fit: its slope on log-log axes is the Tobit exponent, not the plain
    (fit,) = [ln for lab, ln in named.items() if lab.startswith("tau_gen, width 256: a = -0.46")]
    assert "(censored fit)" in fit.get_label()
    x, y = np.log(fit.get_xdata()), np.log(fit.get_ydata())
    assert np.polyfit(x, y, 1)[0] == pytest.approx(-0.46)
    # nothing censored for tau_mem: no "> budget" entry; full batch named as such
    assert not any("budget" in t.get_text() for t in left.get_legend().get_texts())
    assert "batch_size = full batch" in left.get_title()
    assert "7 of 16 seeds <= first checkpoint" in left.get_legend().get_texts()[-1].get_text()


def test_no_line_where_the_censored_fit_is_undetermined(figs):
    tg = np.full((4, 4), 250.0)
    tg[3, 2] = 500.0
    bound = tg == 250.0
    _, _, tm = fullbatch_like()
    tdp.plot_training_dynamics(dataset(tg, bound, tm, tobit_gen=(np.nan,) * 3, batch_size=512),
                               "unused.png")
    left, right = panels(figs[0])
    named = lines(right)
    assert "tau_gen, width 256: no exponent (too many upper bounds)" in named
    assert not any(lab.startswith("tau_gen, width 256: a =") for lab in named)
    assert "batch_size = 512" in left.get_title()


def test_without_bounds_the_plain_fit_is_drawn(figs):
    tg = np.outer(N, np.ones(3)) * 10.0 * np.array([0.9, 1.0, 1.1])
    _, _, tm = fullbatch_like()
    tdp.plot_training_dynamics(dataset(tg, np.zeros((4, 3), bool), tm[:, :3]), "unused.png")
    named = lines(panels(figs[0])[1])
    assert any(lab.startswith("tau_gen, width 256: a = -0.38 [-0.60, -0.10]") for lab in named)
    assert not any("first checkpoint" in lab for lab in named)


def test_everything_censored_names_no_tau_mem_line_and_no_point_interval(figs):
    """The widened official run: tau_mem beyond the budget at both N, two seeds, tau_gen one bound
    and one value per N with equal values: the censored fit is flat with a zero-width bootstrap
    interval, which the legend must not quote as [0.00, 0.00]."""
    n = np.array([128, 256])
    tg = np.array([[500.0, 250.0], [500.0, 250.0]])
    bound = tg == 250.0
    tm = np.full((2, 2), np.inf)
    ds = dataset(tg, bound, tm, tobit_gen=(-0.0, -0.0, 0.0), batch_size=512, n=n)
    tdp.plot_training_dynamics(ds, "unused.png")
    left, right = panels(figs[0])
    assert [t.get_text() for t in left.get_legend().get_texts()][0] == "tau_mem > budget"
    (fit,) = [lab for lab in lines(right) if lab.startswith("tau_gen, width 256: a =")]
    assert fit.startswith("tau_gen, width 256: a = 0.00 (no interval") and "-0.00" not in fit
