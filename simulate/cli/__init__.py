"""The `memphase` command line, the top layer: commands (run | sweep | merge | info | plot |
validate | ...), validate and validate_papers (the `memphase validate` rows). Nothing outside this
package imports it (tests/test_layers.py). `python -m memphase.simulate.cli` runs `main`."""

from .commands import EXAMPLES, Terminated, _free_path, build_parser, main  # noqa: F401

__all__ = ["main", "build_parser", "EXAMPLES", "Terminated"]
