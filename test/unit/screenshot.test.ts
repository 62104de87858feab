// compositor-example/screenshot.ts: writeback captures to PNG, checked by decoding the PNG
// again (pngjs's decoder) and comparing every pixel; padded strides, both formats, bad input.
import t from 'tap';
import { PNG } from 'pngjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fourcc } from '../../src/formats/index.js';
import { captureToPng, writeScreenshot, type PixelCapture } from '../../compositor-example/screenshot.js';
import { frameShown, sceneMismatches, paintScene } from '../../compositor-example/demo-client-scene.js';

/** A w x h capture with `stride` bytes per row; pixel (x, y) = f(x, y) as 0xAARRGGBB; padding bytes 0xee. */
function capture(w: number, h: number, stride: number, format: string, f: (x: number, y: number) => number): PixelCapture {
  const pixels = new Uint8Array(stride * h).fill(0xee);
  const v = new DataView(pixels.buffer);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) v.setUint32(y * stride + x * 4, f(x, y) >>> 0, true);
  return { width: w, height: h, format, stride, pixels };
}

/** The decoded PNG's pixel as 0xAARRGGBB. */
function decoded(png: PNG, x: number, y: number): number {
  const i = (y * png.width + x) * 4;
  return ((png.data[i + 3]! << 24) | (png.data[i]! << 16) | (png.data[i + 1]! << 8) | png.data[i + 2]!) >>> 0;
}

t.test('XRGB8888 with a padded stride: an RGB PNG that decodes to the same pixels, X ignored', async (t) => {
  const f = (x: number, y: number): number => ((x * 37 + y * 11) << 24) | (x << 16) | (y << 8) | ((x ^ y) & 0xff);
  const c = capture(61, 23, 64 * 4, 'XRGB8888', f);
  const bytes = captureToPng(c);
  t.same([...bytes.subarray(1, 4)], [...Buffer.from('PNG')], 'PNG signature');
  t.equal(bytes[25], 2, 'IHDR colour type 2: RGB, no alpha channel');
  const png = PNG.sync.read(bytes);
  t.same([png.width, png.height], [61, 23]);
  let bad = 0;
  for (let y = 0; y < 23; y++) for (let x = 0; x < 61; x++) if (decoded(png, x, y) !== ((f(x, y) | 0xff000000) >>> 0)) bad++;
  t.equal(bad, 0, 'every pixel round-trips; alpha is opaque whatever the X byte held');
});

t.test('ARGB8888 keeps alpha (fourcc code accepted as format)', async (t) => {
  const f = (x: number, y: number): number => (((x * 16) & 0xff) << 24) | 0x00204060 | y;
  const c = { ...capture(16, 4, 64, 'ARGB8888', f), format: fourcc('ARGB8888') };
  const bytes = captureToPng(c);
  t.equal(bytes[25], 6, 'IHDR colour type 6: RGBA');
  const png = PNG.sync.read(bytes);
  let bad = 0;
  for (let y = 0; y < 4; y++) for (let x = 0; x < 16; x++) if (decoded(png, x, y) !== f(x, y) >>> 0) bad++;
  t.equal(bad, 0, 'every pixel with its alpha');
});

t.test('a demo-client frame survives the PNG: its counter and every pixel read back', async (t) => {
  const [w, h, stride, n] = [200, 90, 832, 1234];
  const pixels = new Uint8Array(stride * h);
  paintScene(pixels, stride, n, w, h, [{ x: 0, y: 0, width: w, height: h }]);
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-shot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'frame.png');
  const written = writeScreenshot(file, { width: w, height: h, format: 'XRGB8888', stride, pixels });
  const bytes = readFileSync(file);
  t.equal(bytes.byteLength, written, 'the file holds what was reported written');
  const png = PNG.sync.read(bytes);
  const px = (x: number, y: number): number => decoded(png, x, y);
  t.equal(frameShown(w, h, px), n, 'the frame counter reads 1234');
  t.same(sceneMismatches(n, w, h, px), { count: 0, first: [] }, 'every pixel is frame 1234');
  t.not(frameShown(w, h, () => 0x123456), n, 'a picture without the counter is not read as frame 1234');
});

t.test('bad captures are RangeErrors before anything is encoded', async (t) => {
  const ok = capture(4, 4, 16, 'XRGB8888', () => 0);
  t.throws(() => captureToPng({ ...ok, format: 'NV12' }), RangeError, 'a format that is not XRGB/ARGB8888');
  t.throws(() => captureToPng({ ...ok, format: fourcc('RGB565') }), RangeError, 'RGB565 by code');
  t.throws(() => captureToPng({ ...ok, stride: 12 }), RangeError, 'a stride shorter than a row');
  t.throws(() => captureToPng({ ...ok, pixels: ok.pixels.subarray(0, 60) }), RangeError, 'too few bytes');
  t.throws(() => captureToPng({ ...ok, width: 0 }), RangeError, 'an empty picture');
});
