"""The memorization experiment [GDPLLW23]: data and labels, conditioning, the random-label
prediction, an end-to-end empirical run checked against the REM picture, dataset layout."""

import math

import numpy as np
import pytest
import torch

from memphase.analysis.memorization import nearest_neighbors
from memphase.physics.critical import collapse_tau
from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import get_experiment, memorization as mem, run_in_memory



def config(grid=None, **sections):
    raw = {"job": "memorization",
           "grid": {"n_train": [4, 16], "d": [8], "score": ["empirical"], "seeds": [0, 1],
                    **(grid or {})},
           "training": {"noise_draws": 2},
           "sampler": {"steps": 80, "n_samples": 128, "record": 30}}
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return validate(raw, mem.SCHEMA)


def test_registered():
    assert get_experiment("memorization") is mem


def test_empirical_run_memorizes_small_n_with_dims_and_attrs():
    """d = 8, N = 4 and 16, empirical score: memorization ratio 1 and collapse fraction 1.
    Why: the REM collapse variance tau_C = 1 / (N^{2/d} - 1) is >= 1 for N <= 16 (docs/theory.md
    sec. 3), four decades above the last sampled tau = 1e-4, so every trajectory has condensed on
    one training point long before the end and the Tweedie output sits on it (its distance to NN_1
    ~ exp(-|y_1 - y_2|^2 / 8 tau) -> 0), while NN_2 is O(sqrt(2 d)) away. The measured collapse
    time lies above the REM t_C (finite-d bias of the last-change estimator, README) but within a
    factor 2, and decreases with N like t_C."""
    cfg = config()
    cells, ds = run_in_memory(mem, cfg)
    assert len(cells) == 4
    emp = ds.sel(score="empirical").squeeze(drop=True)  # (n_train, seed)
    assert emp["memorization_ratio"].dims == ("n_train", "seed")
    assert np.all(collapse_tau(np.array([4, 16]), np.ones(8)) >= 1.0)
    assert float(emp["memorization_ratio"].min()) == 1.0
    assert float(emp["collapse_fraction"].min()) == 1.0
    measured = emp["collapse_time_measured"].mean("seed").values
    theory = emp["collapse_time_theory"].isel(seed=0).values
    assert np.all(measured > theory) and np.all(measured < 2 * theory), (measured, theory)
    assert measured[1] < measured[0] and theory[1] < theory[0]
    for name in list(ds.data_vars) + list(ds.coords):
        assert "long_name" in ds[name].attrs, name
    for name in ds.data_vars:
        assert "units" in ds[name].attrs, name
    assert "seed" in ds.attrs["seed_streams"]


def test_cells_are_deduplicated_and_broadcast():
    """Empirical cells ignore the recipe, C = 1 ignores the label mode, conditional N < C is
    skipped; assemble broadcasts the computed cells and leaves the skipped ones NaN."""
    cfg = config({"n_train": [2, 8], "score": ["empirical", "learned"], "width": [8, 16],
                  "n_classes": [1, 4], "label_mode": ["none", "random"], "seeds": [0]})
    cells = mem.cells(cfg)
    # empirical: C=1 (2 N) + C=4 none (2 N) + C=4 random (N=8 only) = 5; learned: 2 widths x 5
    assert len(cells) == 15
    assert all(c["width"] is None for c in cells if c["score"] == "empirical")
    fake = [{k: float(i) for k in mem.VARIABLES} for i in range(len(cells))]
    ds = mem.assemble(cfg, cells, fake)
    r = ds["memorization_ratio"].squeeze(drop=True)
    emp = r.sel(score="empirical")
    assert np.array_equal(emp.isel(width=0).values, emp.isel(width=1).values, equal_nan=True)
    c1 = r.sel(n_classes=1)
    assert np.array_equal(c1.sel(label_mode="none").values, c1.sel(label_mode="random").values)
    assert np.all(np.isnan(r.sel(n_classes=4, label_mode="random", n_train=2).values))
    assert np.all(np.isfinite(r.sel(n_classes=4, label_mode="random", n_train=8).values))


def test_random_label_prediction_is_the_unconditional_curve_at_n_over_c():
    """Fabricated results with R_none(N) = 1.2 - 0.2 log2 N: the stored prediction at (N, C = 2)
    is R_none(N / 2) (NaN where N / 2 < min N); it does not depend on the random-label cells."""
    n = [2, 4, 8, 16, 32]
    cfg = config({"n_train": n, "n_classes": [2], "label_mode": ["none", "random"],
                  "seeds": [0, 1]})
    cells = mem.cells(cfg)
    f = lambda nn, seed: 1.2 - 0.2 * math.log2(nn) + 0.01 * seed
    fake = [{**{k: 0.0 for k in mem.VARIABLES},
             "memorization_ratio": f(c["n_train"], c["seed"]) if c["label_mode"] == "none"
             else 0.5} for c in cells]
    ds = mem.assemble(cfg, cells, fake)
    pred = ds["ratio_random_label_prediction"].squeeze(drop=True)  # (n_train, seed)
    assert pred.dims == ("n_train", "seed")
    assert np.all(np.isnan(pred.sel(n_train=2)))
    for nn in n[1:]:
        for seed in (0, 1):
            assert float(pred.sel(n_train=nn, seed=seed)) == pytest.approx(f(nn / 2, seed))


def test_training_set_labels_clusters_and_covariance():
    """Balanced labels; true labels follow the cluster centres, random labels do not; cov_all is
    the covariance of the whole law (checked on 20000 points to 5 %, Frobenius)."""
    cfg = config(data={"class_separation": 3.0})
    ts = mem.make_training_set(cfg, 6, 0, 4, 20_000, seed=5)
    for labels in (ts.true_labels, ts.random_labels):
        counts = torch.bincount(labels, minlength=4)
        assert counts.max() - counts.min() <= 1
    emp = np.cov(ts.x.double().numpy().T)
    assert np.linalg.norm(emp - ts.cov_all) / np.linalg.norm(ts.cov_all) < 0.05
    means_true = torch.stack([ts.x[ts.true_labels == c].mean(0) for c in range(4)])
    means_rand = torch.stack([ts.x[ts.random_labels == c].mean(0) for c in range(4)])
    centre = ts.x.mean(0)  # the law's mean, sum_c mu_c / C
    assert float((means_true - centre).norm(dim=1).min()) > 1.0  # |mu_c| = 3 std, C = 4
    assert float((means_rand - centre).norm(dim=1).max()) < 0.15  # SE ~ sqrt(6 * 5.5 / 5000)
    man = mem.make_training_set(cfg, 6, 2, 1, 50, seed=0)  # normal_std 0: rank-2 data
    assert torch.linalg.matrix_rank(man.x.double(), rtol=1e-5) == 2  # float32 rounding
    with pytest.raises(ValueError, match="intrinsic_dim = 9 exceeds d = 8"):
        mem.cells(config({"intrinsic_dim": [9]}))


def test_true_label_conditional_samples_land_in_their_class():
    """Conditional empirical score with true labels: every sample's nearest training point has the
    sample's label (it samples that class's mixture only) and the ratio stays 1."""
    cfg = config({"n_train": [12], "n_classes": [3], "label_mode": ["true"], "seeds": [0]})
    (cell,) = mem.cells(cfg)
    ts, score, sample_labels, _ = mem.prepare(cfg, cell)
    x = mem.draw(cfg, cell, score)
    _, idx = nearest_neighbors(x, ts.x, k=1)
    assert torch.equal(ts.true_labels[idx[:, 0]], sample_labels)
    assert torch.bincount(sample_labels).tolist() == [43, 43, 42]


def test_learned_conditional_cell_trains_one_network_per_class():
    """conditioning = "per_class" (explicit since the label embedding became the default): C
    networks of the unconditional size."""
    cfg = config({"n_train": [8], "score": ["learned"], "width": [8], "depth": [1],
                  "train_steps": [5], "n_classes": [1, 2], "label_mode": ["random"],
                  "seeds": [0]}, sampler={"steps": 10, "n_samples": 16, "record": 4},
                 training={"conditioning": "per_class"})
    res = {c["n_classes"]: mem.run_cell(cfg, c) for c in mem.cells(cfg)}
    assert res[2]["parameters"] == 2 * res[1]["parameters"] > 0
    assert np.isfinite(res[2]["train_loss"]) and 0 <= res[2]["memorization_ratio"] <= 1
    est = [mem.estimate(cfg, c) for c in mem.cells(cfg)]
    assert est[1]["seconds"] > est[0]["seconds"] > 0 and est[0]["memory_bytes"] > 0


def test_learned_conditional_cell_trains_one_label_embedded_network():
    """conditioning = "embedding" (default, [GDPLLW23]): one network with a C x emb label table
    (the unconditional size + C emb_dim), every checkpoint sampled with the generated labels
    (balanced), the choice stored as the attribute `conditioning`; estimate: one network."""
    cfg = config({"n_train": [8], "score": ["learned"], "width": [8], "depth": [1],
                  "embedding_dim": [4], "train_steps": [6], "n_classes": [1, 2],
                  "label_mode": ["none", "true"], "seeds": [0]},
                 sampler={"steps": 10, "n_samples": 16, "record": 4},
                 measure={"checkpoints": 3})
    assert cfg["training"]["conditioning"] == "embedding"
    cells = mem.cells(cfg)
    cond = next(c for c in cells if c["label_mode"] == "true")
    plain = next(c for c in cells if c["n_classes"] == 1)
    ts, score, sample_labels, info = mem.prepare(cfg, cond)
    assert torch.bincount(sample_labels).tolist() == [8, 8]
    assert sorted(info["checkpoint_scores"]) == [2, 4, 6]
    assert info["parameters"] == mem.prepare(cfg, plain)[3]["parameters"] + 2 * 4
    x = torch.randn(16, 8)
    net = score.describe()
    assert net["n_classes"] == 2 and score(x, 0.5).shape == (16, 8)
    res = mem.run_cell(cfg, cond)
    assert 0 <= res["memorization_ratio"] <= 1 and res["memorization_ratio_step"] in (2, 4, 6)
    est = {c["label_mode"]: mem.estimate(cfg, c)["seconds"] for c in cells if c["n_classes"] == 2}
    assert est["true"] < 1.5 * est["none"]
    ds = mem.assemble(cfg, cells, [dict.fromkeys(mem.VARIABLES, 0.5) for _ in cells])
    assert ds.attrs["conditioning"] == "embedding"
    with pytest.raises(ConfigError, match="conditioning"):
        config(training={"conditioning": "shared"})


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="label_mode"):
        config({"label_mode": ["shuffled"]})
    with pytest.raises(ConfigError, match="n_train"):
        config({"n_train": [1]})
    with pytest.raises(ValueError, match="t_max_tau"):
        mem.cells(config(sampler={"t_max_tau": 1e-5}))


def test_random_labels_collapse_like_n_over_c_points():
    """Empirical score, C = 4 random labels on N = 64 points: each class is the empirical score of
    16 iid points of the same law, so its collapse time (last change of the nearest point of the
    sample's class) equals that of the unconditional score on N = 16 points: REM theory exactly,
    measured within 10 % (4 seeds; measured 0.608 vs 0.625, seed std ~0.03). Both lie above the
    REM t_C (finite-d bias of the estimator at d = 8, README)."""
    cfg = config({"n_train": [16, 64], "n_classes": [4], "label_mode": ["none", "random"],
                  "seeds": [0, 1, 2, 3]}, sampler={"steps": 200, "n_samples": 256, "record": 60})
    ds = run_in_memory(mem, cfg)[1].squeeze(drop=True)
    rand = ds.sel(label_mode="random", n_train=64)
    none = ds.sel(label_mode="none", n_train=16)
    assert float(rand["collapse_time_theory"].mean()) == pytest.approx(
        float(none["collapse_time_theory"].mean()), rel=0.02)  # same law; centres differ by seed
    t_rand = float(rand["collapse_time_measured"].mean())
    t_none = float(none["collapse_time_measured"].mean())
    assert abs(t_rand - t_none) < 0.1 * t_none, (t_rand, t_none)
    assert t_none > float(none["collapse_time_theory"].mean())


@pytest.mark.slow
def test_learned_random_labels_act_like_n_over_c():
    """[GDPLLW23] with the default recipe (residual MLP width 128, depth 2, 4000 steps), d = 8,
    C = 4 clusters at 3 std: the unconditional ratio falls with N; random labels raise it at
    N = 64; the measured random-label ratio is within 0.1 of the prediction R_none(N / 4).
    Measured (seed 0, 256 samples): R_none(4, 16, 64) = 0.93, 0.95, 0.77; R_random(16, 64) =
    0.91, 0.90 vs prediction 0.93, 0.95. About 5 min of CPU (11 trainings)."""
    cfg = config({"n_train": [4, 16, 64], "score": ["learned"], "n_classes": [4],
                  "label_mode": ["none", "random"], "seeds": [0]},
                 training={"noise_draws": 4}, sampler={"steps": 200, "n_samples": 256})
    cells = [c for c in mem.cells(cfg) if c["label_mode"] == "none" or c["n_train"] > 4]
    results = {(c["label_mode"], c["n_train"]): mem.run_cell(cfg, c) for c in cells}
    fake = [results.get((c["label_mode"], c["n_train"]),
                        {k: np.nan for k in mem.VARIABLES}) for c in mem.cells(cfg)]
    ds = mem.assemble(cfg, mem.cells(cfg), fake).squeeze(drop=True)
    r = ds["memorization_ratio"]
    assert float(r.sel(label_mode="none", n_train=64)) < float(r.sel(label_mode="none",
                                                                     n_train=4)) - 0.1
    assert float(r.sel(label_mode="random", n_train=64)) > float(r.sel(label_mode="none",
                                                                       n_train=64)) + 0.05
    pred = ds["ratio_random_label_prediction"]
    for n in (16, 64):
        assert abs(float(r.sel(label_mode="random", n_train=n)) - float(pred.sel(n_train=n))) < 0.1


# -- the recipe's ratio is the highest over its training checkpoints [GDPLLW23] --------------------

class _FakeScore:
    def __init__(self, ratio):
        self.ratio = ratio


def _fake_samples(train, ratio, n=20):
    """n samples of which round(ratio n) sit on training points (|x-NN1|/|x-NN2| = 0) and the rest
    at the midpoint of y_0 and y_1 (ratio 1): memorization ratio exactly `ratio`."""
    k = round(ratio * n)
    on = train[torch.arange(k) % train.shape[0]]
    mid = 0.5 * (train[0] + train[1]).expand(n - k, -1)
    return torch.cat([on, mid])


def test_fake_training_run_reports_the_highest_checkpoint_ratio(monkeypatch):
    """A fake training run with checkpoint ratios 0.3, 0.85, 0.6 (final): measure_ratio (what the
    EMM search uses) and checkpoint_ratios see 0.85, not the final 0.6."""
    from types import SimpleNamespace

    train = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]], dtype=torch.float64)
    ts = SimpleNamespace(x=train)
    scores = {100: _FakeScore(0.3), 200: _FakeScore(0.85), 300: _FakeScore(0.6)}
    monkeypatch.setattr(mem, "prepare", lambda cfg, cell: (ts, scores[300], None,
                                                           {"checkpoint_scores": scores}))
    monkeypatch.setattr(mem, "draw", lambda cfg, cell, score, observers=(): _fake_samples(
        train, score.ratio))
    cfg = config({"score": ["learned"], "train_steps": [300], "seeds": [0], "n_train": [4]})
    (cell,) = mem.cells(cfg)
    ratios = mem.checkpoint_ratios(cfg, cell, ts, scores)
    assert ratios == pytest.approx({100: 0.3, 200: 0.85, 300: 0.6})
    assert mem.measure_ratio(cfg, cell) == pytest.approx(0.85)
    # known ratios are not re-measured
    assert mem.checkpoint_ratios(cfg, cell, ts, scores, {300: 0.1})[300] == 0.1


def test_learned_cell_stores_highest_and_final_ratio():
    """Real tiny training (8 steps, 4 checkpoints 2, 4, 6, 8): memorization_ratio is the maximum
    of the per-checkpoint ratios re-measured independently, memorization_ratio_final the ratio at
    step 8, memorization_ratio_step one of the checkpoint steps; the attrs say which is which."""
    cfg = config({"n_train": [6], "score": ["learned"], "width": [8], "depth": [1],
                  "train_steps": [8], "seeds": [0]},
                 sampler={"steps": 10, "n_samples": 32, "record": 4})
    (cell,) = mem.cells(cfg)
    assert mem.checkpoint_steps(cfg, cell) == [2, 4, 6, 8]
    res = mem.run_cell(cfg, cell)
    ts, _, _, info = mem.prepare(cfg, cell)
    assert sorted(info["checkpoint_scores"]) == [2, 4, 6, 8]
    again = mem.checkpoint_ratios(cfg, cell, ts, info["checkpoint_scores"])
    assert res["memorization_ratio"] == pytest.approx(max(again.values()))
    assert res["memorization_ratio_final"] == pytest.approx(again[8])
    assert again[res["memorization_ratio_step"]] == pytest.approx(res["memorization_ratio"])
    assert res["memorization_ratio"] >= res["memorization_ratio_final"]
    ds = mem.assemble(cfg, [cell], [res])
    assert "highest" in ds.attrs["memorization_ratio"] and "2310.02664" in ds.attrs[
        "memorization_ratio"]
    assert "HIGHEST" in ds["memorization_ratio"].attrs["long_name"]
    assert "memorization_ratio_final" in ds
