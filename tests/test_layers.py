"""The package's shape (issue 24; the map: docs/architecture.md), read from the code's own imports.

Every import of a project module is counted, at the top of a file or inside a function (a lazy
import that dodges a cycle at run time is still a cycle in the design), except those under
`if TYPE_CHECKING:`. The tests fail on
- an import cycle between project files;
- an import that goes up a layer:
      physics  <  simulate core (base < data, scores, sampling, learning)  <  analysis
               <  run engine and jobs (simulate.run, .sweep, .experiments)  <  CLI (simulate.cli)
  (imports within one layer are free as long as they make no cycle; `memphase` itself, the
  package root, is below everything);
- a project file importing a module by its pre-issue-24 path (memphase._moved.MOVED: kept for
  users, not for the package's own code).
Nothing is imported or run: the files are parsed with ast.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPS = {"physics": "physics", "simulate": "simulate", "analysis": "analysis", "memphase": "memphase"}

#: (layer rank, name); a module may import only modules of rank <= its own
_CORE = ("data", "scores", "sampling", "learning")
_ENGINE = ("run", "sweep", "experiments")


def layer(mod: tuple[str, ...]) -> tuple[float, str]:
    top = mod[0]
    if top == "memphase":
        return 0.0, "memphase (package root)"
    if top == "physics":
        return 1.0, "physics"
    if top == "analysis":
        return 3.0, "analysis"
    sub = mod[1] if len(mod) > 1 else None
    if sub is None:
        return 2.0, "simulate (package)"
    if sub == "base":
        return 2.0, "simulate core (base)"
    if sub in _CORE:
        return 2.5, f"simulate core ({sub})"
    if sub in _ENGINE:
        return 4.0, f"run engine and jobs ({sub})"
    if sub == "cli":
        return 5.0, "CLI"
    raise AssertionError(f"simulate/{sub} is in no layer: add it to tests/test_layers.py and "
                         f"docs/architecture.md")


def module_files() -> dict[tuple[str, ...], Path]:
    files = {}
    for top in TOPS:
        for p in (ROOT / top).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[tuple(parts)] = p
    return files


FILES = module_files()


def resolve(parts):
    """Longest prefix of `parts` (memphase.x... or x...) that is a project file."""
    parts = tuple(parts)
    if len(parts) > 1 and parts[0] == "memphase" and parts[1] in ("physics", "simulate", "analysis"):
        parts = parts[1:]
    for k in range(len(parts), 0, -1):
        if parts[:k] in FILES:
            return parts[:k]
    return None


def _type_checking(node, parents) -> bool:
    p = parents.get(node)
    while p is not None:
        if isinstance(p, ast.If):
            t = p.test
            name = t.id if isinstance(t, ast.Name) else (t.attr if isinstance(t, ast.Attribute) else "")
            if name == "TYPE_CHECKING":
                return True
        p = parents.get(p)
    return False


def imports(mod, path):
    """(line, dotted target as written, resolved absolute parts) for every import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    pkg = mod if path.name == "__init__.py" else mod[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(pkg[: len(pkg) - (node.level - 1)]) if node.level else []
            stem = base + (node.module.split(".") if node.module else [])
            targets = [stem + [a.name] for a in node.names]
        else:
            continue
        if _type_checking(node, parents):
            continue
        for t in targets:
            yield node.lineno, t


def graph():
    g = {m: set() for m in FILES}
    for mod, path in FILES.items():
        for _, t in imports(mod, path):
            r = resolve(t)
            if r and r != mod:
                g[mod].add(r)
    return g


def cycles(g):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _name(m):
    return "/".join(m)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(map(_name, c)) for c in found)


def test_no_import_goes_up_a_layer():
    bad = []
    for m, targets in graph().items():
        rank, name = layer(m)
        for t in targets:
            trank, tname = layer(t)
            if trank > rank:
                bad.append(f"{_name(m)} ({name}) -> {_name(t)} ({tname})")
    assert not bad, "imports up a layer:\n" + "\n".join(sorted(bad))


def test_only_the_cli_imports_the_cli():
    bad = [f"{_name(m)} -> {_name(t)}" for m, ts in graph().items() for t in ts
           if t[:2] == ("simulate", "cli") and m[:2] != ("simulate", "cli")]
    assert not bad, bad


def test_package_code_uses_the_new_paths():
    from memphase._moved import MOVED

    old = {tuple(k.split(".")[1:]) for k in MOVED}
    bad = []
    for mod, path in FILES.items():
        for line, t in imports(mod, path):
            parts = tuple(t[1:]) if t[:1] == ["memphase"] else tuple(t)
            if any(parts[: len(o)] == o for o in old):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {'.'.join(t)}")
    assert not bad, "old module paths (see memphase/_moved.py for the new ones):\n" + "\n".join(bad)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The walker itself: a made-up graph with a lazy-import cycle and an upward edge."""
    g = {("a",): {("b",)}, ("b",): {("c",)}, ("c",): {("a",)}, ("d",): set()}
    assert cycles(g) == [[("a",), ("b",), ("c",)]]
    assert layer(("simulate", "learning", "training"))[0] < layer(("simulate", "cli", "commands"))[0]
    assert layer(("analysis", "plots", "sweep"))[0] > layer(("simulate", "data", "real"))[0]
    assert layer(("simulate", "run", "files"))[0] > layer(("analysis", "results"))[0]


def test_the_walker_counts_lazy_imports_and_skips_type_checking(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("from typing import TYPE_CHECKING\n"
                   "from .base import device\n"
                   "if TYPE_CHECKING:\n    from ..cli import commands\n"
                   "def f():\n    from ..run.files import make_dirs\n    return make_dirs\n")
    got = [".".join(t) for _, t in imports(("simulate", "learning", "mod"), src)]
    assert "simulate.learning.base.device" in got
    assert "simulate.run.files.make_dirs" in got
    assert not any("cli" in t for t in got)
