"""notebooks/phase_diagram.ipynb runs end to end (nbclient) on a tiny collapse sweep, and is
stored in git with its outputs cleared."""

from pathlib import Path

import nbformat
import pytest

from simulate.cli import main

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


def test_notebook_outputs_are_cleared():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for c in code:
        assert c.outputs == [] and c.execution_count is None, "clear the notebook's outputs"


def test_notebook_runs_on_a_tiny_sweep(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "tiny.h5"
    assert main(["run", str(cfg), "-o", str(out), "-q", "--no-plot"]) == 0
    monkeypatch.setenv("MEMPHASE_SWEEP", str(out))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError on any cell error
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "job: collapse" in text and "lazy: dask" in text
    assert any(o.get("data", {}).get("image/png") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs), "the notebook drew no figure"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
