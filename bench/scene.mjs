#!/usr/bin/env node
// Multi-surface clients (issue 20): the kiosk against Weston (pixman renderer) and cage (wlroots,
// pixman) on weston-subsurfaces (a toplevel with two desynchronized wl_shm subsurfaces) and on
// GStreamer's `videotestsrc ! waylandsink` (the video in a subsurface sized by wp_viewporter
// over a 1x1 black toplevel; by default at the mode's size, so every compositor shows the same),
// in steady state: the client runs for a settle time (--settle, default 60 s of the guest's
// clock: the kiosk's frame path reaches V8's optimizing compiler over tens of seconds, and a window
// opened earlier measures that warm-up, not the steady frame; the anchors settle the same), then the window is at least --frames client commits (default 800) and at least
// --min-seconds (default 15) of the guest's clock, whichever ends later. Per (case, run) one JSON
// line: the compositor's CPU time per client commit over the window (utime + stime of
// /proc/PID/stat, all threads; commits of every surface of the client, from its WAYLAND_DEBUG
// trace), the commit rate, the clock it was measured in (bench/clock.mjs: "icount" under
// `--icount`, which `npm run bench:scene` sets) and, on the kiosk's lines, the anchors' figures of
// the same client measured in the same process beside it with the ratios, and what the kiosk's
// --stats says of its scene (its `scene` block: scene frames, the planes the last one used,
// surfaces composed and bytes composed per scene frame over the run; null where the kiosk does
// not report them), and bytes copied per frame.
//
// Cases (--cases, comma-separated; default all, anchors first):
//   weston-pixman-subsurfaces, cage-pixman-subsurfaces, kiosk-subsurfaces     weston-subsurfaces
//   weston-pixman-waylandsink, cage-pixman-waylandsink, kiosk-waylandsink     videotestsrc ! waylandsink
//
//   npm run bench:scene [-- --cases kiosk-waylandsink --runs 3]       builds, runs it in the VM (icount)
//   node bench/scene.mjs [--frames N] [--min-seconds S] [--settle S] [--runs N] [--cases LIST] [--card cardN]
//        [--video WxH]                                                           (in the guest)
// Exit 1 when a case failed (its line carries the error; the others still run).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLOCK } from './clock.mjs';
import { KIOSK_NODE_FLAGS, measure, runCage, runWeston, startCompositor, stop, vkmsCard } from './compositors.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    frames: { type: 'string' }, 'min-seconds': { type: 'string' }, settle: { type: 'string' }, runs: { type: 'string' },
    cases: { type: 'string' }, card: { type: 'string' }, video: { type: 'string' },
  },
});
const FRAMES = Number(values.frames ?? 800);
const MIN_MS = Number(values['min-seconds'] ?? 15) * 1000;
const SETTLE_MS = Number(values.settle ?? 60) * 1000;
const RUNS = Number(values.runs ?? 1);
for (const [k, v] of [['frames', FRAMES], ['runs', RUNS]]) {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k}: a positive integer`);
}
if (!(MIN_MS >= 0) || !(SETTLE_MS >= 0)) throw new Error('--min-seconds and --settle: non-negative numbers');
const VIDEO = /^(\d+)x(\d+)$/.exec(values.video ?? '1024x768');
if (!VIDEO) throw new Error('--video: WxH');
const WINDOW = { settleMs: SETTLE_MS, frames: FRAMES, minMs: MIN_MS };
const note = (line) => process.stderr.write(`# ${line}\n`);

const SUBSURFACES = ['weston-subsurfaces'];
/**
 * A live test picture (SMPTE bars) at 60 fps, BGRx (XRGB8888) at --video (default 1024x768, the
 * rig's mode: waylandsink's window is the video's size, the kiosk and cage configure the mode's
 * size, so every compositor shows the same 1024x768 picture unscaled, and the video can have a
 * plane where the compositor gives it one). Not fullscreen=true: cage 0.1.4 configures 0x0 first,
 * and GStreamer 1.22's fullscreen window then has no size ("Window has no size set"); cage has no
 * wp_viewporter either, so a video smaller than the mode is not scaled there.
 */
const WAYLANDSINK = ['gst-launch-1.0', '-q', 'videotestsrc', 'is-live=true', '!', `video/x-raw,format=BGRx,width=${VIDEO[1]},height=${VIDEO[2]},framerate=60/1`, '!', 'waylandsink'];

/**
 * The scene's figures from the kiosk's --stats: its `scene` block ({ frames, planesUsed: the last
 * frame's, surfacesComposed and bytesComposed: summed over the scene frames }), per scene frame;
 * nulls when the kiosk has no such block.
 */
function sceneFigures(stats) {
  const sc = stats?.scene;
  const num = (v) => (typeof v === 'number' ? v : null);
  const frames = num(sc?.frames);
  const per = (v) => (v === null || !frames ? null : +(v / frames).toFixed(2));
  return {
    sceneFrames: frames,
    planesUsedLastFrame: num(sc?.planesUsed),
    surfacesComposedPerFrame: per(num(sc?.surfacesComposed)),
    bytesComposedPerFrame: per(num(sc?.bytesComposed)),
  };
}

async function runKiosk(card, client, env) {
  const socket = 'bench-scene-kiosk';
  const statsFile = join(env.XDG_RUNTIME_DIR, 'kiosk-scene-stats.json');
  rmSync(statsFile, { force: true });
  const k = await startCompositor(process.execPath, [...KIOSK_NODE_FLAGS, join(root, 'dist/compositor-example/main.js'), '--device', `/dev/dri/${card}`, '--socket', socket, '--stats', statsFile], env, socket);
  let r;
  // A kiosk whose frames fail would keep answering the client's frame callbacks at once and the
  // window would run on for many minutes of emulation: such a case is stopped (the kiosk first,
  // so the client loses its connection and the window ends with an error).
  let failedFrame = null;
  const watch = setInterval(() => {
    const line = k.log.join('').split('\n').find((l) => /frame failed/.test(l));
    if (line && !failedFrame) {
      failedFrame = line;
      k.child.kill('SIGTERM');
    }
  }, 500);
  try {
    r = await measure(k.child.pid, client, { ...env, WAYLAND_DISPLAY: socket }, WINDOW);
  } catch (err) {
    throw new Error(`${failedFrame ? `the kiosk's frames failed (${failedFrame.trim()}); ` : ''}${err.message}\nkiosk: ${k.log.join('').slice(-1500)}`);
  } finally {
    clearInterval(watch);
    const e = await stop(k.child);
    if (e.code !== 0) note(`kiosk exited ${e.code ?? e.signal}: ${k.log.join('').slice(-1500)}`);
  }
  const stats = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) : null;
  const frames = stats?.frames ?? 0;
  return {
    ...r,
    kioskFrames: frames || null,
    ...sceneFigures(stats),
    bytesCopiedPerFrame: stats && frames > 0 ? Math.round(stats.bytesCopied / frames) : null,
    paths: stats?.buffers ? [...new Set(stats.buffers.map((b) => `${b.kind}:${b.path}`))] : null,
  };
}

const CASES = [
  { name: 'weston-pixman-subsurfaces', compositor: 'weston-pixman', client: 'weston-subsurfaces', anchor: true, run: (card, env) => runWeston(card, SUBSURFACES, true, env, WINDOW) },
  { name: 'cage-pixman-subsurfaces', compositor: 'cage-pixman', client: 'weston-subsurfaces', anchor: true, run: (card, env) => runCage(card, SUBSURFACES, env, WINDOW) },
  { name: 'kiosk-subsurfaces', compositor: 'kiosk', client: 'weston-subsurfaces', run: (card, env) => runKiosk(card, SUBSURFACES, env) },
  { name: 'weston-pixman-waylandsink', compositor: 'weston-pixman', client: 'waylandsink', anchor: true, run: (card, env) => runWeston(card, WAYLANDSINK, true, env, WINDOW) },
  { name: 'cage-pixman-waylandsink', compositor: 'cage-pixman', client: 'waylandsink', anchor: true, run: (card, env) => runCage(card, WAYLANDSINK, env, WINDOW) },
  { name: 'kiosk-waylandsink', compositor: 'kiosk', client: 'waylandsink', run: (card, env) => runKiosk(card, WAYLANDSINK, env) },
];

function chosen() {
  if (!values.cases) return CASES;
  const names = values.cases.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!CASES.some((c) => c.name === n)) throw new Error(`--cases ${n}: not one of ${CASES.map((c) => c.name).join(', ')}`);
  return CASES.filter((c) => names.includes(c.name));
}

async function main() {
  const card = values.card ?? vkmsCard();
  const cases = chosen();
  const xdg = mkdtempSync(join(tmpdir(), 'primebuf-bench-scene-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
  note(`scene: kiosk vs weston-pixman and cage on /dev/dri/${card}, clock ${CLOCK}: settle ${SETTLE_MS / 1000} s, then at least ${FRAMES} client commits and ${MIN_MS / 1000} s; ${RUNS} run(s) of ${cases.map((c) => c.name).join(', ')}`);
  if (CLOCK !== 'icount') note('not under icount: CPU times move with the host\'s load (run it with the rig\'s --icount, as npm run bench:scene does)');
  /** The anchors' latest figure per client. */
  const anchors = {};
  let failed = false;
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const c of cases) {
        const base = { bench: 'scene', case: c.name, compositor: c.compositor, client: c.client, clock: CLOCK, ...(RUNS > 1 ? { run } : {}) };
        let r;
        const t0 = Date.now();
        try {
          r = await c.run(card, env);
          note(`${c.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
        } catch (err) {
          failed = true;
          console.log(JSON.stringify({ ...base, error: err.message.split('\n').slice(0, 12).join(' | ') }));
          continue;
        }
        const { cpuMsPerFrame, userMsPerFrame, sysMsPerFrame, frames, ...rest } = r;
        const figure = { commits: frames, cpuMsPerCommit: cpuMsPerFrame, userMsPerCommit: userMsPerFrame, sysMsPerCommit: sysMsPerFrame, ...rest };
        if (c.anchor) (anchors[c.client] ??= {})[c.compositor] = cpuMsPerFrame;
        const beside = c.anchor ? null : anchors[c.client] ?? {};
        const ratio = beside ? Object.fromEntries(Object.entries(beside).map(([k, v]) => [k, +(cpuMsPerFrame / v).toFixed(3)])) : null;
        console.log(JSON.stringify({
          ...base, settleS: SETTLE_MS / 1000, ...figure,
          ...(beside ? { anchors: beside, ratio } : {}), loadavg: +loadavg()[0].toFixed(2),
        }));
      }
    }
  } finally {
    rmSync(xdg, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

main().then((code) => (process.exitCode = code), (err) => {
  console.error(`scene: ${err.message}`);
  process.exit(1);
});
