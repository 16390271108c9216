"""EMM search [GDPLLW23] on synthetic ratio curves with known crossings, and the random-label
prediction R_random(N) = R_none(N / C)."""

import math

import numpy as np
import pytest

from memphase.analysis.emm import (EMMNotBracketed, emm_search, random_label_prediction, ratio_curve_at,
                          seed_crossings)


def logistic(n0, k=3.0):
    """R(N) = 1 / (1 + (N / n0)^k): monotone, logistic in log N, R(n0) = 1/2."""
    return lambda n: 1.0 / (1.0 + (n / n0) ** k)


def crossing(n0, eps, k=3.0):
    """Exact N* with R(N*) = 1 - eps for `logistic`: (N*/n0)^k = eps / (1 - eps)."""
    return n0 * (eps / (1 - eps)) ** (1 / k)


def max_evaluations(n_star, n_start, growth, rel):
    """Bracketing steps + bisection steps (+2 slack for rounding): the docstring's log count."""
    bracket = math.ceil(math.log(max(n_star, n_start) / n_start, growth)) + 2
    bisect = math.ceil(math.log2(math.log(growth) / math.log1p(max(rel, 1e-9 + 1 / n_star))))
    return bracket + max(bisect, 0) + 2


@pytest.mark.parametrize("n0,n_start,growth", [(300.0, 2, 2.0), (5000.0, 10, 3.0), (37.0, 4, 1.5)])
def test_exact_crossing_to_one_integer(n0, n_start, growth):
    """rel_resolution = 0 bisects to upper = emm + 1, so emm = floor(N*) exactly."""
    eps = 0.1
    n_star = crossing(n0, eps)
    res = emm_search(logistic(n0), n_start, eps=eps, growth=growth, rel_resolution=0.0)
    assert res.emm == math.floor(n_star) and res.upper == res.emm + 1
    r = dict(zip(res.n.tolist(), res.ratio.tolist()))
    assert r[res.emm] >= 0.9 > r[res.upper]  # the bracket was evaluated and is correct
    assert len(set(res.n.tolist())) == res.n_evaluations  # nothing evaluated twice
    assert res.n_evaluations <= max_evaluations(n_star, n_start, growth, 1 / n_star)


@pytest.mark.parametrize("rel", [0.2, 0.05])
def test_relative_resolution_and_log_count(rel):
    eps, n0 = 0.1, 2.0e4
    n_star = crossing(n0, eps)
    calls = []

    def fn(n):
        calls.append(n)
        return logistic(n0)(n)

    res = emm_search(fn, 2, eps=eps, rel_resolution=rel)
    assert res.emm <= n_star < res.upper
    assert res.upper - res.emm <= max(1, rel * res.emm)
    assert len(calls) == res.n_evaluations <= max_evaluations(n_star, 2, 2.0, rel)
    assert res.n_evaluations < 20  # vs ~n_star / (rel n_star) for a linear scan


def test_start_above_crossing_searches_downwards():
    res = emm_search(logistic(50.0), 1000, rel_resolution=0.0)
    assert res.emm == math.floor(crossing(50.0, 0.1))
    assert res.n.min() < res.emm < 1000


def test_noisy_seeds_within_binomial_tolerance():
    """Each seed's ratio is a binomial fraction of 400 samples around the logistic curve; the mean
    over 8 seeds has SE <= sqrt(0.09 / 3200) ~ 0.0053 near R = 0.9. Tolerance: the found EMM lies
    between the N where the true curve equals 0.9 + 4 SE and 0.9 - 4 SE (widened by the bracket)."""
    rng = np.random.default_rng(3)
    n0, n_samples, seeds = 400.0, 400, 8
    curve = logistic(n0)
    res = emm_search(lambda n: rng.binomial(n_samples, curve(n), size=seeds) / n_samples, 4,
                     rel_resolution=0.02)
    se = math.sqrt(0.09 / (n_samples * seeds))
    lo = crossing(n0, 0.1 - 4 * se)  # R(lo) = 0.9 + 4 SE
    hi = crossing(n0, 0.1 + 4 * se)  # R(hi) = 0.9 - 4 SE
    assert lo / 1.02 <= res.emm <= hi, (lo, res.emm, hi)
    assert res.ratio_seeds.shape == (res.n_evaluations, seeds)
    np.testing.assert_allclose(res.ratio, res.ratio_seeds.mean(axis=1))
    assert np.isfinite(res.seed_std) and res.seed_sem == pytest.approx(res.seed_std / math.sqrt(8))


def test_seed_spread_recovers_known_crossings():
    """Noise-free seeds with different n0: each seed's interpolated crossing is within the
    log-linear interpolation error of its exact crossing (15 %: the farthest seed crosses inside a
    factor-2 growth bracket, where the k = 3 logistic is curved; < 3 % inside the bisected range),
    and the search brackets the crossing of the mean curve."""
    n0s = np.array([200.0, 260.0, 330.0, 420.0])
    fn = lambda n: np.array([logistic(a)(n) for a in n0s])
    res = emm_search(fn, 8, rel_resolution=0.01)
    exact = crossing(n0s, 0.1)
    np.testing.assert_allclose(res.seed_emm, exact, rtol=0.15)
    inside = exact > res.upper  # crossings in the bisected bracket [emm, 2 emm]
    np.testing.assert_allclose(res.seed_emm[inside], exact[inside], rtol=0.03)
    assert inside.sum() >= 2
    assert res.seed_std == pytest.approx(np.std(exact, ddof=1), rel=0.15)
    assert fn(res.emm).mean() >= 0.9 > fn(res.upper).mean()


def test_seed_crossings_interpolates_in_log_n():
    n = np.array([10, 100])
    r = np.array([[1.0, 0.95], [0.8, 0.85]])  # columns: two seeds
    out = seed_crossings(n, r, 0.9)
    np.testing.assert_allclose(out, [10 ** 1.5, 10 ** 1.5])  # halfway in log N
    assert np.isnan(seed_crossings(n, np.array([[0.5], [0.4]]), 0.9))[0]  # below from the start


def test_errors_are_clear():
    f = logistic(100.0)
    for eps in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="eps must lie in"):
            emm_search(f, 4, eps=eps)
    with pytest.raises(ValueError, match="n_start must be an integer >= 1"):
        emm_search(f, 0)
    with pytest.raises(ValueError, match="growth"):
        emm_search(f, 4, growth=1.0)
    with pytest.raises(EMMNotBracketed, match="never fell below .* n_max = 64") as e:
        emm_search(logistic(1000.0), 4, n_max=64)
    assert e.value.side == "above" and e.value.n.max() == 64
    with pytest.raises(EMMNotBracketed, match="already at n_min = 1"):
        emm_search(lambda n: 0.2, 8)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        emm_search(lambda n: 1.5, 4)
    with pytest.raises(ValueError, match="max_evaluations"):
        emm_search(f, 1, rel_resolution=0.0, max_evaluations=3)


def test_ratio_curve_and_random_label_prediction():
    """R linear in log N is reproduced exactly by the interpolation; R_random(N) = R_none(N / C);
    NaN where N / C lies below the measured range."""
    n = np.array([4, 8, 16, 32, 64, 128])
    r = 1.2 - 0.2 * np.log2(n)  # (6,)
    both = np.stack([r, r / 2])   # two curves
    got = ratio_curve_at([5.0, 40.0], n, both)
    np.testing.assert_allclose(got, [[1.2 - 0.2 * np.log2(5), 1.2 - 0.2 * np.log2(40)],
                                     [0.6 - 0.1 * np.log2(5), 0.6 - 0.1 * np.log2(40)]])
    pred = random_label_prediction(n, r, 4)
    assert np.all(np.isnan(pred[:2]))  # N / C = 1, 2 < 4
    np.testing.assert_allclose(pred[2:], 1.2 - 0.2 * np.log2(n[2:] / 4))
    np.testing.assert_allclose(random_label_prediction(n, r, 1), r)
    with pytest.raises(ValueError, match="n_classes"):
        random_label_prediction(n, r, 0)
