"""The official [ALD24] spectrum figure, reproduced: theory panel and empirical-score panel.

[ALD24] Achilli, Ventura, Silvestri, Pham, Raya, Krotov, Lucibello, Ambrogioni, *Losing
dimensions: geometric memorization in generative diffusion*, arXiv 2410.08727; official code
`plots_synthetic_theory.ipynb` (last cell, "Theory" and "Empirical Score" panels). What each panel
does, item by item, and how memphase compares: docs/conformance/ald24.md.

- Empirical-score panel (`official_empirical_panel`): d = 30, blocks (2, std 1), (5, std 0.3),
  normal std 0.01, N = 1000, the official seed-2 generator on the unit sphere
  (`linear_manifold(protocol="ald24")`); the score probed at the exact origin (no noise); the
  finite-difference estimator (`memphase.analysis.probes.official_fd_spectrum`: central
  differences along the coordinate axes, total step sqrt(var), absolute values, SVD) on the
  grid var = linspace(1, 0.01, 100) (the official loop runs it in reverse, smallest var first);
  the top 6 singular values dropped and the rest divided by their maximum (drawn from the third
  grid value up, as the official loop `range(2, 100)`). The exact Jacobian
  (`score_jacobian`) is computed beside it with the same post-processing. The official code
  averages 5 repetitions at the same deterministic point: identical, so one is computed.
- Theory panel (`official_theory_panel`): `memphase.physics.critical.jacobian_singular_values`
  with the official cell's *nominal* stds 1 (2), 0.3 (5), 1e-6 (rest), N = 1000, g = 0, on
  var = linspace(1, 0.005, 200); the top 7 dropped, the rest divided by their maximum.
- Reading rule: none is computed by the official code; curves are read by eye against vertical
  lines at ranks d - d1 - in_idx - 1 (red), d - d2 - in_idx - 1 (green) and
  d - d1 - d2 - in_idx - 1 (black), in_idx the number dropped.
"""

from __future__ import annotations

import numpy as np
import torch

from memphase.physics.critical import block_stds, jacobian_singular_values
from memphase.physics.schedules import make_schedule

__all__ = ["OFFICIAL_VAR_GRID", "OFFICIAL_THEORY_GRID", "official_empirical_panel",
           "official_theory_panel", "panel_guides", "plot_official_panels"]

#: official empirical-panel grid (`sigma_range = np.linspace(1, 0.01, 100)`; sigma is a variance)
OFFICIAL_VAR_GRID = np.linspace(1.0, 0.01, 100)
#: official theory-panel grid (`t_range = np.linspace(1, 0.005, 200)`)
OFFICIAL_THEORY_GRID = np.linspace(1.0, 0.005, 200)


def _post(sv, drop):
    cut = sv[..., drop:]
    return cut / np.maximum(cut.max(axis=-1, keepdims=True), 1e-300)


def official_empirical_panel(n: int = 1000, d: int = 30, block_dims=(2, 5), stds=(1.0, 0.3),
                             normal_std: float = 0.01, seed: int = 2, grid=None, drop: int = 6,
                             schedule: str = "ve") -> dict:
    """The official empirical-score panel and the exact Jacobian beside it (module docstring).

    Returns {"var": (T,) ascending (the official loop order), "fd_raw": (T, d) singular values of
    |J_fd|, "fd": (T, d - drop) official curves, "exact_raw": (T, d) exact Jacobian singular
    values (data units), "exact": (T, d - drop) with the same post-processing, "block_variance":
    the actual variances of the law (sphere), "sample_variance": the training set's variance
    along each coordinate, "seed", "drop"}. schedule: any memphase schedule gives the same numbers
    (the empirical score in data units depends on tau only); "ve" is the official one.
    """
    from memphase.analysis.dimensions import jacobian_data_units
    from memphase.analysis.probes import finite_difference_jacobian
    from memphase.simulate.data import linear_manifold
    from memphase.simulate.scores import EmpiricalScore

    grid = OFFICIAL_VAR_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    var = grid[::-1].copy()
    data = linear_manifold(n, d, [(block_dims[0], stds[0]), (block_dims[1], stds[1])],
                           normal_std=normal_std, normalize="sphere", seed=seed,
                           protocol="ald24")
    sch = make_schedule(schedule)
    score = EmpiricalScore(data, sch)
    origin = torch.zeros(1, d, dtype=torch.float64)
    fd_raw, ex_raw = np.empty((var.size, d)), np.empty((var.size, d))
    for i, v in enumerate(var):
        t = float(sch.time_of_tau(v))
        jfd = finite_difference_jacobian(score, origin, t)
        fd_raw[i] = np.linalg.svd(np.abs(jfd[0]), compute_uv=False)
        jex = jacobian_data_units(score, origin, t)[0].numpy()
        ex_raw[i] = np.linalg.svd(jex, compute_uv=False)
    return {"var": var, "fd_raw": fd_raw, "fd": _post(fd_raw, drop), "exact_raw": ex_raw,
            "exact": _post(ex_raw, drop), "block_variance": data.variances(),
            "sample_variance": data.x.numpy().var(axis=0), "seed": seed, "drop": drop,
            "n": n, "d": d, "block_dims": tuple(block_dims)}


def official_theory_panel(n: int = 1000, d: int = 30, block_dims=(2, 5), stds=(1.0, 0.3),
                          rest_std: float = 1e-6, grid=None, drop: int = 7) -> dict:
    """The official theory panel: [ALD24] predicted singular values with the official cell's
    nominal stds (rest 1e-6, g = 0), sorted descending, top `drop` dropped, max-normalized.
    Returns {"var": (T,) as the official grid, "raw": (T, d) sorted, "curves": (T, d - drop)}."""
    grid = OFFICIAL_THEORY_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    s = block_stds([(block_dims[0], stds[0]), (block_dims[1], stds[1])], d=d, rest_std=rest_std)
    raw = -np.sort(-jacobian_singular_values(grid, n, s, normalized=True), axis=1)
    return {"var": grid, "raw": raw, "curves": _post(raw, drop), "drop": drop}


def panel_guides(d: int, block_dims, drop: int) -> dict:
    """The official vertical guide lines (rank index after dropping): red d - d1 - drop - 1,
    green d - d2 - drop - 1, black d - d1 - d2 - drop - 1."""
    d1, d2 = block_dims
    return {"red": d - d1 - drop - 1, "green": d - d2 - drop - 1, "black": d - d1 - d2 - drop - 1}


def plot_official_panels(emp: dict, theory: dict, path, formats=("png",)):
    """Three panels: the official theory panel, the official empirical-score panel (finite
    differences at the origin) and the exact Jacobian with the same post-processing; colour =
    var (viridis, as the official figure), guide lines at the official ranks."""
    from pathlib import Path

    from memphase.analysis.plots import plt, save

    # one shared y axis labelled once (the three labels overlapped the neighbouring panels),
    # constrained layout keeps the colour bar clear of the last panel
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.0), sharey=True, layout="constrained")
    cmap = plt.get_cmap("viridis")
    # the official empirical panel draws the grid from its third value up (range(2, 100))
    panels = ((theory["curves"], theory["var"], theory["drop"],
               "theory (official cell, nominal stds)"),
              (emp["fd"][2:], emp["var"][2:], emp["drop"],
               f"empirical, finite differences (official), seed {emp['seed']}"),
              (emp["exact"][2:], emp["var"][2:], emp["drop"], "empirical, exact Jacobian"))
    for i, (a_, (curves, var, drop, title)) in enumerate(zip(ax, panels)):
        lo, hi = float(var.min()), float(var.max())
        for c, v in zip(curves, var):
            a_.plot(np.arange(c.size), c, color=cmap((v - lo) / (hi - lo)), alpha=0.5, lw=1)
        g = panel_guides(emp["d"], emp["block_dims"], drop)
        for col, x in g.items():
            a_.axvline(x, color={"red": "r", "green": "g", "black": "k"}[col], ls="--", lw=0.8)
        a_.set(xlim=(g["black"] - 3, curves.shape[1] - 1), ylim=(-0.05, 1.05),
               xlabel=f"ordered singular values (top {drop} dropped)")
        if i == 0:
            a_.set_ylabel("normalized singular values")
        a_.set_title(title, fontsize=9)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(float(emp["var"].min()),
                                                              float(emp["var"].max())))
    fig.colorbar(sm, ax=ax, label="var (tau)", shrink=0.9, pad=0.01)
    return save(fig, Path(path), formats)
