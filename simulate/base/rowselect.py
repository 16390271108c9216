"""Row-wise top-k of a (B, C) block, vectorized for the CPU.

torch's max/argmax and topk along a row are not vectorized on the CPU (topk ~10x a plain min
pass). The block is viewed as (B, C/g, g) strips of g contiguous columns: a vertical reduction over
the strips (vectorized along the g columns) gives the extreme value of each residue class j mod g.
The k extreme entries of a row lie in the k residue classes with the most extreme class values (a
class holding one of them has its class value beyond the k-th entry, and at most k entries are),
each among its own k extreme entries. So: a top-k of the (B, g) class values, a gather of those
classes' C/g entries, and a top-k of the (B, k C/g) gathered entries; for k = 1 a max/argmax in
place of each top-k (faster still).

Used by the empirical-score kernel (nearest training point, `memphase.simulate.scores.kernel`) and by the
nearest-neighbour search (`memphase.analysis.memorization.nearest_neighbors`).
"""

from __future__ import annotations

import torch

__all__ = ["row_topk", "STRIP"]

#: strip width g; blocks whose width is a multiple of it (and >= 4 strips) take the strip path
STRIP = 32


def row_topk(v: torch.Tensor, k: int, largest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest (or smallest) entries of each row of v (B, C) and their columns, (B, k) each,
    in no particular order; equal to `torch.topk(v, k, dim=1, largest=largest)` up to the order and
    the choice among ties. Falls back to torch.topk off the CPU, for non-contiguous blocks, widths
    that are not whole strips, and k > STRIP."""
    b, c = v.shape
    g = STRIP
    if c % g or c < 4 * g or k > g or v.device.type != "cpu" or not v.is_contiguous():
        return torch.topk(v, k, dim=1, largest=largest)
    strips = v.view(b, c // g, g)
    cls_val = strips.amax(dim=1) if largest else strips.amin(dim=1)         # (B, g)
    if k == 1:
        ext, arg = (torch.max, torch.argmax) if largest else (torch.min, torch.argmin)
        val, j = ext(cls_val, dim=1)
        col = torch.gather(strips, 2, j.view(b, 1, 1).expand(b, c // g, 1)).view(b, c // g)
        return val[:, None], (arg(col, dim=1) * g + j)[:, None]
    _, cls = torch.topk(cls_val, k, dim=1, largest=largest)                 # (B, k) classes
    cand = torch.gather(strips, 2, cls[:, None, :].expand(b, c // g, k))    # (B, C/g, k)
    val, pos = torch.topk(cand.reshape(b, -1), k, dim=1, largest=largest)   # pos = strip*k + j
    return val, (pos // k) * g + torch.gather(cls, 1, pos % k)
