"""Conformance of memphase's `protocol = "bubm25"` with the official code of [BUBM25] (Bonnaire,
Urfin, Biroli, Mezard, arXiv 2505.17638; tbonnair/Why-Diffusion-Models-Don-t-Memorize,
Experiments/src). Each test re-derives one row of docs/conformance/bubm25.md step by step from a
reading of the official code (written here, not copied) and compares numbers with memphase's on
the official seeds (dataset seed 1 of the README and Scripts/script_run.sh)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from memphase.analysis.memorization import memorization_ratio
from memphase.analysis.training_dynamics import (censored_power_law_fit, distinct_resamples,
                                                  power_law_fit)
from memphase.physics.ddpm import ddpm_chain, two_cluster_population_eps
from memphase.simulate.learning.ddpm import (TimeStepResidualMLP, build_time_step_mlp, ddpm_loss,
                                             ddim_steps, official_training_times, positional_encoding,
                                             sample_ddim, sample_ddpm, train_ddpm, two_clusters)

OFFICIAL_SEED = 1


# --- the official pieces, re-derived -------------------------------------------------------------
def official_chain(T=1000):
    """Diffusion.DiffusionConfig: float32 linspace of betas scaled by 1000/T, cumprod."""
    scale = 1000 / T
    beta = torch.linspace(scale * 1e-4, scale * 2e-2, T, dtype=torch.float32)
    alpha = 1 - beta
    return beta, alpha, torch.cumprod(alpha, dim=0)


def official_pos_enc(d_model, maxlen, min_freq=1e-4):
    pos = np.arange(maxlen)
    freqs = min_freq ** (2 * (np.arange(d_model) // 2) / d_model)
    table = pos[:, None] * freqs[None]
    table[:, ::2] = np.cos(table[:, ::2])
    table[:, 1::2] = np.sin(table[:, 1::2])
    return table


class OfficialBlock(nn.Module):
    def __init__(self, w, maxlen=10000):
        super().__init__()
        self.register_buffer("pe", torch.tensor(official_pos_enc(w, maxlen), dtype=torch.float32))
        self.linear1 = nn.Linear(w, w)
        self.linear2 = nn.Linear(w, w)
        self.norm = nn.LayerNorm(w)

    def forward(self, x, t):
        out = self.linear2(nn.GELU()(self.linear1(x + self.pe[t])))
        return self.norm(x + out)


class OfficialModel(nn.Module):
    """TinyModels.SimpleTimeModel as read: in_layer, out_layer, then 3 blocks."""

    def __init__(self, d, w=128, n_blocks=3):
        super().__init__()
        self.in_layer = nn.Linear(d, w)
        self.out_layer = nn.Linear(w, d)
        self.blocks = nn.ModuleList(OfficialBlock(w) for _ in range(n_blocks))

    def forward(self, x, t):
        x = self.in_layer(x)
        for b in self.blocks:
            x = b(x, t)
        return self.out_layer(x)


def official_generate(n, d, mu=1.0, sigma=1.0, seed=0):
    torch.manual_seed(seed)
    m1 = torch.ones(d) * mu
    x1 = torch.randn(n // 2, d) * sigma + m1
    x2 = torch.randn(n // 2, d) * sigma - m1
    return torch.vstack((x1, x2))


def _copy_official_into_memphase(off: OfficialModel, ours: TimeStepResidualMLP):
    with torch.no_grad():
        ours.inp.load_state_dict(off.in_layer.state_dict())
        ours.out.load_state_dict(off.out_layer.state_dict())
        for a, b in zip(off.blocks, ours.blocks):
            b.lin1.load_state_dict(a.linear1.state_dict())
            b.lin2.load_state_dict(a.linear2.state_dict())
            b.norm.load_state_dict(a.norm.state_dict())


# --- rows ---------------------------------------------------------------------------------------
def test_row_beta_schedule_and_alphabar():
    """Row 'noise schedule': T = 1000 linear betas 1e-4 .. 2e-2 and alphabar = cumprod(1 - beta)."""
    beta, alpha, ab = official_chain()
    ch = ddpm_chain(1000)
    np.testing.assert_allclose(ch.betas, beta.double().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ch.alphabar, ab.double().numpy(), rtol=2e-5)
    assert ch.alphabar[-1] == pytest.approx(4.04e-5, rel=0.01)   # x_T ~ N(0, I) to 1e-4
    # other T: the 1000 / T rescaling
    beta2, _, ab2 = official_chain(250)
    np.testing.assert_allclose(ddpm_chain(250).alphabar, ab2.double().numpy(), rtol=2e-5)


def test_row_positional_encoding():
    """Row 'time input': positional encoding of the integer step, width 128, maxlen 10000."""
    ours = positional_encoding(10000, 128)
    np.testing.assert_allclose(ours, official_pos_enc(128, 10000), rtol=0, atol=1e-12)
    net = TimeStepResidualMLP(8)
    np.testing.assert_allclose(net.blocks[0].pe.double().numpy(), official_pos_enc(128, 10000),
                               atol=1e-6)


def test_row_network_parameter_count_and_function():
    """Row 'network': same parameter count (102,024 at d = 8, width 128, 3 blocks) and the same
    function once the official weights are loaded."""
    off, ours = OfficialModel(8), TimeStepResidualMLP(8)
    n_off = sum(p.numel() for p in off.parameters())
    assert n_off == 102_024
    assert sum(p.numel() for p in ours.parameters()) == n_off
    assert TimeStepResidualMLP.parameter_count(8, 128, 3) == n_off
    _copy_official_into_memphase(off, ours)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(3))
    k = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(ours(x, k), off(x, k), rtol=1e-6, atol=1e-6)


def test_row_network_initialization_official_seed():
    """Row 'seeds' (initialization): run_GMM.py seeds torch with the dataset seed, draws the data,
    then builds the model from the same global stream; memphase's build_time_step_mlp(after_data=n)
    gives the same initial weights."""
    n, d = 32, 8
    with torch.random.fork_rng(devices=[]):
        official_generate(n, d, seed=OFFICIAL_SEED)
        off = OfficialModel(d)
    ours = build_time_step_mlp(d, 128, 3, seed=OFFICIAL_SEED, after_data=n)
    pairs = [(off.in_layer.weight, ours.inp.weight), (off.out_layer.bias, ours.out.bias),
             (off.blocks[2].linear2.weight, ours.blocks[2].lin2.weight)]
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_row_data_generator_official_seed():
    """Row 'data': GMM.generate_GMM(n, d, mu = 1, sigma = 1, seed) bit for bit (seed 1)."""
    with torch.random.fork_rng(devices=[]):
        ref = official_generate(64, 8, 1.0, 1.0, seed=OFFICIAL_SEED)
    ours = two_clusters(64, 8, 1.0, 1.0, seed=OFFICIAL_SEED)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    assert ours[:32].mean() > 0.5 and ours[32:].mean() < -0.5


def test_row_training_loss():
    """Row 'loss': forward_diffusion (sqrt(ab_t) x0 + sqrt(1 - ab_t) eps) then nn.MSELoss(eps, Y)."""
    beta, alpha, ab = official_chain()
    net = TimeStepResidualMLP(8)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 8, generator=g)
    t = torch.randint(1, 1000, (16,), generator=g)
    eps = torch.randn(16, 8, generator=g)
    xt = ab.sqrt().gather(-1, t).reshape(-1, 1) * x0 \
        + (1 - ab).sqrt().gather(-1, t).reshape(-1, 1) * eps
    ref = nn.MSELoss()(eps, net(xt, t))
    ours = ddpm_loss(net, x0, t, eps, ddpm_chain())
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)


def test_row_batches_full_batch_below_512_and_epochs():
    """Row 'batch': DataLoader(batch 512, shuffle) = shuffled epochs, the last partial batch kept;
    n <= 512 is one full batch per step. Steps k are drawn in 1 .. T-1 (randint(1, T))."""
    sizes, ks = [], []

    class Spy(TimeStepResidualMLP):
        def forward(self, x, k):
            sizes.append(x.shape[0])
            ks.append(k.clone())
            return super().forward(x, k)

    net = Spy(8, width=8, n_blocks=1)
    train_ddpm(two_clusters(10, 8, seed=0), net, ddpm_chain(), 6, batch_size=4)
    assert sizes == [4, 4, 2, 4, 4, 2]
    sizes.clear()
    train_ddpm(two_clusters(10, 8, seed=0), net, ddpm_chain(), 3, batch_size=512)
    assert sizes == [10, 10, 10]
    allk = torch.cat(ks)
    assert int(allk.min()) >= 1 and int(allk.max()) <= 999


def test_row_optimizer_hyperparameters():
    """Row 'optimizer': Adam(lr 6e-4, default betas) or SGD(lr 6e-3, momentum 0.95)."""
    from memphase.simulate.learning.ddpm import _optimizer

    net = TimeStepResidualMLP(8, width=8, n_blocks=1)
    adam = _optimizer(net, "adam", 6e-4, 0.95)
    assert isinstance(adam, torch.optim.Adam)
    assert adam.defaults["lr"] == 6e-4 and adam.defaults["betas"] == (0.9, 0.999)
    assert adam.defaults["weight_decay"] == 0
    sgd = _optimizer(net, "sgd_momentum", 6e-3, 0.95)
    assert sgd.defaults["momentum"] == 0.95 and sgd.defaults["lr"] == 6e-3


def test_row_checkpoint_grid():
    """Row 'checkpoint grid': cfg.get_training_times() (0, then log-spaced, rounded down to
    multiples of 250 below 1e4 and of 5000 above)."""
    def mod_unique(a, m):
        return np.unique(a - a % m)
    t1 = mod_unique(np.logspace(np.log10(250 + 1), 4, 10), 250).astype(int)
    t2 = mod_unique(np.logspace(4, 6, 90), 5000).astype(int)
    t3 = mod_unique(np.logspace(6, 7, 10), 5000).astype(int)
    ref = np.unique(np.hstack((0, t1, t2, t3)))
    assert official_training_times(int(ref[-1])) == [int(v) for v in ref]
    assert official_training_times(10000) == [0, 250, 500, 750, 1250, 1750, 2750, 4250, 6500,
                                              10000]


def _official_ddim(model, x, ab, S):
    T = ab.shape[0]
    ts = list(np.linspace(0, T - 1, S, dtype=int)[::-1])
    n = x.shape[0]
    for i in range(len(ts) - 1):
        t, tp = ts[i], ts[i + 1]
        e = model(x, torch.full((n,), int(t), dtype=torch.long))
        s1, sa = (1 - ab[t]).sqrt(), ab[t].sqrt()
        x0 = (x - s1 * e) / sa
        s1p, sap = (1 - ab[tp]).sqrt(), ab[tp].sqrt()
        sigma = 0.0 * torch.sqrt((s1p ** 2 / s1 ** 2) * (1 - sa ** 2 / sap ** 2))
        x = sap * x0 + torch.sqrt(torch.clamp(s1p ** 2 - sigma ** 2, min=1e-8)) * e
    return x


def test_row_sampler_ddim():
    """Row 'sampler': generate.py's DDIM (eta = 0, 100 steps), same start x ~ N(0, I)."""
    _, _, ab = official_chain()
    net = build_time_step_mlp(8, 32, 2, seed=5)
    x_init = torch.randn(50, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = _official_ddim(net, x_init.clone(), ab, 100)
    ours = sample_ddim(net, ddpm_chain(), 50, 8, 100, seed=7)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    assert ddim_steps(1000, 100)[0] == 999 and ddim_steps(1000, 100)[-1] == 0


def test_row_sampler_ddpm_population_score_recovers_law():
    """Row 'sampler' (ancestral variant) and 'population score': with the exact two-cluster
    eps (Diffusion.compute_generalization_score_GMM_alpha read as -sqrt(1 - ab) x score) the
    ancestral DDPM sampler returns the mixture: mean |x . 1| / d = mu, per-cluster std sigma."""
    ch = ddpm_chain()
    _, _, ab = official_chain()
    x = torch.randn(20, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    k = 300
    mean = torch.ones(8, dtype=torch.float64)
    sa = float(ab[k].sqrt())
    off_score = mean * sa * torch.tanh(x @ (mean * sa)).reshape(-1, 1) - x
    ours = two_cluster_population_eps(x.numpy(), k, ch, 1.0)
    np.testing.assert_allclose(ours, -math.sqrt(1 - float(ab[k])) * off_score.numpy(),
                               rtol=1e-5, atol=1e-6)

    class Exact(nn.Module):
        def forward(self, x, k):
            return torch.as_tensor(two_cluster_population_eps(x.double().numpy(), k.numpy(), ch),
                                   dtype=x.dtype)

    s = sample_ddpm(Exact(), ch, 2000, 8, seed=0)
    proj = (s @ torch.ones(8)) / 8
    assert float(proj.abs().mean()) == pytest.approx(1.0, abs=0.05)
    resid = s - torch.sign(proj)[:, None]
    assert float(resid.std()) == pytest.approx(1.0, abs=0.05)


def test_row_fmem_rule_hand_made():
    """Row 'f_mem': compute_fmem.py gap ratio d1 / d2 (two nearest training points) < 1/3."""
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.1, 0.0],     # d1 / d2 = 0.1 / 9.9: memorized
                            [5.0, 0.0],     # 1: not
                            [3.0, 0.0],     # 3 / 7 = 0.43: not
                            [2.4, 0.0],     # 2.4 / 7.6 = 0.316: memorized
                            [0.0, 9.0]])    # 1 / 9: memorized
    dist = torch.cdist(samples, train)
    knn = dist.topk(2, dim=1, largest=False).values
    ref = float((knn[:, 0] / knn[:, 1] < 1 / 3).double().mean())
    assert ref == pytest.approx(3 / 5)
    assert memorization_ratio(samples, train, 1 / 3) == pytest.approx(ref)


def test_censoring_tobit_recovers_slope_and_handles_bounds():
    """Statistics (not an official row): the censored fit recovers a known slope when the largest
    N are only lower bounds, where dropping them (power_law_fit) cannot use them."""
    rng = np.random.default_rng(0)
    n = np.array([8, 16, 32, 64, 128])
    true = 50 * n[:, None] ** 1.0 * np.exp(0.1 * rng.standard_normal((5, 6)))
    budget = 4000.0
    lower = true > budget
    tau = np.where(lower, budget, true)
    r = censored_power_law_fit(n, tau, lower=lower, n_boot=100)
    assert r["exponent"] == pytest.approx(1.0, abs=0.1)
    assert r["ci_low"] <= 1.0 <= r["ci_high"]
    assert r["n_censored_lower"] == int(lower.sum()) > 0
    assert distinct_resamples(4) == 35 and distinct_resamples(2) == 3
    # an upper bound at the first checkpoint pulls the fit only as a bound
    up = np.zeros_like(lower)
    r2 = censored_power_law_fit(n, np.where(lower, np.nan, true), upper=up, n_boot=20)
    assert math.isfinite(r2["exponent"])
    assert power_law_fit(n, np.where(lower, np.inf, true))["n_points"] < 5


def test_row_config_values_match_run_gmm():
    """Rows 'data dimension', 'network width / blocks', 'optimizer', 'batch', 'sampler',
    'noise schedule' of the shipped config: the values of run_GMM.py / generate.py."""
    import tomllib
    from pathlib import Path

    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import training_dynamics as td

    path = Path(__file__).resolve().parents[2] / "data/configs/training_dynamics_bubm25.toml"
    cfg = validate(tomllib.loads(path.read_text()), td.SCHEMA)
    g, b, t = cfg["grid"], cfg["bubm25"], cfg["training"]
    assert cfg["protocol"] == "bubm25"
    assert g["d"] == [8] and g["width"] == [128] and g["depth"] == [3]
    assert g["lr"] == [6e-4] and t["optimizer"] == "adam" and g["batch_size"] == [512]
    assert (b["mu"], b["sigma"], b["timesteps"], b["beta_start"], b["beta_end"]) == \
        (1.0, 1.0, 1000, 1e-4, 2e-2)
    assert (b["sampler"], b["sampler_steps"], b["momentum"]) == ("ddim", 100, 0.95)
    assert cfg["measure"]["ratio_threshold"] == pytest.approx(1 / 3)
    assert td.checkpoint_steps(cfg) == official_training_times(t["steps"])[1:]
    # the default protocol of the job is memphase's own
    assert validate({"job": "training_dynamics"}, td.SCHEMA)["protocol"] == "memphase"


def test_row_no_ema_checkpoint_is_raw_weights():
    """Row 'EMA': run_GMM.py saves model.state_dict() itself (no EMA); so does train_ddpm."""
    net = TimeStepResidualMLP(8, width=8, n_blocks=1)
    res = train_ddpm(two_clusters(8, 8, seed=0), net, ddpm_chain(), 5, checkpoints=[5])
    for key, v in net.state_dict().items():
        torch.testing.assert_close(res["checkpoints"][5][key], v, rtol=0, atol=0)
