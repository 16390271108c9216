"""The convolutional noise predictors (`memphase.simulate.learning.conv_networks`: ConvNet, kind "conv",
and ConvUNet, kind "conv_unet")."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.learning.checkpoints import fixed_dsm_loss
from memphase.simulate.learning.conv_networks import group_count
from memphase.simulate.learning.networks import (ConvNet, ConvUNet, NETWORKS, build_network,
                                                 check_network_d, conv_parameter_count, count_parameters)
from memphase.simulate.learning.training import TrainConfig, load_checkpoint, save_checkpoint, train_score

KINDS = ["conv", "conv_unet"]


def test_either_module_may_be_imported_first():
    """conv_networks registers itself in networks.NETWORKS whichever module is imported first."""
    for first in ("conv_networks", "networks"):
        code = (f"import memphase.simulate.{first}; "
                "from memphase.simulate.learning.networks import NETWORKS, ConvNet; "
                "from memphase.simulate.learning.conv_networks import ConvNet as C; "
                "assert {'conv', 'conv_unet'} <= set(NETWORKS) and C is ConvNet; print('ok')")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_seeding_and_registry(kind):
    assert NETWORKS[kind] is {"conv": ConvNet, "conv_unet": ConvUNet}[kind]
    a = build_network(kind, 64, width=8, depth=2, emb_dim=8, seed=1)
    b = build_network(kind, 64, width=8, depth=2, emb_dim=8, seed=1)
    c = build_network(kind, 64, width=8, depth=2, emb_dim=8, seed=2)
    x, nu = torch.randn(5, 64), torch.linspace(-7, 2, 5)
    assert a(x, nu).shape == (5, 64)
    assert torch.equal(a(x, nu), b(x, nu)) and not torch.equal(a(x, nu), c(x, nu))
    assert a.hparams["kind"] == kind
    with pytest.raises(ValueError, match=r"shape \(B, 64\)"):
        a(torch.randn(5, 63), nu)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [63, 2, 65])
def test_non_square_d_is_refused(kind, d):
    with pytest.raises(ValueError, match=f"'{kind}' needs a square image.*d = {d}$"):
        build_network(kind, d)
    with pytest.raises(ValueError, match=f"square image.*d = {d}$"):
        check_network_d(kind, d)  # the config-time check, no network built
    check_network_d("residual_mlp", d)


def test_unet_needs_an_even_side_and_checks_accept_squares():
    with pytest.raises(ValueError, match=r"even image side; got d = 49 = 7\^2$"):
        build_network("conv_unet", 49)
    build_network("conv", 49, width=4, depth=1, emb_dim=4)
    for d in (4, 64, 256):
        check_network_d("conv", d)
        check_network_d("conv_unet", d)
    with pytest.raises(ValueError, match="unknown network 'cnn'"):
        check_network_d("cnn", 64)


def test_group_count_keeps_two_channels_per_group():
    assert [group_count(c) for c in (1, 2, 4, 8, 12, 16, 24, 32, 64, 7)] == \
        [1, 1, 2, 4, 6, 8, 8, 8, 8, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_noise_level_reaches_the_output_at_small_width(kind):
    """The noise embedding survives the GroupNorm that follows it: with the c_in scaling
    undone (x scaled by sqrt(data_var + tau)), the output still depends on tau."""
    net = build_network(kind, 16, width=8, depth=1, emb_dim=8, seed=0).double()
    x = torch.randn(1, 16, dtype=torch.float64)
    outs = []
    for tau in (0.01, 1.0):
        nu = torch.tensor([tau], dtype=torch.float64).log()
        with torch.no_grad():
            outs.append(net(x * (1.0 + tau) ** 0.5, nu))  # data_var = 1: the same x_in
    assert (outs[0] - outs[1]).abs().max() > 1e-3


@pytest.mark.parametrize("width, depth, emb_dim", [(32, 2, 32), (8, 1, 4), (12, 3, 16)])
def test_parameter_count_formula(width, depth, emb_dim):
    # independent tally: 3x3 conv (i -> o) = 9 i o + o; block(c) = 2 convs + 2 GroupNorms (2c
    # each) + embedding E -> c
    conv = lambda i, o: 9 * i * o + o  # noqa: E731
    block = lambda c: 2 * conv(c, c) + 4 * c + emb_dim * c + c  # noqa: E731
    plain = conv(1, width) + depth * block(width) + 2 * width + conv(width, 1)
    unet = plain + conv(width, 2 * width) + conv(2 * width, width) + depth * (
        block(2 * width) + block(width))
    assert count_parameters(ConvNet(16, width, depth, emb_dim)) == plain \
        == conv_parameter_count(width, depth, emb_dim)
    assert count_parameters(ConvUNet(16, width, depth, emb_dim)) == unet \
        == conv_parameter_count(width, depth, emb_dim, unet=True)
    # the figures quoted in the docstrings
    assert conv_parameter_count(32, 2, 32) == 40_033
    assert conv_parameter_count(16, 1, 32, unet=True) == 39_745


def _shift_pair(side, shift):
    """A random 2x2 patch at the centre of a zero background, and the same patch moved `shift`
    pixels to the right."""
    g = torch.Generator().manual_seed(3)
    img = torch.zeros(side, side, dtype=torch.float64)
    c = side // 2
    img[c - 1:c + 1, c - 2:c] = torch.randn(2, 2, generator=g, dtype=torch.float64)
    return img.reshape(1, -1), torch.roll(img, shift, dims=1).reshape(1, -1)


def _moved(net, side, shift, rows, cols):
    """max |out(shifted input) - shifted out(input)| over rows x cols, and the output's own
    variation there."""
    x, xs = _shift_pair(side, shift)
    nu = torch.tensor([-1.5], dtype=torch.float64)
    with torch.no_grad():
        out, outs = (net(v, nu).reshape(side, side) for v in (x, xs))
    r, c = slice(*rows), slice(*cols)
    cs = slice(cols[0] + shift, cols[1] + shift)
    gap = (outs[r, cs] - out[r, c]).abs().max()
    return float(gap), float((out[r, c] - out[r, cs]).abs().max())


def test_interior_translation_equivariance():
    """conv, depth 1, 16x16: the GroupNorms see features of radius <= 3 around the patch
    (columns 3..11) and of the zero padding (3 pixels from each border): disjoint, so the
    normalization statistics do not change and the output moves with the patch at every pixel
    >= 4 from the borders. A fully connected network of the same contract does not."""
    conv = build_network("conv", 256, width=8, depth=1, emb_dim=8, seed=0).double()
    gap, variation = _moved(conv, 16, 1, (4, 12), (4, 11))
    assert gap < 1e-12 and variation > 1e-3
    mlp = build_network("residual_mlp", 256, width=32, depth=1, emb_dim=8, seed=0).double()
    assert _moved(mlp, 16, 1, (4, 12), (4, 11))[0] > 1e-3


def test_unet_commutes_with_even_shifts_only():
    """conv_unet on 64x64 (patch and padding influences stay apart): a 2-pixel shift moves the
    output with the patch in the centre; a 1-pixel shift does not (the stride-2 grid)."""
    net = build_network("conv_unet", 64 * 64, width=8, depth=1, emb_dim=8, seed=0).double()
    gap, variation = _moved(net, 64, 2, (20, 44), (20, 40))
    assert gap < 1e-12 and variation > 1e-3
    assert _moved(net, 64, 1, (20, 44), (20, 40))[0] > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_dsm_training_lowers_the_loss_and_checkpoint_round_trip(kind, tmp_path):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(24, 16, generator=g, dtype=torch.float64) > 0.5).double() - 0.5
    net = build_network(kind, 16, width=8, depth=1, emb_dim=8, data_var=0.25, seed=0).double()
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
    assert type(back) is NETWORKS[kind] and back.side == 4
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


@pytest.mark.parametrize("kind", KINDS)
def test_label_conditioning(kind):
    """n_classes = K adds one K x emb_dim embedding, created last (every other initial weight
    equals the unconditional network's of the same seed); the label changes the output; a
    conditioned network refuses missing or out-of-range labels in one line."""
    plain = build_network(kind, 16, width=8, depth=1, emb_dim=8, seed=3)
    cond = build_network(kind, 16, width=8, depth=1, emb_dim=8, n_classes=3, seed=3)
    assert count_parameters(cond) == count_parameters(plain) + 3 * 8
    sd = cond.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in plain.state_dict().items())
    assert cond.hparams["n_classes"] == 3 and "n_classes" not in plain.hparams
    x, nu = torch.randn(4, 16), torch.zeros(4)
    a, b = cond(x, nu, torch.tensor([0, 0, 1, 2])), cond(x, nu, torch.tensor([0, 1, 1, 2]))
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="pass labels"):
        cond(x, nu)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        cond(x, nu, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="not label-conditioned"):
        plain(x, nu, torch.zeros(4, dtype=torch.long))


def test_configs_with_a_conv_network_checked_before_compute(tmp_path, capsys):
    """memorization / training_dynamics / geometric refuse a conv network whose d is not an image
    (not a square; on the digits: not the 64 pixels) in one line, exit 2, before any cell runs;
    d = 64 digits with conv_unet plans its cells."""
    from cli_checks import one_line_error

    from memphase.simulate.cli import main
    from memphase.simulate.run.config import ConfigError, validate
    from memphase.simulate.experiments import memorization, training_dynamics

    def mem(model, d, net="conv_unet"):
        return validate({"job": "memorization", "data": {"model": model},
                         "grid": {"n_train": [20], "d": [d], "score": ["learned"],
                                  "network": [net]}}, memorization.SCHEMA)

    with pytest.raises(ConfigError, match=r"needs a square image.*d = 10"):
        memorization.cells(mem("synthetic", 10, "conv"))
    with pytest.raises(ConfigError, match=r"needs the pixels, d = 64; d = 16 principal"):
        memorization.cells(mem("digits", 16))
    assert len(memorization.cells(mem("digits", 64))) == 1
    assert len(memorization.cells(mem("synthetic", 16, "residual_mlp"))) == 1
    td = validate({"job": "training_dynamics", "grid": {"d": [8]},
                   "training": {"network": "conv"}}, training_dynamics.SCHEMA)
    with pytest.raises(ConfigError, match=r"d = 8"):
        training_dynamics.cells(td)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'job = "memorization"\noutput = "{tmp_path / "out.h5"}"\n[data]\n'
                   'model = "digits"\n[grid]\nn_train = [20]\nd = [16]\nscore = ["learned"]\n'
                   'network = ["conv"]\n')
    assert main(["run", str(cfg)]) == 2
    one_line_error(capsys, "d = 16 principal coordinates are not an image")
    assert not (tmp_path / "out.h5").exists()
