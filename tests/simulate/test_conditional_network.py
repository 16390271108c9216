"""Label-conditioned networks (one class-conditional network, [GDPLLW23]): the API of the
unconditional networks, labels that matter, the conditional DSM optimum, bad labels."""

import math

import pytest
import torch

from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.learning.checkpoints import checkpoint_scores, fixed_dsm_loss
from memphase.simulate.learning.networks import build_network, count_parameters
from memphase.simulate.scores import EmpiricalScore
from memphase.simulate.scores.learned import LearnedScore
from memphase.simulate.learning.training import TrainConfig, train_score

OU = OrnsteinUhlenbeck()
KINDS = ["residual_mlp", "fourier_mlp"]


def _emb_size(kind):
    return {"residual_mlp": {"emb_dim": 8}, "fourier_mlp": {"fourier_dim": 8}}[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_one_class_network_is_the_unconditional_one(kind):
    """n_classes = 1: same call (labels optional, None = class 0), same output shape; with the
    label vector zeroed it is bitwise the unconditional network of the same seed (the embedding
    is created last, so every other initial weight is shared)."""
    plain = build_network(kind, 3, seed=2, width=16, depth=2, **_emb_size(kind))
    one = build_network(kind, 3, seed=2, width=16, depth=2, n_classes=1, **_emb_size(kind))
    x, nu = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), torch.linspace(-6, 2, 5)
    assert one(x, nu).shape == plain(x, nu).shape == (5, 3)
    assert torch.equal(one(x, nu), one(x, nu, torch.zeros(5, dtype=torch.long)))
    assert count_parameters(one) == count_parameters(plain) + 8
    assert "n_classes" not in plain.hparams and one.hparams["n_classes"] == 1
    with torch.no_grad():
        one.label_embedding.weight.zero_()
    assert torch.equal(one(x, nu), plain(x, nu))


@pytest.mark.parametrize("kind", KINDS)
def test_labels_change_the_output(kind):
    net = build_network(kind, 3, seed=0, width=16, depth=2, n_classes=3, **_emb_size(kind))
    x, nu = torch.randn(4, 3, generator=torch.Generator().manual_seed(5)), torch.zeros(4)
    a = net(x, nu, torch.tensor([0, 0, 0, 0]))
    b = net(x, nu, torch.tensor([1, 1, 2, 2]))
    # every row changes (a ReLU network may leave single components equal: not the min over all)
    assert float((a - b).detach().abs().amax(dim=1).min()) > 1e-4
    mixed = net(x, nu, torch.tensor([0, 1, 0, 2]))  # each row depends on its own label only
    assert torch.allclose(mixed[[0, 2]], a[[0, 2]]) and torch.allclose(mixed[1], b[1])


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 1, 3]), r"labels must lie in \[0, 3\)"),
    (torch.tensor([0, -1, 2]), r"labels must lie in \[0, 3\)"),
    (torch.tensor([0, 1]), r"labels must have shape \(3,\)"),
    (torch.zeros(3, 1, dtype=torch.long), r"labels must have shape \(3,\)"),
    (torch.tensor([0.0, 1.0, 2.0]), "labels must be integers"),
    (None, "conditioned on n_classes = 3 labels: pass labels"),
])
def test_bad_labels_are_one_line_errors(labels, match):
    net = build_network("residual_mlp", 2, seed=0, width=8, depth=1, emb_dim=4, n_classes=3)
    with pytest.raises(ValueError, match=match) as e:
        net(torch.zeros(3, 2), torch.zeros(3), labels)
    assert "\n" not in str(e.value)


def test_labels_refused_where_they_cannot_be_used():
    plain = build_network("residual_mlp", 2, seed=0, width=8, depth=1, emb_dim=4)
    with pytest.raises(ValueError, match="not label-conditioned"):
        plain(torch.zeros(2, 2), torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not label-conditioned"):
        train_score(torch.zeros(2, 2), OU, plain, TrainConfig(steps=1), labels=[0, 1])
    cond = build_network("residual_mlp", 2, seed=0, width=8, depth=1, emb_dim=4, n_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):  # before any step
        train_score(torch.zeros(2, 2), OU, cond, TrainConfig(steps=1), labels=[0, 2])
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        train_score(torch.zeros(2, 2), OU, cond, TrainConfig(steps=1), labels=[0, 1, 1])
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        cond.eval()
        LearnedScore(cond, OU).given(torch.tensor([5, 0]))(torch.zeros(2, 2), 0.5)


def test_conditional_dsm_beats_the_bayes_optimal_unconditional_loss():
    """Two classes of one point each, y_0 = (1, 1), y_1 = (-1, -1). Given its label, a noised
    point determines its noise exactly: the conditional DSM optimum is eps* = z, loss 0. Without
    labels no network can go below the Bayes loss of the exact two-point empirical eps (the
    posterior mean is a softmax over the two points), computed here on the same fixed draws
    (0.066 for tau log-uniform in [1e-2, 10]). The label-conditioned network trained by DSM with
    labels gets far below it (measured 0.002); the same network trained without labels (class 0
    for every point) stays at it (measured 0.075; 0.39 when then fed the true labels)."""
    y = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    labels = torch.tensor([0, 1])
    tau_range = (1e-2, 10.0)
    cfg = TrainConfig(steps=400, noise_draws=128, lr=1e-2, lr_schedule="cosine",
                      tau_min=tau_range[0], tau_max=tau_range[1], seed=0,
                      checkpoint_steps=(200, 400))

    def net():
        return build_network("residual_mlp", 2, seed=1, width=32, depth=2, emb_dim=16,
                             data_var=1.0, n_classes=2)

    cond = train_score(y, OU, net(), cfg, labels=labels)
    blind = train_score(y, OU, net(), cfg, labels=torch.zeros(2, dtype=torch.long))
    loss_cond = fixed_dsm_loss(cond.network, y, OU, tau_range, draws=256, seed=9, labels=labels)
    loss_blind = fixed_dsm_loss(blind.network, y, OU, tau_range, draws=256, seed=9,
                                labels=labels)  # labels unseen in its training: class-1 rows new

    # Bayes loss without labels, same draws as fixed_dsm_loss (its Generator(seed) order)
    from memphase.simulate.base.device import generator
    from memphase.simulate.learning.training import sample_noise_levels

    gen = generator(9, torch.device("cpu"))
    yy = y.repeat(256, 1)
    tau, _ = sample_noise_levels(OU, yy.shape[0], tau_range, "log_tau", gen, torch.float32,
                                 torch.device("cpu"))
    z = torch.randn(yy.shape, generator=gen)
    x = yy + torch.sqrt(tau)[:, None] * z
    logits = -((x[:, None, :] - y[None]) ** 2).sum(-1) / (2 * tau[:, None])
    mean = torch.softmax(logits, 1) @ y
    eps_bayes = (x - mean) / torch.sqrt(tau)[:, None]
    bayes = float(((eps_bayes - z) ** 2).mean())
    assert 0.03 < bayes < 0.3
    assert loss_cond < 0.3 * bayes
    blind_own = fixed_dsm_loss(blind.network, y, OU, tau_range, draws=256, seed=9,
                               labels=torch.zeros(2, dtype=torch.long))
    assert blind_own > 0.8 * bayes and loss_blind > bayes
    # the conditional checkpoints are conditional scores too (the [GDPLLW23] checkpoint search)
    scores = dict(checkpoint_scores(cond.network, cond, OU))
    assert sorted(scores) == [200, 400]
    t = float(OU.time_of_tau(0.05))
    xt = torch.tensor([[0.9, 1.1], [-1.2, -0.8]]) * OU.mean_scale(t)
    exact = torch.cat([EmpiricalScore(y[:1], OU)(xt[:1], t), EmpiricalScore(y[1:], OU)(xt[1:], t)])
    got = scores[400].given(labels)(xt, t)
    assert float((got - exact).norm() / exact.norm()) < 0.1
    assert math.isfinite(float(scores[200](xt, t, labels).sum()))
