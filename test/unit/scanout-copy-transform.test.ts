// Host tests of the transformed copy (native/copy.cc copyTransformed through
// src/scanout/copy.ts copyTransformed): every rotation with and without each reflection, upscale
// and downscale to odd sizes, every pixel size and two conversions, computed against an
// independent reference in this file (the reference builds the rotated image by repeated
// quarter-turns of a pixel array, the way the KMS documentation describes it: reflect, rotate
// counter-clockwise, scale), exact to the byte; bytes outside the destination rectangle untouched;
// clipped destinations reaching past every edge; bad requests rejected with typed errors before
// anything is written.
import t, { type Test } from 'tap';
import { fourcc } from '../../src/formats/index.js';
import { copyFormats, copyTransformed, newCopyStats, type CopySurface } from '../../src/scanout/copy.js';

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');
const AR24 = fourcc('ARGB8888');
const RG16 = fourcc('RGB565');
const SENTINEL = 0xa5;
type Rotation = 0 | 90 | 180 | 270;

/** Deterministic pixel bytes (a multiplicative hash of the index), so a shifted or mis-strided pixel cannot match. */
function noise(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + seed, 0x9e3779b1) >>> 13) & 0xff);
}

// ---- the reference ------------------------------------------------------------------------------
/** An image as rows of pixels, each pixel its bytes. */
type Img = number[][][];

function crop(src: Uint8Array, stride: number, cpp: number, r: { x: number; y: number; width: number; height: number }): Img {
  const rows: Img = [];
  for (let y = 0; y < r.height; y++) {
    const row: number[][] = [];
    for (let x = 0; x < r.width; x++) {
      const p = (r.y + y) * stride + (r.x + x) * cpp;
      row.push([...src.subarray(p, p + cpp)]);
    }
    rows.push(row);
  }
  return rows;
}

/** One quarter-turn counter-clockwise: the top-right pixel becomes the top-left one. */
function quarterTurn(a: Img): Img {
  const h = a.length;
  const w = a[0]!.length;
  const b: Img = Array.from({ length: w }, () => new Array<number[]>(h));
  // the column x of a, read top to bottom, becomes row w-1-x of b, read left to right
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b[w - 1 - x]![y] = a[y]![x]!;
  return b;
}

function reference(a: Img, rotation: Rotation, reflectX: boolean, reflectY: boolean, dw: number, dh: number): Img {
  let img = a.map((row) => (reflectX ? [...row].reverse() : [...row]));
  if (reflectY) img.reverse();
  for (let k = 0; k < rotation / 90; k++) img = quarterTurn(img);
  const rh = img.length;
  const rw = img[0]!.length;
  // nearest neighbour: the pixel under the destination pixel's centre
  return Array.from({ length: dh }, (_, y) => Array.from({ length: dw }, (_, x) => img[Math.floor(((y + 0.5) * rh) / dh)]![Math.floor(((x + 0.5) * rw) / dw)]!));
}

/** The conversions tested: XBGR8888 -> XRGB8888 (swap R and B, X = 0xff) and ARGB8888 -> RGB565 (truncate). */
function convert(sf: number, df: number, px: number[]): number[] {
  if (sf === df) return px;
  if (sf === XB24 && df === XR24) return [px[2]!, px[1]!, px[0]!, 0xff];
  if (sf === AR24 && df === RG16) {
    const [b, g, r] = px as [number, number, number];
    const v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3);
    return [v & 0xff, v >> 8];
  }
  throw new Error('no reference for this conversion');
}

interface Case {
  sf: number;
  df: number;
  sw: number;
  sh: number;
  srcRect: { x: number; y: number; width: number; height: number };
  dstRect: { x: number; y: number; width: number; height: number };
  rotation: Rotation;
  reflectX: boolean;
  reflectY: boolean;
  /** a destination of this size, written only inside `clip` (dstRect may reach past it) */
  clip?: { x: number; y: number; width: number; height: number };
  size?: { width: number; height: number };
}

/** Runs one transformed copy into a sentinel-filled destination and compares every byte with the reference. */
async function check(t: Test, c: Case, what: string): Promise<void> {
  const sc = copyFormats().get(c.sf)!;
  const dc = copyFormats().get(c.df)!;
  const sStride = c.sw * sc + 3;
  const src = noise(sStride * c.sh + 1, c.sw * 977 + c.sh * 31 + sc).subarray(1); // unaligned source
  const dw = c.size?.width ?? c.dstRect.x + c.dstRect.width + 2;
  const dh = c.size?.height ?? c.dstRect.y + c.dstRect.height + 1;
  const k = c.clip ?? c.dstRect;
  const x0 = Math.max(k.x, c.dstRect.x);
  const y0 = Math.max(k.y, c.dstRect.y);
  const x1 = Math.min(k.x + k.width, c.dstRect.x + c.dstRect.width);
  const y1 = Math.min(k.y + k.height, c.dstRect.y + c.dstRect.height);
  const dStride = dw * dc + 5;
  const backing = new Uint8Array(1 + dStride * dh).fill(SENTINEL);
  const dst = backing.subarray(1);
  const s: CopySurface = { memory: src, format: c.sf, width: c.sw, height: c.sh, stride: sStride };
  const d: CopySurface = { memory: dst, format: c.df, width: dw, height: dh, stride: dStride };
  const stats = newCopyStats();
  const bytes = await copyTransformed(s, d, c, { stats });
  const ref = reference(crop(src, sStride, sc, c.srcRect), c.rotation, c.reflectX, c.reflectY, c.dstRect.width, c.dstRect.height);
  let bad = '';
  for (let i = 0; i < dst.length && !bad; i++) {
    const y = Math.floor(i / dStride);
    const x = Math.floor((i % dStride) / dc);
    const inside = i % dStride < dw * dc && x >= x0 && x < x1 && y >= y0 && y < y1;
    const want = inside ? convert(c.sf, c.df, ref[y - c.dstRect.y]![x - c.dstRect.x]!)[(i % dStride) % dc]! : SENTINEL;
    if (dst[i] !== want) bad = `byte ${i} (x ${x}, y ${y}) is 0x${dst[i]!.toString(16)}, want 0x${want.toString(16)}${inside ? '' : ' (outside dstRect)'}`;
  }
  t.equal(bad, '', what);
  t.equal(backing[0], SENTINEL, `${what}: the byte before the destination is untouched`);
  t.equal(bytes, Math.max(x1 - x0, 0) * Math.max(y1 - y0, 0) * dc, `${what}: bytes written`);
  t.same([stats.copies, stats.bytes], [1, bytes], `${what}: stats`);
}

const ROTATIONS: Rotation[] = [0, 90, 180, 270];
const REFLECTIONS: Array<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

t.test('every rotation and reflection, unscaled, with a crop: exact pixels', async (t) => {
  for (const rotation of ROTATIONS) {
    for (const [reflectX, reflectY] of REFLECTIONS) {
      const srcRect = { x: 2, y: 1, width: 7, height: 4 };
      const swap = rotation % 180 !== 0;
      const dstRect = { x: 3, y: 2, width: swap ? 4 : 7, height: swap ? 7 : 4 };
      await check(t, { sf: XR24, df: XR24, sw: 11, sh: 6, srcRect, dstRect, rotation, reflectX, reflectY }, `rotate ${rotation} reflect-x ${reflectX} reflect-y ${reflectY}`);
    }
  }
});

t.test('the mapping matches the KMS meaning: 90 is counter-clockwise, reflection before rotation', async (t) => {
  // 2x1 source: pixel A left, pixel B right (one byte per pixel)
  const src = new Uint8Array([0x0a, 0x0b]);
  const R8 = fourcc('R8');
  const run = async (rotation: Rotation, reflectX = false): Promise<number[]> => {
    const dst = new Uint8Array(2).fill(SENTINEL);
    await copyTransformed({ memory: src, format: R8, width: 2, height: 1, stride: 2 }, { memory: dst, format: R8, width: 1, height: 2, stride: 1 }, { rotation, reflectX });
    return [...dst];
  };
  t.same(await run(90), [0x0b, 0x0a], 'rotate-90: the right end of a row goes up (counter-clockwise)');
  t.same(await run(270), [0x0a, 0x0b], 'rotate-270: the left end of a row goes up (clockwise)');
  t.same(await run(90, true), [0x0a, 0x0b], 'reflect-x then rotate-90: the mirrored row turned counter-clockwise');
});

t.test('upscale and downscale to odd sizes, under every rotation', async (t) => {
  const sizes: Array<[number, number]> = [
    [1, 1],
    [3, 5],
    [13, 7],
    [29, 17],
    [1100, 2],
  ];
  for (const rotation of ROTATIONS) {
    for (const [width, height] of sizes) {
      const srcRect = { x: 1, y: 2, width: 9, height: 5 };
      await check(t, { sf: XR24, df: XR24, sw: 12, sh: 9, srcRect, dstRect: { x: 1, y: 0, width, height }, rotation, reflectX: rotation === 90, reflectY: rotation === 180 }, `9x5 -> ${width}x${height}, rotate ${rotation}`);
    }
  }
});

t.test('every pixel size and two conversions, scaled and rotated', async (t) => {
  for (const name of ['R8', 'RGB565', 'RGB888', 'XRGB8888', 'XRGB16161616']) {
    const f = fourcc(name);
    await check(t, { sf: f, df: f, sw: 10, sh: 7, srcRect: { x: 1, y: 1, width: 8, height: 5 }, dstRect: { x: 2, y: 3, width: 13, height: 11 }, rotation: 270, reflectX: false, reflectY: true }, `${name} 8x5 -> 13x11, rotate 270, reflect-y`);
  }
  await check(t, { sf: XB24, df: XR24, sw: 9, sh: 9, srcRect: { x: 0, y: 0, width: 9, height: 9 }, dstRect: { x: 0, y: 0, width: 5, height: 17 }, rotation: 90, reflectX: true, reflectY: false }, 'XBGR8888 -> XRGB8888, 9x9 -> 5x17, rotate 90, reflect-x');
  // wider than the native staging row (1024 pixels): chunked conversion
  await check(t, { sf: AR24, df: RG16, sw: 40, sh: 3, srcRect: { x: 3, y: 0, width: 37, height: 3 }, dstRect: { x: 1, y: 1, width: 1500, height: 2 }, rotation: 180, reflectX: false, reflectY: false }, 'ARGB8888 -> RGB565, 37x3 -> 1500x2, rotate 180');
});

t.test('a clipped destination: dstRect past every edge shows exactly its part inside the clip', async (t) => {
  const size = { width: 20, height: 16 };
  const clip = { x: 1, y: 2, width: 18, height: 13 };
  const places = [
    { x: -7, y: -5, width: 17, height: 11 }, // past the top-left
    { x: 9, y: 8, width: 23, height: 19 }, // past the bottom-right
    { x: -3, y: -4, width: 29, height: 25 }, // past all four edges
    { x: 4, y: 4, width: 5, height: 5 }, // wholly inside the clip
    { x: 19, y: 0, width: 4, height: 4 }, // beside the clip: nothing written
  ];
  for (const rotation of ROTATIONS) {
    for (const dstRect of places) {
      await check(
        t,
        { sf: XB24, df: XR24, sw: 13, sh: 9, srcRect: { x: 1, y: 1, width: 11, height: 7 }, dstRect, clip, size, rotation, reflectX: rotation === 270, reflectY: false },
        `rotate ${rotation}, 11x7 -> ${dstRect.width}x${dstRect.height}+${dstRect.x}+${dstRect.y} clipped to ${clip.width}x${clip.height}+${clip.x}+${clip.y}`,
      );
    }
  }
});

t.test('bad requests are typed errors and write nothing', async (t) => {
  const src = new Uint8Array(4 * 8 * 8);
  const dst = new Uint8Array(4 * 8 * 8).fill(SENTINEL);
  const s: CopySurface = { memory: src, format: XR24, width: 8, height: 8, stride: 32 };
  const d: CopySurface = { memory: dst, format: XR24, width: 8, height: 8, stride: 32 };
  await t.rejects(copyTransformed(s, d, { srcRect: { x: 4, y: 0, width: 5, height: 2 } }), RangeError, 'srcRect past the right edge');
  await t.rejects(copyTransformed(s, d, { srcRect: { x: 0, y: 0, width: 2, height: 2 }, dstRect: { x: 0, y: 7, width: 2, height: 2 } }), RangeError, 'dstRect past the bottom');
  await t.rejects(copyTransformed(s, d, { srcRect: { x: 0, y: 0, width: 0, height: 2 } }), RangeError, 'empty srcRect');
  await t.rejects(copyTransformed(s, d, { dstRect: { x: -1, y: 0, width: 2, height: 2 } }), RangeError, 'negative dstRect');
  await t.rejects(copyTransformed(s, d, { dstRect: { x: 0.5, y: 0, width: 2, height: 2 } }), TypeError, 'fractional dstRect');
  await t.rejects(copyTransformed(s, d, { rotation: 45 as Rotation }), RangeError, 'rotation 45');
  await t.rejects(copyTransformed(s, d, { dstRect: { x: -2, y: 0, width: 4, height: 4 }, clip: { x: 0, y: 0, width: 9, height: 8 } }), RangeError, 'a clip past the destination');
  await t.rejects(copyTransformed(s, d, { dstRect: { x: -0x80000001, y: 0, width: 4, height: 4 }, clip: { x: 0, y: 0, width: 8, height: 8 } }), RangeError, 'dstRect.x below -2^31');
  await t.rejects(copyTransformed(s, { ...d, format: fourcc('RGB888'), stride: 24 }, { dstRect: { x: 0, y: 0, width: 8, height: 8 } }), RangeError, 'no conversion XRGB8888 -> RGB888');
  t.ok(
    dst.every((b) => b === SENTINEL),
    'nothing was written',
  );
});
