"""The [sweep.slurm] table: the dask-jobqueue SLURMCluster keywords a sweep may set, validated
before anything is submitted.

dask-jobqueue writes these values verbatim into the job script it submits with `sbatch` (the
`#SBATCH` header and the worker command line). A newline there would start a new shell command
and a shell metacharacter would be interpreted, so every string is limited to a safe character
set (letters, digits, space and `_.,:=@%+/-`) and refused otherwise with a one-line ConfigError
at load time, before any job exists. The one exception is `job_script_prologue`: its items are
shell commands by design (e.g. `source /path/.venv/bin/activate`) and run as written in each
worker job; each must be one line (no newline or other control character).

Documented keywords (dask-jobqueue SLURMCluster / Job): queue, account, walltime, cores,
memory, processes, job_cpu, job_mem, job_name, job_extra_directives, job_directives_skip,
job_script_prologue, interface, local_directory, log_directory, python, shebang,
worker_extra_args, death_timeout, nanny, protocol. `job_extra` is kept as an alias of
`job_extra_directives`.
"""

from __future__ import annotations

import re

from .config import Field

__all__ = ["SLURM_SCHEMA", "SLURM_KEYWORDS", "check_safe", "check_prologue_line",
           "cluster_kwargs"]

#: characters allowed in any [sweep.slurm] string that goes into the job script
_SAFE = re.compile(r"[A-Za-z0-9_.,:=@%+/ \-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _describe(ch: str) -> str:
    return {"\n": "a newline", "\r": "a carriage return", "\t": "a tab"}.get(ch, repr(ch))


def check_safe(v: str) -> bool:
    """ValueError naming the first character that could be injected into the job script."""
    if not _SAFE.fullmatch(v):
        bad = next(c for c in v if not _SAFE.fullmatch(c))
        raise ValueError(f"contains {_describe(bad)}, which would be injected into the "
                         f"SLURM job script; only letters, digits, space and _.,:=@%+/- are "
                         f"allowed")
    return True


def check_prologue_line(v: str) -> bool:
    """A prologue item is one shell line: ValueError on a newline or other control character."""
    m = _CONTROL.search(v)
    if m:
        raise ValueError(f"contains {_describe(m[0])}; each job_script_prologue item "
                         f"must be one shell line (write one item per command)")
    return True


def _s(default="", help=""):
    return Field("str", default, check=check_safe, help=help)


def _list(help, check=check_safe):
    return Field("list[str]", [], check=check, allow_empty=True, unique=False, help=help)


SLURM_SCHEMA = {
    "queue": _s(help="partition (sbatch -p)"),
    "account": _s(help="account (sbatch -A)"),
    "walltime": _s("01:00:00", help="per SLURM job, HH:MM:SS"),
    "cores": Field("int", 1, check=lambda v: v >= 1, rule="must be >= 1",
                   help="cores per SLURM job (one worker process each unless `processes`)"),
    "processes": Field("int", 0, check=lambda v: v >= 0, rule="must be >= 0",
                       help="worker processes per job (0: one per core)"),
    "memory": _s(help="per SLURM job, e.g. '8GB' (default: from the estimate)"),
    "job_cpu": Field("int", 0, check=lambda v: v >= 0, rule="must be >= 0",
                     help="sbatch --cpus-per-task (0: cores)"),
    "job_mem": _s(help="sbatch --mem (default: memory)"),
    "job_name": _s(help="sbatch -J (default: dask-worker)"),
    "job_extra_directives": _list("extra #SBATCH directives, e.g. ['--constraint=cpu']"),
    "job_extra": _list("alias of job_extra_directives"),
    "job_directives_skip": _list("#SBATCH directives dask-jobqueue writes that to leave out"),
    "job_script_prologue": _list("shell lines run before the worker starts, e.g. "
                                 "['source /path/.venv/bin/activate'] (shell code, run as "
                                 "written; one line each)", check=check_prologue_line),
    "interface": _s(help="network interface of the workers, e.g. 'ib0' (default: any)"),
    "local_directory": _s(help="worker scratch directory on the compute node"),
    "log_directory": _s(help="directory of the worker jobs' SLURM logs"),
    "python": _s(help="python of the worker jobs (default: the driver's sys.executable)"),
    "shebang": _s(help="first line of the job script (default: #!/usr/bin/env bash)"),
    "worker_extra_args": _list("extra arguments of the dask worker command"),
    "death_timeout": Field("float", 0.0, check=lambda v: v >= 0, rule="must be >= 0",
                           help="seconds a worker waits for an unreachable scheduler (0: "
                                "dask's default)"),
    "nanny": Field("bool", True, help="workers run under a nanny process"),
    "protocol": _s(help="comm protocol, e.g. 'tcp://' (default: dask's)"),
}

#: every key of [sweep.slurm]
SLURM_KEYWORDS = tuple(SLURM_SCHEMA)


def cluster_kwargs(s: dict, default_memory: str) -> dict:
    """SLURMCluster keywords from a validated [sweep.slurm] table (unset keys left out, so that
    dask-jobqueue's defaults and the user's dask config apply)."""
    kw = dict(cores=s["cores"], processes=s["processes"] or s["cores"],
              memory=s["memory"] or default_memory, walltime=s["walltime"],
              job_extra_directives=list(s["job_extra_directives"]) + list(s["job_extra"]))
    for key in ("queue", "account", "job_mem", "job_name", "interface", "local_directory",
                "log_directory", "python", "shebang", "protocol"):
        if s[key]:
            kw[key] = s[key]
    if s["job_cpu"]:
        kw["job_cpu"] = s["job_cpu"]
    if s["death_timeout"]:
        kw["death_timeout"] = s["death_timeout"]
    for key in ("job_directives_skip", "job_script_prologue", "worker_extra_args"):
        if s[key]:
            kw[key] = list(s[key])
    if not s["nanny"]:
        kw["nanny"] = False
    return kw
