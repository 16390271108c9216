"""Real data: the scikit-learn digits and arrays from .npy / HDF5 (issue: real data)."""

import sys

import h5py
import numpy as np
import pytest
import torch

from memphase.analysis.memorization import memorization_ratio
from memphase.physics.schedules import make_schedule
from memphase.simulate.cli import main
from memphase.simulate.run.config import ConfigError
from memphase.simulate.data import array_data, digits, make_data
from memphase.simulate.data.real import positive_spectrum, to_pixels
from memphase.simulate.sampling import sample
from memphase.simulate.scores import make_score

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _raw():
    b = sklearn_datasets.load_digits()
    return b.data.astype(np.float64), b.target


def test_variances_are_the_pca_eigenvalues_of_the_loaded_data():
    from sklearn.decomposition import PCA

    raw, _ = _raw()
    x = raw / 16.0
    pca = PCA().fit(x)  # sklearn: ddof = 1; the law of the loaded set: ddof = 0
    eig = pca.explained_variance_ * (x.shape[0] - 1) / x.shape[0]
    s = digits(200, seed=0)
    assert s.d == 64 and float(s.x.min()) >= -1 and float(s.x.max()) <= 1
    np.testing.assert_allclose(s.variances(), np.clip(eig, 0, None), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(s.basis.T @ s.basis, np.eye(64), atol=1e-12)
    # principal directions: basis^T C basis is diagonal with the eigenvalues
    c = np.cov(x.T, bias=True)
    proj = s.basis.T @ c @ s.basis
    np.testing.assert_allclose(proj, np.diag(np.diag(proj)), atol=1e-12)
    np.testing.assert_allclose(np.abs(s.basis[:, :5].T @ pca.components_[:5].T), np.eye(5),
                               atol=1e-8)
    assert positive_spectrum(s.variances()).size == 61  # three pixels are always blank
    # PCA coordinates: the top-k eigenvalues; whitening: unit variance
    k = digits(None, n_components=10)
    np.testing.assert_allclose(k.variances(), eig[:10], rtol=1e-9)
    np.testing.assert_allclose(k.x.numpy().var(axis=0), eig[:10], rtol=1e-9)
    w = digits(None, whiten=True)
    assert w.d == 61
    np.testing.assert_allclose(w.x.numpy().var(axis=0), 1.0, rtol=1e-9)


def test_subsets_reproducible_from_seed_with_labels_kept():
    raw, target = _raw()
    a, b, c = digits(100, seed=3), digits(100, seed=3), digits(100, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.x, c.x)
    pix = to_pixels(a, a.x)  # back to grey levels 0..16: rows of the raw set with their labels
    idx = [int(np.flatnonzero(np.all(np.abs(raw - p) < 1e-9, axis=1))[0]) for p in pix]
    assert len(set(idx)) == 100
    np.testing.assert_array_equal(target[idx], a.labels.numpy())
    fresh = a.draw(50, seed=1)  # held out: none of them is a training image
    dist = np.linalg.norm(fresh[:, None, :] - a.x.numpy()[None], axis=2).min(axis=1)
    assert fresh.shape == (50, 64) and np.all(dist > 0)
    assert make_data("digits", n=100, seed=3).x.equal(a.x)


@pytest.mark.parametrize("bad, match", [
    (dict(n=0), r"n must be an integer in \[1, 1797\]"),
    (dict(n=1798), r"n must be an integer in \[1, 1797\]"),
    (dict(scale="pm1"), r"scale must be one of"),
    (dict(n_components=62), r"n_components = 62 exceeds the rank 61"),
    (dict(bands=[40, 30]), r"bands \[40, 30\] span more than"),
])
def test_bad_arguments_one_line(bad, match):
    with pytest.raises(ValueError, match=match):
        digits(**{"n": 10, **bad})


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(ConfigError, match=r"install memphase\[data\]"):
        digits(10)
    cfg = tmp_path / "c.toml"
    cfg.write_text('job = "collapse"\noutput = "%s"\n[data]\nmodel = "digits"\n[grid]\n'
                   'd = [4]\nn_train = [10]\nscore = ["empirical"]\n' % (tmp_path / "o.h5"))
    assert main(["run", str(cfg), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "memphase[data]" in err[0]


def test_array_data_npy_and_hdf5_match_digits(tmp_path):
    raw, target = _raw()
    np.save(tmp_path / "x.npy", raw)
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        fh["images"] = raw
    ref = digits(64, seed=2, n_components=8, bands=[2, 3])
    for path in ("x.npy", "x.h5"):
        s = array_data(tmp_path / path, 64, seed=2, scale="unit", labels=target,
                       n_components=8, bands=[2, 3])
        # unit scaling by the array's own min/max (0 and 16 here) equals the digits' /16
        np.testing.assert_allclose(s.x.numpy(), ref.x.numpy(), atol=1e-12)
        np.testing.assert_allclose(s.variances(), ref.variances(), rtol=1e-12)
        assert torch.equal(s.labels, ref.labels)
        np.testing.assert_array_equal(s.block, [0, 0, 1, 1, 1, -1, -1, -1])
    unlabeled = array_data(tmp_path / "x.npy", 10, seed=0)
    assert unlabeled.labels is None and unlabeled.d == 64 and unlabeled.draw(3, seed=0).shape == (3, 64)
    with h5py.File(tmp_path / "two.h5", "w") as fh:
        fh["a"], fh["b"] = raw, raw
    with pytest.raises(ValueError, match=r"holds 2 datasets .* name one with dataset="):
        array_data(tmp_path / "two.h5")
    with pytest.raises(ValueError, match=r"expected an \(n, d\) array"):
        np.save(tmp_path / "v.npy", np.ones(5))
        array_data(tmp_path / "v.npy")


def test_empirical_score_collapses_on_training_digits_population_does_not():
    """Small noise: every sample of the empirical score lands on a training image (ratio > 0.9);
    the Gaussian with the PCA spectrum generates new points (ratio < 0.1)."""
    data = digits(40, seed=0, n_components=16)
    sch = make_schedule("ou")
    t_max, t_min = float(sch.time_of_tau(1e2)), float(sch.time_of_tau(1e-4))
    ratios = {}
    for name in ("empirical", "population"):
        x = sample(make_score(name, data, sch), sch, 64, steps=60, t_max=t_max, t_min=t_min,
                   seed=1, record=2)
        ratios[name] = float(memorization_ratio(x, data.x))
    assert ratios["empirical"] > 0.9, ratios
    assert ratios["population"] < 0.1, ratios


def test_collapse_and_geometric_experiments_take_digits():
    """Both experiments run on digits with the PCA spectrum in their theories: the collapse
    theory equals collapse_tau of the top-d eigenvalues; the geometric bands carry the PCA
    eigenvalues of their middle directions."""
    from memphase.physics.critical import collapse_tau
    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import collapse, geometric, run_in_memory

    cfg = validate({"job": "collapse", "data": {"model": "digits"},
                    "grid": {"d": [6], "n_train": [20], "score": ["empirical"], "seeds": [0]},
                    "sampler": {"steps": 30, "n_samples": 16, "t_min_tau": 1e-3,
                                "t_max_tau": 1e2, "record": 10}}, collapse.SCHEMA)
    _, ds = run_in_memory(collapse, cfg)
    eig = digits(None, n_components=6).variances()
    assert float(ds["collapse_tau_theory"].squeeze()) == pytest.approx(
        float(collapse_tau(20, eig)), rel=1e-12)
    assert ds.attrs["data_model"] == "digits"
    assert float(ds["memorization_ratio"].squeeze()) > 0.9
    with pytest.raises(ConfigError, match=r"holds 1797 images"):
        collapse.cells(validate({"job": "collapse", "data": {"model": "digits"},
                                 "grid": {"d": [6], "n_train": [2000]}}, collapse.SCHEMA))

    gcfg = validate({"job": "geometric", "data": {"model": "digits", "block_dims": [2, 4]},
                     "grid": {"n_train": [30], "d": [12], "std_ratio": [1.0],
                              "score": ["population"], "seeds": [0]},
                     "measure": {"n_tau": 6, "n_points": 3, "tau_min": 1e-3}}, geometric.SCHEMA)
    _, gds = run_in_memory(geometric, gcfg)
    eig = digits(None, n_components=12).variances()
    np.testing.assert_allclose(gds["block_variance"].squeeze().values, eig[[9, 1, 4]], rtol=1e-12)
    assert float(gds["critical_tau_rem"].squeeze()) == pytest.approx(
        float(collapse_tau(30, eig)), rel=1e-12)


def test_memorization_experiment_takes_digits_with_true_and_random_labels():
    """True labels are the digit classes; random labels are balanced; cov_all is the PCA
    covariance; the within-class covariance has a smaller trace than the total one."""
    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import memorization

    cfg = validate({"job": "memorization", "data": {"model": "digits"},
                    "grid": {"n_train": [50], "d": [8], "n_classes": [10],
                             "label_mode": ["true", "random"], "score": ["empirical"]}},
                   memorization.SCHEMA)
    assert len(memorization.cells(cfg)) == 2
    ts = memorization.make_training_set(cfg, 8, 0, 10, 50, seed=4)
    ref = digits(50, seed=4, n_components=8)
    np.testing.assert_array_equal(ts.true_labels.numpy(), ref.labels.numpy())
    np.testing.assert_allclose(ts.x.numpy(), ref.x.numpy(), rtol=1e-6, atol=1e-6)
    assert np.bincount(ts.random_labels.numpy()).tolist() == [5] * 10
    np.testing.assert_allclose(np.diag(ts.cov_all), ref.variances(), rtol=1e-12)
    assert np.trace(ts.cov_class) < 0.8 * np.trace(ts.cov_all)
    bad = validate({"job": "memorization", "data": {"model": "digits"},
                    "grid": {"n_train": [50], "d": [8], "n_classes": [4]}}, memorization.SCHEMA)
    with pytest.raises(ConfigError, match=r"n_classes in \{1, 10\}"):
        memorization.cells(bad)


def test_memorization_digits_d64_is_pixel_space_other_large_d_refused():
    """d = 64 trains on the centred 8x8 pixels (what a convolutional network needs): the training
    set equals digits(n_components=None) and cov_all is the pixel covariance (trace = the sum of
    the PCA eigenvalues, rank 61); 61 < d < 64 is neither PCA coordinates nor pixels: refused."""
    from memphase.simulate.run.config import validate
    from memphase.simulate.experiments import memorization

    cfg = validate({"job": "memorization", "data": {"model": "digits"},
                    "grid": {"n_train": [40], "d": [64], "score": ["empirical"]}},
                   memorization.SCHEMA)
    assert len(memorization.cells(cfg)) == 1
    ts = memorization.make_training_set(cfg, 64, 0, 1, 40, seed=2)
    ref = digits(40, seed=2)
    np.testing.assert_allclose(ts.x.numpy(), ref.x.numpy(), rtol=1e-6, atol=1e-6)
    assert ts.x.shape == (40, 64)
    np.testing.assert_allclose(np.trace(ts.cov_all), ref.variances().sum(), rtol=1e-10)
    assert np.linalg.matrix_rank(ts.cov_all) == 61
    bad = validate({"job": "memorization", "data": {"model": "digits"},
                    "grid": {"n_train": [40], "d": [62]}}, memorization.SCHEMA)
    with pytest.raises(ConfigError, match=r"d = 64 \(pixels\)"):
        memorization.cells(bad)


@pytest.mark.parametrize("first", ["memphase.simulate.data.real", "memphase.simulate.data"])
def test_either_data_module_may_be_imported_first(first):
    """A fresh interpreter importing data_real before data (a user's `from
    memphase.simulate.data.real import digits`) used to fail with a circular ImportError."""
    import subprocess
    import sys

    code = (f"import {first}\nfrom memphase.simulate.data import digits\n"
            "from memphase.simulate.data.real import digits as d2\nassert digits is d2\n"
            "print(d2(5, seed=0).x.shape[1])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stdout.strip() == "64"


# ----------------------------------------------------------------------------- hostile arrays


def test_principal_axes_gram_path_equals_the_covariance_path(rng):
    from memphase.simulate.data.real import principal_axes

    x = rng.normal(size=(30, 200)) * np.linspace(3, 0.1, 200)
    xc = x - x.mean(axis=0)
    eig_g, vec_g = principal_axes(xc, 5)                 # n < d: the 30 x 30 Gram matrix
    cov = xc.T @ xc / 30
    eig_c, vec_c = np.linalg.eigh(cov)
    eig_c, vec_c = eig_c[::-1], vec_c[:, ::-1]
    np.testing.assert_allclose(eig_g[:29], eig_c[:29], rtol=1e-9)
    assert eig_g.shape == (200,) and np.all(eig_g[30:] == 0)
    for j in range(5):                                    # same directions, up to sign
        assert abs(abs(vec_g[:, j] @ vec_c[:, j]) - 1) < 1e-9
        np.testing.assert_allclose(cov @ vec_g[:, j], eig_g[j] * vec_g[:, j], atol=1e-9)


def test_wide_array_uses_the_gram_matrix_and_bounds_memory(tmp_path, monkeypatch):
    import memphase.simulate.data.real as data_real

    x = np.random.default_rng(0).normal(size=(3, 20000))
    np.save(tmp_path / "wide.npy", x)
    s = array_data(tmp_path / "wide.npy", n_components=2)   # was a 20000 x 20000 eigh
    assert s.x.shape == (3, 2)
    with pytest.raises(ValueError, match=r"d = 20000 columns in pixel coordinates need .* give "
                                         r"n_components"):
        array_data(tmp_path / "wide.npy")
    monkeypatch.setattr(data_real, "MAX_PIXEL_BYTES", 100)
    with pytest.raises(ValueError, match=r"needs 3 x 3 matrices .* subsample the rows"):
        array_data(tmp_path / "wide.npy", n_components=2)


@pytest.mark.parametrize("array, message", [
    (np.ones((5, 3)) * (1 + 1j), "expected real numbers, got complex"),
    (np.ones((1, 3)), "expected at least 2 points"),
    (np.ones((5, 3)), "the array is constant"),
    (np.arange(1, 16).reshape(5, 3) * 1e300, "overflow the covariance"),
])
def test_nonsense_arrays_are_refused_in_one_line(tmp_path, array, message):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(ValueError, match=message) as err:
        array_data(tmp_path / "a.npy")
    assert "\n" not in str(err.value)
