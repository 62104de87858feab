// The demo client's picture (compositor-example/demo-client-scene.ts): frame N is a pure function
// of N and the size, a buffer that held frame A and is redrawn only in sceneDamage(A, B) holds
// exactly frame B, and the counter in the corner reads back as N.
import t from 'tap';
import fc from 'fast-check';
import { frameShown, paintScene, sceneDamage, sceneMismatches, scenePixel, squareRect, counterRect, OVERLAY_PIXEL, blendOver, overlayMismatches, overlayRect } from '../../compositor-example/demo-client-scene.js';

function frame(n: number, w: number, h: number, stride: number, base?: Uint8Array, rects = [{ x: 0, y: 0, width: w, height: h }]): Uint8Array {
  const px = base ? base.slice() : new Uint8Array(stride * h);
  paintScene(px, stride, n, w, h, rects);
  return px;
}

const reader = (px: Uint8Array, stride: number) => {
  const v = new DataView(px.buffer, px.byteOffset, px.byteLength);
  return (x: number, y: number): number => v.getUint32(y * stride + x * 4, true);
};

t.test('a partial redraw of sceneDamage(a, b) over frame a is frame b, pixel for pixel', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 16, max: 90 }), fc.integer({ min: 4, max: 70 }), fc.nat(5000), fc.nat(300), (w, h, a, step) => {
      const stride = (w + 3) * 4;
      const b = a + step;
      const partial = frame(b, w, h, stride, frame(a, w, h, stride), sceneDamage(a, b, w, h));
      return sceneMismatches(b, w, h, reader(partial, stride)).count === 0;
    }),
    { numRuns: 150 },
  );
  t.pass('150 random sizes and frame pairs');
});

t.test('the counter reads back the frame number; the square stays inside and below it', async (t) => {
  for (const [w, h] of [[1024, 768], [768, 1024], [160, 120], [16, 1]]) {
    const stride = w * 4;
    for (const n of [0, 1, 77, 40000, 65535]) {
      t.equal(frameShown(w, h, reader(frame(n, w, h, stride), stride)), n, `${w}x${h} frame ${n}`);
      const s = squareRect(n, w, h);
      t.ok(s.x >= 0 && s.y >= 0 && s.x + s.width <= w && s.y + s.height <= h, `${w}x${h} frame ${n}: square ${JSON.stringify(s)} on the surface`);
      if (h >= counterRect(w, h).height + s.height) t.ok(s.y >= counterRect(w, h).height, `${w}x${h} frame ${n}: the square is below the counter`);
    }
  }
  t.equal(scenePixel(3, 100, 100, 50, 99) & 0xffffff, 0x80ff60, 'the gradient: red by x, green by y, blue 0x60');
  t.not(frameShown(64, 64, reader(frame(5, 64, 64, 256), 256)), 6, 'frame 5 is not read as 6');
});

t.test('the overlay: premultiplied source-over, its rectangle centred and clear of the counter, mismatches within a tolerance', async (t) => {
  // alpha 0x80 over white: s + 255 x 127/255 = s + 127
  t.equal(blendOver(OVERLAY_PIXEL, 0xffffffff), 0xff9f7fdf >>> 0);
  t.equal(blendOver(OVERLAY_PIXEL, 0xff000000), 0xff200060 >>> 0, 'over black: the premultiplied colour itself');
  t.equal(blendOver(0xff123456, 0xffabcdef), 0xff123456 >>> 0, 'an opaque source covers');
  t.equal(blendOver(0x00000000, 0xffabcdef), 0xffabcdef >>> 0, 'a transparent source leaves the picture');
  const [w, h] = [96, 64];
  const o = overlayRect(w, h);
  t.same(o, { x: 37, y: 21, width: 21, height: 21 });
  t.ok(o.y >= counterRect(w, h).height, 'below the counter row');
  const n = 5;
  const composed = (x: number, y: number): number => (x >= o.x && y >= o.y && x < o.x + o.width && y < o.y + o.height ? blendOver(OVERLAY_PIXEL, scenePixel(n, w, h, x, y)) : scenePixel(n, w, h, x, y));
  t.equal(frameShown(w, h, composed), n, 'the counter reads through');
  t.equal(overlayMismatches(n, w, h, composed).count, 0, 'the reference blend matches itself');
  const offByOne = (x: number, y: number): number => composed(x, y) ^ 1; // blue channel one off
  t.equal(overlayMismatches(n, w, h, offByOne).count, 0, 'a rounding difference of one is tolerated');
  t.equal(overlayMismatches(n, w, h, offByOne, 0).count, w * h, 'and counted without tolerance');
  t.equal(overlayMismatches(n, w, h, (x, y) => scenePixel(n, w, h, x, y)).count, o.width * o.height, 'the frame without the overlay differs in every overlay pixel');
});
