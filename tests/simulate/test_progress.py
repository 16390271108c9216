"""Progress that moves (issue 25 part 2): the bar's clock ticks while a long cell runs, every
phase after the cells is shown, and wall_s counts the assembly (the job's theory) too."""

import time

import memphase.simulate.experiments.quickstart as quickstart
from memphase.analysis.results import open_results
from memphase.simulate.cli import main
from memphase.simulate.sweep.progress import phase, ticking
from cli_checks import quickstart_template


class _Bar:
    disable = False

    def __init__(self):
        self.refreshes = 0

    def refresh(self):
        self.refreshes += 1


def test_ticking_refreshes_the_bar_between_updates():
    bar = _Bar()
    with ticking(bar, interval=0.05):
        time.sleep(0.5)          # one long "cell": no update call at all
    assert bar.refreshes >= 4
    n = bar.refreshes
    time.sleep(0.2)
    assert bar.refreshes == n    # the ticker stops with the block


def test_disabled_bar_is_not_ticked():
    bar = _Bar()
    bar.disable = True
    with ticking(bar, interval=0.01):
        time.sleep(0.05)
    assert bar.refreshes == 0


def test_phase_prints_a_ticking_line(capsys):
    with phase("assembling", progress=True, interval=0.05):
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert "assembling: 00:00" in err
    with phase("quiet", progress=False):
        pass
    assert "quiet" not in capsys.readouterr().err


def test_run_shows_each_phase_and_wall_s_counts_the_assembly(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "job.toml"
    cfg.write_text(quickstart_template(scores=("empirical",), seeds="[0]").format(
        out=tmp_path / "res.h5"))
    real = quickstart.assemble

    def slow_assemble(*a, **k):          # a job whose theory takes a while after the cells
        time.sleep(1.5)
        return real(*a, **k)

    monkeypatch.setattr(quickstart, "assemble", slow_assemble)
    assert main(["run", str(cfg)]) == 0
    err = capsys.readouterr().err
    for what in ("assembling the results and their theory", "writing res.h5", "drawing figures"):
        assert f"quickstart: {what}: " in err, err[-2000:]
    with open_results(tmp_path / "res.h5") as ds:
        assert ds.attrs["wall_s"] >= 1.5 > ds.attrs["cell_seconds_total"]
