"""The convolutional noise predictor (`memphase.simulate.networks.ConvNet`, kind "conv")."""

from __future__ import annotations

import pytest
import torch

from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.checkpoints import fixed_dsm_loss
from memphase.simulate.networks import (ConvNet, NETWORKS, build_network, check_network_d,
                                        conv_parameter_count, count_parameters)
from memphase.simulate.training import TrainConfig, load_checkpoint, save_checkpoint, train_score


def test_shapes_seeding_and_registry():
    assert NETWORKS["conv"] is ConvNet
    a = build_network("conv", 64, width=8, depth=2, emb_dim=8, seed=1)
    b = build_network("conv", 64, width=8, depth=2, emb_dim=8, seed=1)
    c = build_network("conv", 64, width=8, depth=2, emb_dim=8, seed=2)
    x, nu = torch.randn(5, 64), torch.linspace(-7, 2, 5)
    assert a(x, nu).shape == (5, 64)
    assert torch.equal(a(x, nu), b(x, nu)) and not torch.equal(a(x, nu), c(x, nu))
    with pytest.raises(ValueError, match=r"shape \(B, 64\)"):
        a(torch.randn(5, 63), nu)


@pytest.mark.parametrize("d", [63, 2, 65])
def test_non_square_d_is_refused(d):
    with pytest.raises(ValueError, match=f"square image.*d = {d}$"):
        build_network("conv", d)
    with pytest.raises(ValueError, match=f"square image.*d = {d}$"):
        check_network_d("conv", d)  # the config-time check, no network built
    check_network_d("residual_mlp", d)


def test_config_time_check_accepts_squares_and_names_unknown_kinds():
    for d in (1, 4, 64, 256):
        check_network_d("conv", d)
    with pytest.raises(ValueError, match="unknown network 'cnn'"):
        check_network_d("cnn", 64)


@pytest.mark.parametrize("width, depth, emb_dim", [(32, 2, 32), (8, 1, 4), (12, 3, 16)])
def test_parameter_count_formula(width, depth, emb_dim):
    net = ConvNet(16, width=width, depth=depth, emb_dim=emb_dim)
    # independent tally: input conv, per block 2 convs + 2 GroupNorms + embedding, head, output
    conv = lambda i, o: 9 * i * o + o  # noqa: E731
    by_hand = (conv(1, width) + depth * (2 * conv(width, width) + 4 * width
                                         + emb_dim * width + width)
               + 2 * width + conv(width, 1))
    assert count_parameters(net) == by_hand == conv_parameter_count(width, depth, emb_dim)
    assert conv_parameter_count(32, 2, 32) == 40_033  # the figure quoted in the docstring


def _shift_pair(side=16):
    """A random 2x2 patch on a zero background, and the same patch one pixel to the right."""
    g = torch.Generator().manual_seed(3)
    img = torch.zeros(side, side, dtype=torch.float64)
    img[7:9, 6:8] = torch.randn(2, 2, generator=g, dtype=torch.float64)
    return img.reshape(1, -1), torch.roll(img, 1, dims=1).reshape(1, -1)


def test_interior_translation_equivariance():
    """depth 1: the GroupNorms see features of radius <= 3 around the patch (columns 3..11) and
    of the zero padding (3 pixels from each border): disjoint, so the normalization statistics do
    not change and the output moves with the patch at every pixel >= 4 from the borders."""
    x, xs = _shift_pair()
    nu = torch.tensor([-1.5], dtype=torch.float64)
    net = build_network("conv", 256, width=8, depth=1, emb_dim=8, seed=0).double()
    with torch.no_grad():
        out, outs = (net(v, nu).reshape(16, 16) for v in (x, xs))
    assert torch.allclose(outs[4:12, 5:12], out[4:12, 4:11], rtol=0, atol=1e-12)
    assert (out[4:12, 4:11] - out[4:12, 5:12]).abs().max() > 1e-3  # the output is not flat
    # a fully connected network of the same contract has no such structure
    mlp = build_network("residual_mlp", 256, width=32, depth=1, emb_dim=8, seed=0).double()
    with torch.no_grad():
        m, ms = (mlp(v, nu).reshape(16, 16) for v in (x, xs))
    assert (ms[4:12, 5:12] - m[4:12, 4:11]).abs().max() > 1e-3


def test_dsm_training_lowers_the_loss_and_checkpoint_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(24, 16, generator=g, dtype=torch.float64) > 0.5).double() - 0.5
    net = build_network("conv", 16, width=8, depth=1, emb_dim=8, data_var=0.25, seed=0).double()
    sch = OrnsteinUhlenbeck()
    rng = (1e-3, 10.0)
    before = fixed_dsm_loss(net, x, sch, rng, draws=8, seed=1)
    cfg = TrainConfig(steps=150, batch_size=24, noise_draws=4, lr=3e-3, tau_min=rng[0],
                      tau_max=rng[1], seed=0, dtype="float64")
    res = train_score(x, sch, net, cfg)
    after = fixed_dsm_loss(res.network, x, sch, rng, draws=8, seed=1)
    assert after < 0.8 * before
    path = tmp_path / "conv.pt"
    save_checkpoint(path, res.network, cfg)
    back = load_checkpoint(path, cfg)
    assert isinstance(back, ConvNet) and back.side == 4
    nu = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():  # rebuilt in float32: the stored float64 weights rounded once
        assert torch.allclose(back.double()(x[:3], nu), res.network(x[:3], nu), atol=1e-5)


def test_experiment_recipes_pass_the_embedding_dim_to_conv():
    """The memorization/EMM recipe builds a conv net with its embedding_dim as emb_dim."""
    from memphase.simulate.experiments.recipes import build_network_for

    cell = {"network": "conv", "width": 8, "depth": 1, "embedding_dim": 6}
    net = build_network_for({"training": {"skip": False}}, cell, 64, 0.5, init_seed=0)
    assert isinstance(net, ConvNet) and net.emb_dim == 6 and net.hparams["width"] == 8
    with pytest.raises(ValueError, match="d = 61$"):
        build_network_for({"training": {"skip": False}}, cell, 61, 0.5, init_seed=0)
