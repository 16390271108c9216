"""The [H24] linear-model experiment through the experiment interface: infinite KL below N = d,
the peak just above it, the large-N limit against simulation, the Monte-Carlo check, the dataset's
documented dims and attributes."""

import math

import numpy as np
import pytest

from memphase.physics.linear_model import kl_large_n_limit
from memphase.simulate.run.config import ConfigError, validate
from memphase.simulate.experiments import get_experiment, linear_model, run_in_memory

D = 4
N_GRID = [3, 4, 5, 6, 7, 8, 10, 14, 20, 100]


def small_config(fit=("expectation",), mean=0.0, **measure):
    raw = {"job": "linear_model", "data": {"mean": mean},
           "grid": {"n_train": N_GRID, "d": [D], "T": [1.0], "fit": list(fit), "seeds": [0]},
           "measure": {"repeats": 200, "expected_kl_repeats": 4000, "mc_n_train": [6, 100],
                       "mc_samples": 20000, "n_ref": 2000, "reference": "shared",
                       "generated_covariance": "BBt", **measure}}
    return validate(raw, linear_model.SCHEMA)


@pytest.fixture(scope="module")
def ds():
    return run_in_memory(linear_model, small_config())[1]


def _curve(ds, name, fit="expectation"):
    return ds[name].sel(fit=fit).isel(d=0, T=0, seed=0).values


def test_registered():
    assert get_experiment("linear_model") is linear_model


def test_kl_infinite_up_to_n_equals_d(ds):
    """With intercept, rank(A A^T) = min(N - 1, d): KL = inf exactly for N <= d (so for N < d)."""
    n = ds["n_train"].values
    for name in ("kl_mean", "kl_first", "kl_expected"):
        kl = _curve(ds, name)
        assert np.all(np.isinf(kl[n <= D])), name
        assert np.all(np.isfinite(kl[n > D])), name
    assert np.array_equal(ds["kl_is_infinite"].isel(d=0).values.astype(bool), n <= D)
    assert "inf" in ds.attrs["infinite_kl"] and "inf" in ds["kl_mean"].attrs["note"]


def test_kl_peaks_at_first_finite_size(ds):
    """The training-set average of the KL is largest at N = d + 1 on N = d+1..20 and falls
    monotonically after it: for the Wishart average (4000 draws, stderr < 1%) exactly, for the
    plain average over 200 drawn training sets at least at the peak (d+1 vs d+2: 7.1 vs 5.5,
    stderr ~0.1)."""
    n = ds["n_train"].values
    finite = n > D
    for name in ("kl_expected", "kl_mean"):
        kl = _curve(ds, name)[finite]
        assert n[finite][np.argmax(kl)] == D + 1, name
    assert np.all(np.diff(_curve(ds, "kl_expected")[finite]) < 0)


def test_large_n_limit_matches_simulation(ds):
    """N = 100 = 25 d: the O(1/N) expansion equals the average exact KL over 200 drawn training
    sets within 4 standard errors, and the 4000-draw Wishart average within 0.5 % (the neglected
    term is O(d^3 / N^2))."""
    kl = ds.sel(n_train=100, fit="expectation").isel(d=0, T=0, seed=0)
    limit = float(kl_large_n_limit(100, D, T=1.0))
    assert float(kl["kl_large_n"]) == pytest.approx(limit, rel=1e-12)
    assert abs(float(kl["kl_mean"]) - limit) < 4 * float(kl["kl_stderr"])
    assert float(kl["kl_expected"]) == pytest.approx(limit, rel=5e-3)
    kl_inf = ds["kl_infinite_n"].sel(fit="expectation").isel(d=0, T=0)
    assert float(kl_inf) == pytest.approx(float(kl_large_n_limit(np.inf, D, T=1.0)), rel=1e-12)
    assert float(kl_inf) < limit


def test_monte_carlo_check_agrees_with_exact_kl(ds):
    """E_{x = A z + b}[log p_gen - log p_s] on 20000 draws equals the exact KL of the same training
    set within 5 standard errors; it is nan where not requested."""
    for n in (6, 100):
        c = ds.sel(n_train=n, fit="expectation").isel(d=0, T=0, seed=0)
        assert abs(float(c["kl_mc"]) - float(c["kl_first"])) < 5 * float(c["kl_mc_stderr"]), n
    assert np.isnan(ds["kl_mc"].sel(n_train=10)).all()


def test_generalization_statistics_are_bounded(ds):
    for name in ("p_generalizing", "p_generalizing_symmetric", "hellinger2_mean"):
        v = ds[name].values
        assert np.all((v >= 0) & (v <= 1)), name
    for name in ("relative_distance_mean", "reference_delta_mean"):
        assert np.all(np.isfinite(ds[name].values)), name
    # d = 4, T = 1, n_ref = 2000 (measured): reference P 0.235 at N = 3 (generated law on the
    # training points' hull), 0.4-0.56 beyond; symmetric P 0.14 -> 0.445, below 1/2 at every N
    # and below the reference P for 5 <= N <= 20 (0.405 vs 0.445 at N = 100); stderr <= 0.035
    p, p_sym = _curve(ds, "p_generalizing"), _curve(ds, "p_generalizing_symmetric")
    n = ds["n_train"].values
    assert p[n == 3][0] < 0.35 and np.all(p[n >= 6] > 0.35)
    assert np.all(p_sym < 0.5 + 3 * 0.5 / math.sqrt(200))
    mid = (n >= 5) & (n <= 20)
    assert np.all(p[mid] > p_sym[mid])
    # Hellinger distance 1 exactly where the KL is infinite
    h2, kl = _curve(ds, "hellinger2_mean"), _curve(ds, "kl_mean")
    assert np.all(h2[np.isinf(kl)] == 1.0) and np.all(h2[np.isfinite(kl)] < 1.0)


def test_official_fit_cells():
    """Official fit at data mean 10 (d = 4, T = 2): KL inf / Hellinger 1 for N <= d, the
    Monte-Carlo KL of the one-step generation agrees with the exact one, and the KL and the
    Hellinger distance approach their N -> infinity limits from above (within 10% at N = 250 d;
    0.50 vs 0.38 at N = 25 d)."""
    cfg = small_config(fit=("official",), mean=10.0, repeats=30, expected_kl_repeats=0,
                       mc_n_train=[1000], n_ref=500)
    cfg["grid"]["T"] = [2.0]
    cfg["grid"]["n_train"] = [3, 4, 5, 1000]
    ds = run_in_memory(linear_model, cfg)[1]
    kl, h2 = _curve(ds, "kl_mean", "official"), _curve(ds, "hellinger2_mean", "official")
    assert np.all(np.isinf(kl[:2])) and np.all(h2[:2] == 1.0) and np.all(np.isfinite(kl[2:]))
    c = ds.sel(n_train=1000, fit="official").isel(d=0, T=0, seed=0)
    assert abs(float(c["kl_mc"]) - float(c["kl_first"])) < 5 * float(c["kl_mc_stderr"])
    assert np.isnan(float(c["kl_expected"])) and np.isnan(float(c["kl_large_n"]))
    kl_inf = float(ds["kl_infinite_n"].sel(fit="official").isel(d=0, T=0))
    h2_inf = float(ds["hellinger2_infinite_n"].sel(fit="official").isel(d=0, T=0))
    assert kl_inf < float(c["kl_mean"]) < 1.1 * kl_inf
    assert h2_inf < float(c["hellinger2_mean"]) < 1.1 * h2_inf
    assert ds.attrs["sampling_mean"] == 10.0


def test_official_protocol_is_the_default_and_its_choices_are_stored():
    """Defaults: reference "fresh" and generated_covariance "BtB" (the official LDM.py choices),
    stored as attrs; with BtB the criterion changes (d = 4, N = 8, T = 2, 30 sets: the two
    covariances give different P or per-set statistics), the KL (always v B B^T) does not; the
    Wilson interval brackets P; bad choices are refused before any compute."""
    raw = {"job": "linear_model", "grid": {"n_train": [8], "d": [D], "T": [2.0],
                                           "fit": ["official"], "seeds": [1]},
           "measure": {"repeats": 30, "expected_kl_repeats": 0, "mc_n_train": [], "n_ref": 300}}
    cfg = validate(raw, linear_model.SCHEMA)
    ms = cfg["measure"]
    assert ms["reference"] == "fresh" and ms["generated_covariance"] == "BtB"
    ds_t = run_in_memory(linear_model, cfg)[1]
    assert ds_t.attrs["reference"] == "fresh" and ds_t.attrs["generated_covariance"] == "BtB"
    raw["measure"]["generated_covariance"] = "BBt"
    ds_b = run_in_memory(linear_model, validate(raw, linear_model.SCHEMA))[1]
    sel = dict(n_train=8, fit="official", d=D, T=2.0, seed=1)
    assert float(ds_t["kl_mean"].sel(sel)) == float(ds_b["kl_mean"].sel(sel))
    delta = [float(x["reference_delta_mean"].sel(sel)) for x in (ds_t, ds_b)]
    assert delta[0] != delta[1]
    for d_ in (ds_t, ds_b):
        c = d_.sel(sel)
        assert float(c["p_generalizing_low"]) <= float(c["p_generalizing"]) <= float(
            c["p_generalizing_high"])
    for key, bad in (("reference", "recycled"), ("generated_covariance", "AAt")):
        with pytest.raises(ConfigError, match=key):
            validate({**raw, "measure": {**raw["measure"], key: bad}}, linear_model.SCHEMA)


def test_dataset_documents_itself(ds):
    assert ds["kl_mean"].dims == ("n_train", "fit", "d", "T", "seed")
    assert ds["kl_large_n"].dims == ("n_train", "fit", "d", "T")
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds.attrs["repeats"] == 200 and "SeedSequence" in ds.attrs["randomness"]


def test_run_cell_is_reproducible_and_config_checked():
    cfg = small_config(repeats=5, expected_kl_repeats=0, mc_n_train=[])
    cell = {"n_train": 7, "d": D, "T": 1.0, "fit": "expectation", "seed": 3}
    a, b = linear_model.run_cell(cfg, cell), linear_model.run_cell(cfg, cell)
    assert a == pytest.approx(b, nan_ok=True)
    assert math.isnan(a["kl_expected"])
    with pytest.raises(ValueError, match="mc_n_train"):
        linear_model.cells(small_config(mc_n_train=[9]))
    bad = small_config(fit=("official",), mc_n_train=[])
    bad["data"]["intercept"] = False
    with pytest.raises(ValueError, match="official"):
        linear_model.cells(bad)


def test_plot_writes_png(ds, tmp_path):
    linear_model.plot(ds, tmp_path / "lm.png")
    assert (tmp_path / "lm.png").stat().st_size > 1000


def test_plot_names_every_dashed_line(ds, monkeypatch):
    """Issue 25: the dashed large-N and dotted N -> inf lines are named in the legends."""
    from figure_checks import saved_figures, unexplained_dashed_lines

    figs = saved_figures(monkeypatch)
    linear_model.plot(ds, "unused.png")
    assert len(figs) == 1 and unexplained_dashed_lines(figs[0]) == []


def test_plot_shades_the_wilson_interval_of_the_reference_criterion(ds, monkeypatch):
    """One seed: the third panel shades [p_generalizing_low, p_generalizing_high] per line and
    names the band in its legend (the config promises P(generalizing) with its 95% interval)."""
    from figure_checks import saved_figures

    figs = saved_figures(monkeypatch)
    linear_model.plot(ds, "unused.png")
    ax = figs[0].axes[2]
    bands = [c for c in ax.collections if len(c.get_paths()) and len(
        c.get_paths()[0].vertices) > 2]
    assert len(bands) == ds.sizes["fit"] * ds.sizes["d"] * ds.sizes["T"]
    sel = ds.isel(fit=0, d=0, T=0, seed=0)
    ys = bands[0].get_paths()[0].vertices[:, 1]
    lo, hi = sel["p_generalizing_low"].values, sel["p_generalizing_high"].values
    assert min(ys) == pytest.approx(np.nanmin(lo)) and max(ys) == pytest.approx(np.nanmax(hi))
    assert any("Wilson" in t.get_text() for t in ax.get_legend().get_texts())
