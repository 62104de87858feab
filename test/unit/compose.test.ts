// Host tests of the software composer (native/compose.cc through src/scanout/compose.ts
// composeLayers), pixel for pixel against this file's own plain-JS reference:
// - OVER is premultiplied: out = s + round(d * (255 - sa) / 255) per channel, an X-format (or
//   `opaque`) source has sa = 255, colours are rounded to 8 bits as round(c * 255);
// - exact cases (integer src, dst of the rotated src's size) take one source pixel per target
//   pixel; the rotated image is built here by reflecting the src rectangle and turning it a
//   quarter counter-clockwise at a time (R(x, y) = S(w-1-y, x)), as the KMS rotation property
//   means it;
// - bilinear cases (scaled, or a fractional src) follow pixman's sampling convention: each
//   target pixel samples at its centre mapped into the source, taps floor(p - 0.5) and the next,
//   weights quantized to 7 bits, edges clamped to the src rectangle's bounding pixels, the
//   interpolation truncated; compared within ±1 level (its SIMD paths may round differently).
// XRGB8888 targets are compared on their RGB bytes (the X byte is not defined).
import t, { type Test } from 'tap';
import { SystemError } from '../../src/errors.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { fourcc } from '../../src/formats/index.js';
import { native } from '../../src/native.js';
import { composeLayers } from '../../src/scanout/compose.js';
import { copyRects, copyTransformed, type CopySurface } from '../../src/scanout/copy.js';
import type { ComposeImageLayer, ComposeLayer, SolidColor } from '../../src/scanout/scene-types.js';
import { REFLECT_X, REFLECT_Y, ROTATE_0, ROTATE_180, ROTATE_270, ROTATE_90 } from '../../src/scanout/verdict-device.js';
import { plainMemfd } from '../util/memfd.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const XB24 = fourcc('XBGR8888');
const AB24 = fourcc('ABGR8888');
const RG16 = fourcc('RGB565');
const NV12 = fourcc('NV12');
const SENTINEL = 0x5a5a5a5a;

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

// ---- images ---------------------------------------------------------------------------------
/** A w x h image of 32-bit pixels with `pad` spare pixels per row (the stride is not the width). */
function image(w: number, h: number, format: number, fill: (x: number, y: number) => number, pad = 3): { surface: CopySurface; px: Uint32Array; stride: number } {
  const stride = (w + pad) * 4;
  const px = new Uint32Array((stride / 4) * h).fill(SENTINEL);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * (stride / 4) + x] = fill(x, y) >>> 0;
  return { surface: { memory: px, format, stride, width: w, height: h }, px, stride };
}

function hash(x: number, y: number, seed: number): number {
  return Math.imul((x * 7919 + y * 104729 + seed) | 0, 0x9e3779b1) >>> 7;
}

/** Premultiplied ARGB noise: every channel at most alpha. */
function argbNoise(seed: number): (x: number, y: number) => number {
  return (x, y) => {
    const h = hash(x, y, seed);
    const a = h & 0xff;
    const c = (k: number) => ((h >>> k) & 0xff) % (a + 1);
    return ((a << 24) | (c(8) << 16) | (c(16) << 8) | c(3)) >>> 0;
  };
}

/** Opaque noise with a random X byte (which must be ignored). */
function xrgbNoise(seed: number): (x: number, y: number) => number {
  return (x, y) => hash(x, y, seed) >>> 0;
}

/** A smooth opaque gradient (bilinear on it stays close to its own values). */
function gradient(x: number, y: number): number {
  return (0xff000000 | ((x * 3) & 0xff) << 16 | ((y * 5) & 0xff) << 8 | ((x + y) & 0xff)) >>> 0;
}

// ---- the reference ---------------------------------------------------------------------------
const ch = (p: number, k: number) => (p >>> k) & 0xff;
const mul = (a: number, b: number) => Math.floor((a * b) / 255 + 0.5);

/** premultiplied OVER of 0xAARRGGBB pixels */
function over(d: number, s: number): number {
  const sa = ch(s, 24);
  let out = 0;
  for (const k of [0, 8, 16, 24]) out |= Math.min(255, ch(s, k) + mul(ch(d, k), 255 - sa)) << k;
  return out >>> 0;
}

function toArgb(p: number, format: number, opaque = false): number {
  let v = p;
  if (format === XB24 || format === AB24) v = (p & 0xff00ff00) | ((p >>> 16) & 0xff) | ((p & 0xff) << 16);
  if (format === XR24 || format === XB24 || opaque) v |= 0xff000000;
  return v >>> 0;
}

function colorPixel(c: SolidColor): number {
  const q = (v: number) => Math.round(v * 255);
  return ((q(c.a) << 24) | (q(c.r) << 16) | (q(c.g) << 8) | q(c.b)) >>> 0;
}

/** A rectangle of a surface's pixels as rows of 0xAARRGGBB (integer rect). */
function pixelsOf(l: { surface: CopySurface; px: Uint32Array; stride: number }, r: Rect, opaque = false): number[][] {
  const rows: number[][] = [];
  for (let y = 0; y < r.height; y++) {
    const row: number[] = [];
    for (let x = 0; x < r.width; x++) row.push(toArgb(l.px[(r.y + y) * (l.stride / 4) + r.x + x]!, l.surface.format, opaque));
    rows.push(row);
  }
  return rows;
}

/** Reflect (in the source), then turn counter-clockwise a quarter at a time. */
function rotateImage(img: number[][], rotation: number): number[][] {
  let out = img.map((row) => [...row]);
  if (rotation & REFLECT_X) out = out.map((row) => row.reverse());
  if (rotation & REFLECT_Y) out = out.reverse();
  const turns = { [ROTATE_0]: 0, [ROTATE_90]: 1, [ROTATE_180]: 2, [ROTATE_270]: 3 }[rotation & 15]!;
  for (let i = 0; i < turns; i++) {
    const h = out.length, w = out[0]!.length;
    const r: number[][] = [];
    for (let y = 0; y < w; y++) {
      const row: number[] = [];
      for (let x = 0; x < h; x++) row.push(out[x]![w - 1 - y]!); // R(x, y) = S(w-1-y, x)
      r.push(row);
    }
    out = r;
  }
  return out;
}

/** pixman's bilinear sample of img at continuous (px, py), edges clamped. */
function bilinear(img: number[][], px: number, py: number): number {
  const h = img.length, w = img[0]!.length;
  const fx = px - 0.5, fy = py - 0.5;
  const x0 = Math.floor(fx), y0 = Math.floor(fy);
  const dx = Math.floor((fx - x0) * 128) * 2, dy = Math.floor((fy - y0) * 128) * 2;
  const at = (x: number, y: number) => img[Math.min(h - 1, Math.max(0, y))]![Math.min(w - 1, Math.max(0, x))]!;
  const tl = at(x0, y0), tr = at(x0 + 1, y0), bl = at(x0, y0 + 1), br = at(x0 + 1, y0 + 1);
  let out = 0;
  for (const k of [0, 8, 16, 24]) {
    const v = ch(tl, k) * (256 - dx) * (256 - dy) + ch(tr, k) * dx * (256 - dy) + ch(bl, k) * (256 - dx) * dy + ch(br, k) * dx * dy;
    out |= (v >>> 16) << k;
  }
  return out >>> 0;
}

type Sampler = (X: number, Y: number) => number; // layer-local target pixel -> 0xAARRGGBB
interface RefLayer {
  dst: Rect;
  sample: Sampler;
}

/** An exact layer: the rotated src rectangle, one pixel per target pixel. */
function exactLayer(l: ReturnType<typeof image>, src: Rect, dst: Rect, rotation = ROTATE_0, opaque = false): RefLayer {
  const img = rotateImage(pixelsOf(l, src, opaque), rotation);
  return { dst, sample: (X, Y) => img[Y]![X]! };
}

/** A bilinear layer, rotation 0: src (fractional) scaled onto dst. */
function bilinearLayer(l: ReturnType<typeof image>, src: Rect, dst: Rect, rotation = ROTATE_0): RefLayer {
  const ix = Math.floor(src.x), iy = Math.floor(src.y);
  const bound = { x: ix, y: iy, width: Math.ceil(src.x + src.width) - ix, height: Math.ceil(src.y + src.height) - iy };
  const img = rotateImage(pixelsOf(l, bound), rotation); // integer src only when rotated
  const swap = (rotation & (ROTATE_90 | ROTATE_270)) !== 0;
  const rw = swap ? src.height : src.width, rh = swap ? src.width : src.height;
  return { dst, sample: (X, Y) => bilinear(img, ((X + 0.5) * rw) / dst.width + (src.x - ix), ((Y + 0.5) * rh) / dst.height + (src.y - iy)) };
}

function solidLayer(c: SolidColor, dst: Rect): RefLayer {
  const p = colorPixel(c);
  return { dst, sample: () => p };
}

/** The expected target: its old pixels, and inside the clip's union the composition from the background up. */
function reference(target: ReturnType<typeof image>, clip: Rect[], layers: RefLayer[], background = 0xff000000): Uint32Array {
  const out = target.px.slice();
  const sw = target.stride / 4;
  const inside = (r: Rect, x: number, y: number) => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;
  for (let y = 0; y < target.surface.height; y++)
    for (let x = 0; x < target.surface.width; x++) {
      if (!clip.some((c) => inside(c, x, y))) continue;
      let p = background;
      for (const l of layers) if (inside(l.dst, x, y)) p = over(p, l.sample(x - l.dst.x, y - l.dst.y));
      out[y * sw + x] = p;
    }
  return out;
}

/** Compares target pixels with the reference: the number of pixels off by more than `tolerance` in a channel, and the first few. */
function diff(target: ReturnType<typeof image>, want: Uint32Array, tolerance = 0): { bad: number; first: string[] } {
  const mask = target.surface.format === XR24 ? [0, 8, 16] : [0, 8, 16, 24];
  const sw = target.stride / 4;
  let bad = 0;
  const first: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const got = target.px[i]!, exp = want[i]!;
    const x = i % sw, y = Math.floor(i / sw);
    const padding = x >= target.surface.width;
    const off = padding ? got !== exp : mask.some((k) => Math.abs(ch(got, k) - ch(exp, k)) > tolerance);
    if (off) {
      bad++;
      if (first.length < 5) first.push(`(${x},${y}) got ${got.toString(16)} want ${exp.toString(16)}`);
    }
  }
  return { bad, first };
}

function check(t: Test, target: ReturnType<typeof image>, want: Uint32Array, what: string, tolerance = 0): void {
  const d = diff(target, want, tolerance);
  t.equal(d.bad, 0, `${what}${tolerance ? ` (within ±${tolerance})` : ''}${d.bad ? `: ${d.first.join('; ')}` : ''}`);
}

/** How many pixels of two XRGB images have the same RGB bytes. */
function sameRgb(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (((a[i]! ^ b[i]!) & 0xffffff) === 0) same++;
  return same;
}

const full = (w: number, h: number): Rect => ({ x: 0, y: 0, width: w, height: h });
const bg = (r: number, g: number, b: number, a = 1): SolidColor => ({ kind: 'solid', r, g, b, a });

// ---- tests -------------------------------------------------------------------------------------
t.test('an ARGB layer over an XRGB target, part of it off the target (clipped), others wholly off it', async (t) => {
  const target = image(61, 37, XR24, () => SENTINEL);
  const win = image(40, 30, AR24, argbNoise(1));
  const dst = { x: 30, y: 15, width: 40, height: 30 }; // reaches past the right and bottom edges
  const layer: ComposeImageLayer = { kind: 'image', source: win.surface, dst };
  const clip = [full(61, 37)];
  const want = reference(target, clip, [exactLayer(win, full(40, 30), dst)], colorPixel(bg(0, 0, 0.5)));
  // layers wholly outside the target are fine: nothing of them shows
  const away: ComposeLayer[] = [
    { kind: 'solid', color: bg(1, 1, 1), dst: { x: -100, y: -100, width: 50, height: 50 } },
    { kind: 'image', source: win.surface, dst: { x: 61, y: 0, width: 40, height: 30 } },
  ];
  const r = await composeLayers({ target: target.surface, layers: [layer, ...away], clip, background: bg(0, 0, 0.5) });
  t.equal(r.bytes, 61 * 37 * 4, 'bytes: the clip');
  check(t, target, want, 'every pixel as the reference, the row padding untouched');
});

t.test('two overlapping ARGB layers over an XRGB fullscreen layer, into an ARGB target', async (t) => {
  const target = image(80, 60, AR24, () => SENTINEL);
  const screen = image(80, 60, XR24, xrgbNoise(2));
  const a = image(50, 40, AR24, argbNoise(3));
  const b = image(33, 27, AR24, argbNoise(4));
  const la = { x: 5, y: 7, width: 50, height: 40 }, lb = { x: 30, y: 25, width: 33, height: 27 };
  const clip = [full(80, 60)];
  const want = reference(target, clip, [exactLayer(screen, full(80, 60), full(80, 60)), exactLayer(a, full(50, 40), la), exactLayer(b, full(33, 27), lb)]);
  await composeLayers({
    target: target.surface,
    clip,
    layers: [
      { kind: 'image', source: screen.surface, dst: full(80, 60) },
      { kind: 'image', source: a.surface, dst: la },
      { kind: 'image', source: b.surface, dst: lb },
    ],
  });
  check(t, target, want, 'every pixel (alpha too) as the reference');
});

t.test('XBGR/ABGR sources and `opaque`', async (t) => {
  const target = image(40, 20, XR24, () => SENTINEL);
  const xb = image(20, 20, XB24, xrgbNoise(5));
  const ab = image(20, 20, AB24, argbNoise(6));
  const d1 = { x: 0, y: 0, width: 20, height: 20 }, d2 = { x: 20, y: 0, width: 20, height: 20 }, d3 = { x: 10, y: 5, width: 20, height: 20 };
  const clip = [full(40, 20)];
  const want = reference(target, clip, [exactLayer(xb, full(20, 20), d1), exactLayer(ab, full(20, 20), d2), exactLayer(ab, full(20, 20), d3, ROTATE_0, true)], colorPixel(bg(0.2, 0.2, 0.2)));
  await composeLayers({
    target: target.surface,
    clip,
    background: bg(0.2, 0.2, 0.2),
    layers: [
      { kind: 'image', source: xb.surface, dst: d1 },
      { kind: 'image', source: ab.surface, dst: d2 },
      { kind: 'image', source: ab.surface, dst: d3, opaque: true },
    ],
  });
  check(t, target, want, 'channel order swapped, X byte ignored, opaque blends as alpha 1');
});

t.test('RGB565 source (odd width: rows not 4-byte aligned, staged)', async (t) => {
  const w = 21, h = 9, stride = w * 2 + 2; // 44: but the sub-image at x = 1 starts 2 bytes into a word
  const px = new Uint16Array((stride / 2) * h);
  for (let i = 0; i < px.length; i++) px[i] = hash(i, 0, 7) & 0xffff;
  const src: CopySurface = { memory: px, format: RG16, stride, width: w, height: h };
  const target = image(w, h, XR24, () => SENTINEL);
  const crop = { x: 1, y: 1, width: 19, height: 7 };
  await composeLayers({ target: target.surface, clip: [full(w, h)], layers: [{ kind: 'image', source: src, src: crop, dst: { x: 1, y: 1, width: 19, height: 7 } }] });
  const expand = (p: number) => {
    const r = (p >> 11) & 31, g = (p >> 5) & 63, b = p & 31;
    return (0xff000000 | (((r << 3) | (r >> 2)) << 16) | (((g << 2) | (g >> 4)) << 8) | ((b << 3) | (b >> 2))) >>> 0;
  };
  const want = reference(target, [full(w, h)], [{ dst: { x: 1, y: 1, width: 19, height: 7 }, sample: (X, Y) => expand(px[(Y + 1) * (stride / 2) + X + 1]!) }]);
  check(t, target, want, 'RGB565 widened by bit replication');
});

t.test('RGB888 source (3 bytes a pixel: staged) and BGRA8888', async (t) => {
  const w = 13, h = 7, stride = w * 3 + 1;
  const bytes = new Uint8Array(stride * h);
  for (let i = 0; i < bytes.length; i++) bytes[i] = hash(i, 2, 70) & 0xff;
  const rgb: CopySurface = { memory: bytes, format: fourcc('RGB888'), stride, width: w, height: h };
  const bgra = image(w, h, fourcc('BGRA8888'), (x, y) => {
    const p = argbNoise(71)(x, y); // 0xAARRGGBB -> [31:0] B:G:R:A
    return ((ch(p, 0) << 24) | (ch(p, 8) << 16) | (ch(p, 16) << 8) | ch(p, 24)) >>> 0;
  });
  const target = image(w, h, AR24, () => SENTINEL);
  await composeLayers({
    target: target.surface,
    clip: [full(w, h)],
    layers: [
      { kind: 'image', source: rgb, src: { x: 1, y: 0, width: 12, height: 7 }, dst: { x: 1, y: 0, width: 12, height: 7 } },
      { kind: 'image', source: bgra.surface, dst: full(w, h) },
    ],
  });
  // RGB888: [23:0] R:G:B little-endian, bytes B, G, R
  const rgbAt = (X: number, Y: number) => {
    const o = Y * stride + (X + 1) * 3;
    return (0xff000000 | (bytes[o + 2]! << 16) | (bytes[o + 1]! << 8) | bytes[o]!) >>> 0;
  };
  const bgraAt = (X: number, Y: number) => argbNoise(71)(X, Y);
  const want = reference(target, [full(w, h)], [{ dst: { x: 1, y: 0, width: 12, height: 7 }, sample: rgbAt }, { dst: full(w, h), sample: bgraAt }]);
  check(t, target, want, 'both read in their own byte order');
});

t.test('a solid fill with alpha, and an opaque one', async (t) => {
  const target = image(30, 20, AR24, xrgbNoise(8));
  const half: SolidColor = { kind: 'solid', r: 0.4, g: 0.1, b: 0, a: 0.5 };
  const opaque: SolidColor = { kind: 'solid', r: 0, g: 1, b: 0.25, a: 1 };
  const d1 = { x: -5, y: 2, width: 20, height: 10 }, d2 = { x: 10, y: 8, width: 15, height: 6 };
  const clip = [full(30, 20)];
  const want = reference(target, clip, [solidLayer(opaque, d2), solidLayer(half, d1)], colorPixel(bg(0.1, 0.2, 0.3)));
  await composeLayers({ target: target.surface, clip, background: bg(0.1, 0.2, 0.3), layers: [{ kind: 'solid', color: opaque, dst: d2 }, { kind: 'solid', color: half, dst: d1 }] });
  check(t, target, want, 'fills blended as premultiplied colours');
});

t.test('clip rectangles: only their union is written, each pixel once, the rest untouched', async (t) => {
  const target = image(64, 48, XR24, xrgbNoise(9));
  const before = target.px.slice();
  const win = image(64, 48, AR24, argbNoise(10));
  // overlapping rectangles (a pixel composed twice would blend the layer twice), one past the edge
  const clip = [{ x: 4, y: 4, width: 20, height: 10 }, { x: 14, y: 8, width: 20, height: 20 }, { x: 50, y: 40, width: 30, height: 30 }];
  const r = await composeLayers({ target: target.surface, clip, layers: [{ kind: 'image', source: win.surface, dst: full(64, 48) }] });
  const want = reference({ ...target, px: before }, clip, [exactLayer(win, full(64, 48), full(64, 48))]);
  check(t, target, want, 'inside the union: the composition; outside: the old pixels');
  const area = 20 * 10 + 20 * 20 - 10 * 6 + 14 * 8;
  t.equal(r.bytes, area * 4, 'bytes: the union, clipped to the target');
  const none = await composeLayers({ target: target.surface, clip: [], layers: [{ kind: 'image', source: win.surface, dst: full(64, 48) }] });
  t.equal(none.bytes, 0, 'an empty clip writes nothing');
});

t.test('an unscaled opaque copy is exact, at any integer placement', async (t) => {
  const target = image(50, 40, XR24, () => SENTINEL);
  const src = image(30, 20, XR24, xrgbNoise(11));
  const crop = { x: 3, y: 2, width: 24, height: 15 };
  const dst = { x: 17, y: 9, width: 24, height: 15 };
  await composeLayers({ target: target.surface, clip: [full(50, 40)], layers: [{ kind: 'image', source: src.surface, src: crop, dst }] });
  let same = 0;
  for (let y = 0; y < 15; y++)
    for (let x = 0; x < 24; x++) if (((target.px[(9 + y) * (target.stride / 4) + 17 + x]! ^ src.px[(2 + y) * (src.stride / 4) + 3 + x]!) & 0xffffff) === 0) same++;
  t.equal(same, 24 * 15, 'every pixel is its source pixel');
});

t.test('320x240 scaled to 640x480, bilinear (pixman convention, ±1)', async (t) => {
  const target = image(640, 480, XR24, () => SENTINEL, 0);
  const src = image(320, 240, XR24, xrgbNoise(12), 0);
  const dst = full(640, 480);
  await composeLayers({ target: target.surface, clip: [dst], layers: [{ kind: 'image', source: src.surface, dst }] });
  check(t, target, reference(target, [dst], [bilinearLayer(src, full(320, 240), dst)]), 'noise scaled 2x', 1);
  // an ARGB window scaled down 3:2 over a gradient, partly clipped
  const t2 = image(200, 150, AR24, () => SENTINEL);
  const under = image(200, 150, XR24, gradient);
  const win = image(90, 60, AR24, argbNoise(13));
  const d2 = { x: 20, y: 30, width: 60, height: 40 };
  const clip = [{ x: 0, y: 0, width: 200, height: 60 }];
  await composeLayers({ target: t2.surface, clip, layers: [{ kind: 'image', source: under.surface, dst: full(200, 150) }, { kind: 'image', source: win.surface, dst: d2 }] });
  check(t, t2, reference(t2, clip, [exactLayer(under, full(200, 150), full(200, 150)), bilinearLayer(win, full(90, 60), d2)]), 'ARGB 90x60 -> 60x40 over an XRGB layer', 1);
});

t.test('a fractional src crop samples between pixels (bilinear, ±1)', async (t) => {
  const target = image(70, 50, XR24, () => SENTINEL);
  const src = image(80, 60, AR24, argbNoise(14));
  const crop = { x: 10.5, y: 5.25, width: 50, height: 40 };
  const dst = { x: 7, y: 3, width: 50, height: 40 };
  await composeLayers({ target: target.surface, clip: [full(70, 50)], layers: [{ kind: 'image', source: src.surface, src: crop, dst }] });
  check(t, target, reference(target, [full(70, 50)], [bilinearLayer(src, crop, dst)]), 'half and quarter pixel offsets', 1);
  const t2 = image(40, 40, XR24, () => SENTINEL);
  const crop2 = { x: 2.5, y: 3.5, width: 20.5, height: 15.75 };
  const d2 = { x: 0, y: 0, width: 33, height: 29 };
  await composeLayers({ target: t2.surface, clip: [full(40, 40)], layers: [{ kind: 'image', source: src.surface, src: crop2, dst: d2 }] });
  check(t, t2, reference(t2, [full(40, 40)], [bilinearLayer(src, crop2, d2)]), 'fractional crop, scaled to odd sizes', 1);
});

for (const rot of [ROTATE_0, ROTATE_90, ROTATE_180, ROTATE_270]) {
  for (const refl of [0, REFLECT_X, REFLECT_Y, REFLECT_X | REFLECT_Y]) {
    const rotation = rot | refl;
    t.test(`rotation 0x${rotation.toString(16)}: exact, and as copyTransformed draws it`, async (t) => {
      const src = image(37, 23, AR24, argbNoise(20 + rotation));
      const crop = { x: 3, y: 2, width: 30, height: 17 };
      const swap = (rot & (ROTATE_90 | ROTATE_270)) !== 0;
      const dst = { x: 4, y: 5, width: swap ? 17 : 30, height: swap ? 30 : 17 };
      const target = image(45, 40, XR24, () => SENTINEL);
      await composeLayers({ target: target.surface, clip: [full(45, 40)], background: bg(0.3, 0.6, 0.9), layers: [{ kind: 'image', source: src.surface, src: crop, dst, rotation }] });
      check(t, target, reference(target, [full(45, 40)], [exactLayer(src, crop, dst, rotation)], colorPixel(bg(0.3, 0.6, 0.9))), 'blended, exact');
      // opaque: the composed pixels are copyTransformed's (the presenter's copy of a rotated plane)
      const a = image(45, 40, XR24, () => 0);
      const b = image(45, 40, XR24, () => 0);
      await composeLayers({ target: a.surface, clip: [dst], layers: [{ kind: 'image', source: src.surface, src: crop, dst, rotation, opaque: true }] });
      const deg = ({ [ROTATE_0]: 0, [ROTATE_90]: 90, [ROTATE_180]: 180, [ROTATE_270]: 270 } as const)[rot]!;
      await copyTransformed(src.surface, b.surface, { srcRect: crop, dstRect: dst, rotation: deg, reflectX: (refl & REFLECT_X) !== 0, reflectY: (refl & REFLECT_Y) !== 0 });
      t.equal(sameRgb(a.px, b.px), a.px.length, 'the same pixels as copyTransformed');
    });
  }
}

t.test('rotated and scaled: 90 degrees, 2x, bilinear (±1)', async (t) => {
  const src = image(24, 16, XR24, xrgbNoise(30));
  const target = image(40, 56, XR24, () => SENTINEL);
  const dst = { x: 4, y: 4, width: 32, height: 48 };
  await composeLayers({ target: target.surface, clip: [full(40, 56)], layers: [{ kind: 'image', source: src.surface, dst, rotation: ROTATE_90 }] });
  check(t, target, reference(target, [full(40, 56)], [bilinearLayer(src, full(24, 16), dst, ROTATE_90)]), 'the rotated image, scaled', 1);
});

t.test('an NV12 source is composed through the copy conversion (BT.601 limited)', async (t) => {
  const w = 32, h = 16, stride = 32, cOff = stride * h;
  const mem = new Uint8Array(cOff + stride * (h / 2));
  for (let i = 0; i < mem.length; i++) mem[i] = 16 + (hash(i, 1, 31) % 220);
  const nv12: CopySurface = { memory: mem, format: NV12, stride, width: w, height: h, chroma: { offset: cOff, stride } };
  const a = image(w, h, XR24, () => 0, 0);
  const b = image(w, h, XR24, () => 0, 0);
  await composeLayers({ target: a.surface, clip: [full(w, h)], layers: [{ kind: 'image', source: nv12, src: { x: 2, y: 2, width: 28, height: 12 }, dst: { x: 2, y: 2, width: 28, height: 12 } }] });
  await copyRects(nv12, b.surface, [{ x: 2, y: 2, width: 28, height: 12 }]);
  t.equal(sameRgb(a.px, b.px), a.px.length, "the composed pixels are copyRects' conversion");
});

t.test('typed errors for bad jobs, the target untouched', async (t) => {
  const target = image(20, 20, XR24, () => SENTINEL);
  const src = image(10, 10, AR24, argbNoise(40));
  const ok = { kind: 'image' as const, source: src.surface, dst: full(10, 10) };
  const job = (layers: ComposeLayer[], more: object = {}) => ({ target: target.surface, clip: [full(20, 20)], layers, ...more });
  const cases: [string, unknown, RegExp][] = [
    ['an empty dst', job([{ ...ok, dst: { x: 0, y: 0, width: 0, height: 5 } }]), /layers\[0\]\.dst is empty/],
    ['a fractional dst', job([{ ...ok, dst: { x: 0.5, y: 0, width: 5, height: 5 } }]), /layers\[0\]\.dst\.x must be an integer/],
    ['an empty src', job([{ ...ok, src: { x: 0, y: 0, width: 5, height: 0 } }]), /layers\[0\]\.src is empty/],
    ['a src outside the source', job([{ ...ok, src: { x: 5, y: 5, width: 6, height: 5 } }]), /layers\[0\]\.src \(6x5\+5\+5\) is outside the 10x10 source/],
    ['a negative src', job([{ ...ok, src: { x: -0.5, y: 0, width: 5, height: 5 } }]), /is outside the 10x10 source/],
    ['an unsupported source format', job([{ ...ok, source: { ...src.surface, format: fourcc('R8') } }]), /source format 0x[0-9a-f]+ cannot be composed/],
    ['two rotations', job([{ ...ok, rotation: ROTATE_90 | ROTATE_180 }]), /exactly one DRM_MODE_ROTATE_\* bit/],
    ['no rotation bit', job([{ ...ok, rotation: REFLECT_X }]), /exactly one DRM_MODE_ROTATE_\* bit/],
    ['a colour above its alpha', job([{ kind: 'solid', color: { kind: 'solid', r: 0.6, g: 0, b: 0, a: 0.5 }, dst: full(5, 5) }]), /no channel above its alpha/],
    ['a colour out of range', job([], { background: bg(0, 0, 2) }), /background\.b must lie in \[0, 1\]/],
    ['an empty clip rectangle', job([ok], { clip: [{ x: 0, y: 0, width: 0, height: 1 }] }), /clip\[0\] is empty/],
    ['an RGB565 target', { ...job([ok]), target: { ...target.surface, format: RG16 } }, /target's format must be XRGB8888 or ARGB8888/],
    ['a target too small for its memory', { ...job([ok]), target: { ...target.surface, height: 40 } }, /do not fit/],
    ['an unknown layer kind', job([{ kind: 'video' } as unknown as ComposeLayer]), /kind must be 'image' or 'solid'/],
  ];
  for (const [what, j, message] of cases) {
    const err = await composeLayers(j as Parameters<typeof composeLayers>[0]).then(() => null, (e: unknown) => e);
    t.ok(err instanceof RangeError || err instanceof TypeError, `${what}: ${String(err)}`);
    t.match(String((err as Error)?.message), message, `${what}: the message says what is wrong`);
  }
  t.ok(target.px.every((p) => p === SENTINEL), 'nothing was written');
  // the native checks stand on their own (a caller bypassing compose.ts)
  t.throws(() => native.composeLayers({ target: { data: target.px, format: XR24, stride: 80, width: 20, height: 20 }, clip: [], layers: [{ source: { data: src.px, format: AR24, stride: src.stride, width: 10, height: 10 }, src: { x: 0, y: 0, width: 11, height: 1 }, dst: full(1, 1) }] }), RangeError, 'native: src outside the source');
  t.throws(() => native.composeLayers({ target: { data: target.px, format: XR24, stride: 80, width: 20, height: 20 }, clip: [], layers: [{ color: [200, 0, 0, 100], dst: full(1, 1) }] }), RangeError, 'native: a colour above its alpha');
});

t.test('a guarded source (a pool that may shrink): exact while intact, a typed rejection once truncated', async (t) => {
  const w = 64, h = 64, stride = w * 4, size = stride * h;
  const memfd = plainMemfd('compose-guarded', size);
  t.teardown(() => memfd.close());
  const map = Mapping.map(memfd.fd, 0, size, true, 'guarded pool');
  t.teardown(() => map.close());
  const px = new Uint32Array(map.buffer);
  const fill = argbNoise(50);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = fill(x, y);
  const pool = { surface: { memory: map, format: AR24, stride, width: w, height: h } as CopySurface, px, stride };
  const layer: ComposeImageLayer = { kind: 'image', source: pool.surface, dst: { x: 8, y: 8, width: 64, height: 64 }, guarded: true };
  const target = image(80, 80, XR24, () => SENTINEL);
  await composeLayers({ target: target.surface, clip: [full(80, 80)], layers: [{ kind: 'solid', color: bg(0, 0.5, 0), dst: full(80, 80) }, layer] });
  check(t, target, reference(target, [full(80, 80)], [solidLayer(bg(0, 0.5, 0), full(80, 80)), exactLayer(pool, full(w, h), layer.dst)]), 'intact: as the reference');

  native.ftruncateFd(memfd.fd, stride * 16); // the client shrinks its pool: rows 16.. are gone
  const t2 = image(80, 80, XR24, () => SENTINEL);
  const err = await composeLayers({ target: t2.surface, clip: [full(80, 80)], layers: [{ kind: 'solid', color: bg(0, 0.5, 0), dst: full(80, 80) }, layer] }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof SystemError, `a SystemError (${String(err)})`);
  t.equal((err as SystemError).code, 'EFAULT', 'code EFAULT');
  t.equal((err as SystemError).syscall, 'SIGBUS', 'syscall SIGBUS');
  t.equal((err as { layer?: number }).layer, 1, 'names the layer');
  t.ok(t2.px.every((p) => p === SENTINEL), 'the target is untouched (sources are staged before anything is written)');
  // the process lives on and composes again
  const t3 = image(16, 16, XR24, () => SENTINEL);
  await composeLayers({ target: t3.surface, clip: [full(16, 16)], layers: [{ ...layer, src: full(16, 16), dst: full(16, 16) }] });
  check(t, t3, reference(t3, [full(16, 16)], [exactLayer(pool, full(16, 16), full(16, 16))]), 'the rows still in the file compose');
});

t.test('a guarded source is staged only where the clip reads it: the same pixels as unguarded, and rows past the clip are never read', async (t) => {
  const w = 96, h = 72, stride = w * 4, size = stride * h;
  const memfd = plainMemfd('compose-guarded-part', size);
  t.teardown(() => memfd.close());
  const map = Mapping.map(memfd.fd, 0, size, true, 'guarded pool');
  t.teardown(() => map.close());
  const px = new Uint32Array(map.buffer);
  const fill = argbNoise(51);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = fill(x, y);
  const surface = { memory: map, format: AR24, stride, width: w, height: h } as CopySurface;
  const under: ComposeLayer = { kind: 'solid', color: bg(0.1, 0.4, 0.2), dst: full(140, 120) };
  const cases: Array<{ name: string; layer: ComposeImageLayer; clip: Rect[] }> = [
    { name: 'unscaled, two small clip rectangles', layer: { kind: 'image', source: surface, dst: { x: 10, y: 7, width: w, height: h } }, clip: [{ x: 30, y: 20, width: 17, height: 9 }, { x: 70, y: 50, width: 40, height: 40 }] },
    { name: 'scaled down, fractional crop (bilinear)', layer: { kind: 'image', source: surface, src: { x: 3.5, y: 2.25, width: 80, height: 60 }, dst: { x: 5, y: 5, width: 53, height: 41 } }, clip: [{ x: 20, y: 12, width: 11, height: 13 }] },
    { name: 'rotated 90 and scaled up', layer: { kind: 'image', source: surface, src: { x: 8, y: 4, width: 40, height: 30 }, dst: { x: 2, y: 3, width: 60, height: 80 }, rotation: ROTATE_90 }, clip: [{ x: 40, y: 60, width: 9, height: 7 }, { x: 3, y: 3, width: 5, height: 5 }] },
    { name: 'rotated 270, reflected, exact', layer: { kind: 'image', source: surface, src: { x: 1, y: 2, width: 50, height: 40 }, dst: { x: 9, y: 4, width: 40, height: 50 }, rotation: ROTATE_270 | REFLECT_X }, clip: [{ x: 20, y: 30, width: 13, height: 6 }] },
    { name: 'the clip misses the layer', layer: { kind: 'image', source: surface, dst: { x: 0, y: 0, width: w, height: h } }, clip: [{ x: 100, y: 80, width: 30, height: 30 }] },
  ];
  for (const c of cases) {
    const a = image(140, 120, XR24, () => SENTINEL);
    const b = image(140, 120, XR24, () => SENTINEL);
    await composeLayers({ target: a.surface, clip: c.clip, layers: [under, c.layer] });
    await composeLayers({ target: b.surface, clip: c.clip, layers: [under, { ...c.layer, guarded: true }] });
    t.same(Array.from(b.px), Array.from(a.px), `${c.name}: guarded (staged) as unguarded`);
    t.ok(a.px.some((p) => p !== SENTINEL) && a.px.some((p) => p === SENTINEL), `${c.name}: the clip is written, the rest not`);
  }
  // the client shrinks its pool to 20 rows: a clip that reads rows 0..15 only still composes
  native.ftruncateFd(memfd.fd, stride * 20);
  const layer: ComposeImageLayer = { kind: 'image', source: surface, dst: { x: 0, y: 0, width: w, height: h }, guarded: true };
  const t1 = image(140, 120, XR24, () => SENTINEL);
  await composeLayers({ target: t1.surface, clip: [{ x: 4, y: 2, width: 50, height: 14 }], layers: [under, layer] });
  check(t, t1, reference(t1, [{ x: 4, y: 2, width: 50, height: 14 }], [solidLayer(bg(0.1, 0.4, 0.2), full(140, 120)), exactLayer({ surface, px, stride }, full(w, 20), full(w, 20))]), 'rows inside the file compose');
  const err = await composeLayers({ target: t1.surface, clip: [{ x: 4, y: 30, width: 50, height: 4 }], layers: [under, layer] }).then(() => null, (e: unknown) => e);
  t.equal((err as SystemError).code, 'EFAULT', 'a clip reading rows past the file: EFAULT');
});

t.test('the job keeps its memory alive though no JS holds it (GC during the job)', async (t) => {
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const W = 1920, H = 1080;
  const start = () => {
    const screen = new Uint32Array(W * H).fill(0xff102030);
    const win = new Uint32Array((W / 2) * (H / 2)).fill(0x80402010);
    const target = new Uint32Array(W * H);
    const layers: ComposeLayer[] = [
      { kind: 'image', source: { memory: screen, format: XR24, stride: W * 4, width: W, height: H }, dst: full(W, H) },
      { kind: 'image', source: { memory: win, format: AR24, stride: W * 2, width: W / 2, height: H / 2 }, dst: full(W, H) }, // scaled 2x
    ];
    const done = composeLayers({ target: { memory: target, format: XR24, stride: W * 4, width: W, height: H }, clip: [full(W, H)], layers });
    return { done, refs: [new WeakRef(screen), new WeakRef(win), new WeakRef(target)] };
  };
  const { done, refs } = start();
  let settled = false;
  let collectedWhilePending = false;
  let turns = 0;
  void done.finally(() => (settled = true));
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    gc();
    turns++;
    if (!settled && refs.some((r) => r.deref() === undefined)) collectedWhilePending = true;
  }
  t.equal((await done).bytes, W * H * 4, 'the job completed');
  t.ok(turns > 0, `GC ran ${turns} times while the job was pending`);
  t.notOk(collectedWhilePending, 'no buffer was collected while the job was pending');
});

t.test('an opaque layer covering the clip hides what lies beneath (composed from it up, with SRC)', async (t) => {
  const target = image(96, 300, AR24, () => SENTINEL); // 300 rows: several bands
  const under = image(96, 300, AR24, argbNoise(60));
  const cover = image(48, 150, XR24, xrgbNoise(61)); // scaled 2x onto the whole target
  const top = image(40, 40, AR24, argbNoise(62));
  const half = image(96, 150, XR24, xrgbNoise(63)); // covers the upper half only
  const veil = image(96, 300, AR24, (x, y) => (argbNoise(64)(x, y) >>> 1) & 0x7f7f7f7f); // halved: still premultiplied, at most half opaque
  const clip = [full(96, 300)];
  const fill: SolidColor = { kind: 'solid', r: 0.2, g: 0.2, b: 0.2, a: 1 };
  const layers: ComposeLayer[] = [
    { kind: 'image', source: under.surface, dst: full(96, 300) },
    { kind: 'image', source: cover.surface, dst: full(96, 300) },
    { kind: 'solid', color: fill, dst: { x: 0, y: 200, width: 96, height: 100 } },
    { kind: 'image', source: half.surface, dst: full(96, 150) },
    { kind: 'image', source: top.surface, dst: { x: 30, y: 130, width: 40, height: 40 } },
    { kind: 'image', source: veil.surface, dst: full(96, 300) }, // covers everything, but translucent: hides nothing
  ];
  await composeLayers({ target: target.surface, clip, layers, background: bg(0, 0, 0, 0) });
  const want = reference(
    target,
    clip,
    [
      exactLayer(under, full(96, 300), full(96, 300)),
      bilinearLayer(cover, full(48, 150), full(96, 300)),
      solidLayer(fill, { x: 0, y: 200, width: 96, height: 100 }),
      exactLayer(half, full(96, 150), full(96, 150)),
      exactLayer(top, full(40, 40), { x: 30, y: 130, width: 40, height: 40 }),
      exactLayer(veil, full(96, 300), full(96, 300)),
    ],
    0,
  );
  check(t, target, want, 'the stack as the reference blends it (the opaque layers replace what is beneath)', 1);
});

t.test('over the default black, an XRGB target (first layer written with SRC) gets the RGB an ARGB target (every layer blended) gets', async (t) => {
  const w = 48, h = 36;
  const under = image(40, 30, AR24, argbNoise(81));
  const over = image(20, 16, AR24, argbNoise(82));
  const small = image(10, 8, AR24, argbNoise(83));
  const cases: Array<{ what: string; layers: ComposeLayer[] }> = [
    { what: 'exact', layers: [{ kind: 'image', source: under.surface, dst: { x: 3, y: 2, width: 40, height: 30 } }, { kind: 'image', source: over.surface, dst: { x: 20, y: 10, width: 20, height: 16 } }] },
    { what: 'scaled (bilinear), fractional src', layers: [{ kind: 'image', source: small.surface, src: { x: 0.5, y: 0.25, width: 9, height: 7.5 }, dst: { x: 0, y: 0, width: 41, height: 33 } }, { kind: 'image', source: over.surface, dst: { x: 30, y: 20, width: 20, height: 16 } }] },
    { what: 'rotated 90 and reflected', layers: [{ kind: 'image', source: over.surface, dst: { x: 5, y: 5, width: 16, height: 20 }, rotation: 2 | 16 }] },
    { what: 'a solid fill first', layers: [{ kind: 'solid', color: { kind: 'solid', r: 0.2, g: 0.1, b: 0.3, a: 0.5 }, dst: { x: 2, y: 2, width: 30, height: 20 } }, { kind: 'image', source: over.surface, dst: { x: 10, y: 8, width: 20, height: 16 } }] },
  ];
  for (const c of cases) {
    const clip = [{ x: 1, y: 1, width: 30, height: 20 }, { x: 25, y: 18, width: 23, height: 18 }];
    const x = image(w, h, XR24, () => SENTINEL);
    const a = image(w, h, AR24, () => SENTINEL);
    await composeLayers({ target: x.surface, clip, layers: c.layers });
    await composeLayers({ target: a.surface, clip, layers: c.layers });
    let bad = 0;
    for (let i = 0; i < x.px.length; i++) if (((x.px[i]! ^ a.px[i]!) & 0xffffff) !== 0) bad++;
    t.equal(bad, 0, `${c.what}: the same RGB in every pixel (inside the clip and, untouched, outside it)`);
  }
});
