"""Bounds a validated config must respect before anything runs, beyond what one key's schema sees.

`check_plan` runs at config load (`memphase.simulate.sweep.load_sweep`), before any compute; every problem
is a one-line `ConfigError` that names the key, the limit and why:

- size: every list holds at most `MAX_LIST_LEN` values (`memphase.simulate.run.config`), and the product of the
  [grid] list lengths -- an upper bound of the cells -- is at most `MAX_CELLS`, checked before the
  cells are enumerated; a grid with zero cells is refused;
- devices: a `device` string must parse as a torch device of type cpu or cuda, or be "auto", and
  (unless the config's [sweep] backend runs on remote workers) name a CUDA device this machine's
  torch sees (`memphase.simulate.base.device.check_device`);
- the [sweep] table: threads and SLURM cores at most `MAX_THREADS`, a SLURM memory that SLURM can
  read ("8GB", "512MB"), a SLURM walltime in one of its formats;
- the `output` string: a possible file name (not empty, no NUL, components and length within the
  POSIX limits);
- numerical scales (`check_scales`): values in data units (data variance, noise variance tau)
  whose squares the run forms in its dtype must stay normal numbers of that dtype; the reverse
  run must end at a noise variance no larger than the data variance and start no further than
  1/eps^2 data variances (see `check_sampler_scales` for why).
"""

from __future__ import annotations

import math
import re

import numpy as np

from .config import ConfigError

__all__ = ["MAX_CELLS", "MAX_THREADS", "REMOTE_BACKENDS", "grid_size", "check_grid_size",
           "check_cells", "check_devices", "check_sweep_options", "parse_memory",
           "check_walltime", "dtype_scale_range", "check_scales", "check_sampler_scales",
           "check_output_value", "check_plan", "KEY_BOUNDS", "MAX_SEED", "check_key_bounds"]

#: most cells one config may describe (product of the [grid] list lengths): a 10^6-cell study is
#: one config (planning ~10 s, journal batches and part columns scale; issue 23)
MAX_CELLS = 1_000_000
#: most torch threads per cell / cores per SLURM job: no node has more cores than this
MAX_THREADS = 1024
#: backends whose workers run elsewhere: their CUDA devices are not visible here
REMOTE_BACKENDS = ("scheduler", "slurm")


# ----------------------------------------------------------------------------- size


def grid_size(cfg: dict) -> int:
    """Product of the lengths of the [grid] lists (an empty optional list counts as one: it is
    not an axis). An upper bound of the number of cells of every experiment."""
    n = 1
    for v in cfg.get("grid", {}).values():
        if isinstance(v, list) and v:
            n *= len(v)
    return n


def check_grid_size(cfg: dict, limit: int = MAX_CELLS) -> None:
    """ConfigError when the [grid] describes more than `limit` cells (before enumerating them)."""
    n = grid_size(cfg)
    if n > limit:
        axes = ", ".join(f"{k}[{len(v)}]" for k, v in cfg.get("grid", {}).items()
                         if isinstance(v, list) and v)
        raise ConfigError(f"the [grid] describes {n:.3g} cells ({axes}); the limit is {limit} "
                          f"cells per config: split the sweep or shorten an axis")


def check_cells(cells: list, limit: int = MAX_CELLS) -> None:
    """ConfigError for a grid with no cell, or more than `limit`."""
    if not cells:
        raise ConfigError("the grid has zero cells: nothing would be computed (e.g. every "
                          "conditional cell has n_train < n_classes); widen the [grid]")
    if len(cells) > limit:
        raise ConfigError(f"{len(cells)} cells; the limit is {limit} cells per config")


# ----------------------------------------------------------------------------- devices


def _device_fields(cfg: dict, where: str = ""):
    for k, v in cfg.items():
        name = f"{where}.{k}" if where else k
        if isinstance(v, dict):
            yield from _device_fields(v, name)
        elif k == "device" and isinstance(v, str):
            yield name, v


def check_devices(cfg: dict, backend: str = "inprocess") -> None:
    """Every `device` key names a device torch can use: parsed always; CUDA availability and the
    device index checked when the cells run on this machine (not for REMOTE_BACKENDS)."""
    from ..base.device import check_device

    for name, spec in _device_fields(cfg):
        try:
            check_device(spec, available=backend not in REMOTE_BACKENDS)
        except ValueError as e:
            raise ConfigError(f"'{name}': {e}") from None


# ----------------------------------------------------------------------------- [sweep]

#: units of a memory size as dask (and so dask-jobqueue's `memory`) reads them: decimal
#: K/M/G/T/P (kB = 1000 bytes), binary with an 'i' (KiB = 1024 bytes)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_IUNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_WALLTIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}")


def memory_bytes(text: str) -> int:
    """'8GB' -> 8e9, '8GiB' -> 8 * 2**30, '512MB', '2G' (= 2e9): dask's convention
    (dask.utils.parse_bytes), which is how dask-jobqueue reads [sweep.slurm] memory (it then
    writes sbatch --mem itself); ValueError else."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:([KMGTP])(i?))?B?\s*", text, flags=re.I)
    if not m:
        raise ValueError(f"{text!r} is not a memory size; expected e.g. '8GB' or '512MB'")
    unit = (m.group(2) or "").upper()
    return int(float(m.group(1)) * (_IUNITS[unit] if m.group(3) else _UNITS[unit]))


def parse_memory(text: str) -> int:
    """`memory_bytes`, within 1 MB .. 1 EB; ValueError else."""
    n = memory_bytes(text)
    if not 10**6 <= n <= 2**60:
        raise ValueError(f"{text!r} is outside 1MB .. 1EB")
    return n


def check_walltime(text: str) -> None:
    """SLURM time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS; ValueError else."""
    if not _WALLTIME.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a SLURM time; expected HH:MM:SS or D-HH:MM:SS")


def check_sweep_options(opts: dict) -> None:
    """The validated [sweep] table: thread and core counts, SLURM memory and walltime."""
    for key, v in (("threads", opts["threads"]), ("slurm.cores", opts["slurm"]["cores"])):
        if v > MAX_THREADS:
            raise ConfigError(f"'sweep.{key}' = {v} exceeds {MAX_THREADS} (more threads than any "
                              f"node has cores)")
    s = opts["slurm"]
    for key, check in (("memory", parse_memory), ("walltime", check_walltime)):
        if key == "memory" and not s[key]:
            continue  # sized from the estimate
        try:
            check(s[key])
        except ValueError as e:
            raise ConfigError(f"'sweep.slurm.{key}' = {e}") from None


# ----------------------------------------------------------------------------- scales


def dtype_scale_range(dtype: str) -> tuple[float, float]:
    """(sqrt(tiny), sqrt(max)) of a float dtype: values in this range have squares that are
    finite normal numbers of that dtype (float64: 1.5e-154 .. 1.3e154, float32: 1.1e-19 ..
    1.8e19)."""
    fi = np.finfo(dtype)
    return math.sqrt(float(fi.tiny)), math.sqrt(float(fi.max))


def _in_range(name: str, value: float, dtype: str, what: str) -> None:
    lo, hi = dtype_scale_range(dtype)
    if not lo <= value <= hi:
        raise ConfigError(f"'{name}' = {value:g} is outside [{lo:.2g}, {hi:.2g}]: the run squares "
                          f"{what} in {dtype}, and outside this range the squares underflow or "
                          f"overflow")


def check_sampler_scales(cfg: dict, variance: float, var_key: str) -> None:
    """The [sampler] noise range against the data variance s^2 (`var_key` names it).

    - t_min_tau < t_max_tau: the reverse run goes from tau = t_max_tau down to t_min_tau;
    - s^2, t_min_tau, t_max_tau in `dtype_scale_range(sampler.dtype)`: squared distances
      (~ s^2 d) and the kernel's |x - m y|^2 / sigma^2 are formed in that dtype;
    - t_min_tau <= s^2: the run ends where the data dominate the noise; above it the final samples
      are mostly noise and the memorization ratio and collapse fraction measure the noise;
    - t_max_tau <= s^2 / eps^2 (eps of the dtype; float64 2e31, float32 7e13 data variances):
      x_t / m(t) = x_0 + sqrt(tau) z holds no bit of x_0 beyond it, so the run already starts
      from pure noise there; larger values only spread the steps (uniform in log tau) over pure
      noise, and m(t)^2 = 1 / (1 + tau) underflows (measured: t_max_tau = 1e300 gave
      memorization ratio 0 for the empirical score, which memorizes).
    """
    sp = cfg["sampler"]
    lo_tau, hi_tau, dtype = sp["t_min_tau"], sp["t_max_tau"], sp["dtype"]
    if not hi_tau > lo_tau:
        raise ConfigError(f"sampler.t_max_tau ({hi_tau:g}) must exceed t_min_tau ({lo_tau:g})")
    _in_range(var_key, variance, dtype, "distances of the data")
    _in_range("sampler.t_min_tau", lo_tau, dtype, "noise scales")
    _in_range("sampler.t_max_tau", hi_tau, dtype, "noise scales")
    if lo_tau > variance:
        raise ConfigError(f"'sampler.t_min_tau' = {lo_tau:g} exceeds the data variance {var_key} = "
                          f"{variance:g}: the reverse run must end where the data dominate the "
                          f"noise (t_min_tau <= data variance), else its samples are mostly noise")
    _check_tau_resolved(sp)
    eps = float(np.finfo(dtype).eps)
    if hi_tau > variance / eps**2:
        raise ConfigError(f"'sampler.t_max_tau' = {hi_tau:g} exceeds {variance / eps**2:.3g} = "
                          f"data variance / eps^2 of {dtype}: beyond it x_t / m(t) keeps no bit "
                          f"of the data (the run starts from pure noise already there) and "
                          f"m(t)^2 underflows; lower it")


def _check_tau_resolved(sp: dict) -> None:
    """The schedule's time resolves t_min_tau: tau -> t -> tau comes back within 1% (the run
    converts the noise range to the schedule's time; e.g. linear_vp takes times within 1e-9 of
    0 as 0, so t_min_tau below ~1e-12 became tau = 0 and every cell failed after compute)."""
    from memphase.physics.schedules import make_schedule

    if "schedule" not in sp:
        return
    try:
        sch = make_schedule(sp["schedule"])
    except ValueError:
        return
    lo = float(sch.tau_range()[0]) if math.isfinite(sch.t_hi) else 0.0
    tau = max(sp["t_min_tau"], lo)
    back = float(sch.tau(sch.time_of_tau(tau)))
    if not (back > 0 and abs(back / tau - 1) <= 0.01):
        floor = float(sch.tau(sch.t_lo + 1e-8 * (1 + abs(sch.t_lo))))
        raise ConfigError(f"'sampler.t_min_tau' = {sp['t_min_tau']:g} is below what the "
                          f"{sp['schedule']} schedule's time resolves (its time of this tau "
                          f"gives back tau = {back:g}); use t_min_tau >= {floor:.2g}")


def check_scales(cfg: dict) -> None:
    """Numerical bounds of the data scales of every experiment (keys it does not have are
    skipped): the data variance and the sampler's noise range (`check_sampler_scales`), the tau
    scan of `geometric`, the VE noise range of `regularization`, the data std of `linear_model`."""
    data, sp, ms = cfg.get("data", {}), cfg.get("sampler", {}), cfg.get("measure", {})
    if "variance" in data:
        variance, var_key = data["variance"], "data.variance"
    elif "std" in data:
        variance, var_key = data["std"] * data["std"], "data.std squared"
    else:
        variance, var_key = None, ""
    if "t_min_tau" in sp and variance is not None:
        check_sampler_scales(cfg, variance, var_key)
        return
    dtype = sp.get("dtype", "float64")
    if variance is not None:
        _in_range(var_key, variance, dtype, "distances of the data")
    if data.get("normal_std", 0) > 0:
        _in_range("data.normal_std squared", data["normal_std"] * data["normal_std"], "float64",
                  "distances off the manifold")
    for key in ("tau_min", "tau_max", "tau_phase"):
        if key in ms:
            _in_range(f"measure.{key}", ms[key], "float64", "noise scales")
    if "sigma_end" in sp:
        _in_range("sampler.sigma_end squared", sp["sigma_end"] * sp["sigma_end"], dtype,
                  "noise scales")


# ----------------------------------------------------------------------------- output value

#: POSIX limits of one path component and a whole path, in bytes (Linux: NAME_MAX, PATH_MAX)
NAME_MAX, PATH_MAX = 255, 4096


#: characters a shell would expand or substitute: in a config's `output` they would be taken
#: literally (a file named `$HOME`), so they are refused instead of surprising the user
OUTPUT_SHELL_CHARACTERS = "$`*?[]{}\\"


def check_output_value(cfg: dict) -> None:
    """The config's `output` string can be a file name at all: not empty, no NUL byte, no
    component over NAME_MAX bytes, at most PATH_MAX bytes (otherwise the OS refuses it with
    OSError later). Where results may go (suffix, existing files) is the sweep's business."""
    out = cfg.get("output")
    if not isinstance(out, str):
        return
    if not out.strip():
        raise ConfigError("'output' is empty; give a results file, e.g. data/results/run.h5")
    if "\x00" in out:
        raise ConfigError("'output' contains a NUL byte")
    bad = sorted({c for c in out if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ConfigError(f"'output' contains a control character ({bad[0]!r}); give a plain path")
    odd = sorted(set(out) & set(OUTPUT_SHELL_CHARACTERS))
    if odd:
        raise ConfigError(f"'output' contains {odd[0]!r}: a config path is taken literally, not "
                          f"expanded by a shell (no variables, globs or command substitution); "
                          f"write the path itself ('~/' at the start is the one expansion)")
    raw = out.encode("utf-8", "surrogateescape")
    if len(raw) > PATH_MAX:
        raise ConfigError(f"'output' is {len(raw)} bytes long; paths are at most {PATH_MAX}")
    long = [c for c in raw.split(b"/") if len(c) > NAME_MAX - 32]  # room for .lock, .cells, .tmp
    if long:
        raise ConfigError(f"'output' has a path component of {len(long[0])} bytes; the limit is "
                          f"{NAME_MAX - 32} (file systems allow {NAME_MAX}, the sweep adds "
                          f"suffixes such as .cells and .lock)")


# ----------------------------------------------------------------------------- per-key bounds

#: largest seed of any job: every job seeds numpy, torch and its own derived streams from
#: `seed + offset` or `k * seed + c` (offsets up to ~1e5, factors ~1e3); 2^32 - 1 is the range of
#: numpy's legacy seeding and leaves those sums far inside int64, the same rule for every job
MAX_SEED = 2**32 - 1

#: key name -> (lowest, highest, why): one rule per key name for every job and the [sweep] table,
#: applied to a value or to each element of a list (`check_key_bounds`). The bounds are generous
#: for research use; past them a value is a typo whose run fails inside the cells or measures
#: nothing. Open ends (> 0, < 1) stay with each key's schema.
KEY_BOUNDS = {
    "seed": (0, MAX_SEED, "seeds are 0 .. 2^32-1 in every job (derived streams add offsets)"),
    "seeds": (0, MAX_SEED, "seeds are 0 .. 2^32-1 in every job (derived streams add offsets)"),
    "calibration_seeds": (0, MAX_SEED, "seeds are 0 .. 2^32-1 in every job (derived streams add "
                                       "offsets)"),
    "collapse_tol": (0, 1e3, "a distance tolerance in data units (default 1e-2); beyond 1e3 "
                             "every sample of data of unit scale counts as collapsed"),
    "tol": (1e-14, 0.5, "RK45 rtol = atol: below 1e-14 float64 cannot meet it (scipy raises it "
                        "to 100 eps), above 0.5 a step may err by half its size"),
    "threshold": (1e-6, 1, "a ratio 1 + tau lambda of an eigenvalue; below 1e-6 no direction is "
                           "ever lost on a float64 Jacobian"),
    "thresholds": (1e-6, 1, "ratios 1 + tau lambda of an eigenvalue; below 1e-6 no direction is "
                            "ever lost on a float64 Jacobian"),
    "weight_decay": (0, 100, "decoupled/L2 decay per step is lr * weight_decay; typical values "
                             "are 1e-5 .. 1e-1, above 100 the weights vanish or flip sign"),
    "normal_std": (0, 1e3, "std off the manifold in data units; above 1e3 the normal noise "
                           "buries a manifold of unit scale a million times over in variance"),
    "batch_size": (0, 10**7, "training points per step (0: full batch); no allowed training "
                             "set holds more than 1e7 points"),
    "probe_points": (0, 10**4, "anchors per tau of the probe estimator, each a d x d Jacobian; "
                               "1e4 already costs hours at d = 64"),
    "death_timeout": (0, 30 * 86400, "seconds a worker waits for its scheduler; 30 days is "
                                     "longer than any SLURM walltime"),
}


def _leaf_items(table: dict, where: str = ""):
    for k, v in table.items():
        name = f"{where}.{k}" if where else k
        if isinstance(v, dict):
            yield from _leaf_items(v, name)
        else:
            yield name, k, v


def check_key_bounds(cfg: dict, opts: dict | None = None) -> None:
    """Every key of `KEY_BOUNDS` in the config (and the [sweep] table `opts`), wherever it sits,
    within its bounds; and a sampler's `record` (recording steps, a subset of the `steps` step
    indices) at most its `steps`."""
    tables = [("", cfg)] + ([("sweep", opts)] if opts else [])
    for where, table in tables:
        for name, key, v in _leaf_items(table, where):
            if key not in KEY_BOUNDS:
                continue
            lo, hi, why = KEY_BOUNDS[key]
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, (int, float)) and not isinstance(item, bool) \
                        and not lo <= item <= hi:
                    raise ConfigError(f"'{name}' = {item:.6g} is outside [{lo:g}, {hi:g}]: {why}")
    for name, sub in _leaf_tables(cfg):
        rec, steps = sub.get("record"), sub.get("steps")
        if isinstance(rec, int) and isinstance(steps, int) and rec > steps:
            raise ConfigError(f"'{name}record' = {rec} exceeds '{name}steps' = {steps}: the "
                              f"recordings are a subset of the steps")


def _leaf_tables(table: dict, where: str = ""):
    yield (f"{where}." if where else ""), table
    for k, v in table.items():
        if isinstance(v, dict):
            yield from _leaf_tables(v, f"{where}.{k}" if where else k)


# ----------------------------------------------------------------------------- all


def check_plan(cfg: dict, opts: dict) -> None:
    """Every check of this module that needs no cell list: run after validation, before the
    cells are enumerated (`check_cells` comes after)."""
    check_output_value(cfg)
    check_key_bounds(cfg, opts)
    check_sweep_options(opts)
    check_grid_size(cfg)
    check_devices(cfg, opts["backend"])
    check_scales(cfg)
