"""The geometric experiment ([ALD24] linear manifolds) through the experiment interface: closed-form
scores, the alpha axis, the phase-diagram variables with both theories, learned scores."""

import math

import numpy as np
import pytest
import torch
import xarray as xr

from memphase.analysis.dimensions import score_jacobian
from memphase.analysis.plots import plot_geometric_learned
from memphase.physics import critical
from memphase.physics.manifold import normalized_variances
from memphase.physics.schedules import OrnsteinUhlenbeck
from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import geometric, run_in_memory

OU = OrnsteinUhlenbeck()



def tiny_config(data=None, measure=None, train=None, **grid):
    raw = {"job": "geometric",
           "data": {"block_dims": [2, 3], "normal_std": 0.01, "normalize": "none", **(data or {})},
           "grid": {"n_train": [2, 300], "d": [12], "std_ratio": [0.3],
                    "score": ["empirical", "population"], "seeds": [0], **grid},
           "measure": {"n_tau": 10, "n_points": 6, "tau_min": 1e-4, "tau_max": 1.0,
                       "tau_phase": 0.01, **(measure or {})},
           "train": {"depth": 1, "steps": [3, 6], "batch_size": 0, **(train or {})}}
    return validate(raw, geometric.SCHEMA)


def run(cfg):
    return run_in_memory(geometric, cfg)


def test_geometric_cells_assemble_with_theory():
    cfg = tiny_config()
    cells, ds = run(cfg)
    assert len(cells) == 4
    kept = ds["kept_fraction"].isel(d=0, std_ratio=0, seed=0)
    small = ds["tau"] < 1e-3
    # population score: nothing lost at small tau in either tangent block
    assert np.all(kept.sel(score="population", block=[0, 1]).where(small, drop=True) == 1.0)
    # empirical score with N = 2: every tangent direction lost well below the data scale
    assert np.all(kept.sel(score="empirical", n_train=2, block=[0, 1]).where(small, drop=True) == 0.0)
    # theory columns: the higher-variance block is lost first (larger tau_c) [ALD24]
    th = ds["critical_tau_theory"].sel(n_train=300).isel(d=0, std_ratio=0)
    assert float(th.sel(block=0)) > float(th.sel(block=1)) > 0
    assert np.all(np.isfinite(ds["critical_tau_theory"].sel(n_train=2)))  # alpha > 0 from N = 2
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds["critical_tau"].attrs["units"] == "data variance"
    # population score: the posterior-variance ratio is exactly 1 at every anchor, so no block
    # carries either signature; the empirical score with N = 2 collapses (rho < 1/2) at every tau probed
    pop = ds.sel(score="population").isel(d=0, std_ratio=0, seed=0)
    np.testing.assert_allclose(pop["variance_ratio"], 1.0, atol=1e-9)
    assert np.all(np.isnan(pop["critical_tau"]))
    emp1 = ds["critical_tau"].sel(score="empirical", n_train=2, signature="collapse").isel(
        d=0, std_ratio=0, seed=0)
    assert np.all(np.isinf(emp1))
    # exact and probe spectra are max-normalized, beside each other per anchor
    sv = ds["singular_value"].sel(score="population").isel(d=0, std_ratio=0, seed=0)
    np.testing.assert_allclose(sv.isel(rank=0), 1.0)
    # the official anchor first, memphase's beside it, each labelled with its protocol
    assert list(ds["anchor"].values) == ["origin", "train", "fresh", "mean"]
    assert list(ds["anchor_protocol"].values) == ["ald24", "memphase", "memphase", "memphase"]
    # normalize = "none" has the official generator: protocol "auto" resolves to it
    assert ds.attrs["data_protocol"] == "ald24" and ds.attrs["data_protocol_key"] == "auto"
    assert ds.attrs["tau_spacing"] == "linear"


def test_geometric_config_errors():
    with pytest.raises(ConfigError, match="unknown key 'n_trains'"):
        validate({"job": "geometric", "grid": {"n_trains": [3]}}, geometric.SCHEMA)
    with pytest.raises(ConfigError, match="must exceed the tangent dimension"):
        geometric.cells(tiny_config(d=[4]))
    with pytest.raises(ConfigError, match="tau_phase"):
        geometric.cells(tiny_config(measure={"tau_phase": 10.0}))
    # N = 1 has no theory (alpha = log N / d = 0) and NaN critical taus: refused at load
    with pytest.raises(ConfigError, match=r"'grid.n_train' = 1 is out of range: 2 <= n_train"):
        tiny_config(n_train=[1, 300])
    with pytest.raises(ConfigError, match=r"alpha = 0.01 at d = 12 gives N = .* = 1, outside \[2"):
        geometric.cells(tiny_config(n_train=[], alpha=[0.01]))
    # alpha d beyond the float range of exp(): a message, not OverflowError
    with pytest.raises(ConfigError, match=r"alpha = 100 at d = 12 gives N = .* overflow"):
        geometric.cells(tiny_config(n_train=[], alpha=[100.0]))


def test_alpha_axis_validation_and_sizes():
    """Exactly one of n_train / alpha; N = round(e^{alpha d}) per d, bounded by 1e6."""
    with pytest.raises(ConfigError, match="exactly one of grid.n_train or grid.alpha"):
        geometric.cells(tiny_config(alpha=[0.2]))  # both
    with pytest.raises(ConfigError, match="neither"):
        geometric.cells(tiny_config(n_train=[]))
    with pytest.raises(ConfigError, match="out of range"):
        tiny_config(n_train=[], alpha=[-0.1])
    with pytest.raises(ConfigError, match="gives N = "):
        geometric.cells(tiny_config(n_train=[], alpha=[2.0], d=[12]))  # e^24 > 1e6
    cfg = tiny_config(n_train=[], alpha=[0.2, 0.35], d=[10, 12], score=["population"])
    cells, ds = run_in_memory(geometric, cfg)
    assert {(c["alpha"], c["d"], c["n_train"]) for c in cells} == {
        (a, d, round(math.exp(a * d))) for a in (0.2, 0.35) for d in (10, 12)}
    assert ds["kept_fraction"].dims[:3] == ("score", "alpha", "d")
    np.testing.assert_array_equal(ds["n_train"].sel(alpha=0.35, d=12), round(math.exp(4.2)))


def test_phase_dataset_carries_both_theories(tmp_path):
    """The phase variables: [ALD24] tau_c per block (g = 0: v / (2 ln N)), the REM tau_C (it solves
    ln N = (1/2) sum_j log(1 + v_j / tau)), both with the actual variances v of the radius-normalized
    law (not the nominal std^2), and the lost directions at tau_phase predicted by each; the
    measured lost count is k_b (1 - kept fraction at tau_phase)."""
    cfg = tiny_config(data={"normalize": "radius"}, n_train=[], alpha=[0.3, 0.5], d=[10],
                      std_ratio=[0.4, 1.0], score=["empirical"], measure={"tau_phase": 0.05})
    _, ds = run(cfg)
    for a in (0.3, 0.5):
        n = round(math.exp(10 * a))
        for r in (0.4, 1.0):
            sel = ds.sel(alpha=a, d=10, std_ratio=r)
            nominal = np.r_[np.ones(2), np.full(3, r**2), np.full(5, 1e-4)]
            spectrum = normalized_variances(nominal, "radius")
            var = spectrum[[5, 0, 2]]
            assert not np.allclose(var, [1e-4, 1.0, r**2], rtol=0.05)  # normalization matters
            np.testing.assert_allclose(sel["block_variance"], var, rtol=1e-12)
            np.testing.assert_allclose(sel["critical_tau_theory"], var / (2 * math.log(n)),
                                       rtol=1e-12)
            tc = float(sel["critical_tau_rem"])
            assert abs(0.5 * np.sum(np.log1p(spectrum / tc)) - math.log(n)) < 1e-9
            k = np.array([5, 2, 3])
            for name, tau_c in (("lost_dims_theory", var / (2 * math.log(n))),
                                ("lost_dims_rem", np.full(3, tc))):
                kept = (0.05 >= tau_c) & (var / (0.05 + var) >= 0.5)
                np.testing.assert_array_equal(sel[name].values, k * (1 - kept), err_msg=name)
    kept_at = ds["kept_fraction"].sel(tau=0.05)
    expected = (ds["block_dim"] * (1 - kept_at)).drop_vars("tau")
    xr.testing.assert_allclose(ds["lost_dims"], expected.transpose(*ds["lost_dims"].dims))
    assert ds["lost_dims"].attrs["units"] == "count"
    # threshold sensitivity: kept fractions can only shrink as the threshold rises (r >= th)
    kf = ds["kept_fraction_by_threshold"].transpose("threshold", ...).values
    assert np.all(np.diff(kf, axis=0) <= 1e-12)
    np.testing.assert_allclose(ds["critical_tau_by_threshold"].sel(threshold=0.5),
                               ds["critical_tau_kept"])
    assert ds["critical_tau"].dims[-3:] == ("anchor", "signature", "block")
    # the official theory panel: each block's predicted singular value over the largest, <= 1
    th = ds["singular_value_theory_normalized"].sel(block=[0, 1])
    assert float(th.max()) <= 1 + 1e-12 and float(th.min()) > 0
    geometric.plot(ds, tmp_path / "phase.png")  # main figure and phase diagram
    assert (tmp_path / "phase.png").stat().st_size > 0 and (tmp_path / "phase_phase.png").exists()


def _fd_jacobian(score, x, t, h=1e-5):
    """Central finite differences, J[b, i, j] = (s_i(x + h e_j) - s_i(x - h e_j)) / 2h."""
    cols = []
    for j in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, j] = h
        cols.append((score(x + e, t) - score(x - e, t)) / (2 * h))
    return torch.stack(cols, dim=2)


def test_learned_score_pipeline_and_jacobian_matches_finite_differences(tmp_path):
    cfg = tiny_config(n_train=[8], d=[6], score=["empirical", "learned"], width=[8, 16],
                      data={"block_dims": [1, 2]}, measure={"n_tau": 4, "n_points": 3})
    cells, ds = run_in_memory(geometric, cfg)
    learned = [c for c in cells if c["score"] == "learned"]
    assert len(learned) == 2 and all("train_step" not in c for c in learned)  # one run per width
    lk = ds["learned_kept_fraction"]
    assert lk.dims == ("n_train", "d", "std_ratio", "seed", "width", "train_step", "anchor", "tau",
                       "block")
    assert list(ds["train_step"].values) == [3, 6] and np.all(np.isfinite(lk.sel(block=[0, 1])))
    assert np.all(np.isfinite(ds["learned_train_loss"])) and "learned_lost_dims" in ds
    assert "empirical" in ds["score"].values  # beside the empirical score of the same data
    assert plot_geometric_learned(ds, tmp_path / "g_learned")[0].stat().st_size > 0

    # the torch.func Jacobian of the trained network equals central finite differences
    cell = learned[0]
    data = geometric._manifold(cfg, cell)
    res, net = geometric._train(cfg, cell, data, OU)
    score = geometric.learned_score_at(net, res.checkpoints[6], OU)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    t = float(OU.time_of_tau(0.05))
    jac_func = torch.func.jacrev(lambda xx: score(xx, t).sum(0))(x).permute(1, 0, 2)
    torch.testing.assert_close(score_jacobian(score, x, t, method="autograd"), jac_func)
    torch.testing.assert_close(jac_func, _fd_jacobian(score, x, t), rtol=1e-6, atol=1e-7)
    # the checkpoints are reused: training again gives the same weights (seeded)
    res2, _ = geometric._train(cfg, cell, data, OU)
    assert all(torch.equal(res.checkpoints[6][k], res2.checkpoints[6][k]) for k in res2.checkpoints[6])


def test_estimate_scales_with_the_cell():
    cfg = tiny_config(score=["empirical", "learned"])
    est = {(c["score"], c["n_train"]): geometric.estimate(cfg, c) for c in geometric.cells(cfg)}
    assert all(v["memory_bytes"] > 0 and v["seconds"] > 0 for v in est.values())
    assert est[("empirical", 300)]["seconds"] > est[("empirical", 2)]["seconds"]
    assert est[("learned", 300)]["seconds"] > est[("empirical", 300)]["seconds"]


def test_training_anchors_collapse_at_rem_tau_and_mean_anchor_ratio_misses_ald24():
    """[ALD24] protocol study (docs/theory.md; benchmarks/geometric_d_scaling.py), two cells:
    (1) d = 60, blocks (4, 1.0), (10, 0.3), unit sphere, N = 4000: at training-point anchors both
    blocks carry the collapse signature below the single REM tau_C (with the actual variances)
    within a factor 1.5, and their ratio is within [0.7, 1.4] (the [ALD24] formula predicts
    v_0 / v_1 = 7.8); (2) d = 30, N = 1000, data-mean anchor (the official protocol): the excess
    signature orders the blocks as [ALD24] (std-1 block first), with a ratio below half of
    v_0 / v_1 = 5.96."""
    from memphase.analysis.dimensions import jacobian_sweep
    from memphase.simulate.data import linear_manifold
    from memphase.simulate.scores import EmpiricalScore

    taus = np.geomspace(1e-5, 1.0, 31)
    for d, n, anchor, sig in ((60, 4000, "train", "collapse"), (30, 1000, "mean", "excess")):
        k1, k2 = d // 15, d // 6
        meas = []
        for seed in (0, 1):
            data = linear_manifold(n, d, [(k1, 1.0), (k2, 0.3)], normal_std=0.01,
                                   normalize="sphere", seed=seed)
            ds = jacobian_sweep(EmpiricalScore(data, OU), data, taus, n_points=32, seed=seed,
                                anchor=anchor, spectrum=False)
            meas.append(ds.critical_tau.sel(signature=sig, block=[0, 1]).values)
        tau = np.exp(np.log(np.array(meas)).mean(0))
        v = data.variances()
        if anchor == "train":
            rem = float(critical.collapse_tau(n, v))
            assert np.all((tau / rem > 1 / 1.5) & (tau / rem < 1.5)), (tau, rem)
            assert 0.7 < tau[0] / tau[1] < 1.4
        else:
            assert 1.0 < tau[0] / tau[1] < 0.5 * v[0] / v[k1], (tau, v[0] / v[k1])


def test_defaults_are_the_official_protocol_with_memphase_variants():
    """Issue 27: the geometric job defaults to the official [ALD24] protocol (generator, grid
    var = linspace(1, 0.01, 100), origin anchor first, finite-difference estimator, VE), memphase's
    own stays a named variant, and the resolution is per data model with one-line errors."""
    from memphase.simulate.experiments.geometric_grid import taus
    from memphase.simulate.experiments.geometric_results import protocol_attrs
    from memphase.simulate.experiments.geometric_theory import data_protocol

    cfg = validate({"job": "geometric", "grid": {"n_train": [8]}}, geometric.SCHEMA)
    official = np.linspace(1, 0.01, 100)[::-1]  # the notebook's sigma_range, looped reversed
    np.testing.assert_allclose(taus(cfg), official, rtol=1e-14)  # tau_phase 0.1 is on it
    assert taus(cfg).size == 100
    ms = cfg["measure"]
    assert ms["anchors"][0] == "origin" and ms["fd_spectrum"] and ms["schedule"] == "ve"
    assert data_protocol(cfg) == "ald24" and protocol_attrs(cfg)["protocol"] == "ald24"
    radius = validate({"job": "geometric", "grid": {"n_train": [8]},
                       "data": {"normalize": "radius"}}, geometric.SCHEMA)
    assert data_protocol(radius) == "memphase"  # the official generator has no radius mode
    assert protocol_attrs(radius)["protocol"].startswith("mixed")
    mem = validate({"job": "geometric", "grid": {"n_train": [8]}, "data": {"protocol": "memphase"},
                    "measure": {"tau_spacing": "log", "tau_min": 1e-5, "n_tau": 31,
                                "anchors": ["train", "fresh", "mean"], "fd_spectrum": False}},
                   geometric.SCHEMA)
    assert protocol_attrs(mem)["protocol"] == "memphase"
    np.testing.assert_allclose(np.diff(np.log(taus(mem))), np.log(10) / 6)  # 0.1 on it
    with pytest.raises(ConfigError, match=r"^data.protocol = 'ald24' .*unit sphere only"):
        geometric.cells(validate({"job": "geometric", "grid": {"n_train": [8]},
                                  "data": {"normalize": "radius", "protocol": "ald24"}},
                                 geometric.SCHEMA))
    with pytest.raises(ConfigError, match=r"digits' has none"):
        geometric.cells(validate({"job": "geometric", "grid": {"n_train": [8]},
                                  "data": {"model": "digits", "protocol": "memphase"}},
                                 geometric.SCHEMA))


def test_law_normalized_ratio_at_the_origin_is_the_training_covariance_over_the_law():
    """measure.law_samples: rho_law over the same law's posterior (issue 27). At the exact origin
    of unit-sphere data every weight is 1/N, so Cov_w[y|x] is the training-set covariance C_N and
    the law's posterior is its prior: rho_law,u = u^T C_N u / v_u at every tau (closed form)."""
    from memphase.simulate.data import linear_manifold

    cfg = tiny_config(data={"normalize": "sphere"}, n_train=[200], score=["empirical"],
                      measure={"anchors": ["origin", "train"], "law_samples": 4096,
                               "fd_spectrum": False, "probe_points": 0, "n_points": 4})
    ds = run(cfg)[1].squeeze()
    data = linear_manifold(200, 12, [(2, 1.0), (3, 0.3)], normal_std=0.01, normalize="sphere",
                           seed=0, protocol="ald24")
    y = data.x.numpy()
    c_n = np.diag(np.cov(y.T, bias=True))  # coordinate basis (official generator)
    v = data.variances()
    for b in (-1, 0, 1):
        want = np.median((c_n / v)[data.block == b])
        got = ds["law_variance_ratio"].sel(anchor="origin", block=b).values
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.isfinite(ds["law_variance_ratio"].sel(anchor="train", block=0)).any()
    off = run(tiny_config(n_train=[200], score=["empirical"]))[1]
    assert np.all(np.isnan(off["law_variance_ratio"]))  # law_samples = 0: not measured
