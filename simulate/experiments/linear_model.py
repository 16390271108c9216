"""The solvable linear one-step model of [H24] as an experiment (Halder, arXiv 2411.17807;
docs/theory.md, "Solvable linear model ([H24])").

Each cell (N, d, T, fit, seed) draws `repeats` training sets of N points from the sampling law
N(mu 1, s^2 I_d), fits the one-step denoiser at OU time T, either by exact least squares over the
noise (fit "expectation", `memphase.physics.linear_model.fit_linear_denoiser`, prior N(0, I)) or as the
paper's official code does (fit "official": noise scaled by l = e^{-2T}, OLS on one noise draw per
point, prior matched to the training set), and measures over the repeats:

- the exact KL(generated || sampling) of the Gaussian generated law, averaged over training sets;
  it is +inf for N <= d: the generated covariance has the rank of C_N < d and the generated law
  lives on the affine hull of the training set; and the squared Hellinger distance that the
  official code reports (1 where the KL is infinite);
- for the expectation fit, the same KL average from the Wishart-spectrum estimator `expected_kl`
  and a Monte-Carlo check of the KL of the first training set for the N in mc_n_train;
- the paper's generalization criterion (`p_generalizing`): Delta = D(p, K_train) - D(p, K_ref),
  D(p, K) = int K^2 - 2 int p K, K_ref the KDE of n_ref fresh samples, bandwidth s N_X^{-1/d} per
  set, P = 1/2 + 1/2 E sign Delta, with its 95% Wilson interval over the training sets; and the
  earlier symmetric criterion (`p_generalizing_symmetric`: a fresh set of N points, one shared
  bandwidth; tends to 1/2 from below by construction).

Protocol choices of the official fit (docs/conformance/h24.md): `measure.generated_covariance`
"BtB" (default, as `LDM.py`: the criteria and the Hellinger distance use v B^T B) or "BBt"
(v B B^T, the law of the generated samples; the KL and its Monte-Carlo check always use it);
`measure.reference` "fresh" (default, as `LDM.py`: a new reference set per training set, so the
interval over training sets includes the reference-set variance) or "shared" (one per cell; the
interval is then conditional on that one draw).

Stored beside (theory, no randomness): for the expectation fit the O(1/N) large-N expansion of
the average KL and its N -> infinity value; for the official fit the N -> infinity KL and
Hellinger values (`memphase.physics.linear_model.official_large_n_limit`).

Randomness: every draw of a cell comes from numpy SeedSequence([seed, N, d]) (the same training
sets at every T and fit: common random numbers), spawned into training/fresh/reference sets and
official noise draws, Monte-Carlo noise and the `expected_kl` seed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import xarray as xr

from memphase.physics import linear_model as lm

from ..run.config import Field
from .common import fill_grid

SCHEMA = {
    "job": Field("str", choices=("linear_model",), help="experiment to run"),
    "output": Field("str", "data/results/linear_model.h5", help="results file (HDF5)"),
    "data": {
        "std": Field("float", 1.0, check=lambda v: v > 0, rule="must be > 0",
                     help="std s of the sampling law N(mu 1, s^2 I)"),
        "mean": Field("float", 0.0, check=math.isfinite, rule="must be finite",
                      help="mean mu of every coordinate of the sampling law (official code: 10)"),
        "intercept": Field("bool", True,
                           help="expectation fit: D(x) = A x + b (true) or A x (false); the "
                                "official fit always has an intercept"),
    },
    "grid": {
        "n_train": Field("list[int]", [2, 5, 9, 10, 11, 12, 15, 20, 30, 50, 100, 200, 400],
                         check=lambda v: 1 <= v <= 10**5, rule="1 <= n_train <= 1e5",
                         help="training-set sizes N"),
        "d": Field("list[int]", [10], check=lambda v: 1 <= v <= 512, rule="1 <= d <= 512",
                   help="data dimensions"),
        "T": Field("list[float]", [2.0], check=lambda v: 0 < v <= 50, rule="0 < T <= 50",
                   help="OU diffusion time of the fit (m = e^-T, sigma^2 = 1 - e^-2T); "
                        "official [H24]: T = 2"),
        "fit": Field("list[str]", ["official", "expectation"], choices=lm.FITS,
                     help="official (default, first): the [H24] code (noise scaled by e^-2T, OLS on "
                          "one draw); expectation (memphase's, beside it): exact least squares over "
                          "the noise, prior N(0, I)"),
        "seeds": Field("list[int]", [0], check=lambda v: v >= 0, rule="must be >= 0"),
    },
    "measure": {
        "repeats": Field("int", 100, check=lambda v: 2 <= v <= 10**5, rule="2..1e5",
                         help="training sets per cell (KL average, criteria, P(gen))"),
        "n_ref": Field("int", 10_000, check=lambda v: 1 <= v <= 10**5, rule="1..1e5",
                       help="reference-set size of the [H24] criterion (official: 1e4)"),
        "reference": Field("str", "fresh", choices=lm.REFERENCES,
                           help="fresh: a new reference set per training set (official LDM.py; "
                                "the interval of P then includes the reference-set variance); "
                                "shared: one per cell (its O(n_ref^2 d) self-overlap once; P "
                                "carries that one draw's luck)"),
        "generated_covariance": Field("str", "BtB", choices=lm.COVARIANCES,
                                      help="official fit, covariance of the generated law in the "
                                           "criteria and the Hellinger distance: BtB = v B^T B "
                                           "as LDM.py evaluates them; BBt = v B B^T, the law of "
                                           "the generated samples (the KL always uses BBt)"),
        "expected_kl_repeats": Field("int", 4000, check=lambda v: v >= 0, rule="must be >= 0",
                                     help="Wishart draws of expected_kl (0: skip; expectation "
                                          "fit only)"),
        "mc_n_train": Field("list[int]", [11, 20, 100, 400], check=lambda v: v >= 1,
                            rule="must be >= 1", allow_empty=True,
                            help="N at which the KL is checked by Monte Carlo ([] : never)"),
        "mc_samples": Field("int", 100_000, check=lambda v: v >= 2, rule="must be >= 2",
                            help="generated samples of the Monte-Carlo KL check"),
        "smooth_generated": Field("bool", False,
                                  help="symmetric criterion: compare p_gen * k_h with the KDEs"),
    },
}

INFINITE_KL_NOTE = ("KL(generated || sampling) is +inf where N - delta < d (delta = 1 with "
                    "intercept, 0 without): the generated covariance has the rank of C_N < d, so "
                    "the generated law lives on the affine hull of the training set, a null set of "
                    "the sampling law [H24]; stored as inf (squared Hellinger distance 1)")


def cells(cfg) -> list[dict]:
    g = cfg["grid"]
    missing = sorted(set(cfg["measure"]["mc_n_train"]) - set(g["n_train"]))
    if missing:
        raise ValueError(f"measure.mc_n_train values {missing} are not in grid.n_train")
    if "official" in g["fit"] and (min(g["n_train"]) < 2 or not cfg["data"]["intercept"]):
        raise ValueError("grid.fit 'official' needs every n_train >= 2 and data.intercept = true")
    return [{"n_train": n, "d": d, "T": T, "fit": f, "seed": s}
            for n, d, T, f, s in itertools.product(g["n_train"], g["d"], g["T"], g["fit"],
                                                   g["seeds"])]


def kl_monte_carlo(A, b, s, n_samples, rng, *, mu=0.0, prior_mean=0.0, prior_var=1.0):
    """Monte-Carlo KL(p_gen || N(mu 1, s^2 I)) on the one-step generation x = A u + b,
    u ~ N(prior_mean, prior_var I): mean and standard error of log p_gen(x) - log p_s(x),
    p_gen = N(b + A prior_mean, prior_var A A^T) [H24]. Needs A A^T positive definite."""
    d = A.shape[0]
    mean, cov = _law(A, b, prior_mean, prior_var)
    u = prior_mean + math.sqrt(prior_var) * rng.standard_normal((n_samples, d))
    x = u @ A.T + b
    chol = np.linalg.cholesky(cov)
    v = np.linalg.solve(chol, (x - mean).T)
    log_gen = -0.5 * np.sum(v * v, axis=0) - np.sum(np.log(np.diag(chol)))
    xc = x - mu
    log_sampling = -0.5 * np.sum(xc * xc, axis=1) / s**2 - d * math.log(s)
    ratio = log_gen - log_sampling  # the (2 pi)^{-d/2} factors cancel
    return float(ratio.mean()), float(ratio.std(ddof=1) / math.sqrt(n_samples))


def _law(A, b, prior_mean, prior_var):
    """Law of x = A u + b, u ~ N(prior_mean, prior_var I): N(b + A prior_mean, prior_var A A^T)
    (`memphase.physics.linear_model.generated_law`; for the official fit `generated_law_official`)."""
    mean, cov = lm.generated_law(A, b, prior_var * np.eye(A.shape[0]))
    return mean + A @ (np.zeros(A.shape[0]) + prior_mean), cov


def _criterion_law(A, b, u_mean, u_var, fit, covariance):
    """(mean, cov) of the generated law in the criteria and the Hellinger distance: the law of
    x = A u + b, except for the official fit with covariance "BtB", where the covariance is
    u_var A^T A as in the official code (`memphase.physics.linear_model.generated_law_official`)."""
    mean, cov = _law(A, b, u_mean, u_var)
    if fit == "official" and covariance == "BtB":
        cov = u_var * (A.T @ A)
        cov = 0.5 * (cov + cov.T)
    return mean, cov


def _fit(train, T, fit, intercept, rng):
    """(A, b, prior_mean, prior_var) of the one-step map x = A u + b, u ~ N(prior_mean, prior_var I)."""
    if fit == "expectation":
        A, b = lm.fit_linear_denoiser(train, T=T, intercept=intercept)
        return A, b, 0.0, 1.0
    B, beta0 = lm.fit_linear_denoiser_official(train, T, seed=rng)
    m, noise_var = lm.official_noise_scales(T)
    v = m * m * float(np.mean(np.var(train, axis=0, ddof=1))) + noise_var
    return B, beta0, m * train.mean(axis=0), v


def run_cell(cfg, cell) -> dict:
    n, d, T, fit, seed = cell["n_train"], cell["d"], cell["T"], cell["fit"], cell["seed"]
    s, mu, intercept = cfg["data"]["std"], cfg["data"]["mean"], cfg["data"]["intercept"]
    ms = cfg["measure"]
    ss_sets, ss_mc, ss_wishart = np.random.SeedSequence([seed, n, d]).spawn(3)
    rng = np.random.default_rng(ss_sets)
    mu_vec = np.full(d, mu)

    def draw(k):
        return mu + s * rng.standard_normal((k, d))

    h = lm.kde_bandwidth(n, d, s)
    shared = ms["reference"] == "shared"
    ref = log_self_ref = None
    if shared:
        ref = draw(ms["n_ref"])
        log_self_ref = lm.log_kde_self_overlap(ref, lm.kde_bandwidth(ms["n_ref"], d, s))
    R = ms["repeats"]
    kls, hel, rel, dlt = np.empty(R), np.empty(R), np.empty(R), np.empty(R)
    first = None
    for r in range(R):
        train = draw(n)
        A, b, u_mean, u_var = _fit(train, T, fit, intercept, rng)
        first = (A, b, u_mean, u_var) if r == 0 else first
        g_mean, g_cov = _law(A, b, u_mean, u_var)
        c_mean, c_cov = _criterion_law(A, b, u_mean, u_var, fit, ms["generated_covariance"])
        if fit == "expectation":
            kls[r] = lm.kl_generated_to_sampling(train, T=T, s=s, mu=mu_vec, intercept=intercept)
            hel[r] = lm.hellinger_squared(g_mean, g_cov, mu_vec, s * s * np.eye(d))
        else:
            F = math.sqrt(u_var) * A  # F F^T = v B B^T; F^T F = v B^T B (same singular values)
            kls[r] = lm.divergences_to_sampling(g_mean, g_cov, s, mu_vec, cov_factor=F)[0]
            hel[r] = lm.divergences_to_sampling(c_mean, c_cov, s, mu_vec, cov_factor=(
                F.T if ms["generated_covariance"] == "BtB" else F))[1]
        rel[r] = lm.relative_distance(c_mean, c_cov, train, draw(n), h,
                                      smooth_generated=ms["smooth_generated"])
        reference = ref if shared else draw(ms["n_ref"])
        dlt[r] = lm.reference_delta(c_mean, c_cov, train, reference, s=s,
                                    log_self_ref=log_self_ref)
    finite = bool(np.all(np.isfinite(kls)))
    kl_mc = kl_mc_se = math.nan
    if finite and n in ms["mc_n_train"]:
        A, b, u_mean, u_var = first
        kl_mc, kl_mc_se = kl_monte_carlo(A, b, s, ms["mc_samples"], np.random.default_rng(ss_mc),
                                         mu=mu, prior_mean=u_mean, prior_var=u_var)
    kl_exp = kl_exp_se = math.nan
    if ms["expected_kl_repeats"] >= 2 and fit == "expectation" and mu == 0.0:
        kl_exp, kl_exp_se = lm.expected_kl(n, d, T, ms["expected_kl_repeats"],
                                           int(ss_wishart.generate_state(1)[0]), s,
                                           intercept=intercept, return_stderr=True)
    sqrt_r = math.sqrt(R)
    p_ref, p_ref_lo, p_ref_hi = lm.sign_probability(dlt)
    p_sym, p_sym_lo, p_sym_hi = lm.sign_probability(rel)
    return {
        "kl_mean": float(kls.mean()) if finite else math.inf,
        "kl_stderr": float(kls.std(ddof=1) / sqrt_r) if finite else math.nan,
        "kl_first": float(kls[0]),
        "kl_mc": kl_mc,
        "kl_mc_stderr": kl_mc_se,
        "kl_expected": float(kl_exp),
        "kl_expected_stderr": float(kl_exp_se),
        "hellinger2_mean": float(hel.mean()),
        "hellinger2_stderr": float(hel.std(ddof=1) / sqrt_r),
        "reference_delta_mean": float(dlt.mean()),
        "reference_delta_std": float(dlt.std(ddof=1)),
        "p_generalizing": p_ref,
        "p_generalizing_low": p_ref_lo,
        "p_generalizing_high": p_ref_hi,
        "relative_distance_mean": float(rel.mean()),
        "relative_distance_std": float(rel.std(ddof=1)),
        "p_generalizing_symmetric": p_sym,
        "p_generalizing_symmetric_low": p_sym_lo,
        "p_generalizing_symmetric_high": p_sym_hi,
    }


def estimate(cfg, cell) -> dict:
    """Rough cost, calibrated on 2 shared cores: per repeat ~2.5 ms of fitting and bookkeeping,
    three N x N KDE self-overlaps (training, fresh; ~5 ns per pair and dimension-independent
    ~10 ns per pair for the exponential), the cross terms with the reference set (~n_ref d^2
    flop); the reference self-overlap once per cell (or per repeat if not shared); the Wishart
    estimator ~20 d^3 flop per draw; the MC check ~4 d^2 flop per sample."""
    n, d = cell["n_train"], cell["d"]
    ms = cfg["measure"]
    pair = 1e-8 + 1e-10 * d
    ref_self = ms["n_ref"] ** 2 / 2 * pair
    per_repeat = 2.5e-3 + 1.5 * n * n * pair + 2e-9 * (n + ms["n_ref"]) * d * d
    seconds = ms["repeats"] * per_repeat
    seconds += ref_self * (1 if ms["reference"] == "shared" else ms["repeats"])
    if cell["fit"] == "expectation":
        seconds += ms["expected_kl_repeats"] * 20 * d**3 / 1e9
    if n in ms["mc_n_train"]:
        seconds += 4 * ms["mc_samples"] * d * d / 1e9
    block = min(max(n, ms["n_ref"]), 512)
    mem = 8 * (3 * block * block + 4 * (n + ms["n_ref"]) * d + 2 * ms["mc_samples"] * d
               + ms["expected_kl_repeats"] * d * d)
    return {"memory_bytes": int(mem), "seconds": seconds}


_VARS = {
    "kl_mean": ("nats", "mean over training sets of the exact KL(generated || sampling) [H24]"),
    "kl_stderr": ("nats", "standard error of kl_mean over training sets (nan where the KL is inf)"),
    "kl_first": ("nats", "exact KL of the first training set of the cell"),
    "kl_mc": ("nats", "Monte-Carlo KL of the first training set: mean log(p_gen/p_s) on the "
              "one-step generation (nan where not checked or infinite)"),
    "kl_mc_stderr": ("nats", "standard error of kl_mc"),
    "kl_expected": ("nats", "Wishart-spectrum estimate of the training-set average KL "
                    "(memphase.physics.linear_model.expected_kl; expectation fit, zero mean only)"),
    "kl_expected_stderr": ("nats", "standard error of kl_expected"),
    "hellinger2_mean": ("1", "mean over training sets of the squared Hellinger distance between "
                        "the generated and the sampling law (reported by the official [H24] code; "
                        "1 where the generated law is singular)"),
    "hellinger2_stderr": ("1", "standard error of hellinger2_mean"),
    "reference_delta_mean": ("1", "[H24] official Delta = D(p, K_train) - D(p, K_ref) relative to "
                             "int K_train^2 + int K_ref^2, D(p, K) = int K^2 - 2 int p K, bandwidth "
                             "s N_X^(-1/d) per set; mean over training sets"),
    "reference_delta_std": ("1", "std over training sets of the relative reference Delta"),
    "p_generalizing": ("1", "[H24] criterion (official): 1/2 + 1/2 E sign(Delta), reference set of "
                       "n_ref fresh samples"),
    "p_generalizing_low": ("1", "lower end of the 95% Wilson interval of p_generalizing over the "
                           "training sets (includes the reference-set variance when reference = "
                           "fresh; conditional on the one reference set when shared)"),
    "p_generalizing_high": ("1", "upper end of the 95% Wilson interval of p_generalizing"),
    "relative_distance_mean": ("1", "symmetric statistic (not the paper's): (D_train - D_fresh) / "
                               "(int K_train^2 + int K_fresh^2), fresh set of N points, one "
                               "bandwidth s N^(-1/d); mean over training sets"),
    "relative_distance_std": ("1", "std over training sets of the symmetric statistic"),
    "p_generalizing_symmetric": ("1", "1/2 + 1/2 E sign of the symmetric statistic (tends to 1/2 "
                                 "from below by construction)"),
    "p_generalizing_symmetric_low": ("1", "lower end of the 95% Wilson interval of "
                                     "p_generalizing_symmetric over the training sets"),
    "p_generalizing_symmetric_high": ("1", "upper end of the 95% Wilson interval of "
                                      "p_generalizing_symmetric"),
}


def _theory(g, s, intercept, mean):
    """Large-N theory per (n_train, fit, d, T): the expectation fit's O(1/N) KL expansion (nan for
    the official fit) and, per (fit, d, T), the N -> infinity KL and Hellinger values (the
    expectation fit's only for a zero-mean sampling law, nan otherwise)."""
    n = np.asarray(g["n_train"], dtype=float)
    nf, nd, nt = len(g["fit"]), len(g["d"]), len(g["T"])
    large_n = np.full((n.size, nf, nd, nt), np.nan)
    kl_inf, h2_inf = np.empty((nf, nd, nt)), np.empty((nf, nd, nt))
    for i, fit in enumerate(g["fit"]):
        for j, d in enumerate(g["d"]):
            for k, T in enumerate(g["T"]):
                if fit == "expectation" and mean != 0.0:
                    kl_inf[i, j, k] = h2_inf[i, j, k] = np.nan
                elif fit == "expectation":
                    large_n[:, i, j, k] = lm.kl_large_n_limit(n, d, T=T, s=s, intercept=intercept)
                    kl_inf[i, j, k] = lm.kl_large_n_limit(np.inf, d, T=T, s=s, intercept=intercept)
                    m, s2 = lm.noise_scales(T)
                    r = (m * s * s / (m * m * s * s + s2)) ** 2 / (s * s)  # generated var / s^2
                    h2_inf[i, j, k] = -math.expm1(d * (0.25 * math.log(r)
                                                       - 0.5 * math.log(0.5 * (1 + r))))
                else:
                    kl_inf[i, j, k], h2_inf[i, j, k] = lm.official_large_n_limit(d, T, s)
    return large_n, kl_inf, h2_inf


def assemble(cfg, cell_list, results) -> xr.Dataset:
    g = cfg["grid"]
    axes = ("n_train", "fit", "d", "T", "seed")
    coords = {"n_train": g["n_train"], "fit": g["fit"], "d": g["d"], "T": g["T"],
              "seed": g["seeds"]}
    out = fill_grid(zip(cell_list, results), axes, coords, _VARS)
    s, intercept = cfg["data"]["std"], cfg["data"]["intercept"]
    large_n, kl_inf, h2_inf = _theory(g, s, intercept, cfg["data"]["mean"])
    n = np.asarray(g["n_train"], dtype=float)
    delta = 1 if intercept else 0
    infinite = ((n[:, None] - delta) < np.asarray(g["d"])[None, :]).astype(np.int8)
    data_vars = {k: (axes, out[k], {"units": u, "long_name": ln}) for k, (u, ln) in _VARS.items()}
    data_vars["kl_mean"][2]["note"] = INFINITE_KL_NOTE
    data_vars.update({
        "kl_large_n": (("n_train", "fit", "d", "T"), large_n, {
            "units": "nats", "long_name": "large-N expansion of the average KL to O(1/N) "
                                          "(memphase.physics.linear_model.kl_large_n_limit; expectation fit, "
                                          "valid for N >> d; nan for the official fit)"}),
        "kl_infinite_n": (("fit", "d", "T"), kl_inf, {
            "units": "nats", "long_name": "N -> infinity limit of the average KL: the bias of the "
                                          "one-step model at finite T"}),
        "hellinger2_infinite_n": (("fit", "d", "T"), h2_inf, {
            "units": "1", "long_name": "N -> infinity limit of the squared Hellinger distance"}),
        "kl_is_infinite": (("n_train", "d"), infinite, {
            "units": "1", "long_name": "KL is +inf (N - delta < d)", "note": INFINITE_KL_NOTE}),
    })
    return xr.Dataset(
        data_vars,
        coords={
            "n_train": ("n_train", np.asarray(g["n_train"]), {
                "units": "1", "long_name": "training-set size N"}),
            "fit": ("fit", np.asarray(g["fit"], dtype=str), {
                "units": "1", "long_name": "expectation: exact least squares over the noise, prior "
                                           "N(0, I); official: [H24] code, noise scaled by e^-2T, "
                                           "OLS on one draw, prior N(m mu_N, v I)"}),
            "d": ("d", np.asarray(g["d"]), {"units": "1", "long_name": "data dimension"}),
            "T": ("T", np.asarray(g["T"], dtype=float), {
                "units": "OU time", "long_name": "diffusion time of the one-step fit"}),
            "seed": ("seed", np.asarray(g["seeds"]), {
                "units": "1", "long_name": "seed; draws from SeedSequence([seed, N, d])"}),
        },
        attrs={
            "model": "[H24] linear one-step denoiser (Halder, arXiv 2411.17807), OU kernel "
                     "m = e^-T, sigma^2 = 1 - e^-2T; fits 'expectation' and 'official'",
            "sampling_std": float(s),
            "sampling_mean": float(cfg["data"]["mean"]),
            "intercept": int(intercept),
            "kde_bandwidth": "h = s N_X^(-1/d) per set (reference criterion); s N^(-1/d) shared "
                             "(symmetric criterion)",
            "n_ref": int(cfg["measure"]["n_ref"]),
            "reference": cfg["measure"]["reference"],
            "reference_note": ("fresh: a new set of n_ref samples per training set (official "
                               "LDM.py), the interval of P includes its variance"
                               if cfg["measure"]["reference"] == "fresh" else
                               "shared: one set of n_ref samples per cell (not the official "
                               "protocol); the interval of P is conditional on it"),
            "generated_covariance": cfg["measure"]["generated_covariance"],
            "generated_covariance_note": "official fit: criteria and Hellinger distance with "
                                         + ("v B^T B as LDM.py" if cfg["measure"][
                                             "generated_covariance"] == "BtB" else
                                            "v B B^T (not LDM.py's choice)")
                                         + "; KL and its Monte-Carlo check with v B B^T, the "
                                           "law of the generated samples",
            "p_interval": "95% Wilson score interval over the training sets",
            "repeats": cfg["measure"]["repeats"],
            "infinite_kl": INFINITE_KL_NOTE,
            "randomness": "per cell numpy SeedSequence([seed, N, d]).spawn(3): training, fresh and "
                          "reference sets and official noise, Monte-Carlo noise, expected_kl seed "
                          "(same sets at every T and fit)",
        },
    )


def plot(ds: xr.Dataset, path) -> None:
    from memphase.analysis.plots.linear_model import plot_linear_model

    plot_linear_model(ds, path)
