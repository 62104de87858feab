// libdrm's own format and modifier naming, exposed so that tests can cross-check
// primebuf's TypeScript tables against the C library.
#include <xf86drm.h>

#include <cstdlib>

#include "common.h"

namespace primebuf {
namespace {

Napi::Value TakeCString(Napi::Env env, char* s) {
  if (!s) return env.Null();
  Napi::String out = Napi::String::New(env, s);
  free(s);
  return out;
}

// drmGetFormatName(fourcc) -> string | null
Napi::Value GetFormatName(const Napi::CallbackInfo& info) {
  return TakeCString(info.Env(), drmGetFormatName(ArgU32(info, 0, "format")));
}

// drmGetFormatModifierName(modifier: bigint) -> string | null
Napi::Value GetFormatModifierName(const Napi::CallbackInfo& info) {
  return TakeCString(info.Env(), drmGetFormatModifierName(ArgU64(info, 0, "modifier")));
}

// drmGetFormatModifierVendor(modifier: bigint) -> string | null
Napi::Value GetFormatModifierVendor(const Napi::CallbackInfo& info) {
  return TakeCString(info.Env(), drmGetFormatModifierVendor(ArgU64(info, 0, "modifier")));
}

}  // namespace

void InitFormats(Napi::Env env, Napi::Object exports) {
  exports.Set("drmGetFormatName", Napi::Function::New(env, GetFormatName, "drmGetFormatName"));
  exports.Set("drmGetFormatModifierName", Napi::Function::New(env, GetFormatModifierName, "drmGetFormatModifierName"));
  exports.Set("drmGetFormatModifierVendor", Napi::Function::New(env, GetFormatModifierVendor, "drmGetFormatModifierVendor"));
}

}  // namespace primebuf
