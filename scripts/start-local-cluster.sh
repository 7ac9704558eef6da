#!/usr/bin/env bash
# A local strata cluster on 127.0.0.1: one monitor and N OSD processes in the
# background, pid files and logs under DIR. Needs only `bash scripts/setup.sh` (dist/ built).
#
#   bash scripts/start-local-cluster.sh start [--osds 3] [--dir DIR] [--port 6789]
#   bash scripts/start-local-cluster.sh status [--dir DIR]
#   bash scripts/start-local-cluster.sh stop [--dir DIR]
#
# Idempotent: `start` initialises what is missing (monitor store, keyrings, pool `rbd`) and
# starts only processes that are not running; `stop` stops whatever runs.
#
# All OSDs share this machine. Each gets its own CRUSH host name (host-a, host-b, …) so the
# pool's placement still separates replicas as a multi-host cluster would, and the pool uses
# failure domain `osd` (size 3 / min_size 2 when N >= 3, else size N / min_size 1): on one
# real machine the host rule would be a fiction either way, and `osd` says so honestly.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

cmd=${1:-}; shift || true
osds=3
dir=${STRATA_CLUSTER_DIR:-/tmp/strata-cluster}
port=6789
while [ $# -gt 0 ]; do
  case "$1" in
    --osds) osds="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

strata() { node "$repo/dist/backend/src/main.js" "$@"; }
# For `daemon ... &` only: exec makes the backgrounded subshell become node, so $! (written to
# the pid file) is the daemon itself and `stop` signals the right process.
# STRATA_NODE_ARGS: extra node flags for the daemons only (profiling: --trace-gc, --cpu-prof,
# --perf-basic-prof; several are refused in NODE_OPTIONS).
# shellcheck disable=SC2086
# STRATA_DAEMON_NODE_FLAGS: the daemons' node flags (cluster/src/common/daemon-node-flags.ts, kept equal by a test).
STRATA_DAEMON_NODE_FLAGS="--initial-old-space-size=64 --max-semi-space-size=4"
daemon() { exec node $STRATA_DAEMON_NODE_FLAGS ${STRATA_NODE_ARGS:-} "$repo/dist/backend/src/main.js" "$@"; }
mon_addr="127.0.0.1:$port"
keyring="$dir/keyring"
export STRATA_MON="$mon_addr" STRATA_KEYRING="$keyring" STRATA_NAME=client.admin

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits (bounded) until `strata status` answers.
wait_mon() {
  for _ in $(seq 1 50); do
    if strata status --timeout-ms 1000 >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "monitor did not answer at $mon_addr; see $dir/mon.log" >&2
  return 1
}

osd_letter() { printf "\\$(printf '%03o' $((97 + $1)))"; }

start() {
  [ -f "$repo/dist/backend/src/main.js" ] || { echo "dist/ missing: run bash scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ -z "$(ls -A "$dir/mon" 2>/dev/null)" ]; then
    strata mon --mkfs --data "$dir/mon" --keyring "$keyring" >/dev/null
  fi
  if ! running "$dir/mon.pid"; then
    daemon mon --data "$dir/mon" --addr "$mon_addr" --keyring "$keyring" >>"$dir/mon.log" 2>&1 &
    echo $! >"$dir/mon.pid"
  fi
  wait_mon
  for ((i = 0; i < osds; i++)); do
    local k="$dir/osd.$i/keyring"
    mkdir -p "$dir/osd.$i"
    if [ ! -f "$k" ]; then
      strata auth get "osd.$i" -o "$k" >/dev/null 2>&1 || strata auth add "osd.$i" --caps 'mon=allow r' -o "$k" >/dev/null
    fi
    if ! running "$dir/osd.$i.pid"; then
      daemon osd --id "$i" --data "$dir/osd.$i" --addr "127.0.0.1:$((port + 11 + i))" --mon "$mon_addr" \
        --keyring "$k" --host "host-$(osd_letter "$i")" >>"$dir/osd.$i.log" 2>&1 &
      echo $! >"$dir/osd.$i.pid"
    fi
  done
  if ! strata pool ls | grep -q "'rbd'"; then
    local size=3 min=2
    if [ "$osds" -lt 3 ]; then size=$osds; min=1; fi
    strata pool create rbd --size "$size" --min-size "$min" --pg-num 64 --failure-domain osd >/dev/null
  fi
  for _ in $(seq 1 50); do
    up=$(strata status --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).osds.up))')
    [ "$up" -ge "$osds" ] && break
    sleep 0.2
  done
  strata status
  cat <<EOF

Client configuration (export these, or put 'mon = $mon_addr' and 'keyring = $keyring' in /etc/strata/strata.conf):
  export STRATA_MON=$mon_addr
  export STRATA_KEYRING=$keyring
  export STRATA_NAME=client.admin
Logs and pid files: $dir/{mon,osd.N}.{log,pid}
EOF
}

stop() {
  for pidfile in "$dir"/osd.*.pid "$dir"/mon.pid; do
    [ -f "$pidfile" ] || continue
    if running "$pidfile"; then kill -TERM "$(cat "$pidfile")"; fi
  done
  for pidfile in "$dir"/osd.*.pid "$dir"/mon.pid; do
    [ -f "$pidfile" ] || continue
    for _ in $(seq 1 25); do running "$pidfile" || break; sleep 0.2; done
    if running "$pidfile"; then kill -KILL "$(cat "$pidfile")"; fi
    rm -f "$pidfile"
  done
  echo "stopped"
}

status() {
  for pidfile in "$dir"/mon.pid "$dir"/osd.*.pid; do
    [ -f "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    if running "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"; else echo "$name: not running"; fi
  done
  if running "$dir/mon.pid"; then strata status; strata osd tree; fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [--osds N] [--dir DIR] [--port P] | stop [--dir DIR] | status [--dir DIR]" >&2; exit 2 ;;
esac
