// The copy path's YUYV conversion (a V4L2 camera's usual format, which no vkms plane shows):
// copyRects converts YUYV (BT.601, limited range) into the RGB formats, pixel pairs sharing their
// chroma; the reference colours of BT.601 come out right; odd columns and transformed copies
// are refused with RangeError rather than drawn with the wrong chroma. NV12 (two planes: Y, then
// CbCr interleaved at half width and height, in one byte range) converts the same way, each 2x2
// block sharing its chroma; a missing or short CbCr plane is refused. The matrix and range are the
// source's (YuvEncoding: BT.601 or BT.709, limited or full), each combination checked against a
// reference conversion written out here; the native copy takes no default; a camera's encoding
// comes from G_FMT's colorspace, ycbcr_enc and quantization by the V4L2 rules (v4l2YuvEncoding).
import t from 'tap';
import { fourcc } from '../../src/formats/index.js';
import { native } from '../../src/native.js';
import { DEFAULT_YUV_ENCODING, canCopy, copyRects, copyTransformed, yuvCoefficients, type CopySurface, type YuvEncoding } from '../../src/scanout/copy.js';
import { V4L2_COLORSPACE, V4L2_QUANTIZATION, V4L2_YCBCR_ENC, v4l2YuvEncoding } from '../../src/v4l2/formats.js';

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

/** 0xff0000 within 1 per channel. */
function nearRed(p: number): boolean {
  return ((p >> 16) & 0xff) >= 254 && ((p >> 8) & 0xff) <= 1 && (p & 0xff) <= 1;
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
  t.ok(nearRed(px(4, 1)), `BT.601 red (81, 90, 240) -> 0xff0000 within 1 per channel (0x${(px(4, 1) & 0xffffff).toString(16)}: the 8-bit red rounds to 254.4 with the exact matrix)`);
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
  t.ok(nearRed(px(4, 0)), `BT.601 red (81, 90, 240) -> 0xff0000 within 1 per channel (0x${(px(4, 0) & 0xffffff).toString(16)}: the 8-bit red rounds to 254.4 with the exact matrix)`);
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

/**
 * The reference conversion the matrix and range are specified by, from first principles: the luma
 * weights Kr, Kb of the standard; limited range maps Y 16..235 and Cb/Cr 16..240 onto 0..255,
 * full range takes the values as they are; R = Y + 2(1 - Kr) Cr, B = Y + 2(1 - Kb) Cb,
 * G = (Y - Kr R - Kb B) / Kg. Floating point, rounded, clamped.
 */
function referenceOf(enc: YuvEncoding): (y: number, cb: number, cr: number) => number {
  const { kr, kb } = enc.matrix === 'bt709' ? { kr: 0.2126, kb: 0.0722 } : { kr: 0.299, kb: 0.114 };
  return (y, cb, cr) => {
    const Y = enc.range === 'limited' ? ((y - 16) * 255) / 219 : y;
    const Cb = enc.range === 'limited' ? ((cb - 128) * 255) / 224 : cb - 128;
    const Cr = enc.range === 'limited' ? ((cr - 128) * 255) / 224 : cr - 128;
    const r = Y + 2 * (1 - kr) * Cr;
    const b = Y + 2 * (1 - kb) * Cb;
    const g = (Y - kr * r - kb * b) / (1 - kr - kb);
    const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
    return (clamp(r) << 16) | (clamp(g) << 8) | clamp(b);
  };
}

/** Every Y with a spread of chroma pairs (corners and middles of the range). */
function yuyvSweep(): { src: Uint8Array; width: number; height: number; stride: number; at: (x: number, y: number) => [number, number, number] } {
  const chroma = [0, 16, 64, 128, 192, 240, 255];
  const pairs: Array<[number, number]> = [];
  for (const cb of chroma) for (const cr of chroma) pairs.push([cb, cr]);
  const width = 256; // one row per chroma pair, every Y across it (pairs of pixels share the chroma)
  const height = pairs.length;
  const stride = width * 2;
  const src = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const [cb, cr] = pairs[y]!;
    for (let x = 0; x < width; x += 2) src.set([x, cb, x + 1, cr], y * stride + x * 2);
  }
  return { src, width, height, stride, at: (x, y) => [x, pairs[y]![0], pairs[y]![1]] };
}

const ENCODINGS: YuvEncoding[] = [
  { matrix: 'bt601', range: 'limited' },
  { matrix: 'bt601', range: 'full' },
  { matrix: 'bt709', range: 'limited' },
  { matrix: 'bt709', range: 'full' },
];

for (const enc of ENCODINGS) {
  t.test(`YUYV and NV12 -> XRGB8888 in ${enc.matrix} ${enc.range} range: every pixel within 1 of the reference conversion`, async (t) => {
    const ref = referenceOf(enc);
    const { src, width, height, stride, at } = yuyvSweep();
    const dStride = width * 4;
    const dst = new Uint8Array(dStride * height);
    await copyRects({ ...surface(YUYV, width, height, stride, src), yuv: enc }, surface(XRGB, width, height, dStride, dst), [{ x: 0, y: 0, width, height }]);
    const dv = new DataView(dst.buffer);
    let worst = 0;
    let where = '';
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const got = dv.getUint32(y * dStride + x * 4, true) & 0xffffff;
        const want = ref(...at(x, y));
        for (const s of [16, 8, 0]) {
          const d = Math.abs(((got >> s) & 0xff) - ((want >> s) & 0xff));
          if (d > worst) (worst = d), (where = ` at YCbCr ${at(x, y).join(',')}: 0x${got.toString(16)} for 0x${want.toString(16)}`);
        }
      }
    }
    t.ok(worst <= 1, `YUYV: ${width * height} pixels, worst channel difference ${worst}${where}`);

    // NV12: the same values, each 2x2 block sharing its chroma (two rows per chroma pair)
    const nh = height * 2;
    const cOffset = width * nh;
    const mem = new Uint8Array(cOffset + width * height);
    for (let y = 0; y < nh; y++) for (let x = 0; x < width; x++) mem[y * width + x] = x;
    for (let r = 0; r < height; r++) for (let x = 0; x < width; x += 2) mem.set(at(x, r).slice(1), cOffset + r * width + x);
    const nd = new Uint8Array(dStride * nh);
    await copyRects({ memory: mem, format: NV12, width, height: nh, stride: width, chroma: { offset: cOffset, stride: width }, yuv: enc }, surface(XRGB, width, nh, dStride, nd), [{ x: 0, y: 0, width, height: nh }]);
    const nv = new DataView(nd.buffer);
    let nworst = 0;
    for (let y = 0; y < nh; y++) {
      for (let x = 0; x < width; x++) {
        const got = nv.getUint32(y * dStride + x * 4, true) & 0xffffff;
        const want = ref(...at(x, y >> 1));
        for (const s of [16, 8, 0]) nworst = Math.max(nworst, Math.abs(((got >> s) & 0xff) - ((want >> s) & 0xff)));
      }
    }
    t.ok(nworst <= 1, `NV12: ${width * nh} pixels, worst channel difference ${nworst}`);
  });
}

t.test('the four encodings differ where they should: one YCbCr, four colours', async (t) => {
  const src = Uint8Array.of(120, 90, 120, 200);
  const got = new Set<number>();
  for (const enc of ENCODINGS) {
    const dst = new Uint8Array(8);
    await copyRects({ ...surface(YUYV, 2, 1, 4, src), yuv: enc }, surface(XRGB, 2, 1, 8, dst), [{ x: 0, y: 0, width: 2, height: 1 }]);
    got.add(new DataView(dst.buffer).getUint32(0, true));
  }
  t.equal(got.size, 4, 'four different results: the matrix and the range both reach the native conversion');
  const dst = new Uint8Array(8);
  await copyRects(surface(YUYV, 2, 1, 4, src), surface(XRGB, 2, 1, 8, dst), [{ x: 0, y: 0, width: 2, height: 1 }]);
  const plain = new DataView(dst.buffer).getUint32(0, true);
  await copyRects({ ...surface(YUYV, 2, 1, 4, src), yuv: DEFAULT_YUV_ENCODING }, surface(XRGB, 2, 1, 8, dst), [{ x: 0, y: 0, width: 2, height: 1 }]);
  t.equal(plain, new DataView(dst.buffer).getUint32(0, true), 'no encoding given: DEFAULT_YUV_ENCODING (BT.601 limited)');
  t.same(DEFAULT_YUV_ENCODING, { matrix: 'bt601', range: 'limited' });
});

t.test('the native conversion takes no default: a YUV job without its matrix is refused', async (t) => {
  const job = {
    src: { data: new Uint8Array(4), format: YUYV, stride: 4, width: 2, height: 1 },
    dst: { data: new Uint8Array(8), format: XRGB, stride: 8, width: 2, height: 1 },
    rects: Uint32Array.of(0, 0, 2, 1),
  };
  t.throws(() => native.copyRects(job), { name: 'TypeError', message: /job\.yuv/ }, 'no yuv: TypeError');
  t.throws(() => native.copyRects({ ...job, yuv: new Int32Array(5) }), { name: 'TypeError', message: /job\.yuv/ }, 'five coefficients: TypeError');
  t.throws(() => native.copyRects({ ...job, yuv: Int32Array.of(16, 1 << 22, 0, 0, 0, 0) }), { name: 'RangeError' }, 'a coefficient that could overflow: RangeError');
  t.same([...yuvCoefficients({ matrix: 'bt601', range: 'full' })], [0, 65536, 91881, 22553, 46802, 116130], 'BT.601 full range: 1.402, 0.344136, 0.714136, 1.772 in 16.16');
});

t.test('v4l2YuvEncoding: G_FMT colorspace, ycbcr_enc and quantization, with the V4L2 defaults', async (t) => {
  const C = V4L2_COLORSPACE, E = V4L2_YCBCR_ENC, Q = V4L2_QUANTIZATION;
  const f = (colorspace: number, ycbcrEnc: number = E.DEFAULT, quantization: number = Q.DEFAULT, height = 720) => v4l2YuvEncoding({ colorspace, ycbcrEnc, quantization, height });
  t.same(f(C.SRGB), { matrix: 'bt601', range: 'limited' }, 'sRGB (vivid\'s default): 601 by default, limited for YUV');
  t.same(f(C.SMPTE170M), { matrix: 'bt601', range: 'limited' }, 'SMPTE 170M: 601, limited');
  t.same(f(C.REC709), { matrix: 'bt709', range: 'limited' }, 'Rec. 709: 709, limited');
  t.same(f(C.DCI_P3), { matrix: 'bt709', range: 'limited' }, 'DCI-P3: 709 (V4L2_MAP_YCBCR_ENC_DEFAULT)');
  t.same(f(C.JPEG), { matrix: 'bt601', range: 'full' }, 'JPEG: 601, full range by default');
  t.same(f(C.BT2020), { matrix: 'bt2020', range: 'limited' }, 'BT.2020: its own matrix');
  t.same(f(C.DEFAULT, E.DEFAULT, Q.DEFAULT, 480), { matrix: 'bt601', range: 'limited' }, 'no colorspace, SDTV height: SMPTE 170M');
  t.same(f(C.DEFAULT, E.DEFAULT, Q.DEFAULT, 1080), { matrix: 'bt709', range: 'limited' }, 'no colorspace, HDTV height: Rec. 709');
  t.same(f(C.SRGB, E['709'], Q.FULL_RANGE), { matrix: 'bt709', range: 'full' }, 'explicit ycbcr_enc and quantization win');
  t.same(f(C.REC709, E['601'], Q.LIM_RANGE), { matrix: 'bt601', range: 'limited' }, 'explicit 601 on a Rec. 709 colorspace');
  t.same(f(C.JPEG, E.DEFAULT, Q.LIM_RANGE), { matrix: 'bt601', range: 'limited' }, 'JPEG with limited quantization said');
  t.same(f(C.REC709, E.XV709), { matrix: 'bt709', range: 'limited' }, 'xvYCC 709');
});
