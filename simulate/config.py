"""TOML configs: loading and validation against a declared schema, before anything runs.

A schema is a dict key -> `Field` (a leaf) or -> dict (a [section]). Validation fills defaults and
reports the first problem as a `ConfigError` naming the key: an unknown key (with the nearest
valid name), a wrong type, an out-of-range value, a missing required key.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["ConfigError", "Field", "load_toml", "validate", "schema_help", "expand_range"]


class ConfigError(ValueError):
    """A config problem; the message names the file and the key."""


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
    """

    kind: str
    default: Any = _MISSING
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    choices: tuple | None = None
    help: str = ""
    allow_empty: bool = False


def _type_ok(kind: str, v) -> bool:
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
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
    int axis the values are rounded and repeated values dropped (so log ranges of N stay valid)."""
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ConfigError(f"'{name}': unknown range key '{sorted(unknown)[0]}'; a range is "
                          "{start = ..., stop = ..., num = ..., scale = \"linear\" | \"log\"}")
    missing = [k for k in ("start", "stop", "num") if k not in spec]
    if missing:
        raise ConfigError(f"'{name}': range needs '{missing[0]}' "
                          "({start = ..., stop = ..., num = ..., scale = ...})")
    if kind not in ("int", "float"):
        raise ConfigError(f"'{name}': a range is only allowed for numbers, this is a list of {kind}")
    start, stop, num, scale = spec["start"], spec["stop"], spec["num"], spec.get("scale", "linear")
    for key, val in (("start", start), ("stop", stop)):
        if not _type_ok("float", val):
            raise ConfigError(f"'{name}': range {key} must be a number, got {val!r}")
    if not _type_ok("int", num) or num < 1:
        raise ConfigError(f"'{name}': range num must be an integer >= 1, got {num!r}")
    if scale not in ("linear", "log"):
        raise ConfigError(f"'{name}': range scale must be 'linear' or 'log', got {scale!r}")
    if scale == "log":
        if start <= 0 or stop <= 0:
            raise ConfigError(f"'{name}': a log range needs start and stop > 0")
        ratio = (stop / start) ** (1 / (num - 1)) if num > 1 else 1.0
        vals = [start * ratio**i for i in range(num)]
    else:
        step = (stop - start) / (num - 1) if num > 1 else 0.0
        vals = [start + step * i for i in range(num)]
    if num > 1:
        vals[-1] = stop
    if kind == "int":
        out = []
        for x in vals:
            r = int(round(x))
            if r not in out:
                out.append(r)
        return out
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
        items = v
    else:
        items = [v]
        kinds = f.kind
    for item in items:
        if not _type_ok(kinds, item):
            raise ConfigError(f"'{name}' must be {'a list of ' + kinds if f.kind != kinds else kinds}"
                              f", got {item!r} ({type(item).__name__})")
        if f.choices is not None and item not in f.choices:
            raise ConfigError(f"'{name}' = {item!r} is not one of {list(f.choices)}")
        if f.check is not None and not f.check(item):
            raise ConfigError(f"'{name}' = {item!r} is out of range: {f.rule}")
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
            hint = difflib.get_close_matches(key, list(schema), n=1)
            sect = f" in [{where}]" if where else ""
            msg = f"unknown key '{key}'{sect}"
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
    text = p.read_text()
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None


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
