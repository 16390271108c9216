"""Learned scores: DSM training, the lambda <-> c Tikhonov mapping, Gaussian accuracy,
memorization of tiny training sets, determinism and checkpoints."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from memphase.analysis.memorization import memorization_ratio
from memphase.physics.schedules import GeometricVE, OrnsteinUhlenbeck
from memphase.simulate.data import isotropic_gaussian, spectrum_gaussian
from memphase.simulate.learning.networks import FourierMLP, ResidualMLP, build_network, count_parameters
from memphase.simulate.sampling import sample
from memphase.simulate.scores import EmpiricalScore, GaussianScore, TikhonovScore
from memphase.simulate.scores.learned import LearnedScore
from memphase.simulate.learning.training import (TrainConfig, dsm_loss, load_checkpoint, save_checkpoint,
                               train_score)

OU = OrnsteinUhlenbeck()


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


def mixture_points(train, m, s2, n, seed):
    """n draws of x_t = m y + sigma z, y uniform over the training points."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(train.shape[0], (n,), generator=g)
    z = torch.randn(n, train.shape[1], generator=g, dtype=train.dtype)
    return m * train[idx] + math.sqrt(s2) * z, z


# -- networks -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["residual_mlp", "fourier_mlp"])
def test_networks_shapes_and_seeding(kind):
    a = build_network(kind, 3, width=16, depth=2, seed=4)
    b = build_network(kind, 3, width=16, depth=2, seed=4)
    c = build_network(kind, 3, width=16, depth=2, seed=5)
    x, nu = torch.randn(7, 3), torch.linspace(-10, 5, 7)
    assert a(x, nu).shape == (7, 3)
    assert torch.equal(a(x, nu), b(x, nu)) and not torch.equal(a(x, nu), c(x, nu))
    assert count_parameters(a) == sum(p.numel() for p in a.parameters())
    with pytest.raises(ValueError, match="noise_level"):
        a(x, nu[:3])
    with pytest.raises(ValueError, match="unknown network"):
        build_network("cnn", 3)


def test_reference_network_sizes():
    """[ALD24] residual MLP and [BDKOS25] Fourier MLP at their reference sizes (d = 2)."""
    res, four = ResidualMLP(2), FourierMLP(2)
    # input 2->256, 3 x (LN 512 + embed 64->256 + linear 256->256), head LN + 256->2
    assert count_parameters(res) == 768 + 3 * (512 + 64 * 256 + 256 + 256 * 256 + 256) + 512 + 514
    assert count_parameters(four) == (10 * 256 + 256) + (256 * 256 + 256) + (256 * 2 + 2)


# -- lambda <-> c ---------------------------------------------------------------------------
def test_tikhonov_minimizer_lookup_table():
    """Minimizing the training loss (dsm_loss) over a lookup table eps[bin(x)] at fixed t gives
    the bin average of the Tikhonov closed form eps_c = -sigma s_c with c = lambda, up to Monte
    Carlo error (tolerance 3 %; the unregularized c = 0 answer differs by a factor 2)."""
    train = torch.tensor([[-1.0, 0.3], [0.8, 1.0], [0.4, -0.9]], dtype=torch.float64)
    t = float(OU.time_of_tau(0.25))
    m, s2 = float(OU.mean_scale(t)), float(OU.noise_var(t))
    lam = s2  # c = sigma^2 halves the score
    x, z = mixture_points(train, m, s2, 200_000, seed=0)
    k, lim = 10, 2.0
    ij = ((x.clamp(-lim, lim - 1e-9) + lim) / (2 * lim) * k).long()
    bins = ij[:, 0] * k + ij[:, 1]
    table = torch.zeros(k * k, 2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([table], lr=1, max_iter=50, line_search_fn="strong_wolfe")
    sig2 = torch.full((x.shape[0],), s2, dtype=torch.float64)

    def closure():
        opt.zero_grad()
        loss = dsm_loss(table[bins], z, sig2, lam)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    counts = torch.bincount(bins, minlength=k * k)
    keep = counts > 2000

    def bin_mean(v):
        out = torch.zeros(k * k, 2, dtype=torch.float64).index_add_(0, bins, v)
        return (out / counts.clamp(min=1)[:, None])[keep]

    sigma = math.sqrt(s2)
    eps_c = bin_mean(-sigma * TikhonovScore(train, OU, c=lam)(x, t))
    eps_0 = bin_mean(-sigma * EmpiricalScore(train, OU)(x, t))
    learned = table.detach()[keep]
    assert keep.sum() >= 20
    assert rel_err(learned, eps_c) < 0.03
    assert rel_err(learned, eps_0) > 0.4


def test_tikhonov_minimizer_network():
    """End to end: train_score with tikhonov = lambda at one fixed noise level learns the
    Tikhonov score with c = lambda (relative L2 error < 0.1 on mixture draws; measured ~0.05 over
    seeds), not the c = 0 empirical score (~0.5 away)."""
    train = torch.tensor([[-1.0, 0.3], [0.8, 1.0], [0.4, -0.9]])
    tau = 0.25
    t = float(OU.time_of_tau(tau))
    m, s2 = float(OU.mean_scale(t)), float(OU.noise_var(t))
    net = build_network("residual_mlp", 2, width=64, depth=2, seed=0)
    cfg = TrainConfig(steps=600, noise_draws=256, lr=3e-3, lr_schedule="cosine", tikhonov=s2,
                      tau_min=tau, tau_max=tau, seed=1)
    train_score(train, OU, net, cfg)
    x, _ = mixture_points(train, m, s2, 4000, seed=2)
    s = LearnedScore(net, OU)(x, t)
    err_c = rel_err(s, TikhonovScore(train, OU, c=s2)(x, t))
    err_0 = rel_err(s, EmpiricalScore(train, OU)(x, t))
    assert err_c < 0.1, err_c
    assert err_0 > 0.35, err_0


# -- generalization on plenty of Gaussian data -----------------------------------------------
def test_gaussian_data_learns_population_score_and_does_not_memorize():
    """d = 4, N = 20000 Gaussian points: at mid t (tau = 0.5, 1) the learned score is within 10 %
    (relative L2; measured 0.055, 0.039) of the population score and at least twice closer than
    the isotropic baseline
    N(0, mean variance) the skip connection starts from; its samples do not memorize
    (memorization ratio < 0.05; chance level for fresh samples is ~ 3^-4) and their covariance is
    within 20 % (Frobenius) of the population's."""
    variances = [2.0, 1.0, 0.5, 0.25]
    data = spectrum_gaussian(20_000, variances, seed=1, dtype="float32")
    v0 = float(np.mean(variances))
    net = build_network("residual_mlp", 4, width=64, depth=2, data_var=v0, skip=True, seed=0)
    train_score(data, OU, net, TrainConfig(steps=1000, batch_size=512, lr=2e-3,
                                              lr_schedule="cosine", seed=0))
    score = LearnedScore(net, OU)
    pop = GaussianScore(data.mean, data.cov, OU)
    iso = GaussianScore(data.mean, v0 * np.eye(4), OU)
    g = torch.Generator().manual_seed(7)
    chol = torch.linalg.cholesky(torch.as_tensor(data.cov))
    for tau in (0.5, 1.0):
        t = float(OU.time_of_tau(tau))
        m, s2 = float(OU.mean_scale(t)), float(OU.noise_var(t))
        y = torch.randn(4000, 4, generator=g, dtype=torch.float64) @ chol.T
        xt = (m * y + math.sqrt(s2) * torch.randn(y.shape, generator=g, dtype=y.dtype)).float()
        err, base = rel_err(score(xt, t), pop(xt, t)), rel_err(iso(xt, t), pop(xt, t))
        assert err < 0.1 and err < 0.5 * base, (tau, err, base)
    xs = sample(score, OU, 1000, steps=200, seed=3, dtype="float32")
    assert memorization_ratio(xs, data.x) < 0.05
    cov = np.cov(xs.double().numpy().T)
    assert np.linalg.norm(cov - data.cov) / np.linalg.norm(data.cov) < 0.2


# -- memorization of a tiny training set ----------------------------------------------------
def _memorization_run(n_train, width, steps, seed=2):
    data = isotropic_gaussian(n_train, 2, seed=seed, dtype="float32")
    net = build_network("residual_mlp", 2, width=width, depth=3, seed=0)
    cfg = TrainConfig(steps=steps, noise_draws=32, lr=3e-3, tau_min=1e-4, tau_max=10.0, seed=0)
    train_score(data, OU, net, cfg)
    t_max, t_min = float(OU.time_of_tau(10.0)), float(OU.time_of_tau(1e-4))
    xs = sample(LearnedScore(net, OU), OU, 500, steps=200, seed=3, t_max=t_max, t_min=t_min,
                dtype="float32")
    return memorization_ratio(xs, data.x)


def test_tiny_training_set_is_memorized_fast():
    """d = 2, N = 4 points, full batch, 1500 steps (~10 s): memorization ratio > 0.9."""
    assert _memorization_run(4, 64, 1500) > 0.9


@pytest.mark.slow
def test_large_network_memorizes_ten_points():
    """N = 10 points, width-256 residual MLP, 5000 full-batch steps: memorization ratio > 0.9."""
    assert _memorization_run(10, 256, 5000) > 0.9


# -- determinism, checkpoints, the score interface ------------------------------------------
def _small_run(seed, **kw):
    data = isotropic_gaussian(64, 3, seed=0, dtype="float32")
    net = build_network("fourier_mlp", 3, width=16, depth=2, seed=0)
    cfg = TrainConfig(steps=40, batch_size=16, ema_decay=0.99, checkpoint_steps=(10, 40),
                      seed=seed, **kw)
    return train_score(data, OU, net, cfg)


def test_training_is_deterministic(device):
    a, b, c = (_small_run(seed, device=str(device)) for seed in (0, 0, 1))
    sa, sb, sc = (r.network.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert np.array_equal(a.losses, b.losses)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert sorted(a.checkpoints) == [10, 40]
    assert all(torch.equal(a.checkpoints[40][k], sa[k]) for k in sa)  # EMA weights at the end
    assert not all(torch.equal(a.checkpoints[10][k], sa[k]) for k in sa)
    assert not all(torch.equal(a.raw_state[k], sa[k]) for k in sa)


def test_checkpoint_round_trip_and_config_mismatch(tmp_path):
    res = _small_run(0)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, res.network, res.config)
    loaded = load_checkpoint(path, res.config)
    assert isinstance(loaded, FourierMLP)
    x, nu = torch.randn(5, 3), torch.zeros(5)
    assert torch.equal(loaded(x, nu), res.network(x, nu))
    into = build_network("fourier_mlp", 3, width=16, depth=2, seed=9)
    load_checkpoint(path, dataclasses.asdict(res.config), network=into)
    assert torch.equal(into(x, nu), res.network(x, nu))
    with pytest.raises(ValueError, match="lr"):
        load_checkpoint(path, dataclasses.replace(res.config, lr=5e-4))
    with pytest.raises(ValueError, match="tikhonov"):
        load_checkpoint(path, dataclasses.replace(res.config, tikhonov=0.1))
    with pytest.raises(ValueError, match="width"):
        load_checkpoint(path, res.config, network=build_network("fourier_mlp", 3, width=8))
    save_checkpoint(path, res.network, res.config, state_dict=res.checkpoints[10])
    early = load_checkpoint(path, res.config)
    assert all(torch.equal(early.state_dict()[k], res.checkpoints[10][k])
               for k in res.checkpoints[10])


def test_learned_score_interface(device):
    """s = -eps / sigma; per-sample t equals scalar t; float64 input gives float64 output; the
    network sees x_t / m and log tau, so VE and OU agree at equal tau (s_VE = m s_OU); the result
    lives on x's device."""
    net = build_network("residual_mlp", 2, width=16, depth=1, seed=0)
    score = LearnedScore(net, OU)
    x = torch.randn(6, 2).to(device)
    assert score(x, 0.4).device.type == device.type
    t = 0.4
    sigma = math.sqrt(float(OU.noise_var(t)))
    assert torch.allclose(score(x, t), -score.eps(x, t) / sigma)
    assert torch.allclose(score(x, torch.full((6,), t, device=device)), score(x, t), atol=1e-6)
    s64 = score(x.double(), t)
    assert s64.dtype == torch.float64
    assert torch.allclose(s64.float(), score(x, t), atol=1e-5)
    ve = GeometricVE(sigma_min=0.01, sigma_max=50.0)
    tau = float(OU.tau(t))
    m = float(OU.mean_scale(t))
    s_ve = LearnedScore(net, ve)(x / m, float(ve.time_of_tau(tau)))
    assert torch.allclose(s_ve, m * score(x, t), atol=1e-5)


def _sgd_steps(optimizer, steps, lr=1e-2):
    data = isotropic_gaussian(64, 3, seed=0, dtype="float32")
    net = build_network("residual_mlp", 3, width=16, depth=1, seed=0)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    res = train_score(data, OU, net, TrainConfig(steps=steps, batch_size=16, lr=lr, seed=0,
                                                 optimizer=optimizer))
    return {k: res.network.state_dict()[k] - init[k] for k in init}, res.losses


def test_sgd_optimizers():
    """"sgd" / "sgd_momentum": the first step is -lr * gradient for both (PyTorch's momentum
    buffer starts at the gradient), so they agree after one step and differ after two; unlike
    Adam's first step (about lr * sign(gradient)), the step sizes spread over the parameters."""
    lr = 1e-2
    one = {o: _sgd_steps(o, 1, lr)[0] for o in ("sgd", "sgd_momentum", "adam")}
    assert all(torch.equal(one["sgd"][k], one["sgd_momentum"][k]) for k in one["sgd"])
    moved = lambda d: torch.cat([v.flatten() for v in d.values()]).abs()
    adam, sgd = moved(one["adam"]), moved(one["sgd"])
    adam, sgd = adam[adam > 0], sgd[sgd > 0]
    assert float((adam / lr - 1).abs().median()) < 0.05        # Adam: sign-like first step
    assert float(sgd.std() / sgd.mean()) > 0.5                 # SGD: proportional to the gradient
    two = {o: _sgd_steps(o, 2, lr)[0] for o in ("sgd", "sgd_momentum")}
    assert not all(torch.equal(two["sgd"][k], two["sgd_momentum"][k]) for k in two["sgd"])
    _, losses = _sgd_steps("sgd_momentum", 300, lr)
    assert losses[-50:].mean() < 0.8 * losses[:50].mean()     # it trains


def test_train_config_validation():
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="checkpoint_steps"):
        TrainConfig(steps=10, checkpoint_steps=(20,))
    with pytest.raises(ValueError, match="tau_min"):
        TrainConfig(tau_min=1.0, tau_max=0.1)
    with pytest.raises(ValueError, match="d = 3"):
        train_score(torch.randn(5, 2), OU, build_network("fourier_mlp", 3, width=8),
                    TrainConfig(steps=1))


def test_jacrev_works_when_network_dtype_differs_from_x():
    """A float32 network probed with float64 x: after `prepare` (which `_autograd_jacobian` calls)
    the converted copy exists, so torch.func.jacrev itself runs (no fallback to d backward
    passes) and the Jacobian matches central finite differences."""
    from memphase.analysis.dimensions import _autograd_jacobian
    from memphase.simulate.scores import LearnedScore

    torch.manual_seed(0)
    score = LearnedScore(ResidualMLP(3, width=16, depth=1).float(), OrnsteinUhlenbeck())
    x = torch.randn(4, 3, dtype=torch.float64)
    jac = _autograd_jacobian(score, x, 0.5)
    direct = torch.func.jacrev(lambda xx: score(xx, 0.5).sum(0))(x).permute(1, 0, 2)
    assert torch.equal(jac, direct)
    h = 1e-6
    fd = torch.stack([(score(x + h * e, 0.5) - score(x - h * e, 0.5)) / (2 * h)
                      for e in torch.eye(3, dtype=torch.float64)], dim=2)
    assert torch.allclose(jac, fd, rtol=1e-5, atol=1e-6)
