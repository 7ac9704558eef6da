// Buffer alignment for O_DIRECT I/O: JS cannot see a buffer's address.
#pragma once

#include <napi.h>

namespace strata {

// alignmentOf(view: Uint8Array): number — the view's start address modulo 4096
Napi::Value alignment_of(const Napi::CallbackInfo& info);

}  // namespace strata
