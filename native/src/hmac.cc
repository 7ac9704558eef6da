// HMAC-SHA256 over (u64le seq ‖ parts…) with a prepared key. Why native: node:crypto's
// createHmac builds a KeyObject-backed context per call (≈3 µs before hashing anything, ≈5.4 µs
// for a 4 KiB frame here), and every frame of an authenticated session is signed once and
// verified once. Here a call copies two 112-byte SHA-256 states and hashes: no allocation.
// SHA-256 itself is the OpenSSL inside Node (its symbols are exported to addons; SHA-NI /
// AVX2 code paths), so the digest is the same as node:crypto's — tested against it.
#define OPENSSL_SUPPRESS_DEPRECATED 1  // SHA256_Init & co. are deprecated in 3.0, not removed
#include "hmac.h"

#include <openssl/sha.h>

#include <cstdint>
#include <cstring>

#include "errno_error.h"

namespace strata {
namespace {

constexpr size_t kBlock = 64;
constexpr size_t kDigest = 32;

struct PadStates {
  SHA256_CTX inner;  // after hashing key ^ ipad
  SHA256_CTX outer;  // after hashing key ^ opad
};

bool state_of(const Args& args, size_t i, PadStates** out) {
  Napi::ArrayBuffer ab;
  if (!args.array_buffer(i, "state", &ab)) return false;
  if (ab.ByteLength() != sizeof(PadStates)) return args.range_error("state", "a buffer made by hmacKey");
  *out = static_cast<PadStates*>(ab.Data());
  return true;
}

// Computes the full 32-byte MAC of (seq, parts) into `mac`; false (exception pending) on bad
// arguments.
bool compute(const Napi::CallbackInfo& info, const char* fn, uint8_t mac[kDigest]) {
  Args args(info, fn);
  PadStates* st = nullptr;
  int64_t seq = 0;
  Napi::Array parts;
  if (!state_of(args, 0, &st) || !args.integer(1, "seq", 0, kMaxSafeInteger, &seq) || !args.array(2, "parts", &parts)) {
    return false;
  }
  SHA256_CTX ctx = st->inner;
  uint8_t seq_le[8];
  for (int b = 0; b < 8; b++) seq_le[b] = static_cast<uint8_t>(static_cast<uint64_t>(seq) >> (8 * b));
  SHA256_Update(&ctx, seq_le, sizeof(seq_le));
  uint32_t n = parts.Length();
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = parts.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return args.type_error("parts", "an array of Uint8Array");
    }
    Napi::Uint8Array part = v.As<Napi::Uint8Array>();
    if (part.ByteLength() > 0) SHA256_Update(&ctx, part.Data(), part.ByteLength());
  }
  uint8_t inner[kDigest];
  SHA256_Final(inner, &ctx);
  ctx = st->outer;
  SHA256_Update(&ctx, inner, sizeof(inner));
  SHA256_Final(mac, &ctx);
  return true;
}

}  // namespace

Napi::Value hmac_key(const Napi::CallbackInfo& info) {
  Args args(info, "hmacKey");
  Napi::Env env = info.Env();
  uint8_t* key = nullptr;
  size_t key_len = 0;
  if (!args.bytes(0, "key", &key, &key_len)) return env.Undefined();
  uint8_t block[kBlock] = {0};
  if (key_len > kBlock) {
    SHA256(key, key_len, block);  // RFC 2104: a key longer than a block is hashed first
  } else if (key_len > 0) {
    std::memcpy(block, key, key_len);
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, sizeof(PadStates));
  PadStates* st = static_cast<PadStates*>(ab.Data());
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; i++) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&st->inner);
  SHA256_Update(&st->inner, pad, kBlock);
  for (size_t i = 0; i < kBlock; i++) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&st->outer);
  SHA256_Update(&st->outer, pad, kBlock);
  return ab;
}

namespace {

// MAC of the arguments and the trailing 1..32-byte buffer (argument 3); false when an argument
// is bad (exception pending).
bool mac_and_tail(const Napi::CallbackInfo& info, const char* fn, const char* tail_name, uint8_t mac[kDigest],
                  uint8_t** tail, size_t* tail_len) {
  if (!compute(info, fn, mac)) return false;
  Args args(info, fn);
  if (!args.bytes(3, tail_name, tail, tail_len)) return false;
  if (*tail_len == 0 || *tail_len > kDigest) return args.range_error(tail_name, "1 to 32 bytes long");
  return true;
}

}  // namespace

Napi::Value hmac_sign(const Napi::CallbackInfo& info) {
  uint8_t mac[kDigest];
  uint8_t* out = nullptr;
  size_t len = 0;
  if (mac_and_tail(info, "hmacSign", "out", mac, &out, &len)) std::memcpy(out, mac, len);
  return info.Env().Undefined();
}

Napi::Value hmac_verify(const Napi::CallbackInfo& info) {
  uint8_t mac[kDigest];
  uint8_t* expected = nullptr;
  size_t len = 0;
  if (!mac_and_tail(info, "hmacVerify", "expected", mac, &expected, &len)) return info.Env().Undefined();
  // Constant time in the contents: every byte is compared whatever the first difference.
  uint8_t diff = 0;
  for (size_t i = 0; i < len; i++) diff |= static_cast<uint8_t>(mac[i] ^ expected[i]);
  return Napi::Boolean::New(info.Env(), diff == 0);
}

}  // namespace strata
