/**
 * The copy fallback's policy: copy the damaged rectangles of a source into a scanout buffer, the
 * source inside a DMA_BUF_IOCTL_SYNC read bracket and the destination inside a write bracket,
 * the copy itself on libuv's thread pool (native/copy.cc: streaming stores, never reading the
 * destination, one store fence). The source may be a dma-buf mapping, plain mapped memory, or
 * a client's wl_shm buffer (copyRectsInto: its pool read by src/wayland/shm.ts, under a SIGBUS guard
 * where the pool could shrink, no bracket).
 *
 * Both surfaces (their mappings and dma-bufs) are referenced until the returned promise settles;
 * the caller must not close them before (CopyRing defers its own closes for exactly this).
 */
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { Mapping } from '../dmabuf/mapping.js';
import { native } from '../native.js';
import type { RawCopySurface } from '../native/copy.js';
import type { RawShmCopyJob } from '../native/shm.js';
import { fourcc } from '../formats/index.js';
import type { Rect } from './damage.js';
import { rectString } from './damage.js';

/** One side of a copy: a one-plane RGB image in mapped memory. */
export interface CopySurface {
  /** The CPU mapping holding the plane (or any mapped byte range, e.g. a wl_shm pool). */
  readonly memory: Mapping | ArrayBuffer | ArrayBufferView;
  /** The dma-buf behind `memory`: the copy brackets it with DMA_BUF_IOCTL_SYNC. */
  readonly dmabuf?: Dmabuf;
  /** Byte offset of the plane in `memory` (default 0). */
  readonly offset?: number;
  /** DRM fourcc. */
  readonly format: number;
  readonly stride: number;
  readonly width: number;
  readonly height: number;
  /** NV12: the interleaved CbCr plane, in the same memory (offset from its start, stride) */
  readonly chroma?: { readonly offset: number; readonly stride: number };
  /** YUYV and NV12 sources: how their values map to RGB (default DEFAULT_YUV_ENCODING) */
  readonly yuv?: YuvEncoding;
}

/**
 * How a YUV source's values map to RGB: the matrix (its luma weights) and the
 * range (limited: Y in [16, 235], Cb/Cr in [16, 240]; full: all of [0, 255]).
 */
export interface YuvEncoding {
  /** the luma weights: ITU-R BT.601, BT.709, BT.2020 (non-constant luminance), SMPTE 240M */
  readonly matrix: 'bt601' | 'bt709' | 'bt2020' | 'smpte240m';
  readonly range: 'limited' | 'full';
}

/** What a YUV source without a word on its encoding is taken to be (V4L2's and KMS's defaults for SDTV). */
export const DEFAULT_YUV_ENCODING: YuvEncoding = { matrix: 'bt601', range: 'limited' };

const LUMA_WEIGHTS: Readonly<Record<string, { kr: number; kb: number }>> = {
  bt601: { kr: 0.299, kb: 0.114 },
  bt709: { kr: 0.2126, kb: 0.0722 },
  bt2020: { kr: 0.2627, kb: 0.0593 },
  smpte240m: { kr: 0.212, kb: 0.087 },
};
const yuvMatrices = new Map<string, Int32Array>();

/**
 * The conversion's coefficients for `e` (the native copy's job.yuv: [yOffset, yScale, rCr, gCb,
 * gCr, bCb], 16 fraction bits), from the matrix's luma weights Kr and Kb: R = Y' + 2(1 - Kr) Cr,
 * G = Y' - 2(1 - Kb) Kb / Kg Cb - 2(1 - Kr) Kr / Kg Cr, B = Y' + 2(1 - Kb) Cb, with limited range
 * stretching Y' = (Y - 16) 255/219 and the chroma by 255/224.
 */
export function yuvCoefficients(e: YuvEncoding = DEFAULT_YUV_ENCODING): Int32Array {
  return coefficientsOf(e).slice();
}

function coefficientsOf(e: YuvEncoding = DEFAULT_YUV_ENCODING): Int32Array {
  const key = `${e.matrix}/${e.range}`;
  let m = yuvMatrices.get(key);
  if (!m) {
    const w = LUMA_WEIGHTS[e.matrix];
    if (!w || (e.range !== 'limited' && e.range !== 'full')) throw new RangeError(`unknown YUV encoding ${key}`);
    const { kr, kb } = w;
    const kg = 1 - kr - kb;
    const limited = e.range === 'limited';
    const ys = limited ? 255 / 219 : 1;
    const cs = limited ? 255 / 224 : 1;
    const fx = (v: number): number => Math.round(v * 65536);
    m = Int32Array.of(limited ? 16 : 0, fx(ys), fx(cs * 2 * (1 - kr)), fx((cs * 2 * (1 - kb) * kb) / kg), fx((cs * 2 * (1 - kr) * kr) / kg), fx(cs * 2 * (1 - kb)));
    yuvMatrices.set(key, m);
  }
  return m;
}

/** Running totals a caller can keep across copies (a ring, an output). */
export interface CopyStats {
  /** copy jobs that completed */
  copies: number;
  /** bytes written to destinations */
  bytes: number;
  /** DMA_BUF_IOCTL_SYNC calls issued (START and END both count) */
  syncCalls: number;
}

export function newCopyStats(): CopyStats {
  return { copies: 0, bytes: 0, syncCalls: 0 };
}

export interface CopyOptions {
  /** Destination position of source pixel (0, 0); default 0, 0. */
  dx?: number;
  dy?: number;
  /** Totals to add this copy to. */
  stats?: CopyStats;
}

/** The formats conversions go between (any two of them, either way). */
export const CONVERTIBLE_FORMATS: readonly number[] = ['XRGB8888', 'ARGB8888', 'XBGR8888', 'ABGR8888', 'RGB565'].map(fourcc);

let sameFormat: ReadonlyMap<number, number> | undefined;

/** Bytes per pixel of every format a same-format copy takes (one-plane RGB). */
export function copyFormats(): ReadonlyMap<number, number> {
  sameFormat ??= new Map(native.copyFormats());
  return sameFormat;
}

/**
 * YUV formats copyRects converts to every CONVERTIBLE_FORMATS member (with the source's
 * YuvEncoding, BT.601 limited range by default; even columns). NV12's CbCr plane is the
 * CopySurface's `chroma`.
 */
export const YUV_SOURCE_FORMATS: readonly number[] = ['YUYV', 'NV12'].map(fourcc);

/** Whether copyRects can copy `src` into `dst` (same format, or a listed conversion). */
export function canCopy(src: number, dst: number): boolean {
  if (src === dst) return copyFormats().has(src);
  if (YUV_SOURCE_FORMATS.includes(src)) return CONVERTIBLE_FORMATS.includes(dst);
  return CONVERTIBLE_FORMATS.includes(src) && CONVERTIBLE_FORMATS.includes(dst);
}

/** @internal The native job's view of a surface (compose.ts shares it). */
export function rawSurface(s: CopySurface): RawCopySurface {
  // A closed Mapping throws ClosedError here, before any bracket starts.
  const data = s.memory instanceof Mapping ? s.memory.buffer : s.memory;
  const raw: RawCopySurface = { data, offset: s.offset ?? 0, format: s.format, stride: s.stride, width: s.width, height: s.height };
  if (s.chroma) {
    raw.chromaOffset = s.chroma.offset;
    raw.chromaStride = s.chroma.stride;
  }
  // The native job brackets the copy with DMA_BUF_IOCTL_SYNC on this fd (a closed Dmabuf throws
  // ClosedError here); runJob keeps the fd open until the job settles.
  if (s.dmabuf) raw.syncFd = s.dmabuf.fd;
  return raw;
}

function packRects(rects: readonly Rect[]): Uint32Array {
  const out = new Uint32Array(rects.length * 4);
  for (let i = 0; i < rects.length; i++) {
    const r = rects[i]!;
    checkRectField(i, r, 'x', r.x);
    checkRectField(i, r, 'y', r.y);
    checkRectField(i, r, 'width', r.width);
    checkRectField(i, r, 'height', r.height);
    out[i * 4] = r.x;
    out[i * 4 + 1] = r.y;
    out[i * 4 + 2] = r.width;
    out[i * 4 + 3] = r.height;
  }
  return out;
}

function checkRectField(i: number, r: Rect, k: string, v: number): void {
  if (!Number.isSafeInteger(v)) throw new TypeError(`rect ${i}: ${k} must be an integer (got ${String(v)})`);
  if (v < 0 || v > 0xffffffff) throw new RangeError(`rect ${i} (${rectString(r)}) is outside the source`);
}

/**
 * Copies `rects` (source coordinates) from `src` into `dst`, converting the format when they
 * differ; resolves with the bytes written. A request that does not fit the memory (a rectangle
 * outside either surface, a stride below the row size, a plane past the mapping's end, an unknown
 * format or conversion) rejects with RangeError or TypeError and touches nothing.
 */
export function copyRects(src: CopySurface, dst: CopySurface, rects: readonly Rect[], opts: CopyOptions = {}): Promise<number> {
  return runJob(src, dst, opts.stats, () =>
    native.copyRects({ src: rawSurface(src), dst: rawSurface(dst), rects: packRects(rects), dx: opts.dx ?? 0, dy: opts.dy ?? 0, ...(YUV_SOURCE_FORMATS.includes(src.format) ? { yuv: coefficientsOf(src.yuv) } : {}) }),
  );
}

/** What copyTransformed draws: a source rectangle into a destination rectangle of any size. */
export interface CopyTransform {
  /** In source pixels; default the whole source. */
  readonly srcRect?: Rect;
  /** In destination pixels; default at (0, 0) with the source rectangle's size after rotation. */
  readonly dstRect?: Rect;
  /**
   * Writes only the part of dstRect inside this rectangle of the destination (default: all of
   * dstRect, which must then lie inside the destination). dstRect may then reach past the
   * destination's edges (negative x, y too): what shows is what the whole dstRect would show there.
   */
  readonly clip?: Rect;
  /** Degrees counter-clockwise, as DRM_MODE_ROTATE_* (default 0). */
  readonly rotation?: 0 | 90 | 180 | 270;
  /** Mirror the source rectangle horizontally (x -> width-1-x) before rotating, as DRM_MODE_REFLECT_X. */
  readonly reflectX?: boolean;
  /** Mirror it vertically before rotating, as DRM_MODE_REFLECT_Y. */
  readonly reflectY?: boolean;
}

/** Checks a rectangle's integers; `placed`: x and y may be negative (a clipped dstRect). */
function rawRect(name: string, r: Rect, placed = false): Rect {
  for (const k of ['x', 'y', 'width', 'height'] as const) {
    const v = r[k];
    if (!Number.isSafeInteger(v)) throw new TypeError(`${name}.${k} must be an integer (got ${String(v)})`);
    const min = placed && (k === 'x' || k === 'y') ? -0x80000000 : 0;
    if (v < min || v > 0xffffffff) throw new RangeError(`${name} (${rectString(r)}) is outside the surface`);
  }
  return { x: r.x, y: r.y, width: r.width, height: r.height };
}

/**
 * Draws `t.srcRect` of `src` into `t.dstRect` of `dst`: reflected, rotated counter-clockwise,
 * then scaled with nearest-neighbour sampling (each destination pixel takes the source pixel
 * under its centre), converting the format when they differ; every pixel of the destination
 * rectangle (within `t.clip`, when given) is written once, nothing else. Same brackets, stats and errors as copyRects.
 */
export async function copyTransformed(src: CopySurface, dst: CopySurface, t: CopyTransform, opts: Pick<CopyOptions, 'stats'> = {}): Promise<number> {
  const rotation = t.rotation ?? 0;
  if (![0, 90, 180, 270].includes(rotation)) throw new RangeError(`rotation must be 0, 90, 180 or 270 (got ${String(rotation)})`);
  const srcRect = rawRect('srcRect', t.srcRect ?? { x: 0, y: 0, width: src.width, height: src.height });
  const swap = rotation === 90 || rotation === 270;
  const clip = t.clip && rawRect('clip', t.clip);
  const dstRect = rawRect('dstRect', t.dstRect ?? { x: 0, y: 0, width: swap ? srcRect.height : srcRect.width, height: swap ? srcRect.width : srcRect.height }, clip !== undefined);
  const job = { src: rawSurface(src), dst: rawSurface(dst), srcRect, dstRect, rotation, reflectX: t.reflectX === true, reflectY: t.reflectY === true, ...(clip ? { clip } : {}) };
  return runJob(src, dst, opts.stats, () => native.copyTransformed(job));
}

/**
 * A copy whose source the caller reads itself (a wl_shm pool): `run` gets the raw job (`dst`,
 * `rects`, dx, dy) and does the copy; the destination's write bracket, its mapping kept until
 * the copy settles, the stats and the argument errors are copyRects'.
 */
export function copyRectsInto(dst: CopySurface, rects: readonly Rect[], opts: CopyOptions, run: (job: RawShmCopyJob) => Promise<number>): Promise<number> {
  // a wl_shm YUYV buffer says nothing of its encoding: the default
  return runJob(undefined, dst, opts.stats, () => run({ dst: rawSurface(dst), rects: packRects(rects), dx: opts.dx ?? 0, dy: opts.dy ?? 0, yuv: coefficientsOf() }));
}

/** A buffer's pixels for the copy path when they are not a mappable dma-buf (wl_shm). */
export interface CopySource {
  /** Copies `rects` (buffer coordinates) into `dst`, source pixel (0,0) landing at (opts.dx, opts.dy). */
  copyRects(dst: CopySurface, rects: readonly Rect[], opts: CopyOptions): Promise<number>;
  /** A mapped view of the pixels for crops/scaling/rotation (copyTransformed), when there is one. */
  surface?(): CopySurface;
  /**
   * The pixels as composeLayers reads them (an image layer's `source` and `guarded`), also where
   * surface() is absent because the memory may be truncated under us.
   */
  composeSource?(): ComposeSource;
}

/** A buffer's pixels for composeLayers (src/scanout/compose.ts). */
export interface ComposeSource {
  readonly surface: CopySurface;
  /** Reads must run under the SIGBUS guard (ComposeImageLayer.guarded). */
  readonly guarded: boolean;
  /**
   * Hand it composeLayers' rejection when the job failed on this layer: a truncated wl_shm pool
   * is then marked bad and its client gets wl_shm.error.invalid_fd, as for a failed copy.
   */
  failed?(error: unknown): void;
}

/**
 * Runs a native copy job (`start`) with what it touches kept until it settles, whatever the
 * caller closes meanwhile: both mappings stay mapped and both dma-buf fds open (the job brackets
 * its copy with DMA_BUF_IOCTL_SYNC on them itself, on the same pool thread: InBrackets in
 * native/copy.cc). Counts into `stats`: two sync calls per dma-buf for a copy that ran; for one
 * that failed, the ioctls the job says it issued (a START that failed counts; its END never runs).
 * A synchronous throw (a closed resource, a bad argument) comes back as a rejection.
 */
function runJob(src: CopySurface | undefined, dst: CopySurface, stats: CopyStats | undefined, start: () => Promise<number>): Promise<number> {
  let settled: Promise<number>;
  try {
    settled = keeping(src?.memory, keeping(dst.memory, keeping(src?.dmabuf, keeping(dst.dmabuf, start))))();
  } catch (error) {
    return Promise.reject(error);
  }
  return settled.then(
    (bytes) => {
      if (stats) {
        stats.syncCalls += (src?.dmabuf ? 2 : 0) + (dst.dmabuf ? 2 : 0);
        stats.copies++;
        stats.bytes += bytes;
      }
      return bytes;
    },
    (error: unknown) => {
      const calls = (error as { syncCalls?: unknown } | null)?.syncCalls;
      if (typeof calls === 'number') {
        if (stats) stats.syncCalls += calls;
        delete (error as { syncCalls?: unknown }).syncCalls;
      }
      throw error;
    },
  );
}

/** @internal `job` with `r` (a mapping, a dma-buf, or anything else: nothing to keep) held while it runs. */
export function keeping<T>(r: unknown, job: () => Promise<T>): () => Promise<T> {
  if (r instanceof Mapping) return () => r.use(job);
  if (r instanceof Dmabuf) return () => r.keepOpen(job);
  return job;
}
