// The copy ring on the host, with memfd-backed fake scanout buffers: at least two buffers, a
// frame never written into the buffer on screen or queued, each buffer keeping its own age so a
// reused buffer receives exactly the union of the damage it missed (and its pixels then equal
// the source's everywhere), the newest free buffer preferred, and every buffer closed once.
import t from 'tap';
import { ClosedError } from '../../src/errors.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { fourcc } from '../../src/formats/index.js';
import { native } from '../../src/native.js';
import { CopyRing, RingBusyError, type RingBufferSpec, type ScanoutBuffer } from '../../src/scanout/copy-ring.js';
import type { CopySurface } from '../../src/scanout/copy.js';
import { fullDamage, type Rect } from '../../src/scanout/damage.js';

const XR24 = fourcc('XRGB8888');
const W = 64;
const H = 48;

/** A scanout buffer stand-in: a memfd mapping, counting its closes. */
class FakeScanout implements ScanoutBuffer {
  readonly memory: Mapping;
  readonly format: number;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  closes = 0;
  constructor(spec: RingBufferSpec) {
    this.width = spec.width;
    this.height = spec.height;
    this.format = spec.format;
    this.stride = spec.width * 4 + 64; // a pitch with padding, as KMS drivers like
    const fd = native.memfdCreate(`ring-${spec.index}`, true);
    native.ftruncateFd(fd, this.stride * spec.height);
    this.memory = Mapping.map(fd, 0, this.stride * spec.height);
    native.closeFd(fd);
    this.memory.bytes().fill(0xee);
  }
  close(): void {
    this.closes++;
    this.memory.close();
  }
  pixel(x: number, y: number): number {
    return new DataView(this.memory.buffer).getUint32(y * this.stride + x * 4, true);
  }
}

/** A client surface: its pixels change only where a frame says it damaged them. */
class Source implements CopySurface {
  readonly memory = new Uint8Array(W * 4 * H);
  readonly format = XR24;
  readonly width = W;
  readonly height = H;
  readonly stride = W * 4;
  draw(frame: number, rects: readonly Rect[]): Rect[] {
    const dv = new DataView(this.memory.buffer);
    for (const r of rects) {
      for (let y = r.y; y < r.y + r.height; y++) {
        for (let x = r.x; x < r.x + r.width; x++) dv.setUint32(y * this.stride + x * 4, (frame << 24) | (y << 12) | x, true);
      }
    }
    return [...rects];
  }
  pixel(x: number, y: number): number {
    return new DataView(this.memory.buffer).getUint32(y * this.stride + x * 4, true);
  }
}

function sameAsSource(buf: FakeScanout, src: Source): string {
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (buf.pixel(x, y) !== src.pixel(x, y)) return `pixel ${x},${y} differs`;
  return '';
}

function makeRing(buffers = 2, made: FakeScanout[] = []) {
  return new CopyRing({ width: W, height: H, format: XR24, buffers, maxAge: 4, allocate: (spec) => {
    const b = new FakeScanout(spec);
    made.push(b);
    return b;
  } });
}

t.test('two buffers: the flip cycle, ages and damage unions, pixels equal the source', async (t) => {
  const made: FakeScanout[] = [];
  const ring = makeRing(2, made);
  t.equal(made.length, 2, 'two buffers allocated up front');
  const src = new Source();

  // frame 1: everything is new
  src.draw(1, fullDamage(W, H));
  const f1 = await ring.copyFrame(src, fullDamage(W, H));
  t.equal(f1.frame, 1);
  t.same(f1.rects, fullDamage(W, H), 'unknown content: full copy');
  t.equal(f1.bytes, W * H * 4);
  ring.markQueued(f1.slot);
  ring.markOnScreen(f1.slot);
  const A = f1.slot;

  // frame 2: small damage, but the other buffer has never been written
  const d2 = src.draw(2, [{ x: 5, y: 5, width: 10, height: 4 }]);
  const f2 = await ring.copyFrame(src, d2);
  t.not(f2.slot, A, 'not the buffer on screen');
  t.same(f2.rects, fullDamage(W, H), 'first use of buffer B: full copy');
  ring.markQueued(f2.slot);

  // both busy: one on screen, one queued
  t.equal(ring.available, false, 'nothing free while A is on screen and B queued');
  const before = ring.history.frame;
  await t.rejects(ring.copyFrame(src, []), RingBusyError, 'a third frame must wait for the flip');
  t.equal(ring.history.frame, before, 'a refused frame records no damage');
  const onScreenPixel = made[A.index]!.pixel(5, 5);

  ring.markOnScreen(f2.slot);
  t.equal(A.state, 'free', 'the flip freed the buffer that was on screen');
  t.equal(made[A.index]!.pixel(5, 5), onScreenPixel, 'the on-screen buffer was never written meanwhile');

  // frame 3: A holds frame 1, so it needs frames 2 and 3's damage, not the whole frame
  const d3 = src.draw(3, [{ x: 40, y: 30, width: 8, height: 8 }]);
  const f3 = await ring.copyFrame(src, d3);
  t.equal(f3.slot, A, 'A again');
  t.same(f3.rects, [d2[0], d3[0]], 'the union of frames 2 and 3');
  t.equal(f3.bytes, (10 * 4 + 8 * 8) * 4, 'only those bytes written');
  t.equal(sameAsSource(made[A.index]!, src), '', 'A now equals the source everywhere');
  ring.markQueued(f3.slot);
  ring.markOnScreen(f3.slot);

  // frame 4: B holds frame 2: frames 3 and 4
  const d4 = src.draw(4, [{ x: 0, y: 0, width: 1, height: 1 }]);
  const f4 = await ring.copyFrame(src, d4);
  t.same(f4.rects, [d4[0], d3[0]], 'B receives frames 3 and 4');
  t.equal(sameAsSource(made[f4.slot.index]!, src), '', 'B equals the source everywhere');
  t.same(
    { frames: ring.stats.frames, fullFrames: ring.stats.fullFrames, copies: ring.stats.copies, syncCalls: ring.stats.syncCalls },
    { frames: 4, fullFrames: 2, copies: 4, syncCalls: 0 },
    'stats: 4 frames, 2 of them full, no dma-buf to sync',
  );
  t.equal(ring.stats.bytes, 2 * W * H * 4 + f3.bytes + f4.bytes, 'bytes counted');

  ring.close();
  ring.close();
  t.same(made.map((b) => b.closes), [1, 1], 'each buffer closed exactly once');
  await t.rejects(ring.copyFrame(src, []), ClosedError, 'closed ring');
});

t.test('three buffers: the free buffer with the newest content is chosen; too old means full', async (t) => {
  const ring = makeRing(3);
  const src = new Source();
  const f1 = await ring.copyFrame(src, src.draw(1, fullDamage(W, H)));
  ring.markQueued(f1.slot);
  ring.markOnScreen(f1.slot);
  const f2 = await ring.copyFrame(src, src.draw(2, fullDamage(W, H)));
  ring.markQueued(f2.slot);
  const f3 = await ring.copyFrame(src, src.draw(3, fullDamage(W, H)));
  t.equal(new Set([f1.slot, f2.slot, f3.slot]).size, 3, 'three distinct buffers (on screen, queued, then the last one)');
  ring.release(f3.slot); // say its commit failed: back to free, content kept
  ring.markOnScreen(f2.slot); // frees f1's buffer
  t.same(ring.slots.filter((s) => s.state === 'free').map((s) => s.frame).sort(), [1, 3], 'free: the buffers of frames 1 and 3');

  const d4 = src.draw(4, [{ x: 1, y: 1, width: 2, height: 2 }]);
  const f4 = await ring.copyFrame(src, d4);
  t.equal(f4.slot, f3.slot, 'the buffer holding frame 3 (newest) is chosen over frame 1\'s');
  t.same(f4.rects, d4, 'one frame behind: only frame 4\'s damage');
  ring.release(f4.slot);
  for (let i = 5; i <= 9; i++) {
    const f = await ring.copyFrame(src, src.draw(i, [{ x: i, y: i, width: 1, height: 1 }]));
    t.equal(f.slot, f3.slot, `frame ${i}: the same newest buffer again`);
    t.equal(f.bytes, 4, 'one pixel copied');
    ring.release(f.slot);
  }
  const f10 = await ring.copyFrame(src, []);
  ring.markQueued(f10.slot);
  t.equal(ring.history.age(f1.slot.frame), 9, 'frame 1\'s buffer is 9 frames old (maxAge 4)');
  const f11 = await ring.copyFrame(src, src.draw(11, [{ x: 0, y: 0, width: 1, height: 1 }]));
  t.equal(f11.slot, f1.slot, 'the only free buffer');
  t.same(f11.rects, fullDamage(W, H), 'older than the history: full copy');
  t.equal(ring.slots.filter((s) => s.state !== 'free' && s.state !== 'ready').length, 2, 'the on-screen and queued buffers untouched');
  ring.close();
});

t.test('state rules, a failing allocator, a close during a copy', async (t) => {
  t.throws(() => makeRing(1), RangeError, 'one buffer is not a ring');
  const made: FakeScanout[] = [];
  let n = 0;
  t.throws(
    () => new CopyRing({ width: W, height: H, format: XR24, buffers: 3, allocate: (spec) => {
      if (n++ === 2) throw new Error('out of memory');
      const b = new FakeScanout(spec);
      made.push(b);
      return b;
    } }),
    /out of memory/,
    'allocation failure propagates',
  );
  t.same(made.map((b) => b.closes), [1, 1], 'the buffers made before the failure are closed');
  const wrong: FakeScanout[] = [];
  t.throws(
    () => new CopyRing({ width: W, height: H, format: XR24, allocate: (spec) => {
      const b = new FakeScanout({ ...spec, width: W - 1 });
      wrong.push(b);
      return b;
    } }),
    RangeError,
    'a buffer of the wrong size is refused',
  );
  t.same(wrong.map((b) => b.closes), [1], 'and closed');

  const bufs: FakeScanout[] = [];
  const ring = makeRing(2, bufs);
  const src = new Source();
  const f = await ring.copyFrame(src, []);
  t.throws(() => ring.markOnScreen(f.slot), RangeError, 'ready is not queued');
  ring.markQueued(f.slot);
  t.throws(() => ring.markQueued(f.slot), RangeError, 'queued twice');
  const other = makeRing(2);
  t.throws(() => other.markQueued(f.slot), RangeError, 'a slot of another ring');
  other.close();

  // close while a copy is writing: that buffer closes when the copy settles, not before
  const p = ring.copyFrame(src, fullDamage(W, H));
  const writing = ring.slots.find((s) => s.state === 'writing')!;
  ring.close();
  t.equal(bufs[writing.index]!.closes, 0, 'the buffer being written is not closed under the copy');
  t.equal(bufs[f.slot.index]!.closes, 1, 'the idle buffer is closed at once');
  await t.rejects(p, ClosedError, 'the copy reports the ring closed');
  t.equal(bufs[writing.index]!.closes, 1, 'closed once the copy settled');
});

for (const n of [2, 3]) {
  t.test(`fault 4 (${n} buffers): a smaller surface after a fullscreen one: every buffer the ring hands out is black outside it, frame after frame`, async (t) => {
    const made: FakeScanout[] = [];
    const ring = makeRing(n, made);
    const full = new Source();
    full.draw(1, fullDamage(W, H));
    // the fullscreen client fills every buffer (frames queued ahead, then flipped: the last on screen)
    const filled = [];
    for (let i = 0; i < n; i++) {
      const f = await ring.copyFrame(full, fullDamage(W, H));
      ring.markQueued(f.slot);
      filled.push(f.slot);
    }
    for (const s of filled) ring.markOnScreen(s);
    t.ok(made.every((b) => b.pixel(W - 1, H - 1) === full.pixel(W - 1, H - 1)), 'every buffer holds the fullscreen frame');
    // it is gone; a 16x12 surface at (10, 8) follows
    const sw = 16, sh = 12, dx = 10, dy = 8;
    const small: CopySurface & { memory: Uint8Array } = { memory: new Uint8Array(sw * 4 * sh), format: XR24, width: sw, height: sh, stride: sw * 4 };
    const paint = (frame: number): void => {
      const dv = new DataView(small.memory.buffer);
      for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) dv.setUint32(y * sw * 4 + x * 4, 0x01000000 * frame + (y << 8) + x, true);
    };
    ring.clearBeforeNextWrite();
    t.ok(ring.slots.every((s) => s.stale), 'every buffer marked, the one on screen too');
    const queued: Array<(typeof ring.slots)[number]> = [];
    for (let frame = 2; frame < 2 + 2 * n + 1; frame++) {
      paint(frame);
      const f = await ring.copyFrame(small, frame === 2 ? fullDamage(sw, sh) : [{ x: 0, y: 0, width: sw, height: sh }], { dx, dy });
      const b = made[f.slot.index]!;
      let old = 0;
      let wrong = 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = x >= dx && x < dx + sw && y >= dy && y < dy + sh;
          const p = b.pixel(x, y);
          if (!inside && p !== 0) old++;
          if (inside && p !== new DataView(small.memory.buffer).getUint32((y - dy) * sw * 4 + (x - dx) * 4, true)) wrong++;
        }
      }
      t.equal(old, 0, `frame ${frame} (buffer ${f.slot.index}): no pixel outside the surface but black`);
      t.equal(wrong, 0, `frame ${frame}: the surface's pixels in place`);
      // as deep a queue as the ring allows: every buffer takes its turn
      ring.markQueued(f.slot);
      queued.push(f.slot);
      if (queued.length === n - 1) ring.markOnScreen(queued.shift()!);
    }
    t.equal(ring.stats.clears, n, 'each buffer zeroed once, right before its first write after the change');
    t.ok(ring.slots.every((s) => !s.stale), 'none left marked');
    ring.close();
  });
}

t.test('adoptOnScreen (the direct lane wrote and flipped the buffers): that buffer on screen, the others free, every buffer copied whole next', async (t) => {
  const made: FakeScanout[] = [];
  const ring = makeRing(3, made);
  const src = new Source();
  src.draw(1, fullDamage(W, H));
  const f1 = await ring.copyFrame(src, fullDamage(W, H));
  ring.markQueued(f1.slot);
  ring.markOnScreen(f1.slot);
  // the lane flipped buffer 2 last
  ring.adoptOnScreen(2);
  t.same(ring.slots.map((s) => s.state), ['free', 'free', 'onscreen'], 'buffer 2 on screen, the others free');
  t.ok(ring.slots.every((s) => s.frame === undefined), 'what each buffer holds is forgotten');
  const d = src.draw(2, [{ x: 1, y: 1, width: 2, height: 2 }]);
  const f2 = await ring.copyFrame(src, d);
  t.not(f2.slot.index, 2, 'the next copy does not write the buffer on screen');
  t.same(f2.rects, fullDamage(W, H), 'and copies the whole source: the lane\'s damage history is not the ring\'s');
  t.equal(sameAsSource(made[f2.slot.index]!, src), '', 'its pixels equal the source');
  ring.close();
  t.throws(() => ring.adoptOnScreen(0), ClosedError, 'a closed ring adopts nothing');
});
