// The kiosk's frame callbacks and presentation feedback on the real vkms kernel (issue 18):
// fault 5, a client that commits nothing but a frame callback is paced by the vblank (no more than
// about one `done` per refresh period, the timestamps a refresh period apart) and its
// presentation feedback says `presented` at a vblank after the commit, not `discarded`; fault 8,
// a surface that is not shown does not pile up frame callbacks and damage without bound, and the
// kiosk's per-buffer stats stay bounded while a client cycles through many buffers.
import t from 'tap';
import { WaylandConnection, type WaylandProxy } from '../../src/wayland/index.js';
import { startKiosk, type Kiosk, type KioskOptions } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { colourBuffer, openToplevel } from '../util/toplevel.js';
import type { TapTest } from './leak.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-kiosk-frames-');

interface Presented {
  readonly ns: bigint;
  readonly refresh: number;
  readonly seq: bigint;
  readonly flags: number;
}

/** A wl_shm client with one xdg_toplevel, configured and acked. */
class Client {
  readonly conn: WaylandConnection;
  surface!: WaylandProxy<'wl_surface'>;
  presentation!: WaylandProxy<'wp_presentation'>;
  shm!: WaylandProxy<'wl_shm'>;
  comp!: WaylandProxy<'wl_compositor'>;
  size = { width: 0, height: 0 };

  private constructor(socket: string) {
    this.conn = WaylandConnection.connect(socket);
  }

  static async open(socket: string): Promise<Client> {
    const c = new Client(socket);
    const top = await openToplevel(c.conn, (size) => (c.size = size));
    c.comp = top.compositor;
    c.surface = top.surface;
    c.presentation = top.bind('wp_presentation', 1);
    c.shm = top.bind('wl_shm', 1);
    return c;
  }

  /** A w x h XRGB8888 buffer of one colour in a pool of its own. */
  buffer(w: number, h: number, color: number): WaylandProxy<'wl_buffer'> {
    return colourBuffer(this.shm, w, h, color, 'unsealed');
  }

  /** A presentation feedback for the next commit. */
  feedback(): Promise<Presented | 'discarded'> {
    const fb = this.presentation.request('feedback', { surface: this.surface });
    return new Promise((resolve) => {
      fb.on('presented', (a) =>
        resolve({
          ns: ((BigInt(a.tv_sec_hi) << 32n) | BigInt(a.tv_sec_lo)) * 1_000_000_000n + BigInt(a.tv_nsec),
          refresh: a.refresh,
          seq: (BigInt(a.seq_hi) << 32n) | BigInt(a.seq_lo),
          flags: a.flags,
        }),
      );
      fb.on('discarded', () => resolve('discarded'));
    });
  }

  /** A frame callback for the next commit: resolves with its callback_data (ms). */
  frame(): Promise<number> {
    const cb = this.surface.request('frame', {});
    return new Promise((resolve) => cb.on('done', ({ callback_data }) => resolve(callback_data)));
  }

  /** Shows a full-size buffer of `color` and waits for it to be presented. */
  async show(color: number): Promise<Presented | 'discarded'> {
    this.surface.request('attach', { buffer: this.buffer(this.size.width, this.size.height, color), x: 0, y: 0 });
    this.surface.request('damage_buffer', { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    const fb = this.feedback();
    this.surface.request('commit', {});
    this.conn.flush();
    return fb;
  }

  close(): void {
    this.conn.close();
  }
}

async function withKiosk(t: TapTest, opts: Partial<KioskOptions>, fn: (k: Kiosk, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const k = await startKiosk({ device: vkms.path, log: (l) => log.push(l), ...opts });
  try {
    await fn(k, log);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-25).join('\n')}`);
    await k.close();
  }
}

const now = (): bigint => process.hrtime.bigint();

t.test('fault 5: a client that commits only frame callbacks gets about one done per refresh period', async (t) => {
  await withKiosk(t, { socket: 'kiosk-frames-pace' }, async (k) => {
    const c = await Client.open(k.socket);
    t.teardown(() => c.close());
    const shown = await c.show(0x204060);
    t.not(shown, 'discarded', 'the first buffer is presented');
    const refreshMs = k.presenter.refreshNs / 1e6;
    const windowMs = 500;
    const stamps: number[] = [];
    const end = Date.now() + windowMs;
    while (Date.now() < end) {
      const done = c.frame();
      c.surface.request('commit', {}); // nothing new: no attach, no damage
      c.conn.flush();
      stamps.push(await done);
    }
    const expected = windowMs / refreshMs;
    t.comment(`${stamps.length} done in ${windowMs} ms at a refresh of ${refreshMs.toFixed(2)} ms (about ${expected.toFixed(0)} expected)`);
    t.ok(stamps.length <= expected * 1.25 + 2, `no more than about one done per refresh period (${stamps.length} for ${expected.toFixed(1)} periods)`);
    t.ok(stamps.length >= 3, `the callbacks keep coming (${stamps.length})`);
    const gaps = stamps.slice(1).map((s, i) => s - stamps[i]!);
    const minGap = Math.min(...gaps);
    // callback_data is in ms (rounded down): consecutive vblanks are at least floor(period) apart
    t.ok(minGap >= Math.floor(refreshMs), `consecutive dones are a refresh period apart or more (smallest gap ${minGap} ms)`);
  });
});

t.test('fault 5: the feedback of a commit that carries nothing new is presented at a later vblank, not discarded', async (t) => {
  await withKiosk(t, { socket: 'kiosk-frames-feedback' }, async (k) => {
    const c = await Client.open(k.socket);
    t.teardown(() => c.close());
    const first = await c.show(0x406020);
    if (first === 'discarded') {
      t.fail('the first buffer is presented');
      return;
    }
    let prev = first;
    for (let i = 0; i < 3; i++) {
      const before = now();
      const fb = c.feedback();
      const done = c.frame();
      c.surface.request('commit', {});
      c.conn.flush();
      const got = await fb;
      await done;
      if (got === 'discarded') {
        t.fail(`empty commit ${i}: presented, not discarded`);
        return;
      }
      t.ok(got.ns >= before, `empty commit ${i}: presented at or after the commit (${got.ns - before} ns later)`);
      t.ok(got.seq > prev.seq, `empty commit ${i}: at a later vblank than the last presentation (${prev.seq} -> ${got.seq})`);
      t.equal(got.refresh, k.presenter.refreshNs, 'refresh is the mode\'s period');
      const periods = Number(got.ns - prev.ns) / k.presenter.refreshNs;
      t.ok(Math.abs(periods - Math.round(periods)) < 0.05, `on the vblank grid of the last flip (${periods.toFixed(3)} periods later)`);
      prev = got;
    }
  });
});

/** Waits for `p` at most `ms`: undefined when it did not come. */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, ms)))]);
}

t.test('fault 8: a toplevel covered by a newer one gets its frame callbacks at a throttled rate', async (t) => {
  await withKiosk(t, { socket: 'kiosk-frames-hidden' }, async (k) => {
    const a = await Client.open(k.socket);
    t.teardown(() => a.close());
    t.not(await a.show(0x101010), 'discarded', 'a is shown');
    const b = await Client.open(k.socket);
    t.teardown(() => b.close());
    t.not(await b.show(0x202020), 'discarded', 'b is shown, a covered');
    // a draws on frame callbacks: it neither spins nor waits forever
    const windowMs = 3000;
    const end = Date.now() + windowMs;
    let dones = 0;
    let commits = 0;
    while (Date.now() < end) {
      const done = a.frame();
      a.surface.request('damage_buffer', { x: commits % 100, y: 0, width: 1, height: 1 });
      a.surface.request('commit', {});
      a.conn.flush();
      commits++;
      if ((await within(done, end - Date.now())) === undefined) break;
      dones++;
    }
    t.comment(`covered toplevel: ${dones} done in ${windowMs} ms (${commits} commits)`);
    t.ok(dones >= 1, `its frame callbacks are answered (${dones})`);
    t.ok(dones <= windowMs / 1000 + 1, `at about one per second, not per refresh (${dones})`);
  });
});

t.test('fault 8: 80 buffers shown one after another: the stats keep a bounded history, each reason once', async (t) => {
  await withKiosk(t, { socket: 'kiosk-frames-stats' }, async (k) => {
    const c = await Client.open(k.socket);
    t.teardown(() => c.close());
    let prev: WaylandProxy<'wl_buffer'> | undefined;
    for (let i = 0; i < 80; i++) {
      const buf = c.buffer(64, 64, 0x010101 * (i + 1));
      c.surface.request('attach', { buffer: buf, x: 0, y: 0 });
      c.surface.request('damage_buffer', { x: 0, y: 0, width: 64, height: 64 });
      const fb = c.feedback();
      c.surface.request('commit', {});
      c.conn.flush();
      if ((await fb) === 'discarded') {
        t.fail(`buffer ${i} presented`);
        return;
      }
      prev?.request('destroy', {});
      prev = buf;
    }
    await c.conn.roundtrip();
    const s = k.stats();
    t.ok(s.buffers.length <= 33, `${s.buffers.length} buffer entries after 80 buffers (history of 32 plus the live one)`);
    t.ok(s.buffers.length >= 2, 'the newest buffers are kept');
    const live = s.buffers.at(-1)!;
    t.same([live.width, live.height, live.client], [64, 64, process.pid], 'the live buffer is listed last');
    t.equal(live.path, 'copy', 'an unsealed wl_shm pool is copied');
    t.ok(live.reasons.some((r) => r.startsWith('NOT_DMABUF')), `its reasons say NOT_DMABUF (${live.reasons.join(' | ')})`);
    const repeated = s.buffers.filter((b) => new Set(b.reasons).size !== b.reasons.length).map((b) => `${b.name}: ${b.reasons.join(' | ')}`);
    t.same(repeated, [], 'no buffer lists a reason twice');
  });
});
