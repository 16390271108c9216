"""Figures (matplotlib, Agg backend), one module per job: common (save, the quickstart and
validation figures), output (write_figure), sweep (+ sweep_conventions: any results Dataset),
collapse, geometric, memorization, regularization, linear_model, training_dynamics, real_data,
random_features. The top of analysis/: figure modules import the measurement modules, never the
reverse. Every name of the former module `memphase.analysis.plots` is importable from here.
"""

from .common import *  # noqa: F401,F403
from .common import __all__ as _common_all
from .common import plt  # noqa: F401
from .geometric import (plot_geometric, plot_geometric_learned, plot_geometric_phase,  # noqa: F401
                        plot_geometric_spectra)

__all__ = [*_common_all, "plot_geometric", "plot_geometric_learned", "plot_geometric_phase",
           "plot_geometric_spectra"]
