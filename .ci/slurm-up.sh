#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, from Debian's packages, for the
# SLURM workflow test (tests/workflow/test_slurm.py) and for trying
# profiles/slurm by hand:
#   .ci/slurm-up.sh install      apt-get slurmctld slurmd slurm-client munge (root)
#   .ci/slurm-up.sh start DIR    write DIR/slurm.conf, start munged, slurmctld, slurmd
#   .ci/slurm-up.sh stop DIR     stop the three daemons by the PIDs in DIR/*.pid
#
# Everything (config, munge key and socket, state, logs, PID files) lives in
# DIR; /etc/munge/munge.key is not used. The one path outside DIR is
# /etc/slurm/slurm.conf, a symlink to DIR/slurm.conf while the cluster is up:
# the job steps need it there, because the SLURM executor's job step drops
# SLURM_CONF (every SLURM_* variable) from the environment of its inner srun.
# `start` refuses to replace a slurm.conf that is not such a link (a real
# cluster's), and `stop` removes the link.
#
# The node is this machine as `slurmd -C` reports it (CPUs, sockets, cores,
# memory less 10% headroom for the daemons and the submitting Snakemake), in two
# partitions, `cpu` (default) and `gpu`, and it declares one `gpu` GRES backed
# by /dev/null (slurmd counts a gpu only with a File=; task/none binds
# nothing): jobs asking for `--gpus=1` are scheduled exactly as on a GPU node,
# and the job itself finds no CUDA device (the demo models run on `device: cpu`). No job accounting (accounting_storage/none), as on
# clusters without slurmdbd: `sacct` answers nothing, so Snakemake must be run
# with `--slurm-status-command squeue`; MinJobAge keeps finished jobs visible to
# squeue for 10 minutes so that the status poll sees how each job ended.
set -euo pipefail

die() {
  echo "slurm-up: $*" >&2
  exit 1
}

install_packages() {
  [ "$(id -u)" = 0 ] || die "installing needs root (apt-get)"
  command -v apt-get >/dev/null || die "apt-get not found: install slurmctld slurmd slurm-client munge by hand"
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "slurm-up: slurmctld, slurmd, slurm-client and munge already installed" >&2
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

wait_for() { # seconds, description, command...
  local n=$1 what=$2
  shift 2
  for _ in $(seq "$n"); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  die "$what did not come up within ${n}s (logs in $DIR)"
}

start() {
  [ "$(id -u)" = 0 ] || die "starting the daemons needs root"
  command -v slurmctld >/dev/null || die "slurmctld not found: run '$0 install' first"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  chmod 700 "$DIR"
  mkdir -p "$DIR/state" "$DIR/spool"
  local host node mem
  host=$(hostname -s)
  # `slurmd -C` prints this machine's node line; keep its topology (slurmd
  # refuses a node with more than it has) and leave 10% of the memory free.
  node=$(slurmd -C | head -1)
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/" <<<"$node")
  cat >"$DIR/slurm.conf" <<EOF
ClusterName=lalmci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
MpiDefault=none
$node NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
  # One gpu GRES on /dev/null: schedulable, nothing to bind.
  echo "NodeName=$host Name=gpu File=/dev/null" >"$DIR/gres.conf"
  if [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    grep -q '^ClusterName=lalmci$' /etc/slurm/slurm.conf 2>/dev/null && [ -L /etc/slurm/slurm.conf ] ||
      die "/etc/slurm/slurm.conf exists and is not a lalm-audit test cluster's: not replacing it"
    pids_alive "$(dirname "$(readlink /etc/slurm/slurm.conf)")" &&
      die "another test cluster is up ($(readlink /etc/slurm/slurm.conf)): stop it first"
  fi
  mkdir -p /etc/slurm
  ln -sfn "$DIR/slurm.conf" /etc/slurm/slurm.conf

  head -c 1024 /dev/urandom >"$DIR/munge.key"
  chmod 400 "$DIR/munge.key"
  munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" \
    --seed-file="$DIR/munged.seed"
  wait_for 20 munged test -S "$DIR/munge.socket"
  slurmctld -f "$DIR/slurm.conf"
  wait_for 60 slurmctld scontrol ping
  slurmd -f "$DIR/slurm.conf"
  wait_for 60 "slurmd (node $host idle)" bash -c "sinfo -h -N -o %T | grep -qx idle"
  echo "slurm-up: cluster up (config $DIR/slurm.conf, linked from /etc/slurm/slurm.conf)" >&2
}

pids_alive() { # DIR: is any daemon of that cluster still running?
  local f
  for f in "$1"/slurmd.pid "$1"/slurmctld.pid "$1"/munged.pid; do
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
  done
  return 1
}

stop() {
  [ -d "$DIR" ] || die "no cluster directory $DIR"
  DIR=$(cd "$DIR" && pwd)
  local name pid
  for name in slurmd slurmctld munged; do
    [ -f "$DIR/$name.pid" ] || continue
    pid=$(cat "$DIR/$name.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$DIR/$name.pid"
  done
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$DIR/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
  fi
}

cmd=${1:-}
DIR=${2:-}
case "$cmd" in
  install) install_packages ;;
  start)
    [ -n "$DIR" ] || die "usage: $0 start DIR"
    start
    ;;
  stop)
    [ -n "$DIR" ] || die "usage: $0 stop DIR"
    stop
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
