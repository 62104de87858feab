// copy.h: the copy mechanism of copy.cc for other native files (wayland_server.cc's wl_shm
// buffers): a copy from memory another owner keeps mapped, and the SIGBUS guard for reading
// memory a client may truncate under us.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common.h"

namespace primebuf {

// ---- shared with compose.cc: surfaces as copy.cc reads them ---------------------------------
// A plane inside a mapped byte range, checked: every row of width x height lies inside it.
struct Surface {
  uint8_t* base = nullptr;  // start of the plane (byte range start + offset)
  uint64_t length = 0;      // bytes of the byte range from `base` on
  uint32_t format = 0, cpp = 0, stride = 0, width = 0, height = 0;
  const uint8_t* chroma = nullptr;  // NV12: the CbCr plane
  uint32_t chromaStride = 0;
  int syncFd = -1;  // the dma-buf behind the memory, bracketed with DMA_BUF_IOCTL_SYNC around the job
};

// A YUV source's matrix (copy.cc's YuvToArgb): 16 fraction bits.
struct YuvMatrix {
  int32_t yOffset = 0, yScale = 0, rCr = 0, gCb = 0, gCr = 0, bCb = 0;
};

// An unsigned 32-bit integer field o[key]: TypeError/RangeError naming `what.key` otherwise.
uint32_t U32Field(Napi::Env env, Napi::Object o, const char* what, const char* key);

// { data: ArrayBuffer | ArrayBufferView, offset?, format, stride, width, height, syncFd?,
// chromaOffset?, chromaStride? } checked against its memory (RangeError/TypeError naming `what`);
// `dataOut` receives the memory object, for the job to hold until it settles. `destination`
// refuses NV12.
Surface ReadSurface(Napi::Env env, Napi::Value v, const char* what, Napi::Object* dataOut, bool destination = false);

// job.yuv (an Int32Array of 6 coefficients), required for YUYV and NV12 sources.
YuvMatrix ReadYuvMatrix(Napi::Env env, Napi::Object job, const char* name);

// References to both objects, released (on the JS thread) with the last copy of the pointer.
std::shared_ptr<std::vector<Napi::ObjectReference>> KeepBoth(Napi::Object srcData, Napi::Object dstData);

// Runs body inside DMA_BUF_IOCTL_SYNC brackets (START READ on srcFd, START WRITE on dstFd, either
// may be -1), on the calling pool thread; a failure carries `syncCalls`.
PoolResult InBrackets(int srcFd, int dstFd, const std::function<PoolResult()>& body);
// The same with several read brackets (each of readFds, in order; ended in reverse).
PoolResult InBrackets(const std::vector<int>& readFds, int dstFd, const std::function<PoolResult()>& body);

// Row y of a YUYV or NV12 source, w pixels from column x (even), converted to XRGB8888 at d.
void YuvRowToXrgb(const Surface& src, uint32_t x, uint32_t y, uint32_t w, uint8_t* d, const YuvMatrix& m);

// n bytes from s to d without reading d (non-temporal stores where they pay), and the store
// fence that ends a job of them.
void StreamCopy(uint8_t* d, const uint8_t* s, size_t n);
void StreamFence();

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
