"""The plan of a sweep: its config validated ([sweep] options included), its cells, the output
path, the per-cell estimates and the memory check, all before anything runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..run.cost import FINISH_SECONDS, sampling_bytes, sampling_seconds
from ..run.config import ConfigError, Field, load_toml, validate
from ..run.config_bounds import memory_bytes
from ..experiments import get_experiment
from ..run.slurm_options import SLURM_SCHEMA, check_scheduler_address
from ..run.files import SweepError, _fmt_bytes


BACKENDS = ("inprocess", "local", "scheduler", "slurm")
#: memory of one Python/torch worker process beyond its cell (added to every memory estimate)
PROCESS_OVERHEAD = 300 * 2**20

SWEEP_SCHEMA = {
    "backend": Field("str", "inprocess", choices=BACKENDS,
                     help="inprocess, local (dask LocalCluster), scheduler (running Dask "
                          "scheduler) or slurm (dask-jobqueue)"),
    "workers": Field("int", 2, check=lambda v: 1 <= v <= 100000, rule="1 <= workers",
                     help="worker processes (local) or SLURM jobs (slurm)"),
    "threads": Field("int", 1, check=lambda v: v >= 0, rule="must be >= 0",
                     help="torch threads per cell (0: torch's default); the same on every "
                          "backend keeps results bit-identical"),
    "scheduler": Field("str", "", check=check_scheduler_address,
                       help="address of a running Dask scheduler, tcp://host:port"),
    "shards": Field("int", 0, check=lambda v: 0 <= v <= 100000, rule="0 (unset) or the number "
                    "of shards", help="shard count N of `--shard I` (SLURM job arrays: "
                                      "--array=0-(N-1)); 0: give N as --shard I/N or MEMPHASE_SHARDS"),
    "slurm": SLURM_SCHEMA,
}


class SweepIncomplete(RuntimeError):
    """Some cells failed; they are recorded in the journal and retried by the next run."""


# ----------------------------------------------------------------------------- the plan


@dataclass
class SweepPlan:
    """A validated sweep: experiment module, config, its text and hash, the cells, run options."""

    exp: object
    cfg: dict
    text: str
    opts: dict
    cells: list
    keys: list
    config_hash: str
    path: str = ""
    axes: dict = field(default_factory=dict)
    #: estimate_cell of each cell, computed once (`cell_estimates`): the memory check, the
    #: --yes check and the estimate line all read them (80,000 cells take ~20 s per pass)
    estimates: dict = field(default_factory=dict, repr=False)

    @property
    def job(self) -> str:
        return self.cfg["job"]


def config_hash(cfg: dict) -> str:
    """sha256 of the validated config without 'output' (where results go is not what they are)."""
    ident = {k: v for k, v in cfg.items() if k != "output"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


#: json.dumps(cell, sort_keys=True) without building an encoder per call (same text: the keys
#: of existing journals and part files stay valid)
_KEY_JSON = json.JSONEncoder(sort_keys=True).encode


def cell_key(cell: dict) -> str:
    """Stable file-name key of one cell: its parameters hashed."""
    return hashlib.sha256(_KEY_JSON(cell).encode()).hexdigest()[:16]


def load_sweep(config_path) -> SweepPlan:
    """Parse and validate a sweep/job config before anything runs. ConfigError names the file.
    Beyond each key's schema: the bounds of `memphase.simulate.run.config_bounds` (cell count, devices,
    [sweep] values, numerical scales), checked before the cells are enumerated."""
    from ..run import config_bounds

    raw, text = load_toml(config_path)
    where = str(config_path)
    if "job" not in raw:
        raise ConfigError(f"{where}: missing required key 'job'")
    raw = dict(raw)
    sweep_raw = raw.pop("sweep", {})
    try:
        exp = get_experiment(raw["job"])
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    try:
        cfg = validate(raw, exp.SCHEMA)
        opts = validate(sweep_raw, SWEEP_SCHEMA, "sweep")
        config_bounds.check_plan(cfg, opts)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ArithmeticError as e:  # a value past the float range that no bound caught
        raise ConfigError(f"{where}: a config value overflows the float range ({e})") from None
    for key in ("job_extra", "job_extra_directives"):
        opts["slurm"][key] = [s for s in opts["slurm"][key] if s]
    try:
        cells = exp.cells(cfg)
        config_bounds.check_cells(cells)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ArithmeticError as e:
        raise ConfigError(f"{where}: a config value overflows the float range ({e})") from None
    keys = [cell_key(c) for c in cells]
    if len(set(keys)) != len(keys):
        seen: set = set()
        dup = next(c for c, k in zip(cells, keys) if k in seen or seen.add(k))
        raise ConfigError(f"{where}: cell {dup} appears twice; a [grid] list repeats a value")
    axes = {k: v for k, v in cfg.get("grid", {}).items() if isinstance(v, list) and v}
    return SweepPlan(exp, cfg, text, opts, cells, keys, config_hash(cfg), where, axes)


# ----------------------------------------------------------------------------- output paths

#: suffixes of a results file (HDF5 / netCDF-4); anything else is refused before any compute, so
#: that the figure (<name>.png beside it) can never be written over the results
RESULT_SUFFIXES = (".h5", ".hdf5", ".nc")


def resolve_output(output, job: str) -> Path:
    """The results path of a run: `output` itself, or <folder>/<job>.h5 when `output` names a
    folder (ends with '/' or is an existing folder). SweepError (one line) when the suffix is not
    one of RESULT_SUFFIXES or when a folder on the way is a file. A leading '~' is the user's
    home folder (as a shell would expand it), in every place that uses the path."""
    text = os.path.expanduser(str(output))
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        p = p / f"{job}.h5"
    if p.suffix.lower() not in RESULT_SUFFIXES:
        raise SweepError(f"output {text!r} must end in {', '.join(RESULT_SUFFIXES)} (an HDF5/"
                         f"netCDF results file; the figure goes beside it as <name>.png)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SweepError(f"cannot write {p}: {parent} is a file, not a folder")
            break
    return p


# ----------------------------------------------------------------------------- estimates


def _leaves(cfg: dict) -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_leaves(v))
        else:
            out[k] = v
    return out


def estimate_cell(exp, cfg: dict, cell: dict) -> dict:
    """{'memory_bytes', 'seconds'} for one cell: the experiment's own `estimate(cfg, cell)` if it
    has one, else a sampling run of the cell's score (`memphase.simulate.run.cost.sampling_seconds`, calibrated
    on the benchmarks); memory the training set, the samples and one (B, chunk) logits block
    (PROCESS_OVERHEAD comes on top: the Python/torch process)."""
    if hasattr(exp, "estimate"):
        return dict(exp.estimate(cfg, cell))
    p = _leaves(cfg)
    p.update(cell)
    d, n = int(p.get("d", 1)), int(p.get("n_train", 1))
    b, steps, rec = int(p.get("n_samples", 1)), int(p.get("steps", 1)), int(p.get("record", 1))
    dtype = p.get("dtype", "float64")
    seconds = sampling_seconds(str(p.get("score", "empirical")), b, n, d, steps, rec, dtype,
                               str(p.get("method", "sde")))
    return {"memory_bytes": sampling_bytes(b, n, d, rec, dtype), "seconds": seconds}


def _estimate_key(c: dict, first_seed):
    """The cache key of a cell's estimate: its parameters with the seed reduced to 'the grid's
    first seed or not' (an estimate does not depend on the seed's value; the first seed may
    carry a cell's extra work, e.g. collapse's theory cell). 10^6 cells of 10^4 seeds cost
    10^2 estimates."""
    if "seed" in c and c["seed"] != first_seed:
        c = c.copy()
        c["seed"] = "*"
    key = tuple(c.items())
    try:
        hash(key)
    except TypeError:  # a list-valued parameter
        return json.dumps(c, sort_keys=True, default=str)
    return key


def cell_estimates(plan: SweepPlan, cells) -> list[dict]:
    """`estimate_cell` of each cell, cached on the plan (keyed by `_estimate_key`)."""
    out = []
    seeds = plan.cfg.get("grid", {}).get("seeds") or [None]
    cache = plan.estimates
    for c in cells:
        k = _estimate_key(c, seeds[0])
        got = cache.get(k)
        if got is None:
            got = cache[k] = estimate_cell(plan.exp, plan.cfg, c)
        out.append(got)
    return out


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.2g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def assembly_seconds(plan: SweepPlan) -> float:
    """Estimated seconds of the phases after the cells, which run once in the driver: the job's
    `assemble` (its theory; the experiment's own `estimate_assembly(cfg, cells)` if it has one,
    e.g. quickstart's finite-N collapse times) plus writing the file and drawing the figures
    (`memphase.simulate.run.cost.FINISH_SECONDS`)."""
    extra = 0.0
    if hasattr(plan.exp, "estimate_assembly"):
        extra = float(plan.exp.estimate_assembly(plan.cfg, plan.cells)["seconds"])
    return FINISH_SECONDS + extra


def estimate_lines(plan: SweepPlan, cells=None) -> list[str]:
    cells = plan.cells if cells is None else cells
    if not cells:
        return ["estimate: nothing to compute"]
    est = cell_estimates(plan, cells)
    mem = max(e["memory_bytes"] for e in est)
    sec = [e["seconds"] for e in est]
    after = assembly_seconds(plan)
    return [f"estimate per cell: memory <= {_fmt_bytes(mem)} "
            f"(+ ~{_fmt_bytes(PROCESS_OVERHEAD)} per worker process), "
            f"time {_fmt_seconds(min(sec))} .. {_fmt_seconds(max(sec))} per thread (rough); "
            f"total {_fmt_seconds(sum(sec) + after)} of compute: {len(cells)} cells "
            f"({_fmt_seconds(sum(sec))}) + {_fmt_seconds(after)} after them (assembly with the "
            f"job's theory, writing, figures)"]


#: margin of the SLURM memory request over the largest cell estimate + PROCESS_OVERHEAD (the
#: estimates are rough) and its floor
SLURM_MEM_MARGIN = 1.25
SLURM_MEM_MIN_MIB = 1024


def slurm_mem_request(plan: SweepPlan, cells=None) -> str:
    """sbatch --mem value (MiB, e.g. '1536M') for a task running `cells` one at a time: the
    largest estimate + PROCESS_OVERHEAD, times SLURM_MEM_MARGIN, at least SLURM_MEM_MIN_MIB.
    `memphase sweep CONFIG --dry-run` prints it; examples/slurm/submit_array.sh submits with it;
    the task's memory check (`check_memory`, reading the allocation) then passes."""
    cells = plan.cells if cells is None else cells
    need = max(e["memory_bytes"] for e in cell_estimates(plan, cells)) + PROCESS_OVERHEAD
    mib = -(-int(need * SLURM_MEM_MARGIN) // 2**20)
    return f"{max(mib, SLURM_MEM_MIN_MIB)}M"


# ----------------------------------------------------------------------------- confirmation

#: estimated compute (seconds, summed over the cells to run, per thread) above which `memphase
#: run` / `memphase sweep` start only with --yes: 12 h is more than ten times the largest bundled
#: config (linear_model, ~1 h), so a typo that multiplies the grid (60,000 cells, ~99 h) is
#: caught before it takes a machine for days, while real long sweeps need one flag
CONFIRM_SECONDS = 12 * 3600


#: most cells whose estimates `check_confirmed` sums (an even sample of a larger grid, scaled)
CONFIRM_SAMPLE = 2000


def check_confirmed(plan: SweepPlan, cells, yes: bool,
                    limit: float = CONFIRM_SECONDS) -> None:
    """ConfigError (before anything runs) when the cells' estimated compute exceeds `limit`
    seconds and `yes` is not given; the message prints the estimate and asks for --yes."""
    if yes or not cells:
        return
    stride = -(-len(cells) // CONFIRM_SAMPLE)  # an even sample of a large grid: fast
    sample = cells[::stride]
    total = sum(e["seconds"] for e in cell_estimates(plan, sample)) * len(cells) / len(sample)
    total += assembly_seconds(plan)
    if total > limit:
        about = "about " if stride > 1 else ""
        raise ConfigError(f"{len(cells)} cells estimated at {about}{_fmt_seconds(total)} of "
                          f"compute, more than {_fmt_seconds(limit)}: check the [grid] (`memphase "
                          f"sweep CONFIG --dry-run` prints the plan), then rerun with --yes to "
                          f"start it")


# ----------------------------------------------------------------------------- memory


def _cgroup_limit() -> int | None:
    """Bytes this process's cgroup may still use (v2 memory.max - memory.current, else v1
    memory.limit_in_bytes - usage); None without a limit. SLURM's task/cgroup plugin enforces a
    job's --mem this way."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, ctrl, rel = parts
        if hier == "0" and ctrl == "":
            files = (f"/sys/fs/cgroup{rel.rstrip('/')}/memory.max",
                     f"/sys/fs/cgroup{rel.rstrip('/')}/memory.current")
        elif "memory" in ctrl.split(","):
            files = (f"/sys/fs/cgroup/memory{rel.rstrip('/')}/memory.limit_in_bytes",
                     f"/sys/fs/cgroup/memory{rel.rstrip('/')}/memory.usage_in_bytes")
        else:
            continue
        try:
            limit = Path(files[0]).read_text().strip()
            used = Path(files[1]).read_text().strip()
        except OSError:
            continue
        if not limit.isdigit() or int(limit) >= 2**60:  # 'max', or v1's "unlimited" value
            continue
        return max(int(limit) - (int(used) if used.isdigit() else 0), 0)
    return None


def slurm_allocation(env=None) -> int | None:
    """Bytes of memory the SLURM job of this process was allocated (sbatch --mem: MB in
    SLURM_MEM_PER_NODE; --mem-per-cpu: SLURM_MEM_PER_CPU MB times SLURM_CPUS_ON_NODE, else
    SLURM_CPUS_PER_TASK, else 1); None outside SLURM or without a memory allocation (0 means
    'all of the node')."""
    env = os.environ if env is None else env
    node = str(env.get("SLURM_MEM_PER_NODE", "")).strip()
    if node.isdigit() and int(node) > 0:
        return int(node) * 2**20
    cpu = str(env.get("SLURM_MEM_PER_CPU", "")).strip()
    if cpu.isdigit() and int(cpu) > 0:
        for k in ("SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK"):
            n = str(env.get(k, "")).strip()
            if n.isdigit() and int(n) > 0:
                return int(cpu) * int(n) * 2**20
        return int(cpu) * 2**20
    return None


def available_memory(env=None) -> int:
    """Bytes of memory available to new processes here: the least of this machine's
    MemAvailable (else its total), the SLURM job's allocation (`slurm_allocation`) and the
    cgroup's remaining limit (`_cgroup_limit`)."""
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        free = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    limits = [free, slurm_allocation(env), _cgroup_limit()]
    return min(x for x in limits if x is not None)


def _parse_bytes(text: str) -> int:
    """[sweep.slurm] memory in bytes, read as dask reads it (`config_bounds.memory_bytes`:
    '8GB' = 8e9, '8GiB' = 8 * 2**30)."""
    try:
        return memory_bytes(text)
    except ValueError:
        raise ConfigError(f"[sweep.slurm] memory = {text!r}: expected e.g. '8GB' or "
                          f"'512MB'") from None


def check_memory(plan: SweepPlan, cells, backend: str, workers: int = 1, limit: int | None = None):
    """Refuse, before anything runs, a cell whose estimated memory cannot fit: in this machine's
    available memory (shared by `workers` local processes), or in the SLURM job's [sweep.slurm]
    memory. The message names the cell and what to change."""
    if not cells:
        return
    est = [(e["memory_bytes"], c) for e, c in zip(cell_estimates(plan, cells), cells)]
    need, cell = max(est, key=lambda e: e[0])
    if limit is None:
        if backend == "slurm":
            if not plan.opts["slurm"]["memory"]:
                return  # sized from the estimate in make_slurm_cluster
            sl = plan.opts["slurm"]
            limit = _parse_bytes(sl["memory"]) // max(sl["processes"] or sl["cores"], 1)
            where = "[sweep.slurm] memory per worker"
        elif backend == "scheduler":
            return  # remote workers: their memory is not known here
        else:
            share = workers if backend == "local" else 1
            limit = available_memory() // share
            alloc = slurm_allocation()
            where = (f"available memory {'in this SLURM job (--mem) ' if alloc else ''}on this "
                     f"machine ({share} worker process{'es' * (share > 1)})")
    else:
        where = "the memory limit"
    if need + PROCESS_OVERHEAD > limit:
        raise ConfigError(
            f"cell {cell} needs about {_fmt_bytes(need + PROCESS_OVERHEAD)} but {where} is "
            f"{_fmt_bytes(limit)}; reduce n_samples / n_train / d for that cell, use "
            f"dtype = \"float32\", use fewer workers, or run where more memory is available "
            f"(SLURM: raise sbatch --mem, or [sweep.slurm] memory)")
