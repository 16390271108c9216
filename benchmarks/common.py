"""Timing, memory and reporting helpers shared by the benchmarks.

What is measured
- Time: wall-clock seconds of one call, the BEST of `repeat` calls after `warmup` untimed calls
  (`perf_counter`, CUDA synchronized). Competing implementations are timed INTERLEAVED
  (round-robin, one call of each per round) in the same process, so that load from other jobs on
  the machine hits them alike; the ratios are the robust numbers, the absolute times are not.
- Memory: the CPU torch allocator exposes no peak counter, so the extra memory of one call is the
  peak resident set during that call minus the resident set just before it (Linux VmHWM, reset
  through /proc/self/clear_refs; `ru_maxrss` elsewhere), measured in a FRESH subprocess per
  configuration after the inputs are allocated and touched, with glibc forced to mmap large
  buffers. It includes the call's output and allocator/page granularity (well under 1 MiB at
  these sizes); the analytic size of the kernel's largest temporary is reported beside it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import argparse
import time

import numpy as np
import torch

__all__ = ["add_common_args", "benchmark_device", "best_times", "configure", "fit_exponent",
           "machine_info", "markdown_table", "now", "peak_rss_delta", "setup", "sync"]


_CLOCK = {"fn": time.perf_counter, "name": "wall"}


def add_common_args(ap) -> None:
    """--quick, --device, --repeat, --threads, --clock: the flags every benchmark takes."""
    ap.add_argument("--quick", action="store_true", help="~30 s smoke run on small sizes")
    ap.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto (CUDA if present)")
    ap.add_argument("--repeat", type=int, default=None, help="timed calls per implementation")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time (robust to other jobs on a "
                         "shared machine; use with --threads 1, CPU only)")


def configure(args) -> str:
    """Apply --threads and --clock; returns a one-line description for the report."""
    if args.threads:
        torch.set_num_threads(args.threads)
    _CLOCK["fn"] = time.process_time if args.clock == "cpu" else time.perf_counter
    _CLOCK["name"] = args.clock
    return f"clock: {args.clock}, torch threads: {torch.get_num_threads()}"


def benchmark_device(args, title: str):
    """The torch device of --device ('cpu', 'cuda[:N]', 'auto'), or None after printing a
    'skipped' section when CUDA was asked for and is not available (the scripts then exit 0)."""
    from memphase.simulate.base.device import resolve_device

    try:
        return resolve_device(args.device)
    except ValueError as e:
        print(f"## {title}\n\nSkipped: {e}.\n")
        return None


def setup(doc: str, title: str, argv=None, extra_args=None, repeat=(2, 3)):
    """The start of every benchmark's main(): parse the common flags (plus `extra_args(ap)`),
    apply --threads/--clock, resolve the device and the repeat count (repeat = (quick, full)
    unless --repeat). Returns (args, timing line, device); exits 0 after printing a 'Skipped'
    section when the device is not available."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_common_args(ap)
    if extra_args is not None:
        extra_args(ap)
    args = ap.parse_args(argv)
    timing = configure(args)
    device = benchmark_device(args, title)
    if device is None:
        raise SystemExit(0)        # 'Skipped' printed; run_all.sh goes on with the next script
    args.repeat = args.repeat or (repeat[0] if args.quick else repeat[1])
    return args, timing, device


def now() -> float:
    """The configured clock (--clock wall | cpu), in seconds."""
    return _CLOCK["fn"]()


def sync(device) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def best_times(fns: dict, repeat: int = 3, warmup: int = 1, device="cpu") -> dict:
    """{name: best wall time in s} of the callables in `fns`, timed round-robin in this process."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    best = {k: math.inf for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            clock = _CLOCK["fn"]
            t0 = clock()
            fn()
            sync(device)
            best[k] = min(best[k], clock() - t0)
    return best


def fit_exponent(xs, ts) -> float:
    """Slope of log t against log x (least squares): t ~ x^slope."""
    xs, ts = np.asarray(xs, float), np.asarray(ts, float)
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def peak_rss_delta(script: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Run `script` (python source) in a fresh interpreter and return the JSON dict it prints on
    its last line. The script brackets the call with `mark = rss_mark()` ... `rss_peak_since(mark)`.

    On Linux the peak (VmHWM) is reset at the mark through /proc/self/clear_refs, so the result is
    the peak resident set during the call minus the resident set before it; elsewhere it falls
    back to ru_maxrss (which hides a call whose peak stays below an earlier one). glibc is told to
    mmap every allocation above 64 KiB so that freed buffers are not silently reused."""
    prelude = (
        "import resource, json, sys, os\n"
        "def _status(key):\n"
        "    with open('/proc/self/status') as f:\n"
        "        for line in f:\n"
        "            if line.startswith(key):\n"
        "                return int(line.split()[1]) * 1024\n"
        "def rss_mark():\n"
        "    try:\n"
        "        with open('/proc/self/clear_refs', 'w') as f:\n"
        "            f.write('5')\n"
        "        return ('hwm', _status('VmRSS:'))\n"
        "    except OSError:\n"
        "        return ('ru', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
        "def rss_peak_since(mark):\n"
        "    kind, base = mark\n"
        "    if kind == 'hwm':\n"
        "        return _status('VmHWM:') - base\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base\n")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", **(env or {})}
    out = subprocess.run([sys.executable, "-c", prelude + script], capture_output=True, text=True,
                         timeout=timeout, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    """CPU model, cores, load, library versions and thread counts for the results header."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
    }
    try:
        info["load average (1, 5, 15 min)"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return info


def markdown_table(header: list[str], rows: list[list]) -> str:
    """GitHub markdown table; floats printed with 3 significant digits."""
    def fmt(v):
        if isinstance(v, float):
            if not math.isfinite(v):
                return "-"
            return f"{v:.3g}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":  # the results header: `python benchmarks/common.py`
    print("# memphase benchmarks\n")
    print(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `benchmarks/run_all.sh "
          f"{' '.join(sys.argv[1:])}`.\n")
    print(markdown_table(["machine", ""], [[k, v] for k, v in machine_info().items()]))
    print("\nTimes are best-of-k wall times; competing implementations are timed interleaved in "
          "one process, so the RATIOS are the meaningful numbers on a shared machine. "
          "See `benchmarks/common.py` for what the memory columns measure.\n")
