"""Extraction of tau_gen / tau_mem and the power-law fit [BUBM25] on curves whose answer is known
by construction, and the generalization measures against closed forms."""

import math

import numpy as np
import pytest
import torch
import xarray as xr

from memphase.analysis.generalization import gaussian_moment_kl, relative_score_error, sliced_wasserstein
from memphase.analysis.training_dynamics import (crossing_step, extract_times, first_within_best,
                                        fit_exponents, power_law_fit, training_dynamics_summary)
from memphase.physics.schedules import make_schedule
from memphase.simulate.learning.checkpoints import log_checkpoints
from memphase.simulate.scores import EmpiricalScore, GaussianScore

STEPS = np.asarray(log_checkpoints(100, 100_000, 25), float)


def sigmoid_ratio(steps, tau, width=0.35):
    """A memorization-ratio curve that is exactly 1/2 at step tau: logistic in log(step)."""
    return 1.0 / (1.0 + np.exp(-(np.log(steps) - math.log(tau)) / width))


def test_crossing_is_exact_for_a_curve_linear_in_log_steps():
    """r(k) = (log k - log 100) / (log 1e5 - log 100): linear in log k, so the log-linear
    interpolation returns the exact crossing of any threshold."""
    r = (np.log(STEPS) - math.log(100)) / (math.log(1e5) - math.log(100))
    for thr in (0.1, 0.5, 0.77):
        tau, cens = crossing_step(STEPS, r, thr)
        assert not cens
        assert tau == pytest.approx(100 * 1000 ** thr, rel=1e-9)


def test_crossing_censoring_and_edges():
    r = sigmoid_ratio(STEPS, 3e6)          # crossing far beyond the last checkpoint
    assert r.max() < 0.5
    assert crossing_step(STEPS, r) == (math.inf, True)
    assert crossing_step(STEPS, np.full(STEPS.shape, 0.9)) == (100.0, False)  # already above
    tau, cens = crossing_step(STEPS, np.where(STEPS < 1000, np.nan, 1.0))
    assert math.isnan(tau) and not cens
    with pytest.raises(ValueError, match="increasing"):
        crossing_step([10, 5], [0, 1])


def test_quality_within_tolerance_of_its_best():
    """q = 0.1 + exp(-k / 2000) (best 0.1 + e^-50 at the end): the first checkpoint with q <=
    1.2 x best is the first with exp(-k/2000) <= 0.02 + 1.2 e^-50, i.e. k >= 2000 ln 50."""
    q = 0.1 + np.exp(-STEPS / 2000)
    expect = STEPS[np.flatnonzero(STEPS >= 2000 * math.log(50) * (1 - 1e-9))[0]]
    assert first_within_best(STEPS, q, 0.2) == expect
    # a quality that gets worse again after its best (memorization) keeps the same tau_gen
    q2 = q + np.where(STEPS > 30_000, (STEPS / 30_000) - 1, 0.0)
    assert first_within_best(STEPS, q2, 0.2) == expect
    with pytest.raises(ValueError, match="tolerance"):
        first_within_best(STEPS, q, -0.1)


def synthetic_dataset(a=1.0, c=40.0, tau_gen=800.0, n=(32, 64, 128, 256, 512, 1024), seeds=3,
                      widths=(64,)):
    """Curves built so that tau_mem(N, seed) = c N^a x (1 + 0.1 (seed - 1)) exactly (the ratio is
    logistic in log steps through 1/2 there) and the score error is 0.05 + exp(-k / tau_g0)."""
    n = np.asarray(n)
    shape = (len(widths), len(n), seeds, len(STEPS))
    ratio, qual = np.zeros(shape), np.zeros(shape)
    truth = np.zeros(shape[:-1])
    for w in range(len(widths)):
        for i, nn in enumerate(n):
            for s in range(seeds):
                t = c * nn ** a * (1 + 0.1 * (s - 1)) * (1 + w)
                truth[w, i, s] = t
                ratio[w, i, s] = sigmoid_ratio(STEPS, t)
                qual[w, i, s] = 0.05 + np.exp(-STEPS / tau_gen)
    dims = ("width", "n_train", "seed", "train_step")
    coords = {"width": list(widths), "n_train": n, "seed": np.arange(seeds), "train_step": STEPS}
    ds = xr.Dataset({"memorization_ratio": (dims, ratio), "score_error_population": (dims, qual)},
                    coords=coords)
    return ds, truth


def test_extraction_recovers_constructed_times_and_exponent():
    """Known by construction: tau_mem = c N^a (seed factor), tau_gen = first checkpoint within
    20% of 0.05 (independent of N); the fit returns a = 1 for a = 1 and a = 0.6 for a = 0.6, and
    tau_gen's exponent is 0; width doubles every tau_mem (same exponent)."""
    for a in (1.0, 0.6):
        ds, truth = synthetic_dataset(a=a, widths=(64, 128))
        out = training_dynamics_summary(ds)
        fin = np.isfinite(out["tau_mem"].values)
        # log-linear interpolation of a logistic in log k: within 2% between checkpoints
        np.testing.assert_allclose(out["tau_mem"].values[fin], truth[fin], rtol=0.02)
        assert np.all(fin == (truth < STEPS[-1]))
        assert np.all(out["tau_mem_censored"].values == ~fin)
        np.testing.assert_allclose(out["tau_mem_exponent"].values, a, atol=0.01)
        lo, hi = out["tau_mem_exponent_ci_low"].values, out["tau_mem_exponent_ci_high"].values
        assert np.all(lo <= out["tau_mem_exponent"].values + 1e-12)
        assert np.all(hi >= out["tau_mem_exponent"].values - 1e-12)
        expect_gen = STEPS[np.flatnonzero(np.exp(-STEPS / 800.0) <= 0.01)[0]]
        assert np.all(out["tau_gen"].values == expect_gen)
        assert not out["tau_gen_censored"].values.any()
        np.testing.assert_allclose(out["tau_gen_exponent"].values, 0.0, atol=1e-12)
        ratio_w = out["tau_mem"].sel(width=128) / out["tau_mem"].sel(width=64)
        np.testing.assert_allclose(ratio_w.values[np.isfinite(ratio_w.values)], 2.0, rtol=0.03)


def test_censored_n_leave_the_fit_and_are_flagged():
    """c = 200, a = 1 (seed factors 0.9, 1, 1.1): N = 1024 needs >= 184320 steps (> 1e5,
    censored for every seed), N = 512 needs 92160, 102400, 112640 (censored for two seeds):
    both N are left out, the fit uses the 4 others."""
    ds, truth = synthetic_dataset(a=1.0, c=200.0)
    out = extract_times(ds)
    cens = out["tau_mem_censored"].squeeze("width")
    assert bool(cens.sel(n_train=1024).all())
    assert cens.sel(n_train=512).values.tolist() == [False, True, True]
    assert np.isinf(out["tau_mem"].sel(n_train=1024)).all()
    # a quality already at its best at the first checkpoint: tau_gen unresolved, flagged
    flat = extract_times(ds.assign(score_error_population=ds["score_error_population"] * 0 + 1))
    assert (flat["tau_gen"] == STEPS[0]).all() and flat["tau_gen_censored"].all()
    assert not out["tau_gen_censored"].any()
    fit = fit_exponents(out["tau_mem"], "tau_mem").squeeze("width")
    assert int(fit["tau_mem_exponent_n_points"]) == 4
    assert float(fit["tau_mem_exponent"]) == pytest.approx(1.0, abs=0.01)
    assert "bootstrap" in fit["tau_mem_exponent"].attrs["interval_method"]


def test_power_law_fit_interval_covers_noisy_truth_and_one_seed_fallback(rng):
    """log tau = log 3 + 0.8 log N + noise (sd 0.15) over 6 seeds: the 95% seed-bootstrap
    interval contains 0.8; with one seed the Student-t interval of the slope is used."""
    n = np.array([32, 64, 128, 256, 512, 1024])
    tau = 3 * n[:, None] ** 0.8 * np.exp(0.15 * rng.standard_normal((6, 6)))
    r = power_law_fit(n, tau)
    assert r["ci_low"] < 0.8 < r["ci_high"] and r["n_points"] == 6
    assert abs(r["exponent"] - 0.8) < 0.15
    one = power_law_fit(n, tau[:, 0])
    assert one["ci_low"] < one["exponent"] < one["ci_high"] and "Student" in one["method"]
    none = power_law_fit(n, np.full((6, 2), np.inf))
    assert math.isnan(none["exponent"]) and none["n_points"] == 0


def test_score_error_population_vs_empirical_and_zero_for_itself():
    """Relative error of a score against itself is 0; of the zero score 1; the empirical score of
    many points is close to the population score at tau = 1 (error -> 0 as N grows)."""
    sch = make_schedule("ou")
    d = 4
    pop = GaussianScore(np.zeros(d), np.eye(d), sch)
    t = float(sch.time_of_tau(1.0))
    g = torch.Generator().manual_seed(0)
    x = float(sch.mean_scale(t)) * math.sqrt(2.0) * torch.randn(2000, d, generator=g,
                                                                dtype=torch.float64)
    assert relative_score_error(pop, pop, x, t) == 0.0
    assert relative_score_error(lambda x, t: torch.zeros_like(x), pop, x, t) == pytest.approx(1.0)
    errs = [relative_score_error(EmpiricalScore(torch.randn(n, d, generator=g,
                                                            dtype=torch.float64), sch), pop, x, t)
            for n in (16, 4096)]
    assert errs[1] < 0.1 * errs[0] and errs[1] < 0.02


def test_gaussian_moment_kl_closed_form_and_singular_cases(rng):
    """KL(N(m, S) || N(0, C)) of samples whose sample moments are exactly m, S (whitened draws)
    equals the closed form; singular covariances give +inf."""
    d, n = 3, 500
    z = rng.standard_normal((n, d))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T   # sample cov = I
    s = np.diag([2.0, 0.5, 1.0])
    m = np.array([0.3, -0.2, 0.0])
    x = z @ np.sqrt(s) + m
    c = np.diag([1.0, 2.0, 0.5])
    ci = np.linalg.inv(c)
    expect = 0.5 * (np.trace(ci @ s) + m @ ci @ m - d + np.log(np.linalg.det(c) / np.linalg.det(s)))
    assert gaussian_moment_kl(x, np.zeros(d), c) == pytest.approx(expect, rel=1e-9)
    assert gaussian_moment_kl(x, np.zeros(d), np.diag([1.0, 1.0, 0.0])) == math.inf
    assert gaussian_moment_kl(np.repeat(x[:2], 50, 0), np.zeros(d), c) == math.inf


def test_sliced_wasserstein_of_a_shift_and_of_itself(rng):
    """SW_2 of x and x + v is |v| sqrt(E (u.e)^2) = |v| / sqrt(d) (Monte Carlo over many
    projections); of x and itself 0."""
    d = 4
    x = rng.standard_normal((400, d))
    v = np.array([2.0, 0.0, 0.0, 0.0])
    assert sliced_wasserstein(x, x, 16) == 0.0
    assert sliced_wasserstein(x, x + v, 4000, seed=1) == pytest.approx(2.0 / math.sqrt(d),
                                                                       rel=0.03)
    with pytest.raises(ValueError, match="d ="):
        sliced_wasserstein(x, x[:, :2])
