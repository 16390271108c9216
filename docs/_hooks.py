"""MkDocs hooks for the API reference.

1. The installed layout: the source folders physics/, simulate/ and analysis/ install as
   memphase.physics, memphase.simulate and memphase.analysis (pyproject's package-dir mapping);
   griffe reads sources by folder, so the hook lays out build/api-src/memphase/ with links to
   them before mkdocstrings looks.
2. Complete pages: a line `<!-- api-modules: PKG -->` in a page becomes one `::: memphase.PKG.MOD`
   block per public module of that package (`api_modules`), read from the source tree, so that a
   new module appears in the reference without editing the page."""
import os
import re
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


def api_modules(pkg: str) -> list[str]:
    """Dotted names of the public modules of memphase.<pkg>: the package itself and every .py file
    below it whose path has no part starting with '_' (private modules, __main__), sorted."""
    base = ROOT / pkg
    names = [f"memphase.{pkg}"]
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if not parts:
                continue
        if any(p.startswith("_") for p in parts):
            continue
        names.append(".".join(["memphase", pkg, *parts]))
    return sorted(set(names))


_MARKER = re.compile(r"^<!-- api-modules: (\w+) -->$", re.MULTILINE)


def on_page_markdown(markdown, page, config, files):
    return _MARKER.sub(lambda m: "\n\n".join(f"::: {name}" for name in api_modules(m.group(1))),
                       markdown)
