"""Exact gradient flow of the [BUBM25] random-features score in U's eigenbasis
(memphase.physics.random_features_dynamics) against deterministic small-step gradient descent on
the same noise-averaged quadratic loss, and its tau -> infinity limit."""

import math

import numpy as np
import pytest

from memphase.physics.random_features_dynamics import ExactDynamics


def _random_problem(d=5, p=8, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((p, 3 * p))
    U = M @ M.T / (3 * p) + 0.05 * np.eye(p)
    M2 = rng.standard_normal((p, 3 * p))
    U_pop = M2 @ M2.T / (3 * p) + 0.1 * np.eye(p)
    return U, rng.standard_normal((d, p)), U_pop, rng.standard_normal((d, p)), 3.0


def _losses(A, U, V, U_pop, R, trg, D):
    d = A.shape[0]
    train = 1 + (D * np.trace(A @ U @ A.T) + 2 * math.sqrt(D) * np.trace(A @ V.T)) / d
    score = (np.trace(A @ U_pop @ A.T) + 2 * np.trace(A @ R.T) + trg) / d
    return train, 1 - D * trg / d + D * score, score


def test_exact_flow_matches_small_step_gradient_descent():
    U, V, U_pop, R, trg = _random_problem()
    D, d = 0.2, V.shape[0]
    ex = ExactDynamics(U, V, U_pop, R, trg, D)
    kappa = 2 * D / d
    A = np.zeros_like(V)
    dtau = 1e-3 / kappa                         # ds = 1e-3
    s_rec, got = [0.5, 2.0, 8.0], []
    s = 0.0
    for target in s_rec:
        while s < target - 1e-12:
            A -= dtau * (2 / d) * (D * A @ U + math.sqrt(D) * V)
            s += kappa * dtau
        got.append(_losses(A, U, V, U_pop, R, trg, D))
    c = ex.curves(s_rec)
    for i, (tr, te, sc) in enumerate(got):
        # explicit Euler with ds = 1e-3: relative error O(ds * lambda_max) ~ 1e-3
        assert c["train_loss"][i] == pytest.approx(tr, rel=2e-3)
        assert c["test_loss"][i] == pytest.approx(te, rel=2e-3)
        assert c["score_error"][i] == pytest.approx(sc, rel=5e-3)


def test_infinite_time_is_the_minimizer():
    U, V, U_pop, R, trg = _random_problem(seed=1)
    D = 0.3
    A_star = -V @ np.linalg.inv(U) / math.sqrt(D)
    tr, te, sc = _losses(A_star, U, V, U_pop, R, trg, D)
    c = ExactDynamics(U, V, U_pop, R, trg, D).curves([np.inf, 1e9])
    np.testing.assert_allclose(c["train_loss"], tr, rtol=1e-10)
    np.testing.assert_allclose(c["test_loss"], te, rtol=1e-10)
    np.testing.assert_allclose(c["score_error"], sc, rtol=1e-10)


def test_zero_time_is_the_untrained_model():
    U, V, U_pop, R, trg = _random_problem(seed=2)
    c = ExactDynamics(U, V, U_pop, R, trg, 0.1).curves([0.0])
    assert c["train_loss"][0] == pytest.approx(1.0)
    assert c["score_error"][0] == pytest.approx(trg / V.shape[0])


def test_rejects_non_positive_U():
    U, V, U_pop, R, trg = _random_problem()
    with pytest.raises(ValueError):
        ExactDynamics(U - 10 * np.eye(U.shape[0]), V, U_pop, R, trg, 0.1)


def test_explicit_population_noise_term():
    """With V_pop given (the Gaussian equivalent, Sigma != I) the test loss uses it:
    1 + (1/d)[Delta tr(A U_pop A^T) + 2 sqrt(Delta) tr(A V_pop^T)] at A(s) from the eigen-solution."""
    U, V, U_pop, R, trg = _random_problem(seed=3)
    D, d = 0.25, V.shape[0]
    Vp = np.random.default_rng(9).standard_normal(V.shape)
    ex = ExactDynamics(U, V, U_pop, R, trg, D, V_pop=Vp)
    s = 3.0
    lam, Q = np.linalg.eigh(U)
    A = -V @ Q @ np.diag(-np.expm1(-lam * s) / lam) @ Q.T / math.sqrt(D)
    want = 1 + (D * np.trace(A @ U_pop @ A.T) + 2 * math.sqrt(D) * np.trace(A @ Vp.T)) / d
    assert ex.curves([s])["test_loss"][0] == pytest.approx(want, rel=1e-10)
