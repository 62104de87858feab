/**
 * What the kernel knows about each pixel format (drivers/gpu/drm/drm_fourcc.c, the
 * drm_format_info table of Linux 6.12) and the kernel's own size rules built on it:
 * drm_format_info_min_pitch(), drm_format_info_plane_width/height() and the buffer size check
 * of drm_gem_fb_init_with_funcs() / framebuffer_check(). All sizes are bigint (64-bit safe).
 *
 * The table is written here from the kernel's facts; formats the header defines but the kernel
 * table does not describe (R16, RG88, ...) have no FormatInfo, just as the kernel rejects them
 * in AddFB2.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkFormatCode, fourcc, fourccString, formatName } from './fourcc.js';

export interface FormatInfo {
  /** The fourcc code. */
  readonly format: number;
  /** Header name without DRM_FORMAT_ ('NV12'). */
  readonly name: string;
  /** The four characters ('NV12'). */
  readonly fourcc: string;
  /** Colour depth for legacy (depth/bpp) interfaces, 0 when the format has none. */
  readonly depth: number;
  /** Number of memory planes (num_planes). */
  readonly planes: number;
  /** Bytes per block of each plane (char_per_block); 0 when only a non-linear modifier defines the layout. */
  readonly bytesPerBlock: readonly number[];
  /** Block width in pixels of each plane (1 for ordinary pixel formats). */
  readonly blockWidth: readonly number[];
  /** Block height in pixels of each plane (1 for ordinary pixel formats). */
  readonly blockHeight: readonly number[];
  /** Bytes per pixel of each plane where a block is one pixel (the kernel's cpp), else 0. */
  readonly cpp: readonly number[];
  /** Bits per pixel of each plane (drm_format_info_bpp). */
  readonly bitsPerPixel: readonly number[];
  /** Horizontal and vertical chroma subsampling factors (planes after the first). */
  readonly hsub: number;
  readonly vsub: number;
  readonly hasAlpha: boolean;
  readonly isYuv: boolean;
  /** A palette format (C1/C2/C4/C8). */
  readonly isColorIndexed: boolean;
  /** char_per_block is 0 for some plane: the layout exists only with a non-linear modifier. */
  readonly requiresModifier: boolean;
}

// One row per format: [name, depth, planes, hsub, vsub, flags]. `planes` lists each plane as
// `bytes` (one pixel per block) or `bytes/WxH` (a block of W x H pixels); flags: a = alpha,
// y = YUV, c = colour-indexed.
type Row = readonly [name: string, depth: number, planes: string, hsub: number, vsub: number, flags?: string];

const KERNEL_TABLE: readonly Row[] = [
  // colour-indexed, darkness and red-only formats
  ['C1', 1, '1/8x1', 1, 1, 'c'], ['C2', 2, '1/4x1', 1, 1, 'c'], ['C4', 4, '1/2x1', 1, 1, 'c'], ['C8', 8, '1', 1, 1, 'c'],
  ['D1', 1, '1/8x1', 1, 1], ['D2', 2, '1/4x1', 1, 1], ['D4', 4, '1/2x1', 1, 1], ['D8', 8, '1', 1, 1],
  ['R1', 1, '1/8x1', 1, 1], ['R2', 2, '1/4x1', 1, 1], ['R4', 4, '1/2x1', 1, 1], ['R8', 8, '1', 1, 1],
  ['R10', 10, '2', 1, 1], ['R12', 12, '2', 1, 1],
  // 8 and 16 bit RGB
  ['RGB332', 8, '1', 1, 1], ['BGR233', 8, '1', 1, 1],
  ['XRGB4444', 0, '2', 1, 1], ['XBGR4444', 0, '2', 1, 1], ['RGBX4444', 0, '2', 1, 1], ['BGRX4444', 0, '2', 1, 1],
  ['ARGB4444', 0, '2', 1, 1, 'a'], ['ABGR4444', 0, '2', 1, 1, 'a'], ['RGBA4444', 0, '2', 1, 1, 'a'], ['BGRA4444', 0, '2', 1, 1, 'a'],
  ['XRGB1555', 15, '2', 1, 1], ['XBGR1555', 15, '2', 1, 1], ['RGBX5551', 15, '2', 1, 1], ['BGRX5551', 15, '2', 1, 1],
  ['ARGB1555', 15, '2', 1, 1, 'a'], ['ABGR1555', 15, '2', 1, 1, 'a'], ['RGBA5551', 15, '2', 1, 1, 'a'], ['BGRA5551', 15, '2', 1, 1, 'a'],
  ['RGB565', 16, '2', 1, 1], ['BGR565', 16, '2', 1, 1],
  // 24 and 32 bit RGB
  ['RGB888', 24, '3', 1, 1], ['BGR888', 24, '3', 1, 1],
  ['XRGB8888', 24, '4', 1, 1], ['XBGR8888', 24, '4', 1, 1], ['RGBX8888', 24, '4', 1, 1], ['BGRX8888', 24, '4', 1, 1],
  ['RGB565_A8', 24, '2,1', 1, 1, 'a'], ['BGR565_A8', 24, '2,1', 1, 1, 'a'],
  ['XRGB2101010', 30, '4', 1, 1], ['XBGR2101010', 30, '4', 1, 1], ['RGBX1010102', 30, '4', 1, 1], ['BGRX1010102', 30, '4', 1, 1],
  ['ARGB2101010', 30, '4', 1, 1, 'a'], ['ABGR2101010', 30, '4', 1, 1, 'a'], ['RGBA1010102', 30, '4', 1, 1, 'a'], ['BGRA1010102', 30, '4', 1, 1, 'a'],
  ['ARGB8888', 32, '4', 1, 1, 'a'], ['ABGR8888', 32, '4', 1, 1, 'a'], ['RGBA8888', 32, '4', 1, 1, 'a'], ['BGRA8888', 32, '4', 1, 1, 'a'],
  // 64 bit RGB
  ['XRGB16161616F', 0, '8', 1, 1], ['XBGR16161616F', 0, '8', 1, 1],
  ['ARGB16161616F', 0, '8', 1, 1, 'a'], ['ABGR16161616F', 0, '8', 1, 1, 'a'],
  ['AXBXGXRX106106106106', 0, '8', 1, 1, 'a'],
  ['XRGB16161616', 0, '8', 1, 1], ['XBGR16161616', 0, '8', 1, 1],
  ['ARGB16161616', 0, '8', 1, 1, 'a'], ['ABGR16161616', 0, '8', 1, 1, 'a'],
  // RGB with a separate alpha plane
  ['RGB888_A8', 32, '3,1', 1, 1, 'a'], ['BGR888_A8', 32, '3,1', 1, 1, 'a'],
  ['XRGB8888_A8', 32, '4,1', 1, 1, 'a'], ['XBGR8888_A8', 32, '4,1', 1, 1, 'a'],
  ['RGBX8888_A8', 32, '4,1', 1, 1, 'a'], ['BGRX8888_A8', 32, '4,1', 1, 1, 'a'],
  // three-plane YUV
  ['YUV410', 0, '1,1,1', 4, 4, 'y'], ['YVU410', 0, '1,1,1', 4, 4, 'y'],
  ['YUV411', 0, '1,1,1', 4, 1, 'y'], ['YVU411', 0, '1,1,1', 4, 1, 'y'],
  ['YUV420', 0, '1,1,1', 2, 2, 'y'], ['YVU420', 0, '1,1,1', 2, 2, 'y'],
  ['YUV422', 0, '1,1,1', 2, 1, 'y'], ['YVU422', 0, '1,1,1', 2, 1, 'y'],
  ['YUV444', 0, '1,1,1', 1, 1, 'y'], ['YVU444', 0, '1,1,1', 1, 1, 'y'],
  // two-plane YUV
  ['NV12', 0, '1,2', 2, 2, 'y'], ['NV21', 0, '1,2', 2, 2, 'y'],
  ['NV16', 0, '1,2', 2, 1, 'y'], ['NV61', 0, '1,2', 2, 1, 'y'],
  ['NV24', 0, '1,2', 1, 1, 'y'], ['NV42', 0, '1,2', 1, 1, 'y'],
  // packed YUV
  ['YUYV', 0, '2', 2, 1, 'y'], ['YVYU', 0, '2', 2, 1, 'y'], ['UYVY', 0, '2', 2, 1, 'y'], ['VYUY', 0, '2', 2, 1, 'y'],
  ['XYUV8888', 0, '4', 1, 1, 'y'], ['VUY888', 0, '3', 1, 1, 'y'], ['AYUV', 0, '4', 1, 1, 'ay'],
  ['Y210', 0, '4', 2, 1, 'y'], ['Y212', 0, '4', 2, 1, 'y'], ['Y216', 0, '4', 2, 1, 'y'],
  ['Y410', 0, '4', 1, 1, 'ay'], ['Y412', 0, '8', 1, 1, 'ay'], ['Y416', 0, '8', 1, 1, 'ay'],
  ['XVYU2101010', 0, '4', 1, 1, 'y'], ['XVYU12_16161616', 0, '8', 1, 1, 'y'], ['XVYU16161616', 0, '8', 1, 1, 'y'],
  // 2x2 tiled packed YUV
  ['Y0L0', 0, '8/2x2', 2, 2, 'ay'], ['X0L0', 0, '8/2x2', 2, 2, 'y'],
  ['Y0L2', 0, '8/2x2', 2, 2, 'ay'], ['X0L2', 0, '8/2x2', 2, 2, 'y'],
  // two-plane YUV, more than 8 bits per sample
  ['P010', 0, '2/1x1,4/1x1', 2, 2, 'y'], ['P012', 0, '2/1x1,4/1x1', 2, 2, 'y'], ['P016', 0, '2/1x1,4/1x1', 2, 2, 'y'],
  ['P210', 0, '2/1x1,4/1x1', 2, 1, 'y'],
  // layouts that exist only with a non-linear modifier (char_per_block 0)
  ['VUY101010', 0, '0', 1, 1, 'y'], ['YUV420_8BIT', 0, '0', 2, 2, 'y'], ['YUV420_10BIT', 0, '0', 2, 2, 'y'],
  // packed 10-bit two-plane YUV: 4 samples in 5 bytes
  ['NV15', 0, '5/4x1,5/2x1', 2, 2, 'y'], ['NV20', 0, '5/4x1,5/2x1', 2, 1, 'y'], ['NV30', 0, '5/4x1,5/2x1', 1, 1, 'y'],
  // three-plane 16-bit YUV
  ['Q410', 0, '2/1x1,2/1x1,2/1x1', 1, 1, 'y'], ['Q401', 0, '2/1x1,2/1x1,2/1x1', 1, 1, 'y'],
  // 3 samples of 10 bits in 4 bytes
  ['P030', 0, '4/3x1,8/3x1', 2, 2, 'y'],
];

function buildInfo(row: Row): FormatInfo {
  const [name, depth, planeSpec, hsub, vsub, flags = ''] = row;
  const format = fourcc(name);
  const bytesPerBlock: number[] = [];
  const blockWidth: number[] = [];
  const blockHeight: number[] = [];
  const cpp: number[] = [];
  for (const p of planeSpec.split(',')) {
    const m = /^(\d+)(?:\/(\d+)x(\d+))?$/.exec(p);
    if (!m) throw new Error(`bad plane spec ${p} for ${name}`);
    const bytes = Number(m[1]);
    bytesPerBlock.push(bytes);
    blockWidth.push(m[2] ? Number(m[2]) : 1);
    blockHeight.push(m[3] ? Number(m[3]) : 1);
    // bytes per pixel only means something when a block is one pixel
    cpp.push(blockWidth[blockWidth.length - 1] * blockHeight[blockHeight.length - 1] === 1 ? bytes : 0);
  }
  const bitsPerPixel = bytesPerBlock.map((b, i) => Math.floor((b * 8) / (blockWidth[i] * blockHeight[i])));
  return Object.freeze({
    format,
    name: formatName(format),
    fourcc: fourccString(format),
    depth,
    planes: bytesPerBlock.length,
    bytesPerBlock: Object.freeze(bytesPerBlock),
    blockWidth: Object.freeze(blockWidth),
    blockHeight: Object.freeze(blockHeight),
    cpp: Object.freeze(cpp),
    bitsPerPixel: Object.freeze(bitsPerPixel),
    hsub,
    vsub,
    hasAlpha: flags.includes('a'),
    isYuv: flags.includes('y'),
    isColorIndexed: flags.includes('c'),
    requiresModifier: bytesPerBlock.some((b) => b === 0),
  });
}

const infos = new Map<number, FormatInfo>(KERNEL_TABLE.map((row) => {
  const info = buildInfo(row);
  return [info.format, info];
}));

/** What the kernel's format table says about `format`, or undefined when it does not describe it. */
export function formatInfo(format: number): FormatInfo | undefined {
  return infos.get(checkFormatCode(format));
}

/** Every format the kernel's table describes, ascending by code. */
export function kernelFormats(): readonly FormatInfo[] {
  return [...infos.values()].sort((a, b) => a.format - b.format);
}

function requireInfo(format: number): FormatInfo {
  const info = formatInfo(format);
  if (!info) throw new InvalidArgumentError(`the kernel's format table does not describe ${formatName(format)}`);
  return info;
}

function checkDimension(v: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffffffff) {
    throw new InvalidArgumentError(`${what} must be an integer in [1, 2^32), got ${String(v)}`);
  }
  return v;
}

function checkPlane(info: FormatInfo, plane: number): number {
  if (!Number.isInteger(plane) || plane < 0 || plane >= info.planes) {
    throw new InvalidArgumentError(`${info.name} has ${info.planes} plane(s); plane ${String(plane)} does not exist`);
  }
  return plane;
}

const divRoundUp = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** Width in pixels of `plane` for a framebuffer `width` wide (drm_format_info_plane_width). */
export function planeWidth(format: number, width: number, plane: number): number {
  const info = requireInfo(format);
  checkPlane(info, plane);
  checkDimension(width, 'width');
  return plane === 0 ? width : Math.ceil(width / info.hsub);
}

/** Height in rows of `plane` for a framebuffer `height` tall (drm_format_info_plane_height). */
export function planeHeight(format: number, height: number, plane: number): number {
  const info = requireInfo(format);
  checkPlane(info, plane);
  checkDimension(height, 'height');
  return plane === 0 ? height : Math.ceil(height / info.vsub);
}

/**
 * The smallest pitch (bytes per row) the kernel accepts for `plane` of a framebuffer `width`
 * pixels wide: drm_format_info_min_pitch() applied to the plane's width, i.e.
 * ceil(planeWidth * bytesPerBlock / (blockWidth * blockHeight)). 0n for a plane whose layout
 * only a modifier defines (bytesPerBlock 0), as in the kernel.
 */
export function minPitch(format: number, width: number, plane = 0): bigint {
  const info = requireInfo(format);
  checkPlane(info, plane);
  const w = BigInt(planeWidth(format, width, plane));
  return divRoundUp(w * BigInt(info.bytesPerBlock[plane]), BigInt(info.blockWidth[plane] * info.blockHeight[plane]));
}

/**
 * The smallest buffer size the kernel accepts for `plane` (excluding its offset), as
 * drm_gem_fb_init_with_funcs() computes it: (planeHeight - 1) * pitch + minPitch. `pitch`
 * defaults to the minimum pitch and must not be smaller than it.
 */
export function planeSize(format: number, width: number, height: number, plane: number, pitch?: bigint): bigint {
  const info = requireInfo(format);
  checkPlane(info, plane);
  const min = minPitch(format, width, plane);
  const p = pitch ?? min;
  if (typeof p !== 'bigint' || p < 0n) throw new InvalidArgumentError(`pitch must be a non-negative bigint, got ${String(p)}`);
  if (p < min) throw new InvalidArgumentError(`pitch ${p} is below the minimum ${min} for ${info.name} plane ${plane} at width ${width}`);
  const h = BigInt(planeHeight(format, height, plane));
  return (h - 1n) * p + min;
}

/** The whole-buffer size of a tightly packed layout: every plane at its minimum pitch, back to back. */
export function packedSize(format: number, width: number, height: number): bigint {
  const info = requireInfo(format);
  let total = 0n;
  for (let plane = 0; plane < info.planes; plane++) {
    total += BigInt(planeHeight(format, height, plane)) * minPitch(format, width, plane);
  }
  return total;
}
