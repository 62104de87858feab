// alloc: buffer allocation mechanism: KMS dumb buffers, dma-heaps, memfd + udmabuf, and GBM
// when the build found libgbm (PRIMEBUF_HAVE_GBM). Which allocator to use is policy in
// src/alloc; each function here returns fds/handles that a TypeScript object then owns.
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#ifdef PRIMEBUF_HAVE_GBM
#include <gbm.h>
#endif

#include "common.h"

namespace primebuf {
namespace {

// dumbCreate(fd, width, height, bpp, flags) -> { handle, pitch, size: bigint }
Napi::Value DumbCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct drm_mode_create_dumb req = {};
  req.width = ArgU32(info, 1, "width");
  req.height = ArgU32(info, 2, "height");
  req.bpp = ArgU32(info, 3, "bpp");
  req.flags = info.Length() > 4 ? ArgU32(info, 4, "flags") : 0;
  if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &req) != 0)
    ThrowErrno(env, errno, "DRM_IOCTL_MODE_CREATE_DUMB",
               "dumb buffer " + std::to_string(req.width) + "x" + std::to_string(req.height) + " bpp " + std::to_string(req.bpp));
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", req.handle);
  o.Set("pitch", req.pitch);
  o.Set("size", U64(env, req.size));
  return o;
}

// dumbMapOffset(fd, handle) -> bigint: the fake offset to mmap the DRM fd at.
Napi::Value DumbMapOffset(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct drm_mode_map_dumb req = {};
  req.handle = ArgU32(info, 1, "handle");
  if (drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &req) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_MAP_DUMB", "GEM handle " + std::to_string(req.handle));
  return U64(info.Env(), req.offset);
}

// gemHandlesProbe(fd, render, limit) -> number[]: the GEM handles in [1, limit] that exist on DRM
// fd `fd`, asked of the kernel handle by handle (test/vkms/leak.ts says why these ioctls).
// Primary node: DRM_IOCTL_MODE_MAP_DUMB (ENOENT: none; 0 for the driver's own object, EINVAL
// for an import). Render node (no dumb ioctls): DRM_IOCTL_PRIME_HANDLE_TO_FD, the fd closed at
// once (ENOENT: none). Any other error is thrown. Test-only.
Napi::Value GemHandlesProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  bool render = info[1].ToBoolean();
  uint32_t limit = ArgU32(info, 2, "limit");
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t h = 1; h <= limit; h++) {
    int rc;
    if (render) {
      struct drm_prime_handle req = {};
      req.handle = h;
      req.flags = DRM_CLOEXEC;
      rc = drmIoctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &req);
      if (rc == 0) close(req.fd);
    } else {
      struct drm_mode_map_dumb req = {};
      req.handle = h;
      rc = drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &req);
      if (rc != 0 && errno == EINVAL) rc = 0;  // an imported object: it exists
    }
    if (rc == 0) {
      out.Set(n++, Napi::Number::New(env, h));
    } else if (errno != ENOENT) {
      ThrowErrno(env, errno, render ? "DRM_IOCTL_PRIME_HANDLE_TO_FD" : "DRM_IOCTL_MODE_MAP_DUMB", "GEM handle " + std::to_string(h));
    }
  }
  return out;
}

Napi::Value DumbDestroy(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct drm_mode_destroy_dumb req = {};
  req.handle = ArgU32(info, 1, "handle");
  if (drmIoctl(fd, DRM_IOCTL_MODE_DESTROY_DUMB, &req) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_DESTROY_DUMB", "GEM handle " + std::to_string(req.handle));
  return info.Env().Undefined();
}

// dmaHeapAlloc(heapFd, len) -> dma-buf fd (O_RDWR | O_CLOEXEC)
Napi::Value DmaHeapAlloc(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "heapFd");
  struct dma_heap_allocation_data req = {};
  req.len = ArgU64(info, 1, "len");
  req.fd_flags = O_RDWR | O_CLOEXEC;
  int rc;
  do rc = ioctl(fd, DMA_HEAP_IOCTL_ALLOC, &req);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) ThrowErrno(info.Env(), errno, "DMA_HEAP_IOCTL_ALLOC", std::to_string(req.len) + " bytes");
  return Napi::Number::New(info.Env(), req.fd);
}

// memfdCreate(name, allowSealing) -> fd (MFD_CLOEXEC)
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  bool sealing = info.Length() < 2 || info[1].ToBoolean();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) ThrowErrno(info.Env(), errno, "memfd_create", name);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint64_t size = ArgU64(info, 1, "size");
  int rc;
  do rc = ftruncate(fd, static_cast<off_t>(size));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) ThrowErrno(info.Env(), errno, "ftruncate", "fd " + std::to_string(fd) + " to " + std::to_string(size));
  return info.Env().Undefined();
}

// addSeals(fd, seals) / getSeals(fd): F_ADD_SEALS / F_GET_SEALS (F_SEAL_SHRINK 2, GROW 4, WRITE 8, SEAL 1)
Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t seals = ArgU32(info, 1, "seals");
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) ThrowErrno(info.Env(), errno, "fcntl(F_ADD_SEALS)", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int s = fcntl(fd, F_GET_SEALS);
  if (s < 0) ThrowErrno(info.Env(), errno, "fcntl(F_GET_SEALS)", "fd " + std::to_string(fd));
  return Napi::Number::New(info.Env(), s);
}

// udmabufCreate(devFd, memfd, offset, size) -> dma-buf fd (UDMABUF_FLAGS_CLOEXEC)
Napi::Value UdmabufCreate(const Napi::CallbackInfo& info) {
  int dev = ArgFd(info, 0, "udmabufFd");
  struct udmabuf_create req = {};
  req.memfd = static_cast<uint32_t>(ArgFd(info, 1, "memfd"));
  req.offset = ArgU64(info, 2, "offset");
  req.size = ArgU64(info, 3, "size");
  req.flags = UDMABUF_FLAGS_CLOEXEC;
  int out;
  do out = ioctl(dev, UDMABUF_CREATE, &req);
  while (out < 0 && errno == EINTR);
  if (out < 0)
    ThrowErrno(info.Env(), errno, "UDMABUF_CREATE",
               "memfd " + std::to_string(req.memfd) + " offset " + std::to_string(req.offset) + " size " + std::to_string(req.size));
  return Napi::Number::New(info.Env(), out);
}

#ifdef PRIMEBUF_HAVE_GBM
// GBM objects travel as externals without finalizers: src/alloc/backends/gbm.ts owns them.
template <typename T>
T* Ext(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a GBM handle");
  return info[i].As<Napi::External<T>>().Data();
}

// gbmOpenNode(path, authFd) -> fd: a DRM node opened O_RDWR | O_CLOEXEC for libgbm alone (its
// own drm_file, so its GEM handles are its own). An open of a primary node with no master makes
// the opener master; libgbm never needs it, so it is dropped at once. A primary-node fd that is
// not root's is not authenticated: authFd (the caller's fd of the same node, when it is master)
// authenticates it by its magic. Authentication is best effort: without it the driver's own
// ioctls answer EACCES, and that error reaches the caller from the allocation.
Napi::Value GbmOpenNode(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int authFd = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  int fd;
  do fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open", path);
  if (drmIsMaster(fd) && drmDropMaster(fd) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(info.Env(), err, "DRM_IOCTL_DROP_MASTER", path);
  }
  drm_magic_t magic;
  if (authFd >= 0 && drmGetNodeTypeFromFd(fd) == DRM_NODE_PRIMARY && drmGetMagic(fd, &magic) == 0) drmAuthMagic(authFd, magic);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GbmCreateDevice(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct gbm_device* dev = gbm_create_device(fd);
  if (!dev) ThrowErrno(info.Env(), errno ? errno : ENODEV, "gbm_create_device", "fd " + std::to_string(fd));
  return Napi::External<struct gbm_device>::New(info.Env(), dev);
}

Napi::Value GbmDestroyDevice(const Napi::CallbackInfo& info) {
  gbm_device_destroy(Ext<struct gbm_device>(info, 0, "device"));
  return info.Env().Undefined();
}

Napi::Value GbmBackendName(const Napi::CallbackInfo& info) {
  const char* n = gbm_device_get_backend_name(Ext<struct gbm_device>(info, 0, "device"));
  return Napi::String::New(info.Env(), n ? n : "");
}

Napi::Value GbmIsFormatSupported(const Napi::CallbackInfo& info) {
  auto* dev = Ext<struct gbm_device>(info, 0, "device");
  return Napi::Boolean::New(info.Env(), gbm_device_is_format_supported(dev, ArgU32(info, 1, "format"), ArgU32(info, 2, "usage")) != 0);
}

// gbmBoCreate(device, width, height, format, modifiers: bigint[] | null, usage)
//   -> { bo, modifier: bigint, planes: [{ fd, stride, offset, handle }] } (plane fds are O_CLOEXEC, owned by the
//   caller; `handle` is libgbm's own GEM handle on the device's fd, closed by gbm_bo_destroy)
Napi::Value GbmBoCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* dev = Ext<struct gbm_device>(info, 0, "device");
  uint32_t w = ArgU32(info, 1, "width"), h = ArgU32(info, 2, "height"), format = ArgU32(info, 3, "format");
  uint32_t usage = ArgU32(info, 5, "usage");
  struct gbm_bo* bo = nullptr;
  errno = 0;
  if (info[4].IsArray()) {
    Napi::Array a = info[4].As<Napi::Array>();
    std::vector<uint64_t> mods;
    for (uint32_t i = 0; i < a.Length(); i++) {
      bool lossless = false;
      mods.push_back(a.Get(i).As<Napi::BigInt>().Uint64Value(&lossless));
    }
    bo = gbm_bo_create_with_modifiers2(dev, w, h, format, mods.data(), mods.size(), usage);
  } else {
    bo = gbm_bo_create(dev, w, h, format, usage);
  }
  if (!bo) ThrowErrno(env, errno ? errno : EINVAL, "gbm_bo_create", std::to_string(w) + "x" + std::to_string(h));
  int n = gbm_bo_get_plane_count(bo);
  Napi::Array planes = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    int pfd = gbm_bo_get_fd_for_plane(bo, i);
    if (pfd < 0) {
      int err = errno ? errno : EINVAL;
      for (int j = 0; j < i; j++) close(planes.Get(j).As<Napi::Object>().Get("fd").ToNumber().Int32Value());
      gbm_bo_destroy(bo);
      ThrowErrno(env, err, "gbm_bo_get_fd_for_plane", "plane " + std::to_string(i));
    }
    Napi::Object p = Napi::Object::New(env);
    p.Set("fd", pfd);
    p.Set("stride", gbm_bo_get_stride_for_plane(bo, i));
    p.Set("offset", gbm_bo_get_offset(bo, i));
    p.Set("handle", gbm_bo_get_handle_for_plane(bo, i).u32);
    planes.Set(i, p);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("bo", Napi::External<struct gbm_bo>::New(env, bo));
  o.Set("modifier", U64(env, gbm_bo_get_modifier(bo)));
  o.Set("format", gbm_bo_get_format(bo));
  o.Set("planes", planes);
  return o;
}

// gbmBoMap(bo, width, height, flags) -> { buffer: ArrayBuffer (stride*height bytes, no finalizer),
// stride, mapData }. gbm_bo_map of the whole bo; gbmBoUnmap detaches the buffer and unmaps once.
Napi::Value GbmBoMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* bo = Ext<struct gbm_bo>(info, 0, "bo");
  uint32_t w = ArgU32(info, 1, "width"), h = ArgU32(info, 2, "height"), flags = ArgU32(info, 3, "flags");
  uint32_t stride = 0;
  void* mapData = nullptr;
  errno = 0;
  void* p = gbm_bo_map(bo, 0, 0, w, h, flags, &stride, &mapData);
  if (!p || p == MAP_FAILED) ThrowErrno(env, errno ? errno : EINVAL, "gbm_bo_map", std::to_string(w) + "x" + std::to_string(h));
  size_t len = static_cast<size_t>(stride) * h;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, len, nullptr, nullptr, &ab) != napi_ok) {
    gbm_bo_unmap(bo, mapData);
    throw Napi::Error::New(env, "napi_create_external_arraybuffer failed");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("buffer", Napi::Value(env, ab));
  o.Set("stride", stride);
  o.Set("mapData", Napi::External<void>::New(env, mapData));
  return o;
}

Napi::Value GbmBoUnmap(const Napi::CallbackInfo& info) {
  auto* bo = Ext<struct gbm_bo>(info, 0, "bo");
  if (!info[1].IsExternal()) throw Napi::TypeError::New(info.Env(), "mapData must be the value gbmBoMap returned");
  void* mapData = info[1].As<Napi::External<void>>().Data();
  if (info.Length() > 2 && info[2].IsArrayBuffer()) info[2].As<Napi::ArrayBuffer>().Detach();
  gbm_bo_unmap(bo, mapData);
  return info.Env().Undefined();
}

Napi::Value GbmBoDestroy(const Napi::CallbackInfo& info) {
  gbm_bo_destroy(Ext<struct gbm_bo>(info, 0, "bo"));
  return info.Env().Undefined();
}
#endif

}  // namespace

void InitAlloc(Napi::Env env, Napi::Object exports) {
  exports.Set("dumbCreate", Napi::Function::New(env, DumbCreate, "dumbCreate"));
  exports.Set("dumbMapOffset", Napi::Function::New(env, DumbMapOffset, "dumbMapOffset"));
  exports.Set("dumbDestroy", Napi::Function::New(env, DumbDestroy, "dumbDestroy"));
  exports.Set("gemHandlesProbe", Napi::Function::New(env, GemHandlesProbe, "gemHandlesProbe"));
  exports.Set("dmaHeapAlloc", Napi::Function::New(env, DmaHeapAlloc, "dmaHeapAlloc"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncateFd", Napi::Function::New(env, Ftruncate, "ftruncateFd"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("udmabufCreate", Napi::Function::New(env, UdmabufCreate, "udmabufCreate"));
#ifdef PRIMEBUF_HAVE_GBM
  exports.Set("gbmAvailable", Napi::Boolean::New(env, true));
  exports.Set("gbmOpenNode", Napi::Function::New(env, GbmOpenNode, "gbmOpenNode"));
  exports.Set("gbmCreateDevice", Napi::Function::New(env, GbmCreateDevice, "gbmCreateDevice"));
  exports.Set("gbmDestroyDevice", Napi::Function::New(env, GbmDestroyDevice, "gbmDestroyDevice"));
  exports.Set("gbmBackendName", Napi::Function::New(env, GbmBackendName, "gbmBackendName"));
  exports.Set("gbmIsFormatSupported", Napi::Function::New(env, GbmIsFormatSupported, "gbmIsFormatSupported"));
  exports.Set("gbmBoCreate", Napi::Function::New(env, GbmBoCreate, "gbmBoCreate"));
  exports.Set("gbmBoDestroy", Napi::Function::New(env, GbmBoDestroy, "gbmBoDestroy"));
  exports.Set("gbmBoMap", Napi::Function::New(env, GbmBoMap, "gbmBoMap"));
  exports.Set("gbmBoUnmap", Napi::Function::New(env, GbmBoUnmap, "gbmBoUnmap"));
#else
  exports.Set("gbmAvailable", Napi::Boolean::New(env, false));
#endif
}

}  // namespace primebuf
