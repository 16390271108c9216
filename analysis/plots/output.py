"""`write_figure`: a figure to <stem>.<fmt> files, backend-neutral (no pyplot). The bottom of
analysis.plots: every figure module writes through it."""

from __future__ import annotations

from pathlib import Path

from memphase.simulate.base.fs import make_dirs

__all__ = ["write_figure"]


def write_figure(fig, stem, formats, **savefig_kw) -> list[Path]:
    """Write `fig` as <stem>.<fmt> for each format (the folder is created); returns the paths.
    Backend-neutral (no pyplot): `memphase.analysis.plots.save` uses it too."""
    stem = Path(stem)
    make_dirs(stem.parent)
    out = []
    for fmt in formats:
        p = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(p, **savefig_kw)
        out.append(p)
    return out
