"""Config validation: every problem is a ConfigError that names the key."""

import pytest

from simulate.config import ConfigError, Field, validate
from simulate.sweep import SWEEP_SCHEMA

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
