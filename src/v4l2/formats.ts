/**
 * V4L2 pixel formats as DRM fourccs: the table of mappings with the reason each holds, and the
 * lookup that lists what it cannot map instead of dropping it.
 *
 * A V4L2 format maps to a DRM format when both name the same memory layout: the same bytes in
 * the same order for every pixel, plane by plane. Sources: the kernel's
 * Documentation/userspace-api/media/v4l/pixfmt-*.rst (V4L2 byte order) against
 * include/uapi/drm/drm_fourcc.h (DRM's little-endian bit fields), and the comments beside each
 * define in include/uapi/linux/videodev2.h. Since kernel 5.2 the V4L2 names of the 32-bit RGB
 * formats (XR24, AR24, XB24, ...) were chosen to equal DRM's codes for the same layout.
 * The multi-planar ('M') variants keep each plane in its own buffer: the same DRM format, with
 * `separatePlanes` (a DRM framebuffer can take one dma-buf per plane).
 * Every V4L2 format here is LINEAR: V4L2 has no modifiers, and its tiled formats (NV12MT, ...)
 * are not mapped.
 */
import { fourcc, fourccCode } from '../formats/index.js';
import type { YuvEncoding } from '../scanout/copy.js';

export interface V4l2FormatMapping {
  /** The V4L2 fourcc ('XR24'). */
  readonly v4l2: string;
  /** The DRM format name ('XRGB8888'). */
  readonly drm: string;
  /** The planes live in separate buffers (V4L2's multi-planar 'M' formats). */
  readonly separatePlanes?: boolean;
  /** Why the layouts are the same. */
  readonly source: string;
}

const RGB32 = 'videodev2.h / pixfmt-rgb.rst: same 4 bytes per pixel in the same order as the DRM little-endian word (V4L2 adopted DRM\'s code)';
const PACKED_RGB16 = 'pixfmt-rgb.rst: a little-endian 16-bit word with the same bit fields as drm_fourcc.h';
const PACKED_YUV = 'pixfmt-packed-yuv.rst / drm_fourcc.h: same byte order of Y, Cb, Cr samples (same fourcc)';
const NV = 'pixfmt-yuv-planar.rst: Y plane then interleaved chroma right after it, chroma pitch = luma pitch (same fourcc in drm_fourcc.h)';
const NVM = 'pixfmt-yuv-planar.rst: Y and interleaved chroma, each plane in its own buffer';
const PLANAR = 'pixfmt-yuv-planar.rst: three planes Y, then Cb and Cr (or Cr, Cb) at half the luma pitch, one after the other';
const PLANARM = 'pixfmt-yuv-planar.rst: three planes, each in its own buffer';

/** The table: V4L2 fourcc -> DRM format, with the source of each mapping. */
export const V4L2_FORMAT_TABLE: readonly V4l2FormatMapping[] = [
  { v4l2: 'XR24', drm: 'XRGB8888', source: `${RGB32}: bytes B, G, R, X` },
  { v4l2: 'AR24', drm: 'ARGB8888', source: `${RGB32}: bytes B, G, R, A` },
  { v4l2: 'XB24', drm: 'XBGR8888', source: `${RGB32}: bytes R, G, B, X` },
  { v4l2: 'AB24', drm: 'ABGR8888', source: `${RGB32}: bytes R, G, B, A` },
  { v4l2: 'BX24', drm: 'BGRX8888', source: `${RGB32}: bytes X, R, G, B` },
  { v4l2: 'BA24', drm: 'BGRA8888', source: `${RGB32}: bytes A, R, G, B` },
  { v4l2: 'RX24', drm: 'RGBX8888', source: `${RGB32}: bytes X, B, G, R` },
  { v4l2: 'RA24', drm: 'RGBA8888', source: `${RGB32}: bytes A, B, G, R` },
  { v4l2: 'RGB3', drm: 'BGR888', source: 'pixfmt-rgb.rst: bytes R, G, B; drm_fourcc.h BGR888 is [23:0] B:G:R little-endian, i.e. bytes R, G, B' },
  { v4l2: 'BGR3', drm: 'RGB888', source: 'pixfmt-rgb.rst: bytes B, G, R; drm_fourcc.h RGB888 is [23:0] R:G:B little-endian, i.e. bytes B, G, R' },
  { v4l2: 'RGBP', drm: 'RGB565', source: `${PACKED_RGB16}: [15:0] R:G:B 5:6:5` },
  { v4l2: 'XR15', drm: 'XRGB1555', source: `${PACKED_RGB16}: [15:0] X:R:G:B 1:5:5:5` },
  { v4l2: 'AR15', drm: 'ARGB1555', source: `${PACKED_RGB16}: [15:0] A:R:G:B 1:5:5:5` },
  { v4l2: 'XR12', drm: 'XRGB4444', source: `${PACKED_RGB16}: [15:0] X:R:G:B 4:4:4:4` },
  { v4l2: 'AR12', drm: 'ARGB4444', source: `${PACKED_RGB16}: [15:0] A:R:G:B 4:4:4:4` },
  { v4l2: 'GREY', drm: 'R8', source: 'pixfmt-yuv-luma.rst: one byte of luma per pixel; DRM R8 is one 8-bit channel (the layout, not the colour meaning)' },
  { v4l2: 'Y16 ', drm: 'R16', source: 'pixfmt-yuv-luma.rst: little-endian 16-bit luma; DRM R16 is one little-endian 16-bit channel' },
  { v4l2: 'YUYV', drm: 'YUYV', source: `${PACKED_YUV}: Y0 Cb Y1 Cr` },
  { v4l2: 'YVYU', drm: 'YVYU', source: `${PACKED_YUV}: Y0 Cr Y1 Cb` },
  { v4l2: 'UYVY', drm: 'UYVY', source: `${PACKED_YUV}: Cb Y0 Cr Y1` },
  { v4l2: 'VYUY', drm: 'VYUY', source: `${PACKED_YUV}: Cr Y0 Cb Y1` },
  { v4l2: 'NV12', drm: 'NV12', source: `${NV}, 4:2:0, Cb first` },
  { v4l2: 'NV21', drm: 'NV21', source: `${NV}, 4:2:0, Cr first` },
  { v4l2: 'NV16', drm: 'NV16', source: `${NV}, 4:2:2, Cb first` },
  { v4l2: 'NV61', drm: 'NV61', source: `${NV}, 4:2:2, Cr first` },
  { v4l2: 'NV24', drm: 'NV24', source: `${NV}, 4:4:4, Cb first` },
  { v4l2: 'NV42', drm: 'NV42', source: `${NV}, 4:4:4, Cr first` },
  { v4l2: 'P010', drm: 'P010', source: 'pixfmt-yuv-planar.rst: like NV12 with 16-bit little-endian samples, 10 bits in the high bits (drm_fourcc.h P010 likewise)' },
  { v4l2: 'NM12', drm: 'NV12', separatePlanes: true, source: `${NVM}, 4:2:0, Cb first` },
  { v4l2: 'NM21', drm: 'NV21', separatePlanes: true, source: `${NVM}, 4:2:0, Cr first` },
  { v4l2: 'NM16', drm: 'NV16', separatePlanes: true, source: `${NVM}, 4:2:2, Cb first` },
  { v4l2: 'NM61', drm: 'NV61', separatePlanes: true, source: `${NVM}, 4:2:2, Cr first` },
  { v4l2: 'YU12', drm: 'YUV420', source: `${PLANAR}, 4:2:0, Cb before Cr` },
  { v4l2: 'YV12', drm: 'YVU420', source: `${PLANAR}, 4:2:0, Cr before Cb` },
  { v4l2: '422P', drm: 'YUV422', source: `${PLANAR}, 4:2:2, Cb before Cr` },
  { v4l2: 'YM12', drm: 'YUV420', separatePlanes: true, source: `${PLANARM}, 4:2:0, Cb before Cr` },
  { v4l2: 'YM21', drm: 'YVU420', separatePlanes: true, source: `${PLANARM}, 4:2:0, Cr before Cb` },
  { v4l2: 'YM16', drm: 'YUV422', separatePlanes: true, source: `${PLANARM}, 4:2:2, Cb before Cr` },
  { v4l2: 'YM61', drm: 'YVU422', separatePlanes: true, source: `${PLANARM}, 4:2:2, Cr before Cb` },
  { v4l2: 'YM24', drm: 'YUV444', separatePlanes: true, source: `${PLANARM}, 4:4:4, Cb before Cr` },
  { v4l2: 'YM42', drm: 'YVU444', separatePlanes: true, source: `${PLANARM}, 4:4:4, Cr before Cb` },
];

/**
 * V4L2 formats known NOT to map, with why (others not in the table are unmapped with a generic
 * reason): layouts that look alike but are not, so nobody adds them by mistake.
 */
const KNOWN_UNMAPPED: Readonly<Record<string, string>> = {
  BGR4: 'deprecated BGR32: the fourth byte is alpha or padding depending on the driver (use XR24/AR24)',
  RGB4: 'deprecated RGB32: the fourth byte is alpha or padding depending on the driver (use BX24/BA24)',
  RGBR: 'RGB565X is big-endian; DRM RGB565 is little-endian',
  RGBQ: 'RGB555X is big-endian; DRM XRGB1555 is little-endian',
  RGBO: 'deprecated RGB555: alpha or padding depending on the driver (use XR15/AR15)',
  R444: 'deprecated RGB444: alpha or padding depending on the driver (use XR12/AR12)',
  AYUV: 'V4L2 AYUV32 is bytes A, Y, Cb, Cr; DRM AYUV is [31:0] A:Y:Cb:Cr little-endian, i.e. bytes Cr, Cb, Y, A',
  YUV4: 'deprecated YUV32: alpha or padding depending on the driver',
  TM12: 'NV12 in 64x32 tiles: a tiled layout V4L2 expresses as a format, DRM as a modifier (not mapped)',
};

export interface V4l2FormatInfo {
  /** The V4L2 fourcc as a number and as text. */
  readonly pixelformat: number;
  readonly v4l2: string;
  /** The DRM format code, or null when unmapped. */
  readonly drm: number | null;
  readonly separatePlanes: boolean;
  /** The mapping's source, or why it is not mapped. */
  readonly source: string;
}

const byV4l2 = new Map(V4L2_FORMAT_TABLE.map((m) => [fourccCode(m.v4l2), m]));

/**
 * The V4L2 fourcc's text as v4l2-ctl prints it: 'XR24', 'Y16' (trailing spaces trimmed), and for
 * big-endian codes (bit 31) the four characters then '-BE' ('Y16 -BE').
 */
export function v4l2FourccString(code: number): string {
  const chars = [0, 8, 16, 24].map((s) => String.fromCharCode(((code & 0x7fffffff) >>> s) & 0xff)).join('');
  return (code & 0x80000000) !== 0 ? `${chars}-BE` : chars.trimEnd();
}

/** What `pixelformat` (a V4L2 fourcc) is in DRM terms: mapped with its source, or unmapped with why. */
export function v4l2FormatInfo(pixelformat: number): V4l2FormatInfo {
  const v4l2 = v4l2FourccString(pixelformat);
  const m = byV4l2.get(pixelformat >>> 0);
  if (m) return { pixelformat: pixelformat >>> 0, v4l2: m.v4l2, drm: fourcc(m.drm), separatePlanes: m.separatePlanes === true, source: m.source };
  const why = KNOWN_UNMAPPED[v4l2.trim()] ?? (v4l2.endsWith('-BE') ? 'a big-endian V4L2 format (no DRM equivalent in the table)' : 'no DRM format with the same memory layout in the table (src/v4l2/formats.ts)');
  return { pixelformat: pixelformat >>> 0, v4l2, drm: null, separatePlanes: false, source: why };
}

/** The V4L2 fourcc for a DRM format: the single-buffer one first (XRGB8888 -> 'XR24'). */
export function v4l2FormatFor(drm: number, opts: { separatePlanes?: boolean } = {}): number | null {
  const want = opts.separatePlanes === true;
  for (const m of V4L2_FORMAT_TABLE) if (fourcc(m.drm) === drm && (m.separatePlanes === true) === want) return fourccCode(m.v4l2);
  return null;
}

/** enum v4l2_colorspace, enum v4l2_ycbcr_encoding and enum v4l2_quantization (videodev2.h). */
export const V4L2_COLORSPACE = { DEFAULT: 0, SMPTE170M: 1, SMPTE240M: 2, REC709: 3, BT878: 4, '470_SYSTEM_M': 5, '470_SYSTEM_BG': 6, JPEG: 7, SRGB: 8, OPRGB: 9, BT2020: 10, RAW: 11, DCI_P3: 12 } as const;
export const V4L2_YCBCR_ENC = { DEFAULT: 0, '601': 1, '709': 2, XV601: 3, XV709: 4, SYCC: 5, BT2020: 6, BT2020_CONST_LUM: 7, SMPTE240M: 8 } as const;
export const V4L2_QUANTIZATION = { DEFAULT: 0, FULL_RANGE: 1, LIM_RANGE: 2 } as const;

/**
 * How a V4L2 YUV format's values map to RGB, from G_FMT's colorspace, ycbcr_enc and quantization,
 * defaults resolved as videodev2.h's macros do for a YUV format: a DEFAULT colorspace by the
 * height (V4L2_MAP_COLORSPACE_DEFAULT: SMPTE 170M below 720 lines, Rec. 709 from there), a
 * DEFAULT ycbcr_enc by the colorspace (V4L2_MAP_YCBCR_ENC_DEFAULT: Rec. 709 and DCI-P3 -> 709,
 * BT.2020 -> BT.2020, SMPTE 240M -> SMPTE 240M, everything else -> 601), a DEFAULT quantization
 * by the colorspace (V4L2_MAP_QUANTIZATION_DEFAULT: full range for JPEG, limited for every other
 * YUV). xvYCC (XV601, XV709) decodes with its matrix in limited range; BT.2020's constant-luminance
 * form has no matrix and is taken as the non-constant one.
 */
export function v4l2YuvEncoding(f: { readonly colorspace: number; readonly ycbcrEnc: number; readonly quantization: number; readonly height: number }): YuvEncoding {
  const C = V4L2_COLORSPACE;
  const E = V4L2_YCBCR_ENC;
  const colorspace = f.colorspace === C.DEFAULT ? (f.height < 720 ? C.SMPTE170M : C.REC709) : f.colorspace;
  let enc = f.ycbcrEnc;
  if (enc === E.DEFAULT) {
    enc = colorspace === C.REC709 || colorspace === C.DCI_P3 ? E['709'] : colorspace === C.BT2020 ? E.BT2020 : colorspace === C.SMPTE240M ? E.SMPTE240M : E['601'];
  }
  const matrix: YuvEncoding['matrix'] =
    enc === E['709'] || enc === E.XV709 ? 'bt709' : enc === E.BT2020 || enc === E.BT2020_CONST_LUM ? 'bt2020' : enc === E.SMPTE240M ? 'smpte240m' : 'bt601';
  const Q = V4L2_QUANTIZATION;
  const q = f.quantization === Q.DEFAULT ? (colorspace === C.JPEG ? Q.FULL_RANGE : Q.LIM_RANGE) : f.quantization;
  return { matrix, range: q === Q.FULL_RANGE ? 'full' : 'limited' };
}
