"""Estimators of critical times against closed forms and theory."""

import math

import numpy as np
import pytest
import torch

from memphase.analysis.critical_times import (bootstrap_ci, class_label_fn, clone_agreement, crossing_time,
                                     excess_entropy_mc)
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.data import gaussian_mixture, isotropic_gaussian
from memphase.simulate.scores import EmpiricalScore, SmoothedScore

OU = OrnsteinUhlenbeck()


def test_crossing_time_interpolates():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert crossing_time(t, 1.0 - 0.25 * t, 0.5) == pytest.approx(2.0)
    assert crossing_time(t[::-1], (1.0 - 0.25 * t)[::-1], 0.6) == pytest.approx(1.6)
    assert math.isnan(crossing_time(t, np.ones(4), 0.5))


def test_bootstrap_ci_brackets_mean(rng):
    x = rng.normal(2.0, 1.0, size=400)
    m, lo, hi = bootstrap_ci(x, n_boot=2000)
    se = x.std() / math.sqrt(x.size)
    assert lo < m < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_excess_entropy_single_training_point_closed_form():
    """N = 1: f(t) = -m^2 (d + |y|^2) / (2 d sigma^2) exactly (alpha = 0), fresh y' ~ N(0, I)."""
    d = 20
    train = isotropic_gaussian(1, d, seed=1)
    fresh = isotropic_gaussian(4000, d, seed=2)
    score = EmpiricalScore(train, OU)
    times = np.array([0.3, 1.0, 2.0])
    f, se = excess_entropy_mc(score, fresh, times)
    y2 = float((train.x ** 2).sum())
    m2 = np.exp(-2 * times)
    s2 = -np.expm1(-2 * times)
    exact = -m2 * (d + y2) / (2 * d * s2)
    assert np.all(np.abs(f - exact) < 5 * se + 1e-3 * np.abs(exact))


def test_cloning_follows_theory_limits():
    """Two-Gaussian mixture, population score: clones split late (small t) agree; clones split
    early (large t) pick classes independently (phi -> 1/2)."""
    d = 32
    g = gaussian_mixture(2, d, seed=0)
    c = torch.tensor(g.params["centers"], dtype=torch.float64)
    score = SmoothedScore(torch.stack([c, -c]), OU, 1.0)
    r = clone_agreement(score, OU, [0.3, 6.0], 300, class_label_fn(c), steps=40, seed=3)
    assert r["phi"][0] > 0.97
    assert abs(r["phi"][1] - 0.5) < 4 * 0.5 / math.sqrt(300)
    assert np.all(r["lo"] <= r["phi"]) and np.all(r["phi"] <= r["hi"])


def test_collapse_cloning_with_empirical_and_population_scores():
    """phi_C(t): clones split after collapse end on the same training point; split well before
    collapse (t >> t_C) they pick independent points (phi_C ~ 1/N for the empirical score)."""
    from memphase.analysis.critical_times import nearest_label_fn
    from memphase.physics.critical import collapse_time

    d, n = 16, 8
    train = isotropic_gaussian(n, d, seed=2)
    t_c = float(collapse_time(n, np.ones(d)))
    score = EmpiricalScore(train, OU)
    r = clone_agreement(score, OU, [0.2 * t_c, 5 * t_c], 200, nearest_label_fn(train), steps=60, seed=1)
    assert r["phi"][0] > 0.95
    assert r["phi"][1] < 1.0 / n + 4 * np.sqrt(1.0 / n / 200) + 0.05
