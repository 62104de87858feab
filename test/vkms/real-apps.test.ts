// Real applications from Debian 12's packages in the kiosk on the real vkms kernel (issue 21, "Real
// applications from Debian packages, each in the kiosk in its own test, failing not skipping"),
// with input injected through virtual devices (test/util/uinput.ts: a keyboard, a relative pointer
// and a multitouch screen made through /dev/uinput, tagged by a udevd this file starts, each
// subtest's made before its kiosk starts, so the seat has all three capabilities when the app binds
// it; the kiosk's pointer starts at the output's centre and is steered by its own position,
// kiosk.pointer(), since libinput accelerates relative motion). Each app runs with its libwayland
// trace (WAYLAND_DEBUG=client, test/util/wayland-trace.ts); each capture is kept as a PNG
// (artifacts(): $PRIMEBUF_ARTIFACTS, else a temporary directory, named in a comment).
// - foot 1.13 (a terminal: wl_seat, wl_data_device_manager v3, wl_subcompositor, DejaVu Sans Mono
//   from fontconfig) running sh: its background (foot's default #111111) fills the screen but for
//   the prompt in the top left corner; `echo primebuf` and Enter typed on the virtual keyboard
//   change the capture only within the text rows, and the row below the prompt, empty before, has
//   the shell's output;
// - gtk3-widget-factory (GTK 3.24, GDK_BACKEND=wayland, no D-Bus): many colours over the whole
//   screen. Its minimum size (about 1160x768 as drawn) is wider than the 1024x768 mode: the kiosk
//   centres it and crops both sides, as it does any client bigger than the output. The pointer is
//   moved onto its first "togglebutton" and clicked: the button turns to its pressed look, so the
//   capture changes there, more than anywhere else (its spinners turn by themselves: what changes
//   without input is measured first and left out);
// - Qt 5.15's widgets example "calculator" (qtbase5-examples, through qtwayland5's platform plugin:
//   QT_QPA_PLATFORM=wayland): a fixed-size 304x298 window, centred on black, many colours in it;
//   a click on its "7" button changes its display (from "0" to "7");
// - wev: prints its toplevel's configure events and the events the test injects, in order: the
//   keys h and i (pressed, released, with their keysym names), a left button click, a touch down
//   and up (at the point touched); the kiosk survives its death (SIGKILL) with nothing left behind;
// - wl-clipboard 2.1: wl-copy maps a 1x1 surface, sets the selection with the serial of its
//   keyboard enter and forks a server for it; wl-paste maps its own, hears the selection's offer
//   and reads the text through a pipe from wl-copy's server: the text crosses between two clients.
// Every app must start, map a toplevel, render, get no wl_display.error, leave no protocol error or
// failed frame in the kiosk's log, stay up, and exit by itself (not by a signal) when the kiosk
// closes; nothing may be left behind in this process (fds, GEM handles, framebuffers: leak.ts).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { startKiosk, type Kiosk, type KioskCapture, type KioskOptions } from '../../compositor-example/kiosk.js';
import { writeScreenshot } from '../../compositor-example/screenshot.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { haveDebugfs, leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';
import { spawnTraced, type Rect, type TracedClient } from '../util/real-clients.js';
import { acquireUdev, BTN_LEFT, releaseUdev, VirtualInput } from '../util/uinput.js';

t.setTimeout(1_200_000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');
const runtime = privateRuntimeDir(t, 'primebuf-real-apps-');
const home = join(runtime, 'home'); // toolkits read and write their settings under $HOME
mkdirSync(home);
// udevd for the whole file (libinput takes only the devices udev tagged), stopped at its end
await acquireUdev();
t.teardown(releaseUdev);

/** Waits for an application's first frames under emulation (GTK and Qt take 10-30 s to start). */
const START_MS = 180_000;
/** How long an application's exit may take once the kiosk is gone. */
const EXIT_MS = 20_000;

/** Where the captures are kept: $PRIMEBUF_ARTIFACTS (created), else a temporary directory. */
function artifacts(): string {
  const dir = process.env.PRIMEBUF_ARTIFACTS;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  return mkdtempSync(join(tmpdir(), 'primebuf-real-apps-png-'));
}
const pngDir = artifacts();

function keep(t: TapTest, name: string, cap: KioskCapture): void {
  const path = join(pngDir, `real-apps-${name}.png`);
  const bytes = writeScreenshot(path, cap);
  t.comment(`capture kept: ${path} (${bytes} bytes)`);
}

const pixelsOf = (c: KioskCapture): ((x: number, y: number) => number) => {
  const v = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
  return (x, y) => v.getUint32(y * c.stride + x * 4, true) & 0xffffff;
};

const whole = (c: KioskCapture): Rect => ({ x: 0, y: 0, width: c.width, height: c.height });
const inside = (r: Rect, x: number, y: number): boolean => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;

/** Pixel counts by colour (0xRRGGBB) within `r`. */
function histogram(c: KioskCapture, r: Rect = whole(c)): Map<number, number> {
  const px = pixelsOf(c);
  const h = new Map<number, number>();
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) h.set(px(x, y), (h.get(px(x, y)) ?? 0) + 1);
  return h;
}

/** The pixels that differ between two captures: how many, and their bounding box. */
function changed(a: KioskCapture, b: KioskCapture): { count: number; box: Rect | null } {
  const pa = pixelsOf(a);
  const pb = pixelsOf(b);
  let count = 0;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      if (pa(x, y) === pb(x, y)) continue;
      count++;
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  return { count, box: count ? { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } : null };
}

const PROBLEM = /protocol error|frame failed|error in /i;
const failing = (log: string[]): boolean => log.some((l) => PROBLEM.test(l));
const mapped = (log: string[]): boolean => log.some((l) => /toplevel .* mapped/.test(l));

/** The toplevel's surface: the root surface the client committed most. */
function mainSurface(c: TracedClient): number | undefined {
  return c.trace.roots().sort((a, b) => c.trace.commitsOf(b) - c.trace.commitsOf(a))[0];
}
const rootCommits = (c: TracedClient): number => {
  const s = mainSurface(c);
  return s === undefined ? 0 : c.trace.commitsOf(s);
};

/** wl_seat.capabilities: pointer, keyboard and touch. */
const ALL_CAPS = 7;

/** Waits `ms` (the app draws what it was told). */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Moves the kiosk's pointer onto (x, y) of the screen with relative motion: libinput accelerates it,
 * so each step is half the distance left as the kiosk sees it (kiosk.pointer()). True once within
 * a pixel.
 */
async function pointTo(k: Kiosk, vi: VirtualInput, x: number, y: number): Promise<boolean> {
  const step = (d: number): number => (Math.abs(d) < 1 ? 0 : Math.sign(d) * Math.max(1, Math.min(Math.round(Math.abs(d) / 2), 60)));
  for (let i = 0; i < 100; i++) {
    const p = k.pointer();
    if (!p) return false;
    const [dx, dy] = [x - p.x, y - p.y];
    if (Math.abs(dx) < 1 && Math.abs(dy) < 1) return true;
    await vi.move(step(dx), step(dy));
    await until(() => k.pointer()?.x !== p.x || k.pointer()?.y !== p.y, 2000, 5);
  }
  return false;
}

/** The pixels changed between a and b within `r`, and those outside it (not in `ignore`). */
function changedIn(a: KioskCapture, b: KioskCapture, r: Rect, ignore?: Rect): { inside: number; outside: number; outsideBox: Rect | null } {
  const pa = pixelsOf(a);
  const pb = pixelsOf(b);
  let [n, m] = [0, 0];
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      if (pa(x, y) === pb(x, y)) continue;
      if (inside(r, x, y)) n++;
      else if (!ignore || !inside(ignore, x, y)) {
        m++;
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
      }
    }
  }
  return { inside: n, outside: m, outsideBox: m ? { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } : null };
}

/** A capture equal to the one taken 500 ms before it (what is shown stopped changing), within `ms`. */
async function stableCapture(k: Kiosk, ms: number, also: (c: KioskCapture) => boolean = () => true): Promise<KioskCapture | undefined> {
  let a = await k.capture();
  for (const end = Date.now() + ms; Date.now() < end;) {
    await sleep(500);
    const b = await k.capture();
    if (changed(a, b).count === 0 && also(b)) return b;
    a = b;
  }
  return undefined;
}

/** `r` grown by `m` pixels on every side. */
const grow = (r: Rect, m: number): Rect => ({ x: r.x - m, y: r.y - m, width: r.width + 2 * m, height: r.height + 2 * m });

/** What every application must hold to: running, no wl_display.error, nothing wrong in the kiosk's log. */
function healthy(t: TapTest, c: TracedClient, log: string[], what: string): void {
  t.equal(c.exit(), undefined, `${what} is still running${c.exit() ? ` (exit ${c.exit()}: ${c.output()})` : ''}`);
  t.same(c.trace.errors, [], `${what} got no wl_display.error`);
  t.same(log.filter((l) => PROBLEM.test(l)).slice(0, 5), [], 'the kiosk logged no protocol error and no failed frame');
}

interface App {
  /** the kiosk's socket name and the PNGs' */
  name: string;
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts the kiosk and `app` in it, waits until the app mapped its toplevel and the kiosk showed a
 * frame of it, runs `body`, then closes the kiosk and checks the app exits by itself, not by a
 * signal. The app is killed if anything before that failed.
 */
async function inKiosk(t: TapTest, app: App, body: (k: Kiosk, c: TracedClient, log: string[], vi: VirtualInput) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  const log: string[] = [];
  // the devices first: the seat has their capabilities when the app binds it
  const vi = await VirtualInput.create(`primebuf-${app.name}`);
  let k: Kiosk;
  try {
    k = await startKiosk({ device: vkms.path, socket: `apps-${app.name}`, log: (l: string) => log.push(l), hideCursor: true } as KioskOptions);
  } catch (err) {
    await vi.close();
    throw err;
  }
  try {
    await inKioskWith(t, app, k, log, vi, t0, body);
  } finally {
    await k.close();
    await vi.close();
  }
}

/** inKiosk's part with the kiosk running: the app, its start, `body`, its exit. */
async function inKioskWith(t: TapTest, app: App, k: Kiosk, log: string[], vi: VirtualInput, t0: number, body: (k: Kiosk, c: TracedClient, log: string[], vi: VirtualInput) => Promise<void>): Promise<void> {
  t.ok(log.some((l) => /^input: 3 device\(s\)/.test(l)), `the kiosk opened the three virtual devices (${log.filter((l) => /^input/.test(l)).join('; ')})`);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, ...app.env };
  delete env.DISPLAY; // Wayland only
  const c = spawnTraced(app.cmd, app.args, k.socket, env);
  try {
    const started = await until(() => c.exit() !== undefined || failing(log) || (mapped(log) && rootCommits(c) >= 1 && k.stats().frames >= 1), START_MS, 50);
    t.ok(started && c.exit() === undefined && !failing(log) && mapped(log),
      `${app.name} starts and maps a toplevel that the kiosk shows (${((Date.now() - t0) / 1000).toFixed(1)} s; ${rootCommits(c)} commits, ${k.stats().frames} kiosk frames; exit ${c.exit() ?? 'none'}: ${c.output().slice(0, 800)})`);
    t.comment(`${app.name} bound: ${[...new Set(c.trace.bound)].join(', ')}`);
    if (!started || c.exit() !== undefined || failing(log)) return;
    t.equal(c.trace.capabilities, ALL_CAPS, `${app.name} heard a seat with pointer, keyboard and touch`);
    await body(k, c, log, vi);
    healthy(t, c, log, app.name);
    const closing = Date.now();
    await k.close();
    const exited = await until(() => c.exit() !== undefined, EXIT_MS, 20);
    t.ok(exited, `${app.name} exits by itself once the kiosk is gone (${exited ? `${Date.now() - closing} ms` : 'still running'})`);
    t.match(c.exit() ?? '', /^\d+$/, `${app.name} exits with a status, not killed by a signal (exit ${c.exit()}: ${c.output().slice(-400)})`);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}`);
    await k.close(); // idempotent
    if (c.exit() === undefined) await c.stop(2000);
    t.comment(`${app.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  }
}

/** Commits of its toplevel surface stopped for `quietMs` (nothing left to draw), within `ms`. */
async function settled(c: TracedClient, quietMs: number, ms: number): Promise<boolean> {
  let last = rootCommits(c);
  let since = Date.now();
  return until(() => {
    const n = rootCommits(c);
    if (n !== last) [last, since] = [n, Date.now()];
    return Date.now() - since >= quietMs;
  }, ms, 50);
}

/** foot's default background (colors.background in foot 1.13's foot.ini, commented: the default). */
const FOOT_BACKGROUND = 0x111111;
/** Its cells: 2-pixel padding and 14-pixel rows at DejaVu Sans Mono 8 pt. */
const FOOT_PAD = 2;
const FOOT_ROW = 14;
/** The text rows typing touches: the command line, its output, the next prompt. */
const FOOT_TEXT_ROWS = FOOT_PAD + 3 * FOOT_ROW;

/** Pixels in `r` that are not foot's background. */
function ink(c: KioskCapture, r: Rect): number {
  return [...histogram(c, r)].filter(([p]) => p !== FOOT_BACKGROUND).reduce((n, [, v]) => n + v, 0);
}

leakFree(t as TapTest, 'foot: keys typed on the virtual keyboard reach its shell, and the text appears in the text rows only', async (t) => {
  await inKiosk(t, { name: 'foot', cmd: 'foot', args: ['--', 'sh'], env: { PS1: '$ ', ENV: '' } }, async (k, c, _log, vi) => {
    for (const g of ['wl_seat', 'wl_data_device_manager', 'wl_subcompositor']) t.ok(c.trace.bound.includes(g), `it bound ${g} (it exits without it)`);
    t.ok(await until(() => c.trace.keyboardEnters >= 1 && c.trace.pointer !== undefined, 30_000, 20), 'it has the keyboard focus and the pointer (wl_keyboard.enter, wl_pointer.enter)');
    // the shell's prompt and foot's focused (filled) cursor block drawn, its pointer cursor set: two
    // captures alike (the shell starts slowly under emulation; foot draws a hollow block until focused)
    const row = (i: number): Rect => ({ x: 0, y: FOOT_PAD + i * FOOT_ROW, width: k.output.mode.hdisplay, height: FOOT_ROW });
    const ready = await stableCapture(k, 60_000, (c) => ink(c, row(0)) > 100);
    const a = ready ?? (await k.capture());
    t.ok(ready, `the prompt and a filled cursor drawn, nothing changing (${ink(a, row(0))} pixels not background in the first row)`);
    keep(t, 'foot', a);
    const { width: W, height: H } = a;
    const bg = histogram(a).get(FOOT_BACKGROUND) ?? 0;
    t.ok(bg > 0.97 * W * H, `its background #111111 fills the screen but for the prompt (and the pointer's cursor) (${bg} of ${W * H} pixels)`);
    t.equal(ink(a, row(1)), 0, 'the second row is empty');
    const n0 = rootCommits(c);
    const typed = Date.now();
    await vi.type('echo primebuf\n');
    t.ok(await until(() => rootCommits(c) > n0, 30_000, 20) && (await settled(c, 1500, 60_000)), `it draws what was typed and settles (${rootCommits(c) - n0} commits)`);
    t.comment(`typing to the settled screen: ${Date.now() - typed} ms`);
    await sleep(200); // the last commit shown
    const b = await k.capture();
    keep(t, 'foot-typed', b);
    t.ok(ink(b, row(0)) > ink(a, row(0)) + 100, `the command is drawn after the prompt (${ink(a, row(0))} -> ${ink(b, row(0))} pixels not background)`);
    t.ok(ink(b, row(1)) > 100, `the shell ran it: its output "primebuf" in the second row (${ink(b, row(1))} pixels)`);
    t.ok(ink(b, row(2)) > 20, `and the next prompt in the third (${ink(b, row(2))} pixels)`);
    const d = changed(a, b);
    t.ok(d.box !== null && d.box.y >= FOOT_PAD && d.box.y + d.box.height <= FOOT_TEXT_ROWS, `nothing changed but the text rows (changed ${d.count} pixels in ${JSON.stringify(d.box)})`);
  });
});

/** gtk3-widget-factory's first togglebutton on the 1024x768 screen, centred and cropped (as its capture shows it). */
const GTK_TOGGLE: Rect = { x: 305, y: 11, width: 157, height: 33 };

leakFree(t as TapTest, 'gtk3-widget-factory: its widgets cover the screen in many colours, and a click on a togglebutton presses it', async (t) => {
  const env = { GDK_BACKEND: 'wayland', NO_AT_BRIDGE: '1', GSETTINGS_BACKEND: 'memory' };
  await inKiosk(t, { name: 'gtk3-widget-factory', cmd: 'gtk3-widget-factory', args: [], env }, async (k, c, _log, vi) => {
    const n0 = rootCommits(c);
    // its spinners turn: it commits on, each commit a kiosk frame
    const f0 = k.stats().frames;
    t.ok(await until(() => rootCommits(c) >= n0 + 5 && k.stats().frames >= f0 + 5, 60_000, 20), `it keeps drawing (${rootCommits(c) - n0} commits, ${k.stats().frames - f0} kiosk frames)`);
    const s = mainSurface(c);
    const buf = s !== undefined ? c.trace.attachedBuffer.get(s) : undefined;
    t.comment(`configured ${JSON.stringify(c.trace.configures.at(-1))}; its buffer ${buf?.width}x${buf?.height} (its minimum size is wider than the mode: centred and cropped)`);
    // the pointer onto the togglebutton's centre; it lights up under it (hover)
    const cx = GTK_TOGGLE.x + Math.floor(GTK_TOGGLE.width / 2);
    const cy = GTK_TOGGLE.y + Math.floor(GTK_TOGGLE.height / 2);
    const p0 = k.pointer();
    t.ok(await pointTo(k, vi, cx, cy), `the pointer steered from ${JSON.stringify(p0)} onto the togglebutton at ${cx},${cy} (at ${JSON.stringify(k.pointer())})`);
    t.ok(await until(() => c.trace.pointer !== undefined, 10_000, 20), `it heard the pointer (at ${JSON.stringify(c.trace.pointer)} on its surface)`);
    await sleep(1500);
    const a0 = await k.capture();
    await sleep(1000);
    const a = await k.capture();
    keep(t, 'gtk3-widget-factory', a);
    const h = histogram(a);
    t.ok(h.size > 300, `many distinct colours (${h.size})`);
    const black = h.get(0) ?? 0;
    t.ok(black < 0.01 * a.width * a.height, `it covers the screen (${black} black pixels)`);
    const [top, n] = [...h].sort((x, y) => y[1] - x[1])[0]!;
    t.ok(n < 0.8 * a.width * a.height, `no single colour fills it (#${top.toString(16).padStart(6, '0')}: ${n} pixels)`);
    // what changes by itself (its spinners), left out below
    const idle = changed(a0, a);
    t.comment(`without input, 1 s apart: ${idle.count} pixels changed in ${JSON.stringify(idle.box)}`);
    const calm = changedIn(a0, a, GTK_TOGGLE);
    t.equal(calm.inside, 0, 'the togglebutton stays as it is without a click');
    const ignore = idle.box ? grow(idle.box, 8) : undefined;
    const buttons = c.trace.pointerEvents;
    await vi.click(BTN_LEFT);
    t.comment(`pointer events heard: ${buttons} before the click`);
    await sleep(2000);
    const b = await k.capture();
    keep(t, 'gtk3-widget-factory-clicked', b);
    const d = changedIn(a, b, GTK_TOGGLE, ignore);
    t.ok(d.inside > 0.3 * GTK_TOGGLE.width * GTK_TOGGLE.height, `the click changes the togglebutton (${d.inside} pixels of its ${GTK_TOGGLE.width}x${GTK_TOGGLE.height})`);
    t.ok(d.inside > d.outside, `more than anywhere else (elsewhere ${d.outside} pixels in ${JSON.stringify(d.outsideBox)})`);
    const clickBox = grow(GTK_TOGGLE, 24);
    const near = changedIn(a, b, clickBox, ignore);
    t.ok(near.outside < 0.25 * near.inside, `most of what changed lies around the click (${near.inside} pixels within 24 of the button, ${near.outside} elsewhere)`);
  });
});

/** Qt's calculator example: its window is of a fixed size (QLayout::SetFixedSize). */
const QT_CALCULATOR = '/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/calculator/calculator';
/** In its window (as its capture shows it): the display, and the centre of the "7" button. */
const QT_DISPLAY: Rect = { x: 11, y: 12, width: 282, height: 35 };
const QT_SEVEN = { x: 79, y: 122 };

leakFree(t as TapTest, 'Qt 5 calculator (qtwayland5): its fixed-size window centred on black, many colours in it, still after it settled; a click on 7 shows 7', async (t) => {
  await inKiosk(t, { name: 'qt5-calculator', cmd: QT_CALCULATOR, args: [], env: { QT_QPA_PLATFORM: 'wayland' } }, async (k, c, _log, vi) => {
    t.ok(await until(() => c.trace.keyboardEnters >= 1 && c.trace.pointer !== undefined, 30_000, 20), 'it has the keyboard focus and the pointer (wl_keyboard.enter, wl_pointer.enter)');
    t.ok(await settled(c, 1500, 60_000), 'it settles (no commit for 1.5 s)');
    const s = mainSurface(c);
    const buf = s !== undefined ? c.trace.attachedBuffer.get(s) : undefined;
    t.ok(buf && buf.width < k.output.mode.hdisplay && buf.height < k.output.mode.vdisplay, `a window smaller than the mode (${buf?.width}x${buf?.height})`);
    if (!buf) return;
    // its focus frame and its pointer cursor drawn: two captures alike
    const a = await stableCapture(k, 60_000);
    t.ok(a, 'the screen stops changing');
    if (!a) return;
    keep(t, 'qt5-calculator', a);
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const win: Rect = { x: Math.floor((W - buf.width) / 2), y: Math.floor((H - buf.height) / 2), width: buf.width, height: buf.height };
    const inWin = histogram(a, win);
    t.ok(inWin.size > 50, `many distinct colours in its window (${inWin.size})`);
    t.ok((inWin.get(0) ?? 0) < 0.5 * buf.width * buf.height, `its window is drawn, not black (${inWin.get(0) ?? 0} black pixels)`);
    const px = pixelsOf(a);
    let outside = 0;
    for (let y = 0; y < a.height; y++) for (let x = 0; x < a.width; x++) if (!inside(win, x, y) && px(x, y) !== 0) outside++;
    t.equal(outside, 0, `black around it (window ${win.width}x${win.height} at ${win.x},${win.y})`);
    // it stays up and the screen stays as it was (nothing flickers, nothing is lost)
    const f0 = k.stats().frames;
    await new Promise((r) => setTimeout(r, 2000));
    const b = await k.capture();
    t.equal(changed(a, b).count, 0, `the screen is the same 2 s later (${k.stats().frames - f0} kiosk frames between; changed ${JSON.stringify(changed(a, b))})`);
    // a click on "7": its display shows 7 instead of 0
    const seven = { x: win.x + QT_SEVEN.x, y: win.y + QT_SEVEN.y };
    t.ok(await pointTo(k, vi, seven.x, seven.y), `the pointer steered onto its 7 at ${seven.x},${seven.y} (at ${JSON.stringify(k.pointer())})`);
    t.ok(await settled(c, 1000, 30_000), 'it settles (hover drawn)');
    const hovered = await k.capture();
    const n0 = rootCommits(c);
    await vi.click(BTN_LEFT);
    t.ok(await until(() => rootCommits(c) > n0, 30_000, 20) && (await settled(c, 1000, 30_000)), `it redraws after the click (${rootCommits(c) - n0} commits)`);
    await sleep(200);
    const clicked = await k.capture();
    keep(t, 'qt5-calculator-7', clicked);
    const display: Rect = { x: win.x + QT_DISPLAY.x, y: win.y + QT_DISPLAY.y, width: QT_DISPLAY.width, height: QT_DISPLAY.height };
    const d = changedIn(hovered, clicked, display);
    t.ok(d.inside > 20, `its display changed (${d.inside} pixels)`);
    t.ok(d.outsideBox === null || (inside(win, d.outsideBox.x, d.outsideBox.y) && inside(win, d.outsideBox.x + d.outsideBox.width - 1, d.outsideBox.y + d.outsideBox.height - 1)),
      `anything else that changed is in its window (${d.outside} pixels in ${JSON.stringify(d.outsideBox)})`);
  });
});

/**
 * The input events in wev's output, in order: `key SYM pressed|released` (the sym name from the
 * line after the key line), `button CODE pressed|released`, `touch down X,Y`, `touch up`.
 */
function wevEvents(out: string): string[] {
  const lines = out.split('\n');
  const events: string[] = [];
  lines.forEach((l, i) => {
    let m = /wl_keyboard\] key: .*state: \d+ \((\w+)\)/.exec(l);
    if (m) {
      const sym = /sym: (\S+)/.exec(lines[i + 1] ?? '')?.[1] ?? '?';
      events.push(`key ${sym} ${m[1]}`);
      return;
    }
    m = /wl_pointer\] button: .*button: (\d+).*state: \d+ \((\w+)\)/.exec(l);
    if (m) {
      events.push(`button ${m[1]} ${m[2]}`);
      return;
    }
    m = /wl_touch\] down: .*x, y: (-?[\d.]+), (-?[\d.]+)/.exec(l);
    if (m) {
      events.push(`touch down ${Math.round(Number(m[1]))},${Math.round(Number(m[2]))}`);
      return;
    }
    if (/wl_touch\] up:/.test(l)) events.push('touch up');
  });
  return events;
}

leakFree(t as TapTest, 'wev: prints its toplevel\'s configure and the keys, the click and the touch injected, in order; the kiosk survives its SIGKILL', async (t) => {
  const t0 = Date.now();
  const log: string[] = [];
  const vi = await VirtualInput.create('primebuf-wev');
  const k = await startKiosk({ device: vkms.path, socket: 'apps-wev', log: (l: string) => log.push(l), hideCursor: true } as KioskOptions).catch(async (err: unknown) => {
    await vi.close();
    throw err;
  });
  // stdbuf: wev's printf output line by line through the pipe (else it is lost with the process)
  const c = spawnTraced('stdbuf', ['-oL', 'wev'], k.socket, { ...process.env, HOME: home });
  try {
    const started = await until(() => c.exit() !== undefined || failing(log) || (mapped(log) && /configure/.test(c.stdout()) && k.stats().frames >= 1), START_MS, 50);
    t.ok(started && c.exit() === undefined && mapped(log), `wev starts, maps its toplevel and prints (exit ${c.exit() ?? 'none'}: ${c.output().slice(0, 600)})`);
    const out = c.stdout();
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    t.match(out, /xdg_toplevel.*configure/, `it prints the toplevel's configure:\n${out.slice(0, 600)}`);
    t.match(out, new RegExp(`\\b${W}\\b.*\\b${H}\\b`), `with the mode's size ${W}x${H}`);
    t.match(out, /xdg_surface.*configure/, 'and the xdg_surface configure that ends it');
    t.match(out, /wl_seat.*capabilities/i, 'and the seat\'s capabilities');
    t.equal(c.trace.capabilities, ALL_CAPS, 'the seat has pointer, keyboard and touch');
    t.ok(await until(() => c.trace.keyboardEnters >= 1, 30_000, 20), 'it has the keyboard focus');
    const cap = await k.capture();
    keep(t, 'wev', cap);
    t.ok(histogram(cap).size >= 2 && (histogram(cap).get(0) ?? 0) === 0, 'its window fills the screen (no black pixel)');
    // the keys h and i, a left click where the pointer is, a touch at (0.5, 0.25) of the screen
    await vi.type('hi');
    await vi.click(BTN_LEFT);
    // libinput reads its devices in turn: events of two devices in one read are not in time order
    // (seen: the touch down before the button release); the touch waits until the click is heard
    await until(() => wevEvents(c.stdout()).includes(`button ${BTN_LEFT} released`), 30_000, 20);
    await vi.touchDown(0, 0.5, 0.25);
    await vi.touchUp(0);
    const want = ['key h pressed', 'key h released', 'key i pressed', 'key i released', `button ${BTN_LEFT} pressed`, `button ${BTN_LEFT} released`, `touch down ${W / 2},${H / 4}`, 'touch up'];
    await until(() => wevEvents(c.stdout()).length >= want.length, 30_000, 20);
    t.same(wevEvents(c.stdout()), want, 'it prints the keys with their keysyms, the button and the touch (at the point touched), in order');
    t.match(c.stdout(), /wl_keyboard\] key: .*key: 43;[^\n]*\n\s*sym: h\s+\(104\), utf8: 'h'/, 'h: XKB keycode 43 (evdev 35 + 8), keysym 0x68, text h');
    t.match(c.stdout(), /wl_touch\] frame/, 'touch frames');
    healthy(t, c, log, 'wev');
    const clients = log.filter((l) => /disconnected/.test(l)).length;
    c.child.kill('SIGKILL');
    await c.exited;
    t.ok(await until(() => log.filter((l) => /disconnected/.test(l)).length > clients, 10_000, 20), 'the kiosk sees it go');
    const after = await k.capture();
    keep(t, 'wev-gone', after);
    t.equal(histogram(after).get(0), after.width * after.height, 'the screen is black once it is gone');
    t.same(log.filter((l) => PROBLEM.test(l)), [], 'the kiosk logged no error');
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}\nwev's last lines:\n${c.stdout().slice(-2000)}`);
    if (c.exit() === undefined) await c.stop(2000);
    await k.close();
    await vi.close();
    t.comment(`wev: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  }
});

/** Runs a command to its end (or `ms`): its exit and its output. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, ms: number): Promise<{ exit: string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    const done = (code: number | null, sig: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ exit: String(sig ?? code), stdout, stderr });
    };
    child.on('close', done);
    // wl-copy's forked server keeps the pipes open: its own exit is enough, its output given time to arrive
    child.on('exit', (code, sig) => setTimeout(() => done(code, sig), 300));
  });
}

leakFree(t as TapTest, 'wl-copy then wl-paste: the text crosses between two clients', async (t) => {
  const log: string[] = [];
  const vi = await VirtualInput.create('primebuf-clipboard');
  const k = await startKiosk({ device: vkms.path, socket: 'apps-clipboard', log: (l: string) => log.push(l), hideCursor: true } as KioskOptions).catch(async (err: unknown) => {
    await vi.close();
    throw err;
  });
  try {
    const env = { ...process.env, HOME: home, WAYLAND_DISPLAY: k.socket };
    const text = `primebuf-${process.pid}`;
    // wl-copy forks: its child serves the selection until another client replaces it
    const copy = await run('wl-copy', [text], env, 60_000);
    t.equal(copy.exit, '0', `wl-copy sets the selection (exit ${copy.exit}: ${copy.stderr.trim()})`);
    const paste = await run('wl-paste', ['--no-newline'], env, 60_000);
    t.equal(paste.exit, '0', `wl-paste reads it (exit ${paste.exit}: ${paste.stderr.trim()})`);
    t.equal(paste.stdout, text, 'the text pasted is the text copied');
    const types = await run('wl-paste', ['--list-types'], env, 60_000);
    t.match(types.stdout, /text\/plain/, `the selection offers text/plain (${types.stdout.trim().split('\n').join(', ')})`);
    // wl-copy --clear replaces it with none: the server's source is cancelled and it exits
    const clear = await run('wl-copy', ['--clear'], env, 30_000);
    t.equal(clear.exit, '0', `wl-copy --clear (exit ${clear.exit}: ${clear.stderr.trim()})`);
    const empty = await run('wl-paste', ['--no-newline'], env, 60_000);
    t.not(empty.exit, '0', `wl-paste finds no selection after --clear (exit ${empty.exit}: ${empty.stderr.trim()})`);
    t.same(log.filter((l) => PROBLEM.test(l)), [], 'the kiosk logged no protocol error or failed frame');
    t.ok(await until(() => log.filter((l) => /connected/.test(l) && !/disconnected/.test(l)).length === log.filter((l) => /disconnected/.test(l)).length, 10_000, 20),
      'every client it saw is gone again (wl-copy\'s server ends with its selection)');
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}`);
    await k.close();
    await vi.close();
  }
});
