"""memphase: statistical physics of memorization in generative diffusion models.

Subpackages: `memphase.physics` (theory, float64 numpy), `memphase.simulate` (data, scores,
samplers, training, sweeps, the `memphase` command) and `memphase.analysis` (observables,
estimators, reading results, figures). Layers, bottom to top: physics < simulate's numerical
core (base, data, scores, sampling, learning) < analysis < run engine and jobs (simulate.run,
.experiments, .sweep) < the command line (simulate.cli); docs/architecture.md. Docs: docs/ in
the repository (theory reference, user guide, API reference); citations: CITATION.cff.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("memphase")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]

# the modules that moved into subpackages (issue 24) stay importable by their old paths
from ._moved import install as _install_moved  # noqa: E402

_install_moved()
