// CRC-32C with the SSE4.2 crc32 instruction, three streams interleaved.
#pragma once

#include <napi.h>

namespace strata {

// crc32c(buf: Uint8Array, prev: number): number
Napi::Value crc32c_js(const Napi::CallbackInfo& info);
// crc32cBlocks(buf: Uint8Array, blockBytes: number, out: Uint32Array): void
Napi::Value crc32c_blocks(const Napi::CallbackInfo& info);

}  // namespace strata
