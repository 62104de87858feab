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
//     [--node-args '--max-semi-space-size=16 ...'] (the kiosk's node flags)       (in the guest)
//     [--only weston|cage|kiosk] [--client shm|dmabuf-egl] [--no-baseline] (no --no-zero-copy run)
//     [--camera /dev/videoN] [--camera-frames N] (the camera case's window; default --frames)
// Exit 1 when a case failed (its line carries the error; the others still run).
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLOCK, baselineOf, loadBaselines } from './clock.mjs';

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
/** Node/V8 flags for the kiosk's process only (NODE_OPTIONS refuses most V8 flags). */
const NODE_ARGS = values['node-args']?.split(' ').filter(Boolean) ?? [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const note = (line) => process.stderr.write(`# ${line}\n`);

/** The vkms primary node (by driver name in sysfs), else card0. */
function kmsCard() {
  if (values.card) return values.card;
  for (const n of existsSync('/sys/class/drm') ? readdirSync('/sys/class/drm').filter((x) => /^card\d+$/.test(x)).sort() : []) {
    const uevent = join('/sys/class/drm', n, 'device', 'uevent');
    if (existsSync(uevent) && /DRIVER=vkms/.test(readFileSync(uevent, 'utf8'))) return n;
  }
  return 'card0';
}

const CLK_TCK = 100; // Linux USER_HZ

/** { user, sys } CPU time of `pid` in ms (utime, stime of /proc/PID/stat: every thread). */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK }; // fields 14 and 15 of the whole line
}

function exited(child) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => res({ code, signal }));
  });
}

/**
 * Stops a child (SIGTERM, SIGKILL after `ms`); a child spawned `detached` is stopped with its
 * whole process group (cage's own command). Its pipes are closed either way: a grandchild that
 * inherited them would otherwise keep this process alive.
 */
async function stop(child, sig = 'SIGTERM', ms = 15000) {
  const kill = (s) => {
    try {
      if (child.detachedGroup) process.kill(-child.pid, s);
      else child.kill(s);
    } catch { /* gone */ }
  };
  let e;
  if (child.exitCode !== null || child.signalCode !== null) e = await exited(child);
  else {
    kill(sig);
    e = await Promise.race([exited(child), sleep(ms).then(() => null)]);
    if (!e) {
      kill('SIGKILL');
      e = await exited(child);
    }
  }
  if (child.detachedGroup) kill('SIGKILL'); // what is left of the group
  for (const s of [child.stdout, child.stderr]) s?.destroy();
  return e;
}

/** Waits until `ready()` is true or the child exits or 90 s pass. */
async function waitFor(child, ready, what, log) {
  for (const end = Date.now() + 90000; !ready(); ) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
      await stop(child, 'SIGKILL');
      throw new Error(`${what}:\n${log.join('').slice(-3000)}`);
    }
    await sleep(50);
  }
}

/** Starts a compositor; resolves once its socket exists (`socket`, or the first wayland-N). */
async function startCompositor(cmd, args, env, socket, spawnOpts = {}) {
  const log = [];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
  child.detachedGroup = spawnOpts.detached === true;
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => log.push(d.toString()));
  const found = () => socket ?? readdirSync(env.XDG_RUNTIME_DIR).find((n) => /^wayland-\d+$/.test(n));
  await waitFor(child, () => { const s = found(); return s && existsSync(join(env.XDG_RUNTIME_DIR, s)); }, `${cmd} did not listen on ${socket ?? 'a wayland-N socket'}`, log);
  return { child, log, socket: found() };
}

/** The window's figures from CPU samples { user, sys } and guest-clock times (ms). */
function figures(frames, c0, c1, t0, t1) {
  const user = c1.user - c0.user;
  const sys = c1.sys - c0.sys;
  const r = (x) => +x.toFixed(4);
  return { frames, cpuMsPerFrame: r((user + sys) / frames), userMsPerFrame: r(user / frames), sysMsPerFrame: r(sys / frames), fps: +((frames * 1000) / (t1 - t0)).toFixed(2), seconds: +((t1 - t0) / 1000).toFixed(2) };
}

/**
 * Runs `client` until it committed for SETTLE_MS after its first commit and then FRAMES more;
 * the compositor's CPU and the guest's time between the window's first and last commit.
 */
async function measure(compositorPid, client, env, edge = () => {}) {
  const child = spawn(client[0], client.slice(1), { env: { ...env, WAYLAND_DEBUG: 'client' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let commits = 0;
  let tail = '';
  let errors = '';
  let first = null;
  let start = null;
  let end = null;
  const done = new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      const text = tail + d.toString();
      const lines = text.split('\n');
      tail = lines.pop();
      for (const l of lines) {
        if (/-> wl_surface@\d+\.commit\(\)/.test(l)) {
          commits++;
          const now = performance.now();
          first ??= now;
          if (!start && now - first >= SETTLE_MS) {
            start = { t: now, cpu: cpuOf(compositorPid), commit: commits };
            edge();
          }
          if (start && !end && commits === start.commit + FRAMES) {
            end = { t: now, cpu: cpuOf(compositorPid) };
            edge();
            resolve();
          }
        } else if (!/^\[\s*\d+\.\d+\]/.test(l) && l.trim()) errors += `${l}\n`;
      }
    });
    child.on('exit', () => resolve());
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 600000);
  await done;
  clearTimeout(timer);
  const e = await stop(child, 'SIGINT');
  if (!end) throw new Error(`${client[0]} stopped after ${commits} commits (${start ? `${commits - start.commit} of the ${FRAMES}-frame window` : 'still settling'}; exit ${e.code ?? e.signal}):\n${errors.slice(-2000)}`);
  return figures(FRAMES, start.cpu, end.cpu, start.t, end.t);
}

async function runWeston(card, client, pixman, env) {
  const socket = `bench-weston-${pixman ? 'pixman' : 'gl'}`;
  const args = ['--backend=drm-backend.so', '--tty=2', `--drm-device=${card}`, '--continue-without-input', '--idle-time=0', `--socket=${socket}`, ...(pixman ? ['--use-pixman'] : [])];
  const w = await startCompositor('weston', args, env, socket);
  try {
    return await measure(w.child.pid, client, { ...env, WAYLAND_DISPLAY: socket });
  } finally {
    await stop(w.child);
  }
}

/** An unprivileged account to run cage as (cage refuses root): nobody, from /etc/passwd. */
function unprivileged() {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (!line) throw new Error('no "nobody" account in /etc/passwd to run cage as');
  const [, , uid, gid] = line.split(':');
  // seatd -g takes a group's name
  const group = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[2] === gid)?.[0];
  if (!group) throw new Error(`no group ${gid} (nobody's) in /etc/group`);
  return { name: 'nobody', uid: Number(uid), gid: Number(gid), group };
}

/**
 * cage (wlroots, pixman renderer) as `nobody`, its seat from seatd (root, the socket given to
 * nobody's group): cage's command is a `sleep`, and the benchmark's client connects to its socket
 * like any other client (cage shows the most recent toplevel fullscreen, as the kiosk does).
 */
async function runCage(card, client, env) {
  const who = unprivileged();
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-cage-'));
  chownSync(dir, who.uid, who.gid);
  chmodSync(dir, 0o700);
  // Debian's seatd 0.7 listens on /run/seatd.sock, fixed at build time (no option, no variable)
  const seatSock = '/run/seatd.sock';
  rmSync(seatSock, { force: true });
  const seatLog = [];
  const seatd = spawn('seatd', ['-u', who.name, '-g', who.group], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [seatd.stdout, seatd.stderr]) s.on('data', (d) => seatLog.push(d.toString()));
  let cage;
  try {
    await waitFor(seatd, () => existsSync(seatSock), 'seatd did not make its socket', seatLog);
    const cageEnv = {
      PATH: env.PATH, HOME: dir, XDG_RUNTIME_DIR: dir, LIBSEAT_BACKEND: 'seatd', SEATD_SOCK: seatSock,
      WLR_RENDERER: 'pixman', WLR_DRM_DEVICES: `/dev/dri/${card}`, WLR_LIBINPUT_NO_DEVICES: '1',
    };
    cage = await startCompositor('cage', ['--', 'sleep', '100000'], cageEnv, undefined, { uid: who.uid, gid: who.gid, detached: true });
    return await measure(cage.child.pid, client, { ...env, XDG_RUNTIME_DIR: dir, WAYLAND_DISPLAY: cage.socket });
  } catch (err) {
    throw new Error(`${err.message}\nseatd: ${seatLog.join('').slice(-1500)}${cage ? `\ncage: ${cage.log.join('').slice(-1500)}` : ''}`);
  } finally {
    if (cage) await stop(cage.child);
    await stop(seatd);
    rmSync(dir, { recursive: true, force: true });
  }
}

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
    r = await measure(k.child.pid, client, { ...env, WAYLAND_DISPLAY: socket }, () => k.child.kill('SIGUSR2'));
    heap = await heapWindow(heapFile, 1, 2, FRAMES);
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
    let last = start;
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
  { name: 'weston-pixman-shm', compositor: 'weston-pixman', client: 'weston-simple-shm', anchor: true, run: (card, env) => runWeston(card, SHM, true, env) },
  { name: 'cage-pixman-shm', compositor: 'cage-pixman', client: 'weston-simple-shm', anchor: true, run: (card, env) => runCage(card, SHM, env) },
  { name: 'kiosk-shm-zero-copy', compositor: 'kiosk', client: 'weston-simple-shm', run: (card, env) => runKiosk(card, SHM, env) },
  { name: 'kiosk-shm-copy', compositor: 'kiosk --no-zero-copy', client: 'weston-simple-shm', run: (card, env) => runKiosk(card, SHM, env, ['--no-zero-copy']) },
  { name: 'weston-gl-dmabuf', compositor: 'weston-gl', client: 'weston-simple-dmabuf-egl', anchor: true, run: (card, env) => runWeston(card, DMABUF(card), false, env) },
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
