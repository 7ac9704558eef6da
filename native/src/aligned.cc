// alignmentOf: where a view starts relative to a 4096 boundary. The object store's O_DIRECT
// data writes (docs/object-store.md, "Data I/O") need the buffer address, the file offset and
// the length aligned to the device's logical block (4096 covers every device we run on); JS
// cannot see an address, so cluster/src/common/aligned.ts allocates 4095 spare bytes and uses
// this to find the aligned start inside them.
#include "aligned.h"

#include <cstdint>

#include "errno_error.h"

namespace strata {

Napi::Value alignment_of(const Napi::CallbackInfo& info) {
  Args args(info, "alignmentOf");
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!args.bytes(0, "view", &data, &length)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(data) % 4096));
}

}  // namespace strata
