#!/usr/bin/env bash
# The README's first command. On a fresh Debian machine (as root) it installs what is
# missing, builds, and starts the embedded default: a disk served over vhost-user-blk on a
# Unix socket, then prints the QEMU command line and the libvirt XML to attach it.
#
#   bash scripts/quickstart.sh                 # start (idempotent), print how to attach
#   bash scripts/quickstart.sh --boot-guest    # …and boot a small guest that runs fio on it
#   bash scripts/quickstart.sh stop            # stop everything it started
#
# State lives in $STRATA_HOME (default /var/lib/strata/quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
home=${STRATA_HOME:-/var/lib/strata/quickstart}
sock=$home/vm1-disk0.sock
disk=$home/vm1-disk0.raw
size=${STRATA_DISK_SIZE:-1G}
pidfile=$home/vhost.pid
log=$home/vhost.log

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "strata: stopped the vhost daemon (pid $(cat "$pidfile"))"
  else
    echo "strata: nothing running"
  fi
  rm -f "$pidfile"
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
if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
  rm -f "$sock"
  nohup node "$repo/dist/backend/src/main.js" vhost --socket-path "$sock" --file "$disk" --size "$size" \
    --num-queues 4 --serial vm1-disk0 >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "strata: the daemon did not start; see $log" >&2; tail -5 "$log" >&2; exit 1; }
fi
echo "strata: serving $disk ($size) on $sock (pid $(cat "$pidfile"), log $log)"
cat <<MSG

Attach it to a guest with QEMU (guest RAM must be shared memfd memory):

  qemu-system-x86_64 -machine q35,accel=kvm:tcg -m 1G -smp 2 \\
    -object memory-backend-memfd,id=mem0,size=1G,share=on -numa node,memdev=mem0 \\
    -chardev socket,id=vub0,path=$sock,reconnect=1 \\
    -device vhost-user-blk-pci,chardev=vub0,num-queues=2,bootindex=1 \\
    ... your boot disk or kernel ...

or with libvirt (domain XML fragments):

  <memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>
  <devices>
    <disk type='vhostuser' device='disk'>
      <driver name='qemu' type='raw' queues='2'/>
      <source type='unix' path='$sock'>
        <reconnect enabled='yes' timeout='1'/>
      </source>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>

Stop it with: bash scripts/quickstart.sh stop
MSG
if [ "$boot" = 1 ]; then
  echo
  echo "strata: booting a test guest (TCG unless KVM works here) that runs fio on the disk…"
  node "$repo/dist/scripts/quickstart-guest.js" --socket "$sock"
fi
