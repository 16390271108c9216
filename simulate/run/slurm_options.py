"""The [sweep.slurm] table: the dask-jobqueue SLURMCluster keywords a sweep may set, validated
before anything is submitted.

dask-jobqueue writes these values verbatim into the job script it submits with `sbatch`: into
`#SBATCH` header lines, which sbatch splits at spaces into several options, and into the worker
command line, which the shell runs. So every value is validated by what it is, as one token: a
name (queue, account, job_name, interface), a duration (walltime), a size (memory, job_mem), a
path (python, local_directory, log_directory), a shebang, a protocol, or a list of tokens (one
sbatch directive or one worker argument per item). A space, a newline, a quote or a shell
metacharacter where the kind has none is refused with a one-line ConfigError at load time,
before any job exists. The one exception is `job_script_prologue`: its items are shell commands
by design (e.g. `source /path/.venv/bin/activate`) and run as written in each worker job; each
must be one line. A config with a prologue is code: run only configs you trust.

Documented keywords (dask-jobqueue SLURMCluster / Job): queue, account, walltime, cores,
memory, processes, job_cpu, job_mem, job_name, job_extra_directives, job_directives_skip,
job_script_prologue, interface, local_directory, log_directory, python, shebang,
worker_extra_args, death_timeout, nanny, protocol. `job_extra` is kept as an alias of
`job_extra_directives`.
"""

from __future__ import annotations

import re

from .config import Field
from .config_bounds import check_walltime, memory_bytes

__all__ = ["SLURM_SCHEMA", "SLURM_KEYWORDS", "check_safe", "check_prologue_line",
           "check_name", "check_duration", "check_size", "check_slurm_size", "check_path",
           "check_shebang", "check_protocol", "check_directive", "check_token",
           "check_scheduler_address", "cluster_kwargs"]

#: characters allowed in a token that reaches the worker's shell command line
_SAFE = re.compile(r"[A-Za-z0-9_.,:=@%+/\-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _describe(ch: str) -> str:
    return {"\n": "a newline", "\r": "a carriage return", "\t": "a tab",
            " ": "a space"}.get(ch, repr(ch))


def check_safe(v: str) -> bool:
    """ValueError naming the first character that could be injected into the job script."""
    if not _SAFE.fullmatch(v):
        bad = next(c for c in v if not _SAFE.fullmatch(c))
        raise ValueError(f"contains {_describe(bad)}, which would be injected into the "
                         f"SLURM job script; only letters, digits and _.,:=@%+/- are allowed")
    return True


def _one_token(v: str, what: str, example: str, pattern: str):
    """ValueError unless `v` is one token matching `pattern` (whitespace and control characters
    named first: sbatch would split the value into several options)."""
    m = re.search(r"[\s\x00-\x1f\x7f]", v)
    if m:
        raise ValueError(f"contains {_describe(m[0])}: must be {what} (one token, e.g. "
                         f"{example}); sbatch would read the rest as other options")
    if not re.fullmatch(pattern, v):
        raise ValueError(f"must be {what}, e.g. {example}")
    return True


def check_name(v: str) -> bool:
    """A SLURM name (partition list, account, job name, network interface): letters, digits
    and _.-+@%: , not starting with '-'."""
    return _one_token(v, "a name", "'short'", r"[A-Za-z0-9_.+@%][A-Za-z0-9_.+@%:,\-]*")


def check_duration(v: str) -> bool:
    """A SLURM time limit: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S (`config_bounds.check_walltime`)."""
    _one_token(v, "a duration", "'02:00:00'", r".+")
    check_walltime(v)
    return True


def check_size(v: str) -> bool:
    """A memory size as dask reads it (`config_bounds.memory_bytes`): 8GB = 8e9 bytes,
    8GiB = 8 * 2**30; a space between number and unit is allowed (dask-jobqueue converts the
    size itself, it never reaches the job script as written)."""
    m = re.search(r"[\x00-\x1f\x7f]", v)
    if m:
        raise ValueError(f"contains {_describe(m[0])}: must be a size, e.g. '8GB' or '8GiB'")
    memory_bytes(v)
    return True


def check_slurm_size(v: str) -> bool:
    """A size as sbatch --mem reads it: an integer and K, M, G or T (binary; default M)."""
    return _one_token(v, "a SLURM size (an integer and K, M, G or T)", "'9G'",
                      r"\d+[KMGTkmgt]?")


def check_path(v: str) -> bool:
    """A file or folder path of the worker jobs, one token of safe characters, not an option."""
    check_safe(v)
    return _one_token(v, "a path", "'/scratch/me'", r"[^-].*")


def check_shebang(v: str) -> bool:
    """'#!' then an absolute interpreter path and at most one argument, e.g. '#!/bin/bash -l'."""
    if _CONTROL.search(v):
        raise ValueError(f"contains {_describe(_CONTROL.search(v)[0])}: must be one line, "
                         f"e.g. '#!/usr/bin/env bash'")
    if not re.fullmatch(r"#!\s*/[A-Za-z0-9_.+/\-]+(?: [A-Za-z0-9_.+/=\-]+)?", v):
        raise ValueError("must be '#!' and an absolute interpreter path with at most one "
                         "argument, e.g. '#!/usr/bin/env bash' or '#!/bin/bash -l'")
    return True


def check_protocol(v: str) -> bool:
    """A Dask comm protocol: 'tcp://', 'tls://', 'ucx://', 'inproc://'..."""
    return _one_token(v, "a protocol", "'tcp://'", r"[a-z][a-z0-9+.\-]*://")


def check_directive(v: str) -> bool:
    """One sbatch option (one #SBATCH line): '-X' or '--name[=value]', one token without quotes
    or backslashes; brackets allowed (node lists, e.g. --exclude=node[01-04])."""
    return _one_token(v, "one sbatch option", "'--constraint=cpu' or '--exclude=n[01-04]'",
                      r"--?[A-Za-z][A-Za-z0-9\-]*(?:=[A-Za-z0-9_.,:=@%+/\[\]\-]+)?")


def check_token(v: str) -> bool:
    """One argument of the worker command line: one token of safe characters."""
    check_safe(v)
    return _one_token(v, "one token", "'--lifetime'", r".+")


def check_skip(v: str) -> bool:
    """A text that marks #SBATCH lines to leave out, e.g. '--mem': one token."""
    return _one_token(v, "one token", "'--mem'", r"[A-Za-z0-9_.,:=@%+/\-]+")


def check_scheduler_address(v: str) -> bool:
    """`[sweep] scheduler`: a Dask scheduler address, [protocol://]host:port, host a name or an
    IP address ([...] for IPv6), then an optional path (inproc://host/pid/n); '' for none."""
    if v == "":
        return True
    return _one_token(v, "a scheduler address", "'tcp://node12:8786'",
                      r"(?:[a-z][a-z0-9+.\-]*://)?(?:[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\])"
                      r"(?::\d{1,5})?(?:/[A-Za-z0-9_.\-]+)*")


def check_prologue_line(v: str) -> bool:
    """A prologue item is one shell line: ValueError on a newline or other control character."""
    m = _CONTROL.search(v)
    if m:
        raise ValueError(f"contains {_describe(m[0])}; each job_script_prologue item "
                         f"must be one shell line (write one item per command)")
    return True


def _s(default="", help="", check=check_name):
    return Field("str", default, check=lambda v: v == "" or check(v), help=help)


def _list(help, check=check_token):
    return Field("list[str]", [], check=check, allow_empty=True, unique=False, help=help)


SLURM_SCHEMA = {
    "queue": _s(check=check_name, help="partition (sbatch -p)"),
    "account": _s(help="account (sbatch -A)"),
    "walltime": _s("01:00:00", check=check_duration, help="per SLURM job, HH:MM:SS"),
    "cores": Field("int", 1, check=lambda v: v >= 1, rule="must be >= 1",
                   help="cores per SLURM job (one worker process each unless `processes`)"),
    "processes": Field("int", 0, check=lambda v: v >= 0, rule="must be >= 0",
                       help="worker processes per job (0: one per core)"),
    "memory": _s(check=check_size, help="per SLURM job, e.g. '8GB' (default: from the estimate)"),
    "job_cpu": Field("int", 0, check=lambda v: v >= 0, rule="must be >= 0",
                     help="sbatch --cpus-per-task (0: cores)"),
    "job_mem": _s(check=check_slurm_size, help="sbatch --mem (default: memory)"),
    "job_name": _s(help="sbatch -J (default: dask-worker)"),
    "job_extra_directives": _list("extra #SBATCH directives, one option each, e.g. "
                                  "['--constraint=cpu']", check=check_directive),
    "job_extra": _list("alias of job_extra_directives", check=check_directive),
    "job_directives_skip": _list("#SBATCH directives dask-jobqueue writes that to leave out",
                                 check=check_skip),
    "job_script_prologue": _list("shell lines run before the worker starts, e.g. "
                                 "['source /path/.venv/bin/activate'] (shell code, run as "
                                 "written; one line each)", check=check_prologue_line),
    "interface": _s(help="network interface of the workers, e.g. 'ib0' (default: any)"),
    "local_directory": _s(check=check_path, help="worker scratch directory on the compute node"),
    "log_directory": _s(check=check_path, help="directory of the worker jobs' SLURM logs"),
    "python": _s(check=check_path,
                 help="python of the worker jobs (default: the driver's sys.executable)"),
    "shebang": _s(check=check_shebang,
                  help="first line of the job script (default: #!/usr/bin/env bash)"),
    "worker_extra_args": _list("extra arguments of the dask worker command, one token each"),
    "death_timeout": Field("float", 0.0, check=lambda v: v >= 0, rule="must be >= 0",
                           help="seconds a worker waits for an unreachable scheduler (0: "
                                "dask's default)"),
    "nanny": Field("bool", True, help="workers run under a nanny process"),
    "protocol": _s(check=check_protocol, help="comm protocol, e.g. 'tcp://' (default: dask's)"),
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
