"""The `memphase` command line.

Errors in what the user gave (config, files, arguments) print one line `memphase: error: ...`
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError

EXAMPLES = {
    "run": "memphase run data/configs/quickstart.toml",
}


def _cmd_run(args) -> int:
    from .runner import run_job

    out = run_job(args.config, output=args.output, progress=not args.quiet, plot=not args.no_plot)
    print(f"results: {out}")
    if not args.no_plot:
        print(f"figure:  {out.with_suffix('.png')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="memphase",
        description="Statistical physics of memorization in diffusion models.",
        epilog="example: " + EXAMPLES["run"],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="run a job config in-process",
                       description="Run every cell of a job config and write one HDF5 Dataset.",
                       epilog="example: " + EXAMPLES["run"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", help="TOML job config")
    r.add_argument("--output", "-o", help="results file (default: the config's 'output')")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--no-plot", action="store_true", help="skip the figure")
    r.set_defaults(func=_cmd_run)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from analysis.results import ResultFileError

    try:
        return args.func(args)
    except (ConfigError, ResultFileError, ValueError, FileNotFoundError, PermissionError) as e:
        print(f"memphase: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memphase: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
