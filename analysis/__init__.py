"""Turn samples and trajectories into measurements; load results; draw figures.

    from memphase.analysis import open_sweep, open_results
"""

from .results import ResultFileError, open_results, open_sweep

__all__ = ["open_sweep", "open_results", "ResultFileError"]
