"""The sweep verbs of the CLI: help with examples, validation before anything runs (one line,
exit 2), the plan and its estimate, `info` on configs and results."""

import pytest

from memphase.simulate.cli import main
from cli_checks import quickstart_template

TINY = quickstart_template(steps=20, n_samples=32, record=10,
                           sweep='backend = "inprocess"\nworkers = 2')


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(out=tmp_path / "out.h5"))
    return p


@pytest.mark.parametrize("verb, example", [("sweep", "memphase sweep quickstart"),
                                           ("merge", "memphase merge"), ("info", "memphase info")])
def test_help_shows_an_example(verb, example, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert example in out and "example" in out
    if verb == "sweep":
        assert "--shard" in out and "--scheduler" in out and "--new" in out


@pytest.mark.parametrize("edit, message", [
    (("workers = 2", "worker = 2"), "unknown key 'worker' in [sweep]; did you mean 'workers'?"),
    (("workers = 2", 'workers = "two"'), "'sweep.workers' must be int"),
    (("workers = 2", "workers = 0"), "'sweep.workers' = 0 is out of range"),
    (('backend = "inprocess"', 'backend = "mpi"'), "'sweep.backend' = 'mpi' is not one of"),
    (("seeds = [0, 1]", "seeds = [0, 0]"), "'grid.seeds' lists 0 twice"),
    (("seeds = [0, 1]", "seeds = [0, -1]"), "seeds must be >= 0"),
    (("n_samples = 32", "n_sampels = 32"), "did you mean 'n_samples'?"),
])
def test_bad_sweep_config_one_line_exit_2(cfg, tmp_path, capsys, edit, message):
    cfg.write_text(cfg.read_text().replace(*edit))
    for argv in (["sweep", str(cfg)], ["info", str(cfg)], ["merge", str(cfg)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "tiny.toml" in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("out.h5*"))  # nothing ran, nothing written


@pytest.mark.parametrize("spec", ["3/3", "a/b", "-1/2"])
def test_bad_shard_spec(cfg, capsys, spec):
    assert main(["sweep", str(cfg), f"--shard={spec}"]) == 2
    assert "must be I/N with 0 <= I < N" in capsys.readouterr().err


def test_shard_index_alone_needs_the_count_from_env_or_config(cfg, capsys, monkeypatch):
    """`--shard I` (issue 15): N is given once, by MEMPHASE_SHARDS or [sweep] shards."""
    monkeypatch.delenv("MEMPHASE_SHARDS", raising=False)
    assert main(["sweep", str(cfg), "--shard=1"]) == 2
    assert "needs the shard count" in capsys.readouterr().err
    monkeypatch.setenv("MEMPHASE_SHARDS", "2")
    assert main(["sweep", str(cfg), "--shard=2"]) == 2
    assert "(N = 2)" in capsys.readouterr().err


def test_unreachable_scheduler_is_one_line(cfg, capsys):
    import dask
    import distributed  # noqa: F401  (load its config defaults before overriding one of them)

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["sweep", str(cfg), "-q", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "Traceback" not in err


def test_dry_run_and_info_show_plan_estimate_and_results(cfg, tmp_path, capsys):
    assert main(["sweep", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-> 8 cells" in out and "estimate per cell: memory" in out and "not written yet" in out
    assert not (tmp_path / "out.h5").exists()
    assert main(["sweep", str(cfg), "-q", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "out.h5")]) == 0
    out = capsys.readouterr().out
    assert "dims score=2, n_train=2, seed=2" in out and "memorization_ratio" in out
    assert "git_commit" in out and "cells: 8" in out
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    assert "results file not found" in capsys.readouterr().err
    # rerunning a finished sweep is a no-op
    mtime = (tmp_path / "out.h5").stat().st_mtime_ns
    assert main(["sweep", str(cfg), "-q"]) == 0
    assert (tmp_path / "out.h5").stat().st_mtime_ns == mtime


def test_slurm_backend_builds_a_job_script(cfg):
    from memphase.simulate.sweep import load_sweep, make_slurm_cluster

    cfg.write_text(cfg.read_text() + '[sweep.slurm]\nqueue = "short"\naccount = "phys"\n'
                   'walltime = "00:30:00"\ncores = 2\njob_extra = ["--constraint=cpu"]\n')
    plan = load_sweep(cfg)
    cluster = make_slurm_cluster(plan)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A phys", "#SBATCH -t 00:30:00",
                 "#SBATCH --constraint=cpu", "--nworkers 2"):
        assert line in script, script


def test_cell_that_cannot_fit_in_memory_is_refused_before_anything_runs(tmp_path, capsys):
    """N = 10^7 points in d = 4096 (float64) need ~1 TB: refused with the cell named and what to
    change, exit 2, and nothing is written (no journal, no lock, no results)."""
    out = tmp_path / "big.h5"
    p = tmp_path / "big.toml"
    p.write_text(f'job = "quickstart"\noutput = "{out}"\n[data]\nd = 4096\n'
                 '[grid]\nn_train = [16, 10000000]\nscore = ["empirical"]\n')
    assert main(["sweep", str(p), "-q"]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "'n_train': 10000000" in err and "float32" in err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["big.toml"]


def test_slurm_memory_limit_is_checked(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(TINY.format(out=tmp_path / "s.h5").replace('backend = "inprocess"', 'backend = "slurm"')
                 + '[sweep.slurm]\nmemory = "64MB"\njob_extra = []\n')
    assert main(["sweep", str(p), "-q"]) == 2
    # 64MB = 64e6 bytes as dask-jobqueue reads it (issue 23: was read as 64 MiB here)
    assert "[sweep.slurm] memory per worker is 61.0 MiB" in capsys.readouterr().err
