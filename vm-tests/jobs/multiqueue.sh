# Case 1 (multiqueue verify): fio at QD1 and QD32 over both queues, with the per-queue interrupt
# counts from /proc/interrupts before and after (each virtioN-req.Q vector signals completions
# on queue Q), printed as STRATA-KV irq_before.virtioN-req.Q=... and irq_after....
irqs() { # prefix
  awk -v n="$(nproc)" -v p="$1" '/virtio[0-9]+-req\./ { s = 0; for (i = 2; i <= n + 1; i++) s += $i; print "STRATA-KV " p "." $NF "=" s }' /proc/interrupts
}
strata_kv cpus "$(nproc)"
strata_kv hw_queues "$(ls /sys/block/vda/mq | wc -l)"
irqs irq_before
strata_fio mq /tmp/multiqueue-verify.fio
irqs irq_after
