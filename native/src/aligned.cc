// Page-aligned buffers for the object store's O_DIRECT data writes (docs/object-store.md,
// "Data I/O"). O_DIRECT needs the buffer address, the file offset and the length aligned to
// the device's logical block (4096 covers every device we run on); V8's ArrayBuffers are
// malloc'd with 16-byte alignment only.
//
// Lifetime: posix_memalign'd memory handed to V8 as an external ArrayBuffer; its finalizer
// frees it. The size is reported with napi_adjust_external_memory (and taken back in the
// finalizer) so V8's GC heuristics see it exactly as they see an ordinary ArrayBuffer's
// backing store: a burst of writes cannot grow the process unseen.
#include "aligned.h"

#include <stdlib.h>

#include <cstdint>

#include "errno_error.h"

namespace strata {
namespace {

constexpr size_t kAlign = 4096;
// Same limit as mapShared: Node 20 builds an external ArrayBuffer through an external Buffer.
constexpr int64_t kMaxAlignedLength = int64_t{1} << 32;

void finalize_aligned(napi_env env, void* data, void* hint) {
  int64_t ignored = 0;
  napi_adjust_external_memory(env, -static_cast<int64_t>(reinterpret_cast<uintptr_t>(hint)), &ignored);
  free(data);
}

}  // namespace

Napi::Value alloc_aligned(const Napi::CallbackInfo& info) {
  Args args(info, "allocAligned");
  Napi::Env env = info.Env();
  int64_t length = 0;
  if (!args.integer(0, "lengthBytes", 1, kMaxAlignedLength, &length)) return env.Undefined();
  void* address = nullptr;
  int err = posix_memalign(&address, kAlign, static_cast<size_t>(length));
  if (err != 0) return throw_errno(env, "posix_memalign", err);
  napi_value buffer = nullptr;
  // The hint carries the length for the finalizer's external-memory adjustment.
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(length));
  if (napi_create_external_arraybuffer(env, address, static_cast<size_t>(length), finalize_aligned, hint, &buffer) != napi_ok) {
    free(address);  // no finalizer was attached
    if (!env.IsExceptionPending()) Napi::Error::New(env, "allocAligned: cannot create an external ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t ignored = 0;
  napi_adjust_external_memory(env, length, &ignored);
  return Napi::Value(env, buffer);
}

Napi::Value alignment_of(const Napi::CallbackInfo& info) {
  Args args(info, "alignmentOf");
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!args.bytes(0, "view", &data, &length)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(data) % kAlign));
}

}  // namespace strata
