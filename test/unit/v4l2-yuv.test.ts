// The copy path's YUYV conversion (a V4L2 camera's usual format, which no vkms plane shows):
// copyRects converts YUYV (BT.601, limited range) into the RGB formats, pixel pairs sharing their
// chroma; the reference colours of BT.601 come out right; odd columns and transformed copies
// are refused with RangeError rather than drawn with the wrong chroma. NV12 (two planes: Y, then
// CbCr interleaved at half width and height, in one byte range) converts the same way, each 2x2
// block sharing its chroma; a missing or short CbCr plane is refused.
import t from 'tap';
import { fourcc } from '../../src/formats/index.js';
import { canCopy, copyRects, copyTransformed, type CopySurface } from '../../src/scanout/copy.js';

const YUYV = fourcc('YUYV');
const XRGB = fourcc('XRGB8888');
const RGB565 = fourcc('RGB565');
const NV12 = fourcc('NV12');

/** BT.601 limited range, the formula the conversion is specified by (floating point, rounded). */
function reference(y: number, cb: number, cr: number): number {
  const c = 1.164 * (y - 16);
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  const r = clamp(c + 1.596 * (cr - 128));
  const g = clamp(c - 0.391 * (cb - 128) - 0.813 * (cr - 128));
  const b = clamp(c + 2.018 * (cb - 128));
  return (r << 16) | (g << 8) | b;
}

function surface(format: number, width: number, height: number, stride: number, data: Uint8Array): CopySurface {
  return { memory: data, format, width, height, stride };
}

/** [Y0, Y1, Cb, Cr] pairs: BT.601 limited-range white, black, red, green, blue, and a grey ramp. */
const PAIRS: Array<[number, number, number, number]> = [
  [235, 235, 128, 128],
  [16, 16, 128, 128],
  [81, 81, 90, 240],
  [145, 145, 54, 34],
  [41, 41, 240, 110],
  [60, 200, 100, 150],
];

t.test('canCopy: YUYV into the RGB formats, nothing into YUYV', async (t) => {
  t.ok(canCopy(YUYV, XRGB), 'YUYV -> XRGB8888');
  t.ok(canCopy(YUYV, RGB565), 'YUYV -> RGB565');
  t.notOk(canCopy(XRGB, YUYV), 'XRGB8888 -> YUYV: no');
  t.ok(canCopy(NV12, XRGB), 'NV12 -> XRGB8888 (its CbCr plane given beside the luma)');
  t.notOk(canCopy(NV12, NV12), 'NV12 -> NV12: converted only, never copied as is');
});

t.test('copyRects YUYV -> XRGB8888: BT.601 limited range, chroma shared by pixel pairs', async (t) => {
  const width = PAIRS.length * 2;
  const height = 3;
  const sStride = width * 2 + 4;
  const src = new Uint8Array(sStride * height);
  for (let y = 0; y < height; y++) {
    PAIRS.forEach(([y0, y1, cb, cr], i) => src.set([y0, cb, y1, cr], y * sStride + i * 4));
  }
  const dStride = width * 4;
  const dst = new Uint8Array(dStride * height);
  const bytes = await copyRects(surface(YUYV, width, height, sStride, src), surface(XRGB, width, height, dStride, dst), [{ x: 0, y: 0, width, height }]);
  t.equal(bytes, width * height * 4, 'bytes written');
  const dv = new DataView(dst.buffer);
  const px = (x: number, y: number) => dv.getUint32(y * dStride + x * 4, true);
  t.equal(px(0, 0), 0xffffffff, 'Y 235 -> white (X byte 0xff)');
  t.equal(px(2, 0), 0xff000000, 'Y 16 -> black');
  t.equal(px(4, 1) & 0xffffff, 0xff0000, 'BT.601 red (81, 90, 240) -> 0xff0000');
  let worst = 0;
  for (let y = 0; y < height; y++) {
    PAIRS.forEach(([y0, y1, cb, cr], i) => {
      for (const [k, luma] of [[0, y0], [1, y1]] as const) {
        const got = px(i * 2 + k, y) & 0xffffff;
        const want = reference(luma, cb, cr);
        for (const s of [16, 8, 0]) worst = Math.max(worst, Math.abs(((got >> s) & 0xff) - ((want >> s) & 0xff)));
      }
    });
  }
  t.ok(worst <= 1, `every pixel within 1 of the floating-point BT.601 formula (worst ${worst})`);
  t.not(px(10, 0), px(11, 0), 'the two pixels of a pair keep their own luma');
});

t.test('odd widths to the row end, odd columns refused, no transformed YUYV copies', async (t) => {
  const width = 5;
  const src = new Uint8Array(12).fill(128);
  src.set([235, 128, 235, 128, 16, 128, 16, 128, 81, 90, 0, 0]);
  const dst = new Uint8Array(width * 4);
  await copyRects(surface(YUYV, width, 1, 12, src), surface(XRGB, width, 1, width * 4, dst), [{ x: 0, y: 0, width, height: 1 }]);
  t.equal(new DataView(dst.buffer).getUint32(16, true) & 0xffffff, reference(81, 90, 128), 'the last odd pixel: its own Cb, neutral Cr');
  await t.rejects(copyRects(surface(YUYV, width, 1, 12, src), surface(XRGB, width, 1, width * 4, dst), [{ x: 1, y: 0, width: 2, height: 1 }]), RangeError, 'an odd x is refused');
  await t.rejects(copyTransformed(surface(YUYV, 4, 1, 8, src), surface(XRGB, 8, 2, 32, new Uint8Array(64)), { dstRect: { x: 0, y: 0, width: 8, height: 2 } }), RangeError, 'a scaled YUYV copy is refused');
});

t.test('copyRects NV12 -> XRGB8888: Y plane, CbCr plane at half resolution, each 2x2 block shares its chroma', async (t) => {
  const width = PAIRS.length * 2;
  const height = 4;
  const yStride = width + 3;
  const cStride = width + 5;
  const cOffset = yStride * height + 7; // not packed: the offset and strides are read, not assumed
  const mem = new Uint8Array(cOffset + cStride * (height / 2));
  for (let y = 0; y < height; y++) {
    PAIRS.forEach(([y0, y1], i) => mem.set([y % 2 ? y1 : y0, y % 2 ? y0 : y1], y * yStride + i * 2));
  }
  for (let r = 0; r < height / 2; r++) {
    PAIRS.forEach(([, , cb, cr], i) => mem.set(r === 0 ? [cb, cr] : [cr, cb], cOffset + r * cStride + i * 2));
  }
  const dStride = width * 4;
  const dst = new Uint8Array(dStride * height);
  const src: CopySurface = { memory: mem, format: NV12, width, height, stride: yStride, chroma: { offset: cOffset, stride: cStride } };
  const bytes = await copyRects(src, surface(XRGB, width, height, dStride, dst), [{ x: 0, y: 0, width, height }]);
  t.equal(bytes, width * height * 4, 'bytes written');
  const dv = new DataView(dst.buffer);
  const px = (x: number, y: number) => dv.getUint32(y * dStride + x * 4, true);
  t.equal(px(0, 0), 0xffffffff, 'Y 235 -> white (X byte 0xff)');
  t.equal(px(4, 0) & 0xffffff, 0xff0000, 'BT.601 red (81, 90, 240) -> 0xff0000');
  let worst = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const luma = mem[y * yStride + x]!;
      const c = cOffset + (y >> 1) * cStride + (x & ~1);
      const want = reference(luma, mem[c]!, mem[c + 1]!);
      const got = px(x, y) & 0xffffff;
      for (const s of [16, 8, 0]) worst = Math.max(worst, Math.abs(((got >> s) & 0xff) - ((want >> s) & 0xff)));
    }
  }
  t.ok(worst <= 1, `every pixel within 1 of BT.601 of its own Y and its block's CbCr (worst ${worst})`);
  t.not(px(4, 2), px(4, 0), 'rows 2-3 use the second CbCr row');
  // a damage rectangle from an odd row: its chroma row is (y / 2)
  const part = new Uint8Array(dStride * height);
  await copyRects(src, surface(XRGB, width, height, dStride, part), [{ x: 2, y: 1, width: 4, height: 2 }]);
  const pv = new DataView(part.buffer);
  t.same([pv.getUint32(1 * dStride + 8, true), pv.getUint32(2 * dStride + 20, true)], [px(2, 1), px(5, 2)], 'a rectangle from (2, 1) converts as the whole frame does');
});

t.test('NV12 without its CbCr plane, with a short one, from an odd column, or transformed: refused', async (t) => {
  const w = 4, h = 2;
  const mem = new Uint8Array(w * h + w).fill(128);
  const dst = surface(XRGB, w, h, w * 4, new Uint8Array(w * h * 4));
  const whole = [{ x: 0, y: 0, width: w, height: h }];
  await t.rejects(copyRects(surface(NV12, w, h, w, mem), dst, whole), { name: 'TypeError', message: /chromaOffset/ }, 'no chroma: TypeError');
  await t.rejects(copyRects({ ...surface(NV12, w, h, w, mem), chroma: { offset: w * h + 1, stride: w } }, dst, whole), { name: 'RangeError', message: /CbCr plane/ }, 'a CbCr plane past the memory: RangeError');
  await t.rejects(copyRects({ ...surface(NV12, w, h, w, mem), chroma: { offset: w * h, stride: w - 1 } }, dst, whole), { name: 'RangeError', message: /chromaStride/ }, 'a CbCr stride below the row: RangeError');
  const ok = { ...surface(NV12, w, h, w, mem), chroma: { offset: w * h, stride: w } };
  await t.rejects(copyRects(ok, dst, [{ x: 1, y: 0, width: 2, height: 1 }]), { name: 'RangeError', message: /NV12 is copied in pixel pairs/ }, 'an odd column: RangeError');
  await t.rejects(copyTransformed(ok, dst, { rotation: 90 }), { name: 'RangeError', message: /NV12/ }, 'transformed: RangeError');
});
