// HMAC-SHA256 for the cluster messenger's per-frame signatures, with the key's inner and outer
// pad states computed once per session direction (RFC 2104 §4 "precomputed" form).
#pragma once

#include <napi.h>

namespace strata {

// hmacKey(key: Uint8Array): ArrayBuffer — the prepared key (the two SHA-256 pad states).
Napi::Value hmac_key(const Napi::CallbackInfo& info);
// hmacSign(state: ArrayBuffer, seq: number, parts: Uint8Array[], out: Uint8Array): void
Napi::Value hmac_sign(const Napi::CallbackInfo& info);
// hmacVerify(state: ArrayBuffer, seq: number, parts: Uint8Array[], expected: Uint8Array): boolean
Napi::Value hmac_verify(const Napi::CallbackInfo& info);

}  // namespace strata
