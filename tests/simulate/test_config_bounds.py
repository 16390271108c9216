"""Regression tests of issue 12 C: every bad config value is one ConfigError at load, before any
compute (the CLI prints it as one line, exit 2)."""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from memphase.simulate.run import config_bounds as cb
from memphase.simulate.cli import main
from memphase.simulate.run.config import MAX_LIST_LEN, ConfigError, Field, expand_range, load_toml, validate
from memphase.simulate.base.device import check_device
from memphase.simulate.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "data" / "configs").glob("*.toml"))


def _quickstart(tmp_path, extra: str = "", **replace) -> Path:
    text = (ROOT / "data" / "configs" / "quickstart.toml").read_text()
    for old, new in replace.items():
        lines = [f"{old} = {new}" if ln.split(" = ")[0] == old else ln for ln in text.splitlines()]
        text = "\n".join(lines)
    p = tmp_path / "c.toml"
    p.write_text(text + "\n" + extra)
    return p


def _load_error(path) -> str:
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_every_canonical_config_loads():
    for p in CONFIGS:
        plan = load_sweep(p)
        assert 1 <= len(plan.cells) <= cb.MAX_CELLS


# ----------------------------------------------------------------------------- types, nesting


def test_job_given_as_a_list_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('job = ["quickstart"]\n')
    assert "'job' must be a string naming the experiment, got list" in _load_error(p)
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memphase: error: ") and err.count("\n") == 1


def test_arrays_nested_5000_deep(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('job = "quickstart"\n[grid]\nseeds = ' + "[" * 5000 + "0" + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_toml(p)
    # 50 deep parses; the schema names the key and cuts the value short
    p.write_text('job = "quickstart"\n[grid]\nseeds = ' + "[" * 50 + "0" + "]" * 50 + "\n")
    msg = _load_error(p)
    assert "'grid.seeds' must be a list of int" in msg and len(msg) < 300


def test_geometric_alpha_overflow_is_a_message(tmp_path):
    text = (ROOT / "data" / "configs" / "geometric.toml").read_text()
    p = tmp_path / "g.toml"
    p.write_text(text.replace("n_train = [250, 500, 1000, 20000]", "alpha = [100]"))
    msg = _load_error(p)
    assert "grid.alpha = 100 at d = 30" in msg and "overflow" in msg and "[2, 1e6]" in msg


# ----------------------------------------------------------------------------- sizes


def test_range_num_is_bounded(tmp_path):
    msg = _load_error(_quickstart(tmp_path, n_train="{start = 4, stop = 4096, num = 1000000000}"))
    assert f"exceeds the limit of {MAX_LIST_LEN} values" in msg
    msg = _load_error(_quickstart(tmp_path, n_train="{start = 4, stop = 4096, num = 1e9}"))
    assert "range num must be an integer" in msg


def test_explicit_list_length_is_bounded():
    schema = {"x": Field("list[int]", [1])}
    with pytest.raises(ConfigError, match=f"the limit is {MAX_LIST_LEN} per list"):
        validate({"x": list(range(MAX_LIST_LEN + 1))}, schema)


def test_log_int_range_dedupe_is_correct_at_the_limit():
    """num = MAX_LIST_LEN log values rounded to ints: the distinct values, in order (the old
    quadratic `not in list` dedupe took minutes at num = 1e6; this is linear)."""
    out = expand_range("n", {"start": 4, "stop": 4096, "num": MAX_LIST_LEN, "scale": "log"}, "int")
    ref = sorted(set(np.rint(np.geomspace(4, 4096, MAX_LIST_LEN)).astype(int).tolist()))
    assert out == ref and out[0] == 4 and out[-1] == 4096
    # a log range whose stop / start overflows a float is expanded in log space
    wide = expand_range("x", {"start": 1e-300, "stop": 1e300, "num": 3, "scale": "log"}, "float")
    assert wide == pytest.approx([1e-300, 1.0, 1e300], rel=1e-9)


def test_total_cell_count_is_bounded(tmp_path):
    p = _quickstart(tmp_path, n_train="{start = 2, stop = 10000, num = 5000}",
                    seeds="{start = 0, stop = 999, num = 1000}")
    msg = _load_error(p)
    assert f"the limit is {cb.MAX_CELLS} cells" in msg and "n_train[5000]" in msg


def test_a_grid_with_zero_cells(tmp_path):
    """memorization: conditional cells with N < C are skipped; if all are, nothing would run."""
    text = (ROOT / "data" / "configs" / "memorization.toml").read_text()
    text = (text.replace("n_train = [4, 8, 16, 32, 64, 128, 256]", "n_train = [2]")
            .replace("n_classes = [1, 4]", "n_classes = [4]")
            .replace('label_mode = ["none", "true", "random"]', 'label_mode = ["true"]'))
    p = tmp_path / "m.toml"
    p.write_text(text)
    assert "the grid has zero cells" in _load_error(p)
    with pytest.raises(ConfigError, match="zero cells"):
        cb.check_cells([])


# ----------------------------------------------------------------------------- devices


def test_device_strings_are_checked(tmp_path):
    assert "'banana' is not a device" in _load_error(_quickstart(tmp_path, device='"banana"'))
    msg = _load_error(_quickstart(tmp_path, device='"cuda:99"'))
    assert "'sampler.device'" in msg and "'cuda:99' requested but torch sees" in msg
    assert "device type 'meta' is not supported" in _load_error(
        _quickstart(tmp_path, device='"meta"'))
    for ok in ("cpu", "auto"):
        assert load_sweep(_quickstart(tmp_path, device=f'"{ok}"')).cfg["sampler"]["device"] == ok


def test_cuda_checked_against_what_torch_sees(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == "cuda:1" and check_device("cuda") == "cuda"
    with pytest.raises(ValueError, match=r"torch sees 2 CUDA devices \(cuda:0 .. cuda:1\)"):
        check_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        check_device("cuda")
    assert check_device("cuda:3", available=False) == "cuda:3"  # remote workers: parse only
    with pytest.raises(ValueError, match="not a device"):
        check_device("banana", available=False)


def test_remote_backend_parses_but_does_not_probe_cuda(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    p = _quickstart(tmp_path, extra='[sweep]\nbackend = "slurm"\n', device='"cuda:1"')
    assert load_sweep(p).cfg["sampler"]["device"] == "cuda:1"


# ----------------------------------------------------------------------------- [sweep]


@pytest.mark.parametrize("extra, match", [
    ('[sweep.slurm]\nmemory = "abc"\n', r"'sweep.slurm.memory' = 'abc'.* is not a memory size"),
    ('[sweep.slurm]\nwalltime = "soon"\n', r"'sweep.slurm.walltime' = 'soon'.* is not a SLURM time"),
    ("[sweep]\nthreads = 1000000000000000000\n", r"'sweep.threads' = 1000000000000000000 exceeds "
                                                 r"1024"),
    ("[sweep.slurm]\ncores = 5000\n", r"'sweep.slurm.cores' = 5000 exceeds 1024"),
])
def test_sweep_values(tmp_path, extra, match):
    import re

    assert re.search(match, _load_error(_quickstart(tmp_path, extra=extra)))


def test_sweep_values_accepted():
    # dask's units, as dask-jobqueue reads [sweep.slurm] memory (issue 23: GB was read as GiB)
    assert cb.parse_memory("8GB") == 8 * 10**9 and cb.parse_memory("512 MiB") == 512 * 2**20
    for t in ("01:00:00", "30", "30:00", "2-00", "2-12:00", "1-00:00:00"):
        cb.check_walltime(t)


# ----------------------------------------------------------------------------- physics bounds


def test_t_min_tau_above_t_max_tau_quickstart(tmp_path):
    msg = _load_error(_quickstart(tmp_path, t_min_tau="1e4"))
    assert "sampler.t_max_tau (1000) must exceed t_min_tau (10000)" in msg


@pytest.mark.parametrize("key, value, match", [
    ("variance", "1e-300", r"'data.variance' = 1e-300 is outside \[1.5e-154, 1.3e\+154\]"),
    ("t_max_tau", "1e300", r"'sampler.t_max_tau' = 1e\+300 is outside \[1.5e-154"),
    ("t_max_tau", "1e100", r"'sampler.t_max_tau' = 1e\+100 exceeds 2.03e\+31 = data variance / "
                           r"eps\^2 of float64"),
    ("variance", "1e-30", r"'sampler.t_min_tau' = 0.0001 exceeds the data variance data.variance "
                          r"= 1e-30"),
])
def test_scales_where_the_numerics_break(tmp_path, key, value, match):
    """The measured failures: variance = 1e-300 or t_max_tau = 1e300 gave memorization ratio 0
    for the empirical score (which memorizes every sample at these settings, ratio 1)."""
    import re

    assert re.search(match, _load_error(_quickstart(tmp_path, **{key: value})))


def test_scale_bounds_follow_the_dtype(tmp_path):
    lo, hi = cb.dtype_scale_range("float32")
    assert lo == pytest.approx(math.sqrt(np.finfo(np.float32).tiny))
    assert hi == pytest.approx(math.sqrt(np.finfo(np.float32).max))
    msg = _load_error(_quickstart(tmp_path, dtype='"float32"', t_max_tau="1e20"))
    assert "outside" in msg and "float32" in msg
    eps = float(np.finfo(np.float32).eps)
    msg = _load_error(_quickstart(tmp_path, dtype='"float32"', t_max_tau="1e15"))
    assert f"exceeds {1 / eps**2:.3g}" in msg
    load_sweep(_quickstart(tmp_path, dtype='"float32"', t_max_tau="1e13"))  # within


def test_other_experiments_scales(tmp_path):
    for name, old, new, match in [
        ("geometric_memphase.toml", "tau_min = 1e-5", "tau_min = 1e-200", "'measure.tau_min' = 1e-200"),
        ("regularization.toml", "sigma_end = 1e-6", "sigma_end = 1e-100",
         "'sampler.sigma_end squared'"),
        ("memorization.toml", "std = 1.0", "std = 1e-3", "exceeds the data variance data.std "
                                                         "squared = 1e-06"),
        ("linear_model.toml", "std = 1.0", "std = 1e200", "'data.std squared' = inf"),
    ]:
        text = (ROOT / "data" / "configs" / name).read_text()
        assert old in text, (name, old)
        p = tmp_path / name
        p.write_text(text.replace(old, new, 1))
        assert match in _load_error(p), name


# ----------------------------------------------------------------------------- duplicates


def _first_list(cfg: dict):
    for k, v in cfg.get("grid", {}).items():
        if isinstance(v, list) and v:
            return k, v
    raise AssertionError("no grid list")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_one_duplicate_rule_in_every_job(tmp_path, path):
    """A value written twice in any [grid] list is rejected, naming the key and the value, in
    every job (before: quickstart refused duplicate cells, memorization merged them)."""
    text = path.read_text()
    key, vals = _first_list(tomllib.loads(text))
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.split(" = ")[0].strip() == key)
    dup = [vals[0]] + vals
    lines[i] = f"{key} = " + str(dup).replace("'", '"')
    p = tmp_path / path.name
    p.write_text("\n".join(lines))
    msg = _load_error(p)
    assert f"'grid.{key}' lists {vals[0]!r} twice" in msg


def test_duplicate_rule_covers_axis_lists_outside_grid():
    from memphase.simulate.experiments import geometric, speciation

    with pytest.raises(ConfigError, match=r"'train.steps' lists 500 twice"):
        validate({"job": "geometric", "grid": {"n_train": [8]}, "train": {"steps": [500, 500]}},
                 geometric.SCHEMA)
    with pytest.raises(ConfigError, match=r"'measure.offsets' lists 0.0 twice"):
        validate({"job": "speciation", "measure": {"offsets": [-1.0, 0.0, 0.0, 1.0]}},
                 speciation.SCHEMA)
    # not an axis: two tangent blocks of the same dimension are fine
    cfg = validate({"job": "geometric", "grid": {"n_train": [8]}, "data": {"block_dims": [3, 3]}},
                   geometric.SCHEMA)
    assert cfg["data"]["block_dims"] == [3, 3]
    # an int range is the set of its distinct rounded values: it never repeats one
    assert expand_range("n", {"start": 2, "stop": 4, "num": 5, "scale": "log"}, "int") == [2, 3, 4]


# ----------------------------------------------------------------------------- output value


@pytest.mark.parametrize("value, match", [
    ('""', "'output' is empty"),
    ('"a\\u0000b.h5"', "'output' contains a NUL byte"),
    ('"d/' + "x" * 300 + '.h5"', r"'output' has a path component of 303 bytes; the limit is 223"),
    ('"' + "d/" * 2100 + 'x.h5"', r"'output' is 4204 bytes long; paths are at most 4096"),
    ('"a\\nb.h5"', r"'output' contains a control character \('\\n'\)"),
    ('"$HOME/x.h5"', r"'output' contains '\$': a config path is taken literally"),
    ('"r`id`.h5"', r"'output' contains '`'"),
    ('"r*.h5"', r"'output' contains '\*'"),
])
def test_output_value_is_a_possible_file_name(tmp_path, value, match):
    """A 300-character output name was an OSError (File name too long) traceback in `info`."""
    import re

    assert re.search(match, _load_error(_quickstart(tmp_path, output=value)))
