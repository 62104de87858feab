// The scene's plane assignment as a pure search (scene-assign.ts), with fake verdicts and a fake
// atomic TEST_ONLY: best first (most pixels on planes), falling back surface by surface when the
// TEST_ONLY refuses, the z-order rule (a surface below a composed one it overlaps is composed),
// alpha over a surface on a plane that cannot blend, the cursor plane first for the cursor, the
// plane order by zpos, and the reasons each composed surface gets.
import t from 'tap';
import { assignScene, candidateAllowed, sceneCandidates, stackOrder, type SceneAssignPlane, type SceneAssignSurface, type SceneCandidate } from '../../src/scanout/scene-assign.js';
import { reason } from '../../src/scanout/reasons.js';

const MODE = { width: 1024, height: 768 };
// vkms: primary 32, overlays 35..56, cursor 59 (no zpos: stacks by id)
const VKMS: SceneAssignPlane[] = [
  { id: 59, type: 'cursor' },
  { id: 32, type: 'primary' },
  ...[35, 38, 41, 44, 47, 50, 53, 56].map((id) => ({ id, type: 'overlay' as const })),
];
const FULL = { x: 0, y: 0, width: 1024, height: 768 };
const ok = { ok: true, reasons: [] };
const no = (detail: string) => ({ ok: false, reasons: [reason('SCALING', detail)] });

function surf(x: number, y: number, w: number, h: number, more: Partial<SceneAssignSurface> = {}): SceneAssignSurface {
  return { dst: { x, y, width: w, height: h }, opaque: true, ...more };
}

t.test('plane order: (zpos, id); without zpos the cursor plane (highest id on vkms) is on top', async (t) => {
  t.same(stackOrder(VKMS).map((p) => p.id), [32, 35, 38, 41, 44, 47, 50, 53, 56, 59]);
  t.same(stackOrder([{ id: 5, type: 'primary', zpos: 2 }, { id: 6, type: 'overlay', zpos: 0 }, { id: 7, type: 'overlay', zpos: 1 }]).map((p) => p.id), [6, 7, 5], 'a zpos property decides');
});

t.test('best first: every surface on a plane in stacking order, one TEST_ONLY', async (t) => {
  const tested: SceneCandidate[] = [];
  const surfaces = [surf(0, 0, 1024, 768), surf(100, 100, 200, 200, { opaque: false }), surf(50, 50, 64, 64, { cursor: true })];
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces, verdict: () => ok, test: (c) => (tested.push(c), { ok: true }) });
  t.same(a.planes, [32, 35, 59], 'fullscreen on the primary, the ARGB surface on the lowest overlay above it, the cursor on the cursor plane');
  t.equal(a.compositePlane, undefined, 'nothing composed');
  t.equal(a.tests, 1, 'one TEST_ONLY');
  t.same(tested.length, 1);
  t.same(a.reasons, [[], [], []]);
});

t.test('fallback: a refused TEST_ONLY leads to the next best, surface by surface', async (t) => {
  const surfaces = [surf(0, 0, 1024, 768), surf(100, 100, 300, 300), surf(600, 100, 100, 100)];
  const tested: SceneCandidate[] = [];
  // the kernel refuses any state with two overlays (a bandwidth limit, say)
  const a = assignScene({
    mode: MODE,
    planes: VKMS,
    surfaces,
    verdict: () => ok,
    test: (c) => {
      tested.push(c);
      const overlays = c.planes.filter((p) => p !== undefined && p !== 32).length;
      return overlays >= 2 ? { ok: false, reason: reason('TEST_ONLY', 'two overlays refused', { errno: 'EINVAL' }) } : { ok: true };
    },
  });
  t.ok(a.tests >= 2, `more than one TEST_ONLY (${a.tests})`);
  const overlays = a.planes.filter((p) => p !== undefined && p !== 32).length;
  t.equal(overlays, 1, 'one overlay kept');
  t.equal(a.planes[1] !== undefined ? a.planes[2] : a.planes[1], undefined, 'the other surface composed');
  t.equal(a.planes[1], 35, 'the bigger surface (more pixels) keeps its overlay');
  t.equal(a.compositePlane, 32, 'the composite on the primary');
  t.equal(a.planes[0], undefined, 'the fullscreen surface is composed with it (the composite takes the primary)');
  t.not(tested[0]!.planes.includes(undefined), true, 'the first candidate tested had every surface on a plane');
  // first candidate had all on planes: the best
  t.same(tested[0]!.planes, [32, 35, 38]);
  const composed = a.planes.findIndex((p, i) => i > 0 && p === undefined);
  t.equal(a.reasons[composed]![0]!.code, 'TEST_ONLY', 'its reason: the TEST_ONLY refused it on a plane');
});

t.test('z-order: a surface below a composed surface it overlaps is composed too', async (t) => {
  // surface 2 (on top, overlapping surface 1) cannot go on any plane (it needs scaling)
  const surfaces = [surf(0, 0, 1024, 768), surf(100, 100, 300, 300), surf(200, 200, 300, 300), surf(800, 600, 100, 100)];
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces, verdict: (i) => (i === 2 ? no('needs scaling') : ok), test: () => ({ ok: true }) });
  t.equal(a.planes[2], undefined, 'the scaled surface is composed');
  t.equal(a.planes[1], undefined, 'the surface beneath it that it overlaps is composed too');
  t.not(a.planes[3], undefined, 'the surface above that overlaps nothing composed keeps a plane');
  t.equal(a.compositePlane, 32);
  t.equal(a.reasons[1]![0]!.code, 'Z_ORDER', 'its reason is Z_ORDER');
  t.equal(a.reasons[2]![0]!.code, 'SCALING', 'the scaled one says SCALING');
  for (const c of sceneCandidates({ mode: MODE, planes: VKMS, surfaces, verdict: (i) => (i === 2 ? no('x') : ok) })) {
    t.notOk(c.planes[1] !== undefined && c.planes[2] === undefined, 'no candidate puts surface 1 on a plane under composed surface 2') ;
    if (c.planes[1] !== undefined && c.planes[2] === undefined) break;
  }
});

t.test('more surfaces than planes: the lowest ones share the composite, the top ones keep planes', async (t) => {
  // 12 small non-overlapping surfaces, 10 planes: the composite takes the primary, 8 overlays + cursor
  const surfaces = Array.from({ length: 12 }, (_, i) => surf((i % 6) * 160, Math.floor(i / 6) * 300, 150, 150));
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces, verdict: (i, p) => (p === 59 ? no('cursor') : ok), test: () => ({ ok: true }) });
  const onPlanes = a.planes.filter((p) => p !== undefined);
  t.equal(onPlanes.length, 8, 'eight surfaces on the eight overlays');
  t.equal(a.compositePlane, 32, 'the rest composed on the primary');
  t.equal(new Set(onPlanes).size, 8, 'no plane twice');
  const composed = a.planes.map((p, i) => (p === undefined ? i : -1)).filter((i) => i >= 0);
  t.equal(composed.length, 4);
  for (const i of composed) t.equal(a.reasons[i]![0]!.code, 'NO_PLANE_LEFT', `surface ${i}: NO_PLANE_LEFT`);
  // planes increase with the surfaces' order
  const seq = onPlanes as number[];
  t.same(seq, [...seq].sort((x, y) => x - y), 'planes follow the surfaces bottom to top');
});

t.test('the cursor surface tries the cursor plane first; elsewhere an overlay', async (t) => {
  const surfaces = [surf(0, 0, 1024, 768), surf(10, 10, 64, 64, { cursor: true, opaque: false })];
  const first = sceneCandidates({ mode: MODE, planes: VKMS, surfaces, verdict: () => ok })[0]!;
  t.same(first.planes, [32, 59], 'cursor plane first');
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces, verdict: (i, p) => (i === 1 && p === 59 ? no('too big') : ok), test: () => ({ ok: true }) });
  t.same(a.planes, [32, 35], 'the cursor plane refused: an overlay');
  const b = assignScene({ mode: MODE, planes: VKMS, surfaces, verdict: () => ok, test: (c) => (c.planes[1] === 59 ? { ok: false, reason: reason('TEST_ONLY', 'no') } : { ok: true }) });
  t.same(b.planes, [32, 35], 'the cursor plane refused by the TEST_ONLY: an overlay');
  t.equal(b.tests, 2);
});

t.test('alpha: a non-opaque surface over another needs a plane that blends premultiplied', async (t) => {
  const planes: SceneAssignPlane[] = [{ id: 1, type: 'primary' }, { id: 2, type: 'overlay', premultiplied: false }];
  const a = assignScene({ mode: MODE, planes, surfaces: [surf(0, 0, 1024, 768), surf(10, 10, 100, 100, { opaque: false })], verdict: () => ok, test: () => ({ ok: true }) });
  t.same(a.planes, [undefined, undefined], 'both composed');
  t.equal(a.reasons[1]![0]!.code, 'ALPHA');
  const b = assignScene({ mode: MODE, planes, surfaces: [surf(0, 0, 1024, 768), surf(10, 10, 100, 100, { opaque: true })], verdict: () => ok, test: () => ({ ok: true }) });
  t.same(b.planes, [1, 2], 'an opaque one goes on the overlay');
});

t.test('composeOnly surfaces (fills, non-coherent) never take a plane; their reasons are kept', async (t) => {
  const fill = reason('SOLID_FILL', 'a solid colour');
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces: [surf(0, 0, 1024, 768, { composeOnly: [fill] }), surf(100, 100, 64, 64)], verdict: () => ok, test: () => ({ ok: true }) });
  t.same(a.planes, [undefined, 35], 'the fill composed on the primary, the surface on an overlay above');
  t.equal(a.compositePlane, 32);
  t.equal(a.reasons[0]![0]!.code, 'SOLID_FILL');
});

t.test('a TEST_ONLY budget: after it, everything composed', async (t) => {
  let n = 0;
  const a = assignScene({ mode: MODE, planes: VKMS, surfaces: [surf(0, 0, 1024, 768), surf(1, 1, 10, 10)], verdict: () => ok, test: () => (n++, { ok: false, reason: reason('TEST_ONLY', 'never') }), maxTests: 3 });
  t.equal(n, 3, 'three TEST_ONLY');
  t.same(a.planes, [undefined, undefined]);
  t.equal(a.compositePlane, 32);
});

t.test('candidateAllowed: the rules a warm start must keep', async (t) => {
  const surfaces = [surf(0, 0, 1024, 768), surf(100, 100, 200, 200), surf(150, 150, 64, 64, { cursor: true })];
  const input = { planes: VKMS, surfaces };
  t.ok(candidateAllowed(input, { planes: [32, 35, 59], compositePlane: undefined }), 'in stacking order');
  t.notOk(candidateAllowed(input, { planes: [32, 59, 35], compositePlane: undefined }), 'out of stacking order');
  t.notOk(candidateAllowed(input, { planes: [32, 35, 35], compositePlane: undefined }), 'a plane twice');
  t.notOk(candidateAllowed(input, { planes: [undefined, 35, 59], compositePlane: undefined }), 'composed without a composite plane');
  t.ok(candidateAllowed(input, { planes: [undefined, 35, 59], compositePlane: 32 }), 'the background composed on the primary');
  t.notOk(candidateAllowed(input, { planes: [32, 35, undefined], compositePlane: 32 }), 'a surface on the composite plane');
  t.notOk(candidateAllowed(input, { planes: [undefined, 35, undefined], compositePlane: 32 }), 'a surface on a plane below a composed one it overlaps');
  const apart = { planes: VKMS, surfaces: [surf(0, 0, 1024, 768), surf(100, 100, 200, 200), surf(600, 500, 64, 64)] };
  t.ok(candidateAllowed(apart, { planes: [undefined, 35, undefined], compositePlane: 32 }), 'no overlap: allowed');
  for (const c of sceneCandidates({ mode: MODE, planes: VKMS, surfaces, verdict: () => ok })) if (!candidateAllowed(input, c)) t.fail(`the search offered a candidate the rules refuse: ${JSON.stringify(c)}`);
  t.pass('every candidate of the search keeps the rules');
});
