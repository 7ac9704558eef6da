// Page-aligned memory for O_DIRECT I/O: JS cannot ask V8 for an aligned ArrayBuffer.
#pragma once

#include <napi.h>

namespace strata {

// allocAligned(lengthBytes: number): ArrayBuffer — 4096-aligned, uninitialised, freed by its finalizer
Napi::Value alloc_aligned(const Napi::CallbackInfo& info);
// alignmentOf(view: Uint8Array): number — the view's start address modulo 4096
Napi::Value alignment_of(const Napi::CallbackInfo& info);

}  // namespace strata
