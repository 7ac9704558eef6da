// GMAC (AES-GCM over additional data only) for the cluster messenger's per-frame signatures:
// one prepared AES-GCM context per session direction, a 96-bit nonce from the frame's sequence
// number. See cluster/src/auth/frame-signer.ts and docs/cluster-protocol.md §5.
#pragma once

#include <napi.h>

namespace strata {

// gmacKey(key: Uint8Array /* 16 or 32 bytes */): object — the prepared key (opaque).
Napi::Value gmac_key(const Napi::CallbackInfo& info);
// gmacSign(key, seq: number, parts: Uint8Array[], out: Uint8Array /* 1..16 bytes */): void
Napi::Value gmac_sign(const Napi::CallbackInfo& info);
// gmacVerify(key, seq: number, parts: Uint8Array[], expected: Uint8Array /* 1..16 */): boolean
Napi::Value gmac_verify(const Napi::CallbackInfo& info);

}  // namespace strata
