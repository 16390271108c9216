"""Experiments: the composition layer that wires data, scores, samplers and the observers of
`analysis` into a job a config names. Each experiment module provides

    SCHEMA                      the config schema (simulate.config.Field tree)
    cells(cfg) -> list[dict]    the grid of independent cells
    run_cell(cfg, cell) -> dict arrays measured in one cell
    assemble(cfg, cells, results) -> xarray.Dataset
    plot(ds, path)              the figure written beside the results
"""

from importlib import import_module

EXPERIMENTS = {
    "quickstart": "simulate.experiments.quickstart",
    "geometric": "simulate.experiments.geometric",
    "collapse": "simulate.experiments.collapse",
    "speciation": "simulate.experiments.speciation",
    "memorization": "simulate.experiments.memorization",
    "emm": "simulate.experiments.emm",
    "regularization": "simulate.experiments.regularization",
    "linear_model": "simulate.experiments.linear_model",
}


def get_experiment(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown job {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return import_module(EXPERIMENTS[name])
