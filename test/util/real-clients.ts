/**
 * The real multi-surface clients of issue 20 (Debian 12's weston-subsurfaces and GStreamer 1.22's
 * waylandsink), how to run them with their libwayland trace, and what a compositor must show
 * of them, predicted from that trace. Used by test/vkms/real-clients-scene.test.ts (against the
 * kiosk) and bench/scene.mjs; the trace-side expectations hold under Weston too (checked in the
 * guest: see the test file's header).
 *
 * What the clients do (WAYLAND_DEBUG=client under Weston 10 in the vkms guest):
 * - weston-subsurfaces: wl_compositor v3, wl_subcompositor, wp_viewporter (bound, unused), wl_shm,
 *   xdg_wm_base (plus relative-pointer, pointer-constraints, data-device, wl_output); a toplevel
 *   (400x300 ARGB8888 wl_shm with its decorations when not fullscreen) and two desynchronized
 *   subsurfaces of it: a cairo one (ARGB8888 wl_shm, about 101x102) and an EGL triangle (Mesa's
 *   software path on wl_shm, ABGR2101010 under Weston-pixman), each redrawn on its own frame
 *   callbacks (about 24 commits a second together under emulation); the toplevel commits twice.
 * - gst-launch-1.0 videotestsrc ! waylandsink: wl_compositor v4, wl_subcompositor (required),
 *   wp_viewporter, wl_shm, xdg_wm_base, zwp_linux_dmabuf_v1 v3 when offered; a toplevel whose
 *   buffer is a 1x1 XRGB8888 black wl_shm buffer scaled by its viewport to the window, and the
 *   video in a desynchronized subsurface whose viewport sets the destination (the video fitted
 *   into the configured size, centred; the video's own size when configured 0x0), wl_shm
 *   XRGB8888 (BGRx) buffers one pool each, damage_buffer, frame callbacks.
 * - v4l2src io-mode=dmabuf ! waylandsink: the same surfaces; with linux-dmabuf the video buffers
 *   are vivid's own dma-bufs (zwp_linux_buffer_params_v1.create, LINEAR, one plane), else copied
 *   into wl_shm. Without a caps filter vivid gives 3840x2160 at 15 fps (YUY2 to Weston-GL,
 *   RGBA8888 wl_shm to Weston-pixman); Weston 10's GL renderer on llvmpipe died (SIGSEGV) on the
 *   first YUYV dma-buf, so the test fixes BGRx (XRGB8888) at 640x480.
 * waylandsink's window size depends on timing, and the expectations read it from the trace:
 * GStreamer 1.22 waits only 100 ms for the first configure. Not fullscreen, it then sets its window
 * to the video's size (and to the configured size when a configure comes, before or later), so in
 * the kiosk it was the mode's size one run and the video's size the next; with fullscreen=true a
 * configure later than 100 ms leaves it without a size ("Window has no size set": the pipeline
 * fails; seen in the kiosk under emulation). So it runs windowed, and the window is either the
 * configured size or the video's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaylandTrace, type TracedSubsurface } from './wayland-trace.js';

/** videotestsrc: one known colour (green, 0xff00ff00) at 320x120 (8:3): letterboxed in a 4:3 window. */
export const VIDEOTEST_GREEN = { colour: 0x00ff00, width: 320, height: 120 };
export function videotestArgs(): string[] {
  const { width, height } = VIDEOTEST_GREEN;
  return ['videotestsrc', 'is-live=true', 'pattern=solid-color', 'foreground-color=0xff00ff00', '!',
    `video/x-raw,format=BGRx,width=${width},height=${height},framerate=30/1`, '!', 'waylandsink'];
}

/** vivid through v4l2src into waylandsink, its dma-bufs passed on (io-mode=dmabuf), BGRx 640x480. */
export const VIVID_SIZE = { width: 640, height: 480 };
export function vividArgs(device: string): string[] {
  return ['v4l2src', `device=${device}`, 'io-mode=dmabuf', '!',
    `video/x-raw,format=BGRx,width=${VIVID_SIZE.width},height=${VIVID_SIZE.height}`, '!', 'waylandsink'];
}

/** DRM_FORMAT_XRGB8888 ('XR24'). */
export const XR24 = 0x34325258;

/** vivid's video capture node (/sys/class/video4linux/videoN/name "vivid-000-vid-cap"), else /dev/video0. */
export function vividCaptureNode(): string {
  const dir = '/sys/class/video4linux';
  for (const n of existsSync(dir) ? readdirSync(dir).sort() : []) {
    try {
      if (/vivid-\d+-vid-cap/.test(readFileSync(join(dir, n, 'name'), 'utf8'))) return `/dev/${n}`;
    } catch {
      // not readable: not ours
    }
  }
  return '/dev/video0';
}

export interface TracedClient {
  readonly child: ChildProcess;
  readonly trace: WaylandTrace;
  /** its stdout and non-trace stderr lines (the first 3000 characters) */
  readonly output: () => string;
  /** its whole stdout */
  readonly stdout: () => string;
  /** exit code or signal once it exited, else undefined */
  readonly exit: () => string | undefined;
  readonly exited: Promise<string>;
  /** SIGINT, then SIGKILL after `ms`; resolves with the exit */
  stop(ms?: number): Promise<string>;
}

/** Spawns `cmd` as a client of `socket` with WAYLAND_DEBUG=client, its trace read as it runs. */
export function spawnTraced(cmd: string, args: string[], socket: string, env: NodeJS.ProcessEnv = process.env): TracedClient {
  const child = spawn(cmd, args, { env: { ...env, WAYLAND_DISPLAY: socket, WAYLAND_DEBUG: 'client' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const trace = new WaylandTrace();
  let out = '';
  let exit: string | undefined;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => trace.push(d.toString()));
  const exited = new Promise<string>((resolve) => child.on('exit', (code, sig) => resolve((exit = String(sig ?? code)))));
  return {
    child,
    trace,
    output: () => `${trace.other.join('\n')}\n${out}`.slice(0, 3000),
    stdout: () => out,
    exit: () => exit,
    exited,
    async stop(ms = 10_000): Promise<string> {
      if (exit !== undefined) return exit;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** `src` fitted into `dst` keeping its aspect, centred (GStreamer's gst_video_center_rect with scaling). */
export function fitCentred(src: { width: number; height: number }, dst: Rect): Rect {
  const srcRatio = src.width / src.height;
  const dstRatio = dst.width / dst.height;
  if (srcRatio > dstRatio) {
    const h = Math.trunc(dst.width / srcRatio);
    return { x: dst.x, y: dst.y + Math.trunc((dst.height - h) / 2), width: dst.width, height: h };
  }
  if (srcRatio < dstRatio) {
    const w = Math.trunc(dst.height * srcRatio);
    return { x: dst.x + Math.trunc((dst.width - w) / 2), y: dst.y, width: w, height: dst.height };
  }
  return { ...dst };
}

/** The size the client was last configured to (0x0 when the compositor left it to the client). */
export function configured(tr: WaylandTrace): { width: number; height: number } {
  return tr.configures.at(-1) ?? { width: 0, height: 0 };
}

/** The surface's size on screen: its viewport's destination, else its buffer's size. */
export function surfaceSize(tr: WaylandTrace, surface: number): { width: number; height: number } | undefined {
  const d = tr.destination.get(surface);
  if (d && d.width > 0 && d.height > 0) return d;
  const b = tr.attachedBuffer.get(surface);
  return b ? { width: b.width, height: b.height } : undefined;
}

/**
 * waylandsink's layout as its trace says it, and what it should be: the toplevel (root) as big as
 * the configured size or the video's (its 1x1 buffer through the viewport: the window), the video
 * subsurface at the video fitted into that window, centred. `video`: the video's size. Problems
 * are listed, not thrown; `expected` is relative to the toplevel.
 */
export function waylandsinkLayout(tr: WaylandTrace, video: { width: number; height: number }): { problems: string[]; root?: number; sub?: TracedSubsurface; window?: { width: number; height: number }; expected?: Rect } {
  const problems: string[] = [];
  for (const g of ['wl_subcompositor', 'wp_viewporter']) if (!tr.bound.includes(g)) problems.push(`${g} not bound`);
  const subs = [...tr.subsurfaces.values()];
  if (subs.length !== 1) {
    problems.push(`${subs.length} subsurfaces (one expected)`);
    return { problems };
  }
  const sub = subs[0]!;
  const root = sub.parent;
  const conf = configured(tr);
  const rootSize = surfaceSize(tr, root);
  if (!rootSize) {
    problems.push('the toplevel has no buffer');
    return { problems, root, sub };
  }
  const window = { width: rootSize.width, height: rootSize.height };
  const same = (a: { width: number; height: number }): boolean => a.width === window.width && a.height === window.height;
  if (!same(video) && !(conf.width > 0 && same(conf))) problems.push(`the toplevel is ${window.width}x${window.height}: neither the configured ${conf.width}x${conf.height} nor the video's ${video.width}x${video.height}`);
  const expected = fitCentred(video, { x: 0, y: 0, ...window });
  const got = surfaceSize(tr, sub.surface);
  if (!got || got.width !== expected.width || got.height !== expected.height || sub.x !== expected.x || sub.y !== expected.y) {
    problems.push(`the video subsurface is ${got ? `${got.width}x${got.height}` : 'without a buffer'} at ${sub.x},${sub.y}; expected ${expected.width}x${expected.height} at ${expected.x},${expected.y}`);
  }
  const vb = tr.attachedBuffer.get(sub.surface);
  if (vb && (vb.width !== video.width || vb.height !== video.height)) problems.push(`the video buffer is ${vb.width}x${vb.height}, not ${video.width}x${video.height}`);
  if (!sub.desync) problems.push('the video subsurface is synchronized (waylandsink desynchronizes it)');
  return { problems, root, sub, window, expected };
}

/**
 * weston-subsurfaces' subsurfaces in output coordinates: each at its parent's origin plus its
 * position, as big as its buffer (or viewport); `origin`: where the root surface is on screen.
 */
export function subsurfaceRects(tr: WaylandTrace, origin: (root: number) => { x: number; y: number }): Array<Rect & { surface: number }> {
  const out: Array<Rect & { surface: number }> = [];
  const place = (s: number): { x: number; y: number } => {
    const sub = tr.subsurfaces.get(s);
    if (!sub) return origin(s);
    const p = place(sub.parent);
    return { x: p.x + sub.x, y: p.y + sub.y };
  };
  for (const sub of tr.subsurfaces.values()) {
    const size = surfaceSize(tr, sub.surface);
    if (!size) continue;
    out.push({ surface: sub.surface, ...place(sub.surface), ...size });
  }
  return out;
}

/** The 75% colour bars vivid draws, left to right, as which of R, G, B are lit. */
export const VIVID_BARS = ['white', 'yellow', 'cyan', 'green', 'magenta', 'red', 'blue', 'black'] as const;
const BAR_RGB: Record<(typeof VIVID_BARS)[number], [boolean, boolean, boolean]> = {
  white: [true, true, true], yellow: [true, true, false], cyan: [false, true, true], green: [false, true, false],
  magenta: [true, false, true], red: [true, false, false], blue: [false, false, true], black: [false, false, false],
};

/** Names a pixel (0xRRGGBB) as one of the bars: each channel lit (> 120) or dark (< 60); null when neither. */
export function barOf(px: number): (typeof VIVID_BARS)[number] | null {
  const ch = [(px >> 16) & 0xff, (px >> 8) & 0xff, px & 0xff];
  if (ch.some((c) => c >= 60 && c <= 120)) return null;
  const lit = ch.map((c) => c > 120);
  return VIVID_BARS.find((b) => BAR_RGB[b].every((v, i) => v === lit[i])) ?? null;
}
