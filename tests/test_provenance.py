"""Issue 14: provenance names memphase's own commit, never the user's; CF-readable units; key
parameters as attributes; bundled configs by name; `memphase --version`."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from memphase.simulate.run import bundled, store
from memphase.simulate.cli import main
from memphase.simulate.sweep import key_parameters

ROOT = Path(__file__).resolve().parents[1]


def test_commit_is_memphase_checkout_head():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert store.git_commit().split("+")[0] == head.stdout.strip()


def test_a_users_repository_around_the_code_is_never_recorded(tmp_path, monkeypatch):
    """Code that lies inside someone else's git repository (a venv in the user's project) must not
    record that repository's commit: the build-time record or 'unknown' instead."""
    user = tmp_path / "user-project"
    pkg = user / "venv" / "site-packages" / "memphase" / "simulate"
    pkg.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(user)], check=True)
    (user / "README").write_text("user")
    subprocess.run(["git", "-C", str(user), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(user), "-c", "user.email=u@x", "-c", "user.name=u", "commit",
                    "-qm", "user commit"], check=True)
    user_head = subprocess.run(["git", "-C", str(user), "rev-parse", "HEAD"], capture_output=True,
                               text=True).stdout.strip()
    monkeypatch.setattr(store, "_source_root", lambda: pkg.parent)
    monkeypatch.setattr(store, "_built_commit", lambda: None)
    assert store.git_commit() == "unknown"
    monkeypatch.setattr(store, "_built_commit", lambda: "abc123")
    assert store.git_commit() == "abc123" != user_head


def test_cf_conventions_units():
    ds = xr.Dataset({"t_c": ("n", np.ones(2), {"units": "OU time", "long_name": "collapse time"}),
                     "ratio": ("n", np.ones(2), {"units": "1"})},
                    coords={"n": ("n", [4, 8], {"units": "count"})})
    out = store.cf_conventions(ds)
    assert out.attrs["Conventions"] == "CF-1.10"
    assert out["t_c"].attrs["units"] == "1" and out["t_c"].attrs["quantity"] == "OU time"
    assert "OU time" in out["t_c"].attrs["long_name"]
    assert out["ratio"].attrs == {"units": "1"}
    assert out["n"].attrs["units"] == "1" and out["n"].attrs["quantity"] == "count"
    assert ds["t_c"].attrs["units"] == "OU time"  # the input is not modified


def test_key_parameters_are_separate_attributes():
    cfg = {"job": "quickstart", "data": {"d": 16, "variance": 1.0},
           "grid": {"n_train": [4, 16]}, "sampler": {"steps": 200, "dtype": "float64",
                                                     "record": True, "times": [0.1, 1.0]},
           "sweep": {"workers": 2}}
    p = key_parameters(cfg)
    assert p["param_data_d"] == 16 and p["param_sampler_steps"] == 200
    assert p["param_sampler_dtype"] == "float64" and p["param_sampler_record"] == 1
    assert p["param_sampler_times"] == "[0.1, 1.0]"
    assert not any("grid" in k or "sweep" in k for k in p)


def test_bundled_configs_by_name(capsys):
    configs = bundled.bundled_configs()
    assert {"quickstart", "collapse", "linear_model"} <= set(configs)
    assert bundled.resolve_config("quickstart") == str(configs["quickstart"])
    assert bundled.resolve_config("quickstart.toml") == str(configs["quickstart"])
    with pytest.raises(FileNotFoundError, match="bundled: .*quickstart"):
        bundled.resolve_config("no_such_config")
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(configs) and "quickstart" in out


def test_a_misspelt_config_name_gets_a_suggestion():
    with pytest.raises(FileNotFoundError, match="did you mean 'quickstart'"):
        bundled.resolve_config("quikstart")
    with pytest.raises(FileNotFoundError, match="did you mean 'linear_model'"):
        bundled.resolve_config("linear_modle.toml")
    with pytest.raises(FileNotFoundError) as err:
        bundled.resolve_config("zzzzzz")
    assert "did you mean" not in str(err.value)


def test_config_titles_never_stop_mid_phrase():
    """Titles in `memphase configs` came from the header's first line, cut mid-phrase
    ('... in PIXEL space (d = 64, the'): now a whole clause, no open parenthesis, a word
    boundary, no dangling article or preposition."""
    dangling = {"a", "an", "the", "of", "in", "on", "with", "to", "and", "or", "for", "by"}
    for name, path in bundled.bundled_configs().items():
        title, _ = bundled.config_summary(path)
        assert 0 < len(title) <= bundled.TITLE_MAX, (name, title)
        assert title.count("(") == title.count(")") and title.count("[") == title.count("]"), \
            (name, title)
        last = title.removesuffix("...").rstrip(",;: ").split(" ")[-1].lower()
        assert last not in dangling, (name, title)
    assert bundled.config_title(["Speciation time [BBDM24 Fig. 2, reduced] (about 1.5 min)."]) \
        == "Speciation time [BBDM24 Fig. 2, reduced]"
    assert bundled.config_title(["A title: the rest", "of it"]) == "A title"
    long = ["word " * 30]
    cut = bundled.config_title(long)
    assert cut.endswith("...") and len(cut) <= bundled.TITLE_MAX


def test_info_by_name_and_version():
    r = subprocess.run([sys.executable, "-m", "memphase.simulate.cli", "info", "quickstart"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "cells" in r.stdout.lower(), r.stderr
    v = subprocess.run([sys.executable, "-m", "memphase.simulate.cli", "--version"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert v.returncode == 0 and v.stdout.startswith("memphase ")
