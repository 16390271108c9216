"""The main job end to end through the CLI, and the CLI's handling of bad input."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from memphase.analysis.results import ResultFileError, open_results
from memphase.simulate.cli import main

TINY = """
job = "quickstart"
output = "{out}"
[data]
d = 6
[grid]
n_train = [3, 30, 3000]
score = ["empirical", "population"]
seeds = [0]
[sampler]
steps = 80
n_samples = 128
record = 20
"""


@pytest.fixture
def tiny_config(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(out=tmp_path / "out.h5"))
    return cfg


def test_run_writes_self_describing_dataset(tiny_config, tmp_path, capsys):
    assert main(["run", str(tiny_config), "-q"]) == 0
    out = tmp_path / "out.h5"
    assert out.with_suffix(".png").stat().st_size > 1000
    with h5py.File(out, "r") as f:  # readable with plain h5py
        assert "memorization_ratio" in f
    ds = open_results(out)
    assert ds.attrs["config"] == tiny_config.read_text()
    for key in ("memphase_version", "git_commit", "created", "seeds", "host"):
        assert key in ds.attrs
    assert ds["collapse_fraction"].attrs["units"] == "1"
    emp = ds["collapse_fraction"].sel(score="empirical", seed=0)
    pop = ds["collapse_fraction"].sel(score="population", seed=0)
    assert float(emp.sel(n_train=3)) == 1.0      # 3 points in d = 6: every sample memorized
    assert float(pop.max()) <= 0.02              # the population score does not collapse
    assert float(ds["memorization_ratio"].sel(score="empirical", n_train=3, seed=0)) == 1.0
    assert np.all(np.diff(ds["collapse_time_theory"].values) < 0)  # t_C falls with N
    # the finite-N t_C lies above the REM limit at these small d (docs/theory.md), and both
    # are the same function of N as memphase.physics.critical computes
    from memphase.physics.critical import collapse_time_finite_n

    n = ds["n_train"].values
    fin = ds["collapse_time_finite_n_theory"].values
    assert np.all(fin > ds["collapse_time_theory"].values)
    assert np.allclose(fin, collapse_time_finite_n(n, 6, 1.0), rtol=1e-9)
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["param_data_d"] == 6
    # rerunning the same config is a no-op and never rewrites the finished file
    mtime = out.stat().st_mtime_ns
    assert main(["run", str(tiny_config), "-q"]) == 0
    assert out.stat().st_mtime_ns == mtime
    ds.close()


def test_changed_config_does_not_overwrite(tiny_config, tmp_path, capsys):
    assert main(["run", str(tiny_config), "-q", "--no-plot"]) == 0
    tiny_config.write_text(tiny_config.read_text().replace("steps = 80", "steps = 81"))
    assert main(["run", str(tiny_config), "-q"]) == 2
    assert "different config" in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (("n_samples = 128", "n_sampels = 128"), "unknown key 'n_sampels' in [sampler]; did you mean 'n_samples'?"),
    (("steps = 80", 'steps = "many"'), "'sampler.steps' must be int"),
    (("n_train = [3, 30, 3000]", "n_train = [1, 30]"), "2 <= n_train"),
    (("d = 6", "d = 6\nvariance = -1.0"), "'data.variance' = -1.0 is out of range"),
    (('job = "quickstart"', 'job = "nope"'), "unknown job 'nope'"),
])
def test_bad_config_one_line_exit_2(tiny_config, capsys, edit, message):
    tiny_config.write_text(tiny_config.read_text().replace(*edit))
    assert main(["run", str(tiny_config)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_subprocess_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "memphase.simulate.cli", "run", str(tmp_path / "missing.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("memphase: error: config file not found") and "Traceback" not in r.stderr


def test_corrupt_truncated_and_foreign_files(tmp_path, tiny_config):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ResultFileError, match="bad.h5 is not a readable HDF5 file"):
        open_results(bad)
    main(["run", str(tiny_config), "-q", "--no-plot"])
    good = (tmp_path / "out.h5").read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(ResultFileError, match="trunc.h5"):
        open_results(trunc)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ResultFileError, match="not a memphase results file"):
        open_results(foreign)


def test_help_examples_work_outside_a_clone():
    """--help examples named data/configs/*.toml, which only a source checkout has: they use
    bundled config names (or a user's own file), and results paths that `memphase run NAME`
    writes relative to the working folder."""
    from memphase.simulate.run import bundled
    from memphase.simulate.cli import EXAMPLES

    text = "\n".join(EXAMPLES.values())
    assert "data/configs/" not in text
    names = set(bundled.bundled_configs())
    for line in text.splitlines():
        words = line.split()
        verb, arg = words[1], words[2]
        if verb in ("run", "sweep", "info") and not arg.endswith((".toml", ".h5")):
            assert arg in names, line
        if arg.startswith("data/results/"):
            assert Path(arg).stem in names, line   # the default output of that bundled config


def test_docs_and_examples_commands(capsys):
    assert main(["docs"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("docs: ") and "  theory" in listing and "  conformance/index" in listing
    assert main(["docs", "theory"]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page.name == "theory.md" and "Theory" in page.read_text()[:200]
    assert main(["docs", "theory.md"]) == 0 and capsys.readouterr().out.strip() == str(page)
    assert main(["examples", "slurm/submit_array.sh"]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()
    assert main(["examples"]) == 0
    assert "  slurm/submit_array.sh" in capsys.readouterr().out.splitlines()
    assert main(["docs", "theroy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'theory'" in err
