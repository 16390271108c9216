"""Figures (matplotlib, Agg backend), one module per job: common (save, the quickstart and
validation figures), output (write_figure), sweep (+ sweep_conventions: any results Dataset),
collapse, geometric, memorization, regularization, linear_model, training_dynamics, real_data,
random_features. The top of analysis/: figure modules import the measurement modules, never the
reverse. Every name of the former module `memphase.analysis.plots` is importable from here.

The names of `common` and `geometric` are resolved on first use (PEP 562): `common` switches
matplotlib to the Agg backend, as the former module did on import, and importing another figure
module (e.g. `sweep` in a notebook) must not do that.
"""

_COMMON = ("plot_quickstart", "plot_validation", "validation_deviations", "save", "plt")
_GEOMETRIC = ("plot_geometric", "plot_geometric_learned", "plot_geometric_phase",
              "plot_geometric_spectra")

__all__ = ["plot_quickstart", "plot_validation", "validation_deviations", "save", *_GEOMETRIC]


def __getattr__(name):
    if name in _COMMON:
        from . import common

        return getattr(common, name)
    if name in _GEOMETRIC:
        from . import geometric

        return getattr(geometric, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_COMMON, *_GEOMETRIC])
