// Pixel formats: the generated table covers the vendored header, names agree with libdrm, the
// kernel's per-format facts are right, and minPitch/planeSize follow the kernel's rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  DRM_FORMAT_BIG_ENDIAN,
  fourcc,
  fourccCode,
  fourccString,
  formatInfo,
  formatName,
  headerFormats,
  minPitch,
  planeHeight,
  planeSize,
  planeWidth,
} from '../../src/formats/index.js';
import { kernelFormats, packedSize } from '../../src/formats/info.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { native, packageRoot } from '../../src/native.js';

const header = readFileSync(join(packageRoot, 'native', 'vendor', 'drm_fourcc.h'), 'utf8');

// An independent reading of the header: every `#define DRM_FORMAT_X fourcc_code('a','b','c','d')`.
function headerFourccDefines(): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^#define\s+DRM_FORMAT_(\w+)\s+fourcc_code\('(.)',\s*'(.)',\s*'(.)',\s*'(.)'\)/gm;
  for (const m of header.matchAll(re)) {
    const [a, b, c, d] = [m[2], m[3], m[4], m[5]].map((ch) => ch.charCodeAt(0));
    out.set(m[1], (a | (b << 8) | (c << 16) | (d << 24)) >>> 0);
  }
  return out;
}

t.test('the generated table holds every DRM_FORMAT_* code of the vendored header', async (t) => {
  const defines = headerFourccDefines();
  t.ok(defines.size > 100, `the header defines ${defines.size} fourcc codes`);
  const generated = new Map(headerFormats().map((f) => [f.name, f.code]));
  for (const [name, code] of defines) t.equal(generated.get(name), code, `${name} = 0x${code.toString(16)}`);
  // and nothing more than those plus DRM_FORMAT_INVALID
  t.same([...generated.keys()].filter((n) => !defines.has(n)), ['INVALID']);
  t.equal(generated.get('INVALID'), 0);
  t.match(headerFormats().find((f) => f.name === 'XRGB8888')?.comment ?? '', /x:R:G:B 8:8:8:8/);
});

t.test('fourccString agrees with libdrm drmGetFormatName for every header code', async (t) => {
  for (const f of headerFormats()) {
    t.equal(fourccString(f.code), native.drmGetFormatName(f.code), `${f.name}`);
    const be = (f.code | DRM_FORMAT_BIG_ENDIAN) >>> 0;
    if (f.code !== 0) t.equal(fourccString(be), native.drmGetFormatName(be), `${f.name} big-endian`);
  }
});

t.test('fourccString matches libdrm on odd codes too (spaces, unknown codes)', async (t) => {
  for (const code of [0x20202041, 0x41202041, fourccCode('ZZZZ'), 0x7e7e7e7e]) {
    t.equal(fourccString(code), native.drmGetFormatName(code), `0x${code.toString(16)}`);
  }
  t.equal(fourccString(0x00000001), '\\x01', 'non-printable bytes are escaped where libdrm would emit raw bytes');
});

t.test('formatName gives header names; fourcc() parses names, fourccs and hex', async (t) => {
  t.equal(formatName(0x34325258), 'XRGB8888');
  t.equal(formatName(0), 'INVALID');
  t.equal(formatName(0x3231564e), 'NV12');
  t.equal(formatName((0x35315258 | DRM_FORMAT_BIG_ENDIAN) >>> 0), 'XRGB1555_BE');
  t.equal(formatName(0x12345678), '0x12345678');
  t.equal(fourcc('XRGB8888'), 0x34325258);
  t.equal(fourcc('DRM_FORMAT_XRGB8888'), 0x34325258);
  t.equal(fourcc('XR24'), 0x34325258);
  t.equal(fourcc('xrgb8888'), 0x34325258);
  t.equal(fourcc('0x34325258'), 0x34325258);
  t.equal(fourcc('R8'), fourccCode('R8'));
  t.equal(fourcc('C1'), 0x20203143);
  t.equal(fourcc('XRGB1555_BE'), (0x35315258 | DRM_FORMAT_BIG_ENDIAN) >>> 0);
  t.throws(() => fourcc('NOPE1234'), InvalidArgumentError);
  t.throws(() => fourcc('ZZZZ'), InvalidArgumentError, 'a fourcc the header does not define');
  t.throws(() => fourcc('0x12345678'), InvalidArgumentError);
  t.throws(() => formatName(-1), InvalidArgumentError);
  t.throws(() => formatName(2 ** 32), InvalidArgumentError);
  t.throws(() => formatName(1.5), InvalidArgumentError);
});

t.test('every header name round-trips through fourcc(), by name and by fourcc string', async (t) => {
  for (const f of headerFormats()) {
    t.equal(fourcc(f.name), f.code, f.name);
    t.equal(formatName(fourcc(f.name)), f.name);
    if (f.code !== 0) t.equal(fourcc(fourccString(f.code)), f.code, `${f.name} as ${fourccString(f.code)}`);
  }
});

t.test('no header name is the fourcc string of another format, so fourcc() is unambiguous', async (t) => {
  const byName = new Map(headerFormats().map((f) => [f.name, f.code]));
  for (const f of headerFormats()) {
    const s = fourccString(f.code);
    const other = byName.get(s) ?? byName.get(s.toUpperCase());
    t.ok(other === undefined || other === f.code, `${s} (${f.name}) is not the name of another format`);
  }
});

t.test('formats named in the acceptance criteria', async (t) => {
  const nv12 = formatInfo(fourcc('NV12'))!;
  t.equal(nv12.planes, 2);
  t.same([nv12.hsub, nv12.vsub], [2, 2]);
  t.same(nv12.bytesPerBlock, [1, 2]);
  t.ok(nv12.isYuv);
  const yuv420 = formatInfo(fourcc('YUV420'))!;
  t.equal(yuv420.planes, 3);
  t.same(yuv420.bytesPerBlock, [1, 1, 1]);
  const p010 = formatInfo(fourcc('P010'))!;
  t.equal(p010.planes, 2);
  t.same(p010.bytesPerBlock, [2, 4]);
  t.same([p010.hsub, p010.vsub], [2, 2]);
  const xrgb = formatInfo(fourcc('XRGB8888'))!;
  t.equal(xrgb.planes, 1);
  t.same(xrgb.bytesPerBlock, [4]);
  t.equal(xrgb.hasAlpha, false);
  t.equal(xrgb.depth, 24);
  t.equal(formatInfo(fourcc('ARGB8888'))!.hasAlpha, true);
});

t.test('format facts from the kernel table: blocks, subsampling, flags', async (t) => {
  const c1 = formatInfo(fourcc('C1'))!;
  t.same([c1.bytesPerBlock[0], c1.blockWidth[0], c1.blockHeight[0]], [1, 8, 1]);
  t.ok(c1.isColorIndexed);
  t.same(c1.bitsPerPixel, [1]);
  const y0l0 = formatInfo(fourcc('Y0L0'))!;
  t.same([y0l0.bytesPerBlock[0], y0l0.blockWidth[0], y0l0.blockHeight[0]], [8, 2, 2]);
  t.ok(y0l0.hasAlpha && y0l0.isYuv);
  const p030 = formatInfo(fourcc('P030'))!;
  t.same(p030.bytesPerBlock, [4, 8]);
  t.same(p030.blockWidth, [3, 3]);
  const nv15 = formatInfo(fourcc('NV15'))!;
  t.same(nv15.blockWidth, [4, 2]);
  t.same(nv15.bytesPerBlock, [5, 5]);
  t.same([formatInfo(fourcc('YUV410'))!.hsub, formatInfo(fourcc('YUV410'))!.vsub], [4, 4]);
  t.same([formatInfo(fourcc('YUV411'))!.hsub, formatInfo(fourcc('YUV411'))!.vsub], [4, 1]);
  t.same([formatInfo(fourcc('YUYV'))!.planes, formatInfo(fourcc('YUYV'))!.hsub], [1, 2]);
  t.ok(formatInfo(fourcc('YUV420_8BIT'))!.requiresModifier);
  t.notOk(formatInfo(fourcc('NV12'))!.requiresModifier);
  t.same(formatInfo(fourcc('XRGB8888_A8'))!.bytesPerBlock, [4, 1]);
  t.equal(formatInfo(fourcc('R16')), undefined, 'R16 is in the header but not in the kernel table');
  t.equal(formatInfo(0), undefined);
  for (const info of kernelFormats()) {
    t.equal(info.bytesPerBlock.length, info.planes, `${info.name}: one entry per plane`);
    t.ok(info.isYuv || (info.hsub === 1 && info.vsub === 1), `${info.name}: only YUV formats are subsampled`);
    t.equal(info.name, formatName(info.format));
  }
});

// The kernel's rules, restated independently for the checks below:
//   plane width  = plane 0 ? W : ceil(W / hsub);  plane height = plane 0 ? H : ceil(H / vsub)
//   min pitch    = ceil(planeWidth * char_per_block / (block_w * block_h))
//   plane size   = (planeHeight - 1) * pitch + min pitch
t.test('minPitch and planeSize follow the kernel rules (worked examples)', async (t) => {
  const XR24 = fourcc('XRGB8888');
  const NV12 = fourcc('NV12');
  t.equal(minPitch(XR24, 1920), 7680n);
  t.equal(planeSize(XR24, 1920, 1080, 0), 7680n * 1080n);
  t.equal(planeSize(XR24, 1920, 1080, 0, 8192n), 8192n * 1079n + 7680n, 'a larger pitch only pads the rows before the last');
  t.equal(minPitch(NV12, 1921, 0), 1921n);
  t.equal(minPitch(NV12, 1921, 1), 1922n, 'ceil(1921/2) = 961 CbCr pairs of 2 bytes');
  t.equal(planeHeight(NV12, 1081, 1), 541);
  t.equal(planeSize(NV12, 1921, 1081, 1), 540n * 1922n + 1922n);
  t.equal(minPitch(fourcc('P010'), 1920, 1), 3840n);
  t.equal(minPitch(fourcc('YUV420'), 1919, 2), 960n);
  t.equal(minPitch(fourcc('C1'), 9), 2n, '9 one-bit pixels need 2 bytes');
  t.equal(minPitch(fourcc('Y0L0'), 10), 20n, 'kernel divides by block_w * block_h: 10*8/4');
  t.equal(minPitch(fourcc('P030'), 10, 0), 14n, 'ceil(10 * 4 / 3)');
  t.equal(minPitch(fourcc('P030'), 10, 1), 14n, 'ceil(5 * 8 / 3)');
  t.equal(minPitch(fourcc('NV15'), 10, 1), 13n, 'ceil(5 * 5 / 2)');
  t.equal(minPitch(fourcc('YUV420_8BIT'), 64), 0n, 'no linear layout: 0 as in the kernel');
  t.equal(packedSize(NV12, 4, 4), 16n + 8n);
  t.equal(planeWidth(fourcc('YUV410'), 5, 1), 2);
});

t.test('sizes are 64-bit safe', async (t) => {
  const max = 0xffffffff;
  t.equal(minPitch(fourcc('ABGR16161616'), max), BigInt(max) * 8n);
  const size = planeSize(fourcc('ABGR16161616'), max, max, 0);
  t.equal(size, (BigInt(max) - 1n) * BigInt(max) * 8n + BigInt(max) * 8n);
  t.ok(size > BigInt(Number.MAX_SAFE_INTEGER), 'beyond what a double holds exactly');
});

t.test('minPitch/planeSize agree with the rules for every kernel format and many sizes', async (t) => {
  const widths = [1, 2, 3, 5, 7, 64, 1023, 1920, 4097];
  for (const info of kernelFormats()) {
    for (let plane = 0; plane < info.planes; plane++) {
      for (const w of widths) {
        const pw = plane === 0 ? w : Math.ceil(w / info.hsub);
        const div = info.blockWidth[plane] * info.blockHeight[plane];
        const expected = BigInt(Math.ceil((pw * info.bytesPerBlock[plane]) / div));
        if (minPitch(info.format, w, plane) !== expected) t.fail(`${info.name} plane ${plane} width ${w}`);
        const ph = plane === 0 ? 37 : Math.ceil(37 / info.vsub);
        if (planeSize(info.format, w, 37, plane) !== BigInt(ph - 1) * expected + expected) t.fail(`${info.name} size`);
      }
    }
  }
  t.pass(`checked ${kernelFormats().length} formats x ${widths.length} widths`);
});

t.test('bad arguments are typed errors', async (t) => {
  const XR24 = fourcc('XRGB8888');
  t.throws(() => minPitch(XR24, 0), InvalidArgumentError, 'width 0 (the kernel rejects it too)');
  t.throws(() => minPitch(XR24, 2 ** 32), InvalidArgumentError);
  t.throws(() => minPitch(XR24, 64, 1), InvalidArgumentError, 'XRGB8888 has no plane 1');
  t.throws(() => minPitch(fourcc('R16'), 64), InvalidArgumentError, 'not in the kernel table');
  t.throws(() => planeSize(XR24, 64, 0, 0), InvalidArgumentError);
  t.throws(() => planeSize(XR24, 64, 64, 0, 255n), InvalidArgumentError, 'pitch below the minimum');
});
