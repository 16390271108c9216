"""Conventions by which `memphase plot` reads any results file (module docstring of
`memphase.analysis.plots.sweep`): which dims are sweep axes, which variables are theory overlays or
boundaries, how dims that are not plotted are reduced, and the default axes of a heatmap."""

from __future__ import annotations

import tomllib

import numpy as np

__all__ = ["sweep_axes", "theory_partner", "boundary_variables", "parse_selection", "reduce_dims",
           "default_axes"]

_FACET = "score"
_AVERAGED = "seed"
_SIZE_AXES = ("n_train", "alpha")


def sweep_axes(ds) -> list[str]:
    """Dims of `ds` that are [grid] keys of its stored config ("seeds" -> "seed"), in dim order;
    without a readable config, every dim that is not time, tau or block."""
    keys = None
    try:
        grid = tomllib.loads(ds.attrs.get("config", "")).get("grid", {})
        keys = {"seed" if k == "seeds" else k for k in grid}
    except (tomllib.TOMLDecodeError, AttributeError):
        pass
    if not keys:
        keys = {d for d in ds.dims if d not in ("time", "tau", "block")}
    return [d for d in ds.dims if d in keys]


def theory_partner(ds, name: str) -> str | None:
    """`<name>_theory` (or, for `<base>_measured`, `<base>_theory`) if the Dataset has it."""
    base = name[: -len("_measured")] if name.endswith("_measured") else name
    for cand in (f"{name}_theory", f"{base}_theory"):
        if cand in ds.data_vars and cand != name:
            return cand
    return None


def boundary_variables(ds, axis: str) -> list[str]:
    """Variables whose attribute `boundary_axis` is `axis`."""
    return [v for v in ds.data_vars if ds[v].attrs.get("boundary_axis") == axis]


def _is_overlay(ds, name: str) -> bool:
    return name.endswith("_theory") or "boundary_axis" in ds[name].attrs


def _numeric(ds, name) -> bool:
    return ds[name].dtype.kind in "fiub"


def _main_variables(ds) -> list[str]:
    return [v for v in ds.data_vars if _numeric(ds, v) and not _is_overlay(ds, v)
            and ds[v].ndim > 0]


def _coord(ds, dim) -> np.ndarray:
    return np.asarray(ds[dim].values) if dim in ds.coords else np.arange(ds.sizes[dim])


def parse_selection(ds, items) -> dict:
    """{'dim': value} from ['dim=value', ...]: value cast to the coordinate's type; ValueError
    naming an unknown dim or a missing categorical value."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--sel expects DIM=VALUE, got {item!r}")
        dim, val = (s.strip() for s in item.split("=", 1))
        if dim not in ds.dims:
            raise ValueError(f"--sel: unknown dim {dim!r}; dims: {list(ds.dims)}")
        coord = _coord(ds, dim)
        if coord.dtype.kind in "USO":
            if val not in coord.astype(str):
                raise ValueError(f"--sel: {dim} has no value {val!r}; values: {list(coord)}")
            out[dim] = val
        else:
            try:
                out[dim] = float(val)
            except ValueError:
                raise ValueError(f"--sel: {dim} is numeric, got {val!r}") from None
    return out


def reduce_dims(da, keep, selection=None):
    """Reduce every dim of `da` not in `keep` by the module's rule: `seed` averaged, a dim in
    `selection` set to that (nearest) value, any other dim to its last value. Returns
    (reduced DataArray, {dim: value chosen})."""
    selection = selection or {}
    chosen = {}
    for dim in list(da.dims):
        if dim in keep:
            continue
        if dim == _AVERAGED:
            da = da.mean(dim, skipna=True)
            continue
        if dim in selection:
            kind = da[dim].dtype.kind if dim in da.coords else "i"
            da = da.sel({dim: selection[dim]}, method=None if kind in "USO" else "nearest")
        else:
            da = da.isel({dim: -1})
        chosen[dim] = da[dim].values.item() if dim in da.coords else -1
    return da, chosen


def _candidate_axes(ds, name, fixed=()):
    da = ds[name]
    skip = (_AVERAGED, _FACET, *fixed)
    axes = sweep_axes(ds)
    sweep = [d for d in axes if d in da.dims and da.sizes[d] > 1 and d not in skip]
    internal = [d for d in da.dims if d not in axes and d not in (*skip, "block")
                and da.sizes[d] > 1 and _coord(ds, d).dtype.kind in "fiu"]
    return sweep, internal


def default_axes(ds, name, x=None, y=None, fixed=()):
    """(x, y) of a heatmap of `name` by the module's rule, never a dim in `fixed` (those given
    by --sel); y is None when the variable has a single axis with more than one value (a curve).
    ValueError naming an axis the variable lacks."""
    da = ds[name]
    for a, flag in ((x, "--x"), (y, "--y")):
        if a is not None and a not in da.dims:
            raise ValueError(f"{flag}: variable {name!r} has no axis {a!r}; its axes: "
                             f"{list(da.dims)}")
    if x is not None and x == y:
        raise ValueError(f"--x and --y are both {x!r}")
    sweep, internal = _candidate_axes(ds, name, fixed)
    if x is None and y is None:
        if sweep and internal:
            return sweep[-1], internal[0]
        if len(sweep) >= 2:
            return sweep[-1], sweep[-2]
        cands = sweep + internal
        if len(cands) >= 2:
            return cands[0], cands[1]
        return (cands[0], None) if cands else (None, None)
    order = internal + sweep[::-1]
    if y is None:
        rest = [a for a in order if a != x]
        return x, (rest[0] if rest else None)
    rest = [a for a in sweep[::-1] + internal if a != y]
    if not rest:
        raise ValueError(f"variable {name!r} has no axis besides {y!r} to put on x")
    return rest[0], y
