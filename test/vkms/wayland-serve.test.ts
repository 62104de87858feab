// `primebuf serve` against the real kernel (vkms in the guest), seen by third-party clients:
// wayland-info and weston-simple-dmabuf-feedback. Fails (never skips) when vkms is missing.
// Leak-checked from outside the server, by the kernel: after each client's session the serve
// process has the fds it had before (/proc/PID/fd), and the kernel's lists of dma-bufs
// (debugfs dma_buf/bufinfo: a PRIME import left open keeps its client's dma-buf alive) and of
// framebuffers are what they were.
import t from 'tap';
import { until } from '../util/wait.js';
import { coreBacktrace, coreDumpsTo, dmabufFeedbackClientOk, isExitPathDoubleDestroy, spawnWithCore } from '../util/weston-clients.js';
import { plainMemfd } from '../util/memfd.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { kernelDmabufs, kernelFramebuffers, type TapTest } from './leak.js';
import { OwnedFd } from '../../src/fd.js';
import { fourcc } from '../../src/formats/index.js';
import { findDriver, requireVkms, privateRuntimeDir } from './devices-util.js';
import { native, packageRoot } from '../../src/native.js';
import { WaylandConnection } from '../../src/wayland/index.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);

const xdg = privateRuntimeDir(t, 'primebuf-xdg-', false);
// Cores of crashed clients (their backtrace tells a client's own known crash from another).
const cores = privateRuntimeDir(t, 'primebuf-cores-', false);
t.teardown(coreDumpsTo(cores));

function startServe(socket: string, extra: string[] = ['--device', vkms!.path]): Promise<{ child: ChildProcess; lines: string[]; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'serve', '--socket', socket, '--json', '--log', ...extra], {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not get ready: ${lines.join('\n')}`)), 120000);
    child.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.kind === 'ready') {
            clearTimeout(timer);
            resolve({ child, lines, ready: j });
          }
        } catch {
          // not JSON: kept in lines for the diagnostics
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${lines.join('\n')}`));
    });
  });
}

/** SIGTERM, then its exit code, or the signal's name when a signal ended it (a crash says which). */
function stop(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
  });
}

/** What the kernel says the serve process holds: its fds, every dma-buf alive, every framebuffer. */
function serveHolds(pid: number) {
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    dmabufs: kernelDmabufs().map((d) => `${d.ino} ${d.exporter} ${d.size} [${d.attached.join(',')}]`),
    framebuffers: kernelFramebuffers(),
  };
}

/** A subtest after which the serve process holds what it held before (waits for it to see its clients go). */
function serveLeakFree(name: string, fn: (t: TapTest, pid: number) => Promise<void>): void {
  t.test(name, async (t) => {
    const s = await serving;
    const pid = s.child.pid!;
    const before = serveHolds(pid);
    await fn(t, pid);
    const same = () => JSON.stringify(serveHolds(pid)) === JSON.stringify(before);
    await until(same, 60_000, 50);
    t.same(serveHolds(pid), before, `serve holds no fd, dma-buf or framebuffer more than before (${before.fds} fds, ${before.dmabufs.length} dma-bufs)`);
  });
}

/**
 * weston-simple-dmabuf-feedback against pb-serve, with a core if it crashes. `during` runs once it
 * read its second feedback (the scanout tranche, sent after its first frame): it is then in its
 * main loop, inside wl_display_dispatch, seconds before its exit path.
 */
async function dmabufFeedbackClient(during?: (child: ChildProcess) => void) {
  const child = spawnWithCore('weston-simple-dmabuf-feedback', [], {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: 'pb-serve' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let called = false;
  const onData = (d: Buffer) => {
    out += d.toString();
    if (during && !called && (out.match(/end of dma-buf feedback/g)?.length ?? 0) >= 2) {
      called = true;
      during(child);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('exit', (c, sig) => {
      clearTimeout(timer);
      resolve({ code: c, signal: sig });
    });
  });
  const backtrace = signal === 'SIGSEGV' ? coreBacktrace('/usr/bin/weston-simple-dmabuf-feedback', cores, child.pid!) : undefined;
  return { code, signal, out, backtrace };
}

// One server for both clients. A small output: weston-simple-dmabuf-feedback renders
// output-sized buffers with llvmpipe under TCG, and its run is bounded by a 3-second timer.
const serving = startServe('pb-serve', ['--device', vkms!.path, '--output', '96x64']);
serving.catch(() => undefined); // reported by the tests that await it
t.teardown(async () => {
  const s = await serving.catch(() => null);
  if (s && s.child.exitCode === null) s.child.kill('SIGKILL');
});

serveLeakFree('wayland-info sees zwp_linux_dmabuf_v1 v5 with main device and tranches from primebuf serve', async (t) => {
  const s = await serving;
  t.equal(s.ready.device, vkms!.path);
  const r = spawnSync('wayland-info', [], { env: { ...process.env, XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: 'pb-serve' }, encoding: 'utf8', timeout: 120000 });
  t.equal(r.status, 0, 'wayland-info exits 0');
  const out = r.stdout;
  t.comment(out.split('\n').filter((l) => /dmabuf|device|tranche|XRGB|ARGB|flags/i.test(l)).slice(0, 40).join('\n'));
  t.match(out, /interface: 'zwp_linux_dmabuf_v1',\s+version:\s+5/, 'zwp_linux_dmabuf_v1 version 5');
  t.match(out, /main device/i, 'main device printed');
  t.match(out, /tranche/i, 'tranches printed');
  t.match(out, /XRGB8888|0x34325258|XR24/, 'a format of the vkms planes');
  t.match(out, /interface: 'wl_shm'/, 'wl_shm');
  t.match(out, /interface: 'wl_compositor'/, 'wl_compositor');
  t.match(out, /interface: 'wl_output'/, 'wl_output');
  const globals = [...new Set([...out.matchAll(/interface: '([a-z0-9_]+)'/g)].map((m) => m[1]!))].sort();
  const help = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'serve', '--help'], { encoding: 'utf8' }).stdout;
  const advertised = help.slice(0, help.indexOf('\n  --device')).match(/\b(wl|xdg|zwp)_[a-z0-9_]+/g) ?? [];
  t.same([...new Set(advertised)].sort(), globals, 'serve --help names exactly the globals serve offers');
});

serveLeakFree('weston-simple-dmabuf-feedback reads the default and the scanout feedback without error', async (t) => {
  const s = await serving;
  const { code, signal, out, backtrace } = await dmabufFeedbackClient();
  t.comment(out.split('\n').filter((l) => !/tranche format\/modifier pair/.test(l)).join('\n'));
  const exit = dmabufFeedbackClientOk(code, signal, out, backtrace);
  t.ok(exit.ok, `the client ran its course: ${exit.why}`);
  t.equal(out.match(/end of dma-buf feedback/g)?.length, 2, 'two complete feedbacks: default render tranche, then with scanout');
  t.match(out, /scanout tranche\? yes/, 'the scanout tranche arrived once the surface showed a buffer');
  t.match(out, new RegExp(`compositor sent main_device event for dma-buf feedback - ${vkms!.path}`), 'main device resolved to the vkms node');
  t.notMatch(out, /protocol error|error in client communication|Assertion|error:/i, 'no protocol error, no failed assertion');
  const created = s.lines.filter((l) => /"kind":"buffer"/.test(l) && /"outcome":"created"/.test(l));
  t.ok(created.length >= 1, `serve imported the client's buffers through PRIME (${created.length})`);
});

// The known exit-path crash is told apart by its backtrace: a SIGSEGV delivered while the client
// waits in its event loop (where a crash the compositor caused would happen) must not pass.
serveLeakFree('a SIGSEGV of weston-simple-dmabuf-feedback inside event dispatch is not taken for its known exit-path crash', async (t) => {
  const { code, signal, out, backtrace } = await dmabufFeedbackClient((child) => child.kill('SIGSEGV'));
  t.equal(signal, 'SIGSEGV', `killed by SIGSEGV (exit ${code ?? signal})`);
  t.ok(backtrace !== undefined, 'it left a core, and gdb read its backtrace');
  t.comment(backtrace ?? '(no backtrace)');
  t.notOk(isExitPathDoubleDestroy(backtrace ?? ''), 'the backtrace is not the exit-path double destroy');
  t.match(out, /scanout tranche\? yes/, 'it had re-allocated for the scanout tranche, as in the known crash');
  const judged = dmabufFeedbackClientOk(code, signal, out, backtrace);
  t.notOk(judged.ok, `judged a failure: ${judged.why.split('\n')[0]}`);
});

serveLeakFree('serve logs wl_shm buffers and every dma-buf verdict, including protocol errors', async (t) => {
  const s = await serving;
  process.env.XDG_RUNTIME_DIR = xdg;
  const conn = WaylandConnection.connect('pb-serve');
  const { registry, globals } = await conn.globals();
  const bind = <I extends 'wl_shm' | 'wl_compositor' | 'zwp_linux_dmabuf_v1'>(iface: I, v: number) =>
    conn.bind(registry, globals.find((g) => g.interface === iface)!, iface, v);
  const shm = bind('wl_shm', 1);
  const comp = bind('wl_compositor', 4);
  const mem = plainMemfd('shm pool', 32 * 16 * 4);
  const pool = shm.request('create_pool', { fd: mem, size: 32 * 16 * 4 });
  const buffer = pool.request('create_buffer', { offset: 0, width: 32, height: 16, stride: 128, format: 1 });
  const surface = comp.request('create_surface', {});
  surface.request('attach', { buffer, x: 0, y: 0 });
  surface.request('commit', {});
  await conn.roundtrip();
  const dmabuf = bind('zwp_linux_dmabuf_v1', 5);
  const params = dmabuf.request('create_params', {});
  params.request('add', { fd: mem, plane_idx: 0, offset: 0, stride: 128, modifier_hi: 0, modifier_lo: 0 });
  params.request('create', { width: 0, height: 16, format: fourcc('XRGB8888'), flags: 0 });
  const err = await conn.roundtrip().catch((e: unknown) => e);
  t.match(err, { interface: 'zwp_linux_buffer_params_v1', codeName: 'invalid_dimensions' }, 'the bad buffer killed the client');
  conn.close();
  mem.close();
  const logged = () => s.lines.some((l) => /"outcome":"protocol_error"/.test(l)) && s.lines.some((l) => /"request":"wl_shm"/.test(l));
  await until(logged, 30_000, 20);
  const logs = s.lines.filter((l) => /"kind":"buffer"/.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(logs.some((l) => l.request === 'wl_shm' && (l.buffer as { width: number }).width === 32), 'the wl_shm buffer is logged');
  t.ok(logs.some((l) => l.outcome === 'protocol_error' && l.error === 'invalid_dimensions'), 'the protocol error is logged with its name');
});

t.test('serve logs and exits 0 on SIGTERM', async (t) => {
  const s = await serving;
  t.ok(s.lines.some((l) => /"kind":"client"/.test(l) && /"event":"connected"/.test(l)), 'clients logged (--log)');
  t.equal(await stop(s.child), 0, 'exit status 0');
  t.ok(s.lines.some((l) => /"kind":"exit"/.test(l)), 'said it was closing');
});


// The layout where card0 has no KMS (vgem loaded before vkms): the default device is the first
// primary node WITH planes, and a --device without KMS gets a message, not EOPNOTSUPP. Runs
// last: the modules are reloaded, so nothing may hold a DRM node open (the server above exited).
t.test('vgem as card0: serve defaults to the first primary node with planes (vkms, card1)', async (t) => {
  const layout = join(packageRoot, 'scripts', 'vm', 'layout.sh');
  const swap = (to: string) => spawnSync('sh', [layout, to], { encoding: 'utf8' });
  const r = swap('vgem-first');
  t.equal(r.status, 0, `layout.sh vgem-first: ${r.stderr}`);
  t.teardown(() => {
    const back = swap('vkms-first');
    if (back.status !== 0) throw new Error(`layout.sh vkms-first failed: ${back.stderr}`);
  });
  const vgemCard = findDriver('vgem');
  const vkmsCard = findDriver('vkms');
  t.equal(vgemCard?.path, '/dev/dri/card0', 'vgem is card0');
  t.equal(vkmsCard?.path, '/dev/dri/card1', 'vkms is card1');
  const s = await startServe('pb-serve-default', []);
  t.equal(s.ready.device, vkmsCard?.path, 'serve chose the vkms node');
  t.equal(s.ready.driver, 'vkms');
  t.equal(await stop(s.child), 0, 'exits 0 on SIGTERM');
  const noKms = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'serve', '--device', '/dev/dri/card0'], {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg },
    encoding: 'utf8',
    timeout: 120000,
  });
  t.equal(noKms.status, 1, '--device on vgem: exit 1');
  t.match(noKms.stderr, /\/dev\/dri\/card0 \(vgem\) has no KMS planes/, 'with a message that says why');
  t.notMatch(noKms.stderr, /EOPNOTSUPP|at .*\.js/, 'not a stack trace');
});
