// CRC-32C (Castagnoli, reflected 0x82F63B78) for the messenger's frame checks and the object
// store's per-block checksums (cluster/src/common/crc32c.ts).
//
// Why here and not only @node-rs/crc32: a 1 MiB write is checksummed ~9 times across client,
// primary and replicas (frame data, repop frames, 256 store blocks), and one crc32 instruction
// stream is latency-bound (3 cycles per 8 bytes). Three independent streams over adjacent
// thirds of the buffer keep the unit busy; their results are joined by "shifting" a crc over
// the following bytes' length (multiplication by x^(8n) mod P, here a table per shift length,
// built once) — Mark Adler's crc32c.c construction. crc32cBlocks computes many block crcs in
// one call (the store's 256 per MiB), saving an N-API round trip each.
// Falls back to a bytewise table when the CPU lacks SSE4.2.
#include "crc32c.h"

#include <nmmintrin.h>

#include <cstdint>
#include <cstring>

#include "errno_error.h"

namespace strata {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;
// Stream lengths: LONG for big buffers, SHORT for the tail and for 4 KiB blocks.
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

uint32_t table_byte[256];
uint32_t zeros_long[4][256];
uint32_t zeros_short[4][256];
bool have_sse42 = false;

uint32_t gf2_matrix_times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  while (vec) {
    if (vec & 1) sum ^= *mat;
    vec >>= 1;
    mat++;
  }
  return sum;
}

void gf2_matrix_square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

// The operator that appends `len` zero bytes to a (raw, non-inverted) crc.
void zeros_op(uint32_t* even, size_t len) {
  uint32_t odd[32];
  odd[0] = kPoly;  // operator for one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  gf2_matrix_square(even, odd);  // two zero bits
  gf2_matrix_square(odd, even);  // four zero bits
  // Each square doubles the length: the first squares below give one byte, then 2, 4, ...
  do {
    gf2_matrix_square(even, odd);
    len >>= 1;
    if (len == 0) return;
    gf2_matrix_square(odd, even);
    len >>= 1;
  } while (len);
  std::memcpy(even, odd, sizeof(odd));
}

void zeros_table(uint32_t zeros[][256], size_t len) {
  uint32_t op[32];
  zeros_op(op, len);
  for (uint32_t n = 0; n < 256; n++) {
    zeros[0][n] = gf2_matrix_times(op, n);
    zeros[1][n] = gf2_matrix_times(op, n << 8);
    zeros[2][n] = gf2_matrix_times(op, n << 16);
    zeros[3][n] = gf2_matrix_times(op, n << 24);
  }
}

inline uint32_t shift(const uint32_t zeros[][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

struct Init {
  Init() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ kPoly : c >> 1;
      table_byte[i] = c;
    }
    zeros_table(zeros_long, kLong);
    zeros_table(zeros_short, kShort);
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
  }
} init_once;

uint32_t crc_sw(uint32_t crc, const uint8_t* p, size_t len) {
  crc = ~crc;
  while (len--) crc = (crc >> 8) ^ table_byte[(crc ^ *p++) & 0xff];
  return ~crc;
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Three interleaved crc streams over each 3 × `block` bytes (the instruction's latency hidden),
// joined with the `zeros` table that shifts a crc over `block` zero bytes; advances next/len.
__attribute__((target("sse4.2"))) inline uint64_t three_streams(uint64_t crc0, const uint8_t*& next, size_t& len, size_t block,
                                                                const uint32_t zeros[][256]) {
  while (len >= block * 3) {
    uint64_t crc1 = 0, crc2 = 0;
    const uint8_t* end = next + block;
    do {
      crc0 = _mm_crc32_u64(crc0, load64(next));
      crc1 = _mm_crc32_u64(crc1, load64(next + block));
      crc2 = _mm_crc32_u64(crc2, load64(next + 2 * block));
      next += 8;
    } while (next < end);
    crc0 = shift(zeros, static_cast<uint32_t>(crc0)) ^ crc1;
    crc0 = shift(zeros, static_cast<uint32_t>(crc0)) ^ crc2;
    next += block * 2;
    len -= block * 3;
  }
  return crc0;
}

__attribute__((target("sse4.2"))) uint32_t crc_hw(uint32_t crc, const uint8_t* next, size_t len) {
  uint64_t crc0 = ~crc;
  while (len && (reinterpret_cast<uintptr_t>(next) & 7) != 0) {
    crc0 = _mm_crc32_u8(static_cast<uint32_t>(crc0), *next++);
    len--;
  }
  crc0 = three_streams(crc0, next, len, kLong, zeros_long);
  crc0 = three_streams(crc0, next, len, kShort, zeros_short);
  while (len >= 8) {
    crc0 = _mm_crc32_u64(crc0, load64(next));
    next += 8;
    len -= 8;
  }
  while (len) {
    crc0 = _mm_crc32_u8(static_cast<uint32_t>(crc0), *next++);
    len--;
  }
  return ~static_cast<uint32_t>(crc0);
}

inline uint32_t crc(uint32_t prev, const uint8_t* p, size_t len) {
  return have_sse42 ? crc_hw(prev, p, len) : crc_sw(prev, p, len);
}

}  // namespace

Napi::Value crc32c_js(const Napi::CallbackInfo& info) {
  Args args(info, "crc32c");
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  int64_t prev = 0;
  if (!args.bytes(0, "buf", &data, &length) || !args.integer(1, "prev", 0, UINT32_MAX, &prev)) return env.Undefined();
  return Napi::Number::New(env, crc(static_cast<uint32_t>(prev), data, length));
}

Napi::Value crc32c_blocks(const Napi::CallbackInfo& info) {
  Args args(info, "crc32cBlocks");
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  int64_t block = 0;
  if (!args.bytes(0, "buf", &data, &length) || !args.integer(1, "blockBytes", 1, UINT32_MAX, &block)) return env.Undefined();
  Napi::Value v = info[2];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    return args.type_error("out", "a Uint32Array"), env.Undefined();
  }
  Napi::Uint32Array out = v.As<Napi::Uint32Array>();
  size_t bs = static_cast<size_t>(block);
  if (length % bs != 0 || out.ElementLength() != length / bs) {
    return args.range_error("out", "one element per block of a buffer that is whole blocks"), env.Undefined();
  }
  uint32_t* o = out.Data();
  for (size_t i = 0; i < length / bs; i++) o[i] = crc(0, data + i * bs, bs);
  return env.Undefined();
}

}  // namespace strata
