// Shared glue for every native file: typed errors and small helpers.
// Mechanism only: no policy decisions live in native/.
#pragma once

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace primebuf {

// Throws the TypeScript SystemError class (registered by src/native.ts through
// setErrorClasses) with code ('EINVAL'), errno, syscall ('DRM_IOCTL_MODE_ADDFB2') and a
// message that names the object. Falls back to a plain Error with the same properties
// before registration.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

// Creates (without throwing) the same error object, for async completions.
Napi::Error MakeErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

// The errno name ('EINVAL') for a number, or 'E<number>' when unknown.
const char* ErrnoName(int err);

// Argument helpers: throw TypeError with the argument's name on a wrong type.
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name);
int32_t ArgI32(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name);  // BigInt or safe Number
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);

Napi::BigInt U64(Napi::Env env, uint64_t v);

// Blocking work off the JS thread: the one way the addon runs a syscall that may wait (fence
// waits inside DMA_BUF_IOCTL_SYNC, copies, poll with a timeout) on libuv's thread pool.
// `work` runs on a pool thread and must not touch N-API; it returns a PoolResult (err 0 for
// success, else an errno with the syscall and a detail naming the object). On the JS thread
// the promise then rejects with the same typed SystemError ThrowErrno makes, or resolves with
// `done(env)` (undefined when `done` is empty; an exception thrown by `done` rejects).
// The caller keeps every fd and buffer `work` uses alive until the promise settles: that
// is policy, and lives in TypeScript.
struct PoolResult {
  int err = 0;
  const char* syscall = "";
  std::string detail;
  // numeric properties set on the rejection's error object (what a job did before it failed)
  std::vector<std::pair<const char*, double>> props = {};
};
using PoolWork = std::function<PoolResult()>;
using PoolDone = std::function<Napi::Value(Napi::Env)>;
Napi::Promise RunOnPool(Napi::Env env, const char* name, PoolWork work, PoolDone done = nullptr);

// DMA_BUF_IOCTL_SYNC on a dma-buf fd with DMA_BUF_SYNC_* flags (EINTR/EAGAIN retried): 0, or -1
// with errno. Blocks in START until the buffer's fences allow the access: pool threads only.
int DmabufSyncIoctl(int fd, uint64_t flags);

// Every native file registers its functions on the exports object through one of these.
void InitCommon(Napi::Env env, Napi::Object exports);
void InitFormats(Napi::Env env, Napi::Object exports);
void InitDrm(Napi::Env env, Napi::Object exports);
void InitDmabuf(Napi::Env env, Napi::Object exports);
void InitAlloc(Napi::Env env, Napi::Object exports);
void InitCopy(Napi::Env env, Napi::Object exports);
void InitCompose(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);
void InitV4l2(Napi::Env env, Napi::Object exports);
void InitEgl(Napi::Env env, Napi::Object exports);
void InitWaylandServer(Napi::Env env, Napi::Object exports);
void InitWaylandClient(Napi::Env env, Napi::Object exports);
void InitInput(Napi::Env env, Napi::Object exports);
void InitSession(Napi::Env env, Napi::Object exports);

}  // namespace primebuf
