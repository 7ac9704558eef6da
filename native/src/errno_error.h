// Error helpers shared by every file of the shim.
//
// 1. throw_errno(): an Error shaped like Node's SystemError ({ code, errno, syscall }), so
//    TypeScript handles native and `fs` errors alike (GUIDE §3 "Error shape").
// 2. Args: the one argument-validation family (better-sqlite3's REQUIRE_ARGUMENT_* idea).
//    Each getter either stores the value and returns true, or throws a TypeError/RangeError
//    naming the function and the argument and returns false. Callers then
//    `return env.Undefined()` at once (NAPI_DISABLE_CPP_EXCEPTIONS: no C++ exceptions).
#pragma once

#include <napi.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace strata {

// Largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

// `err` is a positive errno (or -uv error code, which is the same on Linux). `code_override`
// replaces uv_err_name(-err) for conditions that have no errno of their own ('ECTRUNC').
// Returns undefined, for `return throw_errno(...)`.
inline Napi::Value throw_errno(Napi::Env env, const char* syscall, int err, const char* code_override = nullptr,
                        const char* path = nullptr) {
  char name[64];
  const char* code = code_override != nullptr ? code_override : uv_err_name_r(-err, name, sizeof(name));
  std::string message = std::string(syscall) + " failed: " + code + " (" + std::strerror(err) + ")";
  if (path != nullptr) message += std::string(", '") + path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (path != nullptr) error.Set("path", Napi::String::New(env, path));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Same as throw_errno for errors that carry a stable `code` but no errno (ERR_POLLER_CLOSED).
inline void throw_coded(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
}

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env env() const { return info_.Env(); }

  // An integer in [min, max]: TypeError if not a number, RangeError if not a safe integer or
  // out of range.
  bool integer(size_t i, const char* name, int64_t min, int64_t max, int64_t* out) const {
    return integer_of(info_[i], name, min, max, out);
  }

  // As integer(), for a value that is not an argument itself (an array element).
  bool integer_of(Napi::Value v, const char* name, int64_t min, int64_t max, int64_t* out) const {
    if (!v.IsNumber()) return type_error(name, "a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > static_cast<double>(kMaxSafeInteger)) {
      return range_error(name, "a safe integer", d);
    }
    int64_t value = static_cast<int64_t>(d);
    if (value < min || value > max) {
      std::string want = "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
      return range_error(name, want.c_str(), d);
    }
    *out = value;
    return true;
  }

  // A file descriptor: an integer in [0, INT32_MAX].
  bool fd(size_t i, const char* name, int* out) const {
    int64_t value = 0;
    if (!integer(i, name, 0, INT32_MAX, &value)) return false;
    *out = static_cast<int>(value);
    return true;
  }

  bool boolean(size_t i, const char* name, bool default_value, bool* out) const {
    Napi::Value v = info_[i];
    if (v.IsUndefined()) {
      *out = default_value;
      return true;
    }
    if (!v.IsBoolean()) return type_error(name, "a boolean");
    *out = v.As<Napi::Boolean>().Value();
    return true;
  }

  // A string without NUL bytes (it goes to a syscall as a C string), at most max_bytes long.
  bool string(size_t i, const char* name, size_t max_bytes, std::string* out) const {
    Napi::Value v = info_[i];
    if (!v.IsString()) return type_error(name, "a string");
    *out = v.As<Napi::String>().Utf8Value();
    if (out->find('\0') != std::string::npos) return range_error(name, "a string without NUL bytes");
    if (out->size() > max_bytes) {
      std::string want = "at most " + std::to_string(max_bytes) + " bytes long";
      return range_error(name, want.c_str());
    }
    return true;
  }

  // Any Uint8Array (including a Buffer); yields its whole view.
  bool bytes(size_t i, const char* name, uint8_t** data, size_t* length) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return type_error(name, "a Uint8Array");
    }
    Napi::Uint8Array array = v.As<Napi::Uint8Array>();
    *data = array.Data();
    *length = array.ByteLength();
    return true;
  }

  bool array(size_t i, const char* name, Napi::Array* out) const {
    Napi::Value v = info_[i];
    if (!v.IsArray()) return type_error(name, "an array");
    *out = v.As<Napi::Array>();
    return true;
  }

  bool function(size_t i, const char* name, Napi::Function* out) const {
    Napi::Value v = info_[i];
    if (!v.IsFunction()) return type_error(name, "a function");
    *out = v.As<Napi::Function>();
    return true;
  }

  bool array_buffer(size_t i, const char* name, Napi::ArrayBuffer* out) const {
    Napi::Value v = info_[i];
    if (!v.IsArrayBuffer()) return type_error(name, "an ArrayBuffer");
    *out = v.As<Napi::ArrayBuffer>();
    return true;
  }

  bool type_error(const char* name, const char* want) const {
    Napi::TypeError::New(env(), prefix(name) + " must be " + want).ThrowAsJavaScriptException();
    return false;
  }

  bool range_error(const char* name, const char* want) const {
    Napi::RangeError::New(env(), prefix(name) + " must be " + want).ThrowAsJavaScriptException();
    return false;
  }

  bool range_error(const char* name, const char* want, double got) const {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", got);
    Napi::RangeError::New(env(), prefix(name) + " must be " + want + ", got " + buf).ThrowAsJavaScriptException();
    return false;
  }

 private:
  std::string prefix(const char* name) const { return std::string(fn_) + ": argument '" + name + "'"; }

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

}  // namespace strata
