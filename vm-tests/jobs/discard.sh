# Case 4 (discard): fill 0..24 MiB with a 4 MiB random pattern (O_DIRECT), discard 4..12 MiB
# (blkdiscard: VIRTIO_BLK_T_DISCARD), zero 16..20 MiB (blkdiscard -z: BLKZEROOUT, which uses
# VIRTIO_BLK_T_WRITE_ZEROES when offered), drop caches, then check with O_DIRECT reads that the
# discarded and zeroed ranges read as zeros and every other range still holds the pattern.
# util-linux's blkdiscard is called by full path: busybox sh prefers its own (smaller) applet.
dev=/dev/vda
MiB=1048576
q=/sys/block/vda/queue
strata_kv discard_granularity "$(cat $q/discard_granularity)"
strata_kv discard_max_bytes "$(cat $q/discard_max_bytes)"
strata_kv write_zeroes_max_bytes "$(cat $q/write_zeroes_max_bytes)"
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || strata_fail "the disk offers no discard (discard_max_bytes=0)"

dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
pat=$(sha256sum < /tmp/pat | cut -d' ' -f1)
i=0
while [ $i -lt 6 ]; do
  dd if=/tmp/pat of=$dev bs=1M seek=$((i * 4)) oflag=direct conv=notrunc 2>/dev/null
  i=$((i + 1))
done

region_is() { # first-MiB count-MiB zero|pattern
  if [ "$3" = zero ]; then
    if dd if=$dev bs=1M skip="$1" count="$2" iflag=direct 2>/dev/null | cmp -s -n $(($2 * MiB)) - /dev/zero; then
      return 0
    fi
    return 1
  fi
  [ "$(dd if=$dev bs=1M skip="$1" count="$2" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$pat" ]
}
bad=0
expect() { # first-MiB count-MiB zero|pattern
  if region_is "$1" "$2" "$3"; then
    strata_kv "region.$1-$(($1 + $2))MiB" "$3"
  else
    strata_kv "region.$1-$(($1 + $2))MiB" "NOT-$3"
    bad=$((bad + 1))
  fi
}

strata_step check the pattern before discarding
for m in 0 4 8 12 16 20; do expect $m 4 pattern; done
[ $bad = 0 ] || strata_fail "$bad regions do not hold the pattern just written"

strata_step blkdiscard 4..12 MiB
/usr/sbin/blkdiscard -o $((4 * MiB)) -l $((8 * MiB)) $dev
strata_step blkdiscard -z 16..20 MiB
/usr/sbin/blkdiscard -z -o $((16 * MiB)) -l $((4 * MiB)) $dev
blockdev --flushbufs $dev
echo 3 > /proc/sys/vm/drop_caches

expect 0 4 pattern
expect 4 4 zero
expect 8 4 zero
expect 12 4 pattern
expect 16 4 zero
expect 20 4 pattern
[ $bad = 0 ] || strata_fail "$bad regions are wrong after discard/zero-out"
strata_kv discard_ok 1
