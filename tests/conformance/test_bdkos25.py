"""Conformance of memphase with the official code of [BDKOS25] (Baptista, Dasgupta, Kovachki,
Oberai, Stuart, "Memorization and regularization in generative diffusion models", arXiv 2501.15785;
GitHub baptistar/DiffusionModelDynamics, folder 2DGaussianPoints). One test per `same` row of
docs/conformance/bdkos25.md (the row is named in the test's docstring).

Each test re-derives the official computation step by step (written here from reading
`generate_data.py`, `score_models.py` and the notebooks `VE.ipynb`, `VE_TikonovRegularization.ipynb`,
`VE_EmpircalBayes.ipynb`; none of their code is copied) and compares its numbers with memphase's on
the official seeds: the training set of `generate_data.py` (numpy seed 1) and the latents of the
notebooks (torch seed 0, after the notebooks' test draws)."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import torch

from memphase.analysis.memorization import collapse_fraction
from memphase.physics.schedules import ExponentialVE
from memphase.simulate.run.config import validate
from memphase.simulate.experiments import regularization
from memphase.simulate.sampling import sample
from memphase.simulate.scores import EmpiricalScore, FloorNormalizedScore, TikhonovScore

MIRROR = Path("/work/.mirror/baptistar+DiffusionModelDynamics/repo")
BASE = 10.0          # VE().sigma of score_models.py: g(t) = BASE^t
RK_TOL = 1e-5        # ODEsampler(err_tol=1e-5): rtol = atol
EPS_SINGULAR = 1e-6  # model.eps = 1e-6 in VE.ipynb / VE_EmpircalBayes.ipynb (c = 0 and floor runs)
TOL = 1e-2           # `tolerance` of the collapse count in both regularization notebooks
N_LATENTS = 1000     # `batch_size` of the regularization notebooks


# ----------------------------------------------------------------------------- official seeds
def official_training_data() -> np.ndarray:
    """generate_data.py: numpy's legacy global generator seeded with 1, then a (20, 2) standard
    normal draw (saved as training_data.npy)."""
    return np.random.RandomState(1).standard_normal((20, 2))


def official_latents(n: int = N_LATENTS, notebook: str = "tikhonov") -> torch.Tensor:
    """The regularization notebooks: torch seeded with 0 (score_models' import, cell 0), a
    (1000, 2) normal test batch and one uniform test time are drawn, then the (1000, 2) latents
    (VE_TikonovRegularization); VE_EmpircalBayes ("floor") draws 30 trajectory latents first."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.randn(1000, 2)
        torch.rand(1)
        if notebook == "floor":
            torch.randn(30, 2)
        return torch.randn(1000, 2)[:n]


def official_test_points() -> tuple[torch.Tensor, float]:
    """The notebooks' score smoke test: x = randn(1000, 2) and t = rand(1) right after seed 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(1000, 2)
        t = float(torch.rand(1))
    return x, t


# ----------------------------------------------------------------------------- official formulas
def official_std(t):
    """VE.marginal_prob_std: sqrt((sigma^(2t) - 1) / (2 log sigma)), sigma = 10."""
    return np.sqrt((BASE ** (2 * np.asarray(t, float)) - 1) / 2 / np.log(BASE))


def official_g(t):
    """VE.diffusion_coeff: sigma^t."""
    return BASE ** np.asarray(t, float)


def official_logits(x, y, t, dtype):
    """GMM_score.pdf_weights before the softmax: -|x - m y_i|^2 / (2 sigma^2), one column per
    training point (no normalizing constant), m = 1 for the VE."""
    x, y = torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    s = torch.as_tensor(official_std(t), dtype=dtype)
    cols = [-0.5 * ((x - y[i]) ** 2).sum(1) / s**2 for i in range(y.shape[0])]
    return torch.stack(cols, 1), x, y, s


def official_score(x, y, t, c=0.0, dtype=torch.float64):
    """GMM_score (c = 0) and GMM_score_TikhonovRegularized (c > 0): (w @ y - x) / (sigma^2 + c),
    w the softmax of the logits."""
    logits, x, y, s = official_logits(x, y, t, dtype)
    w = torch.softmax(logits, dim=1)
    mean = w @ y
    mean[torch.isnan(mean)] = 0.0
    return (mean - x) / (s**2 + c)


def official_floor_score(x, y, t, tau, dtype=torch.float64):
    """GMM_score_EmpiricalBayes: w_i = exp(l_i - max(logsumexp l, log tau)),
    score = (w @ y - (sum_i w_i) x) / sigma^2."""
    logits, x, y, s = official_logits(x, y, t, dtype)
    denom = torch.clamp(torch.logsumexp(logits, dim=1), min=math.log(tau))
    w = torch.exp(logits - denom[:, None])
    out = w @ y - w.sum(1, keepdim=True) * x
    out[torch.isnan(out)] = 0.0
    return out / s**2


def official_flow(score_fn, latents, t1):
    """DiffusionModel.ODEsampler for the VE: x(1) = latents * sigma(1); solve_ivp RK45 on the
    flattened batch with rtol = atol = 1e-5 from t = 1 to t1 of dx/dt = 0 - (1/2) g^2 s, the score
    evaluated on float32 copies of the state; returns the state at t1."""
    shape = latents.shape
    x0 = (latents.double() * float(official_std(1.0))).numpy().ravel()

    def rhs(t, y):
        xs = torch.tensor(y, dtype=torch.float32).reshape(shape)
        with torch.no_grad():
            s = score_fn(xs, t)
        return (-0.5 * official_g(t) ** 2 * s.double()).numpy().ravel()

    sol = scipy.integrate.solve_ivp(rhs, (1.0, t1), x0, rtol=RK_TOL, atol=RK_TOL, method="RK45")
    assert sol.success
    return torch.from_numpy(sol.y[:, -1].reshape(shape))


def official_collapse_fraction(final, data):
    """The notebooks' count: samples whose smallest distance to a training point is < tolerance,
    divided by the batch size (distances in float32 as the notebooks compute them)."""
    final = torch.as_tensor(final, dtype=torch.float32)
    y = torch.as_tensor(data, dtype=torch.float32)
    count = sum(int(torch.min(torch.sqrt(((final[i] - y) ** 2).sum(1))) < TOL)
                for i in range(final.shape[0]))
    return count / final.shape[0]


def memphase_flow(score, latents, t1, dtype="float64"):
    """memphase's sampler as the regularization experiment calls it (official protocol): RK45,
    rtol = atol = sampler.tol, x(1) = sigma(1) z, no Tweedie."""
    x_init = math.sqrt(float(score.schedule.noise_var(1.0))) * latents.double()
    return sample(score, score.schedule, latents.shape[0], method="rk45", t_max=1.0, t_min=t1,
                  x_init=x_init, record=1, dtype=dtype, denoise_final=False, grid="linear",
                  rtol=RK_TOL, atol=RK_TOL)


@pytest.fixture(scope="module")
def data():
    return official_training_data()


# ----------------------------------------------------------------------------- tests (rows)
def test_official_training_set_is_reproduced(data):
    """Row "data and generator": the training set regenerated from numpy seed 1 is bit-identical
    to the official training_data.npy (when the mirror is on disk); N = 20, d = 2."""
    assert data.shape == (20, 2)
    path = "2DGaussianPoints/training_data.npy"
    if not MIRROR.exists():
        pytest.skip("official mirror not on disk")
    raw = subprocess.run(["git", "-C", str(MIRROR), "show", f"HEAD:{path}"], check=True,
                         capture_output=True).stdout
    np.testing.assert_array_equal(np.load(io.BytesIO(raw)), data)


def test_noise_schedule_same():
    """Row "noise and its units": memphase's ExponentialVE has the official marginal std
    sqrt((10^{2t} - 1) / (2 ln 10)), diffusion g = 10^t and mean 1, on t in [0, 1]."""
    sch = ExponentialVE()
    t = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(np.sqrt(sch.noise_var(t)), official_std(t), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(sch.diffusion_sq(t), official_g(t) ** 2, rtol=1e-13)
    np.testing.assert_array_equal(sch.mean_scale(t), np.ones_like(t))
    assert float(np.sqrt(sch.noise_var(1.0))) == pytest.approx(math.sqrt(99 / (2 * math.log(10))))


@pytest.mark.parametrize("t", [1.0, "official", 0.1, 1e-3, 1e-6])
def test_empirical_score_same(data, t):
    """Row "empirical score": EmpiricalScore = GMM_score on the official test points
    (float64 on both sides: agreement to rounding)."""
    x, t_off = official_test_points()
    t = t_off if t == "official" else t
    got = EmpiricalScore(torch.from_numpy(data), ExponentialVE())(x.double(), t)
    ref = official_score(x, data, t)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9 / float(official_std(t)) ** 2)


@pytest.mark.parametrize("c", [1e-1, 10**-2.5, 1e-5])
def test_tikhonov_score_same(data, c):
    """Row "Tikhonov score": TikhonovScore(c) = GMM_score_TikhonovRegularized(constant=c),
    (w @ y - x) / (sigma^2 + c), at the official test points and three times."""
    x, t_off = official_test_points()
    for t in (1.0, t_off, 1e-4):
        got = TikhonovScore(torch.from_numpy(data), ExponentialVE(), c)(x.double(), t)
        torch.testing.assert_close(got, official_score(x, data, t, c=c), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("tau", [1e-2, 10**-0.5, 10.0])
def test_floor_score_same(data, tau):
    """Row "floor-normalized score": FloorNormalizedScore(tau) = GMM_score_EmpiricalBayes
    (tau_constant = tau), on both sides of the floor."""
    x, t_off = official_test_points()
    x = torch.cat([x.double(), 4.0 * x.double()])           # far points: below the floor
    for t in (1.0, t_off, 0.05):
        got = FloorNormalizedScore(torch.from_numpy(data), ExponentialVE(), tau)(x, t)
        ref = official_floor_score(x, data, t, tau)
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9 / float(official_std(t)) ** 2)


def test_float32_score_evaluation_same(data):
    """Row "precision" (official variant, `sampler.dtype = "float32"`): memphase's RK45 keeps the
    state in float64 and evaluates the score on float32 copies, as `score_eval_wrapper` does, and
    its float32 scores of the float32 training set match the official float32 ones to float32
    rounding."""
    seen = []
    score = TikhonovScore(torch.tensor(data, dtype=torch.float32), ExponentialVE(), 1e-3)

    class Spy:
        dim, schedule = 2, score.schedule

        def __call__(self, x, t):
            seen.append(x.dtype)
            return score(x, t)

    lat = official_latents(20)
    x_init = math.sqrt(float(ExponentialVE().noise_var(1.0))) * lat.double()
    sample(Spy(), ExponentialVE(), 20, method="rk45", t_max=1.0, t_min=0.0, x_init=x_init,
           record=1, dtype="float32", denoise_final=False, grid="linear", rtol=RK_TOL, atol=RK_TOL)
    assert seen and set(seen) == {torch.float32}
    x, t_off = official_test_points()
    y32 = torch.tensor(data, dtype=torch.float32)
    for t in (1.0, t_off, 0.01):
        got = score(x, t)
        ref = official_score(x, y32, t, c=1e-3, dtype=torch.float32)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    cfg = validate({"job": "regularization", "sampler": {"dtype": "float32"}}, regularization.SCHEMA)
    assert cfg["sampler"]["dtype"] == "float32"


def test_initial_samples_and_end_times_same():
    """Rows "anchor (initial samples)" and "grid (end times)": the regularization experiment starts
    at sigma(1) z (ODEsampler: latents * marginal_prob_std(T = 1)), integrates the Tikhonov runs
    with c > 0 to t = 0 (T1 = 0.0 in VE_TikonovRegularization) and the singular ones (c = 0,
    floor) to t = 1e-6 (model.eps in VE.ipynb / VE_EmpircalBayes), RK45 rtol = atol = 1e-5,
    1000 samples, collapse tol 1e-2."""
    cfg = validate({"job": "regularization"}, regularization.SCHEMA)
    sp = cfg["sampler"]
    assert (sp["method"], sp["tol"], sp["t_end"], sp["n_samples"]) == ("rk45", RK_TOL,
                                                                        EPS_SINGULAR, N_LATENTS)
    assert cfg["measure"]["collapse_tol"] == TOL
    assert regularization.closed_form_end_time(cfg, "tikhonov", 1e-3) == 0.0
    assert regularization.closed_form_end_time(cfg, "tikhonov", 0.0) == EPS_SINGULAR
    assert regularization.closed_form_end_time(cfg, "floor") == EPS_SINGULAR
    sch = regularization.schedule(cfg)
    assert math.sqrt(float(sch.noise_var(1.0))) == pytest.approx(float(official_std(1.0)),
                                                                 rel=1e-14)


@pytest.mark.parametrize("c", [1e-1, 1e-3, 10**-4.5])
def test_tikhonov_flow_and_collapse_fraction_same(data, c):
    """Rows "sampler", "estimator" and "threshold": on the official training set and latents
    (first 300 of 1000), memphase's RK45 flow of TikhonovScore(c) from t = 1 to t = 0 ends where
    the official ODEsampler does, and memphase's `collapse_fraction` equals the notebooks' count.
    Tolerance 2e-3 on the end points: two RK45 solutions with rtol = atol = 1e-5 (a local
    tolerance) on float32 (official) and float64 states differ by up to 4e-4 (measured), and the
    official score at exactly t = 0, which RK45's last stage evaluates, is -x / c (all weights NaN,
    set to 0) instead of the limit (y_nn - x) / c: up to 6e-4 more (measured 9e-4 in all at
    c = 0.1; see the row "score at t = 0")."""
    lat = official_latents(300)
    y32 = torch.tensor(data, dtype=torch.float32)
    off = official_flow(lambda x, t: official_score(x, y32, t, c=c, dtype=torch.float32), lat, 0.0)
    mem = memphase_flow(TikhonovScore(torch.from_numpy(data), ExponentialVE(), c), lat, 0.0)
    gap = float((mem - off).norm(dim=1).max())
    assert gap < 2e-3
    # the fractions agree up to the samples that sit within `gap` of the threshold
    dist = torch.cdist(off.double(), torch.from_numpy(data)).min(1).values
    borderline = int(((dist - TOL).abs() <= gap).sum())
    diff = abs(collapse_fraction(mem, torch.from_numpy(data), tol=TOL)
               - official_collapse_fraction(off, data))
    assert diff <= borderline / lat.shape[0] + 1e-12, (diff, borderline)


def test_empirical_flow_collapses_like_the_official(data):
    """Rows "sampler" (c = 0, to t = 1e-6) and "estimator": both flows put every one of the first
    200 official latents within 1e-2 of a training point and agree to 1e-4 (the end points sit
    at sigma(1e-6) K ~ 1e-3 from their training point)."""
    lat = official_latents(200)
    y32 = torch.tensor(data, dtype=torch.float32)
    off = official_flow(lambda x, t: official_score(x, y32, t, dtype=torch.float32), lat,
                        EPS_SINGULAR)
    mem = memphase_flow(EmpiricalScore(torch.from_numpy(data), ExponentialVE()), lat, EPS_SINGULAR)
    assert float((mem - off).abs().max()) < 1e-4
    assert official_collapse_fraction(off, data) == 1.0
    assert collapse_fraction(mem, torch.from_numpy(data), tol=TOL) == 1.0


def test_tikhonov_score_at_t_zero_differs_as_documented(data):
    """Row "score at t = 0" (differs): at sigma = 0 every official logit is -inf, the softmax is
    NaN, the mean is set to 0 and the score is -x / c; memphase returns the limit (y_nn - x) / c."""
    x = torch.tensor([[0.5, 0.5], [-1.0, 2.0]], dtype=torch.float64)
    c = 0.1
    torch.testing.assert_close(official_score(x, data, 0.0, c=c), -x / c)
    y = torch.from_numpy(data)
    nn = torch.cdist(x, y).argmin(1)
    got = TikhonovScore(y, ExponentialVE(), c)(x, 0.0)
    torch.testing.assert_close(got, (y[nn] - x) / c)


# ----------------------------------------------------------------------------- the official variant
def test_official_variant_seeds_same(data):
    """Rows "data and generator" and "sampling noise seeds" (official variant): the experiment's
    `data.generator = "bdkos25"` set and `sampler.latents = "bdkos25"` latents are the ones
    re-derived here, for both notebooks, and leave torch's global state alone."""
    from memphase.simulate.experiments import bdkos25_official

    np.testing.assert_array_equal(bdkos25_official.training_set().x.numpy(), data)
    state = torch.random.get_rng_state()
    torch.testing.assert_close(bdkos25_official.latents("tikhonov"), official_latents().double(),
                               rtol=0, atol=0)
    torch.testing.assert_close(bdkos25_official.latents("floor", 500),
                               official_latents(500, notebook="floor").double(), rtol=0, atol=0)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_official_grids_same():
    """Rows "Tikhonov strengths" and "floor strengths" (official variant), with the seeds, sample
    count and tolerance: regularization_official.toml runs c = logspace(-1, -5, 9)
    (VE_TikonovRegularization, torch float32 there) and tau = logspace(-2, 1, 7) (VE_EmpircalBayes)
    on the official training set and latents."""
    import tomllib

    path = Path(__file__).resolve().parents[2] / "data" / "configs" / "regularization_official.toml"
    cfg = validate(tomllib.loads(path.read_text()), regularization.SCHEMA)
    g, sp = cfg["grid"], cfg["sampler"]
    np.testing.assert_allclose(g["c"], torch.logspace(-1, -5, 9).numpy(), rtol=1e-6)
    np.testing.assert_allclose(g["tau_floor"], torch.logspace(-2, 1, 7).numpy(), rtol=1e-6)
    assert cfg["data"]["generator"] == "bdkos25" and sp["latents"] == "bdkos25"
    assert (sp["n_samples"], sp["tol"], sp["t_end"], cfg["measure"]["collapse_tol"]) == (
        N_LATENTS, RK_TOL, EPS_SINGULAR, TOL)
    assert sorted(g["regularizer"]) == ["floor", "tikhonov"]
    assert sp["dtype"] == "float32"                      # row "precision" (official variant)


def test_official_variant_reproduces_the_official_fractions(data):
    """Rows "Tikhonov score", "floor-normalized score", "sampler", "estimator", end to end: the
    regularization experiment with the official training set and latents (first 200) gives the
    collapse fraction of the re-derived official computation at c = 1e-3, 1e-4 and tau = 0.316,
    up to the samples within the end-point gap of the threshold."""
    n = 200
    cfg = validate({"job": "regularization",
                    "data": {"generator": "bdkos25"},
                    "grid": {"regularizer": ["tikhonov", "floor"], "c": [1e-3, 1e-4],
                             "tau_floor": [10**-0.5], "seeds": [0], "calibration_seeds": [7]},
                    "sampler": {"n_samples": n, "latents": "bdkos25"}}, regularization.SCHEMA)
    from memphase.simulate.experiments import run_in_memory

    ds = run_in_memory(regularization, cfg)[1].isel(seed=0)
    y32 = torch.tensor(data, dtype=torch.float32)
    runs = [(float(ds["tikhonov_collapse_fraction"].sel(c=c)), official_latents(n),
             lambda x, t, c=c: official_score(x, y32, t, c=c, dtype=torch.float32), 0.0)
            for c in (1e-3, 1e-4)]
    runs.append((float(ds["floor_collapse_fraction"].isel(tau_floor=0)),
                 official_latents(n, notebook="floor"),
                 lambda x, t: official_floor_score(x, y32, t, 10**-0.5, dtype=torch.float32),
                 EPS_SINGULAR))
    for got, lat, fn, t1 in runs:
        off = official_flow(fn, lat, t1)
        dist = torch.cdist(off.double(), torch.from_numpy(data)).min(1).values
        borderline = int(((dist - TOL).abs() <= 2e-3).sum())
        assert abs(got - official_collapse_fraction(off, data)) <= borderline / n + 1e-12
