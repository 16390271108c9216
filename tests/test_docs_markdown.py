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
    line; and for each paragraph after a blank line indented by 1-3 spaces (a list item's later
    paragraphs and displayed equations take 4; with fewer the list ends there and the next item
    merges into the text). Code fences and indented code blocks are skipped."""
    out, fence, prev, first = [], False, "", ""
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
        m = ITEM.match(line)
        if not prev.strip():
            first = line  # the first line of the current block
        if not fence and not m and not prev.strip() and line.strip() and line[0] == " " and (
                not line.startswith("    ")) and not line.lstrip().startswith("```"):
            out.append((i, "paragraph after a blank line indented 1-3 spaces (a list item's "
                           "paragraphs take 4)"))
        if fence or (line.startswith("    ") and not m):
            prev = line
            continue
        if m:
            indent = len(m.group(1))
            if indent % 4:
                out.append((i, f"list item indented {indent} spaces (nesting takes 4)"))
            # a paragraph (one that did not start as a list item) absorbs an item that follows
            # it without a blank line, at any indent: "Text:\n- item", or a list item's second
            # paragraph followed directly by the next item
            in_paragraph = prev.strip() and first is not line and not ITEM.match(first) and (
                not first.lstrip().startswith(("|", "#", ">", "```", "$$")))
            if in_paragraph:
                out.append((i, "list item right after a paragraph line (needs a blank line)"))
            first = line
        prev = line
    return out


def test_the_checker_finds_both_problems():
    bad = ("Text:\n- merged into the paragraph\n\n- item\n  - nested by 2\n\n- item\n\n"
           "  ends the list\n\n- item\n\n    second paragraph\n- merged into it\n")
    assert [line for line, _ in list_problems(bad)] == [2, 5, 9, 14]
    good = ("Text:\n\n- item\n    - nested by 4\n\n```\n- in code\n  - in code\n```\n\n"
            "- item\n\n    $$\n    x\n    $$\n\n    same item\n")
    assert list_problems(good) == []


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_lists_render_as_lists(page):
    problems = list_problems((DOCS / page).read_text())
    assert not problems, "\n".join(f"docs/{page}:{i}: {msg}" for i, msg in problems)
