"""[BUBM25] random-features score: the official training loop (fresh noise every step, GD at
learning rate 1e-2 d / Delta_t) against the exact gradient flow at small d, and the feature
matrices against their definitions."""

import math

import numpy as np
import pytest

from memphase.physics.random_features_dynamics import exact_dynamics
from memphase.simulate.learning.random_features import draw_problem, feature_matrices, train_sgd


@pytest.fixture(scope="module")
def small():
    pb = draw_problem(10, 4, 2, 0.1, seed=0)
    return pb, feature_matrices(pb, "tanh", seed=1, noise_draws=4000)


def test_gd_on_stochastic_loss_follows_exact_flow(small):
    """20000 official GD steps (s = 0.02 per step) vs the exact flow with the same U, V: the
    stochastic gradient (fresh eta each step) makes the GD curves wander by a few percent;
    tolerance 4 % on the train / test losses, 12 % on the score error, at every checkpoint."""
    pb, mats = small
    rec = np.unique(np.geomspace(1, 20000, 12).astype(int))
    g = train_sgd(pb, mats, 20000, rec, seed=2)
    assert g["time"][-1] == pytest.approx(20000 * 1e-2 * pb.d / pb.consts.delta)
    s = 2 * pb.consts.delta / pb.d * g["time"]
    ex = exact_dynamics(mats, pb.consts.delta).curves(s)
    for key, tol in (("train_loss", 0.04), ("test_loss", 0.04), ("score_error", 0.12)):
        np.testing.assert_allclose(g[key], ex[key], rtol=tol)
    # the curves have the [BUBM25] shape: test loss has a minimum, then rises above the train loss
    assert np.argmin(ex["test_loss"]) not in (0, len(s) - 1)
    assert ex["test_loss"][-1] - ex["train_loss"][-1] > 0.3


def test_adam_runs_and_decreases_train_loss(small):
    pb, mats = small
    g = train_sgd(pb, mats, 200, [0, 200], seed=3, optimizer="adam", lr_scale=1e-4)
    assert g["train_loss"][1] < g["train_loss"][0]


def test_tanh_matrices_against_brute_force():
    """V by Stein + quadrature against the Monte-Carlo average of eta phi^T; U_pop against a
    large fresh sample of x_t (the official test-set estimate)."""
    pb = draw_problem(6, 2, 1, 0.3, seed=4)
    m = feature_matrices(pb, "tanh", seed=5, noise_draws=20000)
    rng = np.random.default_rng(6)
    d, D = pb.d, pb.consts.delta
    acc = np.zeros_like(m["V"])
    M = 20000
    for _ in range(5):
        eta = rng.standard_normal((M, pb.n, d))
        phi = np.tanh((math.exp(-pb.t) * pb.X.T + math.sqrt(D) * eta) @ pb.W.T / math.sqrt(d))
        acc += np.einsum("mnk,mni->ki", eta, phi) / (M * pb.n)
    np.testing.assert_allclose(acc / 5, m["V"], atol=4e-3)
    xt = rng.standard_normal((400000, d)) * np.sqrt(pb.gamma_diag)
    phi = np.tanh(xt @ pb.W.T / math.sqrt(d))
    np.testing.assert_allclose(phi.T @ phi / len(xt), m["U_pop"], atol=5e-3)
    np.testing.assert_allclose(((xt / pb.gamma_diag).T @ phi) / len(xt), m["R"], atol=1e-2)


def test_gaussian_equivalent_population_identity():
    """Sigma = I: V_pop = sqrt(Delta) R holds in the Gaussian equivalent (b = sqrt(Delta) a)."""
    pb = draw_problem(20, 2, 1, 0.05, seed=0)
    m = feature_matrices(pb, "gaussian_equivalent", seed=1)
    np.testing.assert_allclose(m["V"], math.sqrt(pb.consts.delta) * m["R"], rtol=1e-12)


def test_bad_features():
    pb = draw_problem(4, 2, 1, 0.1)
    with pytest.raises(ValueError):
        feature_matrices(pb, "relu")
