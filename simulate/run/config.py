"""TOML configs: loading and validation against a declared schema, before anything runs.

A schema is a dict key -> `Field` (a leaf) or -> dict (a [section]). Validation fills defaults and
reports the first problem as a `ConfigError` naming the key: an unknown key (with the nearest
valid name), a wrong type, an out-of-range value, a missing required key.
"""

from __future__ import annotations

import difflib
import math
import reprlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["ConfigError", "Field", "load_toml", "validate", "schema_help", "expand_range",
           "MAX_LIST_LEN", "short_repr"]

#: most values one list key may hold (an explicit list or a range table's `num`): a grid axis
#: longer than this is a typo (`num = 1e9`) and would exhaust memory before any check could run
MAX_LIST_LEN = 10_000

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxlist = 60, 60, 3, 6


def short_repr(value) -> str:
    """repr(value) cut to ~60 characters and 3 nesting levels, for one-line error messages."""
    return _REPR.repr(value)


from ..base.errors import ConfigError  # noqa: E402  (defined one layer down; importable here)


_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One config key.

    kind:    "int", "float", "str", "bool", or a list kind "list[int]", "list[float]", "list[str]";
             a numeric list may be given as a range table (see `expand_range`).
    default: value when absent (omit for a required key).
    check:   optional predicate on the value (each element for lists) with `rule` its description.
    choices: allowed values (each element for lists).
    allow_empty: a list kind may be `[]` (e.g. extra SLURM directives); grid axes may not.
    unique:  a list kind may not repeat a value (the default: lists are axes of the results). The
             one duplicate rule of the suite: a value written twice is rejected, naming the key
             and the value; an int range table is the set of its distinct rounded values (see
             `expand_range`), so it never repeats one. Lists that are not axes (block dimensions,
             SLURM directives) set unique=False.
    check:   may also raise ValueError with its own message (e.g. a device string).
    """

    kind: str
    default: Any = _MISSING
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    choices: tuple | None = None
    help: str = ""
    allow_empty: bool = False
    unique: bool = True


#: TOML integers are 64-bit signed ("an integer that cannot be represented losslessly must be an
#: error", TOML 1.0); Python's parser accepts more, and such values overflow float arithmetic
INT_RANGE = (-(2**63), 2**63 - 1)


def _type_ok(kind: str, v) -> bool:
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool) and INT_RANGE[0] <= v <= INT_RANGE[1]
    if kind == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if kind == "str":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    raise AssertionError(kind)


_RANGE_KEYS = {"start", "stop", "num", "scale"}


def expand_range(name: str, spec: dict, kind: str) -> list:
    """A range table -> the list it stands for: `{start = 4, stop = 4096, num = 7, scale = "log"}`
    (geometric, both ends included) or `scale = "linear"` (the default, evenly spaced). For an
    int axis the values are rounded and repeated values dropped (so log ranges of N stay valid):
    an int range is the ordered set of its distinct rounded values. `num` is at most
    `MAX_LIST_LEN`; the expansion is linear in `num`."""
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ConfigError(f"'{name}': unknown range key {short_repr(sorted(unknown)[0])}; a range "
                          "is {start = ..., stop = ..., num = ..., scale = \"linear\" | \"log\"}")
    missing = [k for k in ("start", "stop", "num") if k not in spec]
    if missing:
        raise ConfigError(f"'{name}': range needs '{missing[0]}' "
                          "({start = ..., stop = ..., num = ..., scale = ...})")
    if kind not in ("int", "float"):
        raise ConfigError(f"'{name}': a range is only allowed for numbers, this is a list of {kind}")
    start, stop, num, scale = spec["start"], spec["stop"], spec["num"], spec.get("scale", "linear")
    for key, val in (("start", start), ("stop", stop)):
        if not _type_ok("float", val):
            raise ConfigError(f"'{name}': range {key} must be a number, got {short_repr(val)}")
    if not _type_ok("int", num) or num < 1:
        raise ConfigError(f"'{name}': range num must be an integer >= 1, got {short_repr(num)}")
    if num > MAX_LIST_LEN:
        raise ConfigError(f"'{name}': range num = {num} exceeds the limit of {MAX_LIST_LEN} values "
                          f"per list")
    if scale not in ("linear", "log"):
        raise ConfigError(f"'{name}': range scale must be 'linear' or 'log', "
                          f"got {short_repr(scale)}")
    if scale == "log":
        if start <= 0 or stop <= 0:
            raise ConfigError(f"'{name}': a log range needs start and stop > 0")
        q = stop / start
        if 0 < q < math.inf:
            ratio = q ** (1 / (num - 1)) if num > 1 else 1.0
            vals = [start * ratio**i for i in range(num)]
        else:  # stop / start leaves the float range: step in log space
            lo, step = math.log(start), (math.log(stop) - math.log(start)) / max(num - 1, 1)
            vals = [start] + [math.exp(lo + step * i) for i in range(1, num)]
    else:
        step = (stop - start) / (num - 1) if num > 1 else 0.0
        vals = [start + step * i for i in range(num)]
    if num > 1:
        vals[-1] = stop
    if not all(math.isfinite(x) for x in vals):
        raise ConfigError(f"'{name}': range from {start:g} to {stop:g} leaves the float range")
    if kind == "int":
        return list(dict.fromkeys(int(round(x)) for x in vals))  # distinct, in order, linear time
    return [float(x) for x in vals]


def _check_leaf(name: str, f: Field, v):
    kinds = f.kind[5:-1] if f.kind.startswith("list[") else None
    if kinds and isinstance(v, dict):
        v = expand_range(name, v, kinds)
    if kinds:
        if not isinstance(v, list):
            v = [v]  # a scalar is a one-element list
        if not v and f.allow_empty:
            return []
        if not v:
            raise ConfigError(f"'{name}' must be a non-empty list of {kinds}")
        if len(v) > MAX_LIST_LEN:
            raise ConfigError(f"'{name}' holds {len(v)} values; the limit is {MAX_LIST_LEN} "
                              f"per list")
        items = v
    else:
        items = [v]
        kinds = f.kind
    for item in items:
        if not _type_ok(kinds, item):
            what = " in the 64-bit range" if isinstance(item, int) and kinds == "int" else ""
            raise ConfigError(f"'{name}' must be {'a list of ' + kinds if f.kind != kinds else kinds}"
                              f"{what}, got {short_repr(item)} ({type(item).__name__})")
        if f.choices is not None and item not in f.choices:
            raise ConfigError(f"'{name}' = {short_repr(item)} is not one of {list(f.choices)}")
        if f.check is not None:
            try:
                ok = f.check(item)
            except (ValueError, ArithmeticError) as e:
                raise ConfigError(f"'{name}' = {short_repr(item)}: {e}") from None
            if not ok:
                raise ConfigError(f"'{name}' = {short_repr(item)} is out of range: {f.rule}")
    if f.kind.startswith("list[") and f.unique:
        seen = set()
        for item in items:
            if item in seen:
                raise ConfigError(f"'{name}' lists {short_repr(item)} twice; every value of a list "
                                  f"may appear once")
            seen.add(item)
    if kinds == "float" and f.kind.startswith("list["):
        return [float(i) for i in items]
    if kinds == "float":
        return float(v)
    return v


def validate(raw: dict, schema: dict, where: str = "") -> dict:
    """Return a copy of `raw` checked against `schema`, with defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table, got {type(raw).__name__}")
    for key in raw:
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1) if len(key) < 100 else []
            sect = f" in [{where}]" if where else ""
            msg = f"unknown key {short_repr(key)}{sect}"
            msg += f"; did you mean '{hint[0]}'?" if hint else f"; valid keys: {sorted(schema)}"
            raise ConfigError(msg)
    out = {}
    for key, spec in schema.items():
        name = f"{where}.{key}" if where else key
        if isinstance(spec, dict):
            out[key] = validate(raw.get(key, {}), spec, name)
        elif key in raw:
            out[key] = _check_leaf(name, spec, raw[key])
        elif spec.default is _MISSING:
            raise ConfigError(f"missing required key '{name}'")
        else:
            out[key] = spec.default
    return out


def load_toml(path) -> tuple[dict, str]:
    """Parse a TOML file: (dict, raw text). Errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (TOML files are UTF-8): {e}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{p}: arrays or tables nested too deeply to parse") from None


def schema_help(schema: dict, where: str = "") -> list[str]:
    """Lines 'key (kind, default) help' for documentation and --help."""
    lines = []
    for key, spec in schema.items():
        name = f"{where}.{key}" if where else key
        if isinstance(spec, dict):
            lines += schema_help(spec, name)
        else:
            dflt = "required" if spec.default is _MISSING else f"default {spec.default!r}"
            lines.append(f"{name} ({spec.kind}, {dflt}) {spec.help}".rstrip())
    return lines
