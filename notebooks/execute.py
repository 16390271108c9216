"""Execute notebooks/phase_diagram.ipynb in place on a collapse sweep and strip volatile metadata,
so that the committed notebook shows its figures on a code host.

    memphase run collapse                     # writes data/results/collapse.h5 (about 1.5 min)
    python notebooks/execute.py [RESULTS.h5]  # default: data/results/collapse.h5
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "phase_diagram.ipynb"
VOLATILE = ("execution", "collapsed", "scrolled")


def main(argv):
    results = Path(argv[0] if argv else ROOT / "data" / "results" / "collapse.h5").resolve()
    if not results.exists():
        sys.exit(f"{results} not found: run `memphase run collapse` first")
    os.environ["MEMPHASE_SWEEP"] = str(results)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    for cell in nb.cells:
        for key in VOLATILE:
            cell.metadata.pop(key, None)
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    nbformat.write(nb, NOTEBOOK)
    print(f"executed {NOTEBOOK.relative_to(ROOT)} on {results}")


if __name__ == "__main__":
    main(sys.argv[1:])
