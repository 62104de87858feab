// alloc: not written yet (see the issue that owns this area). Registers nothing.
#include "common.h"

namespace primebuf {

void InitAlloc(Napi::Env env, Napi::Object exports) {}

}  // namespace primebuf
