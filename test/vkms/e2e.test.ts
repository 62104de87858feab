// End to end in the vkms guest: the kiosk (compositor-example/kiosk.ts, in this process) shows
// third-party clients from Debian packages (weston's demo clients, wayland-info) and the demo
// client, each in its own process. For each: it runs without protocol errors (exit status,
// stderr), the writeback capture shows its content (exact pixels for the demo client, whose
// frames carry their number), and the kiosk's stats say direct or copied as expected. The
// demo client's LINEAR buffers go to the plane with no byte copied and its presentation
// feedback carries ZERO_COPY; with --transform 90 it is still direct (the plane rotates).
// Fails (never skips) when vkms or a client binary is missing. Leak-checked: after the kiosk
// closes, fds, GEM handles, framebuffers and the kernel's framebuffer list are back.
import { coreBacktrace, coreDumpsTo, dmabufFeedbackClientOk, spawnWithCore } from '../util/weston-clients.js';
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import { startKiosk, type Kiosk, type KioskStats } from '../../compositor-example/kiosk.js';
import { frameShown, sceneMismatches } from '../../compositor-example/demo-client-scene.js';
import type { DemoReport } from '../../compositor-example/demo-client.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
const xdg = privateRuntimeDir(t, 'primebuf-e2e-');
// Clients run with core dumps on: a crash's backtrace tells a client's own known crash from another.
const cores = privateRuntimeDir(t, 'primebuf-e2e-cores-', false);
t.teardown(coreDumpsTo(cores));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function installed(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

interface Run {
  pid: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop: (sig?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a client of `kiosk` (its stdout and stderr collected). */
function launch(kiosk: Kiosk, cmd: string, args: string[]): Run {
  const child = spawnWithCore(cmd, args, { env: { ...process.env, WAYLAND_DISPLAY: kiosk.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const timer = setTimeout(() => child.kill('SIGKILL'), 240000);
  void exited.then(() => clearTimeout(timer));
  return {
    pid: child.pid!,
    output: () => out,
    exited,
    stop: async (sig = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return exited;
    },
  };
}

const PROTOCOL_TROUBLE = /protocol error|error in client communication|Assertion|failed to create|segmentation/i;

/** Frames the kiosk presented since it started (counted by onFrame). */
function frameCounter(kiosk: Kiosk): { frames: () => number; after: (n: number, ms?: number) => Promise<boolean> } {
  let frames = 0;
  kiosk.onFrame(() => frames++);
  return {
    frames: () => frames,
    after: async (n, ms = 60000) => {
      const target = frames + n;
      for (const end = Date.now() + ms; frames < target; ) {
        if (Date.now() > end) return false;
        await sleep(10);
      }
      return true;
    },
  };
}

/** The kiosk's buffers of client `pid`. */
function buffersOf(stats: KioskStats, pid: number): KioskStats['buffers'] {
  return stats.buffers.filter((b) => b.client === pid);
}

/** One line per buffer: name, kind, path and its distinct reasons. */
function describe(buffers: KioskStats['buffers']): string {
  return buffers.map((b) => `${b.name} ${b.kind} ${b.path}${b.reasons.length ? ` (${[...new Set(b.reasons)].join('; ')})` : ''}`).join(', ');
}

/** Share of pixels of a capture that are not black. */
function litShare(c: { width: number; height: number; stride: number; pixels: Uint8Array }): number {
  const v = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
  let lit = 0;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) if ((v.getUint32(y * c.stride + x * 4, true) & 0xffffff) !== 0) lit++;
  return lit / (c.width * c.height);
}

const demoClientJs = join(packageRoot, 'dist', 'compositor-example', 'demo-client.js');

/** Runs the demo client for `frames` frames; resolves with its exit, output and report. */
async function demoClient(kiosk: Kiosk, frames: number, during?: (run: Run) => Promise<void>, extra: string[] = []): Promise<{ run: Run; exit: { code: number | null }; report: DemoReport }> {
  const file = join(xdg, `demo-${Date.now()}.json`);
  const run = launch(kiosk, process.execPath, [demoClientJs, '--frames', String(frames), '--report', file, ...extra]);
  if (during) await during(run);
  const exit = await run.exited;
  const report = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DemoReport) : ({ error: `no report; output: ${run.output()}` } as DemoReport);
  return { run, exit, report };
}

leakFree(t as TapTest, 'the kiosk with each client in turn', async (t) => {
  const log: string[] = [];
  const kiosk = await startKiosk({ device: vkms.path, socket: 'pb-e2e', log: (l) => log.push(l) });
  const counter = frameCounter(kiosk);
  t.teardown(() => t.comment(`kiosk log:\n${log.slice(-60).join('\n')}`));
  try {
    await t.test('demo client: LINEAR buffers on the plane, zero bytes copied, ZERO_COPY, exact pixels', async (t) => {
      const before = kiosk.stats();
      const shots: Array<Awaited<ReturnType<Kiosk['capture']>>> = [];
      const { run, exit, report } = await demoClient(kiosk, 90, async (run) => {
        t.ok(await counter.after(40), 'the kiosk presents frames while the client runs');
        shots.push(await kiosk.capture()); // while it animates
        t.ok(await until(() => /lingering/.test(run.output()), 120000), 'the client drew its last frame and lingers');
        await counter.after(2, 2000); // nothing new to show: this may time out, and need not
        shots.push(await kiosk.capture()); // its last frame, which nothing redraws any more
      }, ['--linger', '3000']);
      t.equal(exit.code, 0, 'exit 0');
      t.notMatch(run.output(), PROTOCOL_TROUBLE, 'no protocol error on stderr');
      t.equal(report.error, null, 'no protocol or connection error in its report');
      t.equal(report.frames, 90, '90 frames drawn');
      t.same([report.format, report.modifier], ['XRGB8888', 'LINEAR'], 'XRGB8888 LINEAR');
      t.ok(report.scanoutTranche, 'picked from the scanout tranche');
      t.ok(report.presented >= 60, `presentation feedback: ${report.presented} presented, ${report.discarded} discarded`);
      t.equal(report.zeroCopy, report.presented, 'every presented frame carries ZERO_COPY');
      const after = kiosk.stats();
      const mine = buffersOf(after, run.pid);
      t.ok(mine.length >= 1, `the kiosk saw its buffers (${mine.length})`);
      t.ok(mine.every((b) => b.kind === 'dmabuf' && b.path === 'direct'), `all direct: ${describe(mine)}`);
      t.equal(after.bytesCopied - before.bytesCopied, 0, 'zero bytes copied');
      t.ok(after.direct - before.direct >= report.presented, `${after.direct - before.direct} direct frames`);
      t.equal(shots.length, 2, 'captured twice through writeback');
      const [live, still] = shots.map((c) => {
        const v = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
        const px = (x: number, y: number): number => v.getUint32(y * c.stride + x * 4, true);
        return { c, px, n: frameShown(c.width, c.height, px) };
      });
      t.same([still!.c.width, still!.c.height], [report.width, report.height], 'the client was configured to the screen size');
      t.ok(live!.n !== null && live!.n < 89, `while it animates the capture shows one of its frames (${live!.n})`);
      // no frame is presented while a capture is in flight, so the buffer writeback reads is not
      // released to the client for redrawing before the capture is done: no torn screenshot
      if (live!.n !== null) t.same(sceneMismatches(live!.n, live!.c.width, live!.c.height, live!.px), { count: 0, first: [] }, `the capture while it animates is frame ${live!.n} exactly, not torn`);
      t.equal(still!.n, 89, 'after the last frame the capture shows frame 89');
      t.same(sceneMismatches(89, still!.c.width, still!.c.height, still!.px), { count: 0, first: [] }, 'every pixel as the client drew it');
    });

    await t.test('weston-simple-shm: wl_shm, sealed pools, zero copy through udmabuf, on screen', async (t) => {
      t.ok(installed('weston-simple-shm'), 'weston-simple-shm installed (Debian package weston)');
      if (!installed('weston-simple-shm')) return;
      const run = launch(kiosk, 'weston-simple-shm', []);
      const before = kiosk.stats();
      t.ok(await counter.after(40), 'frames presented');
      const shot = await kiosk.capture();
      const exit = await run.stop('SIGINT');
      t.ok(exit.code === 0 || exit.signal === 'SIGINT', `ended by SIGINT (exit ${exit.code ?? exit.signal})`);
      t.notMatch(run.output(), PROTOCOL_TROUBLE, 'no protocol error');
      t.ok(litShare(shot) > 0.02, `the capture shows it (${(litShare(shot) * 100).toFixed(1)}% of the screen lit)`);
      const after = kiosk.stats();
      const mine = buffersOf(after, run.pid);
      t.ok(mine.length >= 1 && mine.every((b) => b.kind === 'shm' && b.path === 'direct' && b.udmabuf === true), `wl_shm buffers, scanned out through udmabufs: ${describe(mine)}`);
      t.equal(after.bytesCopied - before.bytesCopied, 0, 'zero bytes copied');
    });

    // weston-simple-egl starts as a 250x250 window and follows the fullscreen configure (its
    // picture counts once a screen-sized buffer came); weston-simple-dmabuf-egl stays 256x256.
    for (const [name, args, expected, fullscreen] of [
      ['weston-simple-egl', ['-b'], 'copy', true],
      ['weston-simple-dmabuf-egl', ['-d', vkms.path], 'direct', false],
    ] as const) {
      await t.test(`${name}: runs, on screen, ${expected}`, async (t) => {
        t.ok(installed(name), `${name} installed (Debian package weston)`);
        if (!installed(name)) return;
        const run = launch(kiosk, name, [...args]);
        const before = kiosk.stats();
        const ready = (): boolean => buffersOf(kiosk.stats(), run.pid).some((b) => !fullscreen || (b.width === 1024 && b.height === 768));
        let shown = false;
        for (const end = Date.now() + 120000; !shown && Date.now() < end; ) {
          await counter.after(10, 5000);
          shown = ready();
        }
        t.ok(shown, fullscreen ? 'a screen-sized buffer of it reached the kiosk' : 'its buffers reached the kiosk');
        await counter.after(20);
        // weston-simple-egl may draw its first screen-sized buffers with its old 250x250 viewport
        // (a capture then shows ~0.4% lit, 1/12 of its picture): a few more frames, a few captures
        let shot = await kiosk.capture();
        for (let i = 0; i < 4 && litShare(shot) <= 0.01; i++) {
          await counter.after(10, 5000);
          shot = await kiosk.capture();
        }
        const exit = await run.stop('SIGINT');
        t.ok(exit.code === 0 || exit.signal === 'SIGINT', `ended by SIGINT (exit ${exit.code ?? exit.signal})`);
        t.notMatch(run.output(), PROTOCOL_TROUBLE, 'no protocol error');
        t.ok(litShare(shot) > 0.01, `the capture shows it (${(litShare(shot) * 100).toFixed(1)}% lit)`);
        const mine = buffersOf(kiosk.stats(), run.pid);
        t.ok(mine.every((b) => b.path === expected), `${expected}: ${describe(mine)}`);
        const copied = kiosk.stats().bytesCopied - before.bytesCopied;
        if (expected === 'direct') t.equal(copied, 0, 'zero bytes copied');
        else t.ok(copied > 0, `${copied} bytes copied`);
      });
    }

    await t.test('weston-simple-dmabuf-feedback: reads the feedback, its buffers direct', async (t) => {
      t.ok(installed('weston-simple-dmabuf-feedback'), 'installed (Debian package weston)');
      if (!installed('weston-simple-dmabuf-feedback')) return;
      const run = launch(kiosk, 'weston-simple-dmabuf-feedback', []);
      const exit = await run.exited; // it runs a few seconds and exits by itself
      const backtrace = exit.signal === 'SIGSEGV' ? coreBacktrace('/usr/bin/weston-simple-dmabuf-feedback', cores, run.pid) : undefined;
      const ran = dmabufFeedbackClientOk(exit.code, exit.signal ?? null, run.output(), backtrace);
      t.ok(ran.ok, `ran its course: ${ran.why}`);
      t.notMatch(run.output(), PROTOCOL_TROUBLE, 'no protocol error');
      // Its lifetime is its own 3-second timer: whether the (debounced) scanout tranche comes
      // within it depends on the machine's load, so that is not asserted here (kiosk.test.ts
      // checks the tranche after a direct frame); the feedback it read is.
      t.ok((run.output().match(/end of dma-buf feedback/g)?.length ?? 0) >= 1, 'it read a complete dma-buf feedback');
      t.match(run.output(), new RegExp(`main_device event for dma-buf feedback - ${vkms.path}`), 'main device: the vkms node');
      t.comment(/scanout tranche\? yes/.test(run.output()) ? 'the scanout tranche arrived in its lifetime' : 'no scanout tranche within its lifetime');
      const mine = buffersOf(kiosk.stats(), run.pid);
      t.ok(mine.some((b) => b.path === 'direct'), `a buffer went to the plane: ${describe(mine)}`);
    });

    await t.test('wayland-info: the globals a kiosk client sees', async (t) => {
      t.ok(installed('wayland-info'), 'installed (Debian package wayland-utils)');
      if (!installed('wayland-info')) return;
      const run = launch(kiosk, 'wayland-info', []);
      const exit = await run.exited;
      const out = run.output();
      t.equal(exit.code, 0, 'exit 0');
      t.notMatch(out, PROTOCOL_TROUBLE, 'no protocol error');
      t.match(out, /interface: 'zwp_linux_dmabuf_v1',\s+version:\s+5/, 'linux-dmabuf v5');
      for (const g of ['wl_compositor', 'wl_shm', 'xdg_wm_base', 'wp_presentation', 'wl_output']) t.match(out, new RegExp(`interface: '${g}'`), g);
      t.match(out, /width: 1024 px, height: 768 px/, "wl_output: vkms's 1024x768 mode");
    });
  } finally {
    await kiosk.close();
  }
});

leakFree(t as TapTest, '--transform 90: the demo client is configured portrait and scanned out through the plane rotation', async (t) => {
  const kiosk = await startKiosk({ device: vkms.path, socket: 'pb-e2e-90', transform: 90 });
  const counter = frameCounter(kiosk);
  try {
    const before = kiosk.stats();
    const { run, exit, report } = await demoClient(kiosk, 60);
    t.equal(exit.code, 0, 'exit 0');
    t.equal(report.error, null, 'no protocol error');
    t.same([report.width, report.height], [768, 1024], 'configured to the rotated size');
    t.ok(report.presented >= 40, `${report.presented} presented`);
    t.equal(report.zeroCopy, report.presented, 'every presented frame ZERO_COPY');
    t.ok(counter.frames() >= report.presented, `the kiosk presented ${counter.frames()} frames`);
    const after = kiosk.stats();
    const mine = buffersOf(after, run.pid);
    t.ok(mine.length >= 1 && mine.every((b) => b.path === 'direct'), `direct through the plane's rotation: ${describe(mine)}`);
    t.equal(after.bytesCopied - before.bytesCopied, 0, 'zero bytes copied');
  } finally {
    await kiosk.close();
  }
});
