// shm: mechanism for primebuf's own wl_shm (src/wayland/shm.ts): the size of a pool's file
// (fstat: lseek would move the file offset the client shares with us), and a copy out of a
// pool's mapping, guarded against SIGBUS by copy.cc's one guard where the pool could shrink.
// Mapping the pool (mmapFd/munmapFd), F_GET_SEALS (getSeals) and UDMABUF_CREATE
// (udmabufCreate) are the existing natives of dmabuf.cc and alloc.cc.
#include <sys/stat.h>

#include <cerrno>
#include <memory>

#include "common.h"
#include "copy.h"

namespace primebuf {
namespace {

// fdSize(fd) -> bigint: st_size of the open file behind fd.
Napi::Value FdSize(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct stat st;
  if (fstat(fd, &st) != 0) ThrowErrno(info.Env(), errno, "fstat", "fd " + std::to_string(fd));
  return U64(info.Env(), static_cast<uint64_t>(st.st_size));
}

// shmPoolCopyRects(src, job) -> Promise<number>
// src: { data: ArrayBuffer (the pool's mapping), offset, format, stride, width, height,
//        guarded: boolean, what: string }
// job: { dst, rects, dx?, dy? } as for copyRects.
// copyRects from the buffer at `offset` of the pool's mapping on libuv's pool. With `guarded`,
// reads of the mapping from `offset` to its end run under copy.cc's SIGBUS guard: a pool whose
// file was truncated rejects with SystemError code 'EFAULT', syscall 'SIGBUS'. The ArrayBuffer
// is referenced until the job settles; keeping it mapped meanwhile is the caller's (Mapping.use).
Napi::Value ShmPoolCopyRects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "shmPoolCopyRects: src and job must be objects");
  Napi::Object s = info[0].As<Napi::Object>();
  Napi::Value dv = s.Get("data");
  if (!dv.IsArrayBuffer()) throw Napi::TypeError::New(env, "shmPoolCopyRects: src.data must be an ArrayBuffer");
  Napi::ArrayBuffer ab = dv.As<Napi::ArrayBuffer>();
  auto num = [&](const char* key) -> uint64_t {
    Napi::Value v = s.Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("shmPoolCopyRects: src.") + key + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env, std::string("shmPoolCopyRects: src.") + key + " must be a non-negative integer");
    return static_cast<uint64_t>(d);
  };
  uint64_t offset = num("offset");
  if (offset > ab.ByteLength())
    throw Napi::RangeError::New(env, "shmPoolCopyRects: offset " + std::to_string(offset) + " is past the pool's " +
                                         std::to_string(ab.ByteLength()) + " bytes");
  ExternalSource src;
  src.base = static_cast<const uint8_t*>(ab.Data()) + offset;
  src.length = ab.ByteLength() - offset;
  src.format = static_cast<uint32_t>(num("format"));
  src.stride = static_cast<uint32_t>(num("stride"));
  src.width = static_cast<uint32_t>(num("width"));
  src.height = static_cast<uint32_t>(num("height"));
  src.guarded = s.Get("guarded").ToBoolean();
  Napi::Value what = s.Get("what");
  src.what = what.IsString() ? what.As<Napi::String>().Utf8Value() : "wl_shm buffer";
  src.keep = std::make_shared<Napi::ObjectReference>(Napi::Persistent(ab.As<Napi::Object>()));
  return CopyRectsFrom(env, info[1].As<Napi::Object>(), std::move(src));
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("fdSize", Napi::Function::New(env, FdSize, "fdSize"));
  exports.Set("shmPoolCopyRects", Napi::Function::New(env, ShmPoolCopyRects, "shmPoolCopyRects"));
}

}  // namespace primebuf
