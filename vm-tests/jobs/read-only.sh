# Case 5 (read-only disk): the guest must see /sys/block/vda/ro = 1, reads must work (the host
# wrote a pattern to the first 4 MiB; the harness compares its checksum), and a write must fail
# (buffered with fsync, and O_DIRECT) without changing the data.
dev=/dev/vda
ro=$(cat /sys/block/vda/ro)
strata_kv ro "$ro"
[ "$ro" = 1 ] || strata_fail "/sys/block/vda/ro is $ro, expected 1"
sum() { dd if=$dev bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
before=$(sum)
strata_kv sha_before "$before"

rc=0
dd if=/dev/urandom of=$dev bs=4k count=1 conv=notrunc,fsync 2>/tmp/dd.err || rc=$?
strata_kv write_rc "$rc"
strata_kv write_err "$(tr '\n' ' ' < /tmp/dd.err)"
[ "$rc" != 0 ] || strata_fail "a buffered write to the read-only disk succeeded"
rc=0
dd if=/dev/urandom of=$dev bs=4k count=1 oflag=direct conv=notrunc 2>/tmp/dd.err || rc=$?
strata_kv direct_write_rc "$rc"
[ "$rc" != 0 ] || strata_fail "an O_DIRECT write to the read-only disk succeeded"

blockdev --flushbufs $dev 2>/dev/null || true
echo 3 > /proc/sys/vm/drop_caches
after=$(sum)
strata_kv sha_after "$after"
[ "$before" = "$after" ] || strata_fail "the read-only disk's content changed"
strata_kv ro_ok 1
