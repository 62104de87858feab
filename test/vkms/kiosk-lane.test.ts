// The direct lane on the real vkms kernel (issue 19's native fast path): a client cycling its
// buffers on a plane has its frames run by the addon (stats.lane), every commit's wl_buffer.release
// comes exactly once and before the frame callback of the flip that replaced it, the screen shows
// what was committed last; and each way back to TypeScript (a capture, a new buffer, a frame
// callback alone, a buffer destroyed, the buffer on screen destroyed, the client gone mid-flip)
// leaves the kiosk consistent: the next frames are right, no fd, GEM handle or framebuffer is left.
import t from 'tap';
import { writeSync } from 'node:fs';
import { WaylandConnection, type WaylandProxy } from '../../src/wayland/index.js';
import { startKiosk, type Kiosk, type KioskCapture, type KioskOptions } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { colourBuffer, openToplevel } from '../util/toplevel.js';
import { leakFree, type TapTest } from './leak.js';
import { poolFile } from '../util/own-shm.js';
import type { OwnedFd } from '../../src/fd.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-kiosk-lane-');

function pixel(c: KioskCapture, x: number, y: number): number {
  return new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength).getUint32(y * c.stride + x * 4, true) & 0xffffff;
}

/** Pixels of the capture that are not `want`. */
function wrong(c: KioskCapture, want: number): { bad: number; first: string } {
  let bad = 0;
  let first = '';
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const v = pixel(c, x, y);
      if (v !== (want & 0xffffff) && bad++ === 0) first = ` first (${x},${y}) 0x${v.toString(16)} want 0x${want.toString(16)}`;
    }
  }
  return { bad, first };
}

async function withKiosk(t: TapTest, opts: Partial<KioskOptions> & { socket: string }, fn: (k: Kiosk, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const k = await startKiosk({ device: vkms.path, input: false, log: (l) => log.push(l), ...opts });
  try {
    await fn(k, log);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}`);
    await k.close();
  }
}

/** A client with a fullscreen toplevel and sealed wl_shm buffers (zero copy: on a plane), counting each buffer's commits and releases. */
class Client {
  readonly conn: WaylandConnection;
  surface!: WaylandProxy<'wl_surface'>;
  shm!: WaylandProxy<'wl_shm'>;
  size = { width: 0, height: 0 };
  readonly commits = new Map<WaylandProxy<'wl_buffer'>, number>();
  readonly releases = new Map<WaylandProxy<'wl_buffer'>, number>();
  /** the events in the order they came: 'release <colour>' and 'done' */
  readonly events: string[] = [];
  readonly colour = new Map<WaylandProxy<'wl_buffer'>, number>();
  #last: WaylandProxy<'wl_buffer'> | undefined;

  private constructor(socket: string) {
    this.conn = WaylandConnection.connect(socket);
  }

  static async open(socket: string): Promise<Client> {
    const c = new Client(socket);
    const top = await openToplevel(c.conn, (size) => (c.size = size));
    c.surface = top.surface;
    c.shm = top.bind('wl_shm', 1);
    return c;
  }

  buffer(colour: number): WaylandProxy<'wl_buffer'> {
    const b = colourBuffer(this.shm, this.size.width, this.size.height, colour, 'sealed');
    this.colour.set(b, colour);
    this.commits.set(b, 0);
    this.releases.set(b, 0);
    b.on('release', () => {
      this.releases.set(b, (this.releases.get(b) ?? 0) + 1);
      this.events.push(`release ${colour.toString(16)}`);
    });
    return b;
  }

  /** Commits `b` (attach, damage, frame callback); resolves at the callback's done. */
  show(b: WaylandProxy<'wl_buffer'>): Promise<number> {
    this.surface.request('attach', { buffer: b, x: 0, y: 0 });
    this.surface.request('damage_buffer', { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    const done = this.frame();
    this.surface.request('commit', {});
    this.conn.flush();
    // a buffer committed again while it is the current one owes no second release
    if (b !== this.#last) this.commits.set(b, (this.commits.get(b) ?? 0) + 1);
    this.#last = b;
    return done;
  }

  frame(): Promise<number> {
    const cb = this.surface.request('frame', {});
    return new Promise((resolve) =>
      cb.on('done', ({ callback_data }) => {
        this.events.push('done');
        resolve(callback_data);
      }),
    );
  }

  /** Every buffer released once per commit that made it current, but `current` (still owed its last release). */
  checkReleases(t: TapTest, current: WaylandProxy<'wl_buffer'> | undefined, what: string): void {
    let bad = '';
    for (const [b, n] of this.commits) {
      const want = n - (b === current ? 1 : 0);
      const got = this.releases.get(b) ?? 0;
      if (got !== want) bad += ` 0x${this.colour.get(b)!.toString(16)}: ${got} releases for ${n} commits;`;
    }
    t.equal(bad, '', `${what}: each commit's wl_buffer.release came exactly once (the current buffer's last one still owed)`);
  }

  close(): void {
    this.conn.close();
  }
}

const COLOURS = [0x2080c0, 0xc04020, 0x20c040];

leakFree(t as TapTest, 'three buffers cycled: the lane runs the frames, releases once each and before the done, the screen right after a capture hands it back', async (t) => {
  await withKiosk(t, { socket: 'kiosk-lane-cycle' }, async (k, log) => {
    const c = await Client.open(k.socket);
    t.teardown(() => c.close());
    const bufs = COLOURS.map((x) => c.buffer(x));
    const N = 90;
    // a buffer is attached again only once released (as a client must for its contents)
    for (let i = 0; i < N; i++) {
      const b = bufs[i % 3]!;
      if (i >= 3 && (c.releases.get(b) ?? 0) !== (c.commits.get(b) ?? 0)) {
        t.fail(`frame ${i}: 0x${c.colour.get(b)!.toString(16)} was not released before its turn came again`);
        return;
      }
      await c.show(b);
    }
    const s = k.stats();
    t.ok(s.lane.armed, 'the lane is armed in the steady state');
    t.ok(s.lane.frames >= N - 10, `the lane ran the frames (${s.lane.frames} of ${N}; the first of each buffer went through TypeScript)`);
    t.ok(s.lane.commits >= s.lane.frames, `its commits (${s.lane.commits}) cover its frames`);
    t.equal(s.frames, s.direct, 'every frame direct');
    t.ok(s.frames >= N, `the kiosk counts the lane's frames among its own (${s.frames} for ${N} commits)`);
    t.ok(log.some((l) => l.startsWith('direct lane: armed')), 'the log says the lane was armed');
    // every release of a buffer the flip replaced came before that flip's done
    let order = '';
    for (let i = 1, seen = 0; i < c.events.length; i++) {
      if (c.events[i] !== 'done') continue;
      seen++;
      // from the fourth done on, the flip replaced a buffer: its release is the event before
      if (seen >= 2 && !c.events[i - 1]!.startsWith('release')) order ||= ` done #${seen} not preceded by a release (${c.events.slice(Math.max(0, i - 3), i + 1).join(', ')})`;
    }
    t.equal(order, '', 'each flip\'s release comes before its frame callback\'s done');
    const last = bufs[(N - 1) % 3]!;
    c.checkReleases(t, last, 'after the lane\'s frames');
    // a capture hands the lane back first: the screen shows the last commit
    const cap = await k.capture();
    const d = wrong(cap, COLOURS[(N - 1) % 3]!);
    t.equal(d.bad, 0, `after the handback the capture shows the last buffer committed${d.first}`);
    const s2 = k.stats();
    t.ok(s2.lane.handbacks >= 1, `handed back for the capture (${s2.lane.handbacks})`);
    t.notOk(s2.lane.armed, 'not armed right after the capture');
    // and it takes over again after the next direct frame
    for (let i = N; i < N + 30; i++) await c.show(bufs[i % 3]!);
    const s3 = k.stats();
    t.ok(s3.lane.arms > s2.lane.arms, `armed again (${s2.lane.arms} -> ${s3.lane.arms})`);
    t.ok(s3.lane.frames > s2.lane.frames + 20, `the lane ran the new frames (${s3.lane.frames - s2.lane.frames} of 30)`);
    c.checkReleases(t, bufs[(N + 29) % 3]!, 'after the handback and the lane again');
    // the presenter asked to commit while the lane is armed hands it back first (nothing commits beside it)
    t.ok(k.stats().lane.armed, 'armed before the presenter is used directly');
    const h0 = k.stats().lane.handbacks;
    await k.presenter.refresh();
    t.notOk(k.stats().lane.armed, 'presenter.refresh() handed the lane back');
    t.equal(k.stats().lane.handbacks, h0 + 1, 'once');
    const cap2 = await k.capture();
    const d2 = wrong(cap2, COLOURS[(N + 29) % 3]!);
    t.equal(d2.bad, 0, `the capture shows the last buffer again${d2.first}`);
    c.close();
  });
});

leakFree(t as TapTest, 'handbacks: a new buffer, a frame callback alone, a buffer destroyed, the buffer on screen destroyed, the client gone mid-flip', async (t) => {
  await withKiosk(t, { socket: 'kiosk-lane-handback' }, async (k, log) => {
    const c = await Client.open(k.socket);
    const [a, b] = [c.buffer(COLOURS[0]!), c.buffer(COLOURS[1]!)];
    for (let i = 0; i < 20; i++) await c.show(i % 2 ? b : a);
    t.ok(k.stats().lane.armed, 'armed after 20 frames of two buffers');
    let h = k.stats().lane.handbacks;
    // a buffer the lane does not know: handed back, shown by TypeScript
    const n = c.buffer(COLOURS[2]!);
    await c.show(n);
    t.ok(k.stats().lane.handbacks > h, 'an unknown buffer hands the lane back');
    let d = wrong(await k.capture(), COLOURS[2]!);
    t.equal(d.bad, 0, `the new buffer on screen${d.first}`);
    for (let i = 0; i < 10; i++) await c.show(i % 2 ? b : n);
    // a frame callback alone (no attach): handed back, the callback answered
    t.ok(k.stats().lane.armed, 'armed again');
    h = k.stats().lane.handbacks;
    const alone = c.frame();
    c.surface.request('commit', {});
    c.conn.flush();
    const answered = await Promise.race([alone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
    t.ok(answered, 'a commit with only a frame callback is answered');
    t.ok(k.stats().lane.handbacks > h, 'and it handed the lane back');
    for (let i = 0; i < 10; i++) await c.show(i % 2 ? n : a);
    // a released buffer destroyed (b): the others go on
    t.ok(k.stats().lane.armed, 'armed again');
    c.commits.delete(b);
    b.request('destroy', {});
    for (let i = 0; i < 10; i++) await c.show(i % 2 ? n : a);
    c.checkReleases(t, n, 'after b was destroyed');
    // the buffer on screen destroyed (n): the kiosk keeps it until it is replaced
    t.ok(k.stats().lane.armed, 'armed again');
    c.commits.delete(n);
    n.request('destroy', {});
    c.conn.flush();
    d = wrong(await k.capture(), COLOURS[2]!);
    t.equal(d.bad, 0, `the destroyed buffer stays on screen until replaced${d.first}`);
    const last = c.buffer(0x808080);
    for (let i = 0; i < 6; i++) await c.show(i % 2 ? a : last);
    d = wrong(await k.capture(), COLOURS[0]!);
    t.equal(d.bad, 0, `the client's next buffers shown${d.first}`);
    c.checkReleases(t, a, 'after the buffer on screen was destroyed');
    // the client gone with a flip in flight
    for (let i = 0; i < 6; i++) await c.show(i % 2 ? a : last);
    t.ok(k.stats().lane.armed, 'armed before the disconnect');
    c.surface.request('attach', { buffer: last, x: 0, y: 0 });
    c.surface.request('commit', {});
    c.conn.flush();
    c.close();
    await new Promise((r) => setTimeout(r, 500));
    t.ok(log.some((l) => l.includes('disconnected')), 'the kiosk saw the client go');
    // a second client is shown normally
    const c2 = await Client.open(k.socket);
    t.teardown(() => c2.close());
    const x = c2.buffer(0x405060);
    for (let i = 0; i < 3; i++) await c2.show(x);
    d = wrong(await k.capture(), 0x405060);
    t.equal(d.bad, 0, `a new client after the disconnect is shown${d.first}`);
    c2.close();
    t.notOk(log.some((l) => l.includes('frame failed') || l.includes('error in')), 'no frame failed, no handler error');
  });
});

/**
 * The copy mode: wl_shm copied (zero copy off), a client that draws a square a frame into the
 * model image, brings the buffer it commits up to date with it and damages only the square (as
 * the protocol has it: what changed since the last commit). The lane copies that damage and what
 * the ring buffer missed since it was last written; the capture must equal the model exactly.
 */
leakFree(t as TapTest, 'copy mode: damage-limited copies of wl_shm into the ring, the screen exactly the client\'s image', async (t) => {
  await withKiosk(t, { socket: 'kiosk-lane-copy', shmZeroCopy: false }, async (k) => {
    const c = await Client.open(k.socket);
    const { width: w, height: h } = c.size;
    const model = new Uint32Array(w * h).fill(0x203040);
    interface Buf { wl: WaylandProxy<'wl_buffer'>; fd: OwnedFd; content: Uint32Array }
    const bufs: Buf[] = [];
    for (let i = 0; i < 3; i++) {
      const content = new Uint32Array(model);
      const fd = poolFile('sealed', w * h * 4, new Uint8Array(content.buffer));
      const pool = c.shm.request('create_pool', { fd, size: w * h * 4 });
      const wl = pool.request('create_buffer', { offset: 0, width: w, height: h, stride: w * 4, format: 1 /* XRGB8888 */ });
      pool.request('destroy', {});
      bufs.push({ wl, fd, content });
    }
    /** the rows of `b` that differ from the model, written into its memory */
    const update = (b: Buf): void => {
      for (let y = 0; y < h; y++) {
        let x0 = -1;
        let x1 = -1;
        for (let x = 0; x < w; x++) if (b.content[y * w + x] !== model[y * w + x]) (x0 < 0 ? (x0 = x) : 0, (x1 = x));
        if (x0 < 0) continue;
        const row = Buffer.from(model.buffer, (y * w + x0) * 4, (x1 - x0 + 1) * 4);
        writeSync(b.fd.fd, row, 0, row.length, (y * w + x0) * 4);
        b.content.set(model.subarray(y * w + x0, y * w + x1 + 1), y * w + x0);
      }
    };
    let frames = 0;
    const draw = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++, frames++) {
        const sq = { x: (frames * 97) % (w - 40), y: (frames * 53) % (h - 30), width: 40, height: 30 };
        const colour = (0x400000 + frames * 0x0a0b0c) & 0xffffff;
        for (let y = sq.y; y < sq.y + sq.height; y++) model.fill(colour, y * w + sq.x, y * w + sq.x + sq.width);
        const b = bufs[frames % 3]!;
        update(b);
        c.surface.request('attach', { buffer: b.wl, x: 0, y: 0 });
        c.surface.request('damage_buffer', frames === 0 ? { x: 0, y: 0, width: w, height: h } : sq);
        const done = c.frame();
        c.surface.request('commit', {});
        c.conn.flush();
        await done;
      }
    };
    const same = (cap: KioskCapture): { bad: number; first: string } => {
      let bad = 0;
      let first = '';
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v = pixel(cap, x, y);
          if (v !== model[y * w + x]! && bad++ === 0) first = ` first (${x},${y}) 0x${v.toString(16)} want 0x${model[y * w + x]!.toString(16)}`;
        }
      return { bad, first };
    };
    await draw(40);
    const s = k.stats();
    t.ok(s.lane.armed, 'the lane is armed (copy mode)');
    t.ok(s.lane.frames >= 30, `the lane ran the frames (${s.lane.frames} of 40)`);
    t.equal(s.copied, s.frames, 'every frame copied');
    const perFrame = (s.bytesCopied - 3 * w * h * 4) / Math.max(1, s.lane.frames);
    t.ok(perFrame < (w * h * 4) / 10, `the copies are damage-limited (about ${Math.round(perFrame)} bytes a frame beyond three whole frames, a whole one is ${w * h * 4})`);
    let d = same(await k.capture());
    t.equal(d.bad, 0, `the capture after the handback is the client's image, every pixel${d.first}`);
    await draw(30);
    const s2 = k.stats();
    t.ok(s2.lane.arms > s.lane.arms, `armed again after the capture (${s.lane.arms} -> ${s2.lane.arms})`);
    d = same(await k.capture());
    t.equal(d.bad, 0, `and the image again after 30 more frames${d.first}`);
    c.close();
    for (const b of bufs) b.fd.close();
  });
});
