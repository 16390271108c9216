"""MkDocs hook: give the API reference the installed layout (memphase.physics, ...).

The source folders physics/, simulate/ and analysis/ install as memphase.physics, memphase.simulate
and memphase.analysis (pyproject's package-dir mapping); griffe reads sources by folder, so the
hook lays out build/api-src/memphase/ with links to them before mkdocstrings looks."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "build" / "api-src" / "memphase"


def _layout():
    SRC.mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py",):
        target = SRC / name
        if not target.exists():
            os.symlink(ROOT / "memphase" / name, target)
    for pkg in ("physics", "simulate", "analysis"):
        target = SRC / pkg
        if not target.exists():
            os.symlink(ROOT / pkg, target, target_is_directory=True)


_layout()
