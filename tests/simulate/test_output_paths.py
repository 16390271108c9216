"""Results and figures never share a path, and a run never overwrites a file it did not create
(issue 12 part A): the output suffix is checked before any compute, the figure goes to a name
derived from the results name, an unrelated file already there is kept."""

import pytest

import memphase.simulate.experiments.quickstart as quickstart
from memphase.analysis.results import open_results
from memphase.simulate.cli import main
from memphase.simulate.sweep import SweepError, merge_parts, resolve_output, run_sweep
from cli_checks import one_line_error as _one_line
from cli_checks import quickstart_template

CONFIG = quickstart_template(scores=("empirical",), seeds="[0]")


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "job.toml"
    p.write_text(CONFIG.format(out=tmp_path / "res.h5"))
    return p


@pytest.fixture
def no_compute(monkeypatch):
    calls = []
    monkeypatch.setattr(quickstart, "run_cell", lambda c, cell: calls.append(cell) or 1 / 0)
    return calls


@pytest.mark.parametrize("name", ["results.png", "results", "results.pdf", "r.h5.png"])
def test_non_hdf5_output_is_refused_before_compute(cfg, tmp_path, capsys, no_compute, name):
    for verb in ("run", "sweep", "merge"):
        assert main([verb, str(cfg), "-o", str(tmp_path / name), "-q"]) == 2
        _one_line(capsys, ".h5, .hdf5, .nc", name)
    assert no_compute == [] and sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]
    with pytest.raises(SweepError, match="must end in"):
        run_sweep(cfg, output=tmp_path / name, progress=False)
    with pytest.raises(SweepError, match="must end in"):
        merge_parts(cfg, output=tmp_path / name, progress=False)


def test_config_output_with_png_suffix_is_refused(cfg, tmp_path, capsys, no_compute):
    cfg.write_text(CONFIG.format(out=tmp_path / "res.png"))
    assert main(["run", str(cfg), "-q"]) == 2
    _one_line(capsys, "res.png", "must end in")
    assert no_compute == [] and not (tmp_path / "res.png").exists()


def test_suffixes_and_folders_resolved(tmp_path):
    for s in (".h5", ".hdf5", ".nc", ".H5"):
        assert resolve_output(tmp_path / f"a{s}", "quickstart") == tmp_path / f"a{s}"
    assert resolve_output(f"{tmp_path}/new/", "quickstart") == tmp_path / "new" / "quickstart.h5"
    assert resolve_output(tmp_path, "collapse") == tmp_path / "collapse.h5"
    (tmp_path / "file").write_text("x")
    with pytest.raises(SweepError, match="is a file, not a folder"):
        resolve_output(tmp_path / "file" / "out.h5", "quickstart")


def test_unrelated_figure_beside_the_results_is_kept(cfg, tmp_path, capsys):
    mine = tmp_path / "res.png"
    mine.write_bytes(b"my own figure, not memphase's")
    assert main(["run", str(cfg), "-q"]) == 0
    out = capsys.readouterr()
    assert mine.read_bytes() == b"my own figure, not memphase's"
    fig = tmp_path / "res-1.png"
    assert fig.stat().st_size > 1000 and f"figure:  {fig}" in out.out
    assert "res.png exists and was not written by this run" in out.err
    assert open_results(tmp_path / "res.h5").attrs["cells"] == 2


def test_merge_keeps_an_unrelated_figure(cfg, tmp_path, capsys):
    for i in range(2):
        assert main(["sweep", str(cfg), "--shard", f"{i}/2", "-q"]) == 0
    (tmp_path / "res.png").write_bytes(b"keep")
    assert main(["merge", str(cfg), "-q"]) == 0
    assert (tmp_path / "res.png").read_bytes() == b"keep"
    assert (tmp_path / "res-1.png").stat().st_size > 1000
    assert open_results(tmp_path / "res.h5").attrs["backend"] == "shards/2"


def test_output_folder_gets_job_named_file(cfg, tmp_path, capsys):
    assert main(["run", str(cfg), "-o", f"{tmp_path}/outdir/", "-q", "--no-plot"]) == 0
    assert (tmp_path / "outdir" / "quickstart.h5").is_file()
    assert main(["run", str(cfg), "-o", str(tmp_path / "outdir"), "-q", "--no-plot"]) == 0
    assert sorted(p.name for p in (tmp_path / "outdir").iterdir()) == ["quickstart.h5"]


def test_output_under_a_file_is_one_line(cfg, tmp_path, capsys, no_compute):
    (tmp_path / "plain").write_text("x")
    assert main(["run", str(cfg), "-o", str(tmp_path / "plain" / "out.h5"), "-q"]) == 2
    _one_line(capsys, "is a file, not a folder")
    assert no_compute == []


def test_interrupted_while_drawing_the_figure_rerun_draws_it(cfg, tmp_path, capsys, monkeypatch):
    real = quickstart.plot

    def interrupted(ds, path):
        real(ds, path)
        raise KeyboardInterrupt  # Ctrl-C after the first file, before the run finished

    monkeypatch.setattr(quickstart, "plot", interrupted)
    assert main(["run", str(cfg), "-q"]) == 130
    res = tmp_path / "res.h5"
    assert res.is_file() and (tmp_path / "res.h5.cells").is_dir()
    assert not (tmp_path / "res.png").exists()
    monkeypatch.setattr(quickstart, "plot", real)
    mtime = res.stat().st_mtime_ns
    assert main(["run", str(cfg), "-q"]) == 0
    assert (tmp_path / "res.png").stat().st_size > 1000 and res.stat().st_mtime_ns == mtime
    assert not (tmp_path / "res.h5.cells").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_figure_of_an_interrupted_placement_is_replaced_not_renamed(cfg, tmp_path, capsys,
                                                                     monkeypatch):
    """A figure this run had started to place (recorded in the journal) is its own: the rerun
    replaces it instead of choosing another name."""
    import memphase.simulate.sweep.figures as sweep  # _place: the figures module of the sweep package

    real = sweep._place
    calls = []

    def place_then_die(src, dst, replace):
        real(src, dst, replace)
        calls.append(dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_place", place_then_die)
    assert main(["run", str(cfg), "-q"]) == 130
    assert (tmp_path / "res.png").exists()
    monkeypatch.setattr(sweep, "_place", real)
    assert main(["run", str(cfg), "-q"]) == 0
    assert not (tmp_path / "res-1.png").exists() and "warning" not in capsys.readouterr().err
    assert (tmp_path / "res.png").stat().st_size > 1000


def test_tilde_output_is_the_home_folder_everywhere(cfg, tmp_path, monkeypatch):
    """`output = "~/x.h5"` was taken literally in one place and expanded in another: the
    temporary went to $HOME and the run failed, leaving an orphan on every rerun."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert resolve_output("~/x.h5", "quickstart") == home / "x.h5"
    cfg.write_text(CONFIG.format(out="~/x.h5"))
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    assert open_results(home / "x.h5").sizes
    assert sorted(p.name for p in home.iterdir()) == ["x.h5"]   # no lock, journal or temporary
    assert not (tmp_path / "~").exists()
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0         # a rerun finds it done
    assert sorted(p.name for p in home.iterdir()) == ["x.h5"]
