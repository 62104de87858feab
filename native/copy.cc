// copy: the mechanism of the write-combined copy fallback. One job copies a list of rectangles
// from a source (any mapped byte range: a dma-buf or dumb-buffer mapping, a wl_shm pool) into a
// destination mapping, converting the pixel format where asked, on libuv's thread pool.
//
// Every rectangle, stride and plane size is checked against the byte lengths in 64-bit
// arithmetic HERE, before any memory is touched: a bad request is a RangeError/TypeError, never a
// stray write. The destination is never read (it is write-combined memory on real hardware,
// where reads are uncached): each row's whole cache lines go out in non-temporal stores and the
// partial lines at its two ends in plain ones (see "the store side"), and one store fence ends the
// job. Elsewhere a plain memcpy path.
//
// Keeping the source and destination memory mapped until the promise settles is the caller's
// job (policy: src/scanout/copy.ts).
#include <drm_fourcc.h>
#include <linux/dma-buf.h>

#include <setjmp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__SSE2__)
#include <immintrin.h>
#define PRIMEBUF_STREAM 1
#else
#define PRIMEBUF_STREAM 0
#endif

#include "common.h"
#include "copy.h"

namespace primebuf {

namespace {

// One-plane RGB formats a plane may take, with their bytes per pixel. Same-format copies work for
// all of them; conversions among the five `kConvertible` ones.
struct FormatCpp {
  uint32_t format;
  uint32_t cpp;
};
constexpr FormatCpp kFormats[] = {
    {DRM_FORMAT_C8, 1}, {DRM_FORMAT_R8, 1}, {DRM_FORMAT_RGB332, 1}, {DRM_FORMAT_BGR233, 1},
    {DRM_FORMAT_R16, 2}, {DRM_FORMAT_RG88, 2}, {DRM_FORMAT_GR88, 2},
    {DRM_FORMAT_XRGB4444, 2}, {DRM_FORMAT_XBGR4444, 2}, {DRM_FORMAT_RGBX4444, 2}, {DRM_FORMAT_BGRX4444, 2},
    {DRM_FORMAT_ARGB4444, 2}, {DRM_FORMAT_ABGR4444, 2}, {DRM_FORMAT_RGBA4444, 2}, {DRM_FORMAT_BGRA4444, 2},
    {DRM_FORMAT_XRGB1555, 2}, {DRM_FORMAT_XBGR1555, 2}, {DRM_FORMAT_RGBX5551, 2}, {DRM_FORMAT_BGRX5551, 2},
    {DRM_FORMAT_ARGB1555, 2}, {DRM_FORMAT_ABGR1555, 2}, {DRM_FORMAT_RGBA5551, 2}, {DRM_FORMAT_BGRA5551, 2},
    {DRM_FORMAT_RGB565, 2}, {DRM_FORMAT_BGR565, 2},
    {DRM_FORMAT_RGB888, 3}, {DRM_FORMAT_BGR888, 3},
    {DRM_FORMAT_XRGB8888, 4}, {DRM_FORMAT_XBGR8888, 4}, {DRM_FORMAT_RGBX8888, 4}, {DRM_FORMAT_BGRX8888, 4},
    {DRM_FORMAT_ARGB8888, 4}, {DRM_FORMAT_ABGR8888, 4}, {DRM_FORMAT_RGBA8888, 4}, {DRM_FORMAT_BGRA8888, 4},
    {DRM_FORMAT_RG1616, 4}, {DRM_FORMAT_GR1616, 4},
    {DRM_FORMAT_XRGB2101010, 4}, {DRM_FORMAT_XBGR2101010, 4}, {DRM_FORMAT_RGBX1010102, 4}, {DRM_FORMAT_BGRX1010102, 4},
    {DRM_FORMAT_ARGB2101010, 4}, {DRM_FORMAT_ABGR2101010, 4}, {DRM_FORMAT_RGBA1010102, 4}, {DRM_FORMAT_BGRA1010102, 4},
    {DRM_FORMAT_XRGB16161616, 8}, {DRM_FORMAT_XBGR16161616, 8}, {DRM_FORMAT_ARGB16161616, 8}, {DRM_FORMAT_ABGR16161616, 8},
    {DRM_FORMAT_XRGB16161616F, 8}, {DRM_FORMAT_XBGR16161616F, 8}, {DRM_FORMAT_ARGB16161616F, 8}, {DRM_FORMAT_ABGR16161616F, 8},
    // packed YUV 4:2:2 (a V4L2 camera's usual format): two bytes per pixel, chroma shared by a
    // pixel pair, so copyRects takes it from even columns only and copyTransformed not at all
    {DRM_FORMAT_YUYV, 2},
    // semi-planar YUV 4:2:0: the luma plane (1 byte per pixel) is the surface; the CbCr plane
    // (interleaved, half width and height) is given beside it (chromaOffset, chromaStride)
    {DRM_FORMAT_NV12, 1},
};

uint32_t FormatBytes(uint32_t format) {
  for (const auto& f : kFormats)
    if (f.format == format) return f.cpp;
  return 0;
}

// ---- conversions: decode to 0xAARRGGBB, encode from it -------------------------------------
// A format without alpha decodes as opaque (0xff); encoding into an X format writes 0xff there,
// so the result never depends on undefined padding bits. RGB565 widens by bit replication
// (r5 -> r5<<3 | r5>>2) and narrows by truncation, as pixman does.
enum class Kind { XRGB8888, ARGB8888, XBGR8888, ABGR8888, RGB565 };

bool KindOf(uint32_t format, Kind* kind) {
  switch (format) {
    case DRM_FORMAT_XRGB8888: *kind = Kind::XRGB8888; return true;
    case DRM_FORMAT_ARGB8888: *kind = Kind::ARGB8888; return true;
    case DRM_FORMAT_XBGR8888: *kind = Kind::XBGR8888; return true;
    case DRM_FORMAT_ABGR8888: *kind = Kind::ABGR8888; return true;
    case DRM_FORMAT_RGB565: *kind = Kind::RGB565; return true;
    default: return false;
  }
}

inline uint32_t SwapRB(uint32_t p) { return (p & 0xff00ff00u) | ((p & 0x00ff0000u) >> 16) | ((p & 0x000000ffu) << 16); }

template <Kind K>
struct Px;
template <>
struct Px<Kind::ARGB8888> {
  using T = uint32_t;
  static uint32_t Get(T p) { return p; }
  static T Put(uint32_t c) { return c; }
};
template <>
struct Px<Kind::XRGB8888> {
  using T = uint32_t;
  static uint32_t Get(T p) { return p | 0xff000000u; }
  static T Put(uint32_t c) { return c | 0xff000000u; }
};
template <>
struct Px<Kind::ABGR8888> {
  using T = uint32_t;
  static uint32_t Get(T p) { return SwapRB(p); }
  static T Put(uint32_t c) { return SwapRB(c); }
};
template <>
struct Px<Kind::XBGR8888> {
  using T = uint32_t;
  static uint32_t Get(T p) { return SwapRB(p) | 0xff000000u; }
  static T Put(uint32_t c) { return SwapRB(c) | 0xff000000u; }
};
template <>
struct Px<Kind::RGB565> {
  using T = uint16_t;
  static uint32_t Get(T p) {
    uint32_t r = (p >> 11) & 0x1f, g = (p >> 5) & 0x3f, b = p & 0x1f;
    r = (r << 3) | (r >> 2);
    g = (g << 2) | (g >> 4);
    b = (b << 3) | (b >> 2);
    return 0xff000000u | (r << 16) | (g << 8) | b;
  }
  static T Put(uint32_t c) {
    return static_cast<T>(((c >> 8) & 0xf800) | ((c >> 5) & 0x07e0) | ((c >> 3) & 0x001f));
  }
};

// ---- the store side ---------------------------------------------------------------------------
// Writes n bytes from s to d without reading d. Whole 64-byte cache lines go out in non-temporal
// stores; the partial lines at a row's two ends go out in plain stores, and rows under two lines
// are plain stores throughout. Two widths of streaming store: SSE2's 16-byte movntdq (every x86-64
// CPU) and AVX2's 32-byte vmovntdq, chosen once at load by what the CPU reports (the width is in
// `native.copyStoreBytes`).
//
// A line is never written partly by streaming stores. A partly filled write-combining buffer is
// flushed as a partial write, and a plain store into a line whose buffer is half full forces it out
// and then reads the line for ownership. A damage rectangle meets that at both ends of every row:
// with the row's aligned middle streamed to the nearest 16/32 bytes and only the last bytes plain,
// a 10 % rectangle at 1080p cost up to 0.37 of a full frame; streaming the edges with movnti still
// cost 0.14 when the row did not start on a line; plain edge lines cost 0.08-0.09 wherever the row
// starts (a C loop of these stores on the Xeon CI host, 341 rows of 2428 bytes, source cached,
// destination hot or rotated over 512 MB; the README's copy section has the table).
#if PRIMEBUF_STREAM
constexpr uintptr_t kLine = 64;

// d is line-aligned and n a multiple of the line.
void StreamLinesSse2(uint8_t* d, const uint8_t* s, size_t n) {
  for (; n; d += 64, s += 64, n -= 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
  }
}

__attribute__((target("avx2"))) void StreamLinesAvx2(uint8_t* d, const uint8_t* s, size_t n) {
  for (; n >= 128; d += 128, s += 128, n -= 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64));
    __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 96));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 32), b);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 64), c);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 96), e);
  }
  if (n) {  // one line left
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 32), b);
  }
}  // the upper ymm halves are clean on return (vzeroupper)

// PRIMEBUF_COPY_BASELINE=1 keeps the SSE2 loops on an AVX2 machine (the tests run both).
const bool kAvx2 = __builtin_cpu_supports("avx2") && [] {
  const char* v = getenv("PRIMEBUF_COPY_BASELINE");
  return !(v && v[0] == '1');
}();
#endif

inline void StreamRow(uint8_t* d, const uint8_t* s, size_t n) {
#if PRIMEBUF_STREAM
  if (n < 2 * kLine) {
    std::memcpy(d, s, n);
    return;
  }
  size_t head = (kLine - (reinterpret_cast<uintptr_t>(d) & (kLine - 1))) & (kLine - 1);
  if (head) std::memcpy(d, s, head), d += head, s += head, n -= head;
  size_t tail = n & (kLine - 1);
  n -= tail;
  if (kAvx2)
    StreamLinesAvx2(d, s, n);
  else
    StreamLinesSse2(d, s, n);
  if (tail) std::memcpy(d + n, s + n, tail);
#else
  std::memcpy(d, s, n);
#endif
}

// Rows of a damage rectangle are short runs far apart, and the hardware prefetcher starts over on
// each: asking for the first lines of the next source row while this one is written gets it going
// (a whole row's prefetches cost more than they saved at 4K on the Xeon host: 0.120 -> 0.101 of a
// full frame with only the first 256 bytes).
inline void PrefetchRow(const uint8_t* s, uint64_t n) {
#if PRIMEBUF_STREAM
  constexpr uint64_t kAhead = 256;
  for (uint64_t i = 0; i < n && i < kAhead; i += 64) _mm_prefetch(reinterpret_cast<const char*>(s + i), _MM_HINT_T0);
#else
  (void)s, (void)n;
#endif
}

inline void StoreFence() {
#if PRIMEBUF_STREAM
  _mm_sfence();
#else
  __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

// Converts in chunks into an L1-resident staging row, then streams the chunk out, so the
// destination sees the same store pattern as a plain copy. The staging size is a multiple of 64
// bytes for every destination pixel size, so chunks after the first keep the line alignment.
constexpr size_t kStagePixels = 1024;

template <Kind S, Kind D>
inline __attribute__((always_inline)) void ConvertRowBody(uint8_t* d, const uint8_t* s, uint32_t w) {
  using ST = typename Px<S>::T;
  using DT = typename Px<D>::T;
  alignas(64) DT stage[kStagePixels];
  while (w > 0) {
    uint32_t n = w < kStagePixels ? w : static_cast<uint32_t>(kStagePixels);
    for (uint32_t i = 0; i < n; i++) {
      ST p;
      std::memcpy(&p, s + size_t(i) * sizeof(ST), sizeof(ST));  // the source may be unaligned
      stage[i] = Px<D>::Put(Px<S>::Get(p));
    }
    StreamRow(d, reinterpret_cast<const uint8_t*>(stage), size_t(n) * sizeof(DT));
    d += size_t(n) * sizeof(DT);
    s += size_t(n) * sizeof(ST);
    w -= n;
  }
}

// The same loop compiled twice: for the x86-64 baseline (SSE2) and for AVX2, whose 32-byte
// vectors the compiler uses for the per-pixel shifts and masks (the CPU decides at load, as for
// StreamRow).
template <Kind S, Kind D>
void ConvertRow(uint8_t* d, const uint8_t* s, uint32_t w) {
  ConvertRowBody<S, D>(d, s, w);
}

#if PRIMEBUF_STREAM
template <Kind S, Kind D>
__attribute__((target("avx2"))) void ConvertRowAvx2(uint8_t* d, const uint8_t* s, uint32_t w) {
  ConvertRowBody<S, D>(d, s, w);
}
#endif

// YUV -> 0xAARRGGBB with the caller's matrix (TypeScript picks it: BT.601 or BT.709, limited or
// full range, from what the source says of its colour encoding). Fixed point, 16 fraction bits:
// R = yScale(Y - yOffset) + rCr(Cr - 128), G = yScale(Y - yOffset) - gCb(Cb - 128) - gCr(Cr - 128),
// B = yScale(Y - yOffset) + bCb(Cb - 128); rounded, clamped. Mechanism only: no default here.
// (YuvMatrix: copy.h)
inline uint32_t Clamp8(int v) { return v < 0 ? 0u : v > 255 ? 255u : uint32_t(v); }
inline uint32_t YuvToArgb(const YuvMatrix& m, int y, int cb, int cr) {
  int c = (y - m.yOffset) * m.yScale + 32768, d = cb - 128, e = cr - 128;
  return 0xff000000u | Clamp8((c + m.rCr * e) >> 16) << 16 | Clamp8((c - m.gCb * d - m.gCr * e) >> 16) << 8 |
         Clamp8((c + m.bCb * d) >> 16);
}

// YUYV (Y0 Cb Y1 Cr) -> any of the five, through 0xAARRGGBB.
using YuyvFn = void (*)(uint8_t* d, const uint8_t* s, uint32_t w, const YuvMatrix& m);

template <Kind D>
void YuyvRow(uint8_t* d, const uint8_t* s, uint32_t w, const YuvMatrix& m) {
  using DT = typename Px<D>::T;
  alignas(64) DT stage[kStagePixels];  // kStagePixels is even: chunks start on a pixel pair
  while (w > 0) {
    uint32_t n = w < kStagePixels ? w : static_cast<uint32_t>(kStagePixels);
    for (uint32_t i = 0; i < n; i += 2) {
      const uint8_t* q = s + size_t(i) * 2;
      bool pair = i + 1 < n;  // a last odd pixel reads no byte past its own two
      int cb = q[1], cr = pair ? q[3] : 128;
      stage[i] = Px<D>::Put(YuvToArgb(m, q[0], cb, cr));
      if (pair) stage[i + 1] = Px<D>::Put(YuvToArgb(m, q[2], cb, cr));
    }
    StreamRow(d, reinterpret_cast<const uint8_t*>(stage), size_t(n) * sizeof(DT));
    d += size_t(n) * sizeof(DT);
    s += size_t(n) * 2;
    w -= n;
  }
}

// NV12 (a Y row, and the CbCr row of its row pair: Cb Cr per pixel pair) -> any of the five,
// with YUYV's arithmetic. `w` pixels from an even column.
using Row2Fn = void (*)(uint8_t* d, const uint8_t* y, const uint8_t* uv, uint32_t w, const YuvMatrix& m);

template <Kind D>
void Nv12Row(uint8_t* d, const uint8_t* y, const uint8_t* uv, uint32_t w, const YuvMatrix& m) {
  using DT = typename Px<D>::T;
  alignas(64) DT stage[kStagePixels];  // even: chunks start on a pixel pair
  while (w > 0) {
    uint32_t n = w < kStagePixels ? w : static_cast<uint32_t>(kStagePixels);
    for (uint32_t i = 0; i < n; i += 2) {
      int cb = uv[i], cr = uv[i + 1];  // a last odd pixel still has its pair's two chroma bytes
      stage[i] = Px<D>::Put(YuvToArgb(m, y[i], cb, cr));
      if (i + 1 < n) stage[i + 1] = Px<D>::Put(YuvToArgb(m, y[i + 1], cb, cr));
    }
    StreamRow(d, reinterpret_cast<const uint8_t*>(stage), size_t(n) * sizeof(DT));
    d += size_t(n) * sizeof(DT);
    y += n;
    uv += n;
    w -= n;
  }
}

#if PRIMEBUF_STREAM
// 8888 -> RGB565 with SSE2, eight pixels per step (the scalar loop does not vectorize well: the
// 32 -> 16 bit narrowing). Same rules as Px<RGB565>::Put; measured ~2x the scalar loop.
template <Kind S>
inline __m128i To565Lanes(__m128i v) {
  if constexpr (S == Kind::XBGR8888 || S == Kind::ABGR8888) {
    __m128i rb = _mm_and_si128(v, _mm_set1_epi32(0x00ff00ff));
    v = _mm_or_si128(_mm_and_si128(v, _mm_set1_epi32(int(0xff00ff00u))), _mm_or_si128(_mm_slli_epi32(rb, 16), _mm_srli_epi32(rb, 16)));
  }
  __m128i r = _mm_and_si128(_mm_srli_epi32(v, 8), _mm_set1_epi32(0xf800));
  __m128i g = _mm_and_si128(_mm_srli_epi32(v, 5), _mm_set1_epi32(0x07e0));
  __m128i b = _mm_and_si128(_mm_srli_epi32(v, 3), _mm_set1_epi32(0x001f));
  __m128i o = _mm_or_si128(r, _mm_or_si128(g, b));
  return _mm_srai_epi32(_mm_slli_epi32(o, 16), 16);  // sign-extend so packs_epi32 keeps all 16 bits
}

template <Kind S>
void ConvertRowTo565(uint8_t* d, const uint8_t* s, uint32_t w) {
  alignas(64) uint16_t stage[kStagePixels];
  while (w > 0) {
    uint32_t n = w < kStagePixels ? w : static_cast<uint32_t>(kStagePixels);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m128i a = To565Lanes<S>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + size_t(i) * 4)));
      __m128i b = To565Lanes<S>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + size_t(i) * 4 + 16)));
      _mm_store_si128(reinterpret_cast<__m128i*>(stage + i), _mm_packs_epi32(a, b));
    }
    for (; i < n; i++) {
      uint32_t p;
      std::memcpy(&p, s + size_t(i) * 4, 4);
      stage[i] = Px<Kind::RGB565>::Put(Px<S>::Get(p));
    }
    StreamRow(d, reinterpret_cast<const uint8_t*>(stage), size_t(n) * 2);
    d += size_t(n) * 2;
    s += size_t(n) * 4;
    w -= n;
  }
}
#endif

using RowFn = void (*)(uint8_t* d, const uint8_t* s, uint32_t w);

template <Kind S, Kind D>
RowFn Converter() {
#if PRIMEBUF_STREAM
  if (kAvx2) return ConvertRowAvx2<S, D>;
#endif
  return ConvertRow<S, D>;
}

template <Kind S>
RowFn PickDst(Kind d) {
  switch (d) {
    case Kind::XRGB8888: return Converter<S, Kind::XRGB8888>();
    case Kind::ARGB8888: return Converter<S, Kind::ARGB8888>();
    case Kind::XBGR8888: return Converter<S, Kind::XBGR8888>();
    case Kind::ABGR8888: return Converter<S, Kind::ABGR8888>();
    case Kind::RGB565:
#if PRIMEBUF_STREAM
      if constexpr (S != Kind::RGB565) return ConvertRowTo565<S>;
#endif
      return Converter<S, Kind::RGB565>();
  }
  return nullptr;
}

RowFn PickConversion(Kind s, Kind d) {
  switch (s) {
    case Kind::XRGB8888: return PickDst<Kind::XRGB8888>(d);
    case Kind::ARGB8888: return PickDst<Kind::ARGB8888>(d);
    case Kind::XBGR8888: return PickDst<Kind::XBGR8888>(d);
    case Kind::ABGR8888: return PickDst<Kind::ABGR8888>(d);
    case Kind::RGB565: return PickDst<Kind::RGB565>(d);
  }
  return nullptr;
}

// ---- the request --------------------------------------------------------------------------
// (Surface: copy.h)
struct Rect {
  uint32_t sx, sy, dx, dy, w, h;
};

}  // namespace

// U32Field .. KeepBoth: shared with compose.cc (declared in copy.h)
uint32_t U32Field(Napi::Env env, Napi::Object o, const char* what, const char* key) {
  Napi::Value v = o.Get(key);
  std::string name = std::string(what) + "." + key;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(env, name + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

// Checks that every row of the width x height plane at `offset` lies inside the byte range
// [base, base + length) and fills in the rest of `s`.
Surface CheckSurface(Napi::Env env, const char* what, Surface s, uint8_t* base, uint64_t length, uint64_t offset) {
  s.cpp = FormatBytes(s.format);
  char fcc[5] = {char(s.format), char(s.format >> 8), char(s.format >> 16), char(s.format >> 24), 0};
  if (s.cpp == 0)
    throw Napi::RangeError::New(env, std::string(what) + ": format 0x" + [&] {
      char b[9];
      snprintf(b, sizeof b, "%08x", s.format);
      return std::string(b);
    }() + " ('" + fcc + "') is not a one-plane RGB format the copy knows");
  uint64_t row = uint64_t(s.width) * s.cpp;
  if (uint64_t(s.stride) < row)
    throw Napi::RangeError::New(env, std::string(what) + ": stride " + std::to_string(s.stride) + " is below width " +
                                         std::to_string(s.width) + " x " + std::to_string(s.cpp) + " bytes");
  if (s.width == 0 || s.height == 0)
    throw Napi::RangeError::New(env, std::string(what) + ": width and height must be positive");
  // offset < 2^53 and (height - 1) * stride < 2^64: the sum needs more than 64 bits
  unsigned __int128 need = (unsigned __int128)offset + (unsigned __int128)(s.height - 1) * s.stride + row;
  if (need > length)
    throw Napi::RangeError::New(env, std::string(what) + ": offset " + std::to_string(offset) + " + " +
                                         std::to_string(s.height) + " rows of stride " + std::to_string(s.stride) +
                                         " do not fit in its " + std::to_string(length) + " bytes");
  s.base = base + offset;
  s.length = length - offset;
  return s;
}

// { data: ArrayBuffer | ArrayBufferView, offset?, format, stride, width, height }, checked so
// that every row of the width x height plane lies inside the byte range.
// `data` receives the memory object, for the job to hold until it settles.
Surface ReadSurface(Napi::Env env, Napi::Value v, const char* what, Napi::Object* dataOut, bool destination) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value data = o.Get("data");
  uint8_t* base = nullptr;
  uint64_t length = 0;
  if (data.IsArrayBuffer()) {
    auto ab = data.As<Napi::ArrayBuffer>();
    base = static_cast<uint8_t*>(ab.Data());
    length = ab.ByteLength();
  } else if (data.IsTypedArray() || data.IsDataView()) {
    Napi::ArrayBuffer ab;
    size_t off = 0, len = 0;
    if (data.IsTypedArray()) {
      auto ta = data.As<Napi::TypedArray>();
      ab = ta.ArrayBuffer(), off = ta.ByteOffset(), len = ta.ByteLength();
    } else {
      auto dv = data.As<Napi::DataView>();
      ab = dv.ArrayBuffer(), off = dv.ByteOffset(), len = dv.ByteLength();
    }
    base = static_cast<uint8_t*>(ab.Data()) + off;
    length = len;
  } else {
    throw Napi::TypeError::New(env, std::string(what) + ".data must be an ArrayBuffer or a view of one");
  }
  *dataOut = data.As<Napi::Object>();
  uint64_t offset = 0;
  Napi::Value off = o.Get("offset");
  if (!off.IsUndefined()) {
    if (!off.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + ".offset must be a number");
    double d = off.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env, std::string(what) + ".offset must be a non-negative safe integer");
    offset = static_cast<uint64_t>(d);
  }
  Surface s;
  s.format = U32Field(env, o, what, "format");
  if (destination && s.format == DRM_FORMAT_NV12)
    throw Napi::RangeError::New(env, std::string(what) + ": NV12 is a source format only: the copy converts it to "
                                         "XRGB8888, ARGB8888, XBGR8888, ABGR8888 or RGB565, never into it");
  s.stride = U32Field(env, o, what, "stride");
  s.width = U32Field(env, o, what, "width");
  s.height = U32Field(env, o, what, "height");
  s = CheckSurface(env, what, s, base, length, offset);
  Napi::Value sync = o.Get("syncFd");
  if (!sync.IsUndefined()) {
    if (!sync.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + ".syncFd must be a number");
    double d = sync.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int>(d)))
      throw Napi::RangeError::New(env, std::string(what) + ".syncFd must be a file descriptor");
    s.syncFd = static_cast<int>(d);
  }
  if (s.format != DRM_FORMAT_NV12) return s;
  // the CbCr plane: ceil(h / 2) rows of ceil(w / 2) pairs, inside the same byte range
  double co = 0;
  Napi::Value cov = o.Get("chromaOffset");
  if (cov.IsNumber()) co = cov.As<Napi::Number>().DoubleValue();
  if (!cov.IsNumber() || !(co >= 0 && co <= 9007199254740991.0) || co != static_cast<double>(static_cast<uint64_t>(co)))
    throw Napi::TypeError::New(env, std::string(what) + ".chromaOffset must be a non-negative safe integer for NV12");
  uint64_t cOff = static_cast<uint64_t>(co);
  uint32_t cStride = U32Field(env, o, what, "chromaStride");
  uint64_t cRow = (uint64_t(s.width) + 1) / 2 * 2, cRows = (uint64_t(s.height) + 1) / 2;
  if (cStride < cRow)
    throw Napi::RangeError::New(env, std::string(what) + ": chromaStride " + std::to_string(cStride) + " is below the " +
                                         std::to_string(cRow) + " bytes of a CbCr row");
  unsigned __int128 need = (unsigned __int128)cOff + (unsigned __int128)(cRows - 1) * cStride + cRow;
  if (need > length)
    throw Napi::RangeError::New(env, std::string(what) + ": the CbCr plane at " + std::to_string(cOff) + " (" +
                                         std::to_string(cRows) + " rows of stride " + std::to_string(cStride) +
                                         ") does not fit in its " + std::to_string(length) + " bytes");
  s.chroma = base + cOff;
  s.chromaStride = cStride;
  return s;
}

// The conversion from src's format to dst's (null for the same format); RangeError when there is
// none, or when the pixel sizes of a same-format pair differ.
RowFn PickConvert(Napi::Env env, const Surface& src, const Surface& dst, const char* name) {
  if (src.format == dst.format) {
    if (src.cpp != dst.cpp) throw Napi::RangeError::New(env, std::string(name) + ": pixel sizes differ");
    if (src.format == DRM_FORMAT_NV12) throw Napi::RangeError::New(env, std::string(name) + ": NV12 is only converted (to the five RGB formats)");
    return nullptr;
  }
  Kind ks, kd;
  if (src.format == DRM_FORMAT_NV12) return nullptr;  // PickConvert2's
  if (src.format == DRM_FORMAT_YUYV && KindOf(dst.format, &kd)) return nullptr;  // PickYuyv's
  if (!KindOf(src.format, &ks) || !KindOf(dst.format, &kd))
    throw Napi::RangeError::New(env, std::string(name) + ": no conversion between these formats (converts among "
                                     "XRGB8888, ARGB8888, XBGR8888, ABGR8888 and RGB565, and from YUYV and NV12 to them)");
  return PickConversion(ks, kd);
}

// The YUYV conversion (YUYV -> one of the five), null for any other source.
YuyvFn PickYuyv(const Surface& src, const Surface& dst) {
  Kind kd;
  if (src.format != DRM_FORMAT_YUYV || !KindOf(dst.format, &kd)) return nullptr;
  switch (kd) {
    case Kind::XRGB8888: return YuyvRow<Kind::XRGB8888>;
    case Kind::ARGB8888: return YuyvRow<Kind::ARGB8888>;
    case Kind::XBGR8888: return YuyvRow<Kind::XBGR8888>;
    case Kind::ABGR8888: return YuyvRow<Kind::ABGR8888>;
    case Kind::RGB565: return YuyvRow<Kind::RGB565>;
  }
  return nullptr;
}

// A YUV source's matrix: job.yuv, an Int32Array [yOffset, yScale, rCr, gCb, gCr, bCb] (16
// fraction bits, see YuvToArgb). Required for YUYV and NV12 sources, ignored for the others.
YuvMatrix ReadYuvMatrix(Napi::Env env, Napi::Object job, const char* name) {
  Napi::Value v = job.Get("yuv");
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || v.As<Napi::Int32Array>().ElementLength() != 6)
    throw Napi::TypeError::New(env, std::string(name) + ": a YUYV or NV12 source needs job.yuv, an Int32Array of 6 coefficients "
                                                        "[yOffset, yScale, rCr, gCb, gCr, bCb] (16 fraction bits)");
  auto a = v.As<Napi::Int32Array>();
  YuvMatrix m;
  m.yOffset = a[0], m.yScale = a[1], m.rCr = a[2], m.gCb = a[3], m.gCr = a[4], m.bCb = a[5];
  // bounds that keep every intermediate of YuvToArgb inside int32 (|Y - yOffset| and |C - 128| <= 255)
  for (int32_t k : {m.yScale, m.rCr, m.gCb, m.gCr, m.bCb})
    if (k < -(1 << 20) || k > (1 << 20)) throw Napi::RangeError::New(env, std::string(name) + ": job.yuv coefficients must lie in [-2^20, 2^20]");
  if (m.yOffset < 0 || m.yOffset > 255) throw Napi::RangeError::New(env, std::string(name) + ": job.yuv's yOffset must lie in [0, 255]");
  return m;
}

// The two-plane conversion (NV12 -> one of the five), null for any other source.
Row2Fn PickConvert2(Napi::Env env, const Surface& src, const Surface& dst, const char* name) {
  if (src.format != DRM_FORMAT_NV12) return nullptr;
  if (!src.chroma) throw Napi::RangeError::New(env, std::string(name) + ": an NV12 source needs its CbCr plane");
  Kind kd;
  if (!KindOf(dst.format, &kd))
    throw Napi::RangeError::New(env, std::string(name) + ": NV12 converts to XRGB8888, ARGB8888, XBGR8888, ABGR8888 and RGB565 only");
  switch (kd) {
    case Kind::XRGB8888: return Nv12Row<Kind::XRGB8888>;
    case Kind::ARGB8888: return Nv12Row<Kind::ARGB8888>;
    case Kind::XBGR8888: return Nv12Row<Kind::XBGR8888>;
    case Kind::ABGR8888: return Nv12Row<Kind::ABGR8888>;
    case Kind::RGB565: return Nv12Row<Kind::RGB565>;
  }
  return nullptr;
}

// Row y of a YUYV or NV12 source, w pixels from column x (even), as XRGB8888 at d (compose.cc
// stages such sources into XRGB8888 scratch: pixman has no NV12).
void YuvRowToXrgb(const Surface& src, uint32_t x, uint32_t y, uint32_t w, uint8_t* d, const YuvMatrix& m) {
  if (src.format == DRM_FORMAT_NV12)
    Nv12Row<Kind::XRGB8888>(d, src.base + uint64_t(y) * src.stride + x, src.chroma + uint64_t(y / 2) * src.chromaStride + x, w, m);
  else
    YuyvRow<Kind::XRGB8888>(d, src.base + uint64_t(y) * src.stride + uint64_t(x) * 2, w, m);
}

void StreamCopy(uint8_t* d, const uint8_t* s, size_t n) { StreamRow(d, s, n); }
void StreamFence() { StoreFence(); }

// The pool thread writes into this memory: keep both objects from being collected until the
// job is done (released on the JS thread, with the task). Unmapping it meanwhile (closing the
// Mapping) is the caller's to prevent.
std::shared_ptr<std::vector<Napi::ObjectReference>> KeepBoth(Napi::Object srcData, Napi::Object dstData) {
  auto keep = std::make_shared<std::vector<Napi::ObjectReference>>();
  keep->push_back(Napi::Persistent(srcData));
  keep->push_back(Napi::Persistent(dstData));
  return keep;
}

namespace {

// One validated copy: what the pool thread reads and writes, nothing N-API.
struct Job {
  Surface src, dst;
  std::vector<Rect> rects;
  RowFn convert = nullptr;
  YuyvFn yuyv = nullptr;      // YUYV sources
  Row2Fn convert2 = nullptr;  // NV12 sources
  YuvMatrix yuv;              // their matrix
  uint64_t bytes = 0;          // bytes the whole job writes to the destination
  volatile uint64_t done = 0;  // bytes written so far (a guarded job abandoned by SIGBUS reports it)
};

// Reads { dst, rects: Uint32Array [x, y, w, h]..., dx?, dy? } against an already checked
// source: every rectangle inside both surfaces, a known conversion where the formats differ.
// `dstData` receives the destination's memory object, for the job to hold until it settles.
std::shared_ptr<Job> ReadJob(Napi::Env env, Napi::Object job, const Surface& src, Napi::Object* dstData) {
  auto out = std::make_shared<Job>();
  out->src = src;
  out->dst = ReadSurface(env, job.Get("dst"), "dst", dstData, true);
  const Surface& dst = out->dst;

  auto readOffset = [&](const char* key) -> int64_t {
    Napi::Value v = job.Get(key);
    if (v.IsUndefined()) return 0;
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw Napi::RangeError::New(env, std::string(key) + " must be a 32-bit integer");
    return static_cast<int64_t>(d);
  };
  int64_t dx = readOffset("dx"), dy = readOffset("dy");

  out->convert = PickConvert(env, src, dst, "copyRects");
  out->convert2 = PickConvert2(env, src, dst, "copyRects");
  out->yuyv = PickYuyv(src, dst);
  if (out->yuyv || out->convert2) out->yuv = ReadYuvMatrix(env, job, "copyRects");

  Napi::Value rv = job.Get("rects");
  if (!rv.IsTypedArray() || rv.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, "rects must be a Uint32Array of [x, y, width, height] quadruples");
  auto ra = rv.As<Napi::Uint32Array>();
  if (ra.ElementLength() % 4 != 0) throw Napi::RangeError::New(env, "rects length must be a multiple of 4");
  out->rects.reserve(ra.ElementLength() / 4);
  for (size_t i = 0; i < ra.ElementLength(); i += 4) {
    uint64_t x = ra[i], y = ra[i + 1], w = ra[i + 2], h = ra[i + 3];
    auto name = [&] {
      return "rect " + std::to_string(i / 4) + " (" + std::to_string(x) + "," + std::to_string(y) + " " +
             std::to_string(w) + "x" + std::to_string(h) + ")";
    };
    if (x + w > src.width || y + h > src.height)
      throw Napi::RangeError::New(env, name() + " is outside the " + std::to_string(src.width) + "x" +
                                           std::to_string(src.height) + " source");
    int64_t tx = int64_t(x) + dx, ty = int64_t(y) + dy;
    if (tx < 0 || ty < 0 || uint64_t(tx) + w > dst.width || uint64_t(ty) + h > dst.height)
      throw Napi::RangeError::New(env, name() + " at " + std::to_string(tx) + "," + std::to_string(ty) +
                                           " is outside the " + std::to_string(dst.width) + "x" +
                                           std::to_string(dst.height) + " destination");
    if ((src.format == DRM_FORMAT_YUYV || src.format == DRM_FORMAT_NV12) && (x % 2 != 0 || (w % 2 != 0 && x + w != src.width)))
      throw Napi::RangeError::New(env, name() + ": " + (src.format == DRM_FORMAT_NV12 ? "NV12" : "YUYV") +
                                           " is copied in pixel pairs (even x and width, or to the row's end)");
    if (w == 0 || h == 0) continue;
    out->rects.push_back(Rect{uint32_t(x), uint32_t(y), uint32_t(tx), uint32_t(ty), uint32_t(w), uint32_t(h)});
    out->bytes += w * h * dst.cpp;
  }
  return out;
}

// Nanoseconds the jobs' copy loops have run, from a job's first byte to its store fence (the
// damage-proportional part of a copy, without the pool round trip): test-only copyWorkNs().
std::atomic<uint64_t> gCopyWorkNs{0};

inline uint64_t MonotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000u + uint64_t(t.tv_nsec);
}

// The copy itself, on a pool thread. Plain function and trivially destructible locals only: a
// guarded run may leave it through siglongjmp at any source read (and then its time is not counted).
void RunJob(void* p) {
  uint64_t t0 = MonotonicNs();
  Job* job = static_cast<Job*>(p);
  const Surface& src = job->src;
  const Surface& dst = job->dst;
  for (const Rect& r : job->rects) {
    const uint8_t* s = src.base + uint64_t(r.sy) * src.stride + uint64_t(r.sx) * src.cpp;
    uint8_t* d = dst.base + uint64_t(r.dy) * dst.stride + uint64_t(r.dx) * dst.cpp;
    uint64_t rowBytes = uint64_t(r.w) * dst.cpp;
    if (job->convert2) {
      for (uint32_t y = 0; y < r.h; y++, s += src.stride, d += dst.stride) {
        job->convert2(d, s, src.chroma + uint64_t((r.sy + y) / 2) * src.chromaStride + r.sx, r.w, job->yuv);
        job->done = job->done + rowBytes;
      }
      continue;
    }
    if (!job->convert && !job->yuyv && rowBytes == src.stride && rowBytes == dst.stride) {
      StreamRow(d, s, rowBytes * r.h);  // whole rows back to back: one run
      job->done = job->done + rowBytes * r.h;
      continue;
    }
    uint64_t srcRow = uint64_t(r.w) * src.cpp;
    for (uint32_t y = 0; y < r.h; y++, s += src.stride, d += dst.stride) {
      if (y + 1 < r.h) PrefetchRow(s + src.stride, srcRow);
      if (job->yuyv)
        job->yuyv(d, s, r.w, job->yuv);
      else if (job->convert)
        job->convert(d, s, r.w);
      else
        StreamRow(d, s, rowBytes);
      job->done = job->done + rowBytes;
    }
  }
  StoreFence();
  gCopyWorkNs.fetch_add(MonotonicNs() - t0, std::memory_order_relaxed);
}

}  // namespace

// ---- the DMA_BUF_IOCTL_SYNC brackets --------------------------------------------------------
// A job whose surfaces name their dma-buf (`syncFd`) runs inside its CPU-access brackets on the
// same pool thread: START READ on the source's (it waits for the writers' fences), START WRITE on
// the destination's (it waits for every fence), the copy and its store fence, END WRITE, END READ.
// One pool trip per copy instead of one per ioctl. A bracket whose START failed is not ended and
// nothing after a failed START runs; the first error wins (a START's, else the copy's, else an
// END's). A failure carries `syncCalls`, the ioctls issued; a success issued two per dma-buf.
// Several read brackets (compose.cc's sources) start in order and end in reverse.
PoolResult InBrackets(const std::vector<int>& readFds, int dstFd, const std::function<PoolResult()>& body) {
  uint32_t calls = 0;
  PoolResult r;
  auto sync = [&](int fd, uint64_t flags) {
    calls++;
    if (DmabufSyncIoctl(fd, flags) == 0) return true;
    if (r.err == 0) r = PoolResult{errno, "DMA_BUF_IOCTL_SYNC", "dma-buf fd " + std::to_string(fd) + " flags " + std::to_string(flags)};
    return false;
  };
  size_t readsOn = 0;  // readFds[0, readsOn) started
  while (r.err == 0 && readsOn < readFds.size() && sync(readFds[readsOn], DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ)) readsOn++;
  bool dstOn = r.err == 0 && dstFd >= 0 && sync(dstFd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  if (r.err == 0) {
    try {
      r = body();
    } catch (const std::exception& e) {  // still end what started
      r = PoolResult{ENOMEM, "copy", e.what()};
    }
  }
  if (dstOn) sync(dstFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  while (readsOn > 0) sync(readFds[--readsOn], DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
  if (r.err) r.props.push_back({"syncCalls", double(calls)});
  return r;
}

PoolResult InBrackets(int srcFd, int dstFd, const std::function<PoolResult()>& body) {
  return srcFd >= 0 ? InBrackets(std::vector<int>{srcFd}, dstFd, body) : InBrackets(std::vector<int>{}, dstFd, body);
}

namespace {

// Queues `job`; `keep` (memory objects, a pool reference) is released on the JS thread with
// the task, after the job settled either way.
Napi::Promise QueueJob(Napi::Env env, const char* name, std::shared_ptr<Job> job, std::shared_ptr<void> keep,
                       bool guarded, std::string what) {
  return RunOnPool(
      env, name,
      [job, guarded, what]() {
        return InBrackets(job->src.syncFd, job->dst.syncFd, [&]() {
          if (!guarded) {
            RunJob(job.get());
            return PoolResult{};
          }
          if (GuardedRead(job->src.base, job->src.length, RunJob, job.get())) return PoolResult{};
          StoreFence();  // the streaming stores issued before the fault
          return PoolResult{EFAULT, "SIGBUS",
                            what + ": reading it raised SIGBUS, the file behind it was truncated (copy stopped after " +
                                std::to_string(job->done) + " of " + std::to_string(job->bytes) + " bytes)"};
        });
      },
      [job, keep](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, double(job->bytes)); });
}

// copyRects({src, dst, rects: Uint32Array [x, y, w, h]..., dx?, dy?}) -> Promise<number>
// Each rectangle is in source coordinates and lands at (x + dx, y + dy) in the destination.
// Resolves with the bytes written to the destination.
Napi::Value CopyRects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "copyRects: the job must be an object");
  Napi::Object job = info[0].As<Napi::Object>();
  Napi::Object srcData, dstData;
  Surface src = ReadSurface(env, job.Get("src"), "src", &srcData);
  std::shared_ptr<Job> j = ReadJob(env, job, src, &dstData);
  return QueueJob(env, "primebuf.copyRects", std::move(j), KeepBoth(srcData, dstData), false, "src");
}

// ---- the transformed copy ------------------------------------------------------------------
// copyTransformed({src, dst, srcRect, dstRect, rotation, reflectX?, reflectY?}) -> Promise<number>
//
// Draws the source rectangle (sx0, sy0, sw x sh) into the destination rectangle (dx0, dy0,
// dw x dh), every destination pixel of it written exactly once (with `clip`, a rectangle inside
// the destination, only the part of dstRect inside it, dstRect itself then possibly reaching
// past the destination's edges: the mapping below is dstRect's either way), in the order the KMS "rotation"
// property means (include/uapi/drm/drm_mode.h: DRM_MODE_ROTATE_<degrees> "is been rotated
// <degrees> degrees in counter clockwise direction"; the kernel's plane composition doc: the
// reflection is applied in the source rectangle first, then the rotation, then the scaling):
//   1. reflect: S'(u, v) = S(sx0 + (reflectX ? sw-1-u : u), sy0 + (reflectY ? sh-1-v : v))
//   2. rotate counter-clockwise into R, rw x rh (rw = sh, rh = sw for 90 and 270, else sw, sh):
//        0:   R(x, y) = S'(x,        y)
//        90:  R(x, y) = S'(sw-1-y,   x)          (the source's top-right corner lands top-left)
//        180: R(x, y) = S'(sw-1-x,   sh-1-y)
//        270: R(x, y) = S'(y,        sh-1-x)     (the source's bottom-left corner lands top-left)
//   3. scale, nearest neighbour: destination pixel (dx0 + X, dy0 + Y) takes the R pixel under
//      its centre, R(floor((2X+1) * rw / (2dw)), floor((2Y+1) * rh / (2dh))), in exact integer
//      arithmetic. Unscaled (dw = rw, dh = rh) that is R(X, Y).
// A destination column fixes one source coordinate and a destination row the other (which one
// depends on the rotation), so both are tabulated as byte offsets: a pixel is one load at
// rowOffset + colOffset[X]. Each destination row is gathered into an L1 staging row in the source
// format, then converted and/or streamed out like copyRects' rows (the destination is never read).

// Gathers n pixels of C bytes: out[i] = base[off[i]].
template <size_t C>
void Gather(uint8_t* out, const uint8_t* base, const uint64_t* off, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) std::memcpy(out + size_t(i) * C, base + off[i], C);
}
using GatherFn = void (*)(uint8_t* out, const uint8_t* base, const uint64_t* off, uint32_t n);

GatherFn PickGather(uint32_t cpp) {
  switch (cpp) {
    case 1: return Gather<1>;
    case 2: return Gather<2>;
    case 3: return Gather<3>;
    case 4: return Gather<4>;
    case 8: return Gather<8>;
    default: return nullptr;
  }
}

struct XformRect {
  int64_t x, y;
  uint32_t w, h;
};

// {x, y, width, height}: x and y unsigned 32-bit, or signed 32-bit where `placed` (a destination
// rectangle partly outside the destination, drawn clipped)
XformRect ReadRect(Napi::Env env, Napi::Object job, const char* key, bool placed) {
  Napi::Value v = job.Get(key);
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(key) + " must be an object {x, y, width, height}");
  Napi::Object o = v.As<Napi::Object>();
  auto coord = [&](const char* k) -> int64_t {
    if (!placed) return U32Field(env, o, key, k);
    Napi::Value c = o.Get(k);
    if (!c.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + "." + k + " must be a number");
    double d = c.As<Napi::Number>().DoubleValue();
    if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw Napi::RangeError::New(env, std::string(key) + "." + k + " must be a 32-bit integer");
    return static_cast<int64_t>(d);
  };
  XformRect r{coord("x"), coord("y"), U32Field(env, o, key, "width"), U32Field(env, o, key, "height")};
  if (r.w == 0 || r.h == 0) throw Napi::RangeError::New(env, std::string(key) + ": width and height must be positive");
  return r;
}

bool Inside(const XformRect& r, const Surface& s) {
  return r.x >= 0 && r.y >= 0 && r.x + r.w <= int64_t(s.width) && r.y + r.h <= int64_t(s.height);
}

std::string RectText(const XformRect& r) {
  return std::to_string(r.w) + "x" + std::to_string(r.h) + "+" + std::to_string(r.x) + "+" + std::to_string(r.y);
}

bool ReadFlag(Napi::Env env, Napi::Object job, const char* key) {
  Napi::Value v = job.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Value CopyTransformed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "copyTransformed: the job must be an object");
  Napi::Object job = info[0].As<Napi::Object>();
  Napi::Object srcData, dstData;
  Surface src = ReadSurface(env, job.Get("src"), "src", &srcData);
  Surface dst = ReadSurface(env, job.Get("dst"), "dst", &dstData, true);
  if (src.format == DRM_FORMAT_YUYV || dst.format == DRM_FORMAT_YUYV || src.format == DRM_FORMAT_NV12 || dst.format == DRM_FORMAT_NV12)
    throw Napi::RangeError::New(env, "copyTransformed: YUYV and NV12 share chroma between pixels: only copyRects takes them");
  RowFn convert = PickConvert(env, src, dst, "copyTransformed");
  auto keep = KeepBoth(srcData, dstData);
  XformRect sr = ReadRect(env, job, "srcRect", false);
  XformRect dr = ReadRect(env, job, "dstRect", true);
  if (!Inside(sr, src))
    throw Napi::RangeError::New(env, "srcRect " + RectText(sr) + " is outside the " + std::to_string(src.width) + "x" +
                                         std::to_string(src.height) + " source");
  // The pixels written: dstRect, or its part inside `clip` (the mapping stays dstRect's).
  const bool clipped = !job.Get("clip").IsUndefined();
  XformRect clip = clipped ? ReadRect(env, job, "clip", false) : dr;
  if (!Inside(clip, dst))
    throw Napi::RangeError::New(env, std::string(clipped ? "clip " : "dstRect ") + RectText(clip) + " is outside the " +
                                         std::to_string(dst.width) + "x" + std::to_string(dst.height) + " destination");
  const int64_t cx0 = std::max(clip.x, dr.x), cy0 = std::max(clip.y, dr.y);
  const int64_t cx1 = std::min(clip.x + clip.w, dr.x + dr.w), cy1 = std::min(clip.y + clip.h, dr.y + dr.h);
  // written: columns [cx0, cx1) and rows [cy0, cy1) of the destination (none when they do not meet)
  const uint32_t cw = cx1 > cx0 ? uint32_t(cx1 - cx0) : 0, ch = cy1 > cy0 ? uint32_t(cy1 - cy0) : 0;
  Napi::Value rot = job.Get("rotation");
  if (!rot.IsUndefined() && !rot.IsNumber()) throw Napi::TypeError::New(env, "rotation must be a number");
  double deg = rot.IsUndefined() ? 0 : rot.As<Napi::Number>().DoubleValue();
  if (deg != 0 && deg != 90 && deg != 180 && deg != 270)
    throw Napi::RangeError::New(env, "rotation must be 0, 90, 180 or 270 (degrees counter-clockwise)");
  uint32_t rotation = static_cast<uint32_t>(deg);
  bool reflectX = ReadFlag(env, job, "reflectX"), reflectY = ReadFlag(env, job, "reflectY");

  GatherFn gather = PickGather(src.cpp);
  if (!gather) throw Napi::RangeError::New(env, "copyTransformed: unsupported pixel size");

  // The mapping of the comment above, tabulated (every offset is inside the checked srcRect).
  const bool swap = rotation == 90 || rotation == 270;
  const uint64_t rw = swap ? sr.h : sr.w, rh = swap ? sr.w : sr.h;
  // source column u (0 <= u < sw) and row v of the reflected image S' as byte offsets
  auto colBytes = [&](uint64_t u) { return (sr.x + (reflectX ? sr.w - 1 - u : u)) * uint64_t(src.cpp); };
  auto rowBytes = [&](uint64_t v) { return (sr.y + (reflectY ? sr.h - 1 - v : v)) * uint64_t(src.stride); };
  // n table entries from destination column/row `first` (relative to dstRect) on: the R index
  // under each one's centre, then its byte offset in the source
  auto tabulate = [](uint32_t n, uint64_t first, uint64_t rsize, uint64_t dsize, auto offsetOf) {
    auto t = std::make_shared<std::vector<uint64_t>>(n);
    for (uint64_t i = 0; i < n; i++) (*t)[i] = offsetOf((2 * (first + i) + 1) * rsize / (2 * dsize));
    return t;
  };
  // destination column X picks R column rx
  auto byColumn = tabulate(cw, uint64_t(cx0 - dr.x), rw, dr.w, [&](uint64_t rx) {
    switch (rotation) {
      case 90: return rowBytes(rx);                // v = rx
      case 180: return colBytes(sr.w - 1 - rx);    // u = sw-1-rx
      case 270: return rowBytes(sr.h - 1 - rx);    // v = sh-1-rx
      default: return colBytes(rx);                // 0: u = rx
    }
  });
  // destination row Y picks R row ry
  auto byRow = tabulate(ch, uint64_t(cy0 - dr.y), rh, dr.h, [&](uint64_t ry) {
    switch (rotation) {
      case 90: return colBytes(sr.w - 1 - ry);     // u = sw-1-ry
      case 180: return rowBytes(sr.h - 1 - ry);    // v = sh-1-ry
      case 270: return colBytes(ry);               // u = ry
      default: return rowBytes(ry);                // 0: v = ry
    }
  });
  uint64_t bytes = uint64_t(cw) * ch * dst.cpp;
  const uint32_t x0 = uint32_t(cx0 > 0 ? cx0 : 0), y0 = uint32_t(cy0 > 0 ? cy0 : 0);

  return RunOnPool(
      env, "primebuf.copyTransformed",
      [src, dst, x0, y0, cw, ch, byColumn, byRow, convert, gather]() {
        return InBrackets(src.syncFd, dst.syncFd, [&]() {
          // 8 bytes per pixel at most: the staging row holds kStagePixels pixels of any format
          alignas(64) uint8_t stage[kStagePixels * 8];
          const uint64_t* cols = byColumn->data();
          for (uint32_t Y = 0; Y < ch; Y++) {
            const uint8_t* rowBase = src.base + (*byRow)[Y];
            uint8_t* d = dst.base + uint64_t(y0 + Y) * dst.stride + uint64_t(x0) * dst.cpp;
            for (uint32_t X = 0; X < cw;) {
              uint32_t n = cw - X < kStagePixels ? cw - X : static_cast<uint32_t>(kStagePixels);
              gather(stage, rowBase, cols + X, n);
              if (convert)
                convert(d, stage, n);
              else
                StreamRow(d, stage, size_t(n) * dst.cpp);
              d += size_t(n) * dst.cpp;
              X += n;
            }
          }
          StoreFence();
          return PoolResult{};
        });
      },
      [bytes, keep](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, double(bytes)); });
}


// ---- the SIGBUS guard ---------------------------------------------------------------------
// Why our own and not libwayland's wl_shm_buffer_begin_access/end_access (wayland-shm.c):
// libwayland's handler finds the faulting pool through thread-local data, so begin_access would
// work on a pool thread, but end_access cannot be avoided there (it resets that thread-local
// state; skipped, the thread's next begin_access on another pool hits wl_abort) and, after a
// fault, it posts the protocol error itself (wl_resource_post_error(buffer->resource,
// WL_SHM_ERROR_INVALID_FD)) on the calling thread, while libwayland's server objects are not
// thread-safe. Its handler also maps zeroes over the whole pool and lets the copy run on through
// them. Ours abandons the copy at the first fault (siglongjmp to the guarded run), and the error
// is posted on the JS thread by TypeScript (src/wayland/server.ts), the policy's place.
//
// One process-wide SIGBUS handler, installed on first use, that acts only for a fault
// (si_code > 0) whose address is inside the range the faulting thread guards; anything else
// goes to the handler that was installed before (or the default action: the access is retried
// and kills the process with the real fault). The thread's guard pointer uses the initial-exec
// TLS model, so the handler reads it without the allocation a dynamic TLS access may do.
namespace {

struct Guard {
  const uint8_t* lo;
  const uint8_t* hi;
  sigjmp_buf jmp;
};

__thread Guard* tGuard __attribute__((tls_model("initial-exec"))) = nullptr;
struct sigaction gPrevBus;

void OnSigbus(int sig, siginfo_t* si, void* uctx) {
  Guard* g = tGuard;
  if (g && si->si_code > 0) {
    auto* a = static_cast<const uint8_t*>(si->si_addr);
    if (a >= g->lo && a < g->hi) siglongjmp(g->jmp, 1);
  }
  if (gPrevBus.sa_flags & SA_SIGINFO) {
    gPrevBus.sa_sigaction(sig, si, uctx);
  } else if (gPrevBus.sa_handler == SIG_DFL || gPrevBus.sa_handler == SIG_IGN) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, nullptr);
    if (si->si_code <= 0) raise(sig);  // sent, not a fault: a returning fault happens again
  } else {
    gPrevBus.sa_handler(sig);
  }
}

void InstallSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &gPrevBus);
  });
}

}  // namespace

// poolMemcpy(src, dst) -> Promise<number> (test-only: bench/copy.ts's second baseline): a plain
// memcpy of min(src, dst) bytes in a pool job, so it pays the copy's round trip and runs on a
// pool thread as the copy does.
Napi::Value PoolMemcpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "poolMemcpy(src, dst): two typed arrays");
  auto s = info[0].As<Napi::TypedArray>(), d = info[1].As<Napi::TypedArray>();
  const uint8_t* sp = static_cast<const uint8_t*>(s.ArrayBuffer().Data()) + s.ByteOffset();
  uint8_t* dp = static_cast<uint8_t*>(d.ArrayBuffer().Data()) + d.ByteOffset();
  size_t n = std::min(s.ByteLength(), d.ByteLength());
  auto keep = KeepBoth(info[0].As<Napi::Object>(), info[1].As<Napi::Object>());
  return RunOnPool(
      env, "primebuf.poolMemcpy",
      [sp, dp, n]() {
        std::memcpy(dp, sp, n);
        return PoolResult{};
      },
      [n, keep](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, double(n)); });
}

// copyWorkNs() -> number (test-only: bench/copy.ts): gCopyWorkNs, the copy loops' time so far.
Napi::Value CopyWorkNs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(gCopyWorkNs.load(std::memory_order_relaxed)));
}

// copyFormats() -> [[format, bytesPerPixel], ...]; the conversions are listed in copy.ts.
Napi::Value CopyFormats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& f : kFormats) {
    if (f.format == DRM_FORMAT_NV12) continue;  // converted only, never copied as is
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, f.format));
    pair.Set(1u, Napi::Number::New(env, f.cpp));
    out.Set(i++, pair);
  }
  return out;
}

}  // namespace

bool GuardedRead(const uint8_t* base, uint64_t length, void (*fn)(void*), void* ctx) {
  InstallSigbusHandler();
  Guard g;
  g.lo = base;
  g.hi = base + length;
  Guard* prev = tGuard;
  if (sigsetjmp(g.jmp, 1) != 0) {  // 1: the signal mask (SIGBUS blocked in the handler) is restored
    tGuard = prev;
    return false;
  }
  tGuard = &g;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  fn(ctx);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tGuard = prev;
  return true;
}

Napi::Promise CopyRectsFrom(Napi::Env env, Napi::Object job, ExternalSource es) {
  Surface s;
  s.format = es.format, s.stride = es.stride, s.width = es.width, s.height = es.height;
  Surface src = CheckSurface(env, es.what.c_str(), s, const_cast<uint8_t*>(es.base), es.length, 0);
  Napi::Object dstData;
  std::shared_ptr<Job> j = ReadJob(env, job, src, &dstData);
  struct Keep {
    std::shared_ptr<void> external;
    Napi::ObjectReference dst;
  };
  auto keep = std::make_shared<Keep>();
  keep->external = std::move(es.keep);
  keep->dst = Napi::Persistent(dstData);
  if (es.guarded) InstallSigbusHandler();  // on the JS thread, before a pool thread needs it
  return QueueJob(env, "primebuf.shmPoolCopyRects", std::move(j), std::move(keep), es.guarded, es.what);
}

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRects", Napi::Function::New(env, CopyRects, "copyRects"));
  exports.Set("copyTransformed", Napi::Function::New(env, CopyTransformed, "copyTransformed"));
  exports.Set("copyFormats", Napi::Function::New(env, CopyFormats, "copyFormats"));
  exports.Set("poolMemcpy", Napi::Function::New(env, PoolMemcpy, "poolMemcpy"));
  exports.Set("copyWorkNs", Napi::Function::New(env, CopyWorkNs, "copyWorkNs"));
  exports.Set("copyStreaming", Napi::Boolean::New(env, PRIMEBUF_STREAM != 0));
#if PRIMEBUF_STREAM
  exports.Set("copyStoreBytes", Napi::Number::New(env, kAvx2 ? 32 : 16));
#else
  exports.Set("copyStoreBytes", Napi::Number::New(env, 0));
#endif
}

}  // namespace primebuf
