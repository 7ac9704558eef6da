// Shared mappings as external ArrayBuffers: JS cannot mmap.
#pragma once

#include <napi.h>

namespace strata {

// mapShared(fd: number, lengthBytes: number, offsetBytes: number, writable = true): ArrayBuffer
Napi::Value map_shared(const Napi::CallbackInfo& info);
// unmap(buffer: ArrayBuffer): void
Napi::Value unmap(const Napi::CallbackInfo& info);

}  // namespace strata
