// v4l2: the V4L2 ioctls primebuf needs, against the kernel's linux/videodev2.h (no libv4l).
// Mechanism only: which format to pick, how many buffers, who owns them and when to queue them
// is decided in src/v4l2. Every function takes the device fd (owned by a V4l2Device in
// TypeScript); the fds it returns (the device's, EXPBUF's dma-bufs) are owned by the caller.
// The device fd is polled on the libuv loop with the generic FdWatch (native/drm.cc).
#include <fcntl.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

namespace primebuf {
namespace {

int Xioctl(int fd, unsigned long req, void* arg) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc == -1 && errno == EINTR);
  return rc;
}

std::string Dev(int fd) { return "V4L2 fd " + std::to_string(fd); }

bool IsMplane(uint32_t type) {
  return type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE || type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

std::string Str(const __u8* s, size_t n) { return std::string(reinterpret_cast<const char*>(s), strnlen(reinterpret_cast<const char*>(s), n)); }

uint32_t GetU32(Napi::Object o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

// v4l2Open(path) -> fd: O_RDWR | O_NONBLOCK | O_CLOEXEC (DQBUF answers EAGAIN instead of blocking).
Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open", path);
  return Napi::Number::New(info.Env(), fd);
}

// v4l2QueryCap(fd) -> { driver, card, busInfo, version, capabilities, deviceCaps }
Napi::Value QueryCap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_capability cap = {};
  if (Xioctl(fd, VIDIOC_QUERYCAP, &cap) != 0) ThrowErrno(env, errno, "VIDIOC_QUERYCAP", Dev(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("driver", Str(cap.driver, sizeof cap.driver));
  o.Set("card", Str(cap.card, sizeof cap.card));
  o.Set("busInfo", Str(cap.bus_info, sizeof cap.bus_info));
  o.Set("version", Napi::Number::New(env, cap.version));
  o.Set("capabilities", Napi::Number::New(env, cap.capabilities));
  o.Set("deviceCaps", Napi::Number::New(env, (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities));
  return o;
}

// VIDIOC_ENUM_* with index 0, 1, ... until EINVAL (ENOTTY: the driver has no such list):
// `fill` completes the request, `use(i, answer)` reads an answer and returns false to stop.
template <class S, class Fill, class Use>
void Enumerate(Napi::Env env, int fd, unsigned long req, const char* name, Fill fill, Use use) {
  for (uint32_t i = 0;; i++) {
    S s = {};
    s.index = i;
    fill(s);
    if (Xioctl(fd, req, &s) != 0) {
      if (errno == EINVAL || errno == ENOTTY) return;
      ThrowErrno(env, errno, name, Dev(fd) + " index " + std::to_string(i));
    }
    if (!use(i, s)) return;
  }
}

// v4l2EnumFmt(fd, type) -> [{ index, flags, description, pixelformat }]
Napi::Value EnumFmt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t type = ArgU32(info, 1, "type");
  Napi::Array out = Napi::Array::New(env);
  Enumerate<struct v4l2_fmtdesc>(env, fd, VIDIOC_ENUM_FMT, "VIDIOC_ENUM_FMT", [&](auto& d) { d.type = type; }, [&](uint32_t i, const auto& d) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", Napi::Number::New(env, d.index));
    o.Set("flags", Napi::Number::New(env, d.flags));
    o.Set("description", Str(d.description, sizeof d.description));
    o.Set("pixelformat", Napi::Number::New(env, d.pixelformat));
    out.Set(i, o);
    return true;
  });
  return out;
}

// v4l2EnumFrameSizes(fd, pixelformat) -> { kind: 'discrete', sizes: [{width, height}] } |
//   { kind: 'stepwise' | 'continuous', minWidth, maxWidth, stepWidth, minHeight, maxHeight, stepHeight }
//   | null when the driver does not enumerate sizes (ENOTTY / EINVAL at index 0).
Napi::Value EnumFrameSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t pixfmt = ArgU32(info, 1, "pixelformat");
  Napi::Array sizes = Napi::Array::New(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", "discrete");
  Enumerate<struct v4l2_frmsizeenum>(env, fd, VIDIOC_ENUM_FRAMESIZES, "VIDIOC_ENUM_FRAMESIZES", [&](auto& f) { f.pixel_format = pixfmt; },
                                     [&](uint32_t i, const auto& f) {
    if (f.type != V4L2_FRMSIZE_TYPE_DISCRETE) {
      out.Set("kind", f.type == V4L2_FRMSIZE_TYPE_CONTINUOUS ? "continuous" : "stepwise");
      out.Set("minWidth", Napi::Number::New(env, f.stepwise.min_width));
      out.Set("maxWidth", Napi::Number::New(env, f.stepwise.max_width));
      out.Set("stepWidth", Napi::Number::New(env, f.stepwise.step_width));
      out.Set("minHeight", Napi::Number::New(env, f.stepwise.min_height));
      out.Set("maxHeight", Napi::Number::New(env, f.stepwise.max_height));
      out.Set("stepHeight", Napi::Number::New(env, f.stepwise.step_height));
      return false;
    }
    Napi::Object s = Napi::Object::New(env);
    s.Set("width", Napi::Number::New(env, f.discrete.width));
    s.Set("height", Napi::Number::New(env, f.discrete.height));
    sizes.Set(i, s);
    return true;
  });
  if (out.Get("kind").As<Napi::String>().Utf8Value() != "discrete") return out;
  if (sizes.Length() == 0) return env.Null();
  out.Set("sizes", sizes);
  return out;
}

// The one format shape for both APIs: { type, width, height, pixelformat, field, colorspace,
// ycbcrEnc, quantization, xferFunc, planes: [{ bytesperline, sizeimage }] } (one entry for the
// single-planar API; the kernel sets its priv to V4L2_PIX_FMT_PRIV_MAGIC, so the extended fields
// are valid there too).
template <class P>
void CommonToJs(Napi::Env env, Napi::Object o, const P& p) {
  o.Set("width", Napi::Number::New(env, p.width));
  o.Set("height", Napi::Number::New(env, p.height));
  o.Set("pixelformat", Napi::Number::New(env, p.pixelformat));
  o.Set("field", Napi::Number::New(env, p.field));
  o.Set("colorspace", Napi::Number::New(env, p.colorspace));
  o.Set("ycbcrEnc", Napi::Number::New(env, p.ycbcr_enc));
  o.Set("quantization", Napi::Number::New(env, p.quantization));
  o.Set("xferFunc", Napi::Number::New(env, p.xfer_func));
}

Napi::Object PlaneToJs(Napi::Env env, uint32_t bytesperline, uint32_t sizeimage) {
  Napi::Object pl = Napi::Object::New(env);
  pl.Set("bytesperline", Napi::Number::New(env, bytesperline));
  pl.Set("sizeimage", Napi::Number::New(env, sizeimage));
  return pl;
}

Napi::Object FormatToJs(Napi::Env env, const struct v4l2_format& f) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array planes = Napi::Array::New(env);
  o.Set("type", Napi::Number::New(env, f.type));
  if (IsMplane(f.type)) {
    const auto& p = f.fmt.pix_mp;
    CommonToJs(env, o, p);
    for (uint32_t i = 0; i < p.num_planes && i < VIDEO_MAX_PLANES; i++)
      planes.Set(i, PlaneToJs(env, p.plane_fmt[i].bytesperline, p.plane_fmt[i].sizeimage));
  } else {
    CommonToJs(env, o, f.fmt.pix);
    planes.Set(0u, PlaneToJs(env, f.fmt.pix.bytesperline, f.fmt.pix.sizeimage));
  }
  o.Set("planes", planes);
  return o;
}

template <class P>
void CommonFromJs(Napi::Object o, P* p) {
  p->width = GetU32(o, "width", 0);
  p->height = GetU32(o, "height", 0);
  p->pixelformat = GetU32(o, "pixelformat", 0);
  p->field = GetU32(o, "field", V4L2_FIELD_NONE);
}

// Fills a v4l2_format from { width, height, pixelformat, field?, planes?: [{ bytesperline?, sizeimage? }] }.
void FormatFromJs(Napi::Env env, uint32_t type, Napi::Value v, struct v4l2_format* f) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "format must be an object");
  Napi::Object o = v.As<Napi::Object>();
  memset(f, 0, sizeof *f);
  f->type = type;
  Napi::Value pv = o.Get("planes");
  Napi::Array planes = pv.IsArray() ? pv.As<Napi::Array>() : Napi::Array::New(env);
  if (planes.Length() > VIDEO_MAX_PLANES) throw Napi::RangeError::New(env, "at most VIDEO_MAX_PLANES planes");
  auto plane = [&](uint32_t i, __u32* bytesperline, __u32* sizeimage) {
    Napi::Value e = planes.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "planes[] must be objects");
    *bytesperline = GetU32(e.As<Napi::Object>(), "bytesperline", 0);
    *sizeimage = GetU32(e.As<Napi::Object>(), "sizeimage", 0);
  };
  if (IsMplane(type)) {
    auto& p = f->fmt.pix_mp;
    CommonFromJs(o, &p);
    p.num_planes = static_cast<__u8>(planes.Length());
    for (uint32_t i = 0; i < planes.Length(); i++) plane(i, &p.plane_fmt[i].bytesperline, &p.plane_fmt[i].sizeimage);
  } else {
    CommonFromJs(o, &f->fmt.pix);
    if (planes.Length() > 0) plane(0, &f->fmt.pix.bytesperline, &f->fmt.pix.sizeimage);
  }
}

// v4l2GetFmt(fd, type) -> format
Napi::Value GetFmt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_format f = {};
  f.type = ArgU32(info, 1, "type");
  if (Xioctl(fd, VIDIOC_G_FMT, &f) != 0) ThrowErrno(env, errno, "VIDIOC_G_FMT", Dev(fd));
  return FormatToJs(env, f);
}

// v4l2SetFmt(fd, type, format) / v4l2TryFmt(fd, type, format) -> the format the driver made of it.
template <unsigned long Req>
Napi::Value SetOrTryFmt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t type = ArgU32(info, 1, "type");
  struct v4l2_format f;
  FormatFromJs(env, type, info[2], &f);
  if (Xioctl(fd, Req, &f) != 0) ThrowErrno(env, errno, Req == VIDIOC_S_FMT ? "VIDIOC_S_FMT" : "VIDIOC_TRY_FMT", Dev(fd));
  return FormatToJs(env, f);
}

// v4l2ReqBufs(fd, type, memory, count) -> { count, capabilities }. count 0 frees every buffer
// (and answers the queue's capabilities: V4L2_BUF_CAP_SUPPORTS_DMABUF, ...).
Napi::Value ReqBufs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_requestbuffers r = {};
  r.type = ArgU32(info, 1, "type");
  r.memory = ArgU32(info, 2, "memory");
  r.count = ArgU32(info, 3, "count");
  if (Xioctl(fd, VIDIOC_REQBUFS, &r) != 0)
    ThrowErrno(env, errno, "VIDIOC_REQBUFS", Dev(fd) + " memory " + std::to_string(r.memory) + " count " + std::to_string(r.count));
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, r.count));
  o.Set("capabilities", Napi::Number::New(env, r.capabilities));
  return o;
}

// v4l2CreateBufs(fd, type, memory, count, format) -> { index, count, capabilities }: adds
// buffers sized for `format` (G_FMT's when omitted) to the queue.
Napi::Value CreateBufs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_create_buffers c = {};
  uint32_t type = ArgU32(info, 1, "type");
  c.memory = ArgU32(info, 2, "memory");
  c.count = ArgU32(info, 3, "count");
  if (info.Length() > 4 && info[4].IsObject()) {
    FormatFromJs(env, type, info[4], &c.format);
  } else {
    c.format.type = type;
    if (Xioctl(fd, VIDIOC_G_FMT, &c.format) != 0) ThrowErrno(env, errno, "VIDIOC_G_FMT", Dev(fd));
  }
  if (Xioctl(fd, VIDIOC_CREATE_BUFS, &c) != 0)
    ThrowErrno(env, errno, "VIDIOC_CREATE_BUFS", Dev(fd) + " memory " + std::to_string(c.memory) + " count " + std::to_string(c.count));
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, c.index));
  o.Set("count", Napi::Number::New(env, c.count));
  o.Set("capabilities", Napi::Number::New(env, c.capabilities));
  return o;
}

// A buffer's shape for both APIs: { index, flags, sequence, field, timestampUs, planes:
// [{ bytesused, length, offset (MMAP), dataOffset }] }.
Napi::Object BufferToJs(Napi::Env env, const struct v4l2_buffer& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, b.index));
  o.Set("flags", Napi::Number::New(env, b.flags));
  o.Set("sequence", Napi::Number::New(env, b.sequence));
  o.Set("field", Napi::Number::New(env, b.field));
  o.Set("timestampUs", Napi::Number::New(env, static_cast<double>(b.timestamp.tv_sec) * 1e6 + static_cast<double>(b.timestamp.tv_usec)));
  Napi::Array planes = Napi::Array::New(env);
  if (IsMplane(b.type)) {
    for (uint32_t i = 0; i < b.length; i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("bytesused", Napi::Number::New(env, b.m.planes[i].bytesused));
      p.Set("length", Napi::Number::New(env, b.m.planes[i].length));
      p.Set("offset", Napi::Number::New(env, b.memory == V4L2_MEMORY_MMAP ? b.m.planes[i].m.mem_offset : 0));
      p.Set("dataOffset", Napi::Number::New(env, b.m.planes[i].data_offset));
      planes.Set(i, p);
    }
  } else {
    Napi::Object p = Napi::Object::New(env);
    p.Set("bytesused", Napi::Number::New(env, b.bytesused));
    p.Set("length", Napi::Number::New(env, b.length));
    p.Set("offset", Napi::Number::New(env, b.memory == V4L2_MEMORY_MMAP ? b.m.offset : 0));
    p.Set("dataOffset", Napi::Number::New(env, 0));
    planes.Set(0u, p);
  }
  o.Set("planes", planes);
  return o;
}

// v4l2QueryBuf(fd, type, memory, index) -> buffer
Napi::Value QueryBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_plane planes[VIDEO_MAX_PLANES] = {};
  struct v4l2_buffer b = {};
  b.type = ArgU32(info, 1, "type");
  b.memory = ArgU32(info, 2, "memory");
  b.index = ArgU32(info, 3, "index");
  if (IsMplane(b.type)) {
    b.m.planes = planes;
    b.length = VIDEO_MAX_PLANES;
  }
  if (Xioctl(fd, VIDIOC_QUERYBUF, &b) != 0) ThrowErrno(env, errno, "VIDIOC_QUERYBUF", Dev(fd) + " index " + std::to_string(b.index));
  return BufferToJs(env, b);
}

// v4l2QBuf(fd, type, memory, index, planes: [{ fd?, length?, bytesused? }]): queues a buffer; for
// DMABUF memory each plane carries its dma-buf fd (the kernel takes its own reference: the
// caller keeps ownership of the fd). Output queues pass bytesused.
Napi::Value QBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_plane planes[VIDEO_MAX_PLANES] = {};
  struct v4l2_buffer b = {};
  b.type = ArgU32(info, 1, "type");
  b.memory = ArgU32(info, 2, "memory");
  b.index = ArgU32(info, 3, "index");
  b.field = V4L2_FIELD_NONE;
  Napi::Array arr = info[4].IsArray() ? info[4].As<Napi::Array>() : Napi::Array::New(env);
  if (arr.Length() > VIDEO_MAX_PLANES) throw Napi::RangeError::New(env, "at most VIDEO_MAX_PLANES planes");
  auto plane = [&](uint32_t i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "planes[] must be objects");
    return e.As<Napi::Object>();
  };
  if (IsMplane(b.type)) {
    b.m.planes = planes;
    b.length = arr.Length();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object p = plane(i);
      if (b.memory == V4L2_MEMORY_DMABUF) planes[i].m.fd = static_cast<int32_t>(GetU32(p, "fd", 0));
      planes[i].length = GetU32(p, "length", 0);
      planes[i].bytesused = GetU32(p, "bytesused", 0);
    }
  } else if (arr.Length() > 0) {
    Napi::Object p = plane(0);
    if (b.memory == V4L2_MEMORY_DMABUF) b.m.fd = static_cast<int32_t>(GetU32(p, "fd", 0));
    b.length = GetU32(p, "length", 0);
    b.bytesused = GetU32(p, "bytesused", 0);
  }
  if (Xioctl(fd, VIDIOC_QBUF, &b) != 0) ThrowErrno(env, errno, "VIDIOC_QBUF", Dev(fd) + " index " + std::to_string(b.index));
  return env.Undefined();
}

// v4l2DQBuf(fd, type, memory) -> buffer | null (EAGAIN: nothing done yet; the fd is non-blocking).
Napi::Value DQBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_plane planes[VIDEO_MAX_PLANES] = {};
  struct v4l2_buffer b = {};
  b.type = ArgU32(info, 1, "type");
  b.memory = ArgU32(info, 2, "memory");
  if (IsMplane(b.type)) {
    b.m.planes = planes;
    b.length = VIDEO_MAX_PLANES;
  }
  if (Xioctl(fd, VIDIOC_DQBUF, &b) != 0) {
    if (errno == EAGAIN) return env.Null();
    ThrowErrno(env, errno, "VIDIOC_DQBUF", Dev(fd));
  }
  return BufferToJs(env, b);
}

// v4l2ExpBuf(fd, type, index, plane) -> a dma-buf fd (O_RDWR | O_CLOEXEC) of an MMAP buffer's plane.
Napi::Value ExpBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct v4l2_exportbuffer e = {};
  e.type = ArgU32(info, 1, "type");
  e.index = ArgU32(info, 2, "index");
  e.plane = ArgU32(info, 3, "plane");
  e.flags = O_RDWR | O_CLOEXEC;
  if (Xioctl(fd, VIDIOC_EXPBUF, &e) != 0)
    ThrowErrno(env, errno, "VIDIOC_EXPBUF", Dev(fd) + " index " + std::to_string(e.index) + " plane " + std::to_string(e.plane));
  return Napi::Number::New(env, e.fd);
}

template <unsigned long Req>
Napi::Value Stream(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int type = static_cast<int>(ArgU32(info, 1, "type"));
  if (Xioctl(fd, Req, &type) != 0) ThrowErrno(info.Env(), errno, Req == VIDIOC_STREAMON ? "VIDIOC_STREAMON" : "VIDIOC_STREAMOFF", Dev(fd));
  return info.Env().Undefined();
}

// v4l2EnumInputs(fd) -> [{ index, name, type }]
Napi::Value EnumInputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Array out = Napi::Array::New(env);
  Enumerate<struct v4l2_input>(env, fd, VIDIOC_ENUMINPUT, "VIDIOC_ENUMINPUT", [](auto&) {}, [&](uint32_t i, const auto& in) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", Napi::Number::New(env, in.index));
    o.Set("name", Str(in.name, sizeof in.name));
    o.Set("type", Napi::Number::New(env, in.type));
    out.Set(i, o);
    return true;
  });
  return out;
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* k, uint32_t v) { c.Set(k, Napi::Number::New(env, v)); };
  set("BUF_TYPE_VIDEO_CAPTURE", V4L2_BUF_TYPE_VIDEO_CAPTURE);
  set("BUF_TYPE_VIDEO_OUTPUT", V4L2_BUF_TYPE_VIDEO_OUTPUT);
  set("BUF_TYPE_VIDEO_CAPTURE_MPLANE", V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE);
  set("BUF_TYPE_VIDEO_OUTPUT_MPLANE", V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE);
  set("MEMORY_MMAP", V4L2_MEMORY_MMAP);
  set("MEMORY_DMABUF", V4L2_MEMORY_DMABUF);
  set("CAP_VIDEO_CAPTURE", V4L2_CAP_VIDEO_CAPTURE);
  set("CAP_VIDEO_OUTPUT", V4L2_CAP_VIDEO_OUTPUT);
  set("CAP_VIDEO_CAPTURE_MPLANE", V4L2_CAP_VIDEO_CAPTURE_MPLANE);
  set("CAP_VIDEO_OUTPUT_MPLANE", V4L2_CAP_VIDEO_OUTPUT_MPLANE);
  set("CAP_STREAMING", V4L2_CAP_STREAMING);
  set("BUF_CAP_SUPPORTS_MMAP", V4L2_BUF_CAP_SUPPORTS_MMAP);
  set("BUF_CAP_SUPPORTS_DMABUF", V4L2_BUF_CAP_SUPPORTS_DMABUF);
  set("BUF_FLAG_ERROR", V4L2_BUF_FLAG_ERROR);
  set("BUF_FLAG_LAST", V4L2_BUF_FLAG_LAST);
  set("BUF_FLAG_TIMESTAMP_MONOTONIC", V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC);
  set("FMT_FLAG_COMPRESSED", V4L2_FMT_FLAG_COMPRESSED);
  set("FMT_FLAG_EMULATED", V4L2_FMT_FLAG_EMULATED);
  set("FIELD_NONE", V4L2_FIELD_NONE);
  set("VIDEO_MAX_PLANES", VIDEO_MAX_PLANES);
  return c;
}

}  // namespace

void InitV4l2(Napi::Env env, Napi::Object exports) {
  exports.Set("v4l2Open", Napi::Function::New(env, Open, "v4l2Open"));
  exports.Set("v4l2QueryCap", Napi::Function::New(env, QueryCap, "v4l2QueryCap"));
  exports.Set("v4l2EnumFmt", Napi::Function::New(env, EnumFmt, "v4l2EnumFmt"));
  exports.Set("v4l2EnumFrameSizes", Napi::Function::New(env, EnumFrameSizes, "v4l2EnumFrameSizes"));
  exports.Set("v4l2EnumInputs", Napi::Function::New(env, EnumInputs, "v4l2EnumInputs"));
  exports.Set("v4l2GetFmt", Napi::Function::New(env, GetFmt, "v4l2GetFmt"));
  exports.Set("v4l2SetFmt", Napi::Function::New(env, SetOrTryFmt<VIDIOC_S_FMT>, "v4l2SetFmt"));
  exports.Set("v4l2TryFmt", Napi::Function::New(env, SetOrTryFmt<VIDIOC_TRY_FMT>, "v4l2TryFmt"));
  exports.Set("v4l2ReqBufs", Napi::Function::New(env, ReqBufs, "v4l2ReqBufs"));
  exports.Set("v4l2CreateBufs", Napi::Function::New(env, CreateBufs, "v4l2CreateBufs"));
  exports.Set("v4l2QueryBuf", Napi::Function::New(env, QueryBuf, "v4l2QueryBuf"));
  exports.Set("v4l2QBuf", Napi::Function::New(env, QBuf, "v4l2QBuf"));
  exports.Set("v4l2DQBuf", Napi::Function::New(env, DQBuf, "v4l2DQBuf"));
  exports.Set("v4l2ExpBuf", Napi::Function::New(env, ExpBuf, "v4l2ExpBuf"));
  exports.Set("v4l2StreamOn", Napi::Function::New(env, Stream<VIDIOC_STREAMON>, "v4l2StreamOn"));
  exports.Set("v4l2StreamOff", Napi::Function::New(env, Stream<VIDIOC_STREAMOFF>, "v4l2StreamOff"));
  exports.Set("v4l2", Constants(env));
}

}  // namespace primebuf
