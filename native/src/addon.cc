// Init only: exports the functions and the Poller class, owns the per-env AddonData and
// registers the env teardown hook that closes live pollers.
//
// Mappings need no hook of their own: Node detaches every external ArrayBuffer at teardown and
// runs its finalizer (munmap).
#include <napi.h>

#include "addon.h"
#include "aligned.h"
#include "crc32c.h"
#include "gmac.h"
#include "mapping.h"
#include "misc.h"
#include "page_cache.h"
#include "poller.h"
#include "socket.h"

namespace strata {
namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  AddonData* data = new AddonData();
  env.SetInstanceData(data);  // deleted when the env goes away, after the teardown hook

  Napi::Array empty = Napi::Array::New(env, 0);
  Napi::Object object_ctor = env.Global().Get("Object").As<Napi::Object>();
  if (env.IsExceptionPending()) return exports;
  object_ctor.Get("freeze").As<Napi::Function>().Call(object_ctor, {empty});
  if (env.IsExceptionPending()) return exports;
  data->empty_fds = Napi::Persistent(empty);

  // Async: uv_close completes in a later loop turn, and the env must wait for it.
  if (napi_add_async_cleanup_hook(env, poller_teardown, data, nullptr) != napi_ok) {
    Napi::Error::New(env, "strata_native: cannot register the teardown hook").ThrowAsJavaScriptException();
    return exports;
  }

  exports.Set("unixListen", Napi::Function::New(env, unix_listen, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New(env, unix_connect, "unixConnect"));
  exports.Set("accept", Napi::Function::New(env, accept_conn, "accept"));
  exports.Set("socketpair", Napi::Function::New(env, socket_pair, "socketpair"));
  exports.Set("recvMsg", Napi::Function::New(env, recv_msg, "recvMsg"));
  exports.Set("sendMsg", Napi::Function::New(env, send_msg, "sendMsg"));
  exports.Set("mapShared", Napi::Function::New(env, map_shared, "mapShared"));
  exports.Set("unmap", Napi::Function::New(env, unmap, "unmap"));
  exports.Set("fence", Napi::Function::New(env, fence, "fence"));
  exports.Set("eventfd", Napi::Function::New(env, event_fd, "eventfd"));
  exports.Set("memfdCreate", Napi::Function::New(env, memfd_create_sized, "memfdCreate"));
  exports.Set("fallocate", Napi::Function::New(env, fallocate_range, "fallocate"));
  exports.Set("setMallocMmapThreshold", Napi::Function::New(env, set_malloc_mmap_threshold, "setMallocMmapThreshold"));
  exports.Set("crc32c", Napi::Function::New(env, crc32c_js, "crc32c"));
  exports.Set("crc32cBlocks", Napi::Function::New(env, crc32c_blocks, "crc32cBlocks"));
  exports.Set("alignmentOf", Napi::Function::New(env, alignment_of, "alignmentOf"));
  exports.Set("gmacKey", Napi::Function::New(env, gmac_key, "gmacKey"));
  exports.Set("gmacSign", Napi::Function::New(env, gmac_sign, "gmacSign"));
  exports.Set("gmacVerify", Napi::Function::New(env, gmac_verify, "gmacVerify"));
  exports.Set("preadNoWait", Napi::Function::New(env, pread_nowait, "preadNoWait"));
  exports.Set("Poller", Poller::define(env));
  exports.Set("READABLE", Napi::Number::New(env, UV_READABLE));
  exports.Set("WRITABLE", Napi::Number::New(env, UV_WRITABLE));
  exports.Set("DISCONNECT", Napi::Number::New(env, UV_DISCONNECT));
  return exports;
}

}  // namespace
}  // namespace strata

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return strata::init(env, exports); }

NODE_API_MODULE(strata_native, Init)
