#!/usr/bin/env bash
# Stop the daemons tests/hpc/slurm-up.sh started (only those: it left a <daemon>.started mark).
set -uo pipefail
DIR=${MEMPHASE_SLURM_DIR:-/tmp/memphase-slurm}
export SLURM_CONF=$DIR/slurm.conf
stop() {  # pidfile
    [ -s "$1" ] || return 0
    local pid; pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
if [ -e "$DIR/slurmd.started" ] || [ -e "$DIR/slurmctld.started" ]; then
    scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
fi
[ -e "$DIR/slurmd.started" ] && stop "$DIR/slurmd.pid" && rm -f "$DIR/slurmd.started"
[ -e "$DIR/slurmctld.started" ] && stop "$DIR/slurmctld.pid" && rm -f "$DIR/slurmctld.started"
if [ -e "$DIR/munged.started" ]; then
    stop /run/munge/munged.pid
    [ -s /var/run/munge/munged.pid ] && stop /var/run/munge/munged.pid
    rm -f "$DIR/munged.started"
fi
exit 0
