#!/usr/bin/env bash
# One command for all benchmarks; writes benchmarks/RESULTS.md (machine info + tables).
#   benchmarks/run_all.sh            full run (~10 min on 2 idle CPU cores)
#   benchmarks/run_all.sh --quick    smoke run on small sizes (~3 min; mostly Dask start-up)
#   benchmarks/run_all.sh --device auto   CUDA when available, else CPU ("cuda" without a GPU:
#                                         each section prints "Skipped" and the run goes on)
#   benchmarks/run_all.sh --threads 1 --clock cpu   CPU-time ratios, robust on a shared machine
#                                         (the sweep section always uses wall clock)
# Sections: empirical-score kernel, kernel profile at d = 16 (why the exp target is bounded),
# sampler overhead, Jacobian spectra, nearest neighbours, EMM search, network training, sweep
# throughput. Each prints its target and whether it is met.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$py" ] || py=python
out="$here/RESULTS.md"
{
  "$py" "$here/common.py" "$@"
  "$py" "$here/bench_empirical_score.py" "$@"
  "$py" "$here/profile_kernel.py" "$@"
  "$py" "$here/bench_sampler.py" "$@"
  "$py" "$here/bench_jacobian.py" "$@"
  "$py" "$here/bench_nearest.py" "$@"
  "$py" "$here/bench_emm.py" "$@"
  "$py" "$here/bench_training.py" "$@"
  "$py" "$here/bench_sweep.py" "$@"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
