"""Issue 25 (6): one runtime per run. A canonical config's header line 'Expected runtime: X
(details)' is the source (`memphase configs` prints X); README's table, the commands in the docs
and the notebook that cite a config, and notebooks/execute.py state that same X."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from memphase.simulate.run.bundled import bundled_configs, config_summary

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = bundled_configs()
RUNTIME = {name: config_summary(path)[1] for name, path in CONFIGS.items()}
COMMAND = re.compile(r"memphase (?:run|sweep) (?:data/configs/)?(\w+)(?:\.toml)?\b(.*)")
OWN_RUNTIME = re.compile(r"\b\d+(?:\.\d+)?\s*(?:s|min|minutes?|h|hours?)\b|few minutes", re.I)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_header_states_its_runtime(name):
    header = [line for line in CONFIGS[name].read_text().splitlines() if line.startswith("#")]
    assert any("Expected runtime:" in line for line in header), f"{name}: no 'Expected runtime:'"
    assert re.search(r"\d", RUNTIME[name]), f"{name}: runtime {RUNTIME[name]!r} has no number"


def _readme_rows():
    lines = (ROOT / "docs" / "measured.md").read_text().splitlines()   # the table moved from README (issue 24)
    start = lines.index("| config | what | runtime |") + 2
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        yield [n.strip() for n in cells[0].split(",")], cells[-1]


def test_readme_table_repeats_each_header():
    seen = []
    for names, cell in _readme_rows():
        seen += names
        if len(names) == 1:
            (name,) = names
            assert cell == RUNTIME[name] or cell.startswith(RUNTIME[name] + " ("), (
                f"README says {cell!r} for {name}; its header says {RUNTIME[name]!r}")
        else:
            assert cell == ", ".join(f"{n} {RUNTIME[n]}" for n in names), (names, cell)
    assert sorted(seen) == sorted(CONFIGS), "every bundled config has one row in README's table"


def _command_lines():
    """(where, config name, comment) for each `memphase run|sweep CONFIG ... # comment` line in
    README, docs/ and the notebook's cell sources; a comment alone on the next line counts."""
    texts = [(p.relative_to(ROOT).as_posix(), p.read_text())
             for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    nb = json.loads((ROOT / "notebooks" / "phase_diagram.ipynb").read_text())
    texts += [(f"notebooks/phase_diagram.ipynb cell {i}", "".join(c["source"]))
              for i, c in enumerate(nb["cells"])]
    for where, text in texts:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = COMMAND.search(line)
            if not m or m.group(1) not in CONFIGS:
                continue
            rest = m.group(2)
            if "#" not in rest and i + 1 < len(lines) and lines[i + 1].strip().startswith("#"):
                rest = lines[i + 1]
            if "#" in rest:
                yield where, m.group(1), rest.split("#", 1)[1]


def test_commands_in_docs_state_the_header_runtime():
    found = list(_command_lines())
    assert len(found) >= 6
    for where, name, comment in found:
        if OWN_RUNTIME.search(comment):
            assert RUNTIME[name] in comment, (
                f"{where}: `{name}` comment {comment.strip()!r} states a runtime other than its "
                f"header's {RUNTIME[name]!r}")


def test_the_agreement_check_can_fail():
    assert OWN_RUNTIME.search(" writes x.h5 (a few minutes on 2 cores)")
    assert "30 s" not in "a few minutes on 2 cores"


def test_execute_states_no_runtime_of_its_own_and_reads_the_header(tmp_path):
    source = (ROOT / "notebooks" / "execute.py").read_text()
    assert not OWN_RUNTIME.search(source), OWN_RUNTIME.search(source).group(0)
    spec = importlib.util.spec_from_file_location("nb_execute_rt", ROOT / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit, match=re.escape(f"(expected runtime: {RUNTIME['collapse']})")):
        module.main([str(tmp_path / "missing.h5")])
