"""Issue 25 (4): messages a user reads (errors, --help, result attributes) cite no path that
only a clone of the repository has (docs/..., examples/..., source files): a pip user reaches the
docs and examples through `memphase docs PAGE` and `memphase examples NAME`, and every such
pointer names a page that exists."""

import ast
import re
from pathlib import Path

import pytest

from memphase.simulate.run.bundled import find_shipped
from memphase.simulate.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulate", "analysis", "physics")
REPO_PATH = re.compile(r"(?<![\w.])(?:docs|examples|benchmarks|notebooks|tests|data/configs)/[\w./-]*"
                       r"|(?<![\w.])(?:simulate|analysis|physics)/[\w/]*\.py\b")
POINTER = re.compile(r"memphase (docs|examples) ([\w./-]+)")


def user_strings(path: Path):
    """(line, text) of every string constant in a module that is not a docstring (error
    messages, help text, attribute values, f-string parts)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            yield node.lineno, node.value


def _sources():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_scan_finds_a_repo_path():
    assert REPO_PATH.search("see docs/theory.md") and REPO_PATH.search("examples/slurm/x.sh")
    assert REPO_PATH.search("Conventions: analysis/sweep_plots.py.")
    assert not REPO_PATH.search("see `memphase docs theory`; output data/results/x.h5")
    assert not REPO_PATH.search("memphase.analysis.plots.sweep")


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_message_cites_a_repository_path(path):
    bad = [f"{path.relative_to(ROOT)}:{line}: {m.group(0)}" for line, text in user_strings(path)
           for m in REPO_PATH.finditer(text)]
    assert not bad, "\n".join(bad) + "\n(use `memphase docs PAGE` / `memphase examples NAME`)"


def test_every_help_text_is_free_of_repository_paths():
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:
        texts += [sub.format_help() for sub in action.choices.values()]
    for text in texts:
        assert not REPO_PATH.search(text), REPO_PATH.search(text).group(0)


def test_every_pointer_names_a_shipped_file():
    pointers = {(m.group(1), m.group(2).rstrip(".,;)`'")) for p in _sources()
                for _, text in user_strings(p) for m in POINTER.finditer(text)}
    assert ("docs", "theory") in pointers
    for kind, name in sorted(pointers):
        if name in ("PAGE", "NAME"):
            continue
        assert find_shipped(kind, name).is_file(), (kind, name)
