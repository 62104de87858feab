// dmabuf: operations on dma-buf and sync_file fds. Mechanism only: who owns the fds, when to
// sync and how to wait is decided in src/dmabuf.
#include <linux/dma-buf.h>
#include <linux/sync_file.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

// vgem's fence ioctls, from the kernel's include/uapi/drm/vgem_drm.h (Debian 12's libdrm headers
// do not ship it). Test-only: they give tests real pending fences on a vgem buffer.
struct primebuf_vgem_fence_attach {
  __u32 handle;
  __u32 flags;  // VGEM_FENCE_WRITE
  __u32 out_fence;
  __u32 pad;
};
struct primebuf_vgem_fence_signal {
  __u32 fence;
  __u32 flags;
};
#define PRIMEBUF_VGEM_FENCE_WRITE 0x1
#define PRIMEBUF_IOCTL_VGEM_FENCE_ATTACH DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct primebuf_vgem_fence_attach)
#define PRIMEBUF_IOCTL_VGEM_FENCE_SIGNAL DRM_IOW(DRM_COMMAND_BASE + 0x2, struct primebuf_vgem_fence_signal)

namespace primebuf {
namespace {

std::string FdName(const char* what, int fd) { return std::string(what) + " fd " + std::to_string(fd); }

int Ioctl(int fd, unsigned long req, void* arg) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc == -1 && (errno == EINTR || errno == EAGAIN));
  return rc;
}

// dmabufSize(fd) -> bigint: lseek(fd, 0, SEEK_END), then back to 0.
Napi::Value Size(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) ThrowErrno(info.Env(), errno, "lseek(SEEK_END)", FdName("dma-buf", fd));
  lseek(fd, 0, SEEK_SET);
  return U64(info.Env(), static_cast<uint64_t>(end));
}

// dmabufSync(fd, flags): DMA_BUF_IOCTL_SYNC with DMA_BUF_SYNC_{START,END} | {READ,WRITE,RW}.
Napi::Value Sync(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t flags = ArgU32(info, 1, "flags");
  if (DmabufSyncIoctl(fd, flags) != 0)
    ThrowErrno(info.Env(), errno, "DMA_BUF_IOCTL_SYNC", FdName("dma-buf", fd) + " flags " + std::to_string(flags));
  return info.Env().Undefined();
}

// dmabufSyncAsync(fd, flags) -> Promise<void>: the same ioctl on libuv's thread pool. START
// waits for the buffer's fences in the kernel; this keeps that wait off the JS thread.
Napi::Value SyncAsync(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t flags = ArgU32(info, 1, "flags");
  return RunOnPool(info.Env(), "primebuf.dmabufSync", [fd, flags]() {
    if (DmabufSyncIoctl(fd, flags) != 0)
      return PoolResult{errno, "DMA_BUF_IOCTL_SYNC", FdName("dma-buf", fd) + " flags " + std::to_string(flags)};
    return PoolResult{};
  });
}

// dmabufExportSyncFile(fd, flags) -> sync_file fd (flags DMA_BUF_SYNC_READ / WRITE / RW)
Napi::Value ExportSyncFile(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct dma_buf_export_sync_file s = {};
  s.flags = ArgU32(info, 1, "flags");
  s.fd = -1;
  if (Ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &s) != 0)
    ThrowErrno(info.Env(), errno, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE", FdName("dma-buf", fd));
  return Napi::Number::New(info.Env(), s.fd);
}

// dmabufWritesDone(fd) -> whether every write fence of the dma-buf has signaled: poll() with
// timeout 0 for POLLIN (dma_buf_poll: readable once the writers completed). No fd is made.
Napi::Value WritesDone(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct pollfd p = {};
  p.fd = fd;
  p.events = POLLIN;
  int rc;
  do rc = poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(info.Env(), errno, "poll", FdName("dma-buf", fd));
  if (p.revents & POLLNVAL) ThrowErrno(info.Env(), EBADF, "poll", FdName("dma-buf", fd));
  return Napi::Boolean::New(info.Env(), rc > 0 && (p.revents & POLLIN) != 0);
}

// dmabufImportSyncFile(fd, syncFd, flags): the fence joins the dma-buf's reservation object.
Napi::Value ImportSyncFile(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct dma_buf_import_sync_file s = {};
  s.fd = ArgFd(info, 1, "syncFd");
  s.flags = ArgU32(info, 2, "flags");
  if (Ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &s) != 0)
    ThrowErrno(info.Env(), errno, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE", FdName("dma-buf", fd) + " <- " + FdName("sync_file", s.fd));
  return info.Env().Undefined();
}

Napi::Value SetName(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  std::string name = ArgString(info, 1, "name");
  if (name.size() >= DMA_BUF_NAME_LEN) name.resize(DMA_BUF_NAME_LEN - 1);
  if (ioctl(fd, DMA_BUF_SET_NAME_B, name.c_str()) != 0) ThrowErrno(info.Env(), errno, "DMA_BUF_SET_NAME", FdName("dma-buf", fd));
  return info.Env().Undefined();
}

// syncFileInfo(fd) -> { name, status }  (status 1 signaled, 0 active, < 0 error)
Napi::Value SyncFileInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct sync_file_info s;
  memset(&s, 0, sizeof s);
  if (Ioctl(fd, SYNC_IOC_FILE_INFO, &s) != 0) ThrowErrno(env, errno, "SYNC_IOC_FILE_INFO", FdName("sync_file", fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, std::string(s.name, strnlen(s.name, sizeof s.name))));
  o.Set("status", s.status);
  o.Set("numFences", s.num_fences);
  return o;
}

// syncFileMerge(fd1, fd2, name) -> new sync_file fd
Napi::Value SyncFileMerge(const Napi::CallbackInfo& info) {
  int a = ArgFd(info, 0, "fd1");
  struct sync_merge_data m;
  memset(&m, 0, sizeof m);
  m.fd2 = ArgFd(info, 1, "fd2");
  std::string name = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "primebuf";
  strncpy(m.name, name.c_str(), sizeof m.name - 1);
  if (Ioctl(a, SYNC_IOC_MERGE, &m) != 0) ThrowErrno(info.Env(), errno, "SYNC_IOC_MERGE", FdName("sync_file", a));
  return Napi::Number::New(info.Env(), m.fence);
}

// mmapFd(fd, offset: bigint, length, writable) -> { buffer: ArrayBuffer, address: bigint }
// MAP_SHARED. The ArrayBuffer has no finalizer: the caller's mapping object calls munmapFd
// exactly once, which detaches the ArrayBuffer first so later JS access sees a zero-length buffer.
Napi::Value MmapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint64_t offset = ArgU64(info, 1, "offset");
  uint64_t length = ArgU64(info, 2, "length");
  bool writable = info.Length() < 4 || info[3].ToBoolean();
  if (length == 0) ThrowErrno(env, EINVAL, "mmap", ("fd " + std::to_string(fd)) + ": zero length");
  void* p = mmap(nullptr, length, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED)
    ThrowErrno(env, errno, "mmap", ("fd " + std::to_string(fd)) + " offset " + std::to_string(offset) + " length " + std::to_string(length));
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, p, length, nullptr, nullptr, &ab);
  if (st != napi_ok) {
    munmap(p, length);
    throw Napi::Error::New(env, "napi_create_external_arraybuffer failed");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("buffer", Napi::Value(env, ab));
  o.Set("address", U64(env, reinterpret_cast<uint64_t>(p)));
  return o;
}

// munmapFd(address: bigint, length, buffer: ArrayBuffer)
Napi::Value MunmapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t addr = ArgU64(info, 0, "address");
  uint64_t length = ArgU64(info, 1, "length");
  if (info.Length() > 2 && info[2].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[2].As<Napi::ArrayBuffer>();
    if (reinterpret_cast<uint64_t>(ab.Data()) != addr) throw Napi::Error::New(env, "munmapFd: buffer does not belong to this mapping");
    ab.Detach();
  }
  if (munmap(reinterpret_cast<void*>(addr), length) != 0) ThrowErrno(env, errno, "munmap", std::to_string(length) + " bytes");
  return env.Undefined();
}

// vgemFenceAttach(fd, handle, write) -> fence id: DRM_IOCTL_VGEM_FENCE_ATTACH puts an unsignaled
// fence (a write fence when `write`) on a vgem GEM object's reservation object. vgem signals it
// by itself after about 10 s. Test-only.
Napi::Value VgemFenceAttach(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct primebuf_vgem_fence_attach a = {};
  a.handle = ArgU32(info, 1, "handle");
  a.flags = info[2].ToBoolean() ? PRIMEBUF_VGEM_FENCE_WRITE : 0;
  if (Ioctl(fd, PRIMEBUF_IOCTL_VGEM_FENCE_ATTACH, &a) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_VGEM_FENCE_ATTACH", "vgem fd " + std::to_string(fd) + " handle " + std::to_string(a.handle));
  return Napi::Number::New(info.Env(), a.out_fence);
}

// vgemFenceSignal(fd, fence): DRM_IOCTL_VGEM_FENCE_SIGNAL (ETIMEDOUT when vgem had already
// signaled it on its own timer). Test-only.
Napi::Value VgemFenceSignal(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct primebuf_vgem_fence_signal s = {};
  s.fence = ArgU32(info, 1, "fence");
  if (Ioctl(fd, PRIMEBUF_IOCTL_VGEM_FENCE_SIGNAL, &s) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_VGEM_FENCE_SIGNAL", "vgem fd " + std::to_string(fd) + " fence " + std::to_string(s.fence));
  return info.Env().Undefined();
}

}  // namespace

void InitDmabuf(Napi::Env env, Napi::Object exports) {
  exports.Set("dmabufSize", Napi::Function::New(env, Size, "dmabufSize"));
  exports.Set("dmabufSync", Napi::Function::New(env, Sync, "dmabufSync"));
  exports.Set("dmabufSyncAsync", Napi::Function::New(env, SyncAsync, "dmabufSyncAsync"));
  exports.Set("dmabufExportSyncFile", Napi::Function::New(env, ExportSyncFile, "dmabufExportSyncFile"));
  exports.Set("dmabufWritesDone", Napi::Function::New(env, WritesDone, "dmabufWritesDone"));
  exports.Set("dmabufImportSyncFile", Napi::Function::New(env, ImportSyncFile, "dmabufImportSyncFile"));
  exports.Set("dmabufSetName", Napi::Function::New(env, SetName, "dmabufSetName"));
  exports.Set("syncFileInfo", Napi::Function::New(env, SyncFileInfo, "syncFileInfo"));
  exports.Set("syncFileMerge", Napi::Function::New(env, SyncFileMerge, "syncFileMerge"));
  exports.Set("mmapFd", Napi::Function::New(env, MmapFd, "mmapFd"));
  exports.Set("munmapFd", Napi::Function::New(env, MunmapFd, "munmapFd"));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
  exports.Set("vgemFenceAttach", Napi::Function::New(env, VgemFenceAttach, "vgemFenceAttach"));
  exports.Set("vgemFenceSignal", Napi::Function::New(env, VgemFenceSignal, "vgemFenceSignal"));
}

int DmabufSyncIoctl(int fd, uint64_t flags) {
  struct dma_buf_sync s = {};
  s.flags = flags;
  return Ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
}

}  // namespace primebuf
