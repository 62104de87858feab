// The kiosk's default cursor (compositor-example/cursor.ts): the arrow image and its hotspot, how
// it is written into a buffer with a driver's pitch, the buffer size from the device's cursor size,
// the scene surface (cursor: true, the hotspot at the centre of the mode, turned with the output),
// the buffer's single owner, and nothing at all with the hide option. The dumb buffer itself
// needs a KMS device: test/vkms/kiosk-cursor.test.ts.
import t from 'tap';
import { fourcc } from '../../src/formats/index.js';
import type { ScanoutBuffer } from '../../src/scanout/index.js';
import { ARROW_SIZE, KioskCursor, cursorBufferSize, defaultCursorImage, writeCursorImage, type CursorImage } from '../../compositor-example/cursor.js';

const ARGB8888 = fourcc('ARGB8888');
const at = (img: CursorImage, x: number, y: number): number => img.pixels[y * img.width + x]!;

t.test('the arrow: ARGB8888, its tip the hotspot, opaque outline and fill, transparent elsewhere', async (t) => {
  const img = defaultCursorImage(24, 24);
  t.equal(img.width, 24);
  t.equal(img.height, 24);
  t.equal(img.pixels.length, 24 * 24);
  t.same([img.hotspotX, img.hotspotY], [0, 0], 'the hotspot is the tip, top left');
  t.equal(at(img, 0, 0), 0xff000000, 'the tip is opaque black');
  t.equal(at(img, 1, 3), 0xffffffff, 'inside the arrow: opaque white');
  t.equal(at(img, 0, 10), 0xff000000, 'its left edge: black');
  t.equal(at(img, 11, 0), 0, 'right of the tip: transparent');
  t.equal(at(img, 23, 23), 0, 'the corner beyond the arrow: transparent');
  const alphas = new Set([...img.pixels].map((p) => p >>> 24));
  t.same([...alphas].sort((a, b) => a - b), [0, 255], 'every pixel fully transparent or fully opaque (premultiplied trivially)');
  const opaque = [...img.pixels].filter((p) => p >>> 24 === 255).length;
  t.ok(opaque > 60 && opaque < ARROW_SIZE.width * ARROW_SIZE.height, `the arrow covers part of its box (${opaque} px)`);
  t.throws(() => defaultCursorImage(8, 8), RangeError, 'smaller than the arrow');
});

t.test('writeCursorImage: rows at the pitch, little-endian ARGB8888, the padding untouched', async (t) => {
  const img = defaultCursorImage(24, 24);
  const pitch = 128;
  const dst = new Uint8Array(pitch * 24).fill(0xab);
  writeCursorImage(img, dst, pitch);
  t.same([...dst.subarray(0, 4)], [0, 0, 0, 255], 'pixel (0, 0): B G R A = black, opaque');
  t.same([...dst.subarray(3 * pitch + 4, 3 * pitch + 8)], [255, 255, 255, 255], 'pixel (1, 3): white');
  t.same([...dst.subarray(23 * pitch + 23 * 4, 23 * pitch + 24 * 4)], [0, 0, 0, 0], 'pixel (23, 23): transparent');
  t.ok(dst.subarray(24 * 4, pitch).every((b) => b === 0xab), 'bytes between the row and the pitch are not written');
  t.throws(() => writeCursorImage(img, dst, 64), RangeError, 'a pitch below a row');
  t.throws(() => writeCursorImage(img, new Uint8Array(100), 96), RangeError, 'a destination too small');
});

t.test('the buffer size: the device cursor size, 64 when it does not say, at most 256', async (t) => {
  t.same(cursorBufferSize(64, 64), { width: 64, height: 64 });
  t.same(cursorBufferSize(null, null), { width: 64, height: 64 });
  t.same(cursorBufferSize(undefined, 128), { width: 64, height: 128 });
  t.same(cursorBufferSize(512, 512), { width: 256, height: 256 });
});

/** A stand-in allocator: records each image it was given and each close. */
function fakeAllocator(): { allocate: (img: CursorImage) => { buffer: ScanoutBuffer; close(): void }; images: CursorImage[]; buffers: ScanoutBuffer[]; closes: number[] } {
  const images: CursorImage[] = [];
  const buffers: ScanoutBuffer[] = [];
  const closes: number[] = [];
  return {
    images,
    buffers,
    closes,
    allocate: (img) => {
      const i = images.push(img) - 1;
      closes[i] = 0;
      const buffer: ScanoutBuffer = { kind: 'dmabuf', width: img.width, height: img.height, format: ARGB8888, modifier: 0n, planes: [{ fd: 99, offset: 0, stride: img.width * 4 }] };
      buffers.push(buffer);
      return { buffer, close: () => void closes[i]!++ };
    },
  };
}

t.test('the scene surface: cursor: true, the buffer the kiosk made, the hotspot at the centre of the mode', async (t) => {
  const fake = fakeAllocator();
  const c = new KioskCursor({ mode: { width: 1024, height: 768 }, cursorWidth: 64, cursorHeight: 64, allocate: fake.allocate });
  t.equal(fake.images.length, 1, 'one buffer made');
  t.same([fake.images[0]!.width, fake.images[0]!.height], [64, 64], 'of the device cursor size');
  const s = c.sceneSurface();
  t.ok(s, 'a scene surface');
  t.equal(s!.cursor, true, 'marked as the cursor');
  t.equal(s!.content, fake.buffers[0], 'its content is the buffer the kiosk made');
  t.equal((s!.content as ScanoutBuffer).format, ARGB8888);
  t.same(s!.dst, { x: 512, y: 384, width: 64, height: 64 }, 'the tip (hotspot 0,0) at the centre');
  t.same(c.position, { x: 512, y: 384 });
  t.equal(s!.opaque, false, 'blended: it has alpha');
  t.equal(s!.damage, undefined, 'all of it damaged before it was presented');
  c.presented();
  t.same(c.sceneSurface()!.damage, [], 'nothing damaged after: the image never changes');
  c.close();
  c.close();
  t.same(fake.closes, [1], 'the buffer closed once, however often close() is called');
  t.equal(c.sceneSurface(), undefined, 'no surface after close');
});

t.test('turned with the output: a 90-degree output swaps the destination, the hotspot stays at the centre', async (t) => {
  const fake = fakeAllocator();
  const c = new KioskCursor({ mode: { width: 1024, height: 768 }, cursorWidth: 64, cursorHeight: 32, rotation: 90, allocate: fake.allocate });
  const s = c.sceneSurface()!;
  t.equal(s.rotation, 90);
  t.same([s.dst.width, s.dst.height], [32, 64], 'the rotated size');
  // counter-clockwise by 90, the buffer's top-left pixel lands at the bottom-left of the rotated rectangle
  t.same({ x: s.dst.x, y: s.dst.y }, { x: 512, y: 384 - 63 });
  t.same(c.position, { x: 512, y: 384 });
  c.close();
});

t.test('hidden (--hide-cursor): nothing allocated, no scene surface', async (t) => {
  const fake = fakeAllocator();
  const c = new KioskCursor({ hidden: true, mode: { width: 1024, height: 768 }, allocate: fake.allocate });
  t.equal(fake.images.length, 0, 'no buffer made');
  t.equal(c.sceneSurface(), undefined);
  t.equal(c.position, undefined);
  t.equal(c.image, undefined);
  c.close();
  t.same(fake.closes, [], 'nothing to close');
});

t.test('moveTo: the hotspot goes to the CRTC point, only the destination changes (same buffer, no new damage)', async (t) => {
  const fake = fakeAllocator();
  const c = new KioskCursor({ mode: { width: 1024, height: 768 }, cursorWidth: 64, cursorHeight: 32, rotation: 90, allocate: fake.allocate });
  const before = c.sceneSurface()!;
  c.presented();
  c.moveTo(100.7, 200.2);
  t.same(c.position, { x: 100, y: 200 }, 'the hotspot on the pixel under the point');
  const s = c.sceneSurface()!;
  t.same(s.dst, { x: 100, y: 200 - 63, width: 32, height: 64 }, 'the rotated rectangle moved with it');
  t.equal(s.content, before.content, 'the same buffer');
  t.same([s.src, s.rotation, s.cursor], [before.src, before.rotation, true], 'source, rotation and cursor mark kept');
  t.same(s.damage, [], 'its content did not change: nothing to compose again');
  t.equal(fake.images.length, 1, 'nothing allocated');
  c.close();
});
