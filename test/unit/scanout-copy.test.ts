// Host tests of the copy mechanism (native/copy.cc through src/scanout/copy.ts) on plain and
// memfd-mapped memory: exact pixels for every same-format size and every conversion among
// XRGB8888/ARGB8888/XBGR8888/ABGR8888/RGB565 at edge widths and odd strides, only the damaged
// bytes written, bad requests rejected with typed errors before any byte is touched, and the
// JS thread free while a large copy runs.
import t, { type Test } from 'tap';
import { ClosedError, SystemError } from '../../src/errors.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import { fourcc } from '../../src/formats/index.js';
import { native, testNative } from '../../src/native.js';
import { CONVERTIBLE_FORMATS, canCopy, copyFormats, copyRects, newCopyStats, type CopySurface } from '../../src/scanout/copy.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const XB24 = fourcc('XBGR8888');
const AB24 = fourcc('ABGR8888');
const RG16 = fourcc('RGB565');
const SENTINEL = 0xa5;

/** A deterministic byte pattern (xorshift) so a shifted or mis-strided copy cannot match. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function surface(format: number, width: number, height: number, stride: number, data: Uint8Array, offset = 0): CopySurface {
  return { memory: data, format, width, height, stride, offset };
}

// ---- reference conversion (the documented rules) ----------------------------------------------
function cppOf(format: number): number {
  return format === RG16 ? 2 : 4;
}
/** pixel at p -> 0xAARRGGBB (formats without alpha read as opaque) */
function decode(format: number, b: Uint8Array, p: number): number {
  if (format === RG16) {
    const v = b[p]! | (b[p + 1]! << 8);
    let r = (v >> 11) & 0x1f, g = (v >> 5) & 0x3f, bl = v & 0x1f;
    r = (r << 3) | (r >> 2);
    g = (g << 2) | (g >> 4);
    bl = (bl << 3) | (bl >> 2);
    return (0xff000000 | (r << 16) | (g << 8) | bl) >>> 0;
  }
  const v = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  const swapped = ((v & 0xff00ff00) | ((v >>> 16) & 0xff) | ((v & 0xff) << 16)) >>> 0;
  const c = format === XB24 || format === AB24 ? swapped : v;
  return format === XR24 || format === XB24 ? (c | 0xff000000) >>> 0 : c;
}
/** 0xAARRGGBB -> bytes of `format` (X bytes written as 0xff, RGB565 by truncation) */
function encode(format: number, c: number): number[] {
  if (format === RG16) {
    const v = ((c >>> 8) & 0xf800) | ((c >>> 5) & 0x07e0) | ((c >>> 3) & 0x1f);
    return [v & 0xff, v >> 8];
  }
  let v = format === XB24 || format === AB24 ? ((c & 0xff00ff00) | ((c >>> 16) & 0xff) | ((c & 0xff) << 16)) >>> 0 : c;
  if (format === XR24 || format === XB24) v = (v | 0xff000000) >>> 0;
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

/** Every byte of dst: inside the copied rect of each row the expected pixels, elsewhere the sentinel. */
function expectImage(
  t: Test,
  dst: Uint8Array,
  exp: (x: number, y: number) => number[] | undefined,
  dstCpp: number,
  dstStride: number,
  what: string,
): void {
  let bad = '';
  for (let i = 0; i < dst.length && !bad; i++) {
    const y = Math.floor(i / dstStride);
    const col = i % dstStride;
    const x = Math.floor(col / dstCpp);
    const px = exp(x, y);
    const want = px === undefined ? SENTINEL : px[col % dstCpp]!;
    if (dst[i] !== want) bad = `byte ${i} (x ${x}, y ${y}) is 0x${dst[i]!.toString(16)}, want 0x${want.toString(16)}`;
  }
  t.equal(bad, '', what);
}

t.test('same-format copies: every pixel size, edge widths 1, 3, 17, 1100, odd strides and offsets', async (t) => {
  const formats = ['R8', 'RGB565', 'RGB888', 'XRGB8888', 'ABGR2101010', 'XRGB16161616'].map(fourcc);
  for (const format of formats) {
    const cpp = copyFormats().get(format)!;
    t.ok(cpp > 0, `format 0x${format.toString(16)} is known (${cpp} bytes)`);
    for (const width of [1, 3, 17, 1100]) {
      const height = 5;
      const sStride = width * cpp + 3; // odd strides on both sides
      const dStride = width * cpp + 7;
      const sOff = 5;
      const src = noise(sOff + sStride * height, width * 31 + cpp);
      const dst = new Uint8Array(1 + dStride * height).fill(SENTINEL);
      const dview = dst.subarray(1); // the destination starts at an odd address
      const bytes = await copyRects(surface(format, width, height, sStride, src, sOff), surface(format, width, height, dStride, dview), [
        { x: 0, y: 0, width, height },
      ]);
      t.equal(bytes, width * height * cpp, `${width} px wide: bytes written`);
      t.equal(dst[0], SENTINEL, 'the byte before the destination view is untouched');
      expectImage(
        t,
        dview,
        (x, y) => (x < width ? [...src.subarray(sOff + y * sStride + x * cpp, sOff + y * sStride + x * cpp + cpp)] : undefined),
        cpp,
        dStride,
        `cpp ${cpp}, ${width} px wide: rows exact, stride padding untouched`,
      );
    }
  }
});

t.test('rows at every place in a cache line, around every store width: exact, nothing beside them written', async (t) => {
  // The copy streams a row's whole cache lines (16- or 32-byte stores) and writes the partial lines
  // at its ends and rows under two lines plainly: every start within a 64-byte line (each pixel
  // step) and row lengths on both sides of one, two and several lines reach each of those branches.
  const cases: Array<[number, number]> = [
    [XR24, XR24],
    [XB24, XR24],
    [XR24, RG16],
    [RG16, RG16],
  ];
  const widthsBytes = [60, 64, 68, 92, 96, 124, 128, 132, 156, 188, 192, 196, 252, 256, 260, 4100];
  for (const [sf, df] of cases) {
    const sc = cppOf(sf);
    const dc = cppOf(df);
    let bad = '';
    let rows = 0;
    for (let off = 0; off < 64 && !bad; off += dc) {
      for (const wb of widthsBytes) {
        const width = wb / dc;
        const height = 2;
        const sStride = width * sc + 12;
        const dStride = width * dc + 128;
        const src = noise(sStride * height, off * 977 + wb);
        const backing = new Uint8Array(64 + dStride * height).fill(SENTINEL);
        const dst = backing.subarray(off);
        await copyRects(surface(sf, width, height, sStride, src), surface(df, width, height, dStride, dst), [{ x: 0, y: 0, width, height }]);
        rows += height;
        for (let i = 0; i < backing.length && !bad; i++) {
          const j = i - off;
          const y = Math.floor(j / dStride);
          const col = j - y * dStride;
          const inside = j >= 0 && y < height && col < width * dc;
          let want = SENTINEL;
          if (inside) {
            const x = Math.floor(col / dc);
            const px = sf === df ? [...src.subarray(y * sStride + x * sc, y * sStride + x * sc + sc)] : encode(df, decode(sf, src, y * sStride + x * sc));
            want = px[col % dc]!;
          }
          if (backing[i] !== want) bad = `start +${off}, ${wb} bytes a row: byte ${j} is 0x${backing[i]!.toString(16)}, want 0x${want.toString(16)}`;
        }
      }
    }
    t.equal(bad, '', `0x${sf.toString(16)} -> 0x${df.toString(16)}: ${rows} rows at ${64 / dc} starts x ${widthsBytes.length} lengths exact, the bytes around them untouched`);
  }
});

t.test('conversions among XRGB8888, ARGB8888, XBGR8888, ABGR8888, RGB565: exact pixels', async (t) => {
  t.same([...CONVERTIBLE_FORMATS].sort(), [XR24, AR24, XB24, AB24, RG16].sort(), 'the five convertible formats');
  for (const sf of CONVERTIBLE_FORMATS) {
    for (const df of CONVERTIBLE_FORMATS) {
      t.ok(canCopy(sf, df), 'canCopy says yes');
      for (const width of [1, 3, 17, 1100]) {
        const height = 3;
        const sc = cppOf(sf);
        const dc = cppOf(df);
        const sStride = width * sc + 1;
        const dStride = width * dc + 5;
        const src = noise(sStride * height, sf ^ df ^ width);
        const backing = new Uint8Array(3 + dStride * height).fill(SENTINEL);
        const dst = backing.subarray(3);
        const bytes = await copyRects(surface(sf, width, height, sStride, src), surface(df, width, height, dStride, dst), [
          { x: 0, y: 0, width, height },
        ]);
        t.equal(bytes, width * height * dc, 'bytes written');
        const exp = (x: number, y: number): number[] | undefined => {
          if (x >= width) return undefined;
          if (sf === df) return [...src.subarray(y * sStride + x * sc, y * sStride + x * sc + sc)];
          return encode(df, decode(sf, src, y * sStride + x * sc));
        };
        expectImage(t, dst, exp, dc, dStride, `${width} px: 0x${sf.toString(16)} -> 0x${df.toString(16)} exact`);
      }
    }
  }
  // Fixed points of the rules, written out: opaque alpha from an X source, 0xff into an X byte,
  // RGB565 widened by bit replication.
  const one = async (sf: number, df: number, px: number[]): Promise<number[]> => {
    const dst = new Uint8Array(cppOf(df));
    await copyRects(surface(sf, 1, 1, cppOf(sf), Uint8Array.from(px)), surface(df, 1, 1, cppOf(df), dst), [{ x: 0, y: 0, width: 1, height: 1 }]);
    return [...dst];
  };
  t.same(await one(XR24, AR24, [0x11, 0x22, 0x33, 0x00]), [0x11, 0x22, 0x33, 0xff], 'XRGB -> ARGB: alpha 0xff');
  t.same(await one(AR24, XB24, [0x11, 0x22, 0x33, 0x44]), [0x33, 0x22, 0x11, 0xff], 'ARGB -> XBGR: R and B swap, X = 0xff');
  t.same(await one(AB24, AR24, [0x11, 0x22, 0x33, 0x44]), [0x33, 0x22, 0x11, 0x44], 'ABGR -> ARGB keeps alpha');
  t.same(await one(RG16, XR24, [0xff, 0xff]), [0xff, 0xff, 0xff, 0xff], 'RGB565 white -> XRGB white');
  t.same(await one(RG16, XR24, [0x1f, 0x00]), [0xff, 0x00, 0x00, 0xff], 'RGB565 blue -> 0xff blue');
  t.same(await one(XB24, RG16, [0xff, 0x00, 0x00, 0x00]), [0x00, 0xf8], 'XBGR red -> RGB565 red');
});

t.test('only the damaged rectangles are written (offset placement too)', async (t) => {
  const W = 64;
  const H = 40;
  const src = noise(W * 4 * H, 7);
  const dst = new Uint8Array(W * 4 * H).fill(SENTINEL);
  const rects = [
    { x: 3, y: 2, width: 17, height: 5 },
    { x: 40, y: 20, width: 1, height: 1 },
    { x: 0, y: 30, width: 64, height: 2 },
  ];
  const stats = newCopyStats();
  const bytes = await copyRects(surface(XR24, W, H, W * 4, src), surface(XR24, W, H, W * 4, dst), rects, { stats });
  t.equal(bytes, (17 * 5 + 1 + 64 * 2) * 4, 'bytes written = damaged area x 4');
  t.same(stats, { copies: 1, bytes, syncCalls: 0 }, 'stats: one copy, no dma-buf, no sync');
  const inside = (x: number, y: number) => rects.some((r) => x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height);
  expectImage(t, dst, (x, y) => (inside(x, y) ? [...src.subarray(y * W * 4 + x * 4, y * W * 4 + x * 4 + 4)] : undefined), 4, W * 4, 'damage only');

  // The same rectangle placed at dx, dy in a larger destination
  const big = new Uint8Array(100 * 4 * 50).fill(SENTINEL);
  await copyRects(surface(XR24, W, H, W * 4, src), surface(XR24, 100, 50, 400, big), [{ x: 5, y: 6, width: 7, height: 8 }], { dx: 30, dy: 10 });
  expectImage(
    t,
    big,
    (x, y) => {
      const sx = x - 30;
      const sy = y - 10;
      if (sx < 5 || sx >= 12 || sy < 6 || sy >= 14) return undefined;
      return [...src.subarray(sy * W * 4 + sx * 4, sy * W * 4 + sx * 4 + 4)];
    },
    4,
    400,
    'rect (5,6 7x8) lands at (35,16), nothing else written',
  );
});

t.test('bad requests: typed errors, nothing written', async (t) => {
  const W = 16;
  const H = 8;
  const src = noise(W * 4 * H, 3);
  const dst = new Uint8Array(W * 4 * H).fill(SENTINEL);
  const s = surface(XR24, W, H, W * 4, src);
  const d = surface(XR24, W, H, W * 4, dst);
  const all = [{ x: 0, y: 0, width: W, height: H }];
  await t.rejects(copyRects(s, d, [{ x: 10, y: 0, width: 7, height: 1 }]), RangeError, 'rect past the right edge');
  await t.rejects(copyRects(s, d, [{ x: 0, y: 7, width: 1, height: 2 }]), RangeError, 'rect past the bottom');
  await t.rejects(copyRects(s, d, [{ x: 0xffffffff, y: 0, width: 2, height: 1 }]), RangeError, 'x + width wrapping 32 bits');
  await t.rejects(copyRects(s, d, [{ x: -1, y: 0, width: 2, height: 1 }]), RangeError, 'negative x');
  await t.rejects(copyRects(s, d, [{ x: 0.5, y: 0, width: 2, height: 1 }]), TypeError, 'fractional x');
  await t.rejects(copyRects(s, d, [{ x: 0, y: 0, width: 4, height: 4 }], { dx: 13 }), RangeError, 'placed past the destination edge');
  await t.rejects(copyRects(s, d, [{ x: 0, y: 0, width: 4, height: 4 }], { dy: -1 }), RangeError, 'placed above the destination');
  await t.rejects(copyRects({ ...s, stride: W * 4 - 1 }, d, all), RangeError, 'source stride below width x 4');
  await t.rejects(copyRects(s, { ...d, stride: W * 2 }, all), RangeError, 'destination stride below width x 4');
  await t.rejects(copyRects(s, { ...d, height: H + 1 }, all), RangeError, 'destination plane past the end of its memory');
  await t.rejects(copyRects({ ...s, offset: 1 }, d, all), RangeError, 'source offset pushes the plane past the end');
  await t.rejects(copyRects(s, { ...d, stride: 0x7fffffff, height: 3 }, all), RangeError, 'huge stride x height (64-bit size) rejected');
  await t.rejects(copyRects({ ...s, format: fourcc('NV21') }, d, all), /not a one-plane RGB format/, 'a two-plane format the copy has no converter for');
  await t.rejects(copyRects({ ...s, format: fourcc('NV12') }, d, all), /chromaOffset/, 'NV12 without its chroma plane');
  await t.rejects(copyRects(s, { ...d, format: fourcc('NV12'), chroma: { offset: 0, stride: W } }, all), /NV12 is a source format only/, 'NV12 as a destination says so (not that its chroma plane is missing)');
  await t.rejects(copyRects(s, { ...d, format: fourcc('NV12') }, all), /NV12 is a source format only/, 'also without a chroma plane');
  await t.rejects(copyRects({ ...s, format: 0x12345678 }, d, all), RangeError, 'unknown fourcc');
  await t.rejects(copyRects({ ...s, format: fourcc('XRGB2101010') }, d, all), /no conversion/, 'no conversion 2101010 -> 8888');
  await t.rejects(copyRects({ ...s, width: 0 }, d, all), RangeError, 'zero width');
  await t.rejects(copyRects({ ...s, memory: 'x' as unknown as Uint8Array }, d, all), TypeError, 'memory that is not a buffer');
  t.throws(() => native.copyRects({ src: { ...s, data: src }, dst: { ...d, data: dst }, rects: new Uint32Array(3) }), RangeError, 'native: rect list not in quadruples (thrown before queuing)');
  t.throws(() => native.copyRects({ src: { ...s, data: src }, dst: { ...d, data: dst }, rects: [0, 0, 1, 1] as unknown as Uint32Array }), TypeError, 'native: rects not a Uint32Array');
  t.ok(dst.every((b) => b === SENTINEL), 'not one destination byte was written');
  t.equal(await copyRects(s, d, []), 0, 'no rectangles: nothing to write');
  t.equal(await copyRects(s, d, [{ x: 16, y: 8, width: 0, height: 0 }]), 0, 'an empty rectangle at the corner is no write');
});

t.test('mapped memory: a memfd mapping copies; a closed one is ClosedError; a non-dma-buf sync fails typed', async (t) => {
  const base = testNative.countOpenFds();
  const W = 32;
  const H = 4;
  const fd = native.memfdCreate('copy-test', true);
  native.ftruncateFd(fd, W * 4 * H);
  const m = Mapping.map(fd, 0, W * 4 * H);
  const src = noise(W * 4 * H, 9);
  const dst = surface(XR24, W, H, W * 4, new Uint8Array(W * 4 * H));
  await copyRects(surface(XR24, W, H, W * 4, src), { memory: m, format: XR24, width: W, height: H, stride: W * 4 }, [{ x: 0, y: 0, width: W, height: H }]);
  t.same(m.bytes(), src, 'the mapping received the frame');

  // A memfd is not a dma-buf: the START bracket fails with ENOTTY and the copy never runs.
  const notDmabuf = Dmabuf.dupFrom(fd, 'memfd posing as a dma-buf');
  const stats = newCopyStats();
  const err = await copyRects({ memory: m, dmabuf: notDmabuf, format: XR24, width: W, height: H, stride: W * 4 }, dst, [{ x: 0, y: 0, width: 1, height: 1 }], { stats }).catch((e: unknown) => e);
  t.ok(err instanceof SystemError, 'a SystemError');
  t.equal((err as SystemError).syscall, 'DMA_BUF_IOCTL_SYNC', 'from DMA_BUF_IOCTL_SYNC');
  t.equal(stats.copies, 0, 'no copy counted');
  t.equal(stats.syncCalls, 1, 'one START issued, no END for a bracket that never started');
  t.ok((dst.memory as Uint8Array).every((b) => b === 0), 'destination untouched');
  notDmabuf.close();

  m.close();
  await t.rejects(copyRects({ memory: m, format: XR24, width: W, height: H, stride: W * 4 }, dst, []), ClosedError, 'closed mapping');
  native.closeFd(fd);
  t.equal(testNative.countOpenFds(), base, 'no fd leaked');
});

t.test('the JS thread keeps running while a large copy runs on the pool', async (t) => {
  const W = 3840;
  const H = 2160;
  const src = noise(W * 4 * H, 5);
  const dst = new Uint8Array(W * 4 * H);
  // 8 full 4K frames in one job: tens of milliseconds of work on a pool thread.
  const rects = Array.from({ length: 8 }, () => ({ x: 0, y: 0, width: W, height: H }));
  let turns = 0;
  let settled = false;
  const p = copyRects(surface(XR24, W, H, W * 4, src), surface(XR24, W, H, W * 4, dst), rects).finally(() => (settled = true));
  await new Promise<void>((resolve) => {
    const spin = () => (settled ? resolve() : (turns++, setImmediate(spin)));
    setImmediate(spin);
  });
  t.equal(await p, 8 * W * H * 4, 'bytes written');
  t.ok(turns > 0, `the event loop turned ${turns} times while the copy was pending`);
  t.ok(dst.subarray(0, 4096).every((b, i) => b === src[i]), 'the frame arrived');
});

t.test('native: the memory of a pending copy stays alive though no JS holds it (GC during the copy)', async (t) => {
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const W = 3840;
  const H = 2160;
  // The buffers exist only inside this function: after it returns, nothing in JS refers to them.
  const start = () => {
    const src = new Uint8Array(W * 4 * H).fill(0x3c);
    const dst = new Uint8Array(W * 4 * H);
    const rects = new Uint32Array(Array.from({ length: 8 }, () => [0, 0, W, H]).flat());
    const job = { src: { data: src, format: XR24, width: W, height: H, stride: W * 4 }, dst: { data: dst, format: XR24, width: W, height: H, stride: W * 4 }, rects };
    return { done: native.copyRects(job), dst: new WeakRef(dst), src: new WeakRef(src) };
  };
  const { done, dst, src } = start();
  let collectedWhilePending = false;
  let settled = false;
  void done.finally(() => (settled = true));
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    gc();
    if (!settled && (dst.deref() === undefined || src.deref() === undefined)) collectedWhilePending = true;
  }
  t.equal(await done, 8 * W * H * 4, 'the copy completed');
  t.notOk(collectedWhilePending, 'neither buffer was collected while the copy was pending');
});
