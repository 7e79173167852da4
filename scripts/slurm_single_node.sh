#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1 for tests and trying the slurm profile out (Debian 12
# slurm-wlm 22.05 + munge, no systemd, no slurmdbd, no cgroups). Run as root.
#   bash scripts/slurm_single_node.sh start   # install if missing, write /etc/slurm/slurm.conf, start daemons
#   bash scripts/slurm_single_node.sh stop    # stop the daemons it started (by PID), remove the config it wrote
# The config must be /etc/slurm/slurm.conf: the plugin's job step strips SLURM_CONF before its srun.
# The config is removed on stop because with a slurm.conf and no controller every scontrol call (and
# so every snakemake process, when snakemake-executor-plugin-slurm is installed) waits about 9 s.
# Environment: SLURM_PREFIX (state, logs, munge socket; default /var/tmp/snakebatch-slurm),
# SLURM_NODE_CPUS (CPUs the node offers; default the larger of nproc and 4: jobs are not bound to
# cores here, so a small machine still runs a few shard jobs at once), SLURM_PARTITION (default debug).
set -euo pipefail
PREFIX=${SLURM_PREFIX:-/var/tmp/snakebatch-slurm}
CONF=/etc/slurm/slurm.conf
PARTITION=${SLURM_PARTITION:-debug}
H=$(hostname -s)

stop() {
  for pidfile in "$PREFIX/slurmd.pid" "$PREFIX/slurmctld.pid" "$PREFIX/munge/munged.pid"; do
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  if [ -f "$PREFIX/conf-written" ]; then rm -f "$CONF" "$PREFIX/conf-written"; fi
}

start() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
  fi
  stop  # whatever an earlier start left
  rm -rf "$PREFIX/state" "$PREFIX/spool"
  mkdir -p "$PREFIX"/{munge,state,spool,log} "$(dirname "$CONF")"
  chown munge:munge "$PREFIX/munge"; chmod 711 "$PREFIX/munge"   # munged wants o+x on its socket folder
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  runuser -u munge -- munged --socket="$PREFIX/munge/munge.socket.2" \
    --log-file="$PREFIX/munge/munged.log" --pid-file="$PREFIX/munge/munged.pid" \
    --seed-file="$PREFIX/munge/munged.seed"
  local cpus=${SLURM_NODE_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}
  local mem=$(( $(free -m | awk '/Mem:/{print $2}') * 3 / 4 ))
  cat > "$CONF" <<CONF
# written by snakebatch scripts/slurm_single_node.sh (removed by its stop)
ClusterName=snakebatch-ci
SlurmctldHost=$H(127.0.0.1)
AuthType=auth/munge
# cred_expire: also how long SLURM holds a requeued job before it may start again (default 120 s)
AuthInfo=socket=$PREFIX/munge/munge.socket.2,cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$PREFIX/state
SlurmdSpoolDir=$PREFIX/spool
SlurmctldPidFile=$PREFIX/slurmctld.pid
SlurmdPidFile=$PREFIX/slurmd.pid
SlurmctldLogFile=$PREFIX/log/slurmctld.log
SlurmdLogFile=$PREFIX/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
# finished jobs stay visible to squeue for 5 min (the plugin's squeue status needs >= 120 s)
MinJobAge=300
MaxJobCount=20000
NodeName=$H NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
  touch "$PREFIX/conf-written"
  slurmctld -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      echo "slurm up: partition=$PARTITION cpus=$cpus mem_mb=$mem munged=$(cat "$PREFIX/munge/munged.pid")" \
        "slurmctld=$(cat "$PREFIX/slurmctld.pid") slurmd=$(cat "$PREFIX/slurmd.pid")"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm did not become idle; logs in $PREFIX/log" >&2
  sinfo >&2 || true
  tail -n 20 "$PREFIX/log/slurmctld.log" "$PREFIX/log/slurmd.log" >&2 || true
  stop
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
