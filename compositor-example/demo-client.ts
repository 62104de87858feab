#!/usr/bin/env node
/**
 * The demo client: an xdg toplevel that takes the size it is configured to and animates
 * (demo-client-scene.ts: a bouncing square over a gradient, the frame number in the corner).
 * Built on primebuf's public API only: it reads the surface's linux-dmabuf feedback, picks a
 * format and modifier (the scanout tranche first), allocates through primebuf's allocators
 * (a dumb buffer on the KMS card for the scanout tranche), draws with the CPU into the mapped
 * buffer inside DMA_BUF_IOCTL_SYNC brackets, redraws and damages (wl_surface.damage_buffer)
 * only what changed since the buffer last held a frame, paces itself on frame callbacks and
 * counts the wp_presentation feedback (presented, discarded, ZERO_COPY).
 *
 * With --overlay it also puts a wl_subsurface over its toplevel: one semi-transparent ARGB8888
 * square (demo-client-scene.ts: OVERLAY_PIXEL in overlayRect), drawn once into a dma-buf from the
 * same allocators, which a compositor blends over the animation.
 *
 *   node dist/compositor-example/demo-client.js [--frames N] [--report FILE] [--socket NAME]
 *        [--width W --height H] [--linger MS] [--overlay]
 *
 * Exit status 0 when every frame was drawn without a protocol error; 1 otherwise.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PRESENTATION_ZERO_COPY, formatName, fourcc, modifierName, type Rect } from 'primebuf';
import { openSystemAllocators } from 'primebuf/alloc';
import { BufferRing, ClientDmabuf, clientAllocators, type FeedbackWatch, type RingBuffer } from 'primebuf/client';
import { WaylandConnection, type GlobalInfo, type WaylandProxy } from 'primebuf/wayland';
import { OVERLAY_PIXEL, overlayRect, paintScene, sceneDamage } from './demo-client-scene.js';

export interface DemoClientOptions {
  /** Frames to draw (default 120). */
  readonly frames?: number;
  /** Socket name or path (default $WAYLAND_DISPLAY). */
  readonly socket?: string;
  /** Size when the compositor leaves it to the client (a 0x0 configure); default 640x480. */
  readonly width?: number;
  readonly height?: number;
  /** After the last frame, keep the window up this long (ms) before disconnecting (default 0). */
  readonly lingerMs?: number;
  /** Stops after the current frame. */
  readonly signal?: AbortSignal;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Called after frame `n` was committed. */
  readonly onFrame?: (n: number) => void;
  /** A semi-transparent ARGB8888 square in a wl_subsurface over the toplevel (demo-client-scene.ts: overlayRect). */
  readonly overlay?: boolean;
}

/** What the client saw (the --report JSON). */
export interface DemoReport {
  /** frames drawn and committed */
  frames: number;
  /** wp_presentation_feedback.presented events */
  presented: number;
  /** wp_presentation_feedback.discarded events */
  discarded: number;
  /** presented with the ZERO_COPY flag (the client's own buffer was scanned out) */
  zeroCopy: number;
  /** presentation feedbacks with no answer when the client left */
  unanswered: number;
  /** whether the compositor offers wp_presentation */
  presentation: boolean;
  /** frames per second over the run (from the presentation timestamps when there are two, else the wall clock) */
  fps: number;
  /** frame callbacks that did not come within the wait (the frame was drawn anyway) */
  frameTimeouts: number;
  width: number;
  height: number;
  format: string;
  modifier: string;
  /** the pick came from a scanout tranche */
  scanoutTranche: boolean;
  /** allocators that made the buffers ('dumb@card0', 'udmabuf', ...) */
  allocators: string[];
  allocations: number;
  /** buffer ring re-allocations after feedback changes */
  reallocations: number;
  /** bytes written by the CPU over the run, and what full redraws would have written */
  bytesDrawn: number;
  bytesFullRedraw: number;
  durationMs: number;
  /** the overlay subsurface (--overlay): where it is on the toplevel and its buffer's format and modifier */
  overlay: { x: number; y: number; width: number; height: number; format: string; modifier: string } | null;
  /** the fatal protocol or connection error, if any */
  error: string | null;
}

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const FRAME_WAIT_MS = 2000;
const RELEASE_WAIT_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function findGlobal(globals: readonly GlobalInfo[], iface: string): GlobalInfo | undefined {
  return globals.find((g) => g.interface === iface);
}

/** Resolves with true when `cb` is done, false after `ms`. */
function callbackDone(cb: WaylandProxy<'wl_callback'>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    cb.on('done', () => {
      clearTimeout(timer);
      cb.destroy();
      resolve(true);
    });
  });
}

function area(rects: readonly Rect[]): number {
  return rects.reduce((a, r) => a + r.width * r.height, 0);
}

/**
 * The overlay: a synchronized wl_subsurface of the toplevel with one ARGB8888 buffer of
 * OVERLAY_PIXEL (a ring of one from the subsurface's own feedback), placed by overlayRect for the
 * toplevel's size; redrawn only when that size changes.
 */
class Overlay {
  #ring: BufferRing | null = null;
  #drawn: { w: number; h: number } | null = null;
  #info: DemoReport['overlay'] = null;

  private constructor(
    readonly surface: WaylandProxy<'wl_surface'>,
    readonly subsurface: WaylandProxy<'wl_subsurface'>,
    readonly feedback: FeedbackWatch,
    readonly dmabuf: ClientDmabuf,
    readonly allocators: ReturnType<typeof clientAllocators>,
  ) {}

  static async open(sub: WaylandProxy<'wl_subcompositor'>, compositor: WaylandProxy<'wl_compositor'>, parent: WaylandProxy<'wl_surface'>, dmabuf: ClientDmabuf, allocators: ReturnType<typeof clientAllocators>): Promise<Overlay> {
    const surface = compositor.request('create_surface', {});
    const subsurface = sub.request('get_subsurface', { surface, parent });
    sub.request('destroy', {}); // the subsurface lives on without its factory
    return new Overlay(surface, subsurface, await dmabuf.surfaceFeedback(surface), dmabuf, allocators);
  }

  /** For a w x h toplevel: the square drawn, attached, placed and committed (cached until the parent's commit). */
  async place(w: number, h: number, log: (line: string) => void): Promise<DemoReport['overlay']> {
    if (this.#drawn?.w === w && this.#drawn.h === h) return this.#info;
    const r = overlayRect(w, h);
    this.#ring?.close();
    const ring = (this.#ring = new BufferRing({ dmabuf: this.dmabuf, feedback: this.feedback, allocators: this.allocators, width: r.width, height: r.height, formats: [AR24], count: 1 }));
    const buf = ring.acquire();
    if (!buf) throw new Error('the overlay ring gave no buffer');
    await buf.draw((px, stride) => {
      const words = new Uint32Array(px.buffer, px.byteOffset, Math.floor(px.byteLength / 4));
      for (let y = 0; y < r.height; y++) words.fill(OVERLAY_PIXEL, (y * stride) / 4, (y * stride) / 4 + r.width);
    });
    ring.attach(this.surface, buf);
    this.surface.request('damage_buffer', { x: 0, y: 0, width: r.width, height: r.height });
    this.subsurface.request('set_position', { x: r.x, y: r.y });
    this.surface.request('commit', {});
    this.#drawn = { w, h };
    this.#info = { ...r, format: formatName(buf.format), modifier: modifierName(buf.modifier) };
    log(`overlay: ${r.width}x${r.height} at ${r.x},${r.y} in a subsurface, ${this.#info.format} ${this.#info.modifier}`);
    return this.#info;
  }

  /** The protocol objects (before the parent's). */
  destroy(): void {
    this.subsurface.request('destroy', {});
    this.surface.request('destroy', {});
  }

  close(): void {
    this.#ring?.close();
    this.#ring = null;
    this.feedback.close();
  }
}

/** Runs the demo client until `frames` are drawn (or the signal aborts); resolves with its report. */
export async function runDemoClient(opts: DemoClientOptions = {}): Promise<DemoReport> {
  const frames = opts.frames ?? 120;
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`frames: ${frames} is not a positive integer`);
  const log = opts.log ?? (() => undefined);
  const t0 = performance.now();
  const report: DemoReport = {
    frames: 0, presented: 0, discarded: 0, zeroCopy: 0, unanswered: 0, presentation: false, fps: 0, frameTimeouts: 0,
    width: 0, height: 0, format: '', modifier: '', scanoutTranche: false, allocators: [], allocations: 0, reallocations: 0,
    bytesDrawn: 0, bytesFullRedraw: 0, durationMs: 0, overlay: null, error: null,
  };
  const conn = WaylandConnection.connect(opts.socket);
  const sys = openSystemAllocators();
  let ring: BufferRing | null = null;
  let feedback: FeedbackWatch | null = null;
  let dmabuf: ClientDmabuf | null = null;
  let overlay: Overlay | null = null;
  const pending = new Set<WaylandProxy<'wp_presentation_feedback'>>();
  try {
    const { registry, globals } = await conn.globals();
    const need = (iface: string): GlobalInfo => {
      const g = findGlobal(globals, iface);
      if (!g) throw new Error(`the compositor has no ${iface}`);
      return g;
    };
    const cg = need('wl_compositor');
    if (cg.version < 4) throw new Error(`wl_compositor version ${cg.version}: damage_buffer needs 4`);
    const compositor = conn.bind(registry, cg, 'wl_compositor', Math.min(cg.version, 5));
    const wm = conn.bind(registry, need('xdg_wm_base'), 'xdg_wm_base', 1);
    wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
    const pg = findGlobal(globals, 'wp_presentation');
    const presentation = pg ? conn.bind(registry, pg, 'wp_presentation', 1) : null;
    report.presentation = presentation !== null;
    dmabuf = await ClientDmabuf.bind(conn, { registry, globals });

    const surface = compositor.request('create_surface', {});
    const xdgSurface = wm.request('get_xdg_surface', { surface });
    const toplevel = xdgSurface.request('get_toplevel', {});
    toplevel.request('set_title', { title: 'primebuf demo' });
    toplevel.request('set_app_id', { app_id: 'primebuf-demo' });
    let size = { width: 0, height: 0 };
    let configured = false;
    let closed = false;
    toplevel.on('configure', ({ width, height }) => {
      size = { width: width > 0 ? width : (opts.width ?? 640), height: height > 0 ? height : (opts.height ?? 480) };
    });
    toplevel.on('close', () => (closed = true));
    const firstConfigure = new Promise<void>((resolve) => {
      xdgSurface.on('configure', ({ serial }) => {
        xdgSurface.request('ack_configure', { serial });
        configured = true;
        resolve();
      });
    });
    surface.request('commit', {});
    await conn.roundtrip();
    if (!configured) await Promise.race([firstConfigure, sleep(FRAME_WAIT_MS)]);
    if (!configured) throw new Error('no xdg_surface.configure');
    feedback = await dmabuf.surfaceFeedback(surface);

    const allocators = clientAllocators(sys);
    if (opts.overlay) {
      const sg = need('wl_subcompositor');
      overlay = await Overlay.open(conn.bind(registry, sg, 'wl_subcompositor', 1), compositor, surface, dmabuf, allocators);
    }
    const seen = new Set<string>();
    const drawnFrame = new Map<RingBuffer, number>();
    const makeRing = (): BufferRing => {
      const r = new BufferRing({
        dmabuf: dmabuf!, feedback: feedback!, allocators, width: size.width, height: size.height, formats: [XR24, AR24], count: 3,
        onReallocate: (e) => {
          report.reallocations++;
          log(`feedback changed: re-allocating (${e.to.ok ? `${formatName(e.to.format)} ${modifierName(e.to.modifier)}${e.to.scanout ? ', scanout tranche' : ''}` : 'none'})`);
        },
      });
      const p = r.pick;
      if (p.ok) log(`${size.width}x${size.height}: ${formatName(p.format)} ${modifierName(p.modifier)} from the ${p.scanout ? 'scanout' : 'main-device'} tranche`);
      return r;
    };
    ring = makeRing();
    let ringSize = { ...size };

    const frameTimes: number[] = [];
    const presentedNs: bigint[] = [];
    for (let n = 0; n < frames && !closed && !opts.signal?.aborted; n++) {
      if (conn.error) throw conn.error;
      if (size.width !== ringSize.width || size.height !== ringSize.height) {
        ring.close();
        drawnFrame.clear();
        ring = makeRing();
        ringSize = { ...size };
      }
      const w = ringSize.width;
      const h = ringSize.height;
      // (synchronized: the overlay's buffer and place take effect with this frame's commit)
      if (overlay) report.overlay = await overlay.place(w, h, log);
      let buf = ring.acquire();
      for (const until = performance.now() + RELEASE_WAIT_MS; !buf; buf = ring.acquire()) {
        if (performance.now() > until) throw new Error(`no buffer released within ${RELEASE_WAIT_MS} ms`);
        await conn.roundtrip();
        await sleep(2);
      }
      const full: Rect[] = [{ x: 0, y: 0, width: w, height: h }];
      const last = drawnFrame.get(buf);
      const redraw = last === undefined ? full : sceneDamage(last, n, w, h);
      await buf.draw((px, stride) => paintScene(px, stride, n, w, h, redraw));
      drawnFrame.set(buf, n);
      report.bytesDrawn += area(redraw) * 4;
      report.bytesFullRedraw += w * h * 4;
      if (!seen.has(buf.allocator)) {
        seen.add(buf.allocator);
        report.allocators.push(buf.allocator);
      }
      const p = ring.pick;
      if (p.ok) {
        report.format = formatName(buf.format);
        report.modifier = modifierName(buf.modifier);
        report.scanoutTranche = p.scanout;
      }
      ring.attach(surface, buf);
      for (const r of n === 0 ? full : sceneDamage(n - 1, n, w, h)) surface.request('damage_buffer', { x: r.x, y: r.y, width: r.width, height: r.height });
      const cb = surface.request('frame', {});
      if (presentation) {
        const fb = presentation.request('feedback', { surface });
        pending.add(fb);
        fb.on('presented', ({ tv_sec_hi, tv_sec_lo, tv_nsec, flags }) => {
          pending.delete(fb);
          fb.destroy();
          report.presented++;
          if (flags & PRESENTATION_ZERO_COPY) report.zeroCopy++;
          presentedNs.push(((BigInt(tv_sec_hi >>> 0) << 32n) | BigInt(tv_sec_lo >>> 0)) * 1_000_000_000n + BigInt(tv_nsec >>> 0));
        });
        fb.on('discarded', () => {
          pending.delete(fb);
          fb.destroy();
          report.discarded++;
        });
      }
      surface.request('commit', {});
      report.frames++;
      frameTimes.push(performance.now());
      opts.onFrame?.(n);
      if (!(await Promise.race([callbackDone(cb, FRAME_WAIT_MS), conn.roundtrip().then(() => new Promise<boolean>(() => undefined))]))) {
        report.frameTimeouts++;
      }
    }
    // The last frames' feedback, then the linger.
    for (const until = performance.now() + FRAME_WAIT_MS; pending.size > 0 && performance.now() < until && !conn.error; ) {
      await conn.roundtrip();
      await sleep(5);
    }
    if (opts.lingerMs) {
      log(`frame ${report.frames - 1} was the last; lingering ${opts.lingerMs} ms`);
      await sleep(opts.lingerMs);
    }
    if (conn.error) throw conn.error;
    report.allocations = ring.allocations;
    report.width = ringSize.width;
    report.height = ringSize.height;
    if (presentedNs.length >= 2) {
      presentedNs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      report.fps = ((presentedNs.length - 1) * 1e9) / Number(presentedNs.at(-1)! - presentedNs[0]!);
    } else if (frameTimes.length >= 2) {
      report.fps = ((frameTimes.length - 1) * 1000) / (frameTimes.at(-1)! - frameTimes[0]!);
    }
    overlay?.destroy();
    toplevel.request('destroy', {});
    xdgSurface.request('destroy', {});
    surface.request('destroy', {});
    await conn.roundtrip();
  } catch (err) {
    report.error = (conn.error ?? (err as Error)).message;
  } finally {
    report.unanswered = pending.size;
    try {
      ring?.close();
      overlay?.close();
      feedback?.close();
      dmabuf?.close();
    } catch (err) {
      report.error ??= (err as Error).message;
    }
    conn.close();
    sys.close();
    report.durationMs = Math.round(performance.now() - t0);
  }
  return report;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      frames: { type: 'string' },
      report: { type: 'string' },
      socket: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      linger: { type: 'string' },
      overlay: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: demo-client [--frames N] [--report FILE] [--socket NAME] [--width W --height H] [--linger MS] [--overlay] [--quiet]');
    return 0;
  }
  const num = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new RangeError(`--${name} ${v}: not a non-negative integer`);
    return x;
  };
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  const log = values.quiet ? undefined : (line: string) => console.error(`demo-client: ${line}`);
  const report = await runDemoClient({
    frames: num('frames', values.frames),
    socket: values.socket,
    width: num('width', values.width),
    height: num('height', values.height),
    lingerMs: num('linger', values.linger),
    overlay: values.overlay === true,
    signal: ac.signal,
    log,
  });
  if (values.report) writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);
  log?.(`${report.frames} frames, ${report.presented} presented (${report.zeroCopy} zero-copy), ${report.discarded} discarded, ${report.fps.toFixed(1)} fps`);
  if (report.error) {
    console.error(`demo-client: ${report.error}`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      console.error(`demo-client: ${err.message}`);
      process.exitCode = 2;
    },
  );
}
