"""Result assembly of the geometric-memorization experiment [ALD24] (Achilli et al., arXiv
2410.08727): the per-cell measurements gathered into one labelled Dataset (closed-form scores over
(score, N, d, std_ratio, seed, ...), learned scores as learned_* per training checkpoint), both
theories beside them (`geometric_theory.block_theory`) and the lost directions at tau_phase."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .geometric_grid import CLOSED_FORM, _n_table, size_axis, taus
from .geometric_theory import (ANCHOR_PROTOCOL, ANCHORS, BLOCKS, SIGNATURES, block_theory,
                               block_theory_variances, data_protocol, is_digits)
# -- assembly -----------------------------------------------------------------------------------
def _attrs(long_name, units):
    return {"long_name": long_name, "units": units}



MEASURED = {  # name -> (trailing dims, long name, units); every one per anchor
    "kept_fraction": (("anchor", "tau", "block"), "fraction of the block's directions kept "
                      "(1 + tau lambda >= threshold), mean over points", "1"),
    "eigenvalue_abs": (("anchor", "tau", "block"), "mean |eigenvalue| of the data-unit score "
                       "Jacobian in the block", "1/data variance"),
    "critical_tau_kept": (("anchor", "block"), "measured tau below which the block's kept "
                          "fraction is under half (of its peak when relative_level)",
                          "data variance"),
    "kept_fraction_by_threshold": (("anchor", "threshold", "tau", "block"),
                                   "kept fraction at each sensitivity threshold", "1"),
    "critical_tau_by_threshold": (("anchor", "threshold", "block"),
                                  "measured critical tau (kept-fraction rule) at each sensitivity "
                                  "threshold", "data variance"),
    "critical_tau": (("anchor", "signature", "block"), "largest tau at which more than half of "
                     "the block's (point, direction) pairs carry the signature (inf: above the "
                     "grid, nan: never)", "data variance"),
    "signature_fraction": (("anchor", "signature", "tau", "block"), "fraction of the block's "
                           "(point, direction) pairs carrying the signature", "1"),
    "variance_ratio": (("anchor", "tau", "block"), "median posterior-variance ratio rho = "
                       "u^T Cov[y|x] u / (tau v_u / (v_u + tau)) over points and directions "
                       "(1: population score)", "1"),
    "singular_value": (("anchor", "tau", "rank"), "exact Jacobian singular values divided by "
                       "their maximum, mean over points", "1"),
    "probe_singular_value": (("anchor", "tau", "probe_rank"), "official [ALD24] probe "
                             "estimator (first dropped, max-normalized), mean over probe points",
                             "1"),
    "law_variance_ratio": (("anchor", "tau", "block"), "median rho_law = u^T Cov_w[y|x] u / "
                           "u^T Cov_law[y|x] u over the resolved points and directions (the same "
                           "law's posterior; 1 as N -> infinity; measure.law_samples)", "1"),
    "critical_tau_law": (("anchor", "signature", "block"), "largest tau at which more than half "
                         "of the block's resolved pairs carry the signature of rho_law "
                         "(measure.law_samples)", "data variance"),
    "fd_singular_value": (("anchor", "tau", "rank"), "official [ALD24] empirical-panel estimator: "
                          "singular values of |J_fd| (central differences, step sqrt(tau)), raw, "
                          "mean over points (measure.fd_spectrum)", "1/data variance"),
}
TRAINING = {  # per checkpoint (train_step) or per training run
    "train_loss": (("train_step",), "mean DSM loss over the 50 steps before the checkpoint", "1"),
    "train_seconds": ((), "wall time of the whole training run", "s"),
    "n_parameters": ((), "trainable parameters of the network", "1"),
}


def _gather(spec, lead, sizes, pairs, index_of) -> dict:
    """{name: (dims, array, attrs)}: each result's arrays placed at index_of(cell) in arrays of
    dims lead + the trailing dims of spec (nan where no cell)."""
    out = {}
    for k, (trail, name, units) in spec.items():
        dims = lead + trail
        arr = np.full(tuple(sizes[a] for a in dims), np.nan)
        for cell, res in pairs:  # trailing dims of varying length (rank ~ d) fill a prefix
            val = np.asarray(res[k])
            arr[index_of(cell) + tuple(slice(0, m) for m in val.shape)] = val
        out[k] = (dims, arr, _attrs(name, units))
    return out


def _theory_variables(cfg, axis, grid) -> dict:
    """Both theories per (N, d, std_ratio), from `block_theory`."""
    g = cfg["grid"]
    n_tab = _n_table(cfg)
    shape = (len(g[axis]), len(g["d"]), len(g["std_ratio"]))
    one = [[[block_theory(cfg, int(n_tab[i, j]), d, r, grid) for r in g["std_ratio"]]
            for j, d in enumerate(g["d"])] for i in range(shape[0])]
    stack = lambda k: np.array([[[c[k] for c in row] for row in plane] for plane in one])
    td = (axis, "d", "std_ratio")
    return {
        "critical_tau_theory": (td + ("block",), stack("tau_ald"), _attrs(
            "[ALD24] critical tau of the block with the actual variances "
            "(memphase.physics.critical.subspace_collapse_tau)", "data variance")),
        "critical_tau_rem": (td, stack("tau_rem"), _attrs(
            "REM collapse tau_C on the actual spectrum, one tau for every block "
            "(memphase.physics.critical.collapse_tau)", "data variance")),
        "singular_value_theory": (td + ("tau", "block"), stack("sv_ald"), _attrs(
            "[ALD24] predicted Jacobian singular value of the block", "1/data variance")),
        "singular_value_theory_normalized": (td + ("tau", "block"), stack("sv_ald_norm"), _attrs(
            "official [ALD24] theory panel: predicted singular value of the block divided by the "
            "largest predicted one at that tau", "1")),
        "singular_value_rem": (td + ("tau", "block"), stack("sv_rem"), _attrs(
            "REM picture: 1/(tau + s^2) above tau_C, 1/tau below", "1/data variance")),
        "kept_fraction_theory": (td + ("tau", "block"), stack("kept_ald"), _attrs(
            "[ALD24] predicted kept fraction (tau >= tau_c and s^2/(tau+s^2) >= threshold)", "1")),
        "kept_fraction_rem": (td + ("tau", "block"), stack("kept_rem"), _attrs(
            "REM predicted kept fraction (tau >= tau_C and s^2/(tau+s^2) >= threshold)", "1")),
    }


def assemble(cfg, cell_list, results) -> xr.Dataset:
    """One Dataset: closed-form scores over (score, N, d, std_ratio, seed, ...), learned scores as
    learned_* over (N, d, std_ratio, seed, width, train_step, ...), theory over (N, d, std_ratio,
    ...), and the lost directions at tau_phase (lost_dims*), N given by n_train or alpha."""
    g, ms, dc = cfg["grid"], cfg["measure"], cfg["data"]
    axis = size_axis(cfg)
    grid = taus(cfg)
    closed = [s for s in g["score"] if s in CLOSED_FORM]
    steps = sorted(set(cfg["train"]["steps"]))
    values = {axis: g[axis], "d": g["d"], "std_ratio": g["std_ratio"], "seed": g["seeds"],
              "width": g["width"], "train_step": steps, "score": closed}
    sizes = {k: len(v) for k, v in values.items()}
    sizes.update(tau=grid.size, block=BLOCKS.size, threshold=len(ms["thresholds"]),
                 anchor=len(ANCHORS), signature=len(SIGNATURES), rank=max(g["d"]),
                 probe_rank=max(g["d"]) - 1)
    common = (axis, "d", "std_ratio", "seed")
    where = lambda c: tuple(list(values[a]).index(c[a]) for a in common)
    pairs = list(zip(cell_list, results))

    data_vars = {}
    if closed:
        data_vars.update(_gather(MEASURED, ("score",) + common, sizes,
                                 [(c, r) for c, r in pairs if c["score"] in closed],
                                 lambda c: (closed.index(c["score"]),) + where(c)))
    if "learned" in g["score"]:
        learned = [(c, r) for c, r in pairs if c["score"] == "learned"]
        per_run = lambda c: where(c) + (g["width"].index(c["width"]),)
        checkpoint_spec = {k: (("train_step",) + trail, f"learned score: {name}", units)
                           for k, (trail, name, units) in MEASURED.items()}
        for k, v in {**_gather(checkpoint_spec, common + ("width",), sizes, learned, per_run),
                     **_gather(TRAINING, common + ("width",), sizes, learned, per_run)}.items():
            data_vars["learned_" + k] = v
    data_vars.update(_theory_variables(cfg, axis, grid))
    ds = xr.Dataset(data_vars, coords=_coords(cfg, axis, values, closed, grid, _n_table(cfg)))
    _add_phase_variables(ds, ms["tau_phase"])
    ds.attrs.update({
        "source": "[ALD24] geometric memorization; memphase.simulate.experiments.geometric",
        "threshold": ms["threshold"], "threshold_rule": "lost when 1 + tau * lambda < threshold",
        "tau_phase": ms["tau_phase"], "relative_level": int(ms["relative_level"]),
        "size_axis": axis, "std": dc["std"], "normal_std": dc["normal_std"],
        "normalize": dc["normalize"] if not is_digits(cfg) else "none",
        "data_model": dc["model"],
        **protocol_attrs(cfg),
        "variances": "every theory uses the actual per-direction variances of the law "
                     "(block_variance), not the nominal std^2",
        "blocks": f"dims {dc['block_dims']}, std {dc['std']} and std * std_ratio",
        "seed_use": "seed: training set, anchor points and noise of the Jacobian sweep, network "
                    "initialization and DSM training generator",
    })
    return ds


def protocol_attrs(cfg) -> dict:
    """Which protocol produced the result, item by item (docs/conformance/ald24.md): the data
    generator (`geometric_theory.data_protocol`), the tau grid, the estimators, the schedule, and
    a one-line summary "protocol": "ald24" when every item is the official one, else "mixed"
    or "memphase"."""
    dc, ms = cfg["data"], cfg["measure"]
    gen = data_protocol(cfg)
    official_grid = (ms["tau_spacing"] == "linear" and np.isclose(ms["tau_min"], 0.01)
                     and np.isclose(ms["tau_max"], 1.0) and ms["n_tau"] == 100)
    items = {"data": gen == "ald24", "grid": official_grid, "anchor": "origin" in ms["anchors"],
             "estimator": bool(ms["fd_spectrum"])}
    summary = ("ald24" if all(items.values()) else
               "memphase" if not any(items.values()) else
               "mixed: official " + ", ".join(k for k, v in items.items() if v)
               + "; memphase " + ", ".join(k for k, v in items.items() if not v))
    return {
        "protocol": summary,
        "data_protocol": gen,
        "data_protocol_key": dc["protocol"] if not is_digits(cfg) else "n/a",
        "tau_spacing": ms["tau_spacing"],
        "tau_grid": (f"{ms['tau_spacing']}({ms['tau_min']:g}, {ms['tau_max']:g}, {ms['n_tau']}) "
                     f"plus tau_phase; " + ("the official [ALD24] grid" if official_grid
                                            else "memphase's variant")),
        "estimators": "exact Jacobian (singular_value) and " + (
            "the official [ALD24] finite differences (fd_singular_value)" if ms["fd_spectrum"]
            else "no finite differences (measure.fd_spectrum = false)"),
        "schedule": ms["schedule"],
    }


def _coords(cfg, axis, vals, closed, grid, n_tab) -> dict:
    g, dc = cfg["grid"], cfg["data"]
    d = np.asarray(g["d"])
    stds = np.array([[dc["normal_std"], dc["std"], dc["std"] * r] for r in g["std_ratio"]])
    if is_digits(cfg):  # the std of each band's middle direction at the first d
        stds = np.sqrt([block_theory_variances(cfg, int(g["d"][0]), r) for r in g["std_ratio"]])
    k1, k2 = dc["block_dims"]
    coords = {
        "d": ("d", d, _attrs("ambient dimension", "1")),
        "std_ratio": ("std_ratio", np.asarray(g["std_ratio"]), _attrs("std block 1 / std block 0", "1")),
        "seed": ("seed", np.asarray(g["seeds"]), _attrs("random seed", "1")),
        "tau": ("tau", grid, _attrs("data-scale noise variance sigma^2/m^2", "data variance")),
        "block": ("block", BLOCKS, _attrs("-1 normal space, 0 first block, 1 second block", "1")),
        "block_dim": (("d", "block"), np.array([[dd - k1 - k2, k1, k2] for dd in d]),
                      _attrs("directions in the block", "1")),
        "block_std": (("std_ratio", "block"), stds, _attrs("data std along the block", "data std")),
        "block_variance": (("d", "std_ratio", "block"), np.array(
            [[block_theory_variances(cfg, int(dd), r) for r in g["std_ratio"]] for dd in d]),
            _attrs("actual population variance along the block (after normalization)",
                   "data variance")),
        "anchor": ("anchor", list(ANCHORS), _attrs(
            "where the Jacobian is probed: origin: the exact data mean, no noise (official [ALD24] "
            "panel); training point / fresh sample / data mean, plus noise sqrt(tau) z (memphase)",
            "1")),
        "anchor_protocol": ("anchor", [ANCHOR_PROTOCOL[a] for a in ANCHORS], _attrs(
            "protocol of the anchor: ald24 (the official one) or memphase (a variant)", "1")),
        "signature": ("signature", list(SIGNATURES), _attrs(
            "signature of a lost direction: collapse rho < 1/2, excess rho > 2", "1")),
        "rank": ("rank", np.arange(max(g["d"])), _attrs("singular value index, descending", "1")),
        "probe_rank": ("probe_rank", np.arange(max(g["d"]) - 1), _attrs(
            "probe singular value index after dropping the first", "1")),
        "threshold": ("threshold", np.asarray(cfg["measure"]["thresholds"]),
                      _attrs("sensitivity threshold on r = 1 + tau lambda", "1")),
    }
    if axis == "n_train":
        coords["n_train"] = ("n_train", np.asarray(g["n_train"]), _attrs("training-set size N", "1"))
        coords["alpha"] = (("n_train", "d"), np.log(n_tab) / d, _attrs("alpha = log N / d", "1"))
    else:
        coords["alpha"] = ("alpha", np.asarray(g["alpha"]), _attrs("alpha = log N / d", "1"))
        coords["n_train"] = (("alpha", "d"), n_tab, _attrs("training-set size N = round(e^(alpha d))", "1"))
    if closed:
        coords["score"] = ("score", closed, _attrs("score function", "1"))
    if "learned" in g["score"]:
        coords["width"] = ("width", np.asarray(g["width"]), _attrs("network width", "1"))
        coords["train_step"] = ("train_step", np.asarray(vals["train_step"]),
                                _attrs("training steps at the checkpoint", "1"))
    return coords


def _add_phase_variables(ds: xr.Dataset, tau_phase: float) -> None:
    """Lost directions per block at tau_phase: measured (closed-form and learned) and both
    theories, k_b (1 - kept fraction)."""
    k = ds["block_dim"]
    at = dict(tau=tau_phase)
    for src, dst, name in (("kept_fraction", "lost_dims", "measured"),
                           ("learned_kept_fraction", "learned_lost_dims", "learned score, measured"),
                           ("kept_fraction_theory", "lost_dims_theory", "[ALD24] predicted"),
                           ("kept_fraction_rem", "lost_dims_rem", "REM predicted")):
        if src in ds:
            kept = ds[src].sel(**at, method="nearest").drop_vars("tau")
            ds[dst] = (k * (1.0 - kept)).transpose(*kept.dims)
            ds[dst].attrs = _attrs(f"{name} directions lost per block at tau = tau_phase "
                                   f"({tau_phase:g})", "count")
