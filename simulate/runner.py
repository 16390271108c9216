"""Run a job config in-process: validate, run every cell with a progress bar, assemble one
Dataset, write it atomically with provenance, draw its figure."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from .config import ConfigError, load_toml, validate
from .experiments import get_experiment
from .store import provenance, write_dataset

__all__ = ["load_job", "run_job"]


def load_job(config_path):
    """(experiment module, validated config, config text) for a TOML job file."""
    raw, text = load_toml(config_path)
    if "job" not in raw:
        raise ConfigError(f"{config_path}: missing required key 'job'")
    try:
        exp = get_experiment(raw["job"])
    except ValueError as e:
        raise ConfigError(f"{config_path}: {e}") from None
    try:
        cfg = validate(raw, exp.SCHEMA)
    except ConfigError as e:
        raise ConfigError(f"{config_path}: {e}") from None
    return exp, cfg, text


def run_job(config_path, output=None, progress: bool = True, plot: bool = True) -> Path:
    """Run all cells of the job; return the results path.

    An existing results file is never overwritten: if it holds the same config the run is
    already done (returned as is); otherwise a ConfigError asks for another output.
    """
    exp, cfg, text = load_job(config_path)
    out = Path(output or cfg["output"])
    if out.exists():
        from analysis.results import open_results

        with open_results(out) as old:
            same = old.attrs.get("config") == text
        if same:
            return out
        raise ConfigError(f"{out} exists and was made with a different config; "
                          f"choose another --output (finished results are never overwritten)")
    cell_list = exp.cells(cfg)
    results, t0 = [], time.time()
    for cell in tqdm(cell_list, desc=f"{cfg['job']} cells", unit="cell", disable=not progress):
        results.append(exp.run_cell(cfg, cell))
    ds = exp.assemble(cfg, cell_list, results)
    seeds = cfg.get("grid", {}).get("seeds", [])
    ds.attrs.update(provenance(text, seeds, job=cfg["job"], config_path=str(config_path),
                               runtime_s=round(time.time() - t0, 3), cells=len(cell_list)))
    write_dataset(ds, out)
    if plot:
        exp.plot(ds, out.with_suffix(".png"))
    return out
