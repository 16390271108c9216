"""Experiments: the composition layer that wires data, scores, samplers and the observers of
`analysis` into a job a config names. Each experiment module provides

    SCHEMA                      the config schema (memphase.simulate.run.config.Field tree)
    cells(cfg) -> list[dict]    the grid of independent cells
    run_cell(cfg, cell) -> dict arrays measured in one cell
    assemble(cfg, cells, results) -> xarray.Dataset
    plot(ds, path)              the figure written beside the results

`run_in_memory(exp, cfg)` runs every cell of a validated config in this process and assembles
the Dataset, with no file and no journal (tests, notebooks); sweeps go through memphase.simulate.sweep.
"""

from importlib import import_module

EXPERIMENTS = {
    "quickstart": "memphase.simulate.experiments.quickstart",
    "geometric": "memphase.simulate.experiments.geometric",
    "collapse": "memphase.simulate.experiments.collapse",
    "speciation": "memphase.simulate.experiments.speciation",
    "memorization": "memphase.simulate.experiments.memorization",
    "emm": "memphase.simulate.experiments.emm",
    "regularization": "memphase.simulate.experiments.regularization",
    "linear_model": "memphase.simulate.experiments.linear_model",
    "training_dynamics": "memphase.simulate.experiments.training_dynamics",
    "random_features": "memphase.simulate.experiments.random_features",
}


def get_experiment(name: str):
    if not isinstance(name, str):
        raise ValueError(f"'job' must be a string naming the experiment, got {type(name).__name__}; "
                         f"choose one of {sorted(EXPERIMENTS)}")
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown job {name[:60]!r}; choose one of {sorted(EXPERIMENTS)}")
    return import_module(EXPERIMENTS[name])


def run_in_memory(exp, cfg) -> tuple:
    """(cells, Dataset): every cell of the validated config `cfg` of experiment `exp` (a module
    or a job name) run here, one after another, and assembled."""
    exp = get_experiment(exp) if isinstance(exp, str) else exp
    cells = exp.cells(cfg)
    return cells, exp.assemble(cfg, cells, [exp.run_cell(cfg, c) for c in cells])
