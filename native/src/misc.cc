// fence, eventfd, memfd_create and fallocate: each one syscall Node does not offer.
#include "misc.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "errno_error.h"

namespace strata {

// fence(): void — the explicit barrier at ring protocol points (rust-vmm's fence(SeqCst) in
// needs_notification; GUIDE §2 "Memory ordering").
Napi::Value fence(const Napi::CallbackInfo& info) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return info.Env().Undefined();
}

// eventfd(initval: number, nonblock: boolean): number — Node can read and write an eventfd
// but cannot create one; tests and the test front-end need them for kick/call.
Napi::Value event_fd(const Napi::CallbackInfo& info) {
  Args args(info, "eventfd");
  Napi::Env env = info.Env();
  int64_t initval = 0;
  bool nonblock = false;
  if (!args.integer(0, "initval", 0, UINT32_MAX, &initval) || !args.boolean(1, "nonblock", false, &nonblock)) {
    return env.Undefined();
  }
  int fd = eventfd(static_cast<unsigned int>(initval), EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return Napi::Number::New(env, fd);
}

// memfdCreate(name: string, sizeBytes: number): number — guest RAM for tests, as QEMU's
// memory-backend-memfd provides it.
Napi::Value memfd_create_sized(const Napi::CallbackInfo& info) {
  Args args(info, "memfdCreate");
  Napi::Env env = info.Env();
  std::string name;
  int64_t size = 0;
  // memfd_create(2): the name is at most 249 bytes.
  if (!args.string(0, "name", 249, &name) || !args.integer(1, "sizeBytes", 0, kMaxSafeInteger, &size)) {
    return env.Undefined();
  }
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    close(fd);
    throw_errno(env, "ftruncate", err);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// fallocate(fd, mode, offsetBytes, lengthBytes): void — deallocates (punch-hole) or zeroes
// (zero-range) a range without changing the file size; it throws EOPNOTSUPP where the
// filesystem lacks the mode, so callers can fall back to writing zeros.
Napi::Value fallocate_range(const Napi::CallbackInfo& info) {
  Args args(info, "fallocate");
  Napi::Env env = info.Env();
  int fd = -1;
  std::string mode_name;
  int64_t offset = 0;
  int64_t length = 0;
  if (!args.fd(0, "fd", &fd) || !args.string(1, "mode", 16, &mode_name) ||
      !args.integer(2, "offsetBytes", 0, kMaxSafeInteger, &offset) ||
      !args.integer(3, "lengthBytes", 1, kMaxSafeInteger, &length)) {
    return env.Undefined();
  }
  int mode = 0;
  if (mode_name == "punch-hole") {
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  } else if (mode_name == "zero-range") {
    mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  } else {
    return args.range_error("mode", "'punch-hole' or 'zero-range'"), env.Undefined();
  }
  int r;
  do {
    r = fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    // errno 95 is EOPNOTSUPP in fallocate(2) and callers test for that name; libuv would
    // call the same number ENOTSUP.
    int err = errno;
    throw_errno(env, "fallocate", err, err == EOPNOTSUPP ? "EOPNOTSUPP" : nullptr);
    return env.Undefined();
  }
  return env.Undefined();
}

// setMallocMmapThreshold(bytes: number): void — mallopt(M_MMAP_THRESHOLD): allocations of at
// least `bytes` get pages of their own and give them back on free. Why (docs/object-store.md,
// "Memory"): glibc raises its threshold to the size of every large block freed (up to 32 MiB),
// after which transient buffers of 1-4 MiB land in the brk heap, which cannot shrink below its
// highest live block; an OSD's RSS then kept tens of MiB it did not use. Setting it fixes the
// threshold (no dynamic adjustment).
Napi::Value set_malloc_mmap_threshold(const Napi::CallbackInfo& info) {
  Args args(info, "setMallocMmapThreshold");
  Napi::Env env = info.Env();
  int64_t bytes = 0;
  // glibc caps M_MMAP_THRESHOLD at HEAP_MAX/2 (32 MiB on 64-bit).
  if (!args.integer(0, "bytes", 4096, 32 * 1024 * 1024, &bytes)) return env.Undefined();
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) != 1) return throw_errno(env, "mallopt", EINVAL);
  return env.Undefined();
}

}  // namespace strata
