"""Every bad file-system input and every interrupt gives one line (issue 12 part C): output under
a file, plot --out under a file, unreadable or folder inputs, an unreadable journal manifest,
Ctrl-C during the imports and with the local Dask backend."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memphase.analysis.results import ResultFileError, hdf5_open_error
from memphase.simulate.cli import main
from cli_checks import one_line_error as _one_line
from cli_checks import quickstart_template

ROOT = Path(__file__).resolve().parent.parent
CONFIG = quickstart_template(scores=("empirical",), seeds="{seeds}", sweep="threads = 1")


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "job.toml"
    p.write_text(CONFIG.format(out=tmp_path / "res.h5", seeds=[0]))
    return p


def test_plot_out_under_a_file(cfg, tmp_path, capsys):
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    (tmp_path / "afile").write_text("x")
    for out in ("afile", "afile/sub"):
        assert main(["plot", str(tmp_path / "res.h5"), "--out", str(tmp_path / out)]) == 2
        _one_line(capsys, "afile is a file, not a folder")


def test_folder_given_as_a_results_file(tmp_path, capsys):
    (tmp_path / "res.h5").mkdir()
    for argv in (["info", str(tmp_path / "res.h5")], ["plot", str(tmp_path / "res.h5")]):
        assert main(argv) == 2
        _one_line(capsys, "res.h5 is a folder, not a results file")


def test_unreadable_file_says_permission_denied(cfg, tmp_path, capsys, monkeypatch):
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 0
    res = str(tmp_path / "res.h5")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == res else real(p, mode))
    for argv in (["info", res], ["plot", res], ["run", str(cfg), "-q"]):
        assert main(argv) == 2
        err = _one_line(capsys, "permission denied")
        assert "corrupt" not in err
    # h5py's own message for EACCES (root ignores file modes, so it is built here)
    e = OSError("Unable to synchronously open file (unable to open file: name = 'x.h5', "
                "errno = 13, error message = 'Permission denied', flags = 0, o_flags = 0)")
    assert "permission denied" in str(hdf5_open_error(Path("x.h5"), e))
    assert isinstance(hdf5_open_error(Path("x.h5"), OSError("bad")), ResultFileError)


def test_unreadable_manifest_recommends_an_option_run_has(cfg, tmp_path, capsys):
    journal = tmp_path / "res.h5.cells"
    journal.mkdir()
    (journal / "manifest.json").write_text("{ half a manifest")
    assert main(["run", str(cfg), "-q", "--no-plot"]) == 2
    _one_line(capsys, "manifest", "--new")
    assert main(["run", str(cfg), "-q", "--no-plot", "--new"]) == 0
    assert (tmp_path / "res.h5").is_file() and not journal.exists()


def test_sigint_during_the_imports_is_one_line(cfg, tmp_path):
    """Ctrl-C while the CLI imports numpy/torch/xarray: exit 130 and one line (was 27 lines)."""
    script = textwrap.dedent(f"""
        import builtins, os, signal, sys
        real = builtins.__import__
        def hooked(name, *a, **k):
            if name.endswith("sweep"):
                os.kill(os.getpid(), signal.SIGINT)
            return real(name, *a, **k)
        builtins.__import__ = hooked
        from memphase.simulate.cli import main
        sys.exit(main(["run", {str(cfg)!r}, "-q"]))
        """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 130, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("memphase: interrupted"), r.stderr
    assert not (tmp_path / "res.h5.cells").exists()


@pytest.mark.slow  # a LocalCluster start: ~10-25 s on 2 loaded cores
def test_ctrl_c_with_the_local_backend_is_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: the Dask workers must stay quiet (they printed
    63-75 lines of tracebacks) and the driver prints one line, exit 130."""
    cfg = tmp_path / "long.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "res.h5", seeds=list(range(40)))
                   .replace("steps = 10", "steps = 40"))
    journal = tmp_path / "res.h5.cells"
    proc = subprocess.Popen([sys.executable, "-m", "memphase.simulate.cli", "sweep", str(cfg), "-q",
                             "--no-plot", "--backend", "local", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    from memphase.simulate.sweep import Journal, load_sweep

    def journaled():  # cells in written batches (the first one within 2 s of cells)
        try:
            return len(Journal(tmp_path / "res.h5", load_sweep(cfg)).done_keys())
        except Exception:  # a batch being renamed into place
            return 0

    while time.time() < deadline and journaled() < 2:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert journaled() >= 2 and not (tmp_path / "res.h5.lock").exists()


@pytest.mark.parametrize("flags, message", [
    (["--threads", str(10**6)], "exceeds 1024"),
    (["--threads", "-3"], "must be >= 0"),
    (["--workers", "0"], "must be 1 .. 100000"),
])
def test_command_line_overrides_obey_the_config_bounds(tmp_path, capsys, flags, message):
    """--threads / --workers given on the command line are checked like the [sweep] table's
    values: one line, exit 2, nothing written."""
    from memphase.simulate.cli import main

    out = tmp_path / "o.h5"
    rc = main(["sweep", "quickstart", "-o", str(out), "-q"] + flags)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not any(tmp_path.iterdir())
