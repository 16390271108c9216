"""Old import paths of modules that moved into subpackages (issue 24), kept working.

`import memphase.simulate.store`, `from memphase.simulate import store` and
`from memphase.simulate.store import provenance` give the module `memphase.simulate.run.store`
itself (one module object under two names, so a monkeypatch through either name is seen by
both). Modules whose old name is now a package (`memphase.simulate.data`, `.sampling`, `.cli`,
`memphase.analysis.plots`, `memphase.physics.linear_model`) need no alias: the package re-exports
the old module's public names. New code imports the new paths (tests/test_layers.py checks).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "memphase.physics.linear_model_criterion": "memphase.physics.linear_model.criterion",
    "memphase.physics.linear_model_official": "memphase.physics.linear_model.official",
    "memphase.physics.linear_model_checks": "memphase.physics.linear_model.checks",
    "memphase.simulate.device": "memphase.simulate.base.device",
    "memphase.simulate.rowselect": "memphase.simulate.base.rowselect",
    "memphase.simulate.step_progress": "memphase.simulate.base.step_progress",
    "memphase.simulate.data_real": "memphase.simulate.data.real",
    "memphase.simulate.networks": "memphase.simulate.learning.networks",
    "memphase.simulate.conv_networks": "memphase.simulate.learning.conv_networks",
    "memphase.simulate.training": "memphase.simulate.learning.training",
    "memphase.simulate.training_resume": "memphase.simulate.learning.training_resume",
    "memphase.simulate.checkpoints": "memphase.simulate.learning.checkpoints",
    "memphase.simulate.ddpm": "memphase.simulate.learning.ddpm",
    "memphase.simulate.random_features": "memphase.simulate.learning.random_features",
    "memphase.simulate.config": "memphase.simulate.run.config",
    "memphase.simulate.config_bounds": "memphase.simulate.run.config_bounds",
    "memphase.simulate.bundled": "memphase.simulate.run.bundled",
    "memphase.simulate.cost": "memphase.simulate.run.cost",
    "memphase.simulate.files": "memphase.simulate.run.files",
    "memphase.simulate.store": "memphase.simulate.run.store",
    "memphase.simulate.slurm_options": "memphase.simulate.run.slurm_options",
    "memphase.simulate.runner": "memphase.simulate.run.runner",
    "memphase.simulate.validate": "memphase.simulate.cli.validate",
    "memphase.simulate.validate_papers": "memphase.simulate.cli.validate_papers",
    "memphase.analysis.sweep_plots": "memphase.analysis.plots.sweep",
    "memphase.analysis.sweep_conventions": "memphase.analysis.plots.sweep_conventions",
    "memphase.analysis.collapse_plots": "memphase.analysis.plots.collapse",
    "memphase.analysis.geometric_plots": "memphase.analysis.plots.geometric",
    "memphase.analysis.memorization_plots": "memphase.analysis.plots.memorization",
    "memphase.analysis.regularization_plots": "memphase.analysis.plots.regularization",
    "memphase.analysis.linear_model_plots": "memphase.analysis.plots.linear_model",
    "memphase.analysis.training_dynamics_plots": "memphase.analysis.plots.training_dynamics",
    "memphase.analysis.real_data_plots": "memphase.analysis.plots.real_data",
    "memphase.analysis.random_features_plots": "memphase.analysis.plots.random_features",
}


_SPECS: dict = {}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name of MOVED and answers with the module under its new name."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        _SPECS[module.__name__] = module.__spec__   # restored below: the module keeps its own spec
        return module

    def exec_module(self, module):
        module.__spec__ = _SPECS[module.__name__]


def install() -> None:
    """Put the finder first on sys.meta_path (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
