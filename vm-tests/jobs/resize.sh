# Online-resize case. The host grows the disk from 256 MiB to 512 MiB while the guest runs.
# 1. prints the size (512-byte sectors), writes and verifies a pattern in the first 32 MiB and
#    records its sha256 (STRATA-KV);
# 2. prints STRATA-STEP resize-wanted: the host then POSTs /resize to the daemon's control
#    socket; the guest polls /sys/block/vda/size for up to 30 s (no reboot, no rescan);
# 3. checks the new size, writes and verifies the new space (256..512 MiB) with fio, and
#    re-verifies the original pattern (fio --verify_only and the sha256).
pattern_sha256() { # O_DIRECT read of the first 32 MiB (no page cache), failures fail the job
  dd if=/dev/vda of=/tmp/pattern.bin bs=1M count=32 iflag=direct 2>/dev/null
  sha256sum /tmp/pattern.bin | cut -d' ' -f1
  rm -f /tmp/pattern.bin
}
before=$(cat /sys/block/vda/size)
strata_kv sectors_before "$before"
strata_fio pattern /tmp/resize-pattern.fio
sum_before=$(pattern_sha256)
[ ${#sum_before} = 64 ] || strata_fail "could not read back the pattern"
strata_kv pattern_sha256_before "$sum_before"
strata_step resize-wanted
i=0
while [ "$(cat /sys/block/vda/size)" = "$before" ]; do
  i=$((i + 1))
  [ $i -le 300 ] || strata_fail "/sys/block/vda/size still $before sectors 30 s after resize-wanted"
  sleep 0.1
done
strata_kv resize_seen_after_ms $((i * 100))
after=$(cat /sys/block/vda/size)
strata_kv sectors_after "$after"
strata_kv blockdev_bytes_after "$(blockdev --getsize64 /dev/vda)"
dmesg | grep -i 'vda' | tail -n 5 | while read -r l; do echo "dmesg: $l"; done
[ "$after" = 1048576 ] || strata_fail "expected 1048576 sectors (512 MiB) after the resize, got $after"
strata_fio newspace /tmp/resize-newspace.fio
strata_fio pattern-again /tmp/resize-pattern.fio --verify_only=1
sum_after=$(pattern_sha256)
strata_kv pattern_sha256_after "$sum_after"
[ "$sum_after" = "$sum_before" ] || strata_fail "the first 32 MiB changed across the resize"
