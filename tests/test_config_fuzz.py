"""Property-based fuzzing of config loading (issue 12 C).

Property: for any mutation of a canonical config in data/configs/ (values of other types, huge or
tiny magnitudes, other signs, nested arrays, dropped / added / duplicated keys, huge range tables,
strings with odd characters, arrays nested thousands deep), `memphase info CONFIG` and the
pre-compute part of `memphase run CONFIG` either succeed (exit 0) or print exactly one line
`memphase: error: ...` with exit 2, within HANG_LIMIT seconds, and a rejected config creates no
file. CI runs CI_EXAMPLES examples; the `slow` test runs SLOW_EXAMPLES (docs/reliability.md
records the last long run).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from memphase.simulate import sweep  # noqa: E402
from memphase.simulate.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "data" / "configs").glob("*.toml"))
CANONICAL = {p.name: tomllib.loads(p.read_text()) for p in CONFIGS}
#: seconds one in-process `info` / `run` (up to the first cell) may take before it counts as a
#: hang (measured well under a second each once imported; generous for a loaded 2-core machine)
HANG_LIMIT = 20.0
CI_EXAMPLES = 200
SLOW_EXAMPLES = 10_000


# ----------------------------------------------------------------------------- TOML writer


def _toml_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)  # TOML basic strings accept JSON's escapes
    return out.replace("\x7f", "\\u007f")


def _toml_key(k: str) -> str:
    return k if k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k) else _toml_str(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def dump_toml(d: dict, prefix: str = "") -> str:
    """A dict of TOML-able values as TOML text (top-level keys, then [tables])."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d.items()
             if not (isinstance(v, dict) and _is_table(v))]
    for k, v in d.items():
        if isinstance(v, dict) and _is_table(v):
            name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
            lines.append(f"\n[{name}]")
            lines.append(dump_toml(v, name))
    return "\n".join(lines)


def _is_table(v: dict) -> bool:
    """A section (written as [table]) rather than an inline table (range tables, odd values)."""
    return not v or any(isinstance(x, dict) for x in v.values()) or not (
        set(v) <= {"start", "stop", "num", "scale"} or len(v) < 2)


# ----------------------------------------------------------------------------- mutations

ODD_STRINGS = ["", " ", "banana", "cuda:99", "cuda", "auto", "cpu", "meta", "mps", "cuda:-1",
               "a\nb", "\t", "\x00", "\x7f", "ü", "💥", "../../x.h5", "/", ".", "8GB", "abc",
               "-1", "1e9", "nan", "quickstart", "geometric", "memorization", "x" * 300,
               "data/results/out.png", "01:00:00", "1-00", "log", "linear",
               # deep and odd paths (issue #26)
               "a/" * 300 + "r.h5", "./" * 1500 + "r.h5", "~/../../r.h5", "r.h5/", "-r.h5",
               "r .h5", "r.h5.lock", "r.h5.cells/x.h5", " r.h5", "r.H5", "con/aux.h5",
               "\u202er.h5", "r\u0301.h5"]
#: the values of issue #26 items 9-11 that the earlier strategies missed: 2^63-1 seeds and batch
#: sizes, 10000001 counts, huge tolerances and timeouts, floats next to the float32 / float64
#: ends, times that underflow
ISSUE26_NUMBERS = [2**63 - 1, 2**32, 2**31 - 1, 10000001, 1e12, 1e-38, 3.4e38, 9.2e18, 4.6e18,
                   2.2e-308, 1.2e-19, 1.1e-19, 1e-12, 2.0**-1074, 1.7976931348623157e308,
                   2**53 + 1, -(2**63), 1e-7]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-4, max_value=20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 10**9, 10**18, -(10**18), 2**63 - 1, 0.0, -0.0, 0.5, 1e-300,
                     1e300, 1e-30, 5e-324, 1e9, 1e6, 4096, 1e-4, 1e3, 100.0]),
    st.sampled_from(ISSUE26_NUMBERS),
)
STRINGS = st.one_of(st.sampled_from(ODD_STRINGS),
                    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans())
RANGES = st.fixed_dictionaries(
    {"start": NUMBERS, "stop": NUMBERS,
     "num": st.one_of(st.integers(1, 20), st.sampled_from([10**4, 10**5, 10**6, 10**9, 0, -3,
                                                           1e9, 2.5]))},
    optional={"scale": st.sampled_from(["log", "linear", "cubic", 3])})
VALUES = st.recursive(st.one_of(SCALARS, RANGES),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.dictionaries(STRINGS, inner, max_size=2)),
                      max_leaves=8)
KEYS = st.sampled_from(["job", "output", "d", "n_train", "alpha", "seeds", "score", "device",
                        "threads", "memory", "backend", "variance", "t_min_tau", "zzz", "grid",
                        "sweep", "slurm", "steps", "std", "num"])


def _paths(d: dict, prefix=()):
    """Every key path of a config dict (sections and leaves)."""
    for k, v in d.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


def _get(d, path):
    for k in path:
        d = d[k]
    return d


INTS = st.one_of(st.sampled_from([0, -1, 1, 2, 3, 10**4, 10**5, 10**6, 10**7, 10**9, 10**18,
                                  2**63 - 1, -(2**63), 2**32, 2**31 - 1, 10000001, 2**53 + 1]),
                 st.integers(-3, 70), st.integers(-(2**63), 2**63 - 1))
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1e-300, 1e300, 1e-30, 1e30, 1e-100, 1e100, 5e-324,
                                    1e-16, 1e16, 0.5, 1.0, 2.0, 1e3, 1e-4, -1.0, 1e9,
                                    math.inf, -math.inf, math.nan]),
                   st.sampled_from([float(x) for x in ISSUE26_NUMBERS]),
                   st.floats(allow_nan=True, allow_infinity=True))


def _same_type(v, draw):
    """A value of v's own type (so the schema's type check passes and later checks run)."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return draw(INTS)
    if isinstance(v, float):
        return draw(FLOATS)
    if isinstance(v, str):
        return draw(STRINGS)
    if isinstance(v, list):
        if not v:
            return [draw(SCALARS)]
        out = list(v)
        i = draw(st.integers(0, len(out) - 1))
        out[i] = _same_type(out[i], draw)
        return out
    return draw(VALUES)


def _perturb(v, draw):
    """A nearby-but-odd version of v: same type, scaled, negated, wrapped in lists, duplicated,
    emptied, a range table, or any value."""
    kind = draw(st.sampled_from(["same", "same", "same", "scale", "negate", "nest", "dup",
                                 "empty", "range", "any"]))
    if kind == "scale" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return v * draw(st.sampled_from([10**6, 10**18, 1e-300, 1e300, 0, 1e9, 3]))
    if kind == "negate" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return -v
    if kind == "nest":
        for _ in range(draw(st.integers(1, 6))):
            v = [v]
        return v
    if kind == "dup" and isinstance(v, list) and v:
        return v + [v[draw(st.integers(0, len(v) - 1))]]
    if kind == "empty":
        return [] if isinstance(v, list) else ({} if isinstance(v, dict) else "")
    if kind == "range" and isinstance(v, list):
        table = {"start": draw(NUMBERS), "stop": draw(NUMBERS),
                 "num": draw(st.sampled_from([3, 50, 10**4, 10**5, 10**9]))}
        if draw(st.booleans()):
            table["scale"] = draw(st.sampled_from(["log", "linear"]))
        return table
    if kind == "any":
        return draw(VALUES)
    return _same_type(v, draw)


@st.composite
def mutated_config(draw) -> str:
    """TOML text: a canonical config with 1..3 mutations (mostly of one value, keeping its
    type, so that the checks after the schema are reached), then maybe one on the text."""
    name = draw(st.sampled_from(sorted(CANONICAL)))
    cfg = json.loads(json.dumps(CANONICAL[name]))  # deep copy
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3]))):
        paths = [p for p in _paths(cfg) if p != ("job",)]
        if draw(st.integers(0, 5)):  # mostly a leaf value, sometimes a whole [section]
            paths = [p for p in paths if not isinstance(_get(cfg, p), dict)] or paths
        if draw(st.integers(0, 19)) == 0:
            paths.append(("job",))  # rarely: the job itself
        op = draw(st.sampled_from(["perturb"] * 6 + ["replace", "drop", "add"]))
        if op == "add" or not paths:
            parents = [()] + [p for p in paths if isinstance(_get(cfg, p), dict)]
            parent = _get(cfg, draw(st.sampled_from(parents)))
            parent[draw(st.one_of(KEYS, STRINGS))] = draw(VALUES)
            continue
        path = draw(st.sampled_from(paths))
        parent = _get(cfg, path[:-1])
        if op == "drop":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(VALUES)
        else:
            parent[path[-1]] = _perturb(parent[path[-1]], draw)
    text = dump_toml(cfg)
    tail = draw(st.sampled_from(["none"] * 12 + ["deep", "dup_line", "garbage", "truncate"]))
    lines = text.splitlines()
    values = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("job")]
    if tail == "deep" and values:  # one value becomes arrays nested 50 .. 5000 deep
        i = draw(st.sampled_from(values))
        depth = draw(st.sampled_from([50, 500, 5000]))
        lines[i] = lines[i].split(" = ")[0] + " = " + "[" * depth + "1" + "]" * depth
        text = "\n".join(lines)
    elif tail == "dup_line" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        text = "\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    elif tail == "garbage":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(["[", "]", "=", '"', "\n[[x]]\n", "\x00", "{"])) \
            + text[i:]
    elif tail == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    return text


# ----------------------------------------------------------------------------- the property


class Hang(BaseException):
    """Raised by the alarm when one call runs past HANG_LIMIT."""


class ReachedCompute(BaseException):
    """Raised instead of computing the first cell: the config passed every pre-compute check."""


@contextlib.contextmanager
def hang_guard(seconds: float = HANG_LIMIT):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _tree(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def call_cli(argv) -> tuple:
    """(exit code or 'compute', stdout, stderr) of main(argv) in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), hang_guard():
        try:
            rc = main(argv)
        except ReachedCompute:
            rc = "compute"
    return rc, out.getvalue(), err.getvalue()


def check_property(text: str, monkeypatch_compute) -> str:
    """`info` and the pre-compute part of `run` on the config text: exit 0 (or reaching the
    first cell) or exactly one error line with exit 2; a rejected config creates no file.
    Returns the outcome, e.g. "info 0, run compute" or "info 2"."""
    outcome = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = root / "c.toml"
        cfg.write_text(text, encoding="utf-8")
        cwd = os.getcwd()
        os.chdir(root)  # the configs' relative outputs land (or must not land) here
        try:
            before = _tree(root)
            for argv in (["info", str(cfg)], ["run", "-q", "--no-plot", str(cfg), "-o",
                                              str(root / "out" / "r.h5")]):
                with monkeypatch_compute():
                    rc, out, err = call_cli(argv)
                assert rc in (0, 2, "compute"), (argv[0], rc, err[-2000:], text[:3000])
                outcome.append(f"{argv[0]} {rc}")
                if rc == 2:
                    assert err.startswith("memphase: error: ") and err.count("\n") == 1, \
                        (argv[0], err[-2000:], text[:3000])
                    assert _tree(root) == before, (argv[0], _tree(root) - before, text[:3000])
                else:
                    assert argv[0] == "run" or err == "", (argv[0], err[-2000:], text[:3000])
                if argv[0] == "info" and rc == 2:
                    break  # run loads the same way; one rejection checked is enough
        finally:
            os.chdir(cwd)
    return ", ".join(outcome)


@contextlib.contextmanager
def _no_compute():
    """Make the first cell of an in-process run raise ReachedCompute instead of computing."""
    def stop(plan, todo):
        raise ReachedCompute

    old = sweep._iter_inprocess
    sweep._iter_inprocess = stop
    try:
        yield
    finally:
        sweep._iter_inprocess = old


@pytest.fixture(scope="module", autouse=True)
def warm_imports():
    """Every canonical config loads (exit 0); imports happen here, not inside the hang guard."""
    for p in CONFIGS:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["info", str(p)]) == 0, err.getvalue()


def test_toml_writer_round_trips_every_canonical_config():
    for name, cfg in CANONICAL.items():
        assert tomllib.loads(dump_toml(cfg)) == cfg, name


@seed(20260512)
@settings(max_examples=CI_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutated_config())
def test_mutated_configs_give_exit_0_or_one_line_exit_2(text):
    event(check_property(text, _no_compute))


@pytest.mark.slow
@seed(4242)
@settings(max_examples=SLOW_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutated_config())
def test_mutated_configs_long_run(text):
    event(check_property(text, _no_compute))


# ----------------------------------------------------------------------------- subprocesses

BAD = {
    "job_list": 'job = ["quickstart"]\n',
    "deep": "job = \"quickstart\"\n[grid]\nseeds = " + "[" * 5000 + "0" + "]" * 5000 + "\n",
    "huge_num": ('job = "quickstart"\n[grid]\n'
                 'n_train = {start = 4, stop = 4096, num = 1000000000}\n'),
    "device": 'job = "quickstart"\n[sampler]\ndevice = "banana"\n',
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_subprocess_bad_config_one_line_exit_2(tmp_path, name):
    """The real command line: exit 2, one stderr line, nothing written beside the config."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(BAD[name])
    before = _tree(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "memphase.simulate.cli", "info", str(cfg)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("memphase: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == "" and _tree(tmp_path) == before


# ----------------------------------------------------------------------------- every leaf

#: values put, one at a time, into every leaf of every canonical config
BOUNDARY_VALUES = [0, -1, 1, 2, 10**7, 10**18, -(2**63), 2**64, 0.0, -1.0, 1e-300, 1e300, 1e-30,
                   1e30, 1e100, 5e-324, math.inf, math.nan, 0.5, "", "x", [], [[1]], True,
                   {"start": 1, "stop": 1e300, "num": 10000, "scale": "log"}]
#: the CI subset (the `slow` test takes all of BOUNDARY_VALUES)
CI_BOUNDARY_VALUES = [-1, 1e300, 2**64, [[1]],
                      {"start": 1, "stop": 1e300, "num": 10000, "scale": "log"}]


#: CI takes every CI_LEAF_STRIDE-th leaf (all values each; ~1/3 of the cases, ~20 s), keeping
#: the file's CI share near a minute; the `slow` test takes every leaf
CI_LEAF_STRIDE = 3


def _leaf_cases(values, stride: int = 1):
    i = -1
    for name, cfg0 in sorted(CANONICAL.items()):
        for path in _paths(cfg0):
            if isinstance(_get(cfg0, path), dict):
                continue
            i += 1
            if i % stride:
                continue
            for v in values:
                cfg = json.loads(json.dumps(cfg0))
                _get(cfg, path[:-1])[path[-1]] = v
                yield name, path, v, dump_toml(cfg)


def _check_leaves(values, stride: int = 1) -> int:
    from collections import Counter

    outcomes = Counter()
    for name, path, v, text in _leaf_cases(values, stride):
        try:
            outcomes[check_property(text, _no_compute)] += 1
        except (AssertionError, Hang) as e:
            raise AssertionError(f"{name} {'.'.join(path)} = {v!r}: {e}") from None
    print(f"leaf cases: {sum(outcomes.values())} {dict(outcomes)}")
    return sum(outcomes.values())


def test_every_leaf_of_every_config_with_extreme_values():
    """Each leaf of each canonical config set, one at a time, to a negative, a huge float, an
    int past 64 bits, a nested array and a range table to 1e300 of 10000 values."""
    assert _check_leaves(CI_BOUNDARY_VALUES, CI_LEAF_STRIDE) > 1000 // CI_LEAF_STRIDE


@pytest.mark.slow
def test_every_leaf_of_every_config_with_every_boundary_value():
    assert _check_leaves(BOUNDARY_VALUES) > 5000


# ----------------------------------------------------------------------------- bounded keys


#: values put into every bounded key (`KEY_BOUNDS`) of every canonical config: the extremes of
#: issue #26 item 11 and the ends of the int64 / float ranges
EXTREMES = [-1, 2**63 - 1, 10000001, 1e12, 1e-38, 3.4e38, 9.2e18, 4.6e18, 2.2e-308, 1e300]


def test_every_bounded_key_refuses_its_extremes():
    """Issue #26 item 11: for every job, each key of `KEY_BOUNDS` it has (tolerances, counts,
    seeds, sizes), set to each extreme value: `info` exits 0 only for a value inside the key's
    bound, else prints one line naming the key and exits 2. Before the bounds, all of these
    were accepted."""
    from memphase.simulate.run.config_bounds import KEY_BOUNDS

    checked = 0
    for name, cfg0 in sorted(CANONICAL.items()):
        for path in _paths(cfg0):
            key = path[-1]
            if key not in KEY_BOUNDS or isinstance(_get(cfg0, path), dict):
                continue
            lo, hi, _ = KEY_BOUNDS[key]
            for v in EXTREMES:
                cfg = json.loads(json.dumps(cfg0))
                old = _get(cfg, path)
                if isinstance(old, int) and not isinstance(v, int):
                    continue  # the type check refuses it already
                _get(cfg, path[:-1])[key] = [v] if isinstance(old, list) else v
                with tempfile.TemporaryDirectory() as tmp:
                    p = Path(tmp) / "c.toml"
                    p.write_text(dump_toml(cfg))
                    rc, out, err = call_cli(["info", str(p)])
                where = f"{name} {'.'.join(path)} = {v!r}"
                if lo <= v <= hi:
                    continue  # inside the bound: other checks decide
                assert rc == 2 and err.count("\n") == 1 and key in err, (where, rc, err)
                checked += 1
    assert checked > 100, checked
