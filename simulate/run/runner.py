"""Run a job config in-process: `memphase run CONFIG` is an in-process sweep (see
`memphase.simulate.sweep`): validate, run every cell with a progress bar (checkpointed, resumable), assemble
one Dataset, write it atomically with provenance, draw its figure."""

from __future__ import annotations

from pathlib import Path

from ..sweep import load_sweep, run_sweep

__all__ = ["load_job", "run_job"]


def load_job(config_path):
    """(experiment module, validated config, config text) for a TOML job file."""
    plan = load_sweep(config_path)
    return plan.exp, plan.cfg, plan.text


def run_job(config_path, output=None, progress: bool = True, plot: bool = True) -> Path:
    """Run all cells of the job in this process; return the results path.

    An existing results file is never overwritten: if it holds the same config the run is
    already done (returned as is); otherwise an error asks for another output. An interrupted
    run resumes from its journal `<output>.cells/`.
    """
    return run_sweep(config_path, output=output, backend="inprocess", progress=progress, plot=plot)
