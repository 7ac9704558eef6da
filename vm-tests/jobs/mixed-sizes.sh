# Case 2 (mixed sizes verify): one fio job with bssplit 4k..1M.
strata_fio mixed /tmp/mixed-sizes-verify.fio
