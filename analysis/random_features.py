"""Measurements on the [BUBM25] random-features model (the `random_features` job): tau_gen and
tau_mem read off the loss curves, and the distance between U's empirical spectrum and the theory.

[BUBM25] Bonnaire, Urfin, Biroli, Mézard, arXiv 2505.17638. Definitions (memphase's, stated in
docs/training_dynamics.md, "Random-features theory"; the paper's own text was not available here):

    tau_gen = first training time at which the test loss has made half of its drop from
              L_test(0) = 1 to its minimum over the recorded times;
    tau_mem = first training time at which the generalization gap L_test - L_train reaches half
              of its tau -> infinity value (gap of the minimizer A*);

both by `memphase.analysis.training_dynamics.crossing_step` (linear in log time between the two
recorded times that bracket the crossing).

Spectrum distance: Kolmogorov distance sup_lambda |F_emp(lambda) - F_theory(lambda)| on the theory
grid, F_theory from `memphase.physics.random_features.theory_cdf`.
"""

from __future__ import annotations

import math

import numpy as np

from .training_dynamics import crossing_step

__all__ = ["curve_timescales", "gap_crossing_times", "kolmogorov_distance", "empirical_cdf"]


def curve_timescales(times, train_loss, test_loss, gap_infinity: float) -> dict:
    """{'tau_gen', 'tau_mem', 'tau_mem_censored'} from loss curves at increasing positive times
    (module docstring). tau_mem_censored: the gap stays below half its limit up to the last time."""
    times = np.asarray(times, float)
    test, train = np.asarray(test_loss, float), np.asarray(train_loss, float)
    drop = test[0] - test
    best = np.max(drop)
    tau_gen = crossing_step(times, drop / best, 0.5)[0] if best > 0 else math.nan
    if not gap_infinity > 0:
        return {"tau_gen": tau_gen, "tau_mem": math.nan, "tau_mem_censored": False}
    tau_mem, cens = crossing_step(times, (test - train) / gap_infinity, 0.5)
    return {"tau_gen": tau_gen, "tau_mem": tau_mem, "tau_mem_censored": cens}


def gap_crossing_times(times, train_loss, test_loss, gap_infinity: float, fractions) -> np.ndarray:
    """Reading-rule variants of tau_mem: for each fraction f, the first time the generalization gap
    L_test - L_train reaches f x gap_infinity (`crossing_step`, linear in log time; inf when it
    never does, NaN when gap_infinity <= 0). f = 0.5 is memphase's tau_mem (`curve_timescales`);
    small f reads the onset of the gap, large f its completion."""
    fr = np.atleast_1d(np.asarray(fractions, float))
    if not gap_infinity > 0:
        return np.full(fr.size, math.nan)
    g = (np.asarray(test_loss, float) - np.asarray(train_loss, float)) / gap_infinity
    return np.array([crossing_step(np.asarray(times, float), g, f)[0] for f in fr])


def empirical_cdf(eigenvalues, lam) -> np.ndarray:
    """Fraction of eigenvalues <= lam, for each lam."""
    ev = np.sort(np.asarray(eigenvalues, float))
    return np.searchsorted(ev, np.asarray(lam, float), side="right") / ev.size


def kolmogorov_distance(eigenvalues, lam, cdf_theory) -> float:
    """sup over the grid of |F_emp - F_theory| (grid from `spectrum_grid`; eigenvalues below the
    grid's first point are counted in F_emp there, as the theory's unresolved mass is)."""
    return float(np.max(np.abs(empirical_cdf(eigenvalues, lam) - np.asarray(cdf_theory, float))))
