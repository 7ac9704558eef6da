# Case 3 (ext4 integrity): mkfs.ext4, mount, write random files, checksum them, unmount, e2fsck -fn,
# drop caches, remount and compare checksums; then delete half the files, fstrim the mounted fs
# (discard through the filesystem), unmount, e2fsck -fn again and compare the remaining files.
dev=/dev/vda
mnt=/mnt/t
mkdir -p $mnt

strata_step mkfs.ext4
mkfs.ext4 -q -F "$dev"
mount -t ext4 "$dev" $mnt

strata_step write files
i=1
for mb in 1 3 8 16; do
  dd if=/dev/urandom of=$mnt/big$i bs=1M count=$mb 2>/dev/null
  i=$((i + 1))
done
mkdir $mnt/small
n=0
while [ $n -lt 200 ]; do
  dd if=/dev/urandom of=$mnt/small/f$n bs=$(( (n % 16 + 1) * 1024 )) count=1 2>/dev/null
  n=$((n + 1))
done
sync
(cd $mnt && find . -type f | sort | xargs sha256sum) > /tmp/sums
strata_kv files "$(wc -l < /tmp/sums)"
umount $mnt

flush_caches() {
  blockdev --flushbufs "$dev"
  echo 3 > /proc/sys/vm/drop_caches
}
check_sums() { # sums-file kv-key
  if ! (cd $mnt && sha256sum -c "$1") > /tmp/check 2>&1; then
    grep -v ': OK$' /tmp/check | head -20
    strata_fail "checksum mismatch after remount ($(grep -vc ': OK$' /tmp/check) files)"
  fi
  strata_kv "$2" "$(grep -c ': OK$' /tmp/check)"
}

flush_caches
strata_step e2fsck
e2fsck -fn "$dev" || strata_fail "e2fsck -fn reported problems (rc=$?)"

strata_step remount and compare
mount -t ext4 -o ro "$dev" $mnt
check_sums /tmp/sums verified
umount $mnt

strata_step delete half, fstrim
mount -t ext4 "$dev" $mnt
rm -f $mnt/big2 $mnt/big4
n=0
while [ $n -lt 200 ]; do rm -f $mnt/small/f$n; n=$((n + 2)); done
/usr/sbin/fstrim -v $mnt
sync
grep -v -e '/big2$' -e '/big4$' -e '/small/f[0-9]*[02468]$' /tmp/sums > /tmp/sums2
umount $mnt
flush_caches
e2fsck -fn "$dev" || strata_fail "e2fsck -fn after fstrim reported problems (rc=$?)"
mount -t ext4 -o ro "$dev" $mnt
check_sums /tmp/sums2 verified_after_trim
umount $mnt
strata_kv fs_ok 1
