"""The Dataset of the [BDKOS25] regularization experiment (`memphase.simulate.experiments.
regularization`): measured fractions and distances per regularizer, the flow invariants of the
evaluated and calibration seeds, and the theory calibrated on the latter
(`regularization_theory`; Baptista et al., arXiv 2501.15785)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .common import fill_grid
from .regularization_setup import _official, _reference_sigma_end, calibration_seeds, network_tau_end
from .regularization_theory import power_law_exponent, prediction_halfwidth, tikhonov_distance_theory

__all__ = ["assemble"]


def _grid_of(cell_list, results, reg, axes, coords, keys):
    extra = (len(coords["train_steps"]),) if reg == "network" else ()
    pairs = [(c, r) for c, r in zip(cell_list, results) if c["regularizer"] == reg]
    return fill_grid(pairs, axes, coords, keys, extra)


def _attrs(units, long_name, **kw):
    return {"units": units, "long_name": long_name, **kw}


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g, ms = cfg["grid"], cfg["measure"]
    regs, tol, fit_max = g["regularizer"], ms["collapse_tol"], ms["fit_max_strength"]
    seeds = list(g["seeds"])
    coords = {"seed": ("seed", np.asarray(seeds), _attrs(
        "1", "seed: training set, network init/DSM batches; sampling noise seed 10000 + seed"))}
    data_vars = {}
    lookup = {"c": g["c"], "tau_floor": g["tau_floor"], "lambda": g["lambda"], "width": g["width"],
              "train_steps": sorted(g["train_steps"]), "seed": seeds}
    calib_k = None
    if "tikhonov" in regs or "network" in regs:
        calib = calibration_seeds(cfg)
        ref = {c["seed"]: r for c, r in zip(cell_list, results) if c["regularizer"] == "reference"}
        flow = np.stack([np.asarray(ref[s]["flow_ratio"], float) for s in seeds])
        calib_flow = np.stack([np.asarray(ref[s]["flow_ratio"], float) for s in calib])
        calib_k = calib_flow.ravel()
        coords["sample"] = ("sample", np.arange(flow.shape[1]), _attrs("1", "generated sample index"))
        coords["calibration_seed"] = ("calibration_seed", np.asarray(calib), _attrs(
            "1", "seed of a c = 0 calibration run (training set, sampling noise 10000 + seed); "
                 "disjoint from seed"))
        sigma_end = _reference_sigma_end(cfg)
        data_vars["flow_ratio"] = (("seed", "sample"), flow, _attrs(
            "1", "c = 0 flow invariant K = |x - y_nn| / sigma at the end of the c = 0 run "
                 "(before Tweedie) of the evaluated seeds (diagnostic; not used by the theory)",
            sigma_end=sigma_end))
        data_vars["calibration_flow_ratio"] = (("calibration_seed", "sample"), calib_flow, _attrs(
            "1", "c = 0 flow invariant K of the calibration runs: the theory's only input",
            sigma_end=sigma_end))
        data_vars["reference_collapse_fraction"] = (("seed",), np.array(
            [ref[s]["collapse_fraction"] for s in seeds]), _attrs(
            "1", "collapse fraction of the empirical score (c = 0)"))
    data_vars["distance_exponent_theory"] = ((), 0.5, _attrs(
        "1", "median distance ~ strength^(1/2) for Tikhonov c and network lambda [BDKOS25]"))

    def theory(strengths):
        """(median, fraction) over strengths from the pooled K of the calibration seeds only."""
        return tikhonov_distance_theory(strengths, calib_k, tol)

    def theory_halfwidth(strengths, frac):
        """`prediction_halfwidth` from each calibration seed's own theory fraction."""
        per_seed = np.stack([tikhonov_distance_theory(strengths, calib_flow[j], tol)[1]
                             for j in range(calib_flow.shape[0])], axis=-1)
        return prediction_halfwidth(per_seed, frac, calib_flow.shape[1])

    calib_note = dict(calibration="K pooled over the calibration_seed runs (disjoint from seed)")

    if "tikhonov" in regs:
        coords["c"] = ("c", np.asarray(g["c"], float), _attrs(
            "data variance", "Tikhonov strength c of s_c = (xhat - x) / (sigma^2 + c)"))
        out = _grid_of(cell_list, results, "tikhonov", ("c", "seed"), lookup,
                       ("collapse_fraction", "median_distance"))
        med_th, frac_th = theory(g["c"])
        data_vars.update({
            "tikhonov_collapse_fraction": (("c", "seed"), out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (Tikhonov)")),
            "tikhonov_median_distance": (("c", "seed"), out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (Tikhonov)")),
            "tikhonov_collapse_fraction_theory": (("c",), frac_th, _attrs(
                "1", "P(sqrt(c) K < tol): small-c theory from the c = 0 flow invariant",
                **calib_note)),
            "tikhonov_collapse_fraction_theory_halfwidth": (("c",), theory_halfwidth(g["c"], frac_th),
                                                            _attrs(
                "1", "95% half-width for one evaluated seed around the theory: 1.96 s sqrt(1 + 1/J), "
                     "s the seed-to-seed std of the J calibration seeds' fractions (floored at the "
                     "binomial std); `prediction_halfwidth`", **calib_note)),
            "tikhonov_median_distance_theory": (("c",), med_th, _attrs(
                "data units", "sqrt(c) median K: small-c theory from the c = 0 flow invariant",
                **calib_note)),
            "tikhonov_distance_exponent": (("seed",), np.array([power_law_exponent(
                g["c"], out["median_distance"][:, i], fit_max) for i in range(len(seeds))]), _attrs(
                "1", "fitted exponent a of median distance ~ c^a", fit_range=f"0 < c <= {fit_max:g}")),
        })
    if "floor" in regs:
        coords["tau_floor"] = ("tau_floor", np.asarray(g["tau_floor"], float), _attrs(
            "1", "floor of the unnormalized mixture mass, w = e^l / max(sum e^l, tau_floor)"))
        out = _grid_of(cell_list, results, "floor", ("tau_floor", "seed"), lookup,
                       ("collapse_fraction", "median_distance"))
        data_vars.update({
            "floor_collapse_fraction": (("tau_floor", "seed"), out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (floor)")),
            "floor_median_distance": (("tau_floor", "seed"), out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (floor)")),
        })
    if "network" in regs:
        lam = np.asarray(g["lambda"], float)
        coords["lambda"] = ("lambda", lam, _attrs(
            "data variance", "Tikhonov penalty lambda of the DSM loss (minimizer: c = lambda)"))
        coords["width"] = ("width", np.asarray(g["width"]), _attrs("1", "network width"))
        coords["train_steps"] = ("train_steps", np.asarray(lookup["train_steps"]), _attrs(
            "1", "optimizer steps at the sampled checkpoint"))
        axes = ("lambda", "width", "seed")
        out = _grid_of(cell_list, results, "network", axes, lookup,
                       ("collapse_fraction", "median_distance", "final_loss"))
        dims = axes + ("train_steps",)
        med_th, frac_th = theory(lam)
        expo = np.apply_along_axis(lambda y: power_law_exponent(lam, y), 0,
                                   out["median_distance"])
        data_vars.update({
            "network_collapse_fraction": (dims, out["collapse_fraction"], _attrs(
                "1", "fraction of samples within collapse_tol of a training point (network)")),
            "network_median_distance": (dims, out["median_distance"], _attrs(
                "data units", "median distance of samples to the nearest training point (network)")),
            "network_final_loss": (dims, out["final_loss"], _attrs(
                "1", "mean DSM loss (eq. L, per dimension) over the last 10% of steps")),
            "network_tau_end": (("lambda",), np.array([network_tau_end(cfg, v) for v in lam]), _attrs(
                "data variance", "smallest tau trained and sampled: max(tau_0, ratio lambda)")),
            "network_collapse_fraction_theory": (("lambda",), frac_th, _attrs(
                "1", "Tikhonov theory at c = lambda (infinite capacity)", **calib_note)),
            "network_median_distance_theory": (("lambda",), med_th, _attrs(
                "data units", "Tikhonov theory sqrt(lambda) median K (infinite capacity)",
                **calib_note)),
            "network_distance_exponent": (("width", "seed", "train_steps"), expo, _attrs(
                "1", "fitted exponent a of median distance ~ lambda^a (1/2 at infinite capacity)",
                fit_range="all lambda > 0 of the grid")),
        })
    sp, dc, nc = cfg["sampler"], cfg["data"], cfg["network"]
    data_str = f"[BDKOS25] N = {dc['n_train']} points of N(0, {dc['variance']:g} I_{dc['d']}), "
    if dc["generator"] == "bdkos25":
        data_str += "the official training set (numpy legacy seed 1) for the evaluated seeds, "
    if sp["latents"] == "bdkos25":
        data_str += "the official notebooks' latents (torch seed 0), "
    method = (f"RK45 (rtol = atol = {sp['tol']:g})" if sp["method"] == "rk45"
              else f"Heun ({sp['steps']} steps uniform in log sigma)")
    if _official(cfg):
        setting = (data_str + "official VE g = 10^t, sigma^2 = (10^{2t} - 1)/(2 ln 10), "
                   f"probability-flow ODE by {method} from t = 1 (x = sigma(1) z) to t = 0 "
                   f"(Tikhonov c > 0) or t = {sp['t_end']:g} (c = 0, floor), no Tweedie")
    else:
        setting = (data_str + f"VE sigma = 10^t, probability-flow ODE ({method}) from sigma = "
                   f"{sp['sigma_start']:g} to {sp['sigma_end']:g}, Tweedie-denoised")
    net_sched = (f"trained (t ~ U) and sampled on the VP schedule beta 0.001..3 down to t = "
                 f"{nc['t_end']:g}" if nc["schedule"] == "linear_vp"
                 else "trained (log tau) and sampled on the sampler's schedule")
    extra = {} if calib_k is None else {"calibration_seeds": np.asarray(calibration_seeds(cfg),
                                                                         dtype=np.int64)}
    return xr.Dataset(data_vars, coords=coords, attrs={**extra,
        "setting": setting,
        "schedule": sp["schedule"],
        "data_generator": dc["generator"],
        "latents": sp["latents"],
        "collapse_tol": tol,
        "n_samples": sp["n_samples"],
        "network": f"{nc['kind']} depth {nc['depth']}, Adam lr {nc['lr']:g}, full batch x "
                   f"{nc['noise_draws']} noise draws, EMA {nc['ema_decay']:g}, {nc['dtype']}, "
                   + net_sched,
        "theory": "c = 0 collapses every sample; distance sqrt(c) K_i with K_i the c = 0 flow "
                  "invariant (module docstring of memphase.simulate.experiments.regularization), "
                  "calibrated on the calibration_seed runs, disjoint from the evaluated seeds",
    })
