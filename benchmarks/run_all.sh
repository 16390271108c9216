#!/usr/bin/env bash
# One command for all benchmarks; writes benchmarks/RESULTS.md (machine info + tables).
#   benchmarks/run_all.sh            full run (< 5 min on 2 CPU cores when the machine is idle)
#   benchmarks/run_all.sh --quick    ~30 s smoke run
#   benchmarks/run_all.sh --device auto   CUDA when available, else CPU
#   benchmarks/run_all.sh --threads 1 --clock cpu   CPU-time ratios, robust on a shared machine
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$py" ] || py=python
out="$here/RESULTS.md"
{
  "$py" "$here/common.py" "$@"
  "$py" "$here/bench_empirical_score.py" "$@"
  "$py" "$here/bench_sampler.py" "$@"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
