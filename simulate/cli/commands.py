"""The `memphase` command line: run | sweep | merge | info | plot | validate.

Errors in what the user gave (config, files, arguments, a held lock, a changed config) print one
line `memphase: error: ...` and exit with status 2, never a traceback. A sweep whose cells failed
exits with status 1 after recording them; rerunning retries them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import signal
import sys

EXAMPLES = {
    "run": "memphase run quickstart             # a bundled config by name, or a path to a TOML file",
    "sweep": ("memphase sweep quickstart                      # in-process (a name or a TOML path)\n"
              "  memphase sweep quickstart --backend local --workers 4\n"
              "  memphase sweep my_study.toml --scheduler tcp://host:8786\n"
              "  memphase sweep my_study.toml --shard $SLURM_ARRAY_TASK_ID/8"),
    "merge": "memphase merge my_study.toml   # after all 8 shards finished",
    "validate": "memphase validate --quick      # theory vs measurement, about 1 minute",
    "info": ("memphase info quickstart     # plan, estimates, progress\n"
             "  memphase info data/results/quickstart.h5   # written by `memphase run quickstart`"),
    "plot": ("memphase plot data/results/collapse.h5    # after `memphase run collapse`: every figure\n"
             "  memphase plot data/results/collapse.h5 --var memorization_ratio --x n_train --y d\n"
             "  memphase plot data/results/collapse.h5 --var same_as_final --x n_train --y time "
             "--sel d=16 --format png --out figures/"),
}


def _print_outputs(out, figures):
    print(f"results: {out}")
    for p in figures:
        print(f"figure:  {p}")


def _cmd_run(args) -> int:
    from ..sweep import run_sweep

    figures: list = []
    out = run_sweep(args.config, output=args.output, backend="inprocess", new=args.new,
                    progress=not args.quiet, plot=not args.no_plot, figures=figures,
                    allow_code_change=args.allow_code_change, yes=args.yes)
    _print_outputs(out, figures)
    return 0


def _cmd_sweep(args) -> int:
    from ..sweep import describe, estimate_lines, load_sweep, run_sweep

    if args.dry_run:
        print("\n".join(describe(args.config) if args.config.endswith(".toml")
                        else estimate_lines(load_sweep(args.config))))
        return 0
    figures: list = []
    out = run_sweep(args.config, output=args.output, backend=args.backend, workers=args.workers,
                    scheduler=args.scheduler, shard=args.shard, new=args.new,
                    progress=not args.quiet, plot=not (args.no_plot or args.shard),
                    threads=args.threads, figures=figures,
                    allow_code_change=args.allow_code_change, yes=args.yes)
    if args.shard:
        print(f"part:    {out}")
    else:
        _print_outputs(out, figures)
    return 0


def _cmd_merge(args) -> int:
    from ..sweep import merge_parts

    figures: list = []
    out = merge_parts(args.config, output=args.output, progress=not args.quiet,
                      plot=not args.no_plot, figures=figures,
                      allow_code_change=args.allow_code_change)
    _print_outputs(out, figures)
    return 0


def _cmd_info(args) -> int:
    from ..run.bundled import resolve_config
    from ..sweep import describe

    print("\n".join(describe(resolve_config(args.path))))
    return 0


def _cmd_shipped(args) -> int:
    """`memphase docs [PAGE]` / `memphase examples [NAME]`: the path of one shipped file, or the
    folder and every file in it (a pip install has them too: they are package data)."""
    from ..run.bundled import find_shipped, shipped_files, shipped_folder

    if args.name:
        print(find_shipped(args.kind, args.name))
        return 0
    print(f"{args.kind}: {shipped_folder(args.kind)}")
    for name in shipped_files(args.kind):
        print(f"  {name}")
    return 0


def _cmd_configs(args) -> int:
    from ..run.bundled import bundled_configs, config_summary

    configs = bundled_configs()
    if not configs:
        raise ValueError("no bundled configs found (is memphase installed with its package data?)")
    width = max(map(len, configs))
    for name, path in configs.items():
        title, runtime = config_summary(path)
        print(f"{name:<{width}}  {title}" + (f" ({runtime})" if runtime else ""))
    if args.paths:
        for name, path in configs.items():
            print(f"{name}: {path}")
    return 0


def _cmd_plot(args) -> int:
    from memphase.analysis.plots.sweep import plot_results

    if args.out:  # a file on the way would fail deep inside matplotlib
        out = Path(args.out)
        bad = next((q for q in (out, *out.parents) if q.exists() and not q.is_dir()), None)
        if bad is not None:
            raise ValueError(f"--out {args.out}: {bad} is a file, not a folder")
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    for p in plot_results(args.path, var=args.var, x=args.x, y=args.y, out=args.out,
                          formats=formats, selection=args.sel):
        print(f"figure:  {p}")
    return 0


def _free_path(path: Path) -> Path:
    """`path`, or path-1, path-2, ... if it exists: finished results are never overwritten."""
    k, out = 0, path
    while out.exists():
        k += 1
        out = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return out


def _cmd_validate(args) -> int:
    from .validate import validate_main

    from ..sweep import resolve_output

    default = Path("data/results") / ("validate-quick.h5" if args.quick else "validate.h5")
    out = resolve_output(args.output, "validate") if args.output else _free_path(default)
    if out.exists():
        from ..run.config import ConfigError

        raise ConfigError(f"{out} exists; choose another --output (results are never overwritten)")
    return validate_main(quick=args.quick, output=out, seed=args.seed, plot=not args.no_plot)


def build_parser() -> argparse.ArgumentParser:
    from ..sweep import BACKENDS

    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="memphase", formatter_class=raw,
        description="Statistical physics of memorization in diffusion models.",
        epilog="examples:\n  " + EXAMPLES["run"] + "\n  " + EXAMPLES["sweep"],
    )
    p.add_argument("--version", action="version", version=f"memphase {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, what="results file .h5/.hdf5/.nc, or a folder/ for <folder>/<job>.h5 "
                        "(default: the config's 'output')", new=True):
        sp.add_argument("config", help="TOML job/sweep config: a path, or the name of a bundled "
                                       "config (`memphase configs` lists them)")
        sp.add_argument("--output", "-o", help=what)
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        sp.add_argument("--no-plot", action="store_true", help="skip the figure")
        sp.add_argument("--allow-code-change", action="store_true",
                        help="keep cells computed by another memphase version, commit or "
                             "memphase source (refused by default; the result's "
                             "code_versions attribute lists every version)")
        if new:  # run and sweep: they compute
            sp.add_argument("--yes", "-y", action="store_true",
                            help="start even when the estimated compute exceeds 12 h (without "
                                 "it such a run prints the estimate and exits with status 2)")
            sp.add_argument("--new", action="store_true",
                            help="discard a journal left by a different config or code instead "
                                 "of refusing")

    r = sub.add_parser("run", help="run a job config in-process",
                       description="Run every cell of a job config in this process and write one "
                                   "HDF5 Dataset (an in-process sweep: interrupted runs resume).",
                       epilog="example: " + EXAMPLES["run"], formatter_class=raw)
    common(r)
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser(
        "sweep", help="run a sweep (axes x params x seeds) on a backend, resumable",
        formatter_class=raw,
        description="Run every cell of a sweep config; each finished cell is checkpointed in "
                    "<output>.cells/, so rerunning after a crash computes only the missing cells. "
                    "The config's optional [sweep] table sets backend, workers, threads, slurm.",
        epilog="examples:\n  " + EXAMPLES["sweep"])
    common(s)
    s.add_argument("--backend", choices=BACKENDS,
                   help="inprocess | local (dask LocalCluster) | scheduler | slurm (dask-jobqueue)")
    s.add_argument("--workers", type=int, help="local worker processes / SLURM jobs")
    s.add_argument("--threads", type=int, help="torch threads per cell (0: torch default)")
    s.add_argument("--scheduler", metavar="ADDR", help="use a running Dask scheduler tcp://host:port")
    s.add_argument("--shard", metavar="I/N", help="run only cells i with i %% N == I and write "
                   "<stem>.part-I-of-N.h5 (SLURM job arrays); then `memphase merge`. `--shard I` "
                   "takes N from [sweep] shards or MEMPHASE_SHARDS")
    s.add_argument("--dry-run", action="store_true", help="validate and print the plan only")
    s.set_defaults(func=_cmd_sweep)

    m = sub.add_parser("merge", help="assemble shard part files into the final Dataset",
                       formatter_class=raw,
                       description="Read <stem>.part-I-of-N.h5 for every I, check they come "
                                   "from this config, write the final file atomically.",
                       epilog="example: " + EXAMPLES["merge"])
    common(m, new=False)
    m.set_defaults(func=_cmd_merge)

    c = sub.add_parser("configs", help="list the canonical configs that ship with memphase",
                       description="Every bundled config by name, with its header's title and "
                                   "runtime; `memphase run NAME` runs one.")
    c.add_argument("--paths", action="store_true", help="also print where each file lies")
    c.set_defaults(func=_cmd_configs)

    for kind, what, example in (("docs", "documentation page", "theory, conformance/h24, h24"),
                                ("examples", "example file", "slurm/submit_array.sh")):
        e = sub.add_parser(kind, help=f"print where a shipped {what} lies (or list them all)",
                           description=f"The {kind} ship with memphase (also in a pip install): "
                                       f"without NAME, the folder and every {what}; with NAME "
                                       f"(e.g. {example}), that file's path.")
        e.add_argument("name", nargs="?", help=f"a {what} (e.g. {example})")
        e.set_defaults(func=_cmd_shipped, kind=kind)

    i = sub.add_parser("info", help="describe a config (plan, estimate, progress) or a results file",
                       formatter_class=raw, epilog="examples:\n  " + EXAMPLES["info"])
    i.add_argument("path", help="TOML config, results .h5 or part file")
    i.set_defaults(func=_cmd_info)

    pl = sub.add_parser(
        "plot", help="figures of a results file: phase diagrams, per-block and memorization curves",
        formatter_class=raw,
        description="Draw a results file written by the suite: heatmaps of each variable over two "
                    "axes (seed averaged, score one panel each, other dims at --sel or their last "
                    "value) with the theory overlaid (<var>_theory contours, boundary lines), "
                    "per-block curves, memorization-ratio curves vs n_train / alpha. Conventions: "
                    "`python -m pydoc memphase.analysis.plots.sweep`.",
        epilog="examples:\n  " + EXAMPLES["plot"])
    pl.add_argument("path", metavar="FILE", help="results .h5 (memphase run/sweep/merge output)")
    pl.add_argument("--var", help="one variable (default: every plottable variable)")
    pl.add_argument("--x", metavar="AXIS", help="x axis (a dim of the variable)")
    pl.add_argument("--y", metavar="AXIS", help="y axis of the heatmap")
    pl.add_argument("--sel", metavar="DIM=VALUE", action="append",
                    help="value of a dim that is not plotted (repeatable; default: last value)")
    pl.add_argument("--out", metavar="DIR", help="output folder (default: beside FILE)")
    pl.add_argument("--format", default="png,pdf", help="comma-separated: png,pdf,svg "
                    "(default png,pdf)")
    pl.set_defaults(func=_cmd_plot)

    v = sub.add_parser("validate", help="published targets and theory vs measured critical times",
                       formatter_class=raw, epilog="example: " + EXAMPLES["validate"],
                       description="Print `quantity | setting | theory | measured | 95% CI | "
                                   "rel. error | pass`, write it as HDF5 plus a figure; exit 1 "
                                   "when a gated check is outside its tolerance.")
    v.add_argument("--quick", action="store_true", help="small settings (about a minute on 2 cores)")
    v.add_argument("--output", "-o", help="results file (default data/results/validate[-quick].h5)")
    v.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    v.add_argument("--no-plot", action="store_true", help="skip the figure")
    v.set_defaults(func=_cmd_validate)
    return p


def _version() -> str:
    from ..run.store import package_version

    return package_version()


from ..base.errors import Terminated  # noqa: E402  (library code raises it too: defined one layer down)


def _terminate(signum, frame):
    raise Terminated


def _one_line(e: BaseException) -> str:
    return "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or repr(e)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from memphase.analysis.results import ResultFileError

    from ..run.config import ConfigError
    from ..sweep import SweepIncomplete

    try:
        if getattr(args, "config", None) is not None:
            from ..run.bundled import resolve_config

            args.config = resolve_config(args.config)
        return args.func(args)
    except SweepIncomplete as e:
        print(f"memphase: {e}", file=sys.stderr)
        return 1
    except (ConfigError, ResultFileError, ValueError) as e:
        print(f"memphase: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `memphase configs | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # the file system said no: missing, permission, not a folder, disk full
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        what = e.strerror or _one_line(e)
        print(f"memphase: error: {what}{where}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """Entry point: exit status 0 done, 1 cells failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM.
    An interrupt at any moment (imports included) prints one line."""
    try:
        old_term = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        old_term = None
    try:
        return _main(argv)
    except Terminated:
        print("memphase: terminated (SIGTERM); finished cells are kept, rerun the same command "
              "to resume", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("memphase: interrupted; finished cells are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


if __name__ == "__main__":
    sys.exit(main())
