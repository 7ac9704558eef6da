#!/usr/bin/env bash
# The README's first command. On a fresh Debian machine (as root) it installs what is
# missing, builds, starts an embedded local cluster (1 monitor + 3 OSDs on 127.0.0.1, data
# under $STRATA_HOME/cluster, pool `vms` with 3 replicas), creates the image vms/vm1-disk0,
# a client key whose caps cover only pool `vms`, serves the image over vhost-user-blk on a
# Unix socket, then prints the QEMU command line and the libvirt XML to attach it.
#
#   bash scripts/quickstart.sh                 # start (idempotent), print how to attach
#   bash scripts/quickstart.sh --boot-guest    # …and boot a small guest that runs fio on it
#   bash scripts/quickstart.sh stop            # stop everything it started (daemon, OSDs, monitor)
#
# State lives in $STRATA_HOME (default /var/lib/strata/quickstart). Knobs: STRATA_DISK_SIZE
# (default 1G), STRATA_MON_PORT (default 6789; OSDs use the 11 ports above it),
# STRATA_QS_BACKEND=file serves a plain file instead of the cluster image (no cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
home=${STRATA_HOME:-/var/lib/strata/quickstart}
sock=$home/vm1-disk0.sock
size=${STRATA_DISK_SIZE:-1G}
port=${STRATA_MON_PORT:-6789}
backend=${STRATA_QS_BACKEND:-cluster}
cluster=$home/cluster
pool=vms
image=vm1-disk0
client=client.vm1
keyring=$home/vm1.keyring
pidfile=$home/vhost.pid
log=$home/vhost.log

strata() { node "$repo/dist/backend/src/main.js" "$@"; }
admin() { STRATA_MON=127.0.0.1:$port STRATA_KEYRING=$cluster/keyring STRATA_NAME=client.admin strata "$@"; }
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
  if running; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill -KILL "$(cat "$pidfile")"; fi
    echo "strata: stopped the vhost daemon (pid $(cat "$pidfile"))"
  else
    echo "strata: no vhost daemon running"
  fi
  rm -f "$pidfile"
  if [ -d "$cluster" ]; then
    echo -n "strata: cluster: "
    bash scripts/start-local-cluster.sh stop --dir "$cluster"
    # start-local-cluster.sh's pid files hold the pid of the subshell that runs each daemon
    # (a backgrounded shell function), so its stop can leave the node processes running:
    # stop those whose command line names this cluster's directory, by pid.
    local pids=() p
    for p in /proc/[0-9]*; do
      if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qE "main\.js (mon|osd) .*--data $cluster/"; then pids+=("${p#/proc/}"); fi
    done
    if [ ${#pids[@]} -gt 0 ]; then
      kill -TERM "${pids[@]}" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "${pids[@]}" 2>/dev/null || true
      echo "strata: stopped ${#pids[@]} cluster daemons left running (pids ${pids[*]})"
    fi
  fi
}

boot=0
case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  --boot-guest) boot=1 ;;
  *) echo "usage: $0 [start|--boot-guest|stop]" >&2; exit 2 ;;
esac

bash scripts/setup.sh
mkdir -p "$home"
chmod 0700 "$home"

if [ "$backend" = file ]; then
  what="$home/vm1-disk0.raw ($size, a plain file)"
  serve=(--file "$home/vm1-disk0.raw" --size "$size" --serial vm1-disk0)
else
  echo "strata: starting the local cluster (1 monitor + 3 OSDs, data in $cluster, monitor 127.0.0.1:$port)"
  bash scripts/start-local-cluster.sh start --dir "$cluster" --port "$port" --osds 3 >"$home/cluster-start.log" 2>&1 ||
    { cat "$home/cluster-start.log" >&2; echo "strata: the cluster did not start; logs in $cluster" >&2; exit 1; }
  if ! admin pool ls | grep -q "'$pool'"; then
    admin pool create "$pool" --size 3 --min-size 2 --pg-num 32 --failure-domain osd >/dev/null
  fi
  if ! admin image info "$pool/$image" >/dev/null 2>&1; then
    admin image create "$pool/$image" --size "$size" >/dev/null
    echo "strata: created image $pool/$image ($size, thin, 3 replicas)"
  fi
  if [ ! -f "$keyring" ]; then
    admin auth get "$client" -o "$keyring" >/dev/null 2>&1 ||
      admin auth add "$client" --caps 'mon=profile rbd' "osd=allow rw pool=$pool" -o "$keyring" >/dev/null
    chmod 0600 "$keyring"
  fi
  what="image $pool/$image ($size, 3 replicas; client $client, caps on pool $pool only)"
  serve=(--image "$pool/$image" --mon "127.0.0.1:$port" --keyring "$keyring" --name "$client")
fi

if ! running; then
  rm -f "$sock"
  # The daemons' node flags (cluster/src/common/daemon-node-flags.ts, kept equal by a test).
  STRATA_DAEMON_NODE_FLAGS="--initial-old-space-size=64 --max-semi-space-size=4"
  # shellcheck disable=SC2086
  nohup node $STRATA_DAEMON_NODE_FLAGS "$repo/dist/backend/src/main.js" vhost --socket-path "$sock" "${serve[@]}" --num-queues 4 >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 300); do [ -S "$sock" ] && break; kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  [ -S "$sock" ] || { echo "strata: the daemon did not start; see $log" >&2; tail -5 "$log" >&2; exit 1; }
fi
echo "strata: serving $what on $sock (pid $(cat "$pidfile"), log $log)"
cat <<MSG

Attach it to a guest with QEMU (guest RAM must be shared memfd memory):

  qemu-system-x86_64 -machine q35,accel=kvm:tcg -m 1G -smp 2 \\
    -object memory-backend-memfd,id=mem0,size=1G,share=on -numa node,memdev=mem0 \\
    -chardev socket,id=vub0,path=$sock,reconnect=1 \\
    -device vhost-user-blk-pci,chardev=vub0,num-queues=2,bootindex=1 \\
    ... your boot disk or kernel ...

or with libvirt (domain XML fragments):

$(node "$repo/dist/scripts/libvirt-xml.js" --socket "$sock" --snippet --target vdb --queues 2 | sed 's/^/  /')

Status: node dist/backend/src/main.js vhost-ctl --control-socket $sock.ctl status
MSG
if [ "$backend" != file ]; then
  cat <<MSG
Cluster: STRATA_MON=127.0.0.1:$port STRATA_KEYRING=$cluster/keyring node dist/backend/src/main.js status
         (… image info $pool/$image, osd tree; logs in $cluster)
MSG
fi
echo "Stop it all with: bash scripts/quickstart.sh stop"
if [ "$boot" = 1 ]; then
  echo
  echo "strata: booting a test guest (TCG unless KVM works here) that runs fio on the disk…"
  node "$repo/dist/scripts/quickstart-guest.js" --socket "$sock"
fi
