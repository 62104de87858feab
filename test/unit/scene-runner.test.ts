// The scene path (SceneRunner, the engine of Presenter.presentScene) on the host, against a fake
// output (TEST_ONLY and commits recorded, a commit refused on demand), a fake checker and kernel,
// a real CopyRing on ArrayBuffers and a recording composer. Proves: a new shape searches (per-plane
// verdicts, then TEST_ONLY), the same shape with new buffers makes no TEST_ONLY and keeps the
// planes; a commit refused after the TEST_ONLY composes the surface whose buffer is new, teaches
// the checker (COMMIT) and commits again; every buffer's locks come back (a composed buffer's
// right after its composition, a buffer on a plane after the flip that replaced it); the composite
// gets only the damage the ring buffer lacks.
import t from 'tap';
import { closeSync, openSync } from 'node:fs';
import { SystemError } from '../../src/errors.js';
import { fourcc } from '../../src/formats/index.js';
import { CopyRing } from '../../src/scanout/copy-ring.js';
import type { PresenterRingBuffer } from '../../src/scanout/presenter-ring.js';
import { reason } from '../../src/scanout/reasons.js';
import { SceneRunner, type SceneHost, type ScenePlaneInfo } from '../../src/scanout/scene.js';
import type { ComposeJob, SceneSurface } from '../../src/scanout/scene-types.js';
import type { ScanoutBuffer } from '../../src/scanout/verdict-buffer.js';
import type { Placement } from '../../src/scanout/placement.js';

const W = 256;
const H = 128;
const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const FULL = { x: 0, y: 0, width: W, height: H };

interface Fake {
  host: SceneHost;
  tests: number;
  commits: Array<Array<{ plane: number; fb: number }>>;
  refuseNext: number;
  learned: string[];
  locks: Map<ScanoutBuffer, number>;
  released: string[];
  jobs: ComposeJob[];
  verdicts: number;
  close(): void;
}

function fake(t: { teardown(fn: () => void): void }): Fake {
  const devNull = openSync('/dev/null', 'r'); // a fd whose "writes" are done (poll: readable)
  let fbIds = 100;
  const fbs = new Map<ScanoutBuffer, { id: number }>();
  const planes = [
    { id: 1, type: 'primary' },
    { id: 2, type: 'overlay' },
    { id: 3, type: 'overlay' },
    { id: 9, type: 'cursor' },
  ] as unknown as ScenePlaneInfo[];
  let ring: CopyRing<PresenterRingBuffer> | undefined;
  const f: Fake = {
    tests: 0,
    commits: [],
    refuseNext: 0,
    learned: [],
    locks: new Map(),
    released: [],
    jobs: [],
    verdicts: 0,
    host: undefined as unknown as SceneHost,
    close() {
      ring?.close();
      closeSync(devNull);
    },
  };
  const resolved = (p: Placement, b: ScanoutBuffer) => ({ crtc: 7, src: p.src ?? { x: 0, y: 0, width: b.width, height: b.height }, dst: p.dst!, rotation: 1, clipped: false });
  f.host = {
    crtcId: 7,
    modeSize: { width: W, height: H },
    output: {
      fullMode: { crtc: 7, src: FULL, dst: FULL, rotation: 1, clipped: false },
      test: () => {
        f.tests++;
        return { ok: true };
      },
      commit: (next: Array<{ plane: { id: number }; fb: { id: number } }>) => {
        if (f.refuseNext > 0) {
          f.refuseNext--;
          throw new SystemError('atomic commit: EINVAL', { code: 'EINVAL', errno: 22, syscall: 'ioctl' });
        }
        f.commits.push(next.map((n) => ({ plane: n.plane.id, fb: n.fb.id })));
        return { flip: Promise.resolve([{ timestampNs: 1n, tvSec: 0, tvUsec: 0, sequence: 1 }]), fences: [] };
      },
    } as unknown as SceneHost['output'],
    checker: {
      device: {},
      knownBad: { has: () => false },
      checkScanout: (b: ScanoutBuffer, plane: number, p: Placement) => {
        f.verdicts++;
        // planes here cannot scale
        const dst = p.dst!;
        const src = p.src ?? { width: b.width, height: b.height };
        if (src.width !== dst.width || src.height !== dst.height) return { ok: false, reasons: [reason('SCALING', 'no scaling')], notes: [], plane, stage: 'static' };
        if (plane === 9 && b.width > 64) return { ok: false, reasons: [reason('SIZE', 'cursor too big')], notes: [], plane, stage: 'static' };
        return { ok: true, reasons: [], notes: [], plane, placement: resolved(p, b), stage: 'kernel' };
      },
      commitRefused: (b: ScanoutBuffer, plane: number) => {
        f.learned.push(`${b.name}@${plane}`);
        return { ok: false, reasons: [reason('COMMIT', 'refused')], notes: [], plane, stage: 'kernel' };
      },
    } as unknown as SceneHost['checker'],
    kernel: {
      framebufferOf: (b: ScanoutBuffer) => fbs.get(b),
      framebuffer: (b: ScanoutBuffer) => {
        if (!fbs.has(b)) fbs.set(b, { id: fbIds++ });
        return { ok: true };
      },
    } as unknown as SceneHost['kernel'],
    planes,
    primary: planes[0]!,
    backgroundFb: () => ({ id: 1 }) as never,
    source: (b) => ({ surface: { memory: new ArrayBuffer(b.width * b.height * 4), format: b.format, stride: b.width * 4, width: b.width, height: b.height }, guarded: false }),
    ring: () =>
      (ring ??= new CopyRing<PresenterRingBuffer>({
        width: W,
        height: H,
        format: XR24,
        buffers: 2,
        allocate: (spec) => ({ memory: new ArrayBuffer(W * H * 4), format: XR24, stride: W * 4, width: W, height: H, fb: { id: 50 + spec.index } as never, close() {} }) as unknown as PresenterRingBuffer,
      })),
    compose: async (job) => {
      f.jobs.push(job);
      return { bytes: job.clip.reduce((n, r) => n + r.width * r.height * 4, 0) };
    },
    release: (b) => f.released.push(b.name ?? '?'),
    unlock: (b) => f.locks.set(b, (f.locks.get(b) ?? 0) - 1),
    presentation: () => ({ timestampNs: 1n, tvSec: 0, tvUsec: 0, sequence: 1, refreshNs: 16_666_667, flags: 0 }),
    takeSingleOnScreen: () => undefined,
    assertOpen: () => undefined,
    closed: false,
  };
  // the framebuffer a verdict would have made
  const check = f.host.checker.checkScanout.bind(f.host.checker);
  (f.host.checker as { checkScanout: unknown }).checkScanout = (b: ScanoutBuffer, plane: number, p: Placement) => {
    const v = check(b, plane, p);
    if (v.ok) f.host.kernel.framebuffer(b, b);
    return v;
  };
  t.teardown(() => f.close());
  (f as { devNull?: number }).devNull = devNull;
  return f;
}

function buffer(f: Fake, name: string, w: number, h: number, format = XR24): ScanoutBuffer {
  const fd = (f as { devNull?: number }).devNull!;
  return { kind: 'dmabuf', width: w, height: h, format, modifier: 0n, planes: [{ fd, offset: 0, stride: w * 4 }], name };
}

/** What presentScene does before the runner: one lock per buffer of the frame. */
async function present(f: Fake, runner: SceneRunner, surfaces: SceneSurface[]) {
  for (const s of surfaces) if ((s.content as { kind: string }).kind !== 'solid') f.locks.set(s.content as ScanoutBuffer, (f.locks.get(s.content as ScanoutBuffer) ?? 0) + 1);
  return runner.present({ surfaces });
}

t.test('a new shape searches; the same shape with new buffers makes no TEST_ONLY and keeps the planes', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const bg = buffer(f, 'bg', W, H);
  const a1 = buffer(f, 'a1', 64, 32, AR24);
  const r1 = await present(f, runner, [{ id: 'bg', content: bg, dst: FULL }, { id: 'a', content: a1, dst: { x: 10, y: 10, width: 64, height: 32 } }]);
  t.same(r1.surfaces.map((s) => s.plane), [1, 2], 'bg on the primary, a on the first overlay');
  t.ok(f.tests >= 1, 'the search made a TEST_ONLY');
  t.equal(runner.counters.searches, 1);
  const tests = f.tests;
  const verdicts = f.verdicts;
  const a2 = buffer(f, 'a2', 64, 32, AR24);
  const r2 = await present(f, runner, [{ id: 'bg', content: bg, dst: FULL, damage: [] }, { id: 'a', content: a2, dst: { x: 10, y: 10, width: 64, height: 32 } }]);
  t.same(r2.surfaces.map((s) => s.plane), [1, 2], 'the same planes');
  t.equal(f.tests, tests, 'no TEST_ONLY');
  t.equal(f.verdicts, verdicts, 'no verdict');
  t.equal(runner.counters.searches, 1, 'no search');
  t.equal(f.commits.length, 2, 'one commit per frame');
  t.same(f.commits[1]!.map((c) => c.plane), [1, 2], 'both planes in the one commit');
  // locks: a1 left the screen with frame 2's flip: back to 0, released; bg and a2 still held once
  t.equal(f.locks.get(a1), 0, 'a1 unlocked after the flip that replaced it');
  t.same(f.released, ['a1'], 'and released');
  t.equal(f.locks.get(bg), 1, 'bg held by its latest frame only');
  t.equal(f.locks.get(a2), 1, 'a2 held while on screen');
  runner.close();
  t.equal(f.locks.get(bg), 0, 'close: bg unlocked');
  t.equal(f.locks.get(a2), 0, 'close: a2 unlocked');
});

t.test('a commit refused after the TEST_ONLY: the new buffer is composed, the checker learns, the frame commits', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const bg = buffer(f, 'bg', W, H);
  const a1 = buffer(f, 'a1', 64, 32);
  const dst = { x: 10, y: 10, width: 64, height: 32 };
  await present(f, runner, [{ id: 'bg', content: bg, dst: FULL }, { id: 'a', content: a1, dst }]);
  const a2 = buffer(f, 'a2', 64, 32);
  f.refuseNext = 1;
  const r = await present(f, runner, [{ id: 'bg', content: bg, dst: FULL, damage: [] }, { id: 'a', content: a2, dst }]);
  t.ok(r.committed, 'the frame went on');
  t.same(f.learned, ['a2@2'], 'the checker learned the refusal of the new buffer on its plane');
  t.equal(r.surfaces[1]!.path, 'composed', 'a2 composed');
  t.equal(r.surfaces[1]!.reasons[0]!.code, 'COMMIT', 'reason COMMIT');
  t.equal(r.surfaces[0]!.path, 'composed', 'bg beneath it composed too (the composite takes the primary)');
  t.equal(runner.counters.commitFailures, 1);
  t.equal(f.locks.get(a2), 0, 'a composed buffer is unlocked once its composition is done');
  t.ok(f.released.includes('a2'), 'and released to its client');
  t.equal(f.jobs.length, 1, 'one composition');
  t.same(f.jobs[0]!.clip, [FULL], 'the first composite: the whole mode');
  runner.close();
});

t.test('the composite gets the damage the ring buffer lacks', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const bg = buffer(f, 'bg', W, H);
  const small = buffer(f, 'small', 32, 16);
  const scaled = { x: 100, y: 50, width: 64, height: 32 }; // needs scaling: composed, bg with it
  const frame = (damage?: Array<{ x: number; y: number; width: number; height: number }>) => [
    { id: 'bg', content: bg, dst: FULL, ...(damage ? { damage } : {}) },
    { id: 'v', content: small, dst: scaled, damage: [] },
  ];
  const r1 = await present(f, runner, frame());
  t.same(r1.surfaces.map((s) => s.path), ['composed', 'composed']);
  t.equal(r1.bytesComposed, W * H * 4, 'frame 1: all');
  const d2 = { x: 0, y: 0, width: 8, height: 8 };
  const r2 = await present(f, runner, frame([d2]));
  t.equal(r2.bytesComposed, W * H * 4, 'frame 2: the second ring buffer holds nothing: all');
  const d3 = { x: 200, y: 100, width: 8, height: 8 };
  const r3 = await present(f, runner, frame([d3]));
  t.same(f.jobs[2]!.clip, [d2, d3], 'frame 3: frames 2 and 3 damage (the buffer holds frame 1)');
  t.equal(r3.bytesComposed, 2 * 8 * 8 * 4);
  t.equal(f.locks.get(bg), 0, 'composed buffers hold no lock after their composition');
  t.equal(runner.counters.testOnly, 1, 'one TEST_ONLY: the search; the same shape after it none');
  runner.close();
});

t.test('a fill composes as a solid layer; the cursor surface takes the cursor plane', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const cur = buffer(f, 'cursor', 32, 32, AR24);
  const r = await present(f, runner, [
    { id: 'fill', content: { kind: 'solid', r: 0, g: 0, b: 0.5, a: 1 }, dst: FULL },
    { id: 'cursor', content: cur, dst: { x: 5, y: 5, width: 32, height: 32 }, cursor: true },
  ]);
  t.equal(r.surfaces[0]!.path, 'composed');
  t.equal(r.surfaces[0]!.reasons[0]!.code, 'SOLID_FILL');
  t.equal(r.surfaces[1]!.plane, 9, 'cursor plane');
  t.same(f.jobs[0]!.layers.map((l) => l.kind), ['solid'], 'one solid layer');
  runner.close();
});

t.test('composed surfaces restacked: the whole composite again', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const a = buffer(f, 'a', 32, 16);
  const b = buffer(f, 'b', 32, 16);
  // both scaled (composed), overlapping
  const da = { x: 10, y: 10, width: 64, height: 32 };
  const db = { x: 40, y: 20, width: 64, height: 32 };
  const A = (damage?: Array<{ x: number; y: number; width: number; height: number }>) => ({ id: 'a', content: a, dst: da, ...(damage ? { damage } : {}) });
  const B = () => ({ id: 'b', content: b, dst: db, damage: [] });
  await present(f, runner, [A(), B()]);
  await present(f, runner, [A([{ x: 0, y: 0, width: 2, height: 2 }]), B()]);
  const r3 = await present(f, runner, [B(), A([])]);
  t.same(r3.surfaces.map((s) => s.id), ['b', 'a'], 'restacked');
  t.same(f.jobs[2]!.clip, [FULL], 'the whole composite (its buffer holds the other stacking)');
  runner.close();
});

t.test('a composition that fails on a layer tells that layer\'s source (a truncated wl_shm pool), and the frame fails', async (t) => {
  const f = fake(t);
  const seen: unknown[] = [];
  const failing: SceneHost = {
    ...f.host,
    source: (b) => ({ surface: { memory: new ArrayBuffer(b.width * b.height * 4), format: b.format, stride: b.width * 4, width: b.width, height: b.height }, guarded: true, failed: (e) => seen.push(e) }),
    compose: async (job) => {
      t.equal((job.layers[0] as { guarded?: boolean }).guarded, true, 'the layer is guarded');
      throw Object.assign(new SystemError('SIGBUS', { code: 'EFAULT', errno: 14, syscall: 'SIGBUS' }), { layer: 0 });
    },
  };
  const runner = new SceneRunner(failing);
  const shm = { ...buffer(f, 'shm', 32, 16), kind: 'shm' as const } as ScanoutBuffer;
  await t.rejects(present(f, runner, [{ id: 's', content: shm, dst: { x: 0, y: 0, width: 64, height: 32 } }]), { code: 'EFAULT' });
  t.equal(seen.length, 1, 'the source heard of the failure');
  t.equal(f.locks.get(shm), 0, 'its lock came back');
  runner.close();
});

t.test('a frame where only surfaces on planes changed composes nothing: the composite on screen is committed again', async (t) => {
  const f = fake(t);
  const runner = new SceneRunner(f.host);
  const bg = buffer(f, 'bg', W, H);
  const small = buffer(f, 'small', 32, 16);
  const scaled = { x: 100, y: 50, width: 64, height: 32 }; // needs scaling: composed, bg with it
  const odst = { x: 8, y: 8, width: 16, height: 16 };
  const frame = (o: ScanoutBuffer, damage?: Array<{ x: number; y: number; width: number; height: number }>) => [
    { id: 'bg', content: bg, dst: FULL, damage: damage ?? [] },
    { id: 'v', content: small, dst: scaled, damage: [] },
    { id: 'o', content: o, dst: odst },
  ];
  const o1 = buffer(f, 'o1', 16, 16, AR24);
  const r1 = await present(f, runner, frame(o1, [FULL]));
  t.same(r1.surfaces.map((s) => s.path), ['composed', 'composed', 'plane'], 'bg and v composed, o on a plane');
  t.equal(f.jobs.length, 1, 'frame 1 composed');
  const fb1 = f.commits[0]!.find((c) => c.plane === 1)!.fb;
  const o2 = buffer(f, 'o2', 16, 16, AR24);
  const r2 = await present(f, runner, frame(o2));
  t.ok(r2.committed, 'frame 2 committed (o has a new buffer)');
  t.equal(f.jobs.length, 1, 'frame 2 composed nothing');
  t.equal(r2.bytesComposed, 0, 'no bytes composed');
  t.equal(f.commits[1]!.find((c) => c.plane === 1)!.fb, fb1, 'the composite of frame 1 stays on the primary');
  t.equal(f.locks.get(bg), 0, 'the composed buffers hold no lock');
  t.equal(f.locks.get(o1), 0, 'o1 unlocked after the flip that replaced it');
  // the composite damaged again: the other ring buffer, which holds nothing yet: all of it
  const d3 = { x: 200, y: 100, width: 8, height: 8 };
  await present(f, runner, frame(o2, [d3]));
  t.equal(f.jobs.length, 2, 'frame 3 composed');
  t.same(f.jobs[1]!.clip, [FULL], 'into the buffer that held nothing');
  t.not(f.commits[2]!.find((c) => c.plane === 1)!.fb, fb1, 'the other ring buffer on the primary');
  // and then the first ring buffer: it lacks frames 2 (nothing) and 3, and 4's own damage
  const d4 = { x: 0, y: 0, width: 4, height: 4 };
  await present(f, runner, frame(o2, [d4]));
  t.same(f.jobs[2]!.clip, [d4, d3], 'frame 4: the damage since frame 1');
  t.equal(f.commits[3]!.find((c) => c.plane === 1)!.fb, fb1);
  runner.close();
});
