// A read that never sleeps: preadv2(RWF_NOWAIT), served only from the page cache.
#pragma once

#include <napi.h>

namespace strata {

// preadNoWait(fd: number, buf: Uint8Array, position: number): number
// Bytes read (0 at EOF; may be short when only part of the range is cached), or a negative
// errno: -EAGAIN when the data is not in the page cache, -EOPNOTSUPP where the file system
// does not support RWF_NOWAIT. Other errors (EBADF, EIO, …) also come back as -errno, so the
// caller decides: the hot path costs no exception object.
Napi::Value pread_nowait(const Napi::CallbackInfo& info);

}  // namespace strata
