"""The [BUBM25] random-features score model made concrete: draws (W, training set, Gaussian-
equivalent Omega), the matrices U, V, U_pop, R of its quadratic loss, and the two trainers.

[BUBM25] Bonnaire, Urfin, Biroli, Mézard, arXiv 2505.17638; theory and notation in
`memphase.physics.random_features` and `memphase.physics.random_features_dynamics`; protocol
comparison in docs/conformance/bubm25_random_features.md.

Two feature models (config key model.features):
- "gaussian_equivalent" (the official spectrum protocol, plot_spectrum_U.py): U = G G^T / n
  + b^2 W W^T / d + s^2 I, G = e^{-t} a W X / sqrt(d) + v Omega; V = b W^T / sqrt(d);
  U_pop = a^2 e^{-2t} W Sigma W^T / d + (v^2 + s^2) I + b^2 W W^T / d;
  R = Gamma^{-1} (a e^{-2t} Sigma + b sqrt(Delta) I) W^T / sqrt(d). Everything exact.
- "tanh" (memphase's variant: the actual features of Training_random_features.py):
  U = (1/(n M)) sum_nu sum_m phi(x_nu + noise_m) phi^T over M = noise_draws fresh noises per point
  (Monte Carlo, the only estimated matrix); V exact by Stein and 1-D Gauss-Hermite;
  U_pop = `population_feature_covariance` (2-D Gauss-Hermite); R = W^T diag(E sigma'(h_i)) / sqrt(d).

Trainers: `ExactDynamics` (any time at once, `memphase.physics.random_features_dynamics`) and
`train_sgd` (the official loop: fresh noise every step, full batch, GD or Adam, learning rate
lr_scale d / Delta_t; training time = steps x learning rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memphase.physics.random_features import (RFConstants, activation_functions,
                                              population_feature_covariance, rf_constants)

from ..base.step_progress import report as report_step

__all__ = ["RFProblem", "draw_problem", "feature_matrices", "train_sgd", "FEATURES"]

FEATURES = ("gaussian_equivalent", "tanh")


@dataclass
class RFProblem:
    """One draw: W (p x d, N(0, 1)), X (d x n, columns x_nu ~ N(0, diag(sigma_diag))), the
    diffusion time t and the Gaussian-equivalence constants; seed records the draw."""
    W: np.ndarray
    X: np.ndarray
    sigma_diag: np.ndarray
    t: float
    consts: RFConstants
    seed: int

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def p(self) -> int:
        return self.W.shape[0]

    @property
    def n(self) -> int:
        return self.X.shape[1]

    @property
    def gamma_diag(self) -> np.ndarray:
        """diag of Gamma_t = e^{-2t} Sigma + Delta_t I, the covariance of x_t."""
        return math.exp(-2 * self.t) * self.sigma_diag + self.consts.delta


def sigma_diagonal(d: int, levels) -> np.ndarray:
    """Sigma's diagonal: the levels in equal blocks (the last block takes the remainder), as
    plot_spectrum_U.py's two-level Sigma (first half lambda1, second half lambda2)."""
    lv = np.atleast_1d(np.asarray(levels, float))
    k = len(lv)
    out = np.empty(d)
    for i, l in enumerate(lv):
        out[i * (d // k):(i + 1) * (d // k) if i < k - 1 else d] = l
    return out


def draw_problem(d: int, psi_p: float, psi_n: float, t: float, levels=(1.0,), seed: int = 0,
                 activation: str = "tanh") -> RFProblem:
    """W then X from numpy Generator(seed); p = int(psi_p d), n = int(psi_n d) as the official
    scripts."""
    p, n = int(psi_p * d), int(psi_n * d)
    if p < 1 or n < 1:
        raise ValueError(f"psi_p d and psi_n d must be >= 1, got p={p}, n={n}")
    rng = np.random.default_rng(seed)
    sig = sigma_diagonal(d, levels)
    W = rng.standard_normal((p, d))
    X = np.sqrt(sig)[:, None] * rng.standard_normal((d, n))
    k = rf_constants(t, sigma_x2=float(np.mean(sig)), activation=activation)
    return RFProblem(W=W, X=X, sigma_diag=sig, t=float(t), consts=k, seed=int(seed))


def _ge_matrices(pb: RFProblem, rng) -> dict:
    k, d, n, W = pb.consts, pb.d, pb.n, pb.W
    e1 = math.exp(-pb.t)
    G = e1 * k.a * W @ pb.X / math.sqrt(d) + math.sqrt(k.v2) * rng.standard_normal((pb.p, n))
    WWd = W @ W.T / d
    eye = np.eye(pb.p)
    U = G @ G.T / n + k.b ** 2 * WWd + k.s2 * eye
    U_pop = (k.a * e1) ** 2 * (W * pb.sigma_diag) @ W.T / d + k.b ** 2 * WWd + (k.v2 + k.s2) * eye
    lin = k.a * e1 * e1 * pb.sigma_diag + k.b * math.sqrt(k.delta)
    R = (lin / pb.gamma_diag)[:, None] * W.T / math.sqrt(d)
    V = k.b * W.T / math.sqrt(d)
    return {"U": U, "V": V, "U_pop": U_pop, "R": R, "V_pop": V}


def _tanh_matrices(pb: RFProblem, rng, noise_draws: int, activation: str, nodes: int = 40) -> dict:
    k, d, n, W = pb.consts, pb.d, pb.n, pb.W
    sig, dsig = activation_functions(activation)
    e1, sD = math.exp(-pb.t), math.sqrt(k.delta)
    pre = e1 * (W @ pb.X).T / math.sqrt(d)                       # (n, p) noiseless pre-activations
    U = np.zeros((pb.p, pb.p))
    for _ in range(noise_draws):
        eta = rng.standard_normal((n, d))
        phi = sig(pre + sD * eta @ W.T / math.sqrt(d))
        U += phi.T @ phi
    U /= n * noise_draws
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2 * math.pi)
    wn = np.linalg.norm(W, axis=1) / math.sqrt(d)               # std of w_i . eta / sqrt(d)
    mean_dsig = np.mean(dsig(pre[:, :, None] + (sD * wn)[None, :, None] * z) @ w, axis=0)   # (p,)
    V = sD * W.T / math.sqrt(d) * mean_dsig[None, :]
    hstd = np.sqrt((W * W) @ pb.gamma_diag / d)
    e_pop = dsig(hstd[:, None] * z[None, :]) @ w
    return {"U": U, "V": V, "U_pop": population_feature_covariance(W, pb.gamma_diag, activation),
            "R": W.T / math.sqrt(d) * e_pop[None, :]}


def feature_matrices(pb: RFProblem, features: str = "gaussian_equivalent", seed: int = 0,
                     noise_draws: int = 200, activation: str = "tanh") -> dict:
    """{'U', 'V', 'U_pop', 'R', 'tr_gamma_inv'} for the feature model `features` (module docstring);
    the Omega (Gaussian equivalent) or the Monte-Carlo noises (tanh) come from Generator(seed)."""
    rng = np.random.default_rng(seed)
    if features == "gaussian_equivalent":
        out = _ge_matrices(pb, rng)
    elif features == "tanh":
        out = _tanh_matrices(pb, rng, noise_draws, activation)
    else:
        raise ValueError(f"unknown features {features!r}; choose one of {FEATURES}")
    out["tr_gamma_inv"] = float(np.sum(1.0 / pb.gamma_diag))
    return out


def train_sgd(pb: RFProblem, mats: dict, steps: int, record_steps, seed: int = 0,
              optimizer: str = "gd", lr_scale: float = 1e-2, activation: str = "tanh",
              adam_betas=(0.9, 0.999), adam_eps: float = 1e-8) -> dict:
    """The official training loop (Training_random_features.py) on the actual features: A = 0,
    each step a fresh eta (n x d) and the full batch,
        loss = |sqrt(Delta) A sigma(W x_t / sqrt(d)) + eta|^2 / (d n),  x_t = e^{-t} x + sqrt(Delta) eta,
    gradient (2 sqrt(Delta) / (d n)) (sqrt(Delta) A Phi^T + eta^T) Phi; GD or Adam (torch's defaults)
    at learning rate lr = lr_scale d / Delta. At `record_steps` (sorted, <= steps) the losses are
    evaluated exactly from A with `mats` (noise-averaged forms of
    `memphase.physics.random_features_dynamics`) instead of the official Monte-Carlo averages.
    Returns {'steps', 'time' (= steps x lr), 'train_loss', 'test_loss', 'score_error', 'A'}."""
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
    sig, _ = activation_functions(activation)
    k, d, n = pb.consts, pb.d, pb.n
    D, sD, e1 = k.delta, math.sqrt(k.delta), math.exp(-pb.t)
    lr = lr_scale * d / D
    rng = np.random.default_rng(seed)
    A = np.zeros((d, pb.p))
    m1, m2 = np.zeros_like(A), np.zeros_like(A)
    rec = sorted(int(r) for r in record_steps)
    out = {k_: [] for k_ in ("train_loss", "test_loss", "score_error")}
    X = pb.X.T
    WT = pb.W.T / math.sqrt(d)
    j = 0
    for step in range(steps + 1):
        while j < len(rec) and rec[j] == step:
            for key, val in _losses(A, mats, D).items():
                out[key].append(val)
            j += 1
        if step == steps:
            break
        eta = rng.standard_normal((n, d))
        phi = sig((e1 * X + sD * eta) @ WT)
        g = 2.0 * sD / (d * n) * (sD * phi @ A.T + eta).T @ phi
        if optimizer == "gd":
            A -= lr * g
        else:
            b1, b2 = adam_betas
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            mh, vh = m1 / (1 - b1 ** (step + 1)), m2 / (1 - b2 ** (step + 1))
            A -= lr * mh / (np.sqrt(vh) + adam_eps)
        report_step(step + 1, steps)
    res = {key: np.asarray(v) for key, v in out.items()}
    res.update(steps=np.asarray(rec[:j]), time=np.asarray(rec[:j], float) * lr, A=A)
    return res


def _losses(A, mats, D) -> dict:
    """Noise-averaged train / test loss and score error of a given A (forms of
    `memphase.physics.random_features_dynamics`)."""
    d = A.shape[0]
    sD = math.sqrt(D)
    train = 1.0 + (D * np.sum((A @ mats["U"]) * A) + 2 * sD * np.sum(A * mats["V"])) / d
    score = (np.sum((A @ mats["U_pop"]) * A) + 2 * np.sum(A * mats["R"]) + mats["tr_gamma_inv"]) / d
    Vp = mats.get("V_pop")
    Vp = sD * mats["R"] if Vp is None else Vp
    test = 1.0 + (D * np.sum((A @ mats["U_pop"]) * A) + 2 * sD * np.sum(A * Vp)) / d
    return {"train_loss": float(train), "test_loss": float(test), "score_error": float(score)}
