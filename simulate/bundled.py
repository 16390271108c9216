"""The canonical configs that ship with memphase, found by name.

Installed, they are package data (`memphase.configs`, built from the repository's data/configs/);
in a source checkout they are read from data/configs/ directly. `memphase run quickstart` and
`memphase run data/configs/quickstart.toml` name the same config."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

__all__ = ["bundled_configs", "resolve_config", "config_summary"]


def bundled_configs() -> dict[str, Path]:
    """{name: path} of every canonical config shipped with the package (sorted by name): the
    installed package data `memphase.configs`, else data/configs/ of the source tree."""
    files: list[Path] = []
    try:  # a namespace package (no __init__.py): iterate, its path is not one folder
        files = [Path(str(p)) for p in resources.files("memphase.configs").iterdir()
                 if p.name.endswith(".toml")]
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, TypeError):
        pass
    if not files:
        src = Path(__file__).resolve().parents[1] / "data" / "configs"
        files = list(src.glob("*.toml")) if src.is_dir() else []
    return {p.stem: p for p in sorted(files)}


def resolve_config(arg: str) -> str:
    """A config argument -> a path: an existing file as given, else a bundled config's name
    (with or without '.toml'). An unknown name is one line that lists the names."""
    p = Path(arg)
    if p.exists() or p.suffix not in ("", ".toml") or len(p.parts) > 1:
        return arg
    found = bundled_configs().get(p.stem)
    if found is None:
        names = ", ".join(bundled_configs()) or "none installed"
        raise FileNotFoundError(2, f"no config file or bundled config named {arg!r} "
                                   f"(bundled: {names})", arg)
    return str(found)


def config_summary(path: Path) -> tuple[str, str]:
    """(title, runtime) from a canonical config's header comment: the title is the header's first
    line up to its colon, the runtime what follows 'runtime' (empty when the header gives none)."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    first = header[0] if header else ""
    head, colon, _ = first.partition(":")
    title = head if colon and len(head) <= 70 else first
    m = re.search(r"runtime[^:]*:\s*([^;(]*?)(?:\.\s|\.$|;|\(|$)", " ".join(header), re.I)
    return title, (m.group(1).strip() if m else "")
