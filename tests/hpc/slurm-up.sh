#!/usr/bin/env bash
# Start a private single-node SLURM on this machine for the `slurm` tests (and for trying the
# examples): its own munged (own key and socket), slurmctld and slurmd, all state, logs and pid
# files under one folder, on the two ports given. It never joins or reuses a SLURM it did not
# start: if the folder already holds a running one, or a port is taken, it stops with the reason.
#
#   MEMPHASE_SLURM_DIR=/tmp/my-slurm tests/hpc/slurm-up.sh
#                                    # prints: export SLURM_CONF=/tmp/my-slurm/slurm.conf
#                                    #         # started: munged slurmctld slurmd
#   export SLURM_CONF=/tmp/my-slurm/slurm.conf; sinfo; sbatch ...
#   MEMPHASE_SLURM_DIR=/tmp/my-slurm tests/hpc/slurm-down.sh   # stops what this script started
#
# Needs root (it installs `slurm-wlm` and `munge` with apt-get if they are missing and runs the
# daemons). No cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, one node with
# this machine's cores and memory (from `slurmd -C`). Ports: MEMPHASE_SLURMCTLD_PORT and
# MEMPHASE_SLURMD_PORT (defaults 6817, 6818; the test fixture picks free ones).
# Exit status 0 once `sinfo` shows the node idle; otherwise 1 with the reason on stderr.
set -euo pipefail
DIR=${MEMPHASE_SLURM_DIR:-/tmp/memphase-slurm}
CTLD_PORT=${MEMPHASE_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${MEMPHASE_SLURMD_PORT:-6818}
say() { echo "slurm-up: $*" >&2; }
die() { say "$*"; exit 1; }
port_taken() {  # is something listening on TCP port $1?
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for pidfile in "$DIR/munge/munged.pid" "$DIR/slurmctld.pid" "$DIR/slurmd.pid"; do
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "$DIR already runs a SLURM ($(basename "$pidfile" .pid) pid $(cat "$pidfile")), not started by this call: use it with SLURM_CONF=$DIR/slurm.conf, or stop it with slurm-down.sh, or choose another MEMPHASE_SLURM_DIR"
    fi
done
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    port_taken "$port" && die "port $port is in use (another SLURM?): choose MEMPHASE_SLURMCTLD_PORT / MEMPHASE_SLURMD_PORT"
done

[ "$(id -u)" = 0 ] || die "needs root (installs packages, starts munged/slurmctld/slurmd)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get to install them"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$DIR.apt.log" 2>&1 || die "apt-get update failed (see $DIR.apt.log)"
    apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$DIR.apt.log" 2>&1 \
        || die "apt-get install slurm-wlm munge failed (see $DIR.apt.log)"
fi

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
OK=0
# on any failure below, stop what this call started (nothing else)
trap '[ "$OK" = 1 ] || MEMPHASE_SLURM_DIR="$DIR" bash "$(dirname "$0")/slurm-down.sh" >/dev/null 2>&1' EXIT
chmod 700 "$DIR/munge"
STARTED=""
HOST=$(hostname -s)

# munge: a private daemon with its own key and socket (the machine's munged, if any, is not used)
MUNGE_SOCKET=$DIR/munge/munge.socket
if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom bs=1 count=1024 of="$DIR/munge/munge.key" 2>/dev/null
fi
chmod 400 "$DIR/munge/munge.key"
/usr/sbin/munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" 2>>"$DIR/log/munged.log" \
    || die "munged failed to start (see $DIR/log/munged.log)"
echo started >"$DIR/munged.started"; STARTED="$STARTED munged"
for _ in $(seq 50); do
    munge -S "$MUNGE_SOCKET" -n 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && break
    sleep 0.1
done
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null \
    || die "munge does not work (munge -n | unmunge on $MUNGE_SOCKET)"

NODE=$(slurmd -C | head -1)   # NodeName=HOST CPUs=.. Boards=.. ... RealMemory=..
[ -n "$NODE" ] || die "slurmd -C printed nothing"
cat >"$DIR/slurm.conf" <<CONF
# written by tests/hpc/slurm-up.sh: a single-node SLURM without cgroups
ClusterName=memphase
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job may start cred_expire seconds after it ended (SLURM default: 120)
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
MinJobAge=600
KillWait=5
SlurmdTimeout=60
MpiDefault=none
JobRequeue=1
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$DIR/slurm.conf

slurmctld -f "$SLURM_CONF" -i || die "slurmctld failed to start (see $DIR/log/slurmctld.log)"
echo started >"$DIR/slurmctld.started"; STARTED="$STARTED slurmctld"
slurmd -f "$SLURM_CONF" || die "slurmd failed to start (see $DIR/log/slurmd.log)"
echo started >"$DIR/slurmd.started"; STARTED="$STARTED slurmd"
for _ in $(seq 120); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    case $state in
        idle|mix|alloc) OK=1; echo "export SLURM_CONF=$SLURM_CONF"; echo "# started:$STARTED"; exit 0 ;;
        down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
die "node $HOST not idle after 60 s (sinfo: ${state:-nothing}); logs in $DIR/log"
