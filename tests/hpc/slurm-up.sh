#!/usr/bin/env bash
# Start a single-node SLURM on this machine for the `slurm` tests (and for trying the examples).
#
#   tests/hpc/slurm-up.sh            # prints: export SLURM_CONF=/tmp/memphase-slurm/slurm.conf
#                                    #         # started: <the daemons this call started>
#   export SLURM_CONF=/tmp/memphase-slurm/slurm.conf; sinfo; sbatch ...
#   tests/hpc/slurm-down.sh [NAMES]  # stops what this script started (NAMES: only those)
#
# Needs root (it installs `slurm-wlm` and `munge` with apt-get if they are missing and runs the
# daemons). No cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, one node with
# this machine's cores and memory (from `slurmd -C`), state under $MEMPHASE_SLURM_DIR.
# Exit status 0 once `sinfo` shows the node idle; otherwise 1 with the reason on stderr.
set -euo pipefail
DIR=${MEMPHASE_SLURM_DIR:-/tmp/memphase-slurm}
CTLD_PORT=${MEMPHASE_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${MEMPHASE_SLURMD_PORT:-6818}
say() { echo "slurm-up: $*" >&2; }
die() { say "$*"; exit 1; }

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

mkdir -p "$(dirname "$DIR")" "$DIR/state" "$DIR/spool" "$DIR/log"
STARTED=""
HOST=$(hostname -s)

# munge: the key the package made (or a fresh one), socket in /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --force
    else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged || die "munged failed to start"
    else
        /usr/sbin/munged --force || die "munged failed to start"
    fi
    echo started >"$DIR/munged.started"; STARTED="$STARTED munged"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munge does not work (munge -n | unmunge)"
fi

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
AuthInfo=cred_expire=10
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

if ! scontrol ping 2>/dev/null | grep -q UP; then
    slurmctld -f "$SLURM_CONF" -i || die "slurmctld failed to start (see $DIR/log/slurmctld.log)"
    echo started >"$DIR/slurmctld.started"; STARTED="$STARTED slurmctld"
fi
if [ ! -s "$DIR/slurmd.pid" ] || ! kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; then
    slurmd -f "$SLURM_CONF" || die "slurmd failed to start (see $DIR/log/slurmd.log)"
    echo started >"$DIR/slurmd.started"; STARTED="$STARTED slurmd"
fi
for _ in $(seq 120); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    case $state in
        idle|mix|alloc) echo "export SLURM_CONF=$SLURM_CONF"; echo "# started:$STARTED"; exit 0 ;;
        down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
die "node $HOST not idle after 60 s (sinfo: ${state:-nothing}); logs in $DIR/log"
