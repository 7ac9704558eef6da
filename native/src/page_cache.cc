// preadNoWait: the OSD's read path tries the page cache inline before it pays for a trip
// through libuv's thread pool (on the machines we measured, the pool trip costs ~5 futex
// calls, an eventfd wake-up and two context switches per 4 KiB read: far more than the copy).
// Linux has honoured RWF_NOWAIT for buffered reads since 4.14; io_uring would remove the pool
// for misses too, at the price of a ring per process (future work, docs/object-store.md).
#include "page_cache.h"

#include <errno.h>
#include <sys/uio.h>

#include "errno_error.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

namespace strata {

Napi::Value pread_nowait(const Napi::CallbackInfo& info) {
  Args args(info, "preadNoWait");
  Napi::Env env = info.Env();
  int fd = -1;
  uint8_t* data = nullptr;
  size_t length = 0;
  int64_t position = 0;
  if (!args.fd(0, "fd", &fd) || !args.bytes(1, "buf", &data, &length) ||
      !args.integer(2, "position", 0, kMaxSafeInteger, &position)) {
    return env.Undefined();
  }
  if (length == 0) return Napi::Number::New(env, 0);
  struct iovec iov = {data, length};
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, static_cast<off_t>(position), RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace strata
