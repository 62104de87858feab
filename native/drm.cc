// drm: DRM/KMS device mechanism. Raw functions over libdrm and raw ioctls, each taking the
// device fd first. No policy: which node to open, which caps to require, how to count GEM
// handles and how to build an atomic request are decided in src/kms and src/dmabuf.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace primebuf {
namespace {

std::string Obj(const char* kind, uint32_t id) { return std::string(kind) + " " + std::to_string(id); }

// ---------------------------------------------------------------------------------------------
// Device fd, version, caps

// drmOpenPath(path) -> fd, opened O_RDWR | O_CLOEXEC.
Napi::Value OpenPath(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open", path);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GetVersion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  errno = 0;
  drmVersionPtr v = drmGetVersion(fd);
  if (!v) ThrowErrno(env, errno ? errno : ENOTTY, "DRM_IOCTL_VERSION", "fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, v->name ? std::string(v->name, v->name_len) : ""));
  o.Set("major", v->version_major);
  o.Set("minor", v->version_minor);
  o.Set("patchlevel", v->version_patchlevel);
  o.Set("date", Napi::String::New(env, v->date ? std::string(v->date, v->date_len) : ""));
  o.Set("desc", Napi::String::New(env, v->desc ? std::string(v->desc, v->desc_len) : ""));
  drmFreeVersion(v);
  return o;
}

Napi::Value GetCap(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t cap = ArgU32(info, 1, "cap");
  uint64_t value = 0;
  if (drmGetCap(fd, cap, &value) != 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_GET_CAP", "cap " + std::to_string(cap));
  return U64(info.Env(), value);
}

Napi::Value SetClientCap(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t cap = ArgU32(info, 1, "cap");
  uint64_t value = ArgU64(info, 2, "value");
  if (drmSetClientCap(fd, cap, value) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_SET_CLIENT_CAP", "client cap " + std::to_string(cap));
  return info.Env().Undefined();
}

// 'primary' | 'control' | 'render'
Napi::Value NodeType(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int t = drmGetNodeTypeFromFd(fd);
  if (t < 0) ThrowErrno(info.Env(), errno ? errno : ENODEV, "drmGetNodeTypeFromFd", "fd " + std::to_string(fd));
  const char* name = t == DRM_NODE_PRIMARY ? "primary" : t == DRM_NODE_RENDER ? "render" : "control";
  return Napi::String::New(info.Env(), name);
}

// fstat(fd).st_rdev as a bigint (the dev_t linux-dmabuf feedback sends).
Napi::Value FstatRdev(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  struct stat st;
  if (fstat(fd, &st) != 0) ThrowErrno(info.Env(), errno, "fstat", "fd " + std::to_string(fd));
  if (!S_ISCHR(st.st_mode)) ThrowErrno(info.Env(), ENOTTY, "fstat", "fd " + std::to_string(fd) + " is not a character device");
  return U64(info.Env(), static_cast<uint64_t>(st.st_rdev));
}

Napi::Value IsMaster(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), drmIsMaster(ArgFd(info, 0, "fd")) != 0);
}

// ---------------------------------------------------------------------------------------------
// Mode resources

Napi::Array U32Array(Napi::Env env, const uint32_t* p, int n) {
  Napi::Array a = Napi::Array::New(env, n > 0 ? n : 0);
  for (int i = 0; i < n; i++) a.Set(i, Napi::Number::New(env, p[i]));
  return a;
}

Napi::Value GetResources(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  drmModeResPtr r = drmModeGetResources(fd);
  if (!r) ThrowErrno(env, errno ? errno : EINVAL, "DRM_IOCTL_MODE_GETRESOURCES", "fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("fbs", U32Array(env, r->fbs, r->count_fbs));
  o.Set("crtcs", U32Array(env, r->crtcs, r->count_crtcs));
  o.Set("connectors", U32Array(env, r->connectors, r->count_connectors));
  o.Set("encoders", U32Array(env, r->encoders, r->count_encoders));
  o.Set("minWidth", r->min_width);
  o.Set("maxWidth", r->max_width);
  o.Set("minHeight", r->min_height);
  o.Set("maxHeight", r->max_height);
  drmModeFreeResources(r);
  return o;
}

Napi::Value GetPlaneResources(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  drmModePlaneResPtr r = drmModeGetPlaneResources(fd);
  if (!r) ThrowErrno(env, errno ? errno : EINVAL, "DRM_IOCTL_MODE_GETPLANERESOURCES", "fd " + std::to_string(fd));
  Napi::Array a = U32Array(env, r->planes, r->count_planes);
  drmModeFreePlaneResources(r);
  return a;
}

Napi::Object ModeObject(Napi::Env env, const drmModeModeInfo& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("clock", m.clock);
  o.Set("hdisplay", m.hdisplay);
  o.Set("hsyncStart", m.hsync_start);
  o.Set("hsyncEnd", m.hsync_end);
  o.Set("htotal", m.htotal);
  o.Set("hskew", m.hskew);
  o.Set("vdisplay", m.vdisplay);
  o.Set("vsyncStart", m.vsync_start);
  o.Set("vsyncEnd", m.vsync_end);
  o.Set("vtotal", m.vtotal);
  o.Set("vscan", m.vscan);
  o.Set("vrefresh", m.vrefresh);
  o.Set("flags", m.flags);
  o.Set("type", m.type);
  o.Set("name", Napi::String::New(env, std::string(m.name, strnlen(m.name, sizeof m.name))));
  return o;
}

Napi::Value GetCrtc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "crtcId");
  drmModeCrtcPtr c = drmModeGetCrtc(fd, id);
  if (!c) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETCRTC", Obj("crtc", id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", c->crtc_id);
  o.Set("fbId", c->buffer_id);
  o.Set("x", c->x);
  o.Set("y", c->y);
  o.Set("width", c->width);
  o.Set("height", c->height);
  o.Set("mode", c->mode_valid ? Napi::Value(ModeObject(env, c->mode)) : env.Null());
  o.Set("gammaSize", c->gamma_size);
  drmModeFreeCrtc(c);
  return o;
}

Napi::Value GetEncoder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "encoderId");
  drmModeEncoderPtr e = drmModeGetEncoder(fd, id);
  if (!e) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETENCODER", Obj("encoder", id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", e->encoder_id);
  o.Set("type", e->encoder_type);
  o.Set("crtcId", e->crtc_id);
  o.Set("possibleCrtcs", e->possible_crtcs);
  o.Set("possibleClones", e->possible_clones);
  drmModeFreeEncoder(e);
  return o;
}

// getConnector(fd, id, probe): probe=true forces a detection cycle (drmModeGetConnector).
Napi::Value GetConnector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "connectorId");
  bool probe = info.Length() > 2 && info[2].ToBoolean();
  drmModeConnectorPtr c = probe ? drmModeGetConnector(fd, id) : drmModeGetConnectorCurrent(fd, id);
  if (!c) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETCONNECTOR", Obj("connector", id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", c->connector_id);
  o.Set("encoderId", c->encoder_id);
  o.Set("type", c->connector_type);
  o.Set("typeId", c->connector_type_id);
  const char* tn = drmModeGetConnectorTypeName(c->connector_type);
  o.Set("typeName", Napi::String::New(env, tn ? tn : "Unknown"));
  o.Set("connection", static_cast<uint32_t>(c->connection));
  o.Set("mmWidth", c->mmWidth);
  o.Set("mmHeight", c->mmHeight);
  o.Set("subpixel", static_cast<uint32_t>(c->subpixel));
  Napi::Array modes = Napi::Array::New(env, c->count_modes);
  for (int i = 0; i < c->count_modes; i++) modes.Set(i, ModeObject(env, c->modes[i]));
  o.Set("modes", modes);
  o.Set("encoders", U32Array(env, c->encoders, c->count_encoders));
  drmModeFreeConnector(c);
  return o;
}

Napi::Value GetPlane(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "planeId");
  drmModePlanePtr p = drmModeGetPlane(fd, id);
  if (!p) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETPLANE", Obj("plane", id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", p->plane_id);
  o.Set("crtcId", p->crtc_id);
  o.Set("fbId", p->fb_id);
  o.Set("possibleCrtcs", p->possible_crtcs);
  o.Set("gammaSize", p->gamma_size);
  o.Set("formats", U32Array(env, p->formats, p->count_formats));
  drmModeFreePlane(p);
  return o;
}

// getObjectProperties(fd, objectId, objectType) -> [{ id, value: bigint }]
Napi::Value GetObjectProperties(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "objectId");
  uint32_t type = ArgU32(info, 2, "objectType");
  drmModeObjectPropertiesPtr props = drmModeObjectGetProperties(fd, id, type);
  if (!props) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES", Obj("object", id));
  Napi::Array a = Napi::Array::New(env, props->count_props);
  for (uint32_t i = 0; i < props->count_props; i++) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("id", props->props[i]);
    p.Set("value", U64(env, props->prop_values[i]));
    a.Set(i, p);
  }
  drmModeFreeObjectProperties(props);
  return a;
}

// getProperty(fd, propId) -> { id, name, flags, values: bigint[], enums: [{name, value}], blobs: number[] }
Napi::Value GetProperty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "propertyId");
  drmModePropertyPtr p = drmModeGetProperty(fd, id);
  if (!p) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETPROPERTY", Obj("property", id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", p->prop_id);
  o.Set("name", Napi::String::New(env, std::string(p->name, strnlen(p->name, sizeof p->name))));
  o.Set("flags", p->flags);
  Napi::Array values = Napi::Array::New(env, p->count_values);
  for (int i = 0; i < p->count_values; i++) values.Set(i, U64(env, p->values[i]));
  o.Set("values", values);
  Napi::Array enums = Napi::Array::New(env, p->count_enums);
  for (int i = 0; i < p->count_enums; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", Napi::String::New(env, std::string(p->enums[i].name, strnlen(p->enums[i].name, sizeof p->enums[i].name))));
    e.Set("value", U64(env, p->enums[i].value));
    enums.Set(i, e);
  }
  o.Set("enums", enums);
  o.Set("blobs", U32Array(env, p->blob_ids, p->count_blobs));
  drmModeFreeProperty(p);
  return o;
}

// getPropertyBlob(fd, blobId) -> Buffer (a copy of the blob's bytes)
Napi::Value GetPropertyBlob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "blobId");
  drmModePropertyBlobPtr b = drmModeGetPropertyBlob(fd, id);
  if (!b) ThrowErrno(env, errno ? errno : ENOENT, "DRM_IOCTL_MODE_GETPROPBLOB", Obj("blob", id));
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(b->data), b->length);
  drmModeFreePropertyBlob(b);
  return out;
}

Napi::Value CreatePropertyBlob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (!info[1].IsTypedArray() && !info[1].IsBuffer()) throw Napi::TypeError::New(env, "data must be a Uint8Array");
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  uint32_t id = 0;
  if (drmModeCreatePropertyBlob(fd, data.Data(), data.ByteLength(), &id) != 0)
    ThrowErrno(env, errno, "DRM_IOCTL_MODE_CREATEPROPBLOB", std::to_string(data.ByteLength()) + " bytes");
  return Napi::Number::New(env, id);
}

Napi::Value DestroyPropertyBlob(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "blobId");
  if (drmModeDestroyPropertyBlob(fd, id) != 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_DESTROYPROPBLOB", Obj("blob", id));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// PRIME and GEM handles

Napi::Value PrimeFdToHandle(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int dmabuf = ArgFd(info, 1, "dmabufFd");
  uint32_t handle = 0;
  if (drmPrimeFDToHandle(fd, dmabuf, &handle) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_PRIME_FD_TO_HANDLE", "dma-buf fd " + std::to_string(dmabuf));
  return Napi::Number::New(info.Env(), handle);
}

// primeHandleToFd(fd, handle, writable) -> dma-buf fd (always O_CLOEXEC)
Napi::Value PrimeHandleToFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t handle = ArgU32(info, 1, "handle");
  bool rw = info.Length() < 3 || info[2].ToBoolean();
  int out = -1;
  if (drmPrimeHandleToFD(fd, handle, DRM_CLOEXEC | (rw ? DRM_RDWR : 0), &out) != 0)
    ThrowErrno(info.Env(), errno, "DRM_IOCTL_PRIME_HANDLE_TO_FD", Obj("GEM handle", handle));
  return Napi::Number::New(info.Env(), out);
}

Napi::Value GemClose(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t handle = ArgU32(info, 1, "handle");
  struct drm_gem_close req = {};
  req.handle = handle;
  if (drmIoctl(fd, DRM_IOCTL_GEM_CLOSE, &req) != 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_GEM_CLOSE", Obj("GEM handle", handle));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Framebuffers

void ReadU32x4(Napi::Env env, Napi::Object o, const char* key, uint32_t out[4]) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(key) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 4) throw Napi::RangeError::New(env, std::string(key) + " has more than 4 entries");
  for (uint32_t i = 0; i < a.Length(); i++) {
    double d = a.Get(i).ToNumber().DoubleValue();
    if (!(d >= 0 && d <= 4294967295.0)) throw Napi::RangeError::New(env, std::string(key) + " entry out of u32 range");
    out[i] = static_cast<uint32_t>(d);
  }
}

// addFB2(fd, { width, height, format, flags, handles[], pitches[], offsets[], modifiers?: bigint[] }) -> fb id.
// Passes exactly what it is given (flags included): the caller decides on DRM_MODE_FB_MODIFIERS.
Napi::Value AddFB2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "addFB2: expected a description object");
  Napi::Object d = info[1].As<Napi::Object>();
  struct drm_mode_fb_cmd2 cmd = {};
  cmd.width = d.Get("width").ToNumber().Uint32Value();
  cmd.height = d.Get("height").ToNumber().Uint32Value();
  cmd.pixel_format = d.Get("format").ToNumber().Uint32Value();
  cmd.flags = d.Get("flags").IsUndefined() ? 0 : d.Get("flags").ToNumber().Uint32Value();
  ReadU32x4(env, d, "handles", cmd.handles);
  ReadU32x4(env, d, "pitches", cmd.pitches);
  ReadU32x4(env, d, "offsets", cmd.offsets);
  Napi::Value mv = d.Get("modifiers");
  if (mv.IsArray()) {
    Napi::Array a = mv.As<Napi::Array>();
    if (a.Length() > 4) throw Napi::RangeError::New(env, "modifiers has more than 4 entries");
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value m = a.Get(i);
      if (!m.IsBigInt()) throw Napi::TypeError::New(env, "modifiers must be bigints");
      bool lossless = false;
      cmd.modifier[i] = m.As<Napi::BigInt>().Uint64Value(&lossless);
    }
  }
  if (drmIoctl(fd, DRM_IOCTL_MODE_ADDFB2, &cmd) != 0) {
    char fcc[5] = {char(cmd.pixel_format), char(cmd.pixel_format >> 8), char(cmd.pixel_format >> 16), char(cmd.pixel_format >> 24), 0};
    for (int i = 0; i < 4; i++) if (fcc[i] < 32 || fcc[i] > 126) fcc[i] = '?';
    ThrowErrno(env, errno, "DRM_IOCTL_MODE_ADDFB2",
               "fb " + std::to_string(cmd.width) + "x" + std::to_string(cmd.height) + " " + fcc + " handle " +
                   std::to_string(cmd.handles[0]) + " pitch " + std::to_string(cmd.pitches[0]));
  }
  return Napi::Number::New(env, cmd.fb_id);
}

// addFB(fd, width, height, pitch, bpp, depth, handle) -> fb id (legacy, implicit layout).
Napi::Value AddFB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct drm_mode_fb_cmd cmd = {};
  cmd.width = ArgU32(info, 1, "width");
  cmd.height = ArgU32(info, 2, "height");
  cmd.pitch = ArgU32(info, 3, "pitch");
  cmd.bpp = ArgU32(info, 4, "bpp");
  cmd.depth = ArgU32(info, 5, "depth");
  cmd.handle = ArgU32(info, 6, "handle");
  if (drmIoctl(fd, DRM_IOCTL_MODE_ADDFB, &cmd) != 0)
    ThrowErrno(env, errno, "DRM_IOCTL_MODE_ADDFB",
               "fb " + std::to_string(cmd.width) + "x" + std::to_string(cmd.height) + " bpp " + std::to_string(cmd.bpp));
  return Napi::Number::New(env, cmd.fb_id);
}

Napi::Value RmFB(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "fbId");
  if (drmModeRmFB(fd, id) != 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_RMFB", Obj("fb", id));
  return info.Env().Undefined();
}

// DRM_IOCTL_MODE_CLOSEFB (Linux 6.8+): removes the fb id from this file's namespace like RMFB,
// but leaves planes that show it as they are (the kernel drops its reference when a later
// commit replaces it). libdrm 2.4.114's headers (Debian 12) predate it: the uapi definition
// from include/uapi/drm/drm.h and drm_mode.h, written out here.
#ifndef DRM_IOCTL_MODE_CLOSEFB
struct drm_mode_closefb {
  __u32 fb_id;
  __u32 pad;
};
#define DRM_IOCTL_MODE_CLOSEFB DRM_IOWR(0xD0, struct drm_mode_closefb)
#endif

// closeFB(fd, fbId): CLOSEFB as is; ENOTTY/EINVAL on kernels without it (the caller falls back).
Napi::Value CloseFB(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint32_t id = ArgU32(info, 1, "fbId");
  struct drm_mode_closefb req = {};
  req.fb_id = id;
  if (drmIoctl(fd, DRM_IOCTL_MODE_CLOSEFB, &req) != 0) ThrowErrno(info.Env(), errno, "DRM_IOCTL_MODE_CLOSEFB", Obj("fb", id));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Atomic commit

// atomicCommit(fd, objects: Uint32Array, props: Uint32Array, values: BigUint64Array, fenceSlots: number[],
//              flags, userData: bigint) -> number[] (the fds written into the fence slots, -1 if none).
// Each fence slot is an index into values whose value is replaced by a pointer to an s32 that the
// kernel fills with a sync_file fd (OUT_FENCE_PTR, WRITEBACK_OUT_FENCE_PTR).
Napi::Value AtomicCommit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (!info[1].IsTypedArray() || !info[2].IsTypedArray() || !info[3].IsTypedArray())
    throw Napi::TypeError::New(env, "atomicCommit: objects, props and values must be typed arrays");
  Napi::Uint32Array objs = info[1].As<Napi::Uint32Array>();
  Napi::Uint32Array props = info[2].As<Napi::Uint32Array>();
  Napi::TypedArray valuesTa = info[3].As<Napi::TypedArray>();
  if (valuesTa.TypedArrayType() != napi_biguint64_array) throw Napi::TypeError::New(env, "values must be a BigUint64Array");
  Napi::TypedArrayOf<uint64_t> values = info[3].As<Napi::TypedArrayOf<uint64_t>>();
  size_t n = objs.ElementLength();
  if (props.ElementLength() != n || values.ElementLength() != n) throw Napi::RangeError::New(env, "atomicCommit: length mismatch");
  std::vector<uint64_t> vals(values.Data(), values.Data() + n);
  std::vector<uint32_t> slots;
  if (info[4].IsArray()) {
    Napi::Array a = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) slots.push_back(a.Get(i).ToNumber().Uint32Value());
  }
  auto fences = std::make_unique<int32_t[]>(slots.size() + 1);
  for (size_t i = 0; i < slots.size(); i++) {
    if (slots[i] >= n) throw Napi::RangeError::New(env, "fence slot out of range");
    fences[i] = -1;
    vals[slots[i]] = reinterpret_cast<uint64_t>(&fences[i]);
  }
  uint32_t flags = ArgU32(info, 5, "flags");
  uint64_t userData = info.Length() > 6 && !info[6].IsUndefined() ? ArgU64(info, 6, "userData") : 0;

  drmModeAtomicReqPtr req = drmModeAtomicAlloc();
  if (!req) ThrowErrno(env, ENOMEM, "drmModeAtomicAlloc");
  for (size_t i = 0; i < n; i++) {
    if (drmModeAtomicAddProperty(req, objs.Data()[i], props.Data()[i], vals[i]) < 0) {
      int err = errno ? errno : ENOMEM;
      drmModeAtomicFree(req);
      ThrowErrno(env, err, "drmModeAtomicAddProperty", Obj("object", objs.Data()[i]));
    }
  }
  int rc = drmModeAtomicCommit(fd, req, flags, reinterpret_cast<void*>(userData));
  int err = errno;
  drmModeAtomicFree(req);
  if (rc != 0) {
    for (size_t i = 0; i < slots.size(); i++) if (fences[i] >= 0) close(fences[i]);
    ThrowErrno(env, err, "DRM_IOCTL_MODE_ATOMIC",
               std::string((flags & DRM_MODE_ATOMIC_TEST_ONLY) ? "TEST_ONLY " : "") + "commit of " + std::to_string(n) + " properties");
  }
  Napi::Array out = Napi::Array::New(env, slots.size());
  for (size_t i = 0; i < slots.size(); i++) out.Set(i, Napi::Number::New(env, fences[i]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Events: readDrmEvents(fd) reads what is pending (call when the fd polls readable).

Napi::Value ReadDrmEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  alignas(8) char buf[4096];
  ssize_t len;
  do len = read(fd, buf, sizeof buf);
  while (len < 0 && errno == EINTR);
  if (len < 0) {
    if (errno == EAGAIN) return Napi::Array::New(env, 0);
    ThrowErrno(env, errno, "read", "DRM events on fd " + std::to_string(fd));
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  ssize_t off = 0;
  while (off + static_cast<ssize_t>(sizeof(struct drm_event)) <= len) {
    struct drm_event ev;
    memcpy(&ev, buf + off, sizeof ev);
    if (ev.length < sizeof ev || static_cast<size_t>(off) + ev.length > static_cast<size_t>(len)) break;
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", ev.type);
    if ((ev.type == DRM_EVENT_FLIP_COMPLETE || ev.type == DRM_EVENT_VBLANK) && ev.length >= sizeof(struct drm_event_vblank)) {
      struct drm_event_vblank vb;
      memcpy(&vb, buf + off, sizeof vb);
      o.Set("userData", U64(env, vb.user_data));
      o.Set("tvSec", vb.tv_sec);
      o.Set("tvUsec", vb.tv_usec);
      o.Set("sequence", vb.sequence);
      o.Set("crtcId", vb.crtc_id);
    } else if (ev.type == DRM_EVENT_CRTC_SEQUENCE && ev.length >= sizeof(struct drm_event_crtc_sequence)) {
      struct drm_event_crtc_sequence cs;
      memcpy(&cs, buf + off, sizeof cs);
      o.Set("userData", U64(env, cs.user_data));
      o.Set("timeNs", Napi::BigInt::New(env, static_cast<int64_t>(cs.time_ns)));
      o.Set("sequence", U64(env, cs.sequence));
    }
    out.Set(k++, o);
    off += ev.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// FdWatch: a libuv poll handle on any fd (DRM device, sync_file), calling back on the JS thread.
// watchFd(fd, writable, callback(status, events)) -> { stop(), ref(), unref() }. The watcher
// does not own the fd: stop it before the fd is closed.

class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch",
                       {InstanceMethod<&FdWatch::Stop>("stop"), InstanceMethod<&FdWatch::Ref>("ref"),
                        InstanceMethod<&FdWatch::Unref>("unref"), InstanceAccessor<&FdWatch::Active>("active")});
  }

  FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    Napi::Env env = info.Env();
    fd_ = ArgFd(info, 0, "fd");
    int events = UV_READABLE | (info[1].ToBoolean() ? UV_WRITABLE : 0);
    if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) throw Napi::Error::New(env, "no libuv loop");
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init", "fd " + std::to_string(fd_));
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, events, OnPoll);
    if (rc != 0) {
      CloseHandle();
      ThrowErrno(env, -rc, "uv_poll_start", "fd " + std::to_string(fd_));
    }
    env_ = env;
    self_ = Napi::Persistent(info.This().As<Napi::Object>());  // alive while polling
  }

  ~FdWatch() override { CloseHandle(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) {
    FdWatch* self = static_cast<FdWatch*>(h->data);
    if (!self || self->callback_.IsEmpty()) return;
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    try {
      self->callback_.MakeCallback(self->Value(), {Napi::Number::New(env, status < 0 ? -status : 0),
                                                   Napi::Number::New(env, events)});
    } catch (const Napi::Error& e) {
      // The process's 'uncaughtException' (fatal only when nothing handles it). Callers keep
      // their callbacks from throwing: DrmEventDispatcher reports listener errors itself.
      napi_fatal_exception(env, e.Value());
    }
  }

  void CloseHandle() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    CloseHandle();
    if (!callback_.IsEmpty()) callback_.Reset();
    if (!self_.IsEmpty()) self_.Reset();
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value Active(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), poll_ != nullptr); }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::Env env_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::ObjectReference self_;
};

}  // namespace

void InitDrm(Napi::Env env, Napi::Object exports) {
  struct Fn {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  static const Fn fns[] = {
      {"drmOpenPath", OpenPath},
      {"drmGetVersion", GetVersion},
      {"drmGetCap", GetCap},
      {"drmSetClientCap", SetClientCap},
      {"drmNodeType", NodeType},
      {"drmFstatRdev", FstatRdev},
      {"drmIsMaster", IsMaster},
      {"drmGetResources", GetResources},
      {"drmGetPlaneResources", GetPlaneResources},
      {"drmGetCrtc", GetCrtc},
      {"drmGetEncoder", GetEncoder},
      {"drmGetConnector", GetConnector},
      {"drmGetPlane", GetPlane},
      {"drmGetObjectProperties", GetObjectProperties},
      {"drmGetProperty", GetProperty},
      {"drmGetPropertyBlob", GetPropertyBlob},
      {"drmCreatePropertyBlob", CreatePropertyBlob},
      {"drmDestroyPropertyBlob", DestroyPropertyBlob},
      {"drmPrimeFdToHandle", PrimeFdToHandle},
      {"drmPrimeHandleToFd", PrimeHandleToFd},
      {"drmGemClose", GemClose},
      {"drmAddFB2", AddFB2},
      {"drmAddFB", AddFB},
      {"drmRmFB", RmFB},
      {"drmCloseFB", CloseFB},
      {"drmAtomicCommit", AtomicCommit},
      {"drmReadEvents", ReadDrmEvents},
  };
  for (const Fn& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  exports.Set("FdWatch", FdWatch::Define(env));
}

}  // namespace primebuf
