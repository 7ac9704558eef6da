// Poller: one uv_poll_t per fd on the loop Node itself runs (napi_get_uv_event_loop).
//
// Hot path: one JS call per readiness event, with (status, events) as plain numbers. The call
// goes through MakeCallback with an async context, so Node drains nextTicks and microtasks
// right after it, as it does for its own handles.
#include "poller.h"

#include <vector>

#include "errno_error.h"

namespace strata {

Napi::Function Poller::define(Napi::Env env) {
  return DefineClass(env, "Poller",
                     {
                         InstanceMethod("start", &Poller::start),
                         InstanceMethod("stop", &Poller::stop),
                         InstanceMethod("close", &Poller::close),
                         StaticValue("READABLE", Napi::Number::New(env, UV_READABLE), napi_enumerable),
                         StaticValue("WRITABLE", Napi::Number::New(env, UV_WRITABLE), napi_enumerable),
                         StaticValue("DISCONNECT", Napi::Number::New(env, UV_DISCONNECT), napi_enumerable),
                     });
}

Poller::Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
  Args args(info, "Poller");
  Napi::Env env = info.Env();
  int fd = -1;
  Napi::Function on_events_fn;
  if (!args.fd(0, "fd", &fd) || !args.function(1, "onEvents", &on_events_fn)) return;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "Poller: no event loop").ThrowAsJavaScriptException();
    return;
  }
  PollHandle* handle = new PollHandle{};
  int r = uv_poll_init(loop, &handle->poll, fd);  // UV_EEXIST if another handle polls this fd
  if (r < 0) {
    delete handle;  // never initialized: no uv_close needed
    throw_errno(env, "uv_poll_init", -r);
    return;
  }
  handle->poll.data = handle;
  handle->data = addon_data(env);
  handle->owner = this;
  handle->data->live_polls.insert(handle);
  handle_ = handle;
  callback_ = Napi::Persistent(on_events_fn);
  context_ = std::make_unique<Napi::AsyncContext>(env, "strata.Poller");
}

Poller::~Poller() { close_handle(); }

void Poller::close_handle() {
  PollHandle* handle = handle_;
  if (handle == nullptr) return;
  handle_ = nullptr;
  handle->owner = nullptr;
  handle->data->live_polls.erase(handle);
  handle->data->closing_polls++;
  uv_poll_stop(&handle->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle->poll), on_close);
}

void Poller::set_referenced(bool referenced) {
  if (referenced == referenced_) return;
  referenced_ = referenced;
  if (referenced) {
    Ref();
  } else {
    Unref();
  }
}

// start(events: number): void
Napi::Value Poller::start(const Napi::CallbackInfo& info) {
  Args args(info, "Poller.start");
  Napi::Env env = info.Env();
  int64_t events = 0;
  if (!args.integer(0, "events", 1, UV_READABLE | UV_WRITABLE | UV_DISCONNECT, &events)) return env.Undefined();
  if (handle_ == nullptr) {
    throw_coded(env, "ERR_POLLER_CLOSED", "Poller.start: the poller is closed");
    return env.Undefined();
  }
  int r = uv_poll_start(&handle_->poll, static_cast<int>(events), on_events);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  set_referenced(true);
  return env.Undefined();
}

// stop(): void — a no-op once closed.
Napi::Value Poller::stop(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr) uv_poll_stop(&handle_->poll);
  set_referenced(false);
  return info.Env().Undefined();
}

// close(): void — idempotent; no callback fires after it returns.
Napi::Value Poller::close(const Napi::CallbackInfo& info) {
  close_handle();
  // Drop the closure now: it may reference this poller. The async context stays until the
  // destructor, because close() may run inside a MakeCallback that uses it.
  callback_.Reset();
  set_referenced(false);
  return info.Env().Undefined();
}

void Poller::on_events(uv_poll_t* poll, int status, int events) {
  Poller* self = static_cast<PollHandle*>(poll->data)->owner;
  if (self == nullptr) return;  // closed while the event was queued
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  napi_value argv[2] = {Napi::Number::New(env, status), Napi::Number::New(env, events)};
  // `this` in the callback is the Poller (napi_make_callback needs an object receiver).
  napi_status call_status =
      napi_make_callback(env, *self->context_, self->Value(), self->callback_.Value(), 2, argv, nullptr);
  // `self` may be closed now (the callback may call close()); touch only env from here on.
  if (call_status != napi_ok) {
    // A throw becomes 'uncaughtException', as from any Node event callback. Raw napi calls on
    // purpose: while a worker terminates no JS can run, and node-addon-api's Napi::Error
    // would abort the process trying to decorate the exception.
    napi_value error = nullptr;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok && error != nullptr) {
      napi_valuetype type = napi_undefined;
      if (napi_typeof(env, error, &type) == napi_ok && type != napi_undefined) napi_fatal_exception(env, error);
    }
  }
}

void Poller::on_close(uv_handle_t* uv_handle) {
  PollHandle* handle = static_cast<PollHandle*>(uv_handle->data);
  AddonData* data = handle->data;
  delete handle;
  data->closing_polls--;
  if (data->teardown != nullptr && data->closing_polls == 0) {
    napi_remove_async_cleanup_hook(data->teardown);
    data->teardown = nullptr;
  }
}

void poller_teardown(napi_async_cleanup_hook_handle hook, void* arg) {
  AddonData* data = static_cast<AddonData*>(arg);
  std::vector<PollHandle*> live(data->live_polls.begin(), data->live_polls.end());
  for (PollHandle* handle : live) handle->owner->close_handle();
  if (data->closing_polls == 0) {
    napi_remove_async_cleanup_hook(hook);
  } else {
    data->teardown = hook;  // on_close removes the hook after the last close callback
  }
}

}  // namespace strata
