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


def _d1_expected_log_density(train, m, s2, probe):
    """E_x log P^e_t(x) in d = 1 by quadrature: x ~ N(0, m^2 + s2) (fresh, unit population) or the
    noised training mixture (planted)."""
    from scipy import integrate, special, stats

    y = np.asarray(train, float).ravel()

    def log_pe(x):
        return (special.logsumexp(-(x - m * y) ** 2 / (2 * s2)) - math.log(y.size)
                - 0.5 * math.log(2 * math.pi * s2))

    if probe == "fresh":
        sd = math.sqrt(m * m + s2)
        return integrate.quad(lambda x: stats.norm.pdf(x, 0, sd) * log_pe(x), -12 * sd, 12 * sd,
                              limit=200)[0]
    sd = math.sqrt(s2)
    return np.mean([integrate.quad(lambda x: stats.norm.pdf(x, m * yn, sd) * log_pe(x),
                                   m * yn - 12 * sd, m * yn + 12 * sd, limit=200)[0] for yn in y])


@pytest.mark.parametrize("probe", ["fresh", "planted"])
def test_excess_entropy_d1_against_quadrature(probe):
    """d = 1, N = 3 fixed training points: both probe branches against the exact integral of
    E_x log P^e_t(x) over their probe law (fresh: noised N(0, 1); planted: noised training set)."""
    train = torch.tensor([[-1.3], [0.2], [0.9]], dtype=torch.float64)
    score = EmpiricalScore(train, OU)
    fresh = isotropic_gaussian(40_000, 1, seed=4)
    times = np.array([0.05, 0.4, 1.5])
    f, se = excess_entropy_mc(score, fresh, times, seed=2, probe=probe, n_probes=40_000)
    for t, fi, si in zip(times, f, se):
        m, s2 = math.exp(-t), -math.expm1(-2 * t)
        exact = math.log(3) + 0.5 * math.log(2 * math.pi * math.e * s2) + _d1_expected_log_density(
            train.numpy(), m, s2, probe)
        assert abs(fi - exact) < 5 * si, (probe, t, fi, exact, si)


def test_planted_excess_entropy_has_no_zero():
    """Planted probes (official [BBDM24] protocol): log Z >= -|z|^2 / 2, so f >= 0 up to probe
    noise at every t, N = 1 included (where f = 0 in expectation), while the fresh-probe f of the
    same training set is far below 0 at small t."""
    d = 16
    times = np.array([0.05, 0.2, 0.6])
    one = EmpiricalScore(isotropic_gaussian(1, d, seed=1), OU)
    f1, se1 = excess_entropy_mc(one, None, times, probe="planted", n_probes=4000)
    assert np.all(np.abs(f1) < 5 * se1)
    score = EmpiricalScore(isotropic_gaussian(200, d, seed=1), OU)
    fp, sep = excess_entropy_mc(score, None, times, probe="planted", n_probes=4000)
    ff, _ = excess_entropy_mc(score, isotropic_gaussian(4000, d, seed=2), times)
    assert np.all(fp > -3 * sep), fp
    assert ff[0] < -0.5 and fp[0] > -3 * sep[0]
    with pytest.raises(ValueError, match="probe must be"):
        excess_entropy_mc(score, None, times, probe="training")


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
