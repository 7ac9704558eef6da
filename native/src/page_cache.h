// Page-cache controls Node lacks: a read that never sleeps (preadv2 RWF_NOWAIT) and
// posix_fadvise (readahead policy).
#pragma once

#include <napi.h>

namespace strata {

// preadNoWait(fd: number, buf: Uint8Array, position: number): number
// Bytes read (0 at EOF; may be short when only part of the range is cached), or a negative
// errno: -EAGAIN when the data is not in the page cache, -EOPNOTSUPP where the file system
// does not support RWF_NOWAIT. Other errors (EBADF, EIO, …) also come back as -errno, so the
// caller decides: the hot path costs no exception object.
Napi::Value pread_nowait(const Napi::CallbackInfo& info);

// fadvise(fd: number, advice: 'normal' | 'random' | 'sequential' | 'dontneed', offset: number,
//         length: number): void — posix_fadvise; throws on failure (EBADF, EINVAL).
Napi::Value fadvise(const Napi::CallbackInfo& info);

}  // namespace strata
