"""notebooks/phase_diagram.ipynb runs end to end (nbclient) on a tiny collapse sweep, and is
stored in git executed (on the canonical collapse sweep) so that a code host shows its figures,
with only volatile metadata stripped."""

from pathlib import Path

import nbformat
import pytest

from memphase.simulate.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "phase_diagram.ipynb"

TINY = """job = "collapse"
[grid]
d = [4, 8]
alpha = [0.4, 0.8]
score = ["empirical", "population"]
seeds = [0, 1]
[sampler]
steps = 30
n_samples = 32
record = 10
t_min_tau = 0.1
"""


VOLATILE = ("execution", "collapsed", "scrolled")


def test_notebook_is_stored_executed_without_volatile_metadata():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "commit the notebook executed (its figures show on a code host)"
    assert all(c.execution_count is not None for c in code), "execute every cell before committing"
    for c in nb.cells:
        assert not set(c.get("metadata", {})) & set(VOLATILE), c.metadata
    assert set(nb.metadata) <= {"kernelspec", "language_info"}


def _execute_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_execute", ROOT / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_runs_on_a_tiny_sweep_without_rewriting_the_tracked_copy(tmp_path, monkeypatch):
    """notebooks/execute.py runs the notebook end to end (nbclient) and, unless --in-place,
    writes the executed notebook to a copy: the tracked notebook stays byte for byte."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "tiny.h5"
    assert main(["run", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    execute = _execute_module()
    copy = tmp_path / "executed.ipynb"
    monkeypatch.setattr(execute, "COPY", copy)
    tracked = NOTEBOOK.read_bytes()
    assert execute.parse([str(out)]).in_place is False
    target = execute.main([str(out)])      # raises CellExecutionError on any cell error
    assert target == copy and NOTEBOOK.read_bytes() == tracked
    nb = nbformat.read(copy, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "job: collapse" in text and "lazy: dask" in text
    assert any(o.get("data", {}).get("image/png") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs), "the notebook drew no figure"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
