// preadNoWait and fadvise.
//
// preadNoWait: the OSD's read path tries the page cache inline before it pays for a trip
// through libuv's thread pool (on the machines we measured, the pool trip costs ~5 futex
// calls, an eventfd wake-up and two context switches per 4 KiB read: far more than the copy).
// Linux has honoured RWF_NOWAIT for buffered reads since 4.14; io_uring would remove the pool
// for misses too, at the price of a ring per process (future work, docs/object-store.md).
#include "page_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>

#include <string>

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

// fadvise: an OSD's data file serves block-device reads whose size the guest already chose;
// kernel readahead on it turns each 4 KiB random-read miss into a larger disk read (perf
// showed page_cache_ra_unbounded at 5 % of an OSD under 4k random reads). 'random' turns
// readahead off for that fd; a large read is still one read of exactly its range.
Napi::Value fadvise(const Napi::CallbackInfo& info) {
  Args args(info, "fadvise");
  Napi::Env env = info.Env();
  int fd = -1;
  std::string name;
  int64_t offset = 0;
  int64_t length = 0;
  if (!args.fd(0, "fd", &fd) || !args.string(1, "advice", 16, &name) ||
      !args.integer(2, "offset", 0, kMaxSafeInteger, &offset) ||
      !args.integer(3, "length", 0, kMaxSafeInteger, &length)) {
    return env.Undefined();
  }
  int advice;
  if (name == "normal") {
    advice = POSIX_FADV_NORMAL;
  } else if (name == "random") {
    advice = POSIX_FADV_RANDOM;
  } else if (name == "sequential") {
    advice = POSIX_FADV_SEQUENTIAL;
  } else if (name == "dontneed") {
    advice = POSIX_FADV_DONTNEED;
  } else {
    return args.range_error("advice", "'normal', 'random', 'sequential' or 'dontneed'"), env.Undefined();
  }
  // posix_fadvise returns the error number instead of setting errno.
  int err = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), advice);
  if (err != 0) return throw_errno(env, "posix_fadvise", err);
  return env.Undefined();
}

}  // namespace strata
