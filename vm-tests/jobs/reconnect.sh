# Reconnect case (kill -9 / SIGTERM of the back-end during fio verify). Environment from the host:
#   WRITE_SECONDS   how long the write phase should last at the calibrated rate
#   REGION_MIB      region per fio process (two processes; the disk holds 2 x REGION_MIB)
#   MIN_MIB         lower bound of the size per process (the calibration runs on a shared
#                   host and can come out low; a short write phase would end before the restarts)
# 1. calibrates: 4 s of the same 4 KiB QD32 random writes over both queues, no verify;
# 2. sizes the verified run so that its write phase lasts about WRITE_SECONDS (within
#    MIN_MIB..REGION_MIB per process), prints STRATA-STEP fio-start (the host's clock for the restarts starts here) and
#    runs reconnect-verify.fio (writes, then a full crc32c read-back);
# 3. scans the per-I/O completion logs for gaps >= 100 ms (STRATA-KV gap.<job>.<n>=start,end,
#    dir_before,dir_after in msec since the job's start) and the largest write latency (fio's
#    latency of the verify-phase reads is not a submit-to-complete time, so it is left out);
# 4. fails if the kernel logged any block-layer error.
strata_kv cpus "$(nproc)"
strata_kv hw_queues "$(ls /sys/block/vda/mq | wc -l)"
fio --name=cal --filename=/dev/vda --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
  --iodepth=32 --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
  --offset_increment="${REGION_MIB}m" --size="${REGION_MIB}m" --time_based --runtime=4 \
  --group_reporting --minimal > /tmp/cal.txt 2>/dev/null
iops=$(cut -d';' -f49 /tmp/cal.txt | head -n 1)
strata_kv calibration_write_iops "$iops"
size_mib=$(awk -v i="$iops" -v s="$WRITE_SECONDS" -v r="$REGION_MIB" -v mn="$MIN_MIB" 'BEGIN {
  m = int(i / 2 * s * 4096 / 1048576) + 1; if (m < mn) m = mn; if (m > r) m = r; print m }')
strata_kv size_mib_per_job "$size_mib"
export SIZE="${size_mib}m" REGION="${REGION_MIB}m"
strata_step fio-start
rc=0
strata_fio verify /tmp/reconnect-verify.fio || rc=$?
strata_step fio-end
for f in /tmp/probe_lat.*.log; do
  [ -f "$f" ] || continue
  j=${f#/tmp/probe_lat.}; j=${j%.log}
  awk -F', *' -v j="$j" '
    { t = $1 + 0
      if (NR > 1 && t - prev >= 100) { n++; print "STRATA-KV gap." j "." n "=" prev "," t "," pdir "," $3 }
      if ($3 == 1 && $2 + 0 > maxlat) maxlat = $2 + 0
      prev = t; pdir = $3 }
    END { print "STRATA-KV ios." j "=" NR; print "STRATA-KV max_write_lat_ms." j "=" int(maxlat / 1000000); print "STRATA-KV last_ms." j "=" prev }' "$f"
done
if dmesg | grep -iE 'I/O error|blk_update_request|Buffer I/O|critical (medium|target)|virtio_blk.*(error|fail)' > /tmp/errs; then
  cat /tmp/errs
  strata_fail "the guest kernel logged block I/O errors"
fi
strata_kv dmesg_io_errors 0
[ "$rc" = 0 ] || strata_fail "fio exited $rc"
