"""The docs render as written: MkDocs' Markdown (Python-Markdown) merges a list into the running
text when it follows a paragraph line without a blank line, and nests list items only by 4
spaces; `mkdocs build --strict` reports neither. This test reads every page under docs/."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
ITEM = re.compile(r"^( *)([-*+]|\d+\.) \S")


def list_problems(text: str) -> list[tuple[int, str]]:
    """(line, problem) for each list item that Python-Markdown would not render as a list item:
    indented by other than a multiple of 4 spaces, or starting a list right after a paragraph
    line. Code fences and indented code blocks are skipped."""
    out, fence, prev = [], False, ""
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
        m = ITEM.match(line)
        if fence or (line.startswith("    ") and not m):
            prev = line
            continue
        if m:
            indent = len(m.group(1))
            if indent % 4:
                out.append((i, f"list item indented {indent} spaces (nesting takes 4)"))
            after_paragraph = (prev.strip() and not ITEM.match(prev) and not prev.startswith(
                (" ", "|", "#", ">")))
            if indent == 0 and after_paragraph:
                out.append((i, "list starts right after a paragraph line (needs a blank line)"))
        prev = line
    return out


def test_the_checker_finds_both_problems():
    bad = "Text:\n- merged into the paragraph\n\n- item\n  - nested by 2\n"
    assert [line for line, _ in list_problems(bad)] == [2, 5]
    good = "Text:\n\n- item\n    - nested by 4\n\n```\n- in code\n  - in code\n```\n"
    assert list_problems(good) == []


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_lists_render_as_lists(page):
    problems = list_problems((DOCS / page).read_text())
    assert not problems, "\n".join(f"docs/{page}:{i}: {msg}" for i, msg in problems)
