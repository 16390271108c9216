"""MkDocs hooks for the API reference.

1. The installed layout: the source folders physics/, simulate/ and analysis/ install as
   memphase.physics, memphase.simulate and memphase.analysis (pyproject's package-dir mapping);
   griffe reads sources by folder, so the hook lays out build/api-src/memphase/ with links to
   them before mkdocstrings looks.
2. Complete pages: a line `<!-- api-modules: PKG -->` in a page becomes one `::: memphase.PKG.MOD`
   block per public module of that package (`api_modules`), read from the source tree, so that a
   new module appears in the reference without editing the page.
3. Math rendered at build time, nothing loaded from the network when a page is viewed: the
   pymdownx.arithmatex extension (generic mode, mkdocs.yml) marks `$$ ... $$` blocks and `$...$`
   spans; `on_page_content` replaces each with MathML (latex2mathml), which browsers draw
   natively, and fails the build on LaTeX it cannot convert. `on_config` turns off the theme's
   highlight.js, which the mkdocs theme loads from a CDN (code is highlighted at build time by
   codehilite with Pygments instead; docs/css/pygments.css)."""
import html
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


_MATH = re.compile(r'<(div|span) class="arithmatex">\\([\[(])(.*?)\\[\])]</\1>', re.DOTALL)
_UNCONVERTED = re.compile(r">[^<]*\\[A-Za-z]+")


def latex_to_mathml(tex: str, display: bool) -> str:
    """MathML for one LaTeX formula (`display`: a block equation); ValueError naming the
    formula when latex2mathml fails or leaves a LaTeX command unconverted."""
    from latex2mathml.converter import convert

    try:
        out = convert(tex.strip(), display="block" if display else "inline")
    except Exception as err:  # latex2mathml raises its own exception types
        raise ValueError(f"cannot convert to MathML: {tex.strip()!r} ({err})") from err
    bad = _UNCONVERTED.search(out)
    if bad:
        raise ValueError(f"unknown LaTeX command {bad.group(0)[1:]!r} in {tex.strip()!r}")
    return out


def render_math(content: str) -> str:
    """The page's HTML with every arithmatex block and span replaced by MathML."""
    def one(m):
        display = m.group(2) == "["
        mathml = latex_to_mathml(html.unescape(m.group(3)), display)
        return f'<{m.group(1)} class="arithmatex">{mathml}</{m.group(1)}>'
    return _MATH.sub(one, content)


def on_config(config):
    config.theme["highlightjs"] = False
    return config


def on_page_content(content, page, config, files):
    from mkdocs.exceptions import PluginError

    try:
        return render_math(content)
    except ValueError as err:
        raise PluginError(f"{page.file.src_path}: {err}") from err
