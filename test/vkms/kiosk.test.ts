// The kiosk compositor (compositor-example/) on the real vkms kernel, started in-process through
// startKiosk (the CLI as a child process). Proves: a client's LINEAR XRGB8888 dma-buf (primebuf's
// ClientDmabuf and BufferRing) goes on the plane with zero bytes copied and wp_presentation
// ZERO_COPY, and the writeback capture shows its exact pixels; weston-simple-shm is copied through
// the presenter's copy source hook and its picture is on screen; the stack (the newest toplevel
// shown, the previous one back when it goes, black with none); a client SIGKILLed mid-frame and
// 50 connect-draw-disconnect cycles leave fds, GEM handles and framebuffers at baseline;
// --transform 90 configures the rotated size, says it in wl_output, goes direct through the
// plane's rotation (and refuses a writeback capture of the rotated plane, which panics vkms 6.12),
// while the same picture through the rotated copy is checked pixel for pixel; the CLI exits with
// its command's code, and on SIGTERM with 0 and nothing of its own in the kernel's framebuffer list.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  BufferRing,
  ClientDmabuf,
  clientAllocators,
  fourcc,
  openSystemAllocators,
  PRESENTATION_ZERO_COPY,
  WaylandConnection,
  type FeedbackWatch,
  type SystemAllocators,
  type WaylandProxy,
} from '../../src/index.js';
import { packageRoot } from '../../src/native.js';
import { startKiosk, CaptureUnavailableError, type Kiosk, type KioskCapture, type KioskOptions } from '../../compositor-example/kiosk.js';
import { findDriver } from './devices-util.js';
import { haveDebugfs, kernelFramebuffers, leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';
import { plainMemfd } from '../util/memfd.js';
import { readdirSync, readlinkSync, writeSync } from 'node:fs';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const XR24 = fourcc('XRGB8888');
const vkms = findDriver('vkms');
t.ok(vkms, 'vkms primary node present');
if (!vkms) process.exit(1);
t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');

const xdg = mkdtempSync(join(tmpdir(), 'primebuf-kiosk-'));
process.env.XDG_RUNTIME_DIR = xdg;
t.teardown(() => rmSync(xdg, { recursive: true, force: true }));

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
  dmabuf!: ClientDmabuf;
  feedback!: FeedbackWatch;
  ring: BufferRing | undefined;
  size = { width: 0, height: 0 };
  outputTransform = -1;

  private constructor(socket: string) {
    this.conn = WaylandConnection.connect(socket);
  }

  /** Connects, maps nothing yet: the toplevel is configured and acked. */
  static async open(socket: string): Promise<TestClient> {
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
    c.dmabuf = await ClientDmabuf.bind(c.conn, { registry, globals });
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
    c.feedback = await c.dmabuf.surfaceFeedback(c.surface);
    return c;
  }

  /** Draws `img` into a ring buffer and commits it; resolves with the presentation feedback's flags (or 'discarded'). */
  async draw(img: Pixel): Promise<number | 'discarded'> {
    this.ring ??= new BufferRing({ dmabuf: this.dmabuf, feedback: this.feedback, allocators: allocators(), width: this.size.width, height: this.size.height, formats: [XR24], count: 2 });
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

  /** The same with a w x h XRGB8888 wl_shm buffer in a memfd pool. */
  async drawShm(w: number, h: number, img: Pixel): Promise<number | 'discarded'> {
    const px = Buffer.alloc(w * h * 4);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.writeUInt32LE(img(x, y), (y * w + x) * 4);
    const mem = plainMemfd('kiosk test pool', px.length);
    writeSync(mem.fd, px, 0, px.length, 0);
    const pool = this.shm.request('create_pool', { fd: mem, size: px.length });
    const buffer = pool.request('create_buffer', { offset: 0, width: w, height: h, stride: w * 4, format: 1 /* XRGB8888 */ });
    pool.request('destroy', {});
    mem.close();
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
    this.feedback.close();
    this.dmabuf.close();
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

leakFree(t as TapTest, 'weston-simple-shm is copied through the copy source hook, on screen, and survives SIGKILL mid-frame', async (t) => {
  await withKiosk(t, { socket: 'kiosk-shm' }, async (k, log, shown) => {
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
    t.same(s.buffers.map((b) => [b.kind, b.path]), [['shm', 'copy']], 'one wl_shm buffer, copied');
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

leakFree(t as TapTest, '50 connect-draw-disconnect cycles leave fds, GEM handles and framebuffers at baseline', async (t) => {
  await withKiosk(t, { socket: 'kiosk-cycles' }, async (k, _log, shown) => {
    let presented = 0;
    for (let i = 0; i < 50; i++) {
      const c = await TestClient.open(k.socket);
      const f = await c.draw(solid(0x010101 * (i + 1)));
      if (f !== 'discarded') presented++;
      c.close();
      if (sys) {
        sys.close();
        sys = undefined;
      }
    }
    t.equal(presented, 50, 'every cycle presented its frame');
    t.ok(k.stats().frames >= 50, `the kiosk presented them (${k.stats().frames} frames)`);
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
  t.same(Object.keys(j).sort(), ['addfb2', 'allocations', 'buffers', 'bytesCopied', 'commits', 'copied', 'cpu', 'direct', 'frames', 'imports'], 'the stats JSON has the contract fields');
  t.ok((j.commits as number) >= 1, 'it committed (the black screen)');
  t.same(kernelFramebuffers(), before, 'nothing of the kiosk left in the kernel framebuffer list');

  const b = runCli(['--socket', 'kiosk-term']);
  t.ok(await until(() => b.lines.includes('WAYLAND_DISPLAY=kiosk-term'), 60_000, 20), 'running');
  await until(() => b.lines.some((l) => /listening/.test(l)), 10_000, 20);
  b.child.kill('SIGTERM');
  t.equal(await b.exit, 0, 'SIGTERM: exit 0');
  t.same(kernelFramebuffers(), before, 'nothing of the kiosk left in the kernel framebuffer list');
});
