// Real multi-surface clients in the kiosk on the real vkms kernel (issue 20, "Real clients in the
// kiosk, failing not skipping"): weston-subsurfaces (a toplevel with two desynchronized
// subsurfaces, wl_shm), GStreamer's `videotestsrc ! waylandsink` (the video in a subsurface
// scaled by wp_viewporter over a 1x1 black toplevel) and `v4l2src io-mode=dmabuf ! waylandsink`
// from vivid (a third-party dma-buf client). Each client's libwayland trace (WAYLAND_DEBUG=client,
// test/util/wayland-trace.ts) says what it bound, where it put its subsurfaces and what it
// committed; the writeback capture must show them there:
// - weston-subsurfaces: with the client stopped (SIGSTOP) twice, the pixels that changed between
//   the two captures all lie inside its subsurfaces' rectangles (its toplevel did not commit
//   between them), and some did: the subsurfaces are on screen and move on;
// - videotestsrc: solid green 320x120 in its window (the configured 1024x768: a 1024x384 band,
//   rows 192..575; or its own size, centred on the screen: waylandsink's size depends on timing,
//   real-clients.ts), green every pixel, black around it (the band's edge rows aside, where a
//   scaler may blend);
// - vivid (640x480 BGRx, its 75% colour bars): its dma-bufs reach the kiosk through linux-dmabuf,
//   the eight bars are where the viewport puts them, and two captures differ (vivid's counters).
// Each: the client keeps committing, gets no wl_display.error, the kiosk logs no protocol error
// and no failed frame, and nothing is left behind (fds, GEM handles, framebuffers: leak.ts).
//
// Until the kiosk has wl_subcompositor and wp_viewporter (issue 20's protocols) and composes its
// scene, these fail: waylandsink refuses a compositor without wl_subcompositor ("Could not bind
// to wl_subcompositor"), and weston-subsurfaces cannot create its subsurfaces. The trace-side
// expectations (waylandsinkLayout, subsurfaceRects) were checked against Weston 10 in the guest.
import t from 'tap';
import { startKiosk, type Kiosk, type KioskCapture, type KioskOptions } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { haveDebugfs, leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';
import {
  VIDEOTEST_GREEN, VIVID_BARS, VIVID_SIZE, XR24, barOf, spawnTraced, subsurfaceRects, videotestArgs, vividArgs,
  vividCaptureNode, waylandsinkLayout, type Rect, type TracedClient,
} from '../util/real-clients.js';

t.setTimeout(1_200_000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');
privateRuntimeDir(t, 'primebuf-real-clients-');

/** Waits for the first frames of a real client under emulation. */
const START_MS = 240_000;

async function withKiosk(t: TapTest, socket: string, fn: (k: Kiosk, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  // hideCursor: the scene's default cursor image stays off the captures (an option the scene work
  // adds beside --hide-cursor; ignored by a kiosk without a cursor)
  const opts = { device: vkms.path, socket, log: (l: string) => log.push(l), hideCursor: true } as KioskOptions;
  const k = await startKiosk(opts);
  try {
    await fn(k, log);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}`);
    await k.close();
  }
}

const pixelsOf = (c: KioskCapture): ((x: number, y: number) => number) => {
  const v = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
  return (x, y) => v.getUint32(y * c.stride + x * 4, true) & 0xffffff;
};

const inside = (r: Rect, x: number, y: number): boolean => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;

/** The kiosk's log says frames fail or a client hit a protocol error: no use waiting for frames. */
const failing = (log: string[]): boolean => log.some((l) => /protocol error|frame failed|error in /i.test(l));

/** What every client must hold to: running, no wl_display.error, no protocol error or failed frame in the kiosk's log. */
function healthy(t: TapTest, c: TracedClient, log: string[], what: string): void {
  t.equal(c.exit(), undefined, `${what} is still running${c.exit() ? ` (exit ${c.exit()}: ${c.output()})` : ''}`);
  t.same(c.trace.errors, [], `${what} got no wl_display.error`);
  t.same(log.filter((l) => /protocol error|frame failed|error in /i.test(l)).slice(0, 5), [], 'the kiosk logged no protocol error and no failed frame');
}

/**
 * With waylandsink stopped (SIGSTOP): its layout from the trace and a capture of the same moment;
 * `band`: where the video must be on screen (the toplevel centred by the kiosk, the video placed in it).
 */
async function stoppedCapture(k: Kiosk, c: TracedClient, video: { width: number; height: number }): Promise<{ lay: ReturnType<typeof waylandsinkLayout>; cap: KioskCapture; band: Rect | undefined }> {
  c.child.kill('SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 300)); // its last trace lines read, its last commit shown
    const lay = waylandsinkLayout(c.trace, video);
    const cap = await k.capture();
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const win = lay.window;
    const band = lay.expected && win ? { ...lay.expected, x: Math.floor((W - win.width) / 2) + lay.expected.x, y: Math.floor((H - win.height) / 2) + lay.expected.y } : undefined;
    return { lay, cap, band };
  } finally {
    c.child.kill('SIGCONT');
  }
}

/**
 * Starts `gst-launch-1.0 ARGS` and waits until `ready`. GStreamer 1.22's waylandsink waits 100 ms
 * for its toplevel's first configure and then commits a buffer anyway (gstwlwindow.c); in a loaded
 * TCG guest the kiosk's configure can come later, and the kiosk rightly answers with
 * xdg_surface.error unconfigured_buffer (seen once in a full VM run on a host running three other
 * VMs). That race, and only it (that one error, and the client's own trace showing its buffer
 * committed unacked at least 100 ms after its surface's first commit), gets one more try with a new
 * client, said in a comment; the kiosk's log lines of the raced client are dropped with it.
 */
async function startWaylandsink(t: TapTest, k: Kiosk, log: string[], args: string[], ready: (c: TracedClient) => boolean): Promise<{ c: TracedClient; started: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const c = spawnTraced('gst-launch-1.0', args, k.socket);
    const started = await until(() => c.exit() !== undefined || failing(log) || ready(c), START_MS, 50);
    if (attempt === 1 && failing(log)) await until(() => c.trace.errors.length > 0 || c.exit() !== undefined, 5000, 20);
    const race = c.trace.unconfiguredCommit;
    const raced = race !== undefined && race.waitedMs >= 100 && c.trace.errors.length === 1 && /\(xdg_surface@\d+, 3,/.test(c.trace.errors[0]!);
    if (attempt === 1 && raced) {
      t.comment(`waylandsink committed its buffer ${race.waitedMs.toFixed(1)} ms after its first commit without waiting for the configure (GStreamer's 100 ms limit), and the kiosk answered unconfigured_buffer: once more with a new client`);
      await c.stop();
      log.splice(0);
      continue;
    }
    return { c, started };
  }
}

/** The subsurface commits of `c` so far. */
const subCommits = (c: TracedClient): number => [...c.trace.subsurfaces.keys()].reduce((n, s) => n + c.trace.commitsOf(s), 0);

leakFree(t as TapTest, 'weston-subsurfaces: its two subsurfaces are on screen and move on, its toplevel beneath stays still', async (t) => {
  await withKiosk(t, 'real-subsurfaces', async (k, log) => {
    const c = spawnTraced('weston-subsurfaces', [], k.socket);
    try {
      const started = await until(() => c.exit() !== undefined || failing(log) || (subCommits(c) >= 40 && k.stats().frames >= 10), START_MS, 50);
      t.ok(started && c.exit() === undefined && !failing(log), `it runs and commits its subsurfaces (${subCommits(c)} subsurface commits, ${k.stats().frames} kiosk frames; exit ${c.exit() ?? 'none'}: ${c.output().slice(0, 800)})`);
      t.comment(`its buffers: ${[...new Set(c.trace.created.map((b) => `${b.kind} ${b.width}x${b.height} format ${b.format}`))].join(', ')}; attached: ${[...c.trace.attachedBuffer].map(([s, b]) => `surface ${s}: ${b.width}x${b.height} format ${b.format}`).join(', ')}`);
      t.ok(c.trace.bound.includes('wl_subcompositor'), `it bound wl_subcompositor (bound: ${c.trace.bound.join(', ')})`);
      t.equal(c.trace.subsurfaces.size, 2, 'two subsurfaces');
      if (!started || c.exit() !== undefined || failing(log) || c.trace.subsurfaces.size === 0) {
        healthy(t, c, log, 'weston-subsurfaces');
        return;
      }
      const [root] = c.trace.roots();
      const rootBuf = root !== undefined ? c.trace.attachedBuffer.get(root) : undefined;
      t.ok(rootBuf, `its toplevel has a buffer (${rootBuf ? `${rootBuf.width}x${rootBuf.height}` : 'none'})`);
      const { hdisplay: W, vdisplay: H } = k.output.mode;
      // the toplevel as the kiosk places a fullscreen surface: centred (at 0,0 when it fills the mode)
      const origin = { x: Math.floor((W - (rootBuf?.width ?? W)) / 2), y: Math.floor((H - (rootBuf?.height ?? H)) / 2) };
      const snap = async (): Promise<{ cap: KioskCapture; rootCommits: number; subs: number }> => {
        c.child.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 300));
        const cap = await k.capture();
        const r = { cap, rootCommits: root !== undefined ? c.trace.commitsOf(root) : 0, subs: subCommits(c) };
        c.child.kill('SIGCONT');
        return r;
      };
      const a = await snap();
      t.ok(await until(() => subCommits(c) >= a.subs + 10, 60_000, 20), `10 more subsurface commits (${subCommits(c) - a.subs})`);
      const b = await snap();
      const rects = subsurfaceRects(c.trace, () => origin);
      t.comment(`subsurfaces: ${rects.map((r) => `${r.surface}: ${r.width}x${r.height} at ${r.x},${r.y}`).join('; ')}; toplevel ${rootBuf?.width}x${rootBuf?.height} at ${origin.x},${origin.y}`);
      t.equal(b.rootCommits, a.rootCommits, 'its toplevel did not commit between the captures');
      const pa = pixelsOf(a.cap);
      const pb = pixelsOf(b.cap);
      let changedIn = 0;
      let changedOut = 0;
      let firstOut = '';
      let lit = 0;
      for (let y = 0; y < a.cap.height; y++) {
        for (let x = 0; x < a.cap.width; x++) {
          const va = pa(x, y);
          if (va !== 0) lit++;
          if (va === pb(x, y)) continue;
          if (rects.some((r) => inside(r, x, y))) changedIn++;
          else if (changedOut++ === 0) firstOut = ` (first at ${x},${y})`;
        }
      }
      t.ok(lit > 1000, `the capture is not black (${lit} lit pixels)`);
      t.ok(changedIn > 50, `pixels changed inside its subsurfaces between the captures (${changedIn})`);
      t.equal(changedOut, 0, `no pixel changed outside its subsurfaces${firstOut}`);
      healthy(t, c, log, 'weston-subsurfaces');
    } finally {
      c.child.kill('SIGCONT');
      const e = await c.stop();
      t.ok(['0', 'SIGINT'].includes(e), `it stopped on SIGINT (exit ${e})`);
    }
  });
});

leakFree(t as TapTest, 'videotestsrc ! waylandsink: solid green 320x120 scaled by its viewport into a centred band, black around it', async (t) => {
  await withKiosk(t, 'real-videotest', async (k, log) => {
    const { c, started } = await startWaylandsink(t, k, log, videotestArgs(), (c) => subCommits(c) >= 30 && k.stats().frames >= 10);
    try {
      t.ok(started && c.exit() === undefined, `it runs and commits its video subsurface (${subCommits(c)} commits, ${k.stats().frames} kiosk frames; exit ${c.exit() ?? 'none'}: ${c.output().slice(0, 800)})`);
      if (c.exit() !== undefined) return;
      const n0 = subCommits(c);
      t.ok(await until(() => subCommits(c) >= n0 + 20, 60_000, 20), `it keeps committing (${subCommits(c) - n0} more)`);
      // stopped, so that its layout (read from the trace) and the capture are of the same moment
      const { lay, cap, band } = await stoppedCapture(k, c, VIDEOTEST_GREEN);
      t.same(lay.problems, [], 'its surfaces are laid out as waylandsink does: the window configured or the video\'s size, the video fitted and centred');
      if (!lay.sub || !band) return;
      const vb = c.trace.attachedBuffer.get(lay.sub.surface);
      t.equal(vb?.kind, 'shm', 'the video comes in wl_shm buffers');
      const px = pixelsOf(cap);
      // the band's edge rows and columns may be blended by a scaler: 1 pixel either side is left out
      const core: Rect = { x: band.x + 1, y: band.y + 1, width: band.width - 2, height: band.height - 2 };
      const halo: Rect = { x: band.x - 1, y: band.y - 1, width: band.width + 2, height: band.height + 2 };
      let badGreen = 0;
      let badBlack = 0;
      let first = '';
      for (let y = 0; y < cap.height; y++) {
        for (let x = 0; x < cap.width; x++) {
          const v = px(x, y);
          if (inside(core, x, y)) {
            if (v !== VIDEOTEST_GREEN.colour && badGreen++ === 0 && !first) first = ` first (${x},${y}) 0x${v.toString(16)} want green`;
          } else if (!inside(halo, x, y)) {
            if (v !== 0 && badBlack++ === 0 && !first) first = ` first (${x},${y}) 0x${v.toString(16)} want black`;
          }
        }
      }
      t.comment(`window ${lay.window?.width}x${lay.window?.height}; video band ${band.width}x${band.height} at ${band.x},${band.y} on screen`);
      t.equal(badGreen, 0, `every pixel of the band is green${first}`);
      t.equal(badBlack, 0, `every pixel around it is black${first}`);
      healthy(t, c, log, 'waylandsink');
    } finally {
      const e = await c.stop();
      t.ok(['0', 'SIGINT'].includes(e), `it stopped on SIGINT (exit ${e})`);
    }
  });
});

leakFree(t as TapTest, 'v4l2src (vivid) io-mode=dmabuf ! waylandsink: its dma-bufs reach the kiosk, the colour bars where the viewport puts them, and it moves', async (t) => {
  const dev = vividCaptureNode();
  await withKiosk(t, 'real-vivid', async (k, log) => {
    const { c, started } = await startWaylandsink(t, k, log, vividArgs(dev), (c) => subCommits(c) >= 10 && k.stats().frames >= 5);
    try {
      t.ok(started && c.exit() === undefined, `it runs and commits its video subsurface (${subCommits(c)} commits, ${k.stats().frames} kiosk frames; exit ${c.exit() ?? 'none'}: ${c.output().slice(0, 800)})`);
      t.ok(c.trace.bound.includes('zwp_linux_dmabuf_v1'), 'it bound zwp_linux_dmabuf_v1');
      if (c.exit() !== undefined) return;
      const n0 = subCommits(c);
      t.ok(await until(() => subCommits(c) >= n0 + 5, 60_000, 20), `it keeps committing (${subCommits(c) - n0} more)`);
      const { lay, cap: a, band } = await stoppedCapture(k, c, VIVID_SIZE);
      t.same(lay.problems, [], 'its surfaces are laid out as waylandsink does');
      if (!lay.sub || !band) return;
      const vb = c.trace.attachedBuffer.get(lay.sub.surface);
      t.same(vb && { kind: vb.kind, format: vb.format, width: vb.width, height: vb.height }, { kind: 'dmabuf', format: XR24, ...VIVID_SIZE }, 'the video comes in vivid\'s own dma-bufs (linux-dmabuf, XRGB8888), not copied into wl_shm');
      const dmabufs = c.trace.created.filter((b) => b.kind === 'dmabuf').length;
      t.ok(dmabufs >= 2 && dmabufs <= 16, `one wl_buffer per vivid buffer, not one per frame (${dmabufs})`);
      const n1 = subCommits(c);
      t.ok(await until(() => subCommits(c) >= n1 + 5, 60_000, 20), 'five frames later');
      const b = await k.capture();
      const pa = pixelsOf(a);
      // the lower quarter of the picture holds only the bars (vivid's text is at the top)
      const y = band.y + Math.floor((band.height * 3) / 4);
      const seen = VIVID_BARS.map((_, i) => barOf(pa(band.x + Math.floor(((i + 0.5) * band.width) / VIVID_BARS.length), y)));
      t.same(seen, [...VIVID_BARS], `the 75% colour bars across the band at row ${y}`);
      let changed = 0;
      const pb = pixelsOf(b);
      for (let yy = band.y; yy < band.y + band.height; yy++) for (let x = band.x; x < band.x + band.width; x++) if (pa(x, yy) !== pb(x, yy)) changed++;
      t.ok(changed > 0, `two captures five frames apart differ (${changed} pixels: vivid's counters)`);
      healthy(t, c, log, 'waylandsink (vivid)');
    } finally {
      const e = await c.stop();
      t.ok(['0', 'SIGINT'].includes(e), `it stopped on SIGINT (exit ${e})`);
    }
  });
});
