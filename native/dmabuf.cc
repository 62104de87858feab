// dmabuf: not written yet (see the issue that owns this area). Registers nothing.
#include "common.h"

namespace primebuf {

void InitDmabuf(Napi::Env env, Napi::Object exports) {}

}  // namespace primebuf
