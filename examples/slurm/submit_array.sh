#!/bin/bash
# Submit a sweep as an N-task job array plus a merge job that runs once every shard succeeded.
#   usage: examples/slurm/submit_array.sh CONFIG N [extra sbatch options...]
# If some tasks fail: resubmit only those (sbatch --array=3,5 ... sweep_array.sbatch CONFIG; they
# resume), then run `memphase merge CONFIG` (it names any missing part file).
set -euo pipefail
CONFIG=${1:?usage: submit_array.sh CONFIG N [sbatch options]}
N=${2:?usage: submit_array.sh CONFIG N [sbatch options]}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
memphase sweep "$CONFIG" --dry-run          # validate the config before submitting anything
JID=$(sbatch --parsable --array=0-$((N - 1)) "$@" "$HERE/sweep_array.sbatch" "$CONFIG")
MID=$(sbatch --parsable --dependency=afterok:"$JID" --job-name=memphase-merge --time=00:30:00 \
      --output=memphase-merge-%j.log "$@" --wrap "memphase merge '$CONFIG' --quiet")
echo "shards: job array $JID (0-$((N - 1))); merge: job $MID (after all shards succeed)"
