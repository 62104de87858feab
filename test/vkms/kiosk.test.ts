// The kiosk compositor (compositor-example/) on the real vkms kernel, started in-process through
// startKiosk (the CLI as a child process). Proves: a client's LINEAR XRGB8888 dma-buf (primebuf's
// ClientDmabuf and BufferRing) goes on the plane with zero bytes copied and wp_presentation
// ZERO_COPY, and the writeback capture shows its exact pixels; weston-simple-shm (sealed memfd
// pools) goes on a plane through udmabuf with zero bytes copied and ZERO_COPY, the capture equals
// one of its buffers, and it keeps drawing at its own rate without "Both buffers busy"; with zero
// copy off it is copied through the copy source and its picture is on screen; an unsealed pool is
// copied exactly, with the reason; with two buffers the one on screen is released on the flip that
// replaced it and before the frame callback; --camera shows vivid's frames direct, zero bytes
// copied, the capture equal to a camera buffer; the stack (the newest toplevel shown, the previous
// one back when it goes, black with none); a client SIGKILLed mid-frame and 200 cheap
// connect-draw-disconnect cycles leave fds, GEM handles and framebuffers at baseline;
// --transform 90 configures the rotated size, says it in wl_output, goes direct through the
// plane's rotation (and refuses a writeback capture of the rotated plane, which panics vkms 6.12),
// while the same picture through the rotated copy is checked pixel for pixel; the CLI exits with
// its command's code, and on SIGTERM with 0 and nothing of its own in the kernel's framebuffer list.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fourcc, PRESENTATION_ZERO_COPY } from '../../src/index.js';
import { openSystemAllocators, type SystemAllocators } from '../../src/alloc/index.js';
import { BufferRing, ClientDmabuf, clientAllocators, type FeedbackWatch } from '../../src/client/index.js';
import { WaylandConnection, type WaylandProxy } from '../../src/wayland/index.js';
import { native, packageRoot } from '../../src/native.js';
import { DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START } from '../../src/dmabuf/dmabuf.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { startKiosk, CaptureUnavailableError, type Kiosk, type KioskCapture, type KioskFrameInfo, type KioskOptions } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { haveDebugfs, kernelFramebuffers, leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';
import { poolFile, type PoolKind } from '../util/own-shm.js';
import { V4l2Device } from '../../src/v4l2/index.js';
import { readdirSync, readlinkSync } from 'node:fs';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const XR24 = fourcc('XRGB8888');
const vkms = requireVkms(t);
t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');

const xdg = privateRuntimeDir(t, 'primebuf-kiosk-');

type Pixel = (x: number, y: number) => number;
const pattern: Pixel = (x, y) => (((x * 7) & 0xff) << 16) | (((y * 5) & 0xff) << 8) | ((x ^ y) & 0xff);
/** One colour everywhere (drawn with a fill, not pixel by pixel: the guest is emulated). */
const solid = (c: number): Pixel & { color: number } => Object.assign(() => c, { color: c });

/** Pixels of the capture that differ from `want` (RGB), with the first one described. */
function diff(c: KioskCapture, want: Pixel): { bad: number; first: string } {
  const dv = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
  let bad = 0;
  let first = '';
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const v = dv.getUint32(y * c.stride + x * 4, true) & 0xffffff;
      const w = want(x, y) & 0xffffff;
      if (v !== w && bad++ === 0) first = ` first (${x},${y}) 0x${v.toString(16)} want 0x${w.toString(16)}`;
    }
  }
  return { bad, first };
}

let sys: SystemAllocators | undefined;
function allocators(): ReturnType<typeof clientAllocators> {
  sys ??= openSystemAllocators({ cards: [basename(vkms!.path)] });
  return clientAllocators(sys);
}

/** An in-process Wayland client with one fullscreen xdg_toplevel drawn into dma-bufs. */
class TestClient {
  readonly conn: WaylandConnection;
  surface!: WaylandProxy<'wl_surface'>;
  toplevel!: WaylandProxy<'xdg_toplevel'>;
  xdgSurface!: WaylandProxy<'xdg_surface'>;
  presentation!: WaylandProxy<'wp_presentation'>;
  shm!: WaylandProxy<'wl_shm'>;
  dmabuf: ClientDmabuf | undefined;
  feedback!: FeedbackWatch;
  ring: BufferRing | undefined;
  size = { width: 0, height: 0 };
  outputTransform = -1;

  private constructor(socket: string) {
    this.conn = WaylandConnection.connect(socket);
  }

  /**
   * Connects, maps nothing yet: the toplevel is configured and acked. `light`: no linux-dmabuf
   * (no feedback, no allocators): a wl_shm-only client, cheap to connect.
   */
  static async open(socket: string, light = false): Promise<TestClient> {
    const c = new TestClient(socket);
    const { registry, globals } = await c.conn.globals();
    const g = (i: string) => globals.find((x) => x.interface === i)!;
    const comp = c.conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5);
    const wm = c.conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', 5);
    wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
    const out = c.conn.bind(registry, g('wl_output'), 'wl_output', 4);
    out.on('geometry', ({ transform }) => (c.outputTransform = transform));
    c.presentation = c.conn.bind(registry, g('wp_presentation'), 'wp_presentation', 1);
    c.shm = c.conn.bind(registry, g('wl_shm'), 'wl_shm', 1);
    if (!light) c.dmabuf = await ClientDmabuf.bind(c.conn, { registry, globals });
    c.surface = comp.request('create_surface', {});
    c.xdgSurface = wm.request('get_xdg_surface', { surface: c.surface });
    c.toplevel = c.xdgSurface.request('get_toplevel', {});
    let serial = -1;
    c.toplevel.on('configure', ({ width, height }) => (c.size = { width, height }));
    c.xdgSurface.on('configure', ({ serial: s }) => (serial = s));
    c.surface.request('commit', {});
    await c.conn.roundtrip();
    if (serial < 0) throw new Error('no configure after the initial commit');
    c.xdgSurface.request('ack_configure', { serial });
    if (c.dmabuf) c.feedback = await c.dmabuf.surfaceFeedback(c.surface);
    return c;
  }

  /** Draws `img` into a ring buffer and commits it; resolves with the presentation feedback's flags (or 'discarded'). */
  async draw(img: Pixel): Promise<number | 'discarded'> {
    this.ring ??= new BufferRing({ dmabuf: this.dmabuf!, feedback: this.feedback, allocators: allocators(), width: this.size.width, height: this.size.height, formats: [XR24], count: 2 });
    let b = this.ring.acquire();
    for (let i = 0; !b && i < 200; i++) {
      await this.conn.roundtrip();
      await new Promise((r) => setTimeout(r, 10));
      b = this.ring.acquire();
    }
    if (!b) throw new Error('no buffer released');
    await b.draw((px, stride) => {
      const color = (img as { color?: number }).color;
      if (color !== undefined && px.byteOffset % 4 === 0 && stride === b!.width * 4) {
        new Uint32Array(px.buffer, px.byteOffset, (stride * b!.height) / 4).fill(color);
        return;
      }
      const v = new DataView(px.buffer, px.byteOffset, px.byteLength);
      for (let y = 0; y < b!.height; y++) for (let x = 0; x < b!.width; x++) v.setUint32(y * stride + x * 4, img(x, y), true);
    });
    this.ring.attach(this.surface, b);
    return this.#commit();
  }

  /**
   * A w x h XRGB8888 wl_shm buffer holding `img`, in a pool of its own: 'unsealed' a plain memfd,
   * 'sealed' a memfd sealed against shrinking (as weston-simple-shm's), 'file' a file.
   */
  shmBuffer(w: number, h: number, img: Pixel, kind: PoolKind = 'unsealed'): WaylandProxy<'wl_buffer'> {
    const px = new Uint8Array(w * h * 4);
    const color = (img as { color?: number }).color;
    if (color !== undefined) new Uint32Array(px.buffer).fill(color);
    else {
      const v = new DataView(px.buffer);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) v.setUint32((y * w + x) * 4, img(x, y), true);
    }
    const mem = poolFile(kind, px.length, px);
    const pool = this.shm.request('create_pool', { fd: mem, size: px.length });
    const buffer = pool.request('create_buffer', { offset: 0, width: w, height: h, stride: w * 4, format: 1 /* XRGB8888 */ });
    pool.request('destroy', {});
    mem.close();
    return buffer;
  }

  /** The same with a w x h XRGB8888 wl_shm buffer (see shmBuffer). */
  async drawShm(w: number, h: number, img: Pixel, kind: PoolKind = 'unsealed'): Promise<number | 'discarded'> {
    return this.show(this.shmBuffer(w, h, img, kind));
  }

  /** Attaches `buffer` and commits it; resolves with the presentation feedback's flags (or 'discarded'). */
  show(buffer: WaylandProxy<'wl_buffer'>): Promise<number | 'discarded'> {
    this.surface.request('attach', { buffer, x: 0, y: 0 });
    return this.#commit();
  }

  #commit(): Promise<number | 'discarded'> {
    this.surface.request('damage_buffer', { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    const fb = this.presentation.request('feedback', { surface: this.surface });
    const done = new Promise<number | 'discarded'>((resolve) => {
      fb.on('presented', ({ flags }) => resolve(flags));
      fb.on('discarded', () => resolve('discarded'));
    });
    this.surface.request('commit', {});
    this.conn.flush();
    return done;
  }

  close(): void {
    this.ring?.close();
    this.feedback?.close();
    this.dmabuf?.close();
    this.conn.close();
  }
}

/** What the kiosk showed last ('black' before any client). */
interface Shown {
  last: 'direct' | 'copy' | 'black' | undefined;
}

/** What the process's fds point at (for the diagnostics of a leak). */
function fdTargets(): string[] {
  return readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} (gone)`;
    }
  });
}

async function withKiosk(t: TapTest, opts: Partial<KioskOptions>, fn: (k: Kiosk, log: string[], shown: Shown) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const fdsBefore = new Set(fdTargets());
  const k = await startKiosk({ device: vkms!.path, log: (l) => log.push(l), ...opts });
  const shown: Shown = { last: undefined };
  k.onFrame((f) => (shown.last = f.path));
  try {
    await fn(k, log, shown);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-25).join('\n')}`);
    await k.close();
    if (sys) {
      sys.close();
      sys = undefined;
    }
    const extra = fdTargets().filter((f) => !fdsBefore.has(f));
    if (extra.length > 0) t.comment(`fds opened and not closed: ${extra.join(', ')}`);
  }
}

/** Waits until the kiosk presents a frame whose path is `path`. */
function nextFrame(k: Kiosk, path: 'direct' | 'copy' | 'black'): Promise<void> {
  return new Promise((resolve) => k.onFrame((f) => f.path === path && resolve()));
}

leakFree(t as TapTest, 'a LINEAR XRGB8888 dma-buf goes direct: zero bytes copied, ZERO_COPY, writeback exact', async (t) => {
  await withKiosk(t, { socket: 'kiosk-direct' }, async (k, log) => {
    const c = await TestClient.open(k.socket);
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    t.same(c.size, { width: W, height: H }, 'the toplevel is configured fullscreen to the mode');
    t.equal(c.outputTransform, 0, 'wl_output says transform normal');
    const flags = await c.draw(pattern);
    t.not(flags, 'discarded', 'presented');
    t.ok(typeof flags === 'number' && (flags & PRESENTATION_ZERO_COPY) !== 0, `wp_presentation flags carry ZERO_COPY (0x${flags.toString(16)})`);
    const cap = await k.capture();
    const d = diff(cap, pattern);
    t.equal(d.bad, 0, `all ${W * H} captured pixels are the client's${d.first}`);
    const s = k.stats();
    t.equal(s.bytesCopied, 0, 'zero bytes copied');
    t.ok(s.direct >= 1 && s.copied === 0, `direct frames only (${s.direct} direct, ${s.copied} copied)`);
    t.equal(s.buffers.length >= 1 && s.buffers.every((b) => b.path === 'direct' && b.kind === 'dmabuf' && b.format === 'XRGB8888'), true, 'every client buffer logged as direct');
    t.ok(log.some((l) => /: direct on plane \d+/.test(l)), 'the log says direct, with the plane');
    t.ok(
      await until(() => c.feedback.current.tranches[0]?.scanout === true, 10_000),
      'after the direct frame the surface feedback leads with the scanout tranche (reportScanout)',
    );
    const again = await c.draw(pattern);
    t.ok(typeof again === 'number' && (again & PRESENTATION_ZERO_COPY) !== 0, 'a second frame: ZERO_COPY again');
    t.equal(log.filter((l) => /: direct on plane/.test(l)).length, k.stats().buffers.length, 'one log line per buffer, not per frame');
    c.close();
    await until(() => k.stats().frames > 0 && log.some((l) => /disconnected/.test(l)), 10_000);
  });
});

leakFree(t as TapTest, 'weston-simple-shm zero copy: scanned out directly, zero bytes copied, ZERO_COPY, writeback equals its buffer, its own rate without "Both buffers busy"', async (t) => {
  await withKiosk(t, { socket: 'kiosk-shm-zc' }, async (k, log) => {
    const frames: Array<{ path: string; bytes: number; flags: number }> = [];
    k.onFrame((f) => frames.push({ path: f.path, bytes: f.bytesCopied, flags: f.flags }));
    const child = spawn('weston-simple-shm', [], { env: { ...process.env, WAYLAND_DISPLAY: k.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let exitedWith: string | undefined;
    const exited = new Promise<void>((resolve) => child.on('exit', (code, sig) => ((exitedWith = String(sig ?? code)), resolve())));
    try {
      t.ok(await until(() => k.stats().direct >= 5, 120_000, 20), `five frames scanned out (${k.stats().direct}); client output: ${out.trim().slice(0, 200)}`);
      // its own rate: frames counted over 3 s while it runs; it aborts on "Both buffers busy"
      const n0 = k.stats().frames;
      await new Promise((r) => setTimeout(r, 3000));
      const n = k.stats().frames - n0;
      t.ok(n >= 3, `it kept drawing: ${n} frames in 3 s (${(n / 3).toFixed(1)} per second under emulation)`);
      t.equal(exitedWith, undefined, 'weston-simple-shm is still running');
      t.notMatch(out, /busy/i, 'no "Both buffers busy" (a buffer came back before every frame callback)');
      const shown = frames.filter((f) => f.path !== 'black');
      t.ok(shown.length > 0 && shown.every((f) => f.path === 'direct'), `every frame direct (${shown.length})`);
      t.ok(shown.every((f) => f.bytes === 0), 'zero bytes copied per frame');
      t.ok(shown.every((f) => (f.flags & PRESENTATION_ZERO_COPY) !== 0), 'the presenter\'s flags carry ZERO_COPY on every frame');
      const s = k.stats();
      t.equal(s.bytesCopied, 0, 'zero bytes copied in all');
      t.ok(s.buffers.length >= 2 && s.buffers.every((b) => b.kind === 'shm' && b.udmabuf === true && b.path === 'direct'), `its wl_shm buffers go through udmabufs, direct (${s.buffers.map((b) => `${b.name}: ${b.path}`).join(', ')})`);
      t.ok(log.some((l) => /udmabuf\).*: direct on plane \d+/.test(l)), 'the log says direct, with the plane');
      // Stopped, the buffer on screen stays put (the client writes only released buffers): the
      // writeback capture is one of its two pools, pixel for pixel.
      child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, 200));
      const cap = await k.capture();
      // it closes a pool's fd once the pool is made and keeps the mapping: read the memfds through
      // the mappings (/proc/PID/map_files, root only)
      const pools = readFileSync(`/proc/${child.pid}/maps`, 'utf8')
        .split('\n')
        .filter((l) => l.includes('/memfd:'))
        .map((l) => readFileSync(`/proc/${child.pid}/map_files/${l.split(' ')[0]!}`));
      t.ok(pools.length >= 2, `its memfd pools read back (${pools.length})`);
      const [w, h] = [250, 250];
      const [x0, y0] = [Math.floor((k.output.mode.hdisplay - w) / 2), Math.floor((k.output.mode.vdisplay - h) / 2)];
      const results = pools.map((mem) => diff(cap, (x, y) => (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h && mem.length >= w * h * 4 ? mem.readUInt32LE(((y - y0) * w + (x - x0)) * 4) : 0)));
      const best = results.reduce((a, b) => (b.bad < a.bad ? b : a));
      t.equal(best.bad, 0, `the capture is one of its buffers, centred, black around it${best.first}`);
      t.ok(diff(cap, solid(0)).bad > 1000, 'and it is not black');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});

leakFree(t as TapTest, 'weston-simple-shm with zero copy off is copied through the copy source, on screen, and survives SIGKILL mid-frame', async (t) => {
  await withKiosk(t, { socket: 'kiosk-shm', shmZeroCopy: false }, async (k, log, shown) => {
    const child = spawn('weston-simple-shm', [], { env: { ...process.env, WAYLAND_DISPLAY: k.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, sig) => resolve(sig ?? code)));
    const drew = await until(() => k.stats().copied >= 10, 120_000, 20);
    t.ok(drew, `ten frames copied (${k.stats().copied}); client output: ${out.trim().slice(0, 200)}`);
    const s = k.stats();
    const shm = s.buffers.filter((b) => b.kind === 'shm');
    t.ok(shm.length >= 1 && shm.every((b) => b.path === 'copy'), `weston-simple-shm's buffers copied (${shm.length})`);
    t.ok(s.bytesCopied > 0, `bytes copied: ${s.bytesCopied}`);
    t.ok(log.some((l) => /wl_buffer@\d+ of client \d+ .*: copy/.test(l)), 'the log says copy and why');
    const cap = await k.capture();
    const black = diff(cap, solid(0));
    t.ok(black.bad > 1000, `its picture is on screen: ${black.bad} non-black pixels`);
    t.ok(black.bad <= 250 * 250, 'and only in its 250x250 window (centered, the rest black)');
    child.kill('SIGKILL');
    t.equal(await exited, 'SIGKILL', 'killed mid-frame');
    t.ok(await until(() => shown.last === 'black', 10_000), 'its toplevel gone: black');
    const after = await k.capture();
    t.equal(diff(after, solid(0)).bad, 0, 'the kiosk is up and shows black');
  });
});

leakFree(t as TapTest, 'a wl_shm buffer is copied exactly through the copy source hook (centered, the rest black)', async (t) => {
  await withKiosk(t, { socket: 'kiosk-shm-exact' }, async (k) => {
    const c = await TestClient.open(k.socket);
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const [w, h] = [320, 200];
    const flags = await c.drawShm(w, h, pattern);
    t.ok(typeof flags === 'number' && (flags & PRESENTATION_ZERO_COPY) === 0, 'presented, not ZERO_COPY');
    const [x0, y0] = [Math.floor((W - w) / 2), Math.floor((H - h) / 2)];
    const want: Pixel = (x, y) => (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h ? pattern(x - x0, y - y0) : 0);
    const d = diff(await k.capture(), want);
    t.equal(d.bad, 0, `the capture is the buffer at (${x0}, ${y0}), black around it${d.first}`);
    const s = k.stats();
    t.equal(s.bytesCopied, w * h * 4, 'its bytes copied once');
    t.same(s.buffers.map((b) => [b.kind, b.path, b.udmabuf]), [['shm', 'copy', false]], 'one wl_shm buffer, copied');
    t.match(s.buffers[0]!.reasons[0], /no zero copy: the pool is not a memfd sealed against shrinking/, 'why: its pool is not sealed');
    c.close();
  });
});

leakFree(t as TapTest, 'two wl_shm buffers: the one on screen is released only after the next replaced it on the flip, and before the frame callback', async (t) => {
  await withKiosk(t, { socket: 'kiosk-pacing' }, async (k) => {
    const c = await TestClient.open(k.socket, true);
    const events: string[] = [];
    const a = c.shmBuffer(256, 256, solid(0x800000), 'sealed');
    const b = c.shmBuffer(256, 256, solid(0x008000), 'sealed');
    a.on('release', () => events.push('release A'));
    b.on('release', () => events.push('release B'));
    const fa = await c.show(a);
    events.push('A presented');
    c.surface.request('frame', {}).on('done', () => events.push('frame B'));
    const fb = await c.show(b);
    events.push('B presented');
    await until(() => events.includes('frame B'), 10_000);
    await c.conn.roundtrip();
    t.ok([fa, fb].every((f) => typeof f === 'number' && (f & PRESENTATION_ZERO_COPY) !== 0), 'both presented ZERO_COPY (sealed pools: udmabuf)');
    t.ok(events.includes('B presented'), 'B presented');
    t.same(events.filter((e) => e !== 'B presented'), ['A presented', 'release A', 'frame B'], 'A held while on screen, released on the flip that showed B, then B\'s frame callback');
    t.equal(k.stats().bytesCopied, 0, 'nothing copied');
    c.close();
  });
});

leakFree(t as TapTest, 'commits while a frame is in flight: the newest wins after the flip, the replaced one is discarded', async (t) => {
  await withKiosk(t, { socket: 'kiosk-latest' }, async (k) => {
    const c = await TestClient.open(k.socket);
    // three commits in one flush: the first is presented at once, the second is replaced by the
    // third before the first flip completes
    const results = await Promise.all([c.drawShm(64, 64, solid(0x400000)), c.drawShm(64, 64, solid(0x004000)), c.drawShm(64, 64, solid(0x000040))]);
    t.same(results.map((r) => (typeof r === 'number' ? 'presented' : r)), ['presented', 'discarded', 'presented'], 'feedback: presented, discarded, presented');
    t.equal(k.stats().copied, 2, 'two frames, not three (no queue)');
    const [x0, y0] = [Math.floor((k.output.mode.hdisplay - 64) / 2), Math.floor((k.output.mode.vdisplay - 64) / 2)];
    t.equal(diff(await k.capture(), (x, y) => (x >= x0 && x < x0 + 64 && y >= y0 && y < y0 + 64 ? 0x000040 : 0)).bad, 0, 'the screen shows the newest commit');
    c.close();
  });
});

leakFree(t as TapTest, 'the stack: the newest toplevel shown, the previous back when it goes, black with none', async (t) => {
  await withKiosk(t, { socket: 'kiosk-stack' }, async (k) => {
    const red = 0xc02010;
    const blue = 0x1030d0;
    const a = await TestClient.open(k.socket);
    await a.draw(solid(red));
    t.equal(diff(await k.capture(), solid(red)).bad, 0, 'first toplevel: all red');
    const b = await TestClient.open(k.socket);
    await b.draw(solid(blue));
    t.equal(diff(await k.capture(), solid(blue)).bad, 0, 'second toplevel on top: all blue');
    const backToRed = nextFrame(k, 'direct');
    b.toplevel.request('destroy', {});
    b.conn.flush();
    await backToRed;
    t.equal(diff(await k.capture(), solid(red)).bad, 0, 'second toplevel destroyed: red again');
    b.close();
    const black = nextFrame(k, 'black');
    a.close();
    await black;
    t.equal(diff(await k.capture(), solid(0)).bad, 0, 'no toplevel: black');
  });
});

leakFree(t as TapTest, '--camera /dev/video0 (vivid): the camera fullscreen, zero bytes copied, writeback shows a camera frame exactly', async (t) => {
  await withKiosk(t, { socket: 'kiosk-camera', camera: '/dev/video0' }, async (k, log) => {
    const frames: KioskFrameInfo[] = [];
    k.onFrame((f) => void (f.source === 'camera' && frames.push(f)));
    const N = 5; // vivid draws about 5 frames a second under emulation
    t.ok(await until(() => frames.length >= N, 120_000, 20), `${N} camera frames shown (${frames.length}); log: ${log.slice(-3).join(' | ')}`);
    const s = k.stats();
    const cam = s.camera!;
    t.same([cam.width, cam.height, cam.format], [640, 480, 'XRGB8888'], 'the largest size vivid offers that fits 1024x768: 640x480 XRGB8888');
    t.equal(cam.memory, 'dmabuf', 'buffers allocated for camera and display, queued as DMABUF');
    t.ok(frames.every((f) => f.path === 'direct' && f.bytesCopied === 0 && (f.flags & PRESENTATION_ZERO_COPY) !== 0), 'every camera frame direct, zero bytes copied, ZERO_COPY');
    t.ok(cam.frames >= N && cam.direct === cam.frames && cam.copied === 0 && cam.bytesCopied === 0, `camera stats: ${cam.frames} frames, ${cam.direct} direct, ${cam.copied} copied, ${cam.bytesCopied} bytes copied, ${cam.dropped} dropped`);
    t.ok(log.some((l) => /camera \/dev\/video0: direct on plane \d+/.test(l)), 'the log says direct, with the plane');
    // The capture is one of the camera's buffers (the one on screen stays untouched until the
    // next frame replaced it), centred, black around it.
    const cap = await k.capture();
    const [w, h] = [640, 480];
    const [x0, y0] = [Math.floor((k.output.mode.hdisplay - w) / 2), Math.floor((k.output.mode.vdisplay - h) / 2)];
    const results = k.camera!.stream.buffers.map((b) => {
      const p = b.scanout.planes[0]!;
      const map = Mapping.map(p.fd, 0, p.offset + p.stride * h, false);
      try {
        native.dmabufSync(p.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
        const dv = new DataView(map.buffer);
        const r = diff(cap, (x, y) => (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h ? dv.getUint32(p.offset + (y - y0) * p.stride + (x - x0) * 4, true) : 0));
        native.dmabufSync(p.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
        return r;
      } finally {
        map.close();
      }
    });
    const best = results.reduce((a, b) => (b.bad < a.bad ? b : a));
    t.equal(best.bad, 0, `the writeback capture is a camera frame, pixel for pixel, centred${best.first}`);
    t.ok(diff(cap, solid(0)).bad > 10_000, 'and not black');
    // a client's toplevel is shown instead of the camera while it is mapped
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const c = await TestClient.open(k.socket, true);
    const green = 0x20a040;
    await c.drawShm(W, H, solid(green), 'sealed');
    t.equal(diff(await k.capture(), solid(green)).bad, 0, 'a mapped toplevel covers the camera: all the client\'s green');
    const shownBefore = frames.length;
    c.close();
    t.ok(await until(() => frames.length > shownBefore, 30_000, 20), 'the client gone: the camera\'s next frame is shown again');
    t.comment(`camera frames given back unshown: ${k.stats().camera!.dropped}`);
  });
});

const CYCLES = 200;
leakFree(t as TapTest, `${CYCLES} connect-draw-disconnect cycles leave fds, GEM handles and framebuffers at baseline`, async (t) => {
  await withKiosk(t, { socket: 'kiosk-cycles' }, async (k, _log, shown) => {
    // A cheap cycle: an in-process wl_shm-only client (no linux-dmabuf feedback, no allocators);
    // its sealed pool still walks the whole zero-copy way (udmabuf, PRIME import, AddFB2, flip).
    let presented = 0;
    let zeroCopy = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < CYCLES; i++) {
      const c = await TestClient.open(k.socket, true);
      const f = await c.drawShm(64, 64, solid(0x010101 * ((i % 255) + 1)), 'sealed');
      if (f !== 'discarded') presented++;
      if (typeof f === 'number' && (f & PRESENTATION_ZERO_COPY) !== 0) zeroCopy++;
      c.close();
    }
    t.comment(`${CYCLES} cycles in ${Number((process.hrtime.bigint() - start) / 1_000_000n)} ms`);
    t.equal(presented, CYCLES, 'every cycle presented its frame');
    t.equal(zeroCopy, CYCLES, 'each through a udmabuf on a plane (ZERO_COPY)');
    t.ok(k.stats().frames >= CYCLES, `the kiosk presented them (${k.stats().frames} frames)`);
    t.ok(await until(() => shown.last === 'black', 10_000), 'the last client gone: black');
    t.equal(diff(await k.capture(), solid(0)).bad, 0, 'the kiosk is still up and the capture is black');
  });
});

leakFree(t as TapTest, '--transform 90: rotated configure, wl_output transform, direct through the plane rotation, no writeback of a rotated plane', async (t) => {
  await withKiosk(t, { socket: 'kiosk-rot', transform: 90 }, async (k) => {
    const m = k.output.mode;
    const c = await TestClient.open(k.socket);
    t.same(c.size, { width: m.vdisplay, height: m.hdisplay }, 'configured to the rotated size');
    t.equal(c.outputTransform, 1, 'wl_output says transform 90');
    const flags = await c.draw(pattern);
    t.ok(typeof flags === 'number' && (flags & PRESENTATION_ZERO_COPY) !== 0, 'direct: ZERO_COPY');
    const s = k.stats();
    t.ok(s.direct >= 1 && s.copied === 0 && s.bytesCopied === 0, `the plane rotates: direct, nothing copied (${s.direct} direct)`);
    const err = await k.capture().catch((e: unknown) => e);
    t.ok(err instanceof CaptureUnavailableError && err.code === 'ROTATED_PLANE', 'capture refuses a rotated plane (vkms 6.12 panics in writeback)');
    c.close();
  });
});

leakFree(t as TapTest, '--transform 90 with every frame copied: the rotated copy shows the buffer turned counter-clockwise, exactly', async (t) => {
  // The same picture through the presenter's transformed copy: KMS rotation is counter-clockwise,
  // so screen (x, y) shows buffer (bw - 1 - y, x) of the bw x bh = H x W buffer.
  await withKiosk(t, { socket: 'kiosk-rot-copy', transform: 90, forceCopy: true }, async (k) => {
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const c = await TestClient.open(k.socket);
    t.same(c.size, { width: H, height: W }, 'configured to the rotated size');
    await c.draw(pattern);
    const want: Pixel = (x, y) => pattern(H - 1 - y, x);
    const d = diff(await k.capture(), want);
    t.equal(d.bad, 0, `the rotated copy shows the buffer turned 90 degrees counter-clockwise${d.first}`);
    t.ok(k.stats().bytesCopied > 0, 'copied');
    c.close();
  });
});

function runCli(args: string[]): { child: ChildProcess; lines: string[]; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [join(packageRoot, 'dist', 'compositor-example', 'main.js'), '--device', vkms!.path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exit };
}

t.test('the CLI: -- COMMAND exits with its code; SIGTERM exits 0 with nothing left in the kernel framebuffer list', async (t) => {
  const before = kernelFramebuffers();
  const stats = join(xdg, 'stats.json');
  const a = runCli(['--socket', 'kiosk-cli', '--stats', stats, '--', 'sh', '-c', 'test -n "$WAYLAND_DISPLAY" && exit 7']);
  t.equal(await a.exit, 7, `exit code of the command (${a.lines.join(' | ').slice(0, 300)})`);
  t.ok(a.lines.includes('WAYLAND_DISPLAY=kiosk-cli'), 'it printed the socket');
  const j = JSON.parse(readFileSync(stats, 'utf8')) as Record<string, unknown>;
  t.same(Object.keys(j).sort(), ['addfb2', 'allocations', 'buffers', 'bytesCopied', 'commits', 'copied', 'cpu', 'direct', 'frames', 'imports', 'lane'], 'the stats JSON has the contract fields');
  t.ok((j.commits as number) >= 1, 'it committed (the black screen)');
  t.same(kernelFramebuffers(), before, 'nothing of the kiosk left in the kernel framebuffer list');

  const b = runCli(['--socket', 'kiosk-term']);
  t.ok(await until(() => b.lines.includes('WAYLAND_DISPLAY=kiosk-term'), 60_000, 20), 'running');
  await until(() => b.lines.some((l) => /listening/.test(l)), 10_000, 20);
  b.child.kill('SIGTERM');
  t.equal(await b.exit, 0, 'SIGTERM: exit 0');
  t.same(kernelFramebuffers(), before, 'nothing of the kiosk left in the kernel framebuffer list');
});

t.test('the CLI with --camera: camera frames direct, SIGTERM exits 0, the camera\'s queue and the framebuffers released', async (t) => {
  const before = kernelFramebuffers();
  const stats = join(xdg, 'stats-camera.json');
  const c = runCli(['--socket', 'kiosk-cli-camera', '--camera', '/dev/video0', '--stats', stats]);
  t.ok(await until(() => c.lines.some((l) => /camera \/dev\/video0: direct on plane \d+/.test(l)), 120_000, 20), `a camera frame on a plane (${c.lines.join(' | ').slice(0, 300)})`);
  c.child.kill('SIGTERM');
  t.equal(await c.exit, 0, 'SIGTERM: exit 0');
  const cam = (JSON.parse(readFileSync(stats, 'utf8')) as { camera?: { frames: number; direct: number; bytesCopied: number } }).camera;
  t.ok(cam && cam.frames >= 1 && cam.direct === cam.frames && cam.bytesCopied === 0, `the stats count camera frames, all direct, zero bytes copied (${JSON.stringify(cam)})`);
  t.same(kernelFramebuffers(), before, 'nothing of the kiosk left in the kernel framebuffer list');
  using dev = V4l2Device.open('/dev/video0');
  t.doesNotThrow(() => dev.setFormat({ width: 640, height: 480, pixelformat: dev.pixelformatFor(XR24)! }), 'the camera\'s queue holds no buffers after the exit (S_FMT is not EBUSY)');
});
