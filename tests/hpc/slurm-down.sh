#!/usr/bin/env bash
# Stop the daemons tests/hpc/slurm-up.sh started in $MEMPHASE_SLURM_DIR (only those: it left a
# <daemon>.started mark and their pid files there; nothing else on the machine is touched).
#   usage: tests/hpc/slurm-down.sh [munged] [slurmctld] [slurmd]   (default: all three)
set -uo pipefail
WANT=" ${*:-munged slurmctld slurmd} "
want() { [[ $WANT == *" $1 "* ]]; }
DIR=${MEMPHASE_SLURM_DIR:-/tmp/memphase-slurm}
export SLURM_CONF=$DIR/slurm.conf
stop() {  # pidfile
    [ -s "$1" ] || return 0
    local pid; pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
if want slurmctld && [ -e "$DIR/slurmctld.started" ]; then
    scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
fi
want slurmd && [ -e "$DIR/slurmd.started" ] && stop "$DIR/slurmd.pid" && rm -f "$DIR/slurmd.started"
want slurmctld && [ -e "$DIR/slurmctld.started" ] && stop "$DIR/slurmctld.pid" && rm -f "$DIR/slurmctld.started"
if want munged && [ -e "$DIR/munged.started" ]; then
    stop "$DIR/munge/munged.pid"
    rm -f "$DIR/munged.started"
fi
exit 0
