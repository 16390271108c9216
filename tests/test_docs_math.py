"""Issue 25 (4): displayed formulas render as math, with nothing loaded from the network when a
page is viewed. `$$ ... $$` blocks (pymdownx.arithmatex, mkdocs.yml) become MathML at build time
(docs/_hooks.py, latex2mathml); the theme's CDN highlight.js is turned off."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""",
                    re.IGNORECASE)
REMOTE_CSS = re.compile(r"""(?:url\(|@import)\s*["']?(?:https?:)?//""", re.IGNORECASE)


def _hooks():
    spec = importlib.util.spec_from_file_location("memphase_docs_hooks", DOCS / "_hooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_latex_becomes_mathml_and_bad_latex_fails():
    pytest.importorskip("latex2mathml")
    hooks = _hooks()
    html = hooks.render_math('<p>x</p><div class="arithmatex">\\[\n\\frac{a}{b} &lt; 1\n\\]</div>'
                             '<span class="arithmatex">\\(\\sigma^2\\)</span>')
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html
    assert "<mfrac>" in html and "&#x0003C;" in html  # the escaped < reached the converter as <
    assert 'display="inline"' in html and "\\(" not in html and "\\[" not in html
    with pytest.raises(ValueError, match="unknown LaTeX command"):
        hooks.latex_to_mathml(r"\nosuchcommand x", True)
    with pytest.raises(ValueError, match="cannot convert"):
        hooks.latex_to_mathml(r"\frac{1}{", True)


def _displayed(page: Path) -> int:
    """Number of `$$` blocks in a Markdown page (an opening and a closing line each)."""
    n = sum(1 for line in page.read_text().splitlines() if line.strip() == "$$")
    assert n % 2 == 0, f"{page}: unmatched $$"
    return n // 2


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("latex2mathml")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


def test_every_displayed_formula_is_rendered_mathml(site):
    pages = {p: _displayed(p) for p in DOCS.rglob("*.md")}
    assert pages[DOCS / "theory.md"] >= 14 and pages[DOCS / "training_dynamics.md"] >= 3
    for page, n in pages.items():
        rel = page.relative_to(DOCS).with_suffix("")
        built = site / (rel.parent if rel.name == "index" else rel) / "index.html"
        html = built.read_text()
        blocks = re.findall(r'<div class="arithmatex"><math [^>]*display="block">', html)
        assert len(blocks) == n, f"{rel}: {len(blocks)} rendered of {n} $$ blocks"
        assert "$$" not in html and "\\[" not in html, f"{rel}: raw LaTeX left in the page"


def test_no_page_loads_anything_from_the_network(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        hit = REMOTE.search(page.read_text())
        assert hit is None, f"{page.relative_to(site)} loads {hit.group(0)!r}"
    for css in site.rglob("*.css"):
        hit = REMOTE_CSS.search(css.read_text(errors="replace"))
        assert hit is None, f"{css.relative_to(site)} loads {hit.group(0)!r}"


def test_the_network_check_can_fail():
    assert REMOTE.search('<script src="https://cdnjs.cloudflare.com/x.js"></script>')
    assert REMOTE.search("<link rel=stylesheet href=//cdn.example/x.css>")
    assert not REMOTE.search('<a href="https://www.mkdocs.org/">MkDocs</a>')
    assert not REMOTE.search('<script src="../js/base.js"></script>')
    assert REMOTE_CSS.search("@import url('https://fonts.example/x.css');")
