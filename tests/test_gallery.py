"""docs/make_gallery.py: its one list of canonical configs covers README's table and every bundled
config, the page it writes has an entry (claim, command, figures or how to make them) for each,
and the PNGs it commits are small (about 100 dpi, under 300 KB)."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from memphase.simulate.bundled import bundled_configs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "docs" / "make_gallery.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_gallery"] = mod  # dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("make_gallery", None)


def readme_configs() -> set[str]:
    """Config names in the configs table of docs/measured.md (moved there from README); `a(_b)`
    stands for a and a_b."""
    text = (ROOT / "docs" / "measured.md").read_text()
    table = text.split("## The configs", 1)[1].split("\n\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith("| config") or line.startswith("|---"):
            continue
        for item in line.split("|")[1].split(","):
            item = item.strip()
            m = re.fullmatch(r"(\w+)\((\w+)\)", item)
            names |= {m.group(1), m.group(1) + m.group(2)} if m else {item}
    return names


def test_gallery_covers_every_canonical_config(gallery):
    names = [e.name for e in gallery.GALLERY]
    assert len(names) == len(set(names))
    configs = set(bundled_configs())
    assert readme_configs() <= configs  # the parser reads the table (and the table is real)
    assert len(readme_configs()) >= 20
    assert set(names) - {"validate"} == configs, "GALLERY and the bundled configs differ"
    assert readme_configs() <= set(names)
    for e in gallery.GALLERY:
        assert e.tier in gallery.TIERS
        assert re.search(r"\[[A-Z]+\d\d\]", e.claim) or e.name == "validate", e.name
    # the long runs rendered for the gallery say what their figure measured (issue 25)
    for e in gallery.GALLERY:
        if e.tier == "slow":
            assert e.shows, f"{e.name}: what does its figure show?"


def test_page_has_an_entry_per_config(gallery, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = tmp_path / "docs" / "figures" / "gallery"
    monkeypatch.setattr(gallery, "FIGURES", figures)
    monkeypatch.setattr(gallery, "PAGE", tmp_path / "docs" / "gallery.md")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], "--", label="theory")
    ax.legend()
    src = tmp_path / "big.png"
    fig.savefig(src, dpi=120)
    plt.close(fig)
    size = gallery.shrink(src, figures / "collapse" / "collapse.png")
    assert 0 < size < gallery.MAX_BYTES
    from PIL import Image

    with Image.open(figures / "collapse" / "collapse.png") as im:
        assert im.width == round(6 * 100)  # 120 dpi -> 100 dpi
    page = gallery.write_page().read_text()
    for e in gallery.GALLERY:
        assert f"## {e.name}\n" in page
        assert f"`{gallery.command(e)}`" in page
        if e.shows:
            assert f"What the committed figure shows: {e.shows}" in page
    assert "![collapse: collapse](figures/gallery/collapse/collapse.png)" in page
    # an entry without figures says how to make them
    assert "python docs/make_gallery.py --only quickstart" in page


def test_committed_gallery_figures_are_small_and_named(gallery):
    names = {e.name for e in gallery.GALLERY}
    for png in (ROOT / "docs" / "figures" / "gallery").glob("*/*.png"):
        assert png.parent.name in names, png
        assert png.name.startswith(png.parent.name), png
        assert png.stat().st_size < gallery.MAX_BYTES, png


def test_from_dir_says_when_it_must_run_instead_of_redraw(gallery, tmp_path, monkeypatch, capsys):
    """--from DIR redraws DIR/NAME.h5; where that is missing or a broken link the script says it
    runs the config (which may take long) before running it."""
    import subprocess

    calls = []

    class Done:
        returncode = 0

    def fake_run(argv, **kw):
        calls.append(argv)
        (Path(kw["cwd"]) / "quickstart.h5").write_bytes(b"")
        return Done()

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(gallery, "FIGURES", tmp_path / "figures")
    reuse = tmp_path / "results"
    reuse.mkdir()
    (reuse / "quickstart.h5").symlink_to(tmp_path / "gone.h5")
    work = tmp_path / "work"
    work.mkdir()
    entry = next(e for e in gallery.GALLERY if e.name == "quickstart")
    written, _ = gallery.run_entry(entry, work, reuse)
    out = capsys.readouterr().out
    assert f"no results file {reuse / 'quickstart.h5'} (a broken link)" in out
    assert "running `memphase run quickstart`" in out and len(calls) == 1 and written == []
