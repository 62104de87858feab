// The addon's entry point: each native file registers its own functions.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  primebuf::InitCommon(env, exports);
  primebuf::InitFormats(env, exports);
  primebuf::InitDrm(env, exports);
  primebuf::InitDmabuf(env, exports);
  primebuf::InitAlloc(env, exports);
  primebuf::InitCopy(env, exports);
  primebuf::InitCompose(env, exports);
  primebuf::InitShm(env, exports);
  primebuf::InitV4l2(env, exports);
  primebuf::InitEgl(env, exports);
  primebuf::InitWaylandServer(env, exports);
  primebuf::InitWaylandClient(env, exports);
  primebuf::InitInput(env, exports);
  primebuf::InitSession(env, exports);
  return exports;
}

NODE_API_MODULE(primebuf, Init)
