"""Config validation: every problem is a ConfigError that names the key."""

import pytest

from memphase.simulate.run.config import ConfigError, Field, validate
from memphase.simulate.sweep import SWEEP_SCHEMA

SCHEMA = {
    "grid": {
        "n_train": Field("list[int]", [4], check=lambda v: v >= 2, rule="n_train >= 2"),
        "tags": Field("list[str]", [], allow_empty=True),
    },
    "steps": Field("int", 10),
    "rate": Field("float", 0.5),
}


def test_defaults_filled_and_scalar_promoted_to_list():
    out = validate({"grid": {"n_train": 8}}, SCHEMA)
    assert out == {"grid": {"n_train": [8], "tags": []}, "steps": 10, "rate": 0.5}


def test_empty_list_allowed_only_where_declared():
    assert validate({"grid": {"tags": []}}, SCHEMA)["grid"]["tags"] == []
    with pytest.raises(ConfigError, match=r"'grid.n_train' must be a non-empty list"):
        validate({"grid": {"n_train": []}}, SCHEMA)


def test_slurm_job_extra_may_be_empty():
    opts = validate({"slurm": {"job_extra": []}}, SWEEP_SCHEMA, "sweep")
    assert opts["slurm"]["job_extra"] == []


@pytest.mark.parametrize("raw, match", [
    ({"stpes": 3}, r"unknown key 'stpes'; did you mean 'steps'\?"),
    ({"grid": {"n_trian": [4]}}, r"unknown key 'n_trian' in \[grid\]; did you mean 'n_train'\?"),
    ({"steps": 1.5}, r"'steps' must be int, got 1.5"),
    ({"steps": True}, r"'steps' must be int"),
    ({"rate": "fast"}, r"'rate' must be float"),
    ({"grid": {"n_train": [4, 1]}}, r"'grid.n_train' = 1 is out of range: n_train >= 2"),
    ({"grid": 3}, r"\[grid\] must be a table"),
])
def test_bad_input_names_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        validate(raw, SCHEMA)


def test_log_and_linear_ranges_expand_to_lists():
    out = validate({"grid": {"n_train": {"start": 4, "stop": 4096, "num": 6, "scale": "log"}},
                    "rate": 0.5}, SCHEMA)
    assert out["grid"]["n_train"] == [4, 16, 64, 256, 1024, 4096]
    lin = {"grid": {"n_train": {"start": 2, "stop": 10, "num": 5}}}
    assert validate(lin, SCHEMA)["grid"]["n_train"] == [2, 4, 6, 8, 10]
    dup = {"grid": {"n_train": {"start": 2, "stop": 4, "num": 5, "scale": "log"}}}
    assert validate(dup, SCHEMA)["grid"]["n_train"] == [2, 3, 4]  # rounded, repeats dropped
    floats = validate({"x": {"start": 0.1, "stop": 1.0, "num": 3, "scale": "log"}},
                      {"x": Field("list[float]", [1.0])})["x"]
    assert floats == pytest.approx([0.1, 10 ** -0.5, 1.0], rel=1e-12)


@pytest.mark.parametrize("rng, match", [
    ({"start": 1, "stop": 8}, r"range needs 'num'"),
    ({"start": 1, "stop": 8, "num": 3, "step": 2}, r"unknown range key 'step'"),
    ({"start": 0, "stop": 8, "num": 3, "scale": "log"}, r"log range needs start and stop > 0"),
    ({"start": 2, "stop": 8, "num": 3, "scale": "cubic"}, r"scale must be 'linear' or 'log'"),
    ({"start": 2, "stop": 8, "num": 0}, r"num must be an integer >= 1"),
    ({"start": 1, "stop": 8, "num": 3}, r"'grid.n_train' = 1 is out of range"),
])
def test_bad_ranges_are_named(rng, match):
    with pytest.raises(ConfigError, match=match):
        validate({"grid": {"n_train": rng}}, SCHEMA)


def test_range_only_for_numbers():
    with pytest.raises(ConfigError, match="only allowed for numbers"):
        validate({"grid": {"tags": {"start": 1, "stop": 2, "num": 2}}}, SCHEMA)
