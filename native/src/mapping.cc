// mmap(MAP_SHARED | MAP_NORESERVE) exposed as an external ArrayBuffer.
//
// Lifetime: each mapping has a small heap record { address, length, unmapped }.
//   - The ArrayBuffer's finalizer (GC, or env teardown) munmaps unless unmap() already did, then
//     frees the record. It is only a backstop (GUIDE §2 "Guest-memory lifetime").
//   - unmap() finds the record through napi_wrap on the ArrayBuffer itself (no global table),
//     removes the wrap, detaches the buffer (byteLength becomes 0, every view over it becomes
//     empty, so no JS access can reach the unmapped range), then munmaps and marks the record.
//   - A second unmap() finds no wrap and a detached buffer: a no-op.
#include "mapping.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errno_error.h"

namespace strata {
namespace {

struct Mapping {
  void* address;
  size_t length;
  bool unmapped;
};

// Node 20 builds an external ArrayBuffer through an external Buffer, whose limit is
// buffer.constants.MAX_LENGTH = 2^32. Callers split bigger regions into windows.
constexpr int64_t kMaxMapLength = int64_t{1} << 32;

void finalize_mapping(napi_env /*env*/, void* /*data*/, void* hint) {
  Mapping* mapping = static_cast<Mapping*>(hint);
  if (!mapping->unmapped) munmap(mapping->address, mapping->length);
  delete mapping;
}

}  // namespace

// mapShared(fd: number, lengthBytes: number, offsetBytes: number, writable = true): ArrayBuffer
Napi::Value map_shared(const Napi::CallbackInfo& info) {
  Args args(info, "mapShared");
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t length = 0;
  int64_t offset = 0;
  bool writable = true;
  if (!args.fd(0, "fd", &fd) || !args.integer(1, "lengthBytes", 1, kMaxMapLength, &length) ||
      !args.integer(2, "offsetBytes", 0, kMaxSafeInteger, &offset) || !args.boolean(3, "writable", true, &writable)) {
    return env.Undefined();
  }
  if (offset % sysconf(_SC_PAGESIZE) != 0) {
    return args.range_error("offsetBytes", "a multiple of the page size", static_cast<double>(offset)),
           env.Undefined();
  }
  int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* address = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED | MAP_NORESERVE, fd, offset);
  if (address == MAP_FAILED) return throw_errno(env, "mmap", errno);
  Mapping* mapping = new Mapping{address, static_cast<size_t>(length), false};
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, address, mapping->length, finalize_mapping, mapping, &buffer) != napi_ok) {
    munmap(address, mapping->length);
    delete mapping;  // no finalizer was attached
    if (!env.IsExceptionPending()) Napi::Error::New(env, "mapShared: cannot create an external ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (napi_wrap(env, buffer, mapping, nullptr, nullptr, nullptr) != napi_ok) {
    munmap(address, mapping->length);
    mapping->unmapped = true;  // the finalizer frees the record
    if (!env.IsExceptionPending()) Napi::Error::New(env, "mapShared: cannot tag the ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Value(env, buffer);
}

// unmap(buffer: ArrayBuffer): void
Napi::Value unmap(const Napi::CallbackInfo& info) {
  Args args(info, "unmap");
  Napi::Env env = info.Env();
  Napi::ArrayBuffer buffer;
  if (!args.array_buffer(0, "buffer", &buffer)) return env.Undefined();
  void* data = nullptr;
  if (napi_remove_wrap(env, buffer, &data) != napi_ok || data == nullptr) {
    bool detached = false;
    napi_is_detached_arraybuffer(env, buffer, &detached);
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    if (detached) return env.Undefined();  // already unmapped
    return args.type_error("buffer", "an ArrayBuffer returned by mapShared"), env.Undefined();
  }
  Mapping* mapping = static_cast<Mapping*>(data);
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) {
    // Keep the mapping (a live buffer must never point at unmapped memory) and its tag; the
    // finalizer still unmaps it later.
    napi_wrap(env, buffer, mapping, nullptr, nullptr, nullptr);
    if (!env.IsExceptionPending()) Napi::Error::New(env, "unmap: cannot detach the ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (munmap(mapping->address, mapping->length) < 0) return throw_errno(env, "munmap", errno);
  mapping->unmapped = true;
  return env.Undefined();
}

}  // namespace strata
