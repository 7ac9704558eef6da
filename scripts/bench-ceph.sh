#!/usr/bin/env bash
# strata vs a real Ceph on this machine, same shape, same disk, same workloads, one run.
#
#   bash scripts/bench-ceph.sh [--dir /var/tmp/strata-bench] [--image-size 1G] [--only ceph|strata] [--keep] [--no-warmup]
#
# Ceph (Debian's 16.2.15, a *benchmark* dependency only: `apt-get install -y ceph`):
# 1 mon, 1 mgr, 3 BlueStore OSDs on sparse files, pool size 3 / min_size 2, 127.0.0.1 only.
# strata: scripts/start-local-cluster.sh with 3 OSDs (pool `rbd`, size 3 / min_size 2).
# Workloads, each with `rbd bench` and `strata bench` (librbd cache off: --rbd_cache=false):
#   4k randwrite QD1 and QD16, 4k randread QD1 and QD16 (both images prefilled first: reads of
#   a sparse image are answered without touching the disk), 1M seq write QD16. Before each
#   measured pair, both systems run the same workload unmeasured for a quarter of its total
#   (warm-up, like fio's ramp_time: daemons are long-running; strata's JIT and both systems'
#   caches and allocators reach steady state): `rbd bench` as a separate run, `strata bench` in
#   the measured process (--warmup-total; its CPU figures then count the warm-up ops too).
#   --no-warmup measures cold daemons.
# Records per run: IOPS, MiB/s, latency (strata: p50/p99 measured; rbd bench prints neither, so
# its average is derived as threads/IOPS), CPU seconds of every daemon and of the client (from
# /proc/<pid>/stat and /usr/bin/time), RSS of every daemon. scripts/bench-ceph-compare.ts turns
# DIR/results.jsonl into the table (strata/Ceph ratios, CPU µs per op).
#
# Settings that were needed here (docs/benchmarks.md, REFERENCE.md "A real Ceph on this machine"):
# --no-mon-config for `ceph-osd --mkfs`; bluestore_block_path/create/size for BlueStore on a file;
# `osd crush chooseleaf type = 0` (3 OSDs, one host); `mon osd reporter subtree level = osd` and
# `mon osd min down reporters = 1`; the virtual disk says it is rotational, so
# `bluestore debug enforce settings = ssd` and `osd recovery sleep hdd = 0`; `mon cluster log
# file` (else /var/log/ceph). Everything is torn down at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

dir=/var/tmp/strata-bench
image_size=1G
keep=0
only=both
warmup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --image-size) image_size="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --only) only="$2"; shift 2 ;;
    --no-warmup) warmup=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

for b in ceph-mon ceph-mgr ceph-osd ceph rbd monmaptool ceph-authtool; do
  command -v "$b" >/dev/null || { echo "$b missing: apt-get install -y ceph (benchmark dependency only)" >&2; exit 1; }
done
[ -f "$repo/dist/backend/src/main.js" ] || { echo "dist/ missing: run npx tsc -p tsconfig.json" >&2; exit 1; }

cdir="$dir/ceph"
sdir="$dir/strata"
results="$dir/results.jsonl"
strata_port=7789
conf="$cdir/ceph.conf"
C() { ceph -c "$conf" "$@"; }

# The local-cluster script's pid files hold the subshell that launched node; the daemon is its child.
strata_pid() {
  local p c; p=$(cat "$sdir/$1.pid" 2>/dev/null) || return 0
  c=$(ps -o pid= --ppid "$p" 2>/dev/null | head -1 | tr -d ' ')
  echo "${c:-$p}"
}

teardown() {
  set +e
  for p in "$cdir"/run/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  local spids=""; for n in mon osd.0 osd.1 osd.2; do spids+=" $(strata_pid "$n")"; done
  bash "$repo/scripts/start-local-cluster.sh" stop --dir "$sdir" >/dev/null 2>&1
  for p in $spids; do kill "$p" 2>/dev/null; done
  sleep 2
  for p in "$cdir"/run/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
  for p in $spids; do kill -9 "$p" 2>/dev/null; done
  if [ "$keep" = 0 ]; then rm -rf "$dir"; fi
}
trap teardown EXIT

rm -rf "$dir"
mkdir -p "$cdir"/{run,log,mon,mgr,osd} "$sdir"
: >"$results"

want() { [ "$only" = both ] || [ "$only" = "$1" ]; }

# ---------- Ceph ----------
setup_ceph() {
fsid=$(uuidgen)
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6790]
public network = 127.0.0.0/8
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = 6800
ms bind port max = 7100
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $cdir/run
pid file = $cdir/run/\$name.pid
admin socket = $cdir/run/\$name.asok
log file = $cdir/log/\$name.log
mon cluster log file = $cdir/log/cluster.log
mon data = $cdir/mon/\$cluster-\$id
mgr data = $cdir/mgr/\$cluster-\$id
osd data = $cdir/osd/\$cluster-\$id
osd pool default size = 3
osd pool default min size = 2
osd crush chooseleaf type = 0
mon osd reporter subtree level = osd
mon osd min down reporters = 1
mon allow pool delete = true
mon warn on pool no redundancy = false
osd objectstore = bluestore
bluestore block path = $cdir/osd/\$cluster-\$id/block.file
bluestore block create = true
bluestore block size = 8589934592
bluestore debug enforce settings = ssd
osd recovery sleep hdd = 0
[mon]
keyring = \$mon_data/keyring
[mgr]
keyring = \$mgr_data/keyring
[osd]
keyring = \$osd_data/keyring
[client]
keyring = $cdir/keyring
rbd cache = false
EOF

ceph-authtool --create-keyring "$cdir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$cdir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$cdir/mon.keyring" --import-keyring "$cdir/keyring" >/dev/null
monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6790]' --fsid "$fsid" "$cdir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$cdir/monmap" --keyring "$cdir/mon.keyring"
ceph-mon -c "$conf" -i a
for _ in $(seq 1 60); do C -s --connect-timeout 2 >/dev/null 2>&1 && break; sleep 0.5; done
mkdir -p "$cdir/mgr/ceph-x"
C auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' >"$cdir/mgr/ceph-x/keyring"
ceph-mgr -c "$conf" -i x
for i in 0 1 2; do
  uuid=$(uuidgen)
  id=$(C osd create "$uuid")
  mkdir -p "$cdir/osd/ceph-$id"
  ceph-osd -c "$conf" -i "$id" --mkfs --mkkey --osd-uuid "$uuid" --no-mon-config >"$cdir/log/mkfs.$id.log" 2>&1
  C auth add "osd.$id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i "$cdir/osd/ceph-$id/keyring" >/dev/null
  ceph-osd -c "$conf" -i "$id"
done
C osd pool create rbd 32 32 >/dev/null
C osd pool set rbd size 3 >/dev/null
C osd pool set rbd min_size 2 >/dev/null
C osd pool application enable rbd rbd >/dev/null
ceph_ok=0
for _ in $(seq 1 120); do
  # "33 pgs: 33 active+clean; …" (the mgr's device_health_metrics pool adds one PG).
  if C pg stat 2>/dev/null | grep -Eq '^([0-9]+) pgs: \1 active\+clean;'; then ceph_ok=1; break; fi
  sleep 1
done
[ "$ceph_ok" = 1 ] || { echo "ceph PGs not active+clean:" >&2; C -s >&2; exit 1; }
echo "ceph: HEALTH $(C health 2>/dev/null)" >&2
rbd -c "$conf" create rbd/bench --size "$image_size"
}

# ---------- strata ----------
setup_strata() {
bash "$repo/scripts/start-local-cluster.sh" start --osds 3 --dir "$sdir" --port "$strata_port" >&2
export STRATA_MON="127.0.0.1:$strata_port" STRATA_KEYRING="$sdir/keyring" STRATA_NAME=client.admin
strata() { node "$repo/dist/backend/src/main.js" "$@"; }
for _ in $(seq 1 30); do strata status --timeout-ms 2000 2>/dev/null | grep -q 'HEALTH_OK' && break; sleep 0.5; done
strata status >&2 || true
strata image create rbd/bench --size "$image_size"
}
strata() { node "$repo/dist/backend/src/main.js" "$@"; }
want ceph && setup_ceph
want strata && setup_strata

# ---------- measurement helpers ----------
ceph_pids() { for n in mon.a mgr.x osd.0 osd.1 osd.2; do echo "ceph:$n:$(cat "$cdir/run/$n.pid")"; done; }
strata_pids() { echo "strata:mon:$(strata_pid mon)"; for i in 0 1 2; do echo "strata:osd.$i:$(strata_pid "osd.$i")"; done; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# run SYSTEM WORKLOAD OPS-EXPECTED COMMAND…: runs the client under /usr/bin/time, records daemon CPU/RSS.
run() {
  local system=$1 workload=$2; shift 2
  local pids; if [ "$system" = ceph ]; then pids=$(ceph_pids); else pids=$(strata_pids); fi
  declare -A before
  for p in $pids; do before[$p]=$(cpu_ticks "${p##*:}"); done
  local out; out=$(/usr/bin/time -f 'CLIENT_CPU %U %S %M' "$@" 2>&1) || { echo "$out" >&2; echo "$system $workload failed" >&2; return 1; }
  local daemons=""
  for p in $pids; do
    local pid=${p##*:} name; name=${p#*:}; name=${name%%:*}
    local dt=$(( $(cpu_ticks "$pid") - ${before[$p]} ))
    daemons+="\"$name\":{\"cpuSec\":$(awk -v t="$dt" -v hz="$hz" 'BEGIN{printf "%.3f", t/hz}'),\"rssKiB\":$(rss_kib "$pid")},"
  done
  local client; client=$(echo "$out" | awk '/^CLIENT_CPU/ {printf "{\"cpuSec\":%.3f,\"maxRssKiB\":%d}", $2 + $3, $4}')
  local parsed
  if [ "$system" = ceph ]; then
    # rbd bench: "elapsed: 10  ops: 12288  ops/sec: 1206.49  bytes/sec: 4.7 MiB/s"
    parsed=$(echo "$out" | awk '/^elapsed:/ {printf "\"elapsedSec\":%s,\"ops\":%s,\"iops\":%s", $2, $4, $6}')
  else
    parsed=$(echo "$out" | grep '^{' | tail -1 | sed 's/^{//; s/}$//')
  fi
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  echo "{\"system\":\"$system\",\"workload\":\"$workload\",$parsed,\"loadAvg1\":$load,\"daemons\":{${daemons%,}},\"client\":$client}" | tee -a "$results" >&2
}

# Commands as arrays: /usr/bin/time runs programs, not shell functions.
rbdb=(rbd -c "$conf" bench rbd/bench --rbd_cache=false)
sb=(node "$repo/dist/backend/src/main.js" bench rbd/bench --json)

echo "prefilling both images ($image_size each)" >&2
want ceph && run ceph prefill "${rbdb[@]}" --io-type write --io-size 4M --io-threads 16 --io-pattern seq --io-total "$image_size"
want strata && run strata prefill "${sb[@]}" --io-type write --io-size 4M --io-threads 16 --io-pattern seq --io-total "$image_size"

# warm SYSTEM COMMAND…: an unmeasured run (its output is dropped; a failure shows in the measured run).
warm() { local system=$1; shift; [ "$warmup" = 1 ] || return 0; echo "warm-up: $system $*" >&2; "$@" >/dev/null 2>&1 || true; }

# name            io-type size threads pattern total warm-up
workloads="
randwrite-4k-qd1  write 4K 1  rand 16M  4M
randwrite-4k-qd16 write 4K 16 rand 64M  16M
randread-4k-qd1   read  4K 1  rand 32M  8M
randread-4k-qd16  read  4K 16 rand 128M 32M
seqwrite-1m-qd16  write 1M 16 seq  1G   256M
"
echo "$workloads" | while read -r name type size threads pattern total warmtotal; do
  [ -n "$name" ] || continue
  # strata bench warms up in its own process (--warmup-total): its client is JIT-compiled, and a
  # separate warm-up process would leave the measured one cold. rbd is compiled: a separate run.
  swarm=(); [ "$warmup" = 1 ] && swarm=(--warmup-total "$warmtotal")
  want ceph && warm ceph "${rbdb[@]}" --io-type "$type" --io-size "$size" --io-threads "$threads" --io-pattern "$pattern" --io-total "$warmtotal"
  want ceph && run ceph "$name" "${rbdb[@]}" --io-type "$type" --io-size "$size" --io-threads "$threads" --io-pattern "$pattern" --io-total "$total"
  want strata && run strata "$name" "${sb[@]}" --io-type "$type" --io-size "$size" --io-threads "$threads" --io-pattern "$pattern" --io-total "$total" "${swarm[@]}"
done

node "$repo/dist/scripts/bench-ceph-compare.js" "$results"
