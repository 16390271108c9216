"""Exact gradient-flow dynamics of the [BUBM25] random-features score (memphase.physics.random_features)
in the eigenbasis of U: train loss, test loss and error to the true score at any training time.

[BUBM25] Bonnaire, Urfin, Biroli, Mézard, arXiv 2505.17638, section 4. With the noise-averaged
quadratic loss (module docstring of `memphase.physics.random_features`)

    L_train(A) = 1 + (1/d) [Delta tr(A U A^T) + 2 sqrt(Delta) tr(A V^T)],
    L_test(A)  = 1 + (1/d) [Delta tr(A U_pop A^T) + 2 sqrt(Delta) tr(A V_pop^T)],
    E_score(A) = (1/d) E |A phi(x) - S*(x)|^2 = (1/d) [tr(A U_pop A^T) + 2 tr(A R^T) + tr Gamma^{-1}],

with S*(x) = -Gamma^{-1} x the true score at time t (x ~ N(0, Gamma), Gamma = e^{-2t} Sigma + Delta I),
U_pop = E[phi phi^T], R = E[Gamma^{-1} x phi^T] and V_pop = sqrt(Delta) R (Stein), gradient flow
from A(0) = 0, dA/dtau = -(2/d)(Delta A U + sqrt(Delta) V), is solved mode by mode:

    A(tau) = -(1/sqrt(Delta)) V Q diag(f_j(tau)) Q^T,   f_j(tau) = (1 - exp(-kappa lambda_j tau)) / lambda_j,
    U = Q diag(lambda) Q^T,   kappa = 2 Delta / d,

so that with B = V Q (columns B_j) and s = kappa tau the dimensionless time,

    L_train = 1 + (1/d) sum_j |B_j|^2 (lambda_j f_j^2 - 2 f_j),
    E_score = (1/d) [ (1/Delta) f^T ((B^T B) o (Q^T U_pop Q)) f - (2/sqrt(Delta)) sum_j f_j (Q^T R^T B)_jj
              + tr Gamma^{-1} ],
    L_test  = 1 + (1/d) [ f^T ((B^T B) o (Q^T U_pop Q)) f - 2 sum_j f_j (Q^T V_pop^T B)_jj ],

and V_pop = sqrt(Delta) R (Stein) for features that depend on x_t only, so that then
L_test = 1 - (Delta/d) tr Gamma^{-1} + Delta E_score.

Time here is s = kappa tau = 2 Delta tau / d; with the official learning rate 1e-2 d / Delta one
optimizer step is ds = 0.02 (`memphase.physics.random_features.relaxation_rate`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ExactDynamics", "exact_dynamics"]


class ExactDynamics:
    """Loss curves of gradient flow from A = 0 for given U, V (train) and U_pop, R, tr Gamma^{-1}
    (population); `curves(s)` evaluates them at dimensionless times s = kappa tau (module docstring)."""

    def __init__(self, U, V, U_pop, R, tr_gamma_inv: float, delta: float, V_pop=None):
        U, V = np.asarray(U, float), np.asarray(V, float)
        self.d = V.shape[0]
        self.delta = float(delta)
        self.lam, Q = np.linalg.eigh(0.5 * (U + U.T))
        if self.lam[0] <= 0:
            raise ValueError(f"U must be positive definite, smallest eigenvalue {self.lam[0]:.3g}")
        B = V @ Q
        self.b2 = np.sum(B * B, axis=0)
        self.P = (B.T @ B) * (Q.T @ np.asarray(U_pop, float) @ Q)
        self.c = np.einsum("ij,ji->i", Q.T @ np.asarray(R, float).T, B)
        Vp = math.sqrt(delta) * np.asarray(R, float) if V_pop is None else np.asarray(V_pop, float)
        self.cv = np.einsum("ij,ji->i", Q.T @ Vp.T, B)
        self.tr_gamma_inv = float(tr_gamma_inv)

    def f(self, s) -> np.ndarray:
        """f_j(s) = (1 - exp(-lambda_j s)) / lambda_j, shape (len(s), p)."""
        s = np.atleast_1d(np.asarray(s, float))
        return -np.expm1(-np.outer(s, self.lam)) / self.lam

    def train_gain(self) -> np.ndarray:
        """Per-mode share of L_train(0) - L_train(inf): |B_j|^2 / (d lambda_j) (sum over j = the
        whole drop of the train loss; from the train-loss formula with f_j = 1 / lambda_j), in
        the order of `lam` (increasing)."""
        return self.b2 / (self.d * self.lam)

    def curves(self, s) -> dict:
        """{'train_loss', 'test_loss', 'score_error'} at dimensionless times s (s = inf allowed:
        the minimizer A* = -V U^{-1} / sqrt(Delta))."""
        s = np.atleast_1d(np.asarray(s, float))
        f = np.where(np.isinf(s)[:, None], 1.0 / self.lam, self.f(np.where(np.isinf(s), 0.0, s)))
        d, D = self.d, self.delta
        train = 1.0 + (f * f * self.lam - 2.0 * f) @ self.b2 / d
        quad = np.einsum("tj,jk,tk->t", f, self.P, f)
        score = (quad / D - 2.0 / math.sqrt(D) * (f @ self.c) + self.tr_gamma_inv) / d
        test = 1.0 + (quad - 2.0 * (f @ self.cv)) / d
        return {"train_loss": train, "test_loss": test, "score_error": score}


def exact_dynamics(mats: dict, delta: float) -> ExactDynamics:
    """ExactDynamics from a dict with keys U, V, U_pop, R, tr_gamma_inv (and V_pop, optional)."""
    return ExactDynamics(mats["U"], mats["V"], mats["U_pop"], mats["R"], mats["tr_gamma_inv"],
                         delta, mats.get("V_pop"))
