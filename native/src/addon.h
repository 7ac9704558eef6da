// Per-environment state of the addon (napi instance data), shared by socket.cc and poller.cc.
#pragma once

#include <napi.h>

#include <unordered_set>

namespace strata {

struct PollHandle;

struct AddonData {
  // recvMsg's `fds` when none arrived: one frozen empty array, so the common case allocates
  // only the result object.
  Napi::Reference<Napi::Array> empty_fds;
  // Poll handles not yet passed to uv_close; the env cleanup hook closes them.
  std::unordered_set<PollHandle*> live_polls;
  // Handles passed to uv_close whose close callback has not run yet.
  size_t closing_polls = 0;
  // Set while the async env cleanup hook waits for the close callbacks.
  napi_async_cleanup_hook_handle teardown = nullptr;
};

inline AddonData* addon_data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace strata
