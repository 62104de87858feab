// compose: the mechanism of software composition (pixman, as Weston's and wlroots' pixman
// renderers use it). One job blends a list of layers, bottom to top, premultiplied OVER, onto a
// background colour, into the pixels of a target inside a clip region, on libuv's thread pool.
//
// The target is written, never read: the clip region is composed band by band (a few dozen rows
// of one region rectangle at a time) in a cached scratch image that starts as the background,
// and each finished band goes out to the target with copy.cc's streaming stores. So the target's
// old content never matters (a dma-buf target needs only a WRITE bracket, and write-combined
// memory is never read back), at the price of one extra pass over the composed pixels in L2.
//
// A source is read by pixman in place (a sub-image over its src rectangle's bounding pixels,
// edges clamped: PIXMAN_REPEAT_PAD), except where it must be staged first into a scratch copy of
// those pixels: a YUYV/NV12 source (pixman has none of them: converted to XRGB8888 by copy.cc's
// conversion), a source read under the SIGBUS guard (a wl_shm pool that may shrink: the guarded
// copy is copy.cc's guard around a plain row copy, so pixman never touches memory that may
// fault), and one whose rows pixman cannot take (stride or start not a multiple of 4 bytes).
//
// Every rectangle, stride and plane is checked here before the job is queued (RangeError /
// TypeError); keeping the memory mapped until the promise settles is the caller's (compose.ts).
#include <drm_fourcc.h>
#include <pixman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "copy.h"

namespace primebuf {
namespace {

// DRM fourcc -> pixman format (the same bit layout in little-endian words), and the variant
// without alpha that `opaque` picks.
struct PixmanFormat {
  uint32_t drm;
  pixman_format_code_t format, opaque;
};
constexpr PixmanFormat kPixmanFormats[] = {
    {DRM_FORMAT_XRGB8888, PIXMAN_x8r8g8b8, PIXMAN_x8r8g8b8},
    {DRM_FORMAT_ARGB8888, PIXMAN_a8r8g8b8, PIXMAN_x8r8g8b8},
    {DRM_FORMAT_XBGR8888, PIXMAN_x8b8g8r8, PIXMAN_x8b8g8r8},
    {DRM_FORMAT_ABGR8888, PIXMAN_a8b8g8r8, PIXMAN_x8b8g8r8},
    {DRM_FORMAT_RGBX8888, PIXMAN_r8g8b8x8, PIXMAN_r8g8b8x8},
    {DRM_FORMAT_RGBA8888, PIXMAN_r8g8b8a8, PIXMAN_r8g8b8x8},
    {DRM_FORMAT_BGRX8888, PIXMAN_b8g8r8x8, PIXMAN_b8g8r8x8},
    {DRM_FORMAT_BGRA8888, PIXMAN_b8g8r8a8, PIXMAN_b8g8r8x8},
    {DRM_FORMAT_XRGB2101010, PIXMAN_x2r10g10b10, PIXMAN_x2r10g10b10},
    {DRM_FORMAT_ARGB2101010, PIXMAN_a2r10g10b10, PIXMAN_x2r10g10b10},
    {DRM_FORMAT_XBGR2101010, PIXMAN_x2b10g10r10, PIXMAN_x2b10g10r10},
    {DRM_FORMAT_ABGR2101010, PIXMAN_a2b10g10r10, PIXMAN_x2b10g10r10},
    {DRM_FORMAT_RGB888, PIXMAN_r8g8b8, PIXMAN_r8g8b8},
    {DRM_FORMAT_BGR888, PIXMAN_b8g8r8, PIXMAN_b8g8r8},
    {DRM_FORMAT_RGB565, PIXMAN_r5g6b5, PIXMAN_r5g6b5},
    {DRM_FORMAT_BGR565, PIXMAN_b5g6r5, PIXMAN_b5g6r5},
    {DRM_FORMAT_XRGB1555, PIXMAN_x1r5g5b5, PIXMAN_x1r5g5b5},
    {DRM_FORMAT_ARGB1555, PIXMAN_a1r5g5b5, PIXMAN_x1r5g5b5},
    {DRM_FORMAT_XRGB4444, PIXMAN_x4r4g4b4, PIXMAN_x4r4g4b4},
    {DRM_FORMAT_ARGB4444, PIXMAN_a4r4g4b4, PIXMAN_x4r4g4b4},
};

const PixmanFormat* PixmanOf(uint32_t drm) {
  for (const auto& f : kPixmanFormats)
    if (f.drm == drm) return &f;
  return nullptr;
}

std::string FourccText(uint32_t f) {
  char b[32];
  snprintf(b, sizeof b, "0x%08x ('%c%c%c%c')", f, char(f), char(f >> 8), char(f >> 16), char(f >> 24));
  return b;
}

// rotation bits, as the KMS plane property (include/uapi/drm/drm_mode.h)
constexpr uint32_t kRotate0 = 1, kRotate90 = 2, kRotate180 = 4, kRotate270 = 8, kReflectX = 16, kReflectY = 32;

struct IRect {
  int64_t x, y, w, h;
};

// One layer, validated: what the pool thread needs, nothing N-API.
struct Layer {
  bool solid = false;
  pixman_color_t color{};  // solid: premultiplied, 16 bits a channel
  IRect dst{};
  // image:
  Surface src;
  pixman_format_code_t format{};  // of the image pixman reads (the source's, or the staging's)
  bool stage = false;             // copy (or convert) the pixels into `staged` first
  bool guarded = false;           // that copy runs under the SIGBUS guard
  bool yuv = false;
  YuvMatrix matrix;
  double sx = 0, sy = 0, sw = 0, sh = 0;  // src rectangle, source pixels
  int64_t ix = 0, iy = 0, iw = 0, ih = 0;  // its bounding pixels (the sub-image pixman reads)
  uint32_t rotation = kRotate0;
  bool exact = false;      // integer src, unscaled: nearest (every destination pixel one source pixel)
  bool identity = false;   // exact, and neither rotated nor reflected: no transform at all
  // the pool thread's: a staged layer holds only the part of its sub-image the clip reads,
  // qx, qy (sub-image pixels) its origin, qw x qh its size (the whole sub-image when not staged)
  int64_t qx = 0, qy = 0, qw = 0, qh = 0;
  uint8_t* staged = nullptr;  // the pool thread's scratch (ThreadScratch), valid during the job
  pixman_image_t* image = nullptr;
};

struct ComposeJobData {
  Surface target;
  pixman_format_code_t format{};
  pixman_color_t background{};
  std::vector<IRect> clip;  // inside the target
  std::vector<Layer> layers;
  std::vector<int> readFds;
  uint64_t bytes = 0;
  ~ComposeJobData() {
    for (auto& l : layers)
      if (l.image) pixman_image_unref(l.image);
  }
};

int64_t IntField(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -1073741824.0 && d <= 1073741824.0) || d != std::floor(d)) throw Napi::RangeError::New(env, name + " must be an integer in [-2^30, 2^30]");
  return int64_t(d);
}

// {x, y, width, height} of integers, width and height positive
IRect ReadIRect(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, name + " must be an object {x, y, width, height}");
  Napi::Object o = v.As<Napi::Object>();
  IRect r{IntField(env, o.Get("x"), name + ".x"), IntField(env, o.Get("y"), name + ".y"), IntField(env, o.Get("width"), name + ".width"),
          IntField(env, o.Get("height"), name + ".height")};
  if (r.w <= 0 || r.h <= 0) throw Napi::RangeError::New(env, name + ": width and height must be positive (got " + std::to_string(r.w) + "x" + std::to_string(r.h) + ")");
  return r;
}

// [r, g, b, a], premultiplied, each an integer in [0, 255], a channel never above alpha
pixman_color_t ReadColor(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 4) throw Napi::TypeError::New(env, name + " must be [r, g, b, a] (8-bit, premultiplied)");
  Napi::Array a = v.As<Napi::Array>();
  uint16_t c[4];
  for (uint32_t i = 0; i < 4; i++) {
    int64_t x = IntField(env, a.Get(i), name + "[" + std::to_string(i) + "]");
    if (x < 0 || x > 255) throw Napi::RangeError::New(env, name + ": channels are integers in [0, 255]");
    c[i] = uint16_t(x * 257);  // pixman keeps the high byte: exactly x
  }
  if (c[0] > c[3] || c[1] > c[3] || c[2] > c[3]) throw Napi::RangeError::New(env, name + ": a premultiplied channel cannot exceed alpha");
  return pixman_color_t{c[0], c[1], c[2], c[3]};
}

double FiniteField(Napi::Env env, Napi::Object o, const std::string& name, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, name + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::RangeError::New(env, name + "." + key + " must be finite");
  return d;
}

void ReadImageLayer(Napi::Env env, Napi::Object o, const std::string& name, Layer& l, std::vector<Napi::ObjectReference>& keep) {
  Napi::Object data;
  l.src = ReadSurface(env, o.Get("source"), (name + ".source").c_str(), &data);
  keep.push_back(Napi::Persistent(data));
  const Surface& s = l.src;
  l.yuv = s.format == DRM_FORMAT_YUYV || s.format == DRM_FORMAT_NV12;
  const bool opaque = o.Get("opaque").ToBoolean();
  if (l.yuv) {
    l.matrix = ReadYuvMatrix(env, o, name.c_str());
    l.format = PIXMAN_x8r8g8b8;
    l.stage = true;
  } else {
    const PixmanFormat* f = PixmanOf(s.format);
    if (!f)
      throw Napi::RangeError::New(env, name + ": source format " + FourccText(s.format) +
                                           " cannot be composed (32-bit RGB with or without alpha, RGB888, RGB565, 1555, 4444, 2101010, YUYV and NV12 can)");
    l.format = opaque ? f->opaque : f->format;
  }
  l.guarded = o.Get("guarded").ToBoolean();
  // the src rectangle, in source pixels
  Napi::Value sv = o.Get("src");
  if (sv.IsUndefined()) {
    l.sx = 0, l.sy = 0, l.sw = s.width, l.sh = s.height;
  } else {
    if (!sv.IsObject()) throw Napi::TypeError::New(env, name + ".src must be an object {x, y, width, height}");
    Napi::Object so = sv.As<Napi::Object>();
    l.sx = FiniteField(env, so, name + ".src", "x"), l.sy = FiniteField(env, so, name + ".src", "y");
    l.sw = FiniteField(env, so, name + ".src", "width"), l.sh = FiniteField(env, so, name + ".src", "height");
  }
  if (!(l.sw > 0 && l.sh > 0)) throw Napi::RangeError::New(env, name + ".src: width and height must be positive");
  if (l.sx < 0 || l.sy < 0 || l.sx + l.sw > s.width || l.sy + l.sh > s.height)
    throw Napi::RangeError::New(env, name + ".src (" + std::to_string(l.sw) + "x" + std::to_string(l.sh) + "+" + std::to_string(l.sx) + "+" +
                                         std::to_string(l.sy) + ") is outside the " + std::to_string(s.width) + "x" + std::to_string(s.height) + " source");
  if (s.width > 32767 || s.height > 32767 || l.dst.w > 32767 || l.dst.h > 32767)
    throw Napi::RangeError::New(env, name + ": sizes above 32767 pixels do not fit pixman's 16.16 fixed point");
  l.ix = int64_t(std::floor(l.sx)), l.iy = int64_t(std::floor(l.sy));
  l.iw = int64_t(std::ceil(l.sx + l.sw)) - l.ix, l.ih = int64_t(std::ceil(l.sy + l.sh)) - l.iy;
  if (l.yuv && l.ix % 2) l.ix--, l.iw++;  // chroma pairs: staged from an even column
  // rotation: one ROTATE_* bit, any REFLECT_* bits
  Napi::Value rv = o.Get("rotation");
  if (!rv.IsUndefined()) {
    int64_t r = IntField(env, rv, name + ".rotation");
    uint32_t rot = uint32_t(r) & 15;
    if (r < 0 || (r & ~int64_t(63)) || (rot != kRotate0 && rot != kRotate90 && rot != kRotate180 && rot != kRotate270))
      throw Napi::RangeError::New(env, name + ".rotation " + std::to_string(r) +
                                           ": exactly one DRM_MODE_ROTATE_* bit (1, 2, 4, 8), optionally DRM_MODE_REFLECT_X (16) and/or _Y (32)");
    l.rotation = uint32_t(r);
  }
  const bool swap = l.rotation & (kRotate90 | kRotate270);
  const double rw = swap ? l.sh : l.sw, rh = swap ? l.sw : l.sh;
  const bool integral = l.sx == std::floor(l.sx) && l.sy == std::floor(l.sy) && l.sw == std::floor(l.sw) && l.sh == std::floor(l.sh);
  l.exact = integral && rw == double(l.dst.w) && rh == double(l.dst.h);
  l.identity = l.exact && l.rotation == kRotate0;
  // pixman takes rows whose stride and start are multiples of 4 bytes
  const uint64_t start = uint64_t(l.iy) * s.stride + uint64_t(l.ix) * s.cpp;
  if (s.stride % 4 || (reinterpret_cast<uintptr_t>(s.base) + start) % 4) l.stage = true;
  if (l.guarded) l.stage = true;
}

// The affine map from a layer's destination pixels (relative to its dst origin, continuous) to
// its sub-image's, in the KMS plane's order (drm_blend.c, "rotation"; include/uapi/drm/drm_mode.h):
// the src rectangle is reflected first, then rotated counter-clockwise by the ROTATE_* angle,
// then scaled onto dst. Inverted here: destination -> rotated (R, rw x rh) -> reflected source.
void LayerPoint(const Layer& l, double X, double Y, double* px, double* py) {
  const bool swap = l.rotation & (kRotate90 | kRotate270);
  const double rw = swap ? l.sh : l.sw, rh = swap ? l.sw : l.sh;
  const double x = X * rw / double(l.dst.w), y = Y * rh / double(l.dst.h);
  double u, v;  // in the reflected src rectangle S', sw x sh
  switch (l.rotation & 15) {
    case kRotate90: u = l.sw - y, v = x; break;  // R's top-left is S's top-right
    case kRotate180: u = l.sw - x, v = l.sh - y; break;
    case kRotate270: u = y, v = l.sh - x; break;  // R's top-left is S's bottom-left
    default: u = x, v = y; break;
  }
  if (l.rotation & kReflectX) u = l.sw - u;
  if (l.rotation & kReflectY) v = l.sh - v;
  *px = u + (l.sx - double(l.ix));
  *py = v + (l.sy - double(l.iy));
}

// Pool thread, under the guard where asked: the sub-image's rows into `staged`.
struct StageCtx {
  Layer* l;
  uint32_t stride;
};
void StageRows(void* p) {
  auto* c = static_cast<StageCtx*>(p);
  Layer& l = *c->l;
  const Surface& s = l.src;
  const int64_t x = l.ix + l.qx, y = l.iy + l.qy;
  for (int64_t r = 0; r < l.qh; r++) {
    uint8_t* d = l.staged + uint64_t(r) * c->stride;
    if (l.yuv) {
      // a YUYV pair past the row's end is not read (an odd last column gets neutral chroma)
      YuvRowToXrgb(s, uint32_t(x), uint32_t(y + r), uint32_t(l.qw), d, l.matrix);
    } else {
      std::memcpy(d, s.base + uint64_t(y + r) * s.stride + uint64_t(x) * s.cpp, uint64_t(l.qw) * s.cpp);
    }
  }
}

// The part of a staged layer's sub-image that composing `boxes` reads (sub-image pixels): the
// bounding box of each box's part inside the layer's dst, mapped back through the layer's
// transform, a pixel of margin for bilinear sampling, clamped to the sub-image. Empty (qw or
// qh 0) when no box meets the layer. The whole sub-image would do too: staging only this part
// spares copying (and converting) what the frame's damage does not show, e.g. the rows of a
// surface of which only a corner changed.
void StagedPart(Layer& l, const std::vector<pixman_box32_t>& boxes) {
  double lo[2] = {1e18, 1e18}, hi[2] = {-1e18, -1e18};
  for (const auto& b : boxes) {
    const int64_t x0 = std::max<int64_t>(b.x1, l.dst.x), y0 = std::max<int64_t>(b.y1, l.dst.y);
    const int64_t x1 = std::min<int64_t>(b.x2, l.dst.x + l.dst.w), y1 = std::min<int64_t>(b.y2, l.dst.y + l.dst.h);
    if (x1 <= x0 || y1 <= y0) continue;
    const double cx[2] = {double(x0 - l.dst.x), double(x1 - l.dst.x)}, cy[2] = {double(y0 - l.dst.y), double(y1 - l.dst.y)};
    for (double X : cx)
      for (double Y : cy) {
        double px, py;
        LayerPoint(l, X, Y, &px, &py);
        lo[0] = std::min(lo[0], px), lo[1] = std::min(lo[1], py);
        hi[0] = std::max(hi[0], px), hi[1] = std::max(hi[1], py);
      }
  }
  l.qx = l.qy = l.qw = l.qh = 0;
  if (lo[0] > hi[0]) return;
  const int64_t m = l.identity ? 0 : 1;
  int64_t x0 = std::max<int64_t>(0, int64_t(std::floor(lo[0])) - m), y0 = std::max<int64_t>(0, int64_t(std::floor(lo[1])) - m);
  const int64_t x1 = std::min<int64_t>(l.iw, int64_t(std::ceil(hi[0])) + m), y1 = std::min<int64_t>(l.ih, int64_t(std::ceil(hi[1])) + m);
  if (l.yuv && x0 % 2) x0--;  // chroma pairs: staged from an even column
  if (x1 <= x0 || y1 <= y0) return;
  l.qx = x0, l.qy = y0, l.qw = x1 - x0, l.qh = y1 - y0;
}

// Scratch memory of a pool thread, kept from one job to the next (slot 0 the band, slot 1 + i
// layer i's staged copy): grown when a job needs more, never zeroed. A fresh allocation per job
// (every frame) paid the kernel's page faults and the zeroing of each byte again; a block past
// kKeepScratch is given back at the end of its job (a full-frame staging of a large mode).
constexpr size_t kKeepScratch = 16u << 20;
struct ScratchBlock {
  uint8_t* p = nullptr;
  size_t n = 0;
  ScratchBlock() = default;
  ScratchBlock(const ScratchBlock&) = delete;
  ScratchBlock& operator=(const ScratchBlock&) = delete;
  ScratchBlock(ScratchBlock&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr, o.n = 0; }
  ScratchBlock& operator=(ScratchBlock&&) = delete;
  ~ScratchBlock() { free(p); }
};
thread_local std::vector<ScratchBlock> tScratch;

// 64-byte aligned, at least `bytes`; nullptr when out of memory.
uint8_t* Scratch(size_t slot, size_t bytes) {
  if (tScratch.size() <= slot) tScratch.resize(slot + 1);
  ScratchBlock& b = tScratch[slot];
  if (b.n < bytes) {
    free(b.p);
    b.n = 0;
    b.p = static_cast<uint8_t*>(aligned_alloc(64, (bytes + 63) & ~size_t(63)));
    if (!b.p) return nullptr;
    b.n = bytes;
  }
  return b.p;
}

void TrimScratch() {
  for (auto& b : tScratch)
    if (b.n > kKeepScratch) free(b.p), b.p = nullptr, b.n = 0;
}

// Makes the pixman image a layer is read through (on the pool thread): 0 or an errno.
PoolResult PrepareLayer(Layer& l, size_t index, const std::vector<pixman_box32_t>& boxes) {
  if (l.solid) {
    l.image = pixman_image_create_solid_fill(&l.color);
    return l.image ? PoolResult{} : PoolResult{ENOMEM, "pixman_image_create_solid_fill", "layer " + std::to_string(index)};
  }
  const Surface& s = l.src;
  uint8_t* bits;
  uint32_t stride;
  l.qx = 0, l.qy = 0, l.qw = l.iw, l.qh = l.ih;
  if (l.stage) {
    StagedPart(l, boxes);
    if (l.qw == 0) return PoolResult{};  // outside the clip: never composed (RunCompose skips it)
    const uint32_t cpp = l.yuv ? 4 : s.cpp;
    stride = uint32_t((uint64_t(l.qw) * cpp + 3) & ~uint64_t(3));
    l.staged = Scratch(1 + index, uint64_t(stride) * l.qh);
    if (!l.staged) return PoolResult{ENOMEM, "malloc", "layer " + std::to_string(index) + ": staging"};
    StageCtx ctx{&l, stride};
    if (l.guarded) {
      if (!GuardedRead(s.base, s.length, StageRows, &ctx))
        return PoolResult{EFAULT, "SIGBUS", "layer " + std::to_string(index) + ": reading its source raised SIGBUS, the file behind it was truncated",
                          {{"layer", double(index)}}};
    } else {
      StageRows(&ctx);
    }
    bits = l.staged;
  } else {
    stride = s.stride;
    bits = s.base + uint64_t(l.iy) * s.stride + uint64_t(l.ix) * s.cpp;
  }
  l.image = pixman_image_create_bits_no_clear(l.format, int(l.qw), int(l.qh), reinterpret_cast<uint32_t*>(bits), int(stride));
  if (!l.image) return PoolResult{ENOMEM, "pixman_image_create_bits", "layer " + std::to_string(index)};
  if (l.identity) return PoolResult{};
  double x0, y0, x1, y1, x2, y2;
  LayerPoint(l, 0, 0, &x0, &y0);
  LayerPoint(l, 1, 0, &x1, &y1);
  LayerPoint(l, 0, 1, &x2, &y2);
  // sub-image pixels -> the staged part's (its origin at qx, qy)
  x0 -= double(l.qx), y0 -= double(l.qy), x1 -= double(l.qx), y1 -= double(l.qy), x2 -= double(l.qx), y2 -= double(l.qy);
  pixman_f_transform ft{};
  ft.m[0][0] = x1 - x0, ft.m[0][1] = x2 - x0, ft.m[0][2] = x0;
  ft.m[1][0] = y1 - y0, ft.m[1][1] = y2 - y0, ft.m[1][2] = y0;
  ft.m[2][2] = 1;
  pixman_transform t;
  if (!pixman_transform_from_pixman_f_transform(&t, &ft) || !pixman_image_set_transform(l.image, &t))
    return PoolResult{ERANGE, "pixman_image_set_transform", "layer " + std::to_string(index) + ": its scale does not fit 16.16 fixed point"};
  pixman_image_set_filter(l.image, l.exact ? PIXMAN_FILTER_NEAREST : PIXMAN_FILTER_BILINEAR, nullptr, 0);
  pixman_image_set_repeat(l.image, PIXMAN_REPEAT_PAD);  // edges clamp to the src rectangle's own pixels
  return PoolResult{};
}

// Whether a layer is opaque and its dst covers the band at (x, y), w x h, of the target.
bool Covers(const Layer& l, int64_t x, int64_t y, int64_t w, int64_t h) {
  const bool opaque = l.solid ? l.color.alpha == 0xffff : PIXMAN_FORMAT_A(l.format) == 0;
  return opaque && l.dst.x <= x && l.dst.y <= y && l.dst.x + l.dst.w >= x + w && l.dst.y + l.dst.h >= y + h;
}

// Rows of one band: about 256 KiB of scratch, so a band stays in L2 while its layers blend.
constexpr uint64_t kBandBytes = 256 * 1024;

PoolResult RunCompose(ComposeJobData& job) {
  // the clip rectangles' union, as disjoint bands (each target pixel composed once)
  pixman_region32_t region;
  std::vector<pixman_box32_t> boxes;
  for (const IRect& c : job.clip) boxes.push_back({int32_t(c.x), int32_t(c.y), int32_t(c.x + c.w), int32_t(c.y + c.h)});
  pixman_region32_init_rects(&region, boxes.data(), int(boxes.size()));
  int n = 0;
  const pixman_box32_t* b = pixman_region32_rectangles(&region, &n);
  boxes.assign(b, b + n);
  pixman_region32_fini(&region);
  for (size_t i = 0; i < job.layers.size(); i++) {
    PoolResult r = PrepareLayer(job.layers[i], i, boxes);
    if (r.err) return r;
  }

  const Surface& t = job.target;
  const bool blackBackground = PIXMAN_FORMAT_A(job.format) == 0 && job.background.red == 0 && job.background.green == 0 && job.background.blue == 0 &&
                               job.background.alpha == 0xffff;
  int64_t maxW = 1;
  for (const auto& box : boxes) maxW = std::max<int64_t>(maxW, box.x2 - box.x1);
  const uint32_t sstride = uint32_t((uint64_t(maxW) * t.cpp + 3) & ~uint64_t(3));
  const int64_t bandRows = std::max<int64_t>(1, int64_t(kBandBytes / sstride));
  uint8_t* const scratch = Scratch(0, uint64_t(sstride) * bandRows);
  if (!scratch) return PoolResult{ENOMEM, "malloc", "compose scratch"};
  for (const auto& box : boxes) {
    const int64_t w = box.x2 - box.x1;
    for (int64_t y0 = box.y1; y0 < box.y2; y0 += bandRows) {
      const int64_t h = std::min<int64_t>(bandRows, box.y2 - y0);
      pixman_image_t* band = pixman_image_create_bits_no_clear(job.format, int(w), int(h), reinterpret_cast<uint32_t*>(scratch), int(sstride));
      if (!band) return PoolResult{ENOMEM, "pixman_image_create_bits", "compose band"};
      // The topmost opaque layer covering the whole band hides the background and everything
      // beneath it: the band starts there, written with SRC (Weston's opaque-region culling).
      size_t first = job.layers.size();
      while (first > 0 && !Covers(job.layers[first - 1], box.x1, y0, w, h)) first--;
      // Over opaque black in a target without alpha, a premultiplied layer's OVER is its own
      // colour (c + (1 - a) * 0): the first layer drawn on the fresh background is written with
      // SRC, the same pixels without the blend (pixman's copy and fill paths, several times
      // cheaper per pixel than OVER).
      bool black = false;
      if (first == 0) {
        pixman_rectangle16_t all{0, 0, uint16_t(w), uint16_t(h)};
        pixman_image_fill_rectangles(PIXMAN_OP_SRC, band, &job.background, 1, &all);
        black = blackBackground;
      } else {
        first--;
      }
      for (size_t i = first; i < job.layers.size(); i++) {
        const Layer& l = job.layers[i];
        if (!l.image) continue;  // a staged layer outside the clip
        // the layer's dst in band coordinates, and its part inside the band
        const int64_t ox = l.dst.x - box.x1, oy = l.dst.y - y0;
        const int64_t x0 = std::max<int64_t>(0, ox), y0b = std::max<int64_t>(0, oy);
        const int64_t x1 = std::min<int64_t>(w, ox + l.dst.w), y1 = std::min<int64_t>(h, oy + l.dst.h);
        if (x1 <= x0 || y1 <= y0b) continue;
        // source pixel (or sample point) of band pixel X: X - dest_x + src_x = X - ox
        // (untransformed, the image starts at the staged part's origin; a transform has it folded in)
        const int64_t qx = l.identity ? l.qx : 0, qy = l.identity ? l.qy : 0;
        const bool src = black || (i == first && Covers(l, box.x1, y0, w, h));
        black = false;
        pixman_image_composite32(src ? PIXMAN_OP_SRC : PIXMAN_OP_OVER, l.image, nullptr, band, int32_t(x0 - ox - qx), int32_t(y0b - oy - qy), 0, 0, int32_t(x0), int32_t(y0b),
                                 int32_t(x1 - x0), int32_t(y1 - y0b));
      }
      pixman_image_unref(band);
      for (int64_t r = 0; r < h; r++)
        StreamCopy(t.base + uint64_t(y0 + r) * t.stride + uint64_t(box.x1) * t.cpp, scratch + uint64_t(r) * sstride, uint64_t(w) * t.cpp);
    }
  }
  StreamFence();
  return PoolResult{};
}

// composeLayers({ target, layers, clip, background? }) -> Promise<number>: bytes of the target written.
//   target: a RawCopySurface of XRGB8888 or ARGB8888 (or another format pixman writes)
//   layers: bottom to top, each { color: [r, g, b, a], dst } (a fill) or
//           { source: RawCopySurface, src?: {x, y, width, height} (fractional), dst, rotation?,
//             opaque?, guarded?, yuv? (Int32Array, YUYV/NV12 sources) }
//   clip: [{x, y, width, height}, ...] in target pixels, clipped to the target
//   background: [r, g, b, a] (default opaque black)
// Colours are 8-bit premultiplied integers; dst rectangles integers, anywhere (clipped).
Napi::Value ComposeLayers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "composeLayers: the job must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto job = std::make_shared<ComposeJobData>();
  auto keep = std::make_shared<std::vector<Napi::ObjectReference>>();
  Napi::Object targetData;
  job->target = ReadSurface(env, o.Get("target"), "target", &targetData, true);
  keep->push_back(Napi::Persistent(targetData));
  const PixmanFormat* tf = PixmanOf(job->target.format);
  if (!tf || !pixman_format_supported_destination(tf->format) || job->target.stride % 4 || reinterpret_cast<uintptr_t>(job->target.base) % 4)
    throw Napi::RangeError::New(env, "target: format " + FourccText(job->target.format) +
                                         " is not one pixman writes here (XRGB8888, ARGB8888 and the other RGB formats with rows 4-byte aligned)");
  job->format = tf->format;
  if (job->target.width > 32767 || job->target.height > 32767) throw Napi::RangeError::New(env, "target: sizes above 32767 pixels are not composed");
  job->background = o.Get("background").IsUndefined() ? pixman_color_t{0, 0, 0, 0xffff} : ReadColor(env, o.Get("background"), "background");

  Napi::Value cv = o.Get("clip");
  if (!cv.IsArray()) throw Napi::TypeError::New(env, "clip must be an array of {x, y, width, height}");
  Napi::Array ca = cv.As<Napi::Array>();
  for (uint32_t i = 0; i < ca.Length(); i++) {
    IRect c = ReadIRect(env, ca.Get(i), "clip[" + std::to_string(i) + "]");
    int64_t x0 = std::max<int64_t>(c.x, 0), y0 = std::max<int64_t>(c.y, 0);
    int64_t x1 = std::min<int64_t>(c.x + c.w, job->target.width), y1 = std::min<int64_t>(c.y + c.h, job->target.height);
    if (x1 > x0 && y1 > y0) job->clip.push_back({x0, y0, x1 - x0, y1 - y0});
  }

  Napi::Value lv = o.Get("layers");
  if (!lv.IsArray()) throw Napi::TypeError::New(env, "layers must be an array");
  Napi::Array la = lv.As<Napi::Array>();
  job->layers.resize(la.Length());
  for (uint32_t i = 0; i < la.Length(); i++) {
    std::string name = "layers[" + std::to_string(i) + "]";
    if (!la.Get(i).IsObject()) throw Napi::TypeError::New(env, name + " must be an object");
    Napi::Object lo = la.Get(i).As<Napi::Object>();
    Layer& l = job->layers[i];
    l.dst = ReadIRect(env, lo.Get("dst"), name + ".dst");
    if (!lo.Get("color").IsUndefined()) {
      l.solid = true;
      l.color = ReadColor(env, lo.Get("color"), name + ".color");
      continue;
    }
    ReadImageLayer(env, lo, name, l, *keep);
    if (l.src.syncFd >= 0 && std::find(job->readFds.begin(), job->readFds.end(), l.src.syncFd) == job->readFds.end())
      job->readFds.push_back(l.src.syncFd);
  }
  // bytes: the clip's union (computed again on the pool thread; cheap)
  pixman_region32_t region;
  pixman_region32_init(&region);
  for (const IRect& c : job->clip) pixman_region32_union_rect(&region, &region, int(c.x), int(c.y), unsigned(c.w), unsigned(c.h));
  int n = 0;
  const pixman_box32_t* b = pixman_region32_rectangles(&region, &n);
  for (int i = 0; i < n; i++) job->bytes += uint64_t(b[i].x2 - b[i].x1) * uint64_t(b[i].y2 - b[i].y1) * job->target.cpp;
  pixman_region32_fini(&region);

  return RunOnPool(
      env, "primebuf.composeLayers",
      [job]() { return InBrackets(job->readFds, job->target.syncFd, [&]() {
        PoolResult r = RunCompose(*job);
        TrimScratch();
        return r;
      }); },
      [job, keep](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, double(job->bytes)); });
}

}  // namespace

void InitCompose(Napi::Env env, Napi::Object exports) {
  exports.Set("composeLayers", Napi::Function::New(env, ComposeLayers, "composeLayers"));
  exports.Set("pixmanVersion", Napi::String::New(env, pixman_version_string()));
}

}  // namespace primebuf
