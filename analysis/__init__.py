"""Turn samples and trajectories into measurements; load results; draw figures.

Layer 3 of 5 (docs/architecture.md): above physics and the numerical core of memphase.simulate
(data, scores, sampling, learning, base), below the run engine, the jobs and the CLI. Figures
live in analysis.plots.

    from memphase.analysis import open_sweep, open_results
"""

from .results import ResultFileError, open_results, open_sweep

__all__ = ["open_sweep", "open_results", "ResultFileError"]
