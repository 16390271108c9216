"""Execute notebooks/phase_diagram.ipynb on a collapse sweep and strip volatile metadata.

By default the executed notebook is written to a copy (notebooks/phase_diagram.executed.ipynb, not
tracked), so that trying it never rewrites the tracked notebook; `--in-place` updates the tracked
notebook itself (what a maintainer does before committing, so that a code host shows its figures).

    memphase run collapse                                   # writes data/results/collapse.h5
    python notebooks/execute.py [RESULTS.h5] [--in-place]   # default: data/results/collapse.h5
"""

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "phase_diagram.ipynb"
COPY = NOTEBOOK.with_suffix(".executed.ipynb")
VOLATILE = ("execution", "collapsed", "scrolled")


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=str(ROOT / "data" / "results" / "collapse.h5"),
                    help="the collapse results file the notebook reads")
    ap.add_argument("--in-place", action="store_true",
                    help=f"rewrite the tracked {NOTEBOOK.name} (default: write {COPY.name})")
    return ap.parse_args(argv)


def _collapse_runtime() -> str:
    """' (expected runtime: X)' from the collapse config's header, the one place a runtime is
    stated (README's table and `memphase configs` read the same line); '' if it has none."""
    from memphase.simulate.run.bundled import bundled_configs, config_summary

    runtime = config_summary(bundled_configs()["collapse"])[1]
    return f" (expected runtime: {runtime})" if runtime else ""


def main(argv=None) -> Path:
    args = parse(argv)
    results = Path(args.results).resolve()
    if not results.is_file():
        raise SystemExit(f"{results} not found: run `memphase run collapse` first"
                         f"{_collapse_runtime()}")
    import nbformat
    from nbclient import NotebookClient

    os.environ["MEMPHASE_SWEEP"] = str(results)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    for cell in nb.cells:
        for key in VOLATILE:
            cell.metadata.pop(key, None)
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    target = NOTEBOOK if args.in_place else COPY
    nbformat.write(nb, target)
    print(f"executed {NOTEBOOK.relative_to(ROOT)} on {results} -> {target}")
    return target


if __name__ == "__main__":
    main()
