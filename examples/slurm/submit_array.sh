#!/bin/sh
# Submit a sweep as an N-task job array plus a merge job that runs once every task has ended.
#   usage: examples/slurm/submit_array.sh CONFIG N [extra sbatch options...]
# POSIX sh (dash included). The jobs find memphase through MEMPHASE_VENV or MEMPHASE_ACTIVATE
# (see sweep_array.sbatch); by default MEMPHASE_VENV is the virtual environment this script runs
# in, if any. The config is validated here first, with memphase found the same way (it need not
# be on this shell's PATH).
# The merge job waits for every task to end in any state (afterany): a failed, cancelled,
# preempted or timed-out task never leaves it waiting forever; if a part file is missing it
# fails naming the shards. Resubmit only those, with a new merge job after them:
#   MEMPHASE_ARRAY=3,5 examples/slurm/submit_array.sh CONFIG N
# (they resume from their journals; N stays the sweep's shard count).
# Memory: each task asks for what `memphase sweep CONFIG --dry-run` prints as "slurm memory per
# task" (the largest cell estimate + the process, x1.25); an extra option such as --mem=16G,
# given after N, comes later on sbatch's command line and wins. Each task refuses, before
# computing, a cell whose estimate exceeds its allocation.
set -eu
USAGE="usage: submit_array.sh CONFIG N [sbatch options]"
CONFIG=${1:?$USAGE}
N=${2:?$USAGE}
shift 2
case $N in
    '' | *[!0-9]* | 0) echo "submit_array.sh: N must be a positive integer, got '$N'" >&2; exit 2 ;;
esac
ARRAY=${MEMPHASE_ARRAY:-0-$((N - 1))}
case $ARRAY in
    '' | *[!0-9,-]*) echo "submit_array.sh: MEMPHASE_ARRAY must be task indices such as 3,5 or 0-7," \
                          "got '$ARRAY'" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${MEMPHASE_VENV:-}${MEMPHASE_ACTIVATE:-}" ] && [ -n "${VIRTUAL_ENV:-}" ]; then
    MEMPHASE_VENV=$VIRTUAL_ENV
fi
[ -n "${MEMPHASE_VENV:-}" ] && export MEMPHASE_VENV
[ -n "${MEMPHASE_ACTIVATE:-}" ] && export MEMPHASE_ACTIVATE
# validate the config before submitting anything, with memphase found as the jobs find it
(
    if [ -n "${MEMPHASE_VENV:-}" ]; then
        . "$MEMPHASE_VENV/bin/activate"
    fi
    if [ -n "${MEMPHASE_ACTIVATE:-}" ]; then
        # MEMPHASE_ACTIVATE written for bash (`source FILE`) works under sh too
        command -v source >/dev/null 2>&1 || source() { . "$1"; }
        eval "$MEMPHASE_ACTIVATE"
    fi
    if ! command -v memphase >/dev/null; then
        echo "submit_array.sh: memphase not found; set MEMPHASE_VENV=/path/to/.venv or" \
             "MEMPHASE_ACTIVATE='module load ...; . .../bin/activate'" >&2
        exit 2
    fi
    memphase sweep "$CONFIG" --dry-run
) > "${TMPDIR:-/tmp}/memphase-plan.$$" || { rm -f "${TMPDIR:-/tmp}/memphase-plan.$$"; exit 2; }
MEM=$(sed -n 's/^slurm memory per task: --mem=\([0-9][0-9]*M\).*/\1/p' "${TMPDIR:-/tmp}/memphase-plan.$$")
rm -f "${TMPDIR:-/tmp}/memphase-plan.$$"
case $MEM in
    '' | *[!0-9M]*) echo "submit_array.sh: no memory estimate in the plan of $CONFIG" >&2; exit 2 ;;
esac
# the config path and the environment travel as arguments and variables, never inside a string
# of shell code: any character in a path is safe
JID=$(sbatch --parsable --array="$ARRAY" --mem="$MEM" "$@" "$HERE/sweep_array.sbatch" "$CONFIG" "$N")
JID=${JID%%;*}
MID=$(sbatch --parsable --dependency=afterany:"$JID" "$@" "$HERE/merge.sbatch" "$CONFIG")
MID=${MID%%;*}
echo "shards: job array $JID ($ARRAY of $N, --mem=$MEM per task); merge: job $MID (after every task has ended)"
