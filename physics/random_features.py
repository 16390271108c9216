"""Random-features score model of [BUBM25]: Gaussian-equivalence constants, the spectrum of the
feature matrix U that drives gradient descent, and the two training timescales.

[BUBM25] Bonnaire, Urfin, Biroli, Mézard, "Why diffusion models don't memorize: the role of
implicit dynamical regularization in training", arXiv 2505.17638, section 4 (theory); official
code Theory/src/plot_spectrum_U.py and Training_random_features.py (docs/training_dynamics.md,
"Random-features theory"; docs/conformance/bubm25_random_features.md).

Model: score S_A(x) = A sigma(W x / sqrt(d)), W a fixed p x d matrix of N(0, 1) entries, A (d x p)
trained at one diffusion time t on

    L(A) = (1/(d n)) sum_nu E_eta |sqrt(Delta_t) S_A(e^{-t} x_nu + sqrt(Delta_t) eta) + eta|^2,
    Delta_t = 1 - e^{-2t},  x_nu ~ N(0, Sigma),  psi_p = p / d,  psi_n = n / d.

L is quadratic in A: grad_A L = (2/d) (Delta_t A U + sqrt(Delta_t) V) with the p x p matrix
U = (1/n) sum_nu E_eta[phi phi^T] (phi = sigma(W x_t / sqrt(d))) and V = (1/n) sum E_eta[eta phi^T].
Gradient flow in the official time units (tau = optimizer steps x learning rate) is therefore
dA/dtau = -(2/d)(Delta_t A U + sqrt(Delta_t) V): each eigenmode of U with eigenvalue lambda relaxes
at the rate kappa lambda, kappa = 2 Delta_t / d (`relaxation_rate`).

Gaussian equivalence ([BUBM25] section 4, the constants of plot_spectrum_U.py): with u, v, w, z
independent N(0, 1), c = e^{-t} sigma_x (sigma_x^2 = tr Sigma / d), Gamma_t^2 = c^2 + Delta_t,

    a_t = E[sigma(c u + sqrt(Delta_t) v) u] / c          (= E sigma'(Gamma_t z), Stein)
    b_t = E[v sigma(c u + sqrt(Delta_t) v)]              (= sqrt(Delta_t) E sigma'(Gamma_t z))
    v_t^2 = E[sigma(c u + sqrt(D) v) sigma(c u + sqrt(D) w)] - a_t^2 c^2
    s_t^2 = E[sigma(Gamma_t z)^2] - a_t^2 c^2 - v_t^2 - b_t^2

and U is replaced by U_GE = (1/n) G G^T + b_t^2 W W^T / d + s_t^2 I_p with
G = e^{-t} a_t W X / sqrt(d) + v_t Omega (X the d x n data, Omega a p x n N(0, 1) matrix).
Here the expectations are Gauss-Hermite quadratures (error below 1e-12, tests), not the official
5e5-sample Monte Carlo (error ~1e-3 relative).

Stieltjes transform: q(z) = (1/p) tr (U - z)^{-1} solves, with r, s auxiliary, Sigma's spectrum
given by levels l_k with weights w_k, and z = lambda - i eps,

    s_hat = b_t^2 psi_p + 1/q,        D = 1 + (psi_p / psi_n)(a_t^2 e^{-2t} r + v_t^2 q),
    r_hat = psi_p a_t^2 e^{-2t} / D,
    s = sum_k w_k / (s_hat + l_k r_hat),      r = sum_k w_k l_k / (s_hat + l_k r_hat),
    0 = psi_p (s_t^2 - z) + psi_p v_t^2 / D + (1 - psi_p) / q - s / q^2,

(the saddle-point equations of plot_spectrum_U.py), and rho(lambda) = |Im q(lambda - i0)| / pi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RFConstants", "rf_constants", "activation_functions", "relaxation_rate",
           "stieltjes_transform", "spectral_density", "atom_weight", "bulk_summary",
           "predicted_timescales", "timescale_scales", "slow_bulk_factor",
           "population_feature_covariance",
           "spectrum_grid", "theory_cdf"]


def activation_functions(name: str):
    """(sigma, sigma') for 'tanh' (the official choice), 'erf' (closed forms, tests) or 'linear'."""
    if name == "tanh":
        return np.tanh, lambda x: 1.0 / np.cosh(x) ** 2
    if name == "erf":
        from scipy.special import erf
        return erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
    if name == "linear":
        return (lambda x: np.asarray(x, float)), (lambda x: np.ones_like(np.asarray(x, float)))
    raise ValueError(f"unknown activation {name!r}; choose 'tanh', 'erf' or 'linear'")


def _gauss_hermite(k: int):
    """Nodes and weights of E[f(z)], z ~ N(0, 1): probabilists' Gauss-Hermite, weights sum to 1."""
    x, w = np.polynomial.hermite_e.hermegauss(k)
    return x, w / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class RFConstants:
    """Gaussian-equivalence constants of the random-features score at diffusion time t."""
    t: float
    sigma_x2: float     # tr Sigma / d
    delta: float        # Delta_t = 1 - e^{-2t}
    gamma2: float       # Gamma_t^2 = e^{-2t} sigma_x2 + Delta_t
    a: float
    b: float
    v2: float
    s2: float

    @property
    def c2(self) -> float:
        """(e^{-t} sigma_x)^2, the data part of a pre-activation's variance."""
        return math.exp(-2 * self.t) * self.sigma_x2


def rf_constants(t: float, sigma_x2: float = 1.0, activation: str = "tanh",
                 nodes: int = 150) -> RFConstants:
    """a_t, b_t, v_t^2, s_t^2 ([BUBM25] sec. 4; module docstring) by Gauss-Hermite quadrature with
    `nodes` points per Gaussian variable (nested for v_t^2): error < 1e-12 for tanh at
    Gamma_t <= 2 (tests compare with adaptive quadrature and the erf closed forms)."""
    if not t > 0:
        raise ValueError(f"t must be > 0, got {t!r}")
    if not sigma_x2 > 0:
        raise ValueError(f"sigma_x2 must be > 0, got {sigma_x2!r}")
    sig, dsig = activation_functions(activation)
    delta = -math.expm1(-2.0 * t)
    c = math.exp(-t) * math.sqrt(sigma_x2)
    gamma2 = c * c + delta
    z, w = _gauss_hermite(nodes)
    a = float(w @ dsig(math.sqrt(gamma2) * z))                 # E sigma'(Gamma z) (Stein)
    b = math.sqrt(delta) * a                                   # E[v sigma] = sqrt(D) E sigma'
    inner = sig(c * z[:, None] + math.sqrt(delta) * z[None, :]) @ w   # E_v sigma(c u + sqrt(D) v)
    v2 = float(w @ inner ** 2) - a * a * c * c
    m2 = float(w @ sig(math.sqrt(gamma2) * z) ** 2)
    s2 = m2 - a * a * c * c - v2 - b * b
    return RFConstants(t=float(t), sigma_x2=float(sigma_x2), delta=delta, gamma2=gamma2,
                       a=a, b=b, v2=v2, s2=s2)


def relaxation_rate(t: float, d: int) -> float:
    """kappa = 2 Delta_t / d: an eigenmode lambda of U relaxes as exp(-kappa lambda tau) in the
    official training time tau = steps x learning rate (module docstring)."""
    return 2.0 * -math.expm1(-2.0 * t) / d


def _levels(sigma_levels, sigma_weights):
    lv = np.atleast_1d(np.asarray(sigma_levels, float))
    wt = (np.full(lv.size, 1.0 / lv.size) if sigma_weights is None
          else np.atleast_1d(np.asarray(sigma_weights, float)))
    if lv.size != wt.size or np.any(lv <= 0) or np.any(wt <= 0) or abs(wt.sum() - 1) > 1e-12:
        raise ValueError("sigma_levels must be > 0 and sigma_weights > 0 summing to 1, same length")
    return lv, wt


def _system(q, r, s, z, k: RFConstants, psi_p, psi_n, lv, wt, scaled: bool = False):
    """The three complex saddle-point equations (module docstring), vectorized over z; with
    `scaled` each equation is divided by the size of its largest term (relative residual)."""
    e2 = math.exp(-2 * k.t)
    s_hat = k.b ** 2 * psi_p + 1.0 / q
    den = 1.0 + (psi_p / psi_n) * (k.a ** 2 * e2 * r + k.v2 * q)
    r_hat = psi_p * k.a ** 2 * e2 / den
    g = 1.0 / (s_hat[..., None] + lv * r_hat[..., None])
    gs, gr = g @ wt, g @ (wt * lv)
    t3 = (psi_p * (k.s2 - z), psi_p * k.v2 / den, (1.0 - psi_p) / q, -s / q ** 2)
    f = np.stack([s - gs, r - gr, sum(t3)], axis=-1)
    if scaled:
        f = f / np.stack([np.abs(s) + np.abs(gs), np.abs(r) + np.abs(gr),
                          np.max(np.abs(np.stack(t3)), axis=0)], axis=-1)
    return f


def _newton(x, z, args, iters: int = 40, tol: float = 1e-13):
    """Damped complex Newton on the holomorphic system, all points at once (finite-difference
    Jacobian with complex steps); points already solved to `tol` (relative) are left alone."""
    x = x.copy()
    act = np.arange(len(x))
    for _ in range(iters):
        xa, za = x[act], z[act]
        res = np.max(np.abs(_system(xa[:, 0], xa[:, 1], xa[:, 2], za, *args, scaled=True)), axis=1)
        keep = res >= tol
        act, xa, za, res = act[keep], xa[keep], za[keep], res[keep]
        if act.size == 0:
            break
        f = _system(xa[:, 0], xa[:, 1], xa[:, 2], za, *args)
        J = np.empty(xa.shape + (3,), complex)
        for j in range(3):
            h = 1e-7 * (1.0 + np.abs(xa[:, j]))
            xp = xa.copy()
            xp[:, j] += h
            J[:, :, j] = (_system(xp[:, 0], xp[:, 1], xp[:, 2], za, *args) - f) / h[:, None]
        step = np.linalg.solve(J, -f[..., None])[..., 0]
        damp = np.ones(len(xa))
        for _ in range(12):                      # halve the step where it does not reduce |f|
            xn = xa + damp[:, None] * step
            fn = np.max(np.abs(_system(xn[:, 0], xn[:, 1], xn[:, 2], za, *args, scaled=True)),
                        axis=1)
            bad = ~(fn <= res)
            if not bad.any():
                break
            damp[bad] *= 0.5
        x[act] = xa + damp[:, None] * step
    return x


def stieltjes_transform(lam, psi_p: float, psi_n: float, consts: RFConstants,
                        sigma_levels=(1.0,), sigma_weights=None, eps: float = 1e-11,
                        eps_start: float = 100.0, ladder: int = 60) -> np.ndarray:
    """q(lambda - i eps) for each real lambda (module docstring): the saddle-point system solved by
    damped Newton, continued from eps_start (where q ~ -1/z) down to eps along a geometric ladder
    of `ladder` steps, as plot_spectrum_U.py continues its Levenberg-Marquardt solutions along its
    own (linear, then decimal) ladder of eps."""
    lv, wt = _levels(sigma_levels, sigma_weights)
    lam = np.atleast_1d(np.asarray(lam, float))
    args = (consts, float(psi_p), float(psi_n), lv, wt)
    z = lam - 1j * eps_start
    q0 = -1.0 / z
    x = np.stack([q0, q0 * np.sum(wt * lv), q0], axis=1)
    for e in np.geomspace(eps_start, eps, ladder):
        x = _newton(x, lam - 1j * e, args)
    f = _system(x[:, 0], x[:, 1], x[:, 2], lam - 1j * eps, *args, scaled=True)
    if np.max(np.abs(f)) > 1e-8:
        raise RuntimeError("saddle-point equations not solved: max residual "
                           f"{np.max(np.abs(f)):.2e}")
    return x[:, 0]


def spectral_density(lam, psi_p: float, psi_n: float, consts: RFConstants, sigma_levels=(1.0,),
                     sigma_weights=None, eps: float = 1e-11) -> np.ndarray:
    """rho(lambda) = |Im q(lambda - i eps)| / pi, the limiting eigenvalue density of U (its
    absolutely continuous part; `atom_weight` gives the point mass at s_t^2)."""
    q = stieltjes_transform(lam, psi_p, psi_n, consts, sigma_levels, sigma_weights, eps=eps)
    return np.abs(q.imag) / math.pi


def atom_weight(psi_p: float, psi_n: float) -> float:
    """Point mass of U's spectrum at exactly s_t^2: the directions orthogonal to the d columns of W
    and the n columns of G, a fraction max(0, 1 - (psi_n + 1) / psi_p) of the p (rank count of
    U_GE - s_t^2 I)."""
    return max(0.0, 1.0 - (psi_n + 1.0) / psi_p)


def bulk_summary(lam, rho, gap_factor: float = 0.0) -> list[dict]:
    """The bulks of a density sampled on an increasing grid: maximal runs where rho > 0 (or >
    gap_factor x max rho), each as {lo, hi, weight, mean} (trapezoid rule on the grid)."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    on = rho > max(gap_factor * rho.max(), 1e-12 * rho.max())
    out, i = [], 0
    while i < lam.size:
        if not on[i]:
            i += 1
            continue
        j = i
        while j + 1 < lam.size and on[j + 1]:
            j += 1
        sl = slice(max(i - 1, 0), min(j + 2, lam.size))
        wgt = float(np.trapezoid(rho[sl], lam[sl]))
        mean = float(np.trapezoid(rho[sl] * lam[sl], lam[sl]) / wgt) if wgt > 0 else math.nan
        out.append({"lo": float(lam[i]), "hi": float(lam[j]), "weight": wgt, "mean": mean})
        i = j + 1
    return out


def predicted_timescales(lam, rho, t: float, d: int, gap_factor: float = 1e-6,
                         psi_n: float | None = None) -> dict:
    """[BUBM25] timescales from the bulks of rho (lambda on a grid that resolves them):
    tau_gen = 1 / (kappa mean_pop), tau_mem = 1 / (kappa mean_sample), kappa = 2 Delta_t / d
    (`relaxation_rate`), mean_pop the mean eigenvalue of the upper (population) bulk and
    mean_sample that of the bulk just below it (the sample bulk, weight (psi_n - 1) / psi_p when
    psi_p > psi_n + 1). Bulks are the runs where rho > gap_factor max rho (`bulk_summary`). In the
    official time units (steps x learning rate). NaN times when fewer than two bulks separate;
    tau_mem NaN when psi_n <= 1 is given (n <= d: no sample bulk, rank count).
    tau_mem_slow = 1 / (kappa mean_slow), mean_slow that of the third bulk from the top (the slow
    bulk, weight 1 / psi_p; `slow_bulk_factor`), NaN when it does not separate: it, not the sample
    bulk, sets the half-gap reading of the measured tau_mem (docs/training_dynamics.md)."""
    bulks = [b for b in bulk_summary(lam, rho, gap_factor) if b["weight"] > 1e-4]
    kap = relaxation_rate(t, d)
    if len(bulks) < 2:
        return {"tau_gen": math.nan, "tau_mem": math.nan, "tau_mem_slow": math.nan,
                "population_bulk": None, "sample_bulk": None, "slow_bulk": None}
    pop, sample = bulks[-1], bulks[-2]
    if psi_n is not None and psi_n <= 1:
        return {"tau_gen": 1.0 / (kap * pop["mean"]), "tau_mem": math.nan,
                "tau_mem_slow": math.nan, "population_bulk": pop, "sample_bulk": None,
                "slow_bulk": None}
    slow = bulks[-3] if len(bulks) >= 3 else None
    return {"tau_gen": 1.0 / (kap * pop["mean"]), "tau_mem": 1.0 / (kap * sample["mean"]),
            "tau_mem_slow": 1.0 / (kap * slow["mean"]) if slow else math.nan,
            "population_bulk": pop, "sample_bulk": sample, "slow_bulk": slow}


def timescale_scales(psi_p: float, psi_n: float, consts: RFConstants, d: int) -> dict:
    """Leading order for psi_p >> psi_n >> 1: the population bulk sits at
    lambda_pop ~ (a_t^2 e^{-2t} sigma_x^2 + b_t^2) psi_p and the sample bulk at
    lambda_sample ~ v_t^2 psi_p / psi_n (centre of the Marchenko-Pastur law of v_t^2 Omega Omega^T / n),
    so tau_gen ~ 1 / (kappa lambda_pop) ~ d / Delta_t is n-independent and
    tau_mem ~ 1 / (kappa lambda_sample) ~ psi_n d / Delta_t grows linearly with psi_n.
    The slow bulk (`slow_bulk_factor`) sits at lambda_slow ~ s_t^2 + lambda_sample / F_t, which
    gives tau_mem_slow = 1 / (kappa lambda_slow)."""
    k = consts
    kap = relaxation_rate(k.t, d)
    lam_pop = (k.a ** 2 * k.c2 + k.b ** 2) * psi_p
    lam_s = k.v2 * psi_p / psi_n
    lam_slow = k.s2 + lam_s / slow_bulk_factor(k)
    return {"tau_gen": 1.0 / (kap * lam_pop), "tau_mem": 1.0 / (kap * lam_s),
            "tau_mem_slow": 1.0 / (kap * lam_slow),
            "lambda_pop": lam_pop, "lambda_sample": lam_s, "lambda_slow": lam_slow}


def slow_bulk_factor(consts: RFConstants) -> float:
    """F_t = (a_t^2 e^{-2t} sigma_x^2 + b_t^2) / b_t^2: how far below the sample bulk the slow
    bulk of U sits (memphase's derivation, leading order in psi_p >> psi_n >> 1; not in the
    official code). For a unit-norm direction e of W's column span that carries data (weight
    alpha^2 = a_t^2 e^{-2t} sigma_x^2 psi_p of G G^T / n) paired with its own sample-noise direction
    f (weight beta^2 = v_t^2 psi_p / psi_n), U_GE restricted to (e, f) is
    [[alpha^2 + b_t^2 psi_p, alpha beta], [alpha beta, beta^2]] + s_t^2 I, whose small eigenvalue is
    s_t^2 + beta^2 b_t^2 psi_p / (alpha^2 + b_t^2 psi_p) = s_t^2 + lambda_sample / F_t. There are d such
    directions (weight 1 / psi_p), and they carry most of V's projection (the gradient lives in
    W's column span: V = b_t W^T / sqrt(d)), hence most of the train-loss gain of the minimizer and
    of the generalization gap. For activations with b_t = sqrt(Delta_t) a_t (tanh, erf: Stein),
    F_t = Gamma_t^2 / Delta_t = (e^{-2t} sigma_x^2 + Delta_t) / Delta_t, 50.5 at t = 0.01."""
    k = consts
    return (k.a ** 2 * k.c2 + k.b ** 2) / k.b ** 2


def population_feature_covariance(W, gamma_diag, activation: str = "tanh",
                                  nodes: int = 60) -> np.ndarray:
    """U_pop[i, j] = E[sigma(h_i) sigma(h_j)], (h_i, h_j) ~ N(0, C), C = W diag(gamma) W^T / d:
    the feature covariance over fresh x_t ~ N(0, Gamma_t) (test loss, score error). Two-dimensional
    Gauss-Hermite: h_i = sqrt(C_ii) z1, h_j = rho_ij sqrt(C_jj) z1 + sqrt(1-rho^2) sqrt(C_jj) z2."""
    sig, _ = activation_functions(activation)
    W = np.asarray(W, float)
    d = W.shape[1]
    C = (W * np.asarray(gamma_diag, float)) @ W.T / d
    sd = np.sqrt(np.diag(C))
    rho = np.clip(C / np.outer(sd, sd), -1.0, 1.0)
    z, w = _gauss_hermite(nodes)
    p = W.shape[0]
    out = np.empty((p, p))
    f1 = sig(sd[:, None] * z[None, :])                     # (p, K): sigma(h_i) at node z1
    for i in range(p):
        r = rho[i, i:]                                    # (m,)
        s = sd[i:]
        # h_j = s (r z1 + sqrt(1 - r^2) z2): inner expectation over z2 at each z1
        h = s[:, None, None] * (r[:, None, None] * z[None, :, None]
                                + np.sqrt(1 - r * r)[:, None, None] * z[None, None, :])
        inner = sig(h) @ w                                 # (m, K)
        out[i, i:] = inner @ (w * f1[i])
        out[i:, i] = out[i, i:]
    return out


def spectrum_grid(psi_p: float, psi_n: float, consts: RFConstants, sigma_levels=(1.0,),
                  points: int = 800, rel_gap: float = 1e-3) -> np.ndarray:
    """An increasing lambda grid for U's density: geometric from s_t^2 (1 + rel_gap) to the scale
    of the sample bulk, then linear to beyond the upper edge,
    lambda_max = 1.3 [(a^2 e^{-2t} max l + b^2)(1 + sqrt psi_p)^2 + v^2 (1 + sqrt(psi_p/psi_n))^2]
    + s^2 (Marchenko-Pastur edges of the three Wishart parts, summed: an upper bound)."""
    k = consts
    lmax = 1.3 * ((k.a ** 2 * math.exp(-2 * k.t) * max(np.atleast_1d(sigma_levels)) + k.b ** 2)
                  * (1 + math.sqrt(psi_p)) ** 2
                  + k.v2 * (1 + math.sqrt(psi_p / psi_n)) ** 2) + k.s2
    lo = k.s2 * (1 + rel_gap)
    mid = k.s2 + 0.05 * (lmax - k.s2)
    g1 = k.s2 + np.geomspace(lo - k.s2, mid - k.s2, points // 2)
    g2 = np.linspace(mid, lmax, points - points // 2 + 1)[1:]
    return np.concatenate([g1, g2])


def theory_cdf(lam, rho) -> np.ndarray:
    """F(lambda) of U's limiting spectrum from rho on a grid starting just above s_t^2 (as
    `spectrum_grid` makes it): the trapezoid integral of rho from the first grid point, plus the
    mass 1 - int rho that the grid does not resolve (the point mass at s_t^2, `atom_weight`, and
    any integrable edge singularity within rel_gap of s_t^2) placed at the first grid point."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    c = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(lam))])
    return np.clip(c + max(0.0, 1.0 - c[-1]), 0.0, 1.0)
