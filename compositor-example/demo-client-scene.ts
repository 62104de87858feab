/**
 * The demo client's picture: frame N is a pure function of N and the size, so a test (or the
 * demo) can read a writeback capture, find which frame is on screen and check every pixel.
 *
 * - a static gradient (red grows to the right, green downwards, blue constant);
 * - an amber square that bounces across the surface (its position is a triangle wave of N);
 * - the frame number N as 16 cells in the top-left corner (white = bit set, black = clear,
 *   most significant bit first), so a capture says which frame it shows.
 *
 * Pixels are XRGB8888/ARGB8888 values (0xAARRGGBB, alpha opaque), little-endian in memory.
 */
import type { Rect } from 'primebuf';

/** Bits of the frame counter drawn in the corner. */
export const COUNTER_BITS = 16;
const SQUARE = 0xffffc020;
const BIT_SET = 0xffffffff;
const BIT_CLEAR = 0xff000000;

/** The gradient under everything. */
export function backgroundPixel(w: number, h: number, x: number, y: number): number {
  const r = w > 1 ? Math.floor((x * 255) / (w - 1)) : 0;
  const g = h > 1 ? Math.floor((y * 255) / (h - 1)) : 0;
  return (0xff000000 | (r << 16) | (g << 8) | 0x60) >>> 0;
}

/** Side of one counter cell (0: the surface is too small for a counter). */
export function counterCell(w: number, h: number): number {
  return Math.max(0, Math.min(8, Math.floor(w / COUNTER_BITS), h));
}

/** The counter's rectangle (empty when the surface is too small for one). */
export function counterRect(w: number, h: number): Rect {
  const c = counterCell(w, h);
  return { x: 0, y: 0, width: c * COUNTER_BITS, height: c };
}

function triangle(t: number, span: number): number {
  if (span <= 0) return 0;
  const p = t % (2 * span);
  return p < span ? p : 2 * span - p;
}

/** The square's rectangle in frame `n`. */
export function squareRect(n: number, w: number, h: number): Rect {
  const side = Math.max(1, Math.floor(Math.min(w, h) / 4));
  // below the counter, so the two never overlap
  const top = Math.min(counterCell(w, h), Math.max(0, h - side));
  return { x: triangle(n * 7, w - side), y: top + triangle(n * 5, h - side - top), width: side, height: side };
}

function inside(r: Rect, x: number, y: number): boolean {
  return x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;
}

/** Frame `n`'s pixel at (x, y) of a w x h surface. */
export function scenePixel(n: number, w: number, h: number, x: number, y: number): number {
  const c = counterCell(w, h);
  if (c > 0 && y < c && x < c * COUNTER_BITS) {
    const bit = COUNTER_BITS - 1 - Math.floor(x / c);
    return (n >>> bit) & 1 ? BIT_SET : BIT_CLEAR;
  }
  if (inside(squareRect(n, w, h), x, y)) return SQUARE;
  return backgroundPixel(w, h, x, y);
}

/**
 * Paints frame `n` into `rects` of a mapped buffer (XRGB8888, `stride` bytes per row; `pixels`
 * 4-byte aligned). Only those rectangles are written: the rest keeps what the buffer held.
 */
export function paintScene(pixels: Uint8Array, stride: number, n: number, w: number, h: number, rects: readonly Rect[]): void {
  if (pixels.byteOffset % 4 !== 0 || stride % 4 !== 0) throw new RangeError('paintScene: pixels and stride must be 4-byte aligned');
  const words = new Uint32Array(pixels.buffer, pixels.byteOffset, Math.floor(pixels.byteLength / 4));
  const pitch = stride / 4;
  const sq = squareRect(n, w, h);
  const counter = counterRect(w, h);
  for (const r of rects) {
    const x0 = Math.max(0, r.x);
    const x1 = Math.min(w, r.x + r.width);
    for (let y = Math.max(0, r.y), y1 = Math.min(h, r.y + r.height); y < y1; y++) {
      const row = y * pitch;
      // the gradient (the same formula as backgroundPixel, inlined), then the square's and the counter's spans
      const gb = (0xff000000 | ((h > 1 ? Math.floor((y * 255) / (h - 1)) : 0) << 8) | 0x60) >>> 0;
      for (let x = x0; x < x1; x++) words[row + x] = (gb | ((w > 1 ? Math.floor((x * 255) / (w - 1)) : 0) << 16)) >>> 0;
      if (y >= sq.y && y < sq.y + sq.height) words.fill(SQUARE, row + Math.max(x0, sq.x), row + Math.max(x0, Math.min(x1, sq.x + sq.width)));
      if (y < counter.height) for (let x = x0; x < Math.min(x1, counter.width); x++) words[row + x] = scenePixel(n, w, h, x, y);
    }
  }
}

/**
 * Which frame a picture shows, read from its counter; null when the corner holds no counter.
 * `pixel(x, y)` returns the picture's pixel (0xXXRRGGBB; the top byte is ignored).
 */
export function frameShown(w: number, h: number, pixel: (x: number, y: number) => number): number | null {
  const c = counterCell(w, h);
  if (c === 0) return null;
  let n = 0;
  for (let i = 0; i < COUNTER_BITS; i++) {
    const v = pixel(i * c + (c >> 1), c >> 1) & 0xffffff;
    if (v === (BIT_SET & 0xffffff)) n = (n << 1) | 1;
    else if (v === (BIT_CLEAR & 0xffffff)) n <<= 1;
    else return null;
  }
  return n;
}

/** Pixels of a w x h picture (0xXXRRGGBB via `pixel`) that differ from frame `n`, counted; the first few listed. */
export function sceneMismatches(n: number, w: number, h: number, pixel: (x: number, y: number) => number): { count: number; first: string[] } {
  let count = 0;
  const first: string[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const got = pixel(x, y) & 0xffffff;
      const want = scenePixel(n, w, h, x, y) & 0xffffff;
      if (got === want) continue;
      count++;
      if (first.length < 5) first.push(`(${x},${y}) 0x${got.toString(16)} != 0x${want.toString(16)}`);
    }
  }
  return { count, first };
}

/** What changes from frame `a` to frame `b`: the counter and the square's two places. */
export function sceneDamage(a: number, b: number, w: number, h: number): Rect[] {
  return [counterRect(w, h), squareRect(a, w, h), squareRect(b, w, h)].filter((r) => r.width > 0 && r.height > 0);
}

/**
 * The demo client's overlay (`--overlay`): a wl_subsurface over its toplevel holding one
 * semi-transparent ARGB8888 colour, premultiplied as Wayland's ARGB8888 is: alpha 0x80 over red
 * 0x20, green 0x00, blue 0x60 (a violet that lets half of the picture beneath through). A
 * compositor shows, inside the overlay's rectangle, `OVERLAY_PIXEL` blended over the frame
 * beneath (blendOver); everywhere else the frame itself.
 */
export const OVERLAY_PIXEL = 0x80200060;

/** The overlay's rectangle on a w x h toplevel: a third of the shorter side, centred (the counter stays clear). */
export function overlayRect(w: number, h: number): Rect {
  const side = Math.max(1, Math.floor(Math.min(w, h) / 3));
  return { x: Math.floor((w - side) / 2), y: Math.max(counterCell(w, h), Math.floor((h - side) / 2)), width: side, height: side };
}

/**
 * `src` (premultiplied ARGB, 0xAARRGGBB) over an opaque `dst` (0xXXRRGGBB): per channel
 * s + d x (255 - a) / 255, rounded to the nearest; the result opaque (0xffRRGGBB).
 */
export function blendOver(src: number, dst: number): number {
  const a = src >>> 24;
  let out = 0xff000000;
  for (const shift of [16, 8, 0]) {
    const s = (src >>> shift) & 0xff;
    const d = (dst >>> shift) & 0xff;
    out |= Math.min(255, s + Math.round((d * (255 - a)) / 255)) << shift;
  }
  return out >>> 0;
}

/**
 * Pixels of a w x h picture that differ from frame `n` with the overlay blended over it by more
 * than `tolerance` in a channel (compositors round the blend differently by one), counted; the
 * first few listed.
 */
export function overlayMismatches(n: number, w: number, h: number, pixel: (x: number, y: number) => number, tolerance = 1): { count: number; first: string[] } {
  const o = overlayRect(w, h);
  let count = 0;
  const first: string[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const got = pixel(x, y) & 0xffffff;
      const under = scenePixel(n, w, h, x, y);
      const want = (x >= o.x && y >= o.y && x < o.x + o.width && y < o.y + o.height ? blendOver(OVERLAY_PIXEL, under) : under) & 0xffffff;
      if (got === want) continue;
      const off = [16, 8, 0].some((s) => Math.abs(((got >>> s) & 0xff) - ((want >>> s) & 0xff)) > tolerance);
      if (!off) continue;
      count++;
      if (first.length < 5) first.push(`(${x},${y}) 0x${got.toString(16)} != 0x${want.toString(16)}`);
    }
  }
  return { count, first };
}
