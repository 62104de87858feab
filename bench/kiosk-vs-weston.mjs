#!/usr/bin/env node
// The kiosk (compositor-example) against Weston (Debian's weston 10, DRM backend on vkms), each
// showing weston-simple-shm and weston-simple-dmabuf-egl for the same number of client frames.
// Weston runs its pixman renderer for simple-shm and its GL renderer (llvmpipe) for
// simple-dmabuf-egl, as in the reference figures. Prints one JSON line per (compositor,
// client): the compositor's CPU time per frame (utime + stime of /proc/PID/stat between the
// client's first and last counted commit), the frame rate over the same span, bytes copied per
// frame (the kiosk's --stats; Weston does not count them: null), and for the kiosk the ratios
// kiosk/weston. The client's commits are counted from its WAYLAND_DEBUG trace.
//
// It needs the vkms guest (or a machine whose card0 is a KMS device nobody else drives):
//   npm run bench:kiosk                      builds, then runs this in the vkms VM
//   node bench/kiosk-vs-weston.mjs [--frames N] [--card cardN] [--only weston|kiosk]   (in the guest)
//     [--client shm|dmabuf-egl] [--node-args '--max-semi-space-size=16 ...'] (the kiosk's node flags)
//     [--no-baseline] (no --no-zero-copy run)
// Reference (issue 11, the same kind of VM): Weston-pixman ~5 ms CPU/frame at 58 fps for
// simple-shm; Weston-GL 49-56 ms/frame at 17-19 fps for simple-dmabuf-egl.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { frames: { type: 'string' }, card: { type: 'string' }, only: { type: 'string' }, 'node-args': { type: 'string' }, client: { type: 'string' }, 'no-baseline': { type: 'boolean' } } });
const FRAMES = Number(values.frames ?? 120);
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

/** utime + stime of `pid` in ms. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14 and 15 of the whole line
}

function exited(child) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => res({ code, signal }));
  });
}

async function stop(child, sig = 'SIGTERM', ms = 15000) {
  if (child.exitCode !== null || child.signalCode !== null) return exited(child);
  child.kill(sig);
  const e = await Promise.race([exited(child), sleep(ms).then(() => null)]);
  if (e) return e;
  child.kill('SIGKILL');
  return exited(child);
}

/** Starts a compositor; resolves once its socket exists. */
async function startCompositor(cmd, args, env, socket) {
  const log = [];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => log.push(d.toString()));
  const path = join(env.XDG_RUNTIME_DIR, socket);
  for (const end = Date.now() + 90000; !existsSync(path); ) {
    if (child.exitCode !== null || Date.now() > end) {
      await stop(child, 'SIGKILL');
      throw new Error(`${cmd} did not listen on ${socket}:\n${log.join('').slice(-3000)}`);
    }
    await sleep(50);
  }
  return { child, log };
}

/**
 * Runs `client` on `socket` until it committed FRAMES + 1 surface frames; measures the
 * compositor's CPU and the wall time between its first and last counted commit.
 */
async function measure(compositorPid, client, env) {
  const child = spawn(client[0], client.slice(1), { env: { ...env, WAYLAND_DEBUG: 'client' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let commits = 0;
  let tail = '';
  let errors = '';
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
          if (commits === 1) start = { t: performance.now(), cpu: cpuMs(compositorPid) };
          if (commits === FRAMES + 1 && !end) {
            end = { t: performance.now(), cpu: cpuMs(compositorPid) };
            resolve();
          }
        } else if (!/^\[\s*\d+\.\d+\]/.test(l) && l.trim()) errors += `${l}\n`;
      }
    });
    child.on('exit', () => resolve());
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 300000);
  await done;
  clearTimeout(timer);
  const e = await stop(child, 'SIGINT');
  if (!end) throw new Error(`${client[0]} stopped after ${commits} commits (exit ${e.code ?? e.signal}):\n${errors.slice(-2000)}`);
  const ms = end.t - start.t;
  return { frames: FRAMES, cpuMsPerFrame: (end.cpu - start.cpu) / FRAMES, fps: (FRAMES * 1000) / ms, seconds: ms / 1000, clientExit: e.code ?? e.signal, clientStderr: errors.trim().split('\n').filter(Boolean).slice(-3) };
}

async function runWeston(card, client, pixman, env) {
  const socket = `bench-weston-${pixman ? 'pixman' : 'gl'}`;
  const args = ['--backend=drm-backend.so', '--tty=2', `--drm-device=${card}`, '--continue-without-input', '--idle-time=0', `--socket=${socket}`, ...(pixman ? ['--use-pixman'] : [])];
  const w = await startCompositor('weston', args, env, socket);
  try {
    await sleep(1000); // its first modeset and repaint
    return await measure(w.child.pid, client, { ...env, WAYLAND_DISPLAY: socket });
  } finally {
    await stop(w.child);
  }
}

async function runKiosk(card, client, env, extra = []) {
  const socket = 'bench-kiosk';
  const statsFile = join(env.XDG_RUNTIME_DIR, 'kiosk-stats.json');
  rmSync(statsFile, { force: true });
  const k = await startCompositor(process.execPath, [...NODE_ARGS, join(root, 'dist/compositor-example/main.js'), '--device', `/dev/dri/${card}`, '--socket', socket, '--stats', statsFile, ...extra], env, socket);
  let r;
  try {
    r = await measure(k.child.pid, client, { ...env, WAYLAND_DISPLAY: socket });
  } finally {
    const e = await stop(k.child);
    if (e.code !== 0) note(`kiosk exited ${e.code ?? e.signal}: ${k.log.join('').slice(-1500)}`);
  }
  const stats = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) : null;
  return {
    ...r,
    bytesCopiedPerFrame: stats && stats.frames > 0 ? stats.bytesCopied / stats.frames : null,
    direct: stats?.direct ?? null,
    copied: stats?.copied ?? null,
    paths: stats ? [...new Set(stats.buffers.map((b) => `${b.kind}:${b.path}`))] : null,
  };
}

const CLIENTS = [
  { name: 'weston-simple-shm', cmd: ['weston-simple-shm'], pixman: true, weston: 'weston-pixman' },
  { name: 'weston-simple-dmabuf-egl', cmd: null, pixman: false, weston: 'weston-gl' },
];

async function main() {
  const card = kmsCard();
  const xdg = mkdtempSync(join(tmpdir(), 'primebuf-bench-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
  note(`kiosk vs weston on /dev/dri/${card}, ${FRAMES} client frames per run`);
  let failed = false;
  try {
    for (const c of CLIENTS) {
      if (values.client && !c.name.endsWith(values.client)) continue;
      const cmd = c.cmd ?? ['weston-simple-dmabuf-egl', '-d', `/dev/dri/${card}`];
      // A run that fails prints its error as the line and the others still run.
      const attempt = async (compositor, fn) => {
        try {
          return await fn();
        } catch (err) {
          failed = true;
          console.log(JSON.stringify({ compositor, client: c.name, error: err.message.split('\n').slice(0, 4).join(' | ') }));
          return null;
        }
      };
      const w = values.only === 'kiosk' ? null : await attempt(c.weston, () => runWeston(card, cmd, c.pixman, env));
      if (w) console.log(JSON.stringify({ compositor: c.weston, client: c.name, frames: w.frames, cpuMsPerFrame: w.cpuMsPerFrame, fps: w.fps, bytesCopiedPerFrame: null, seconds: w.seconds, loadavg: +loadavg()[0].toFixed(2) }));
      if (values.only === 'weston') continue;
      // wl_shm clients: the kiosk with zero copy (udmabuf, issue 12) and without (--no-zero-copy)
      for (const [compositor, extra] of c.pixman && !values['no-baseline'] ? [['kiosk', []], ['kiosk --no-zero-copy', ['--no-zero-copy']]] : [['kiosk', []]]) {
        const k = await attempt(compositor, () => runKiosk(card, cmd, env, extra));
        if (!k) continue;
        console.log(JSON.stringify({
          compositor, client: c.name, ...(NODE_ARGS.length ? { nodeArgs: NODE_ARGS.join(' ') } : {}), frames: k.frames, cpuMsPerFrame: k.cpuMsPerFrame, fps: k.fps, bytesCopiedPerFrame: k.bytesCopiedPerFrame,
          direct: k.direct, copied: k.copied, paths: k.paths, seconds: k.seconds,
          ratio: w ? { cpuPerFrame: k.cpuMsPerFrame / w.cpuMsPerFrame, fps: k.fps / w.fps } : null,
          against: c.weston, loadavg: +loadavg()[0].toFixed(2),
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
