# Harness self-check: write verifiable blocks, overwrite one 4 KiB block (block 1000) behind fio's
# back with O_DIRECT, then verify. fio must fail; this job therefore ends with a nonzero rc.
strata_fio write /tmp/corrupt-write.fio
dd if=/dev/urandom of=/dev/vda bs=4k seek=1000 count=1 oflag=direct conv=notrunc 2>/dev/null
strata_step corrupted block 1000
strata_fio verify /tmp/corrupt-verify.fio
