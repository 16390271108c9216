"""The canonical configs that ship with memphase, found by name.

Installed, they are package data (`memphase.configs`, built from the repository's data/configs/);
in a source checkout they are read from data/configs/ directly. `memphase run quickstart` and
`memphase run data/configs/quickstart.toml` name the same config."""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path

__all__ = ["bundled_configs", "resolve_config", "config_summary", "config_title",
           "shipped_folder", "shipped_files", "find_shipped"]


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
        src = Path(__file__).resolve().parents[2] / "data" / "configs"
        files = list(src.glob("*.toml")) if src.is_dir() else []
    return {p.stem: p for p in sorted(files)}


SHIPPED = {"docs": ("docs", "*.md"), "examples": ("examples", "*")}


def shipped_folder(kind: str) -> Path:
    """Where the shipped `kind` ("docs" or "examples") lies: the installed package data
    memphase.<kind> (a wheel), else the source tree's docs/ or examples/ (a checkout)."""
    folder, _ = SHIPPED[kind]
    try:
        root = resources.files(f"memphase.{kind}")
        path = Path(str(root))
        if path.is_dir() and any(path.iterdir()):
            return path
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / folder


def shipped_files(kind: str) -> dict[str, Path]:
    """{name: path} of the shipped docs pages ('theory', 'conformance/h24', ...) or example files
    ('slurm/submit_array.sh', ...), sorted; private files (a leading '_') and caches left out."""
    base = shipped_folder(kind)
    _, pattern = SHIPPED[kind]
    out = {}
    for path in sorted(base.rglob(pattern)):
        rel = path.relative_to(base)
        if not path.is_file() or any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if kind == "docs" and rel.parts[0] == "api":
            continue                                      # generated reference: see the site
        out[rel.with_suffix("").as_posix() if kind == "docs" else rel.as_posix()] = path
    return out


def find_shipped(kind: str, name: str) -> Path:
    """The shipped file `name` (a page name as `shipped_files` gives it, with or without '.md', or
    just its last part, e.g. 'h24'). FileNotFoundError in one line, with close names, otherwise."""
    files = shipped_files(kind)
    key = name.removesuffix(".md") if kind == "docs" else name
    if key in files:
        return files[key]
    by_stem = [k for k in files if k.rsplit("/", 1)[-1] == key]
    if len(by_stem) == 1:
        return files[by_stem[0]]
    close = difflib.get_close_matches(key, list(files), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise FileNotFoundError(2, f"no {kind} file named {name!r}; {hint}(`memphase {kind}` lists "
                               f"them)", name)


def resolve_config(arg: str) -> str:
    """A config argument -> a path: an existing file as given, else a bundled config's name
    (with or without '.toml'). An unknown name is one line that lists the names."""
    p = Path(arg)
    if p.exists() or p.suffix not in ("", ".toml") or len(p.parts) > 1:
        return arg
    configs = bundled_configs()
    found = configs.get(p.stem)
    if found is None:
        close = difflib.get_close_matches(p.stem, list(configs), n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
        names = ", ".join(configs) or "none installed"
        raise FileNotFoundError(2, f"no config file or bundled config named {arg!r}; {hint}"
                                   f"(bundled: {names})", arg)
    return str(found)


TITLE_MAX = 90  # characters of a title in `memphase configs`
_DANGLING = {"a", "an", "the", "of", "in", "on", "with", "to", "and", "or", "for", "by", "at",
             "from", "vs", "as"}


def _drop_parentheticals(text: str) -> str:
    """`text` without its (balanced, possibly nested) parenthesized groups."""
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip()


def config_title(header: list[str]) -> str:
    """A config's title from its header comment lines: the first paragraph without parenthetical
    asides, up to its first colon or sentence end, cut at a word boundary (with '...') past
    TITLE_MAX characters, so that no title stops mid-phrase or inside a parenthesis."""
    para = []
    for line in header:
        if not line:
            break
        para.append(line)
    text = _drop_parentheticals(" ".join(para))
    text = re.split(r":\s|\.\s(?=[A-Z])|\.$|;\s", text, maxsplit=1)[0].strip()
    if len(text) > TITLE_MAX:
        words = text[:TITLE_MAX - 3].rsplit(" ", 1)[0].rstrip(",;:-").split(" ")
        while len(words) > 1 and words[-1].lower() in _DANGLING:
            words.pop()
        text = " ".join(words) + "..."
    return text


def config_summary(path: Path) -> tuple[str, str]:
    """(title, runtime) from a canonical config's header comment: the title by `config_title`,
    the runtime what follows 'runtime' (empty when the header gives none)."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    m = re.search(r"runtime[^:]*:\s*([^;(,]*?)(?:\.\s|\.$|;|,|\(|$)", " ".join(header), re.I)
    return config_title(header), (m.group(1).strip() if m else "")
