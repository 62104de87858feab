// What the VM benchmarks share (bench/kiosk-vs-weston.mjs, bench/scene.mjs): starting and stopping
// a compositor (Weston, cage as an unprivileged user through seatd, the kiosk), a compositor's
// CPU time from /proc, and the steady window of a client's commits: the client runs for a settle
// time, then the window is its next `frames` commits (counted from its WAYLAND_DEBUG trace, every
// wl_surface.commit of any of its surfaces), the compositor's CPU sampled at the window's ends.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The vkms primary node's name (by driver name in sysfs), else card0. */
/**
 * The kiosk's node flags wherever it is launched (npm run kiosk, the demo, the unit file, the
 * benchmarks): V8's collector on the main thread only, and no memory reducer (the collections V8
 * starts by itself when the allocation rate drops, which is the direct lane's steady state: most
 * of what the kiosk still spent per lane frame); README, "V8 flags". Command-line only:
 * v8.setFlagsFromString('--single-threaded-gc') in a running process aborts V8 at its next
 * collection.
 */
export const KIOSK_NODE_FLAGS = ['--single-threaded-gc', '--no-memory-reducer'];

export function vkmsCard() {
  for (const n of existsSync('/sys/class/drm') ? readdirSync('/sys/class/drm').filter((x) => /^card\d+$/.test(x)).sort() : []) {
    const uevent = join('/sys/class/drm', n, 'device', 'uevent');
    if (existsSync(uevent) && /DRIVER=vkms/.test(readFileSync(uevent, 'utf8'))) return n;
  }
  return 'card0';
}

const CLK_TCK = 100; // Linux USER_HZ

/** { user, sys } CPU time of `pid` in ms (utime, stime of /proc/PID/stat: every thread). */
export function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // run: the time every thread of the process ran, in ns from the scheduler (the first field of
  // each /proc/PID/task/TID/schedstat), as ms. utime and stime come in clock ticks (10 ms: over an
  // 800-frame window of a 0.1 ms frame that is 12 % a tick); the scheduler's sum is exact to the
  // nanosecond of the guest's clock (instruction time under icount). A thread that ends inside the
  // window takes its time with it (the compositors' threads live as long as they do).
  let run = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      run += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK, run }; // fields 14 and 15 of the whole line
}

export function exited(child) {
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
export async function stop(child, sig = 'SIGTERM', ms = 15000) {
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
export async function waitFor(child, ready, what, log) {
  for (const end = Date.now() + 90000; !ready(); ) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
      await stop(child, 'SIGKILL');
      throw new Error(`${what}:\n${log.join('').slice(-3000)}`);
    }
    await sleep(50);
  }
}

/** Starts a compositor; resolves once its socket exists (`socket`, or the first wayland-N). */
export async function startCompositor(cmd, args, env, socket, spawnOpts = {}) {
  const log = [];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
  child.detachedGroup = spawnOpts.detached === true;
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => log.push(d.toString()));
  const found = () => socket ?? readdirSync(env.XDG_RUNTIME_DIR).find((n) => /^wayland-\d+$/.test(n));
  await waitFor(child, () => { const s = found(); return s && existsSync(join(env.XDG_RUNTIME_DIR, s)); }, `${cmd} did not listen on ${socket ?? 'a wayland-N socket'}`, log);
  return { child, log, socket: found() };
}

/** The window's figures from CPU samples { user, sys } and guest-clock times (ms). */
export function figures(frames, c0, c1, t0, t1) {
  const user = c1.user - c0.user;
  const sys = c1.sys - c0.sys;
  const r = (x) => +x.toFixed(4);
  // the CPU figure from the scheduler's exact sum; user and system time split it in the ratio the
  // clock ticks give (as the kernel's own cputime_adjust does); the tick-based sum beside it
  const run = c1.run - c0.run;
  const ticks = user + sys;
  const userShare = ticks > 0 ? user / ticks : 0.5;
  return {
    frames,
    cpuMsPerFrame: r(run / frames),
    userMsPerFrame: r((run * userShare) / frames),
    sysMsPerFrame: r((run * (1 - userShare)) / frames),
    ticksMsPerFrame: r(ticks / frames),
    cpuClock: 'schedstat',
    fps: +((frames * 1000) / (t1 - t0)).toFixed(2),
    seconds: +((t1 - t0) / 1000).toFixed(2),
  };
}

/**
 * Runs `client` until it committed for `settleMs` after its first commit and then `frames` more
 * (and, with `minMs`, until the window also lasted that long: the window ends at the first commit
 * past both); the compositor's CPU and the guest's time between the window's first and last commit.
 * `edge` is called at the window's first and last commit (the kiosk's heap probe).
 */
export async function measure(compositorPid, client, env, { settleMs, frames: FRAMES, minMs = 0 }, edge = () => {}) {
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
          if (!start && now - first >= settleMs) {
            start = { t: now, cpu: cpuOf(compositorPid), commit: commits };
            edge();
          }
          if (start && !end && commits >= start.commit + FRAMES && now - start.t >= minMs) {
            end = { t: now, cpu: cpuOf(compositorPid), commit: commits };
            edge();
            resolve();
          }
        } else if (!/^\[\s*\d+\.\d+\]/.test(l) && l.trim()) errors += `${l}\n`;
      }
    });
    child.on('exit', () => resolve());
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 600000 + minMs);
  await done;
  clearTimeout(timer);
  const e = await stop(child, 'SIGINT');
  if (!end) throw new Error(`${client[0]} stopped after ${commits} commits (${start ? `${commits - start.commit} of the ${FRAMES}-frame window` : 'still settling'}; exit ${e.code ?? e.signal}):\n${errors.slice(-2000)}`);
  return figures(end.commit - start.commit, start.cpu, end.cpu, start.t, end.t);
}

export async function runWeston(card, client, pixman, env, window) {
  const socket = `bench-weston-${pixman ? 'pixman' : 'gl'}`;
  const args = ['--backend=drm-backend.so', '--tty=2', `--drm-device=${card}`, '--continue-without-input', '--idle-time=0', `--socket=${socket}`, ...(pixman ? ['--use-pixman'] : [])];
  const w = await startCompositor('weston', args, env, socket);
  try {
    return await measure(w.child.pid, client, { ...env, WAYLAND_DISPLAY: socket }, window);
  } finally {
    await stop(w.child);
  }
}

/** An unprivileged account to run cage as (cage refuses root): nobody, from /etc/passwd. */
export function unprivileged() {
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
export async function runCage(card, client, env, window) {
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
    return await measure(cage.child.pid, client, { ...env, XDG_RUNTIME_DIR: dir, WAYLAND_DISPLAY: cage.socket }, window);
  } catch (err) {
    throw new Error(`${err.message}\nseatd: ${seatLog.join('').slice(-1500)}${cage ? `\ncage: ${cage.log.join('').slice(-1500)}` : ''}`);
  } finally {
    if (cage) await stop(cage.child);
    await stop(seatd);
    rmSync(dir, { recursive: true, force: true });
  }
}
