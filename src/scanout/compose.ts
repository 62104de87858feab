/**
 * The software composer's policy: blend a scene's planeless layers into a compositor-owned
 * buffer with pixman, off the JavaScript thread (native/compose.cc, on libuv's thread pool).
 *
 *   await composeLayers({ target, clip: damage, layers: [
 *     { kind: 'image', source: window, dst: { x: 100, y: 80, width: 640, height: 480 } },
 *     { kind: 'solid', color: { kind: 'solid', r: 0, g: 0, b: 0.25, a: 0.5 }, dst: bar },
 *   ] });
 *
 * Semantics: layers bottom to top, premultiplied OVER, onto `background` (default opaque black),
 * only target pixels inside `clip` (target coordinates; the union of the rectangles, each pixel
 * composed once) are written; outside them the target is left as it was. Layers may reach past
 * the target (clipped). An image layer's `src` (source pixels, fractional allowed) is reflected,
 * rotated and scaled onto `dst` exactly as a KMS plane's "rotation" property means it
 * (drm_blend.c: DRM_MODE_ROTATE_90 is counter-clockwise; reflection first, in the source): a dst
 * of the rotated src's size with an integer src is an exact copy (nearest), anything else
 * samples bilinearly at each destination pixel's centre, the src rectangle's edges clamped (no
 * pixel outside its bounding pixels is read).
 *
 * The target is written, never read: each clip rectangle is composed from the background up in
 * a cached scratch band and streamed out (so a dma-buf target takes a WRITE bracket only, and
 * write-combined memory is never read back). Dma-buf sources are read inside READ brackets on
 * the pool thread. YUYV and NV12 sources are converted to XRGB8888 into a scratch copy of their
 * src rectangle's pixels (copy.cc's conversion, the source's YuvEncoding), as is a `guarded`
 * source (a wl_shm pool that may shrink: the copy runs under the SIGBUS guard, and a truncated
 * pool rejects the job with SystemError code 'EFAULT', syscall 'SIGBUS', `layer` its index;
 * pixman never reads such memory itself).
 *
 * Every surface's memory (mapping, dma-buf) is held until the promise settles, whatever the
 * caller drops or closes meanwhile.
 */
import { fourcc } from '../formats/index.js';
import { native } from '../native.js';
import type { RawColor, RawComposeJob, RawImageLayer, RawSolidLayer } from '../native/compose.js';
import { keeping, rawSurface, yuvCoefficients, YUV_SOURCE_FORMATS, type CopySurface } from './copy.js';
import type { Rect } from './placement.js';
import type { ComposeJob, ComposeLayer, ComposeResult, SolidColor } from './scene-types.js';

/** The target formats composeLayers writes. */
export const COMPOSE_TARGET_FORMATS: readonly number[] = ['XRGB8888', 'ARGB8888'].map(fourcc);

/**
 * Source formats an image layer may have: the RGB formats pixman reads (X formats opaque), and
 * YUYV and NV12 through a converted scratch copy.
 */
export const COMPOSE_SOURCE_FORMATS: readonly number[] = [
  'XRGB8888', 'ARGB8888', 'XBGR8888', 'ABGR8888', 'RGBX8888', 'RGBA8888', 'BGRX8888', 'BGRA8888',
  'XRGB2101010', 'ARGB2101010', 'XBGR2101010', 'ABGR2101010', 'RGB888', 'BGR888', 'RGB565', 'BGR565',
  'XRGB1555', 'ARGB1555', 'XRGB4444', 'ARGB4444', 'YUYV', 'NV12',
].map(fourcc);

/** A premultiplied colour as the native job takes it: each channel rounded to 8 bits (round(c * 255)). */
function rawColor(c: SolidColor, name: string): RawColor {
  if (c === null || typeof c !== 'object' || c.kind !== 'solid') throw new TypeError(`${name} must be a SolidColor ({ kind: 'solid', r, g, b, a })`);
  const out: number[] = [];
  for (const k of ['r', 'g', 'b', 'a'] as const) {
    const v = c[k];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${name}.${k} must be a number`);
    if (v < 0 || v > 1) throw new RangeError(`${name}.${k} must lie in [0, 1] (got ${v})`);
    out.push(Math.round(v * 255));
  }
  if (c.r > c.a || c.g > c.a || c.b > c.a) throw new RangeError(`${name}: a premultiplied colour has no channel above its alpha (${c.r}, ${c.g}, ${c.b}, ${c.a})`);
  return out as RawColor;
}

function intRect(r: Rect, name: string): Rect {
  if (r === null || typeof r !== 'object') throw new TypeError(`${name} must be a rectangle {x, y, width, height}`);
  for (const k of ['x', 'y', 'width', 'height'] as const) {
    const v = r[k];
    if (typeof v !== 'number') throw new TypeError(`${name}.${k} must be a number`);
    if (!Number.isInteger(v)) throw new RangeError(`${name}.${k} must be an integer (got ${v})`);
    if (Math.abs(v) > 2 ** 30) throw new RangeError(`${name}.${k} is out of range (${v})`);
  }
  if (r.width <= 0 || r.height <= 0) throw new RangeError(`${name} is empty (${r.width}x${r.height}): width and height must be positive`);
  return { x: r.x, y: r.y, width: r.width, height: r.height };
}

function srcRect(r: Rect | undefined, s: CopySurface, name: string): Rect | undefined {
  if (r === undefined) return undefined;
  if (r === null || typeof r !== 'object') throw new TypeError(`${name} must be a rectangle {x, y, width, height}`);
  for (const k of ['x', 'y', 'width', 'height'] as const) {
    if (typeof r[k] !== 'number') throw new TypeError(`${name}.${k} must be a number`);
    if (!Number.isFinite(r[k])) throw new RangeError(`${name}.${k} must be finite (got ${r[k]})`);
  }
  if (r.width <= 0 || r.height <= 0) throw new RangeError(`${name} is empty (${r.width}x${r.height}): width and height must be positive`);
  if (r.x < 0 || r.y < 0 || r.x + r.width > s.width || r.y + r.height > s.height)
    throw new RangeError(`${name} (${r.width}x${r.height}+${r.x}+${r.y}) is outside the ${s.width}x${s.height} source`);
  return { x: r.x, y: r.y, width: r.width, height: r.height };
}

function rawLayer(l: ComposeLayer, i: number): RawSolidLayer | RawImageLayer {
  const name = `layers[${i}]`;
  if (l === null || typeof l !== 'object') throw new TypeError(`${name} must be a ComposeLayer`);
  if (l.kind === 'solid') return { color: rawColor(l.color, `${name}.color`), dst: intRect(l.dst, `${name}.dst`) };
  if (l.kind !== 'image') throw new TypeError(`${name}.kind must be 'image' or 'solid' (got ${String((l as { kind?: unknown }).kind)})`);
  const s = l.source;
  if (s === null || typeof s !== 'object') throw new TypeError(`${name}.source must be a CopySurface`);
  if (!COMPOSE_SOURCE_FORMATS.includes(s.format))
    throw new RangeError(`${name}: source format 0x${(s.format >>> 0).toString(16)} cannot be composed (see COMPOSE_SOURCE_FORMATS)`);
  const raw: RawImageLayer = { source: rawSurface(s), dst: intRect(l.dst, `${name}.dst`) };
  const src = srcRect(l.src, s, `${name}.src`);
  if (src) raw.src = src;
  if (l.rotation !== undefined) {
    if (typeof l.rotation !== 'number') throw new TypeError(`${name}.rotation must be a number (DRM_MODE_ROTATE_* | DRM_MODE_REFLECT_*)`);
    raw.rotation = l.rotation;
  }
  if (l.opaque) raw.opaque = true;
  if (l.guarded) raw.guarded = true;
  if (YUV_SOURCE_FORMATS.includes(s.format)) raw.yuv = yuvCoefficients(s.yuv);
  return raw;
}

/**
 * Composes `job.layers` into `job.target` inside `job.clip` (see the module comment); resolves
 * with the bytes of the target written. A bad job (an empty or non-integer dst or clip
 * rectangle, a src rectangle outside its source, a format it does not take, a bad rotation or
 * colour) rejects with RangeError or TypeError and touches nothing.
 */
export function composeLayers(job: ComposeJob): Promise<ComposeResult> {
  let run: () => Promise<number>;
  try {
    if (job === null || typeof job !== 'object') throw new TypeError('composeLayers: the job must be an object');
    if (!Array.isArray(job.layers)) throw new TypeError('composeLayers: layers must be an array');
    if (!Array.isArray(job.clip)) throw new TypeError('composeLayers: clip must be an array of rectangles');
    if (!COMPOSE_TARGET_FORMATS.includes(job.target?.format))
      throw new RangeError(`composeLayers: the target's format must be XRGB8888 or ARGB8888 (got 0x${((job.target?.format ?? 0) >>> 0).toString(16)})`);
    const raw: RawComposeJob = {
      target: rawSurface(job.target),
      layers: job.layers.map(rawLayer),
      clip: job.clip.map((r, i) => intRect(r, `clip[${i}]`)),
    };
    if (job.background !== undefined) raw.background = rawColor(job.background, 'background');
    // every mapping and dma-buf held until the job settles (the native job holds the memory objects too)
    run = () => native.composeLayers(raw);
    const held = [job.target, ...job.layers.flatMap((l) => (l.kind === 'image' ? [l.source] : []))];
    for (const s of held) run = keeping(s.memory, keeping(s.dmabuf, run));
  } catch (error) {
    return Promise.reject(error);
  }
  try {
    return run().then((bytes) => ({ bytes }));
  } catch (error) {
    return Promise.reject(error);
  }
}
