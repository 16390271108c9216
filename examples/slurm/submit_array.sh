#!/bin/bash
# Submit a sweep as an N-task job array plus a merge job that runs once every shard succeeded.
#   usage: examples/slurm/submit_array.sh CONFIG N [extra sbatch options...]
# The jobs find memphase through MEMPHASE_VENV or MEMPHASE_ACTIVATE (see sweep_array.sbatch);
# by default MEMPHASE_VENV is the virtual environment this script runs in, if any.
# If some tasks fail: resubmit only those with the same N (sbatch --array=3,5 ...
# sweep_array.sbatch CONFIG N; they resume), then run `memphase merge CONFIG` (it names any
# missing part file).
set -euo pipefail
CONFIG=${1:?usage: submit_array.sh CONFIG N [sbatch options]}
N=${2:?usage: submit_array.sh CONFIG N [sbatch options]}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${MEMPHASE_VENV:-}${MEMPHASE_ACTIVATE:-}" ] && [ -n "${VIRTUAL_ENV:-}" ]; then
    export MEMPHASE_VENV=$VIRTUAL_ENV
fi
ACT=""
[ -n "${MEMPHASE_VENV:-}" ] && ACT="source '$MEMPHASE_VENV/bin/activate'; "
[ -n "${MEMPHASE_ACTIVATE:-}" ] && ACT="$ACT$MEMPHASE_ACTIVATE; "
memphase sweep "$CONFIG" --dry-run >/dev/null  # validate the config before submitting anything
JID=$(sbatch --parsable --array=0-$((N - 1)) "$@" "$HERE/sweep_array.sbatch" "$CONFIG" "$N")
MID=$(sbatch --parsable --dependency=afterok:"$JID" --job-name=memphase-merge --time=00:30:00 \
      --output=memphase-merge-%j.log "$@" --wrap "${ACT}memphase merge '$CONFIG' --quiet")
echo "shards: job array $JID (0-$((N - 1)) of $N); merge: job $MID (after all shards succeed)"
