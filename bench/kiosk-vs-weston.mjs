#!/usr/bin/env node
// The kiosk (compositor-example) against two anchors, Weston (Debian's weston 10, DRM backend on
// vkms) and cage (Debian's cage 0.1.4 on wlroots 0.15), each showing the same client, in steady
// state: the client runs for a settle time (--settle, default 2 s of the guest's clock), then the
// window is the next --frames client commits (default 800). Per (case, run) one JSON line: the
// compositor's CPU time per frame over the window (utime + stime of /proc/PID/stat at the window's
// first and last commit, all threads, and the two apart), the frame rate over the window, the
// clock it was measured in (bench/clock.mjs: "icount" under `--icount`, which `npm run
// bench:kiosk` sets), the case's committed baseline beside it (bench/baselines.json) and, for the
// kiosk, the ratio to each anchor measured in the same process. The client's commits are counted
// from its WAYLAND_DEBUG trace. For the kiosk also heapBytesPerFrame: the JavaScript heap it
// allocated over the same window per frame (bench/heap-probe.mjs, preloaded into its process,
// probed by SIGUSR2 at the window's first and last frame), and heapScavenges in the window.
//
// Cases (--cases, comma-separated; default all of them, anchors first):
//   weston-pixman-shm     Weston, pixman renderer, weston-simple-shm
//   cage-pixman-shm       cage as an unprivileged user through seatd, WLR_RENDERER=pixman,
//                         weston-simple-shm
//   kiosk-shm-zero-copy   the kiosk, weston-simple-shm through udmabuf on a plane
//   kiosk-shm-copy        the kiosk --no-zero-copy, weston-simple-shm copied every frame
//   weston-gl-dmabuf      Weston, GL renderer (llvmpipe), weston-simple-dmabuf-egl
//   kiosk-dmabuf-direct   the kiosk, weston-simple-dmabuf-egl on a plane
//   kiosk-camera          the kiosk --camera /dev/video0 (vivid), no client: the window counts
//                         camera frames presented (bench/kiosk-camera.mjs reports them)
//
//   npm run bench:kiosk [-- --cases kiosk-shm-zero-copy --runs 5]   builds, runs it in the VM (icount)
//   node bench/kiosk-vs-weston.mjs [--frames N] [--settle S] [--runs N] [--cases LIST] [--card cardN]
//     [--node-args '--max-semi-space-size=16 ...'] (the kiosk's node flags; default KIOSK_NODE_FLAGS,
//     bench/compositors.mjs; --node-args= for none)                                   (in the guest)
//     [--only weston|cage|kiosk] [--client shm|dmabuf-egl] [--no-baseline] (no --no-zero-copy run)
//     [--camera /dev/videoN] [--camera-frames N] (the camera case's window; default --frames)
// Exit 1 when a case failed (its line carries the error; the others still run).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLOCK, baselineOf, loadBaselines } from './clock.mjs';
import { KIOSK_NODE_FLAGS, cpuOf, figures, measure, runCage, runWeston, startCompositor, stop, vkmsCard } from './compositors.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    frames: { type: 'string' }, settle: { type: 'string' }, runs: { type: 'string' }, cases: { type: 'string' },
    card: { type: 'string' }, only: { type: 'string' }, 'node-args': { type: 'string' }, client: { type: 'string' },
    'no-baseline': { type: 'boolean' }, camera: { type: 'string' }, 'camera-frames': { type: 'string' },
  },
});
const FRAMES = Number(values.frames ?? 800);
const SETTLE_MS = Number(values.settle ?? 2) * 1000;
const RUNS = Number(values.runs ?? 1);
const CAMERA = values.camera ?? '/dev/video0';
const CAMERA_FRAMES = Number(values['camera-frames'] ?? FRAMES);
for (const [k, v] of [['frames', FRAMES], ['runs', RUNS], ['camera-frames', CAMERA_FRAMES]]) {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k}: a positive integer`);
}
/**
 * Node/V8 flags for the kiosk's process only (NODE_OPTIONS refuses most V8 flags): the kiosk's own
 * (KIOSK_NODE_FLAGS) unless --node-args gives others (`--node-args=` for none).
 */
const NODE_ARGS = values['node-args'] !== undefined ? values['node-args'].split(' ').filter(Boolean) : KIOSK_NODE_FLAGS;
/** The steady window of every client case. */
const WINDOW = { settleMs: SETTLE_MS, frames: FRAMES };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const note = (line) => process.stderr.write(`# ${line}\n`);

/** The vkms primary node, unless --card names one. */
const kmsCard = () => values.card ?? vkmsCard();

/**
 * The kiosk's JavaScript heap: bench/heap-probe.mjs preloaded into its process appends the bytes
 * allocated so far (young generation, collections included) to a file on each SIGUSR2; the bytes
 * per frame of a window are the difference of two of its lines (README, "The JavaScript heap per
 * frame").
 */
const HEAP_PROBE = ['--import', join(root, 'bench', 'heap-probe.mjs')];

/** The heap probe's lines numbered `a` and `b` (the SIGUSR2s the kiosk got), waiting up to 10 s for them. */
async function heapWindow(file, a, b, frames) {
  for (const end = Date.now() + 10000; ; await sleep(50)) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    const x = lines.find((l) => l.n === a);
    const y = lines.find((l) => l.n === b);
    if (x && y) return { heapBytesPerFrame: Math.round((y.allocated - x.allocated) / frames), heapScavenges: y.scavenges - x.scavenges };
    if (Date.now() > end) return { heapBytesPerFrame: null, heapError: `the heap probe wrote ${lines.length} lines, not ${a} and ${b}` };
  }
}

async function runKiosk(card, client, env, extra = []) {
  const socket = 'bench-kiosk';
  const statsFile = join(env.XDG_RUNTIME_DIR, 'kiosk-stats.json');
  const heapFile = join(env.XDG_RUNTIME_DIR, 'kiosk-heap.jsonl');
  rmSync(statsFile, { force: true });
  rmSync(heapFile, { force: true });
  const k = await startCompositor(process.execPath, [...NODE_ARGS, ...HEAP_PROBE, join(root, 'dist/compositor-example/main.js'), '--device', `/dev/dri/${card}`, '--socket', socket, '--stats', statsFile, ...extra], { ...env, PRIMEBUF_HEAP_PROBE: heapFile }, socket);
  let r;
  let heap;
  try {
    r = await measure(k.child.pid, client, { ...env, WAYLAND_DISPLAY: socket }, WINDOW, () => k.child.kill('SIGUSR2'));
    heap = await heapWindow(heapFile, 1, 2, r.frames);
  } finally {
    const e = await stop(k.child);
    if (e.code !== 0) note(`kiosk exited ${e.code ?? e.signal}: ${k.log.join('').slice(-1500)}`);
  }
  const stats = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) : null;
  return {
    ...r,
    ...heap,
    bytesCopiedPerFrame: stats && stats.frames > 0 ? Math.round(stats.bytesCopied / stats.frames) : null,
    direct: stats?.direct ?? null,
    copied: stats?.copied ?? null,
    paths: stats ? [...new Set(stats.buffers.map((b) => `${b.kind}:${b.path}`))] : null,
    // the direct lane over the kiosk's whole run: its frames, how often it was armed, and its commits with an in-fence
    ...(stats?.lane ? { lane: { frames: stats.lane.frames, arms: stats.lane.arms, handbacks: stats.lane.handbacks, fences: stats.lane.fences } } : {}),
  };
}

/**
 * The kiosk showing the camera (no client): bench/kiosk-camera.mjs runs the kiosk's startKiosk
 * with `camera` and, on SIGUSR2, writes the camera frames presented so far; the window is the
 * CAMERA_FRAMES frames after the settle time from the first frame.
 */
async function runKioskCamera(card, env) {
  const socket = 'bench-kiosk-camera';
  const probe = join(env.XDG_RUNTIME_DIR, 'kiosk-camera-frames.json');
  const heapFile = join(env.XDG_RUNTIME_DIR, 'kiosk-camera-heap.jsonl');
  rmSync(heapFile, { force: true });
  const k = await startCompositor(process.execPath, [...NODE_ARGS, ...HEAP_PROBE, join(root, 'bench/kiosk-camera.mjs'), '--device', `/dev/dri/${card}`, '--socket', socket, '--camera', CAMERA, '--probe', probe], { ...env, PRIMEBUF_HEAP_PROBE: heapFile }, socket);
  let seq = 0;
  /** The kiosk's camera stats now (it writes them on SIGUSR2; the answer carries our sequence number). */
  const stats = async () => {
    const want = ++seq;
    k.child.kill('SIGUSR2');
    for (const end = Date.now() + 30000; Date.now() < end; await sleep(20)) {
      if (k.child.exitCode !== null || k.child.signalCode !== null) throw new Error(`the camera kiosk exited ${k.child.exitCode ?? k.child.signalCode}:\n${k.log.join('').slice(-2000)}`);
      try {
        const s = JSON.parse(readFileSync(probe, 'utf8'));
        if (s.seq >= want) return { ...s, t: performance.now(), cpu: cpuOf(k.child.pid) };
      } catch { /* not written yet */ }
    }
    throw new Error(`the camera kiosk did not answer SIGUSR2:\n${k.log.join('').slice(-2000)}`);
  };
  try {
    let s;
    for (const end = Date.now() + 120000; !((s = await stats()).frames > 0); await sleep(250)) {
      if (Date.now() > end) throw new Error(`no camera frame presented in 120 s:\n${k.log.join('').slice(-2000)}`);
    }
    await sleep(SETTLE_MS);
    const start = await stats();
    // Each probe is a signal the kiosk answers in JavaScript (its frame count, the heap probe),
    // CPU inside the window: none until the window should be nearly over at the settle's frame
    // rate, then one every 500 ms (a probe every 500 ms all along was 80 probes in a 40 s window)
    const fps = (start.frames - s.frames) / Math.max(0.001, (start.t - s.t) / 1000);
    if (fps > 0) await sleep(Math.min(600000, ((CAMERA_FRAMES / fps) * 1000 * 0.97)));
    let last = await stats();
    for (const end = Date.now() + 900000; last.frames < start.frames + CAMERA_FRAMES; await sleep(500)) {
      if (Date.now() > end) throw new Error(`${last.frames - start.frames} of ${CAMERA_FRAMES} camera frames in 900 s`);
      last = await stats();
    }
    const heap = await heapWindow(heapFile, start.seq, last.seq, last.frames - start.frames);
    return { ...figures(last.frames - start.frames, start.cpu, last.cpu, start.t, last.t), ...heap, direct: last.direct - start.direct, copied: last.copied - start.copied, dropped: last.dropped - start.dropped, memory: last.memory, size: `${last.width}x${last.height}` };
  } finally {
    const e = await stop(k.child);
    if (e.code !== 0) note(`camera kiosk exited ${e.code ?? e.signal}: ${k.log.join('').slice(-1500)}`);
  }
}

const SHM = ['weston-simple-shm'];
const DMABUF = (card) => ['weston-simple-dmabuf-egl', '-d', `/dev/dri/${card}`];
/** Every case: its compositor, client and how to run it. Anchors first, so the kiosk's lines carry ratios. */
const CASES = [
  { name: 'weston-pixman-shm', compositor: 'weston-pixman', client: 'weston-simple-shm', anchor: true, run: (card, env) => runWeston(card, SHM, true, env, WINDOW) },
  { name: 'cage-pixman-shm', compositor: 'cage-pixman', client: 'weston-simple-shm', anchor: true, run: (card, env) => runCage(card, SHM, env, WINDOW) },
  { name: 'kiosk-shm-zero-copy', compositor: 'kiosk', client: 'weston-simple-shm', run: (card, env) => runKiosk(card, SHM, env) },
  { name: 'kiosk-shm-copy', compositor: 'kiosk --no-zero-copy', client: 'weston-simple-shm', run: (card, env) => runKiosk(card, SHM, env, ['--no-zero-copy']) },
  { name: 'weston-gl-dmabuf', compositor: 'weston-gl', client: 'weston-simple-dmabuf-egl', anchor: true, run: (card, env) => runWeston(card, DMABUF(card), false, env, WINDOW) },
  { name: 'kiosk-dmabuf-direct', compositor: 'kiosk', client: 'weston-simple-dmabuf-egl', run: (card, env) => runKiosk(card, DMABUF(card), env) },
  { name: 'kiosk-camera', compositor: 'kiosk --camera', client: null, run: (card, env) => runKioskCamera(card, env) },
];

function chosen() {
  if (values.cases) {
    const names = values.cases.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) if (!CASES.some((c) => c.name === n)) throw new Error(`--cases ${n}: not one of ${CASES.map((c) => c.name).join(', ')}`);
    return CASES.filter((c) => names.includes(c.name));
  }
  return CASES.filter((c) => {
    if (values.only && !c.compositor.startsWith(values.only)) return false;
    if (values.client && !(c.client ?? '').endsWith(values.client)) return false;
    if (values['no-baseline'] && c.name === 'kiosk-shm-copy') return false;
    return true;
  });
}

async function main() {
  const card = kmsCard();
  const cases = chosen();
  const xdg = mkdtempSync(join(tmpdir(), 'primebuf-bench-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
  const baselines = loadBaselines();
  note(`kiosk vs weston and cage on /dev/dri/${card}, clock ${CLOCK}: settle ${SETTLE_MS / 1000} s, then ${FRAMES} client frames; ${RUNS} run(s) of ${cases.map((c) => c.name).join(', ')}`);
  if (CLOCK !== 'icount') note('not under icount: CPU times move with the host\'s load (run it with the rig\'s --icount, as npm run bench:kiosk does)');
  /** The anchors' latest figure per client, for the kiosk's ratios. */
  const anchors = {};
  let failed = false;
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const c of cases) {
        const base = { bench: 'kiosk', case: c.name, compositor: c.compositor, client: c.client ?? CAMERA, clock: CLOCK, ...(RUNS > 1 ? { run } : {}) };
        let r;
        const t0 = Date.now();
        try {
          r = await c.run(card, env);
          note(`${c.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
        } catch (err) {
          // A run that fails prints its error as the line and the others still run.
          failed = true;
          console.log(JSON.stringify({ ...base, error: err.message.split('\n').slice(0, 8).join(' | ') }));
          continue;
        }
        if (c.anchor) (anchors[c.client] ??= {})[c.compositor] = r.cpuMsPerFrame;
        const ratio = c.anchor ? null : Object.fromEntries(Object.entries(anchors[c.client] ?? {}).map(([k, v]) => [k, +(r.cpuMsPerFrame / v).toFixed(3)]));
        console.log(JSON.stringify({
          ...base, ...(NODE_ARGS.length && !c.anchor ? { nodeArgs: NODE_ARGS.join(' ') } : {}), settleS: SETTLE_MS / 1000, ...r,
          baseline: baselineOf(c.name, baselines), ...(ratio && Object.keys(ratio).length ? { ratio } : {}), loadavg: +loadavg()[0].toFixed(2),
        }));
      }
    }
  } finally {
    rmSync(xdg, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

main().then((code) => (process.exitCode = code), (err) => {
  console.error(`kiosk-vs-weston: ${err.message}`);
  process.exit(1);
});
