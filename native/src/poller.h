// Readiness polling of an arbitrary fd (eventfd, raw unix socket) on Node's own loop: Node
// exposes no poll on such fds.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "addon.h"

namespace strata {

class Poller;

// The uv_poll_t lives apart from the Poller so it can outlive it until uv_close's callback:
// freeing a handle before that callback is a use-after-free (GUIDE §3 "Close order").
struct PollHandle {
  uv_poll_t poll;
  AddonData* data;
  Poller* owner;  // nullptr once closed: a late event is then dropped
};

// new Poller(fd: number, onEvents: (status: number, events: number) => void)
//   start(events: number): void;  stop(): void;  close(): void
//   Poller.READABLE = 1, Poller.WRITABLE = 2, Poller.DISCONNECT = 4
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit Poller(const Napi::CallbackInfo& info);
  ~Poller() override;

  // uv_poll_stop + uv_close; the handle is freed in the close callback. Idempotent.
  void close_handle();

 private:
  Napi::Value start(const Napi::CallbackInfo& info);
  Napi::Value stop(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  void set_referenced(bool referenced);

  static void on_events(uv_poll_t* poll, int status, int events);
  static void on_close(uv_handle_t* handle);

  PollHandle* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  bool referenced_ = false;  // a started poller keeps its JS object alive, like Node's handles
};

// Registered once per env by Init: closes every live poller at env teardown and holds the
// teardown until their close callbacks ran.
void poller_teardown(napi_async_cleanup_hook_handle hook, void* data);

}  // namespace strata
