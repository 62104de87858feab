// copy.h: the copy mechanism of copy.cc for other native files (wayland_server.cc's wl_shm
// buffers): a copy from memory another owner keeps mapped, and the SIGBUS guard for reading
// memory a client may truncate under us.
#pragma once

#include <memory>

#include "common.h"

namespace primebuf {

// A copy source in memory someone else maps (a wl_shm pool). `keep` is released on the JS
// thread once the job has settled (success or failure): it is what keeps the memory mapped.
// With `guarded`, reads of [base, base + length) run under the SIGBUS guard: a fault there (the
// file behind the mapping was truncated) rejects the job with SystemError code 'EFAULT',
// syscall 'SIGBUS' instead of killing the process.
struct ExternalSource {
  const uint8_t* base = nullptr;
  uint64_t length = 0;
  uint32_t format = 0, stride = 0, width = 0, height = 0;
  bool guarded = false;
  std::shared_ptr<void> keep;
  std::string what;  // names the source in error messages ("wl_shm buffer 640x480")
};

// Copies job.rects of `src` into job.dst ({ dst, rects, dx?, dy? } as for copyRects) on libuv's
// pool. Throws RangeError/TypeError synchronously for a request that does not fit its memory.
Napi::Promise CopyRectsFrom(Napi::Env env, Napi::Object job, ExternalSource src);

// Runs fn(ctx) on the calling thread with reads of [base, base + length) guarded: returns true
// when fn ran to its end, false when such a read raised SIGBUS (fn was abandoned at that point
// with siglongjmp: it must hold no lock and own nothing that needs a destructor). A SIGBUS
// anywhere else goes to the handler installed before ours (or the default action).
bool GuardedRead(const uint8_t* base, uint64_t length, void (*fn)(void*), void* ctx);

}  // namespace primebuf
