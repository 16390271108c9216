"""`memphase plot FILE`: figures of results files (PNG/PDF), theory overlays, error paths.

The Datasets are built without sampling: the collapse experiment's own `assemble` on synthetic
cell results (its theory variables are real), and a small Dataset with a `block` dim."""

import numpy as np
import pytest
import xarray as xr
from figure_checks import COLLAPSE_GRID as CONFIG
from matplotlib.image import imread

from memphase.analysis.plots import sweep as sweep_plots
from memphase.physics.schedules import make_schedule
from memphase.simulate.cli import main
from memphase.simulate.run.config import validate
from memphase.simulate.experiments import collapse
from memphase.simulate.run.store import provenance, write_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_result(cell, cfg):
    """Plausible cell output: memorized below N_b(d), nearest point settling at t_C."""
    ou = make_schedule("ou")
    tau = np.geomspace(1e3, 0.1, 9)
    t = np.asarray(ou.time_of_tau(tau))
    n_b = collapse.memorization_boundary_n(cell["d"], 0.1, 1.0)
    emp = cell["score"] == "empirical"
    ratio = 1 / (1 + (cell["n_train"] / n_b) ** 2) if emp else 0.0
    t_c = 0.5 * np.log1p(1 / np.expm1(2 * np.log(cell["n_train"]) / cell["d"]))
    return {"memorization_ratio": ratio + 0.01 * cell["seed"], "collapse_fraction": 0.9 * ratio,
            "collapse_time_measured": 1.1 * t_c, "collapse_time_spread": 0.1 * t_c,
            "nearest_distance": np.sqrt(tau), "same_as_final": (t <= t_c).astype(float),
            "time": t, "tau": tau}


@pytest.fixture(scope="module")
def collapse_ds():
    import tomllib

    cfg = validate(tomllib.loads(CONFIG), collapse.SCHEMA)
    cells = collapse.cells(cfg)
    ds = collapse.assemble(cfg, cells, [_fake_result(c, cfg) for c in cells])
    ds.attrs.update(provenance(CONFIG, [0, 1], job="collapse"))
    return ds


@pytest.fixture(scope="module")
def collapse_file(collapse_ds, tmp_path_factory):
    return write_dataset(collapse_ds, tmp_path_factory.mktemp("res") / "collapse.h5")


@pytest.fixture(scope="module")
def mini_file(collapse_ds, tmp_path_factory):
    """Only the memorization ratio and its overlays: every default figure, at low cost."""
    keep = ["memorization_ratio", "memorization_boundary_n_train", "collapse_time_theory"]
    return write_dataset(collapse_ds[keep], tmp_path_factory.mktemp("mini") / "mini.h5")


@pytest.fixture(scope="module")
def block_file(tmp_path_factory):
    tau = np.geomspace(1e-3, 1, 6)
    n = np.array([100, 1000])
    kept = np.stack([np.stack([(tau > 0.01 * b) * 1.0 for b in (1, 2)], -1) / k for k in (1, 2)])
    ds = xr.Dataset(
        {"kept_fraction": (("n_train", "tau", "block"), kept, {"units": "1", "long_name": "kept"}),
         "kept_fraction_theory": (("n_train", "tau", "block"), kept * 0.9,
                                  {"units": "1", "long_name": "theory"})},
        coords={"n_train": ("n_train", n, {"units": "1", "long_name": "N"}),
                "tau": ("tau", tau, {"units": "data variance", "long_name": "tau"}),
                "block": ("block", [0, 1], {"units": "1", "long_name": "block"})},
        attrs=provenance('job = "geometric"\n[grid]\nn_train = [100, 1000]\n', [0], job="geometric"))
    return write_dataset(ds, tmp_path_factory.mktemp("blk") / "blocks.h5")


def _check_files(paths):
    assert paths
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data.startswith(PNG_MAGIC)
            assert imread(p).shape[0] > 100  # decodes as an image
        else:
            assert p.suffix == ".pdf" and data.startswith(b"%PDF-")
            assert data.rstrip().endswith(b"%%EOF")


def _printed(capsys):
    from pathlib import Path

    out = capsys.readouterr().out.splitlines()
    return [Path(line.split(":", 1)[1].strip()) for line in out if line.startswith("figure:")]


def test_default_figures_png_and_pdf(mini_file, tmp_path, capsys):
    assert main(["plot", str(mini_file), "--out", str(tmp_path)]) == 0
    paths = _printed(capsys)
    _check_files(paths)
    # overlays (theory, boundaries) are not plotted as variables of their own
    assert {p.name for p in paths} == {f"mini_{stem}.{fmt}" for fmt in ("png", "pdf") for stem in
                                       ("memorization_ratio_n_train-d", "memorization")}
    assert all(p.parent == tmp_path for p in paths)


def test_default_plan_of_every_variable(collapse_ds):
    """Default axes: (last sweep axis, first internal dim) or the last two sweep axes."""
    assert sweep_plots.sweep_axes(collapse_ds) == ["score", "d", "n_train", "seed"]
    assert sweep_plots.default_axes(collapse_ds, "memorization_ratio") == ("n_train", "d")
    assert sweep_plots.default_axes(collapse_ds, "same_as_final") == ("n_train", "time")
    assert sweep_plots.default_axes(collapse_ds, "same_as_final", x="d") == ("d", "time")
    assert sweep_plots.theory_partner(collapse_ds, "collapse_time_measured") == "collapse_time_theory"
    assert sweep_plots.boundary_variables(collapse_ds, "n_train") == ["memorization_boundary_n_train"]


def test_one_variable_axes_selection_and_format(collapse_file, tmp_path, capsys):
    argv = ["plot", str(collapse_file), "--var", "same_as_final", "--x", "n_train", "--y", "time",
            "--sel", "d=8", "--format", "png", "--out", str(tmp_path)]
    assert main(argv) == 0
    paths = _printed(capsys)
    assert [p.name for p in paths] == ["collapse_same_as_final_n_train-time.png"]
    _check_files(paths)
    # one sweep axis with more than one value left: curves
    assert main(["plot", str(collapse_file), "--var", "collapse_time_measured", "--x", "n_train",
                 "--sel", "d=4", "--sel", "score=empirical", "--format", "svg",
                 "--out", str(tmp_path)]) == 0
    assert [p.name for p in _printed(capsys)] == ["collapse_collapse_time_measured_vs_n_train.svg"]


def test_block_curves(block_file, tmp_path, capsys):
    assert main(["plot", str(block_file), "--out", str(tmp_path), "--format", "png"]) == 0
    names = {p.name for p in _printed(capsys)}
    assert "blocks_blocks.png" in names
    assert "blocks_kept_fraction_n_train-tau.png" in names


def test_boundary_lines_follow_the_theory(collapse_file):
    """The dashed boundary on the (n_train, d) heatmap is N_b(d) = 11^{d/2}; on (n_train, time)
    at d = 8 it is the REM t_C(N, 8); the reduction averages seeds and picks the last d."""
    import matplotlib.pyplot as plt

    from memphase.analysis.results import open_results

    with open_results(collapse_file) as ds:
        fig, ax = plt.subplots()
        sweep_plots.heatmap_panel(ax, ds, "memorization_ratio", "n_train", "d", score="empirical")
        d = ds["d"].values
        lines = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        assert lines
        np.testing.assert_allclose(lines[0].get_xdata(), 11.0 ** (d / 2), rtol=1e-9)
        np.testing.assert_array_equal(lines[0].get_ydata(), d)
        ax.clear()
        sweep_plots.heatmap_panel(ax, ds, "same_as_final", "n_train", "time", {"d": 8},
                                  score="empirical")
        n = ds["n_train"].values
        t_c = -0.5 * np.log1p(-n ** (-2 / 8))
        line = next(ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_ydata()) > 2)
        np.testing.assert_allclose(line.get_ydata(), t_c, rtol=1e-9)
        plt.close(fig)
        red, chosen = sweep_plots.reduce_dims(ds["memorization_ratio"], {"n_train"})
        assert chosen == {"score": "population", "d": 12}
        np.testing.assert_allclose(red.values, ds["memorization_ratio"].values[-1, -1].mean(-1))


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["plot", "--help"])
    assert e.value.code == 0
    assert "memphase plot data/results/collapse.h5" in capsys.readouterr().out


def _error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memphase: error:"), err
    assert match in err, err


def test_error_paths(collapse_file, tmp_path, capsys):
    f = str(collapse_file)
    _error(capsys, ["plot", str(tmp_path / "nope.h5")], "results file not found")
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0garbage" * 50)
    _error(capsys, ["plot", str(bad)], "not a readable HDF5 file")
    config = tmp_path / "job.toml"
    config.write_text('job = "quickstart"\n')
    _error(capsys, ["plot", str(config)], "is a config, not a results file: run it")
    foreign = tmp_path / "foreign.h5"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    _error(capsys, ["plot", str(foreign)], "not a memphase results file")
    _error(capsys, ["plot", f, "--var", "nope"], "unknown --var 'nope'")
    _error(capsys, ["plot", f, "--var", "memorization_ratio", "--x", "tau"], "has no axis 'tau'")
    _error(capsys, ["plot", f, "--x", "nope"], "no variable of")
    _error(capsys, ["plot", f, "--var", "memorization_ratio", "--x", "d", "--y", "d"],
           "--x and --y are both 'd'")
    _error(capsys, ["plot", f, "--format", "gif"], "unknown --format gif")
    _error(capsys, ["plot", f, "--sel", "nope=1"], "--sel: unknown dim 'nope'")
    _error(capsys, ["plot", f, "--sel", "score=learned"], "--sel: score has no value 'learned'")


def test_validate_file_draws_the_measured_vs_theory_chart(tmp_path, capsys):
    """`memphase plot` on a validate file: one chart (measured against theory), not a panel per
    check index."""
    from memphase.simulate.run.store import provenance, write_dataset
    from memphase.simulate.cli.validate import Check, to_dataset

    checks = [Check("t_S (cloning)", "d=64", 2.08, 2.05, (2.0, 2.1)),
              Check("t_C (excess entropy)", "d=64 alpha=0.05", 1.00, 1.07, (1.05, 1.09),
                    theory_finite_n=1.071, versus_finite_n=True),
              Check("t_C (last change)", "d=64 alpha=0.05", 1.00, 1.16, (1.1, 1.2), gated=False)]
    ds = to_dataset(checks)
    ds.attrs.update(provenance("validate quick=1", [0], job="validate"))
    path = write_dataset(ds, tmp_path / "validate-quick.h5")
    assert main(["plot", str(path), "--format", "png"]) == 0
    figures = sorted(tmp_path.glob("*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 1000
    assert "figure:" in capsys.readouterr().out


def test_heatmap_colours_are_logarithmic_for_quantities_spanning_decades():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    n, d = np.array([4, 16, 64]), np.array([2, 4])
    wide = xr.Dataset({"v": (("d", "n_train"), np.array([[1e-4, 1e-2, 1.0], [1e-3, 1e-1, 10.0]]))},
                      coords={"n_train": n, "d": d})
    narrow = wide.assign(v=wide["v"] * 0 + np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]))
    fig, ax = plt.subplots(1, 2)
    sweep_plots.heatmap_panel(ax[0], wide, "v", "n_train", "d", colorbar=False)
    sweep_plots.heatmap_panel(ax[1], narrow, "v", "n_train", "d", colorbar=False)
    assert isinstance(ax[0].collections[0].norm, LogNorm)
    assert not isinstance(ax[1].collections[0].norm, LogNorm)
    plt.close(fig)


def test_run_prints_every_figure_it_drew(capsys, monkeypatch, tmp_path):
    """`memphase run` printed only the first figure's path of a job that draws several."""
    import memphase.simulate.cli as cli
    import memphase.simulate.sweep as sweep

    drawn = [tmp_path / "a.png", tmp_path / "a_blocks.png", tmp_path / "a_spectra.png"]

    def fake_run_sweep(config, figures=None, **kw):
        figures.extend(drawn)
        return tmp_path / "a.h5"

    monkeypatch.setattr(sweep, "run_sweep", fake_run_sweep)
    cfg = tmp_path / "job.toml"
    cfg.write_text('job = "quickstart"\n')
    assert cli.main(["run", str(cfg), "-q"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":", 1)[1].strip() for line in out.splitlines()
            if line.startswith("figure:")] == [str(p) for p in drawn]
