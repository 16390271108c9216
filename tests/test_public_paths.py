"""Every `memphase.<dotted path>` that the docs, README, notebooks, examples, benchmarks and tests
name still resolves after the issue-24 layout (package __init__ re-exports and the old module
paths of memphase/_moved.py), and each old module path gives the very module of its new path."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLACES = ["README.md", "docs", "notebooks", "examples", "benchmarks", "tests"]
SUFFIXES = {".md", ".py", ".ipynb", ".toml", ".txt", ".sh"}
# placeholders in prose and the data-only packages (configs, docs, examples: files, not modules)
SKIP = {"memphase.PKG.MOD", "memphase.x", "memphase.configs", "memphase.docs", "memphase.examples"}
#: paths named in issue 24 itself
ISSUE_24 = ["memphase.simulate.data.digits", "memphase.simulate.sweep.OutputLock",
            "memphase.physics.critical.collapse_time_finite_n",
            "memphase.analysis.dimensions.jacobian_sweep"]


def documented_paths() -> list[str]:
    found = set(ISSUE_24)
    pat = re.compile(r"(?<![\w/.-])memphase(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
    for place in PLACES:
        p = ROOT / place
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.suffix in SUFFIXES]
        for f in files:
            found.update(pat.findall(f.read_text(errors="replace")))
    return sorted(found - SKIP)


def resolve(path: str):
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for a in parts[k:]:
            obj = getattr(obj, a)
        return obj
    raise ModuleNotFoundError(path)


def test_every_documented_path_resolves():
    paths = documented_paths()
    assert len(paths) > 50
    bad = []
    for p in paths:
        try:
            resolve(p)
        except (ImportError, AttributeError) as e:
            bad.append(f"{p}: {e}")
    assert not bad, "\n".join(bad)


def test_old_module_paths_are_the_new_modules():
    from memphase._moved import MOVED

    for old, new in MOVED.items():
        mod = importlib.import_module(old)
        assert mod is importlib.import_module(new)
        assert mod.__name__ == new and mod.__spec__.name == new


@pytest.mark.parametrize("old, name", [("memphase.simulate.store", "provenance"),
                                       ("memphase.simulate.config", "ConfigError"),
                                       ("memphase.analysis.sweep_plots", "plot_results")])
def test_from_old_path_import_name(old, name):
    ns = {}
    exec(f"from {old} import {name}", ns)
    pkg, _, leaf = old.rpartition(".")
    exec(f"from {pkg} import {leaf} as m", ns)
    assert getattr(ns["m"], name) is ns[name]


def test_shared_exceptions_are_one_type():
    from memphase.simulate.base import errors
    from memphase.simulate.cli import Terminated
    from memphase.simulate.run.config import ConfigError
    from memphase.simulate.run.files import SweepError

    assert (ConfigError, SweepError, Terminated) == (errors.ConfigError, errors.SweepError,
                                                     errors.Terminated)
