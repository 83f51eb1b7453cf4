#!/usr/bin/env bash
# A single-node Slurm (munge, slurmctld, slurmd) for the Slurm test, without systemd: installs
# Debian's packages if missing, writes a one-node slurm.conf (partition `debug`, no accounting,
# no cgroups), starts the daemons and waits for the node to be idle. Needs root; idempotent.
set -euo pipefail
missing=0
for c in slurmctld slurmd sbatch munged; do command -v "$c" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: its key, its directories (/run/munge is gone after a reboot), its daemon.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
[ -s /etc/munge/munge.key ] || mungekey --create --force
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive /run/munge/munged.pid; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 20); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null

node=$(hostname -s)
getent hosts "$node" >/dev/null || echo "127.0.0.1 $node" >>/etc/hosts
memory=$(free -m | awk '/^Mem:/{print int($2*0.9)}')
mkdir -p /etc/slurm
cat >/etc/slurm/slurm.conf.new <<CONF
ClusterName=banbench-ci
SlurmctldHost=$node
SlurmUser=slurm
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=600
NodeName=$node CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
changed=0
cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf || changed=1
mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -m 0755 /var/spool/slurmd
if alive /run/slurmctld.pid; then
    [ "$changed" = 1 ] && scontrol reconfigure
else
    slurmctld
fi
for _ in $(seq 30); do scontrol ping | grep -q UP && break; sleep 1; done
alive /run/slurmd.pid || slurmd
for _ in $(seq 30); do
    sinfo -h -n "$node" -o %T | grep -qE '^(idle|mixed|alloc)' && break
    sleep 1
done
sinfo -h -n "$node" -o %T | grep -qE '^(idle|mixed|alloc)' || {
    tail /var/log/slurm/slurm*.log
    exit 1
}
echo "slurm: node $node is up"
