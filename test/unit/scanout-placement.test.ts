// placementFor (src/scanout/placement.ts), the placement of a fullscreen surface's buffer on the
// mode, as the kiosk uses it: the output transform (degrees counter-clockwise, as KMS rotation) composed with
// the inverse of the client's buffer transform (wl_output.transform values 0-7: flipped ones
// mirror before rotating, as DRM_MODE_REFLECT_X), the buffer scale, and centering.
import t from 'tap';
import { placementFor } from '../../src/scanout/index.js';
import { composeOrientations, inverseOrientation, orientationFromWl, type Orientation } from '../../src/scanout/placement.js';

const mode = { width: 1024, height: 768 };

t.test('no transform: the buffer centered, unrotated', async (t) => {
  t.same(placementFor({ width: 1024, height: 768 }, 0, 1, 0, mode), { dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 0 });
  t.same(placementFor({ width: 250, height: 250 }, 0, 1, 0, mode), { dst: { x: 387, y: 259, width: 250, height: 250 }, rotation: 0 });
});

t.test('an output rotated 90: a portrait buffer turned onto the landscape mode', async (t) => {
  t.same(placementFor({ width: 768, height: 1024 }, 0, 1, 90, mode), { dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 90 });
  t.same(placementFor({ width: 768, height: 1024 }, 0, 1, 270, mode), { dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 270 });
  t.same(placementFor({ width: 1024, height: 768 }, 0, 1, 180, mode), { dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 180 });
});

t.test('a client that rendered for the output transform (buffer transform = output transform) goes unrotated', async (t) => {
  for (const [wl, deg] of [[0, 0], [1, 90], [2, 180], [3, 270]] as const) {
    const p = placementFor({ width: 1024, height: 768 }, wl, 1, deg, mode);
    t.equal(p.rotation, 0, `output ${deg}, buffer transform ${wl}: rotation 0`);
    t.notOk(p.reflectX, 'no reflection');
    t.same(p.dst, { x: 0, y: 0, width: 1024, height: 768 }, 'the mode covered');
  }
});

t.test('a buffer transform alone is undone: rotations inverted, flips kept', async (t) => {
  t.equal(placementFor({ width: 768, height: 1024 }, 1, 1, 0, mode).rotation, 270, 'buffer 90 -> rotate 270');
  t.equal(placementFor({ width: 768, height: 1024 }, 3, 1, 0, mode).rotation, 90, 'buffer 270 -> rotate 90');
  for (const wl of [4, 5, 6, 7]) {
    const p = placementFor({ width: 1024, height: 1024 }, wl, 1, 0, { width: 1024, height: 1024 });
    t.same([p.rotation, p.reflectX], [(wl - 4) * 90, true], `flipped transform ${wl} is its own inverse`);
  }
  const f = placementFor({ width: 1024, height: 1024 }, 4, 1, 90, { width: 1024, height: 1024 });
  t.same([f.rotation, f.reflectX], [90, true], 'output 90 after an undone flip: mirror, then rotate 90');
});

t.test('buffer scale: the destination is the surface size', async (t) => {
  t.same(placementFor({ width: 2048, height: 1536 }, 0, 2, 0, mode).dst, { x: 0, y: 0, width: 1024, height: 768 });
  t.same(placementFor({ width: 1536, height: 2048 }, 0, 2, 90, mode).dst, { x: 0, y: 0, width: 1024, height: 768 });
});

t.test('orientations: the eight wl_output.transform values form a group under composition', async (t) => {
  const all = [0, 1, 2, 3, 4, 5, 6, 7].map(orientationFromWl);
  const key = (o: Orientation): string => `${o.flip ? 'F' : ''}${o.rot}`;
  t.same(all.map(key), ['0', '90', '180', '270', 'F0', 'F90', 'F180', 'F270']);
  const id: Orientation = { flip: false, rot: 0 };
  for (const a of all) {
    t.same(composeOrientations(a, inverseOrientation(a)), id, `${key(a)} after its inverse is the identity`);
    t.same(composeOrientations(inverseOrientation(a), a), id, `its inverse after ${key(a)} is the identity`);
    for (const b of all) for (const c of all) t.same(composeOrientations(composeOrientations(a, b), c), composeOrientations(a, composeOrientations(b, c)), 'associative');
  }
  // a flip then a rotation by 90 is not a rotation by 90 then a flip
  t.same(composeOrientations({ flip: false, rot: 90 }, { flip: true, rot: 0 }), { flip: true, rot: 90 });
  t.same(composeOrientations({ flip: true, rot: 0 }, { flip: false, rot: 90 }), { flip: true, rot: 270 });
});

t.test('bad transforms and scales are refused with a RangeError', async (t) => {
  t.throws(() => orientationFromWl(8), RangeError);
  t.throws(() => orientationFromWl(-1), RangeError);
  t.throws(() => placementFor({ width: 10, height: 10 }, 0, 0, 0, mode), RangeError);
  t.throws(() => placementFor({ width: 10, height: 10 }, 0, 1.5, 0, mode), RangeError);
});

t.test('a buffer larger than the mode is centred with a negative origin (the presenter clips or refuses it)', async (t) => {
  t.same(placementFor({ width: 1100, height: 800 }, 0, 1, 0, mode).dst, { x: -38, y: -16, width: 1100, height: 800 });
});
