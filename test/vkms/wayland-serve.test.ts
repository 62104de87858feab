// linux-dmabuf against the real kernel (vkms + vgem in the guest): `primebuf serve` seen by
// wayland-info and weston-simple-dmabuf-feedback, and real dma-bufs (vgem dumb buffers, udmabuf)
// imported through PRIME into vkms, with GEM handles and fds flat afterwards. Fails (never
// skips) when the devices are missing.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OwnedFd } from '../../src/fd.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { Device, listDevices } from '../../src/kms/index.js';
import { native, packageRoot } from '../../src/native.js';
import { PrimeImporter } from '../../src/dmabuf/import.js';
import { LinuxDmabuf, type BufferVerdict, type LinuxDmabufBuffer } from '../../src/wayland/linux-dmabuf.js';
import { kmsFormats } from '../../src/wayland/kms-formats.js';
import { WaylandConnection, WaylandServer, type Proxy } from '../../src/wayland/index.js';

const XR24 = fourcc('XRGB8888');
/** The primary node whose DRM driver is `name` (asked through DRM_IOCTL_VERSION). */
function byDriver(name: string) {
  for (const d of listDevices()) {
    if (d.nodeType !== 'primary') continue;
    try {
      const dev = Device.open(d.path);
      const n = dev.version.name;
      dev.close();
      if (n === name) return d;
    } catch {
      // not openable: not ours
    }
  }
  return undefined;
}
const vkms = byDriver('vkms');
const vgem = byDriver('vgem');

t.ok(vkms, 'vkms primary node present');
t.ok(vgem, 'vgem node present');
if (!vkms || !vgem) process.exit(1);

const xdg = mkdtempSync(join(tmpdir(), 'primebuf-xdg-'));
t.teardown(() => rmSync(xdg, { recursive: true, force: true }));

function startServe(socket: string, extra: string[] = []): Promise<{ child: ChildProcess; lines: string[]; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'serve', '--device', vkms!.path, '--socket', socket, '--json', '--log', ...extra], {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not get ready: ${lines.join('\n')}`)), 30000);
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

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

t.test('wayland-info sees zwp_linux_dmabuf_v1 v5 with main device and tranches from primebuf serve', async (t) => {
  const s = await startServe('pb-info');
  t.equal(s.ready.device, vkms!.path);
  const r = spawnSync('wayland-info', [], { env: { ...process.env, XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: 'pb-info' }, encoding: 'utf8', timeout: 60000 });
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
  t.equal(await stop(s.child), 0, 'serve exits 0 on SIGTERM');
});

t.test('weston-simple-dmabuf-feedback reads the default and the scanout feedback without error', async (t) => {
  // A small output: the client renders output-sized buffers with llvmpipe under TCG, and its
  // run is bounded by a 3-second timer.
  const s = await startServe('pb-feedback', ['--output', '96x64']);
  const child = spawn('weston-simple-dmabuf-feedback', [], {
    env: { ...process.env, XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: 'pb-feedback' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.comment(out.split('\n').filter((l) => !/tranche format\/modifier pair/.test(l)).join('\n'));
  t.equal(code, 0, 'the client ran its course and exited 0');
  t.equal(out.match(/end of dma-buf feedback/g)?.length, 2, 'two complete feedbacks: default render tranche, then with scanout');
  t.match(out, /scanout tranche\? yes/, 'the scanout tranche arrived once the surface showed a buffer');
  t.match(out, /compositor sent main_device event for dma-buf feedback - \/dev\/dri\/card0/, 'main device resolved to the vkms node');
  t.notMatch(out, /protocol error|error in client communication|Assertion|error:/i, 'no protocol error, no failed assertion');
  const created = s.lines.filter((l) => /"kind":"buffer"/.test(l) && /"outcome":"created"/.test(l));
  t.ok(created.length >= 1, `serve imported the client's buffers through PRIME (${created.length})`);
  t.equal(await stop(s.child), 0);
});

interface Rig {
  server: WaylandServer;
  dmabuf: LinuxDmabuf;
  device: Device;
  verdicts: BufferVerdict[];
  buffers: LinuxDmabufBuffer[];
  conn: WaylandConnection;
  d: Proxy<'zwp_linux_dmabuf_v1'>;
}

async function rig(): Promise<Rig> {
  const device = Device.open(vkms!.path);
  const { all, primary } = kmsFormats(device);
  const server = new WaylandServer();
  const verdicts: BufferVerdict[] = [];
  const buffers: LinuxDmabufBuffer[] = [];
  const dmabuf = new LinuxDmabuf(server, {
    mainDevice: device.devId,
    formats: all,
    scanout: { device: device.devId, formats: primary },
    importer: new PrimeImporter(device),
    onVerdict: (v) => verdicts.push(v),
    onBuffer: (b) => buffers.push(b),
  });
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const d = conn.bind(registry, globals.find((g) => g.interface === 'zwp_linux_dmabuf_v1')!, 'zwp_linux_dmabuf_v1', 5);
  return { server, dmabuf, device, verdicts, buffers, conn, d };
}

function closeRig(r: Rig): void {
  r.conn.close();
  r.dmabuf.close();
  r.server.close();
  r.device.close();
}

/** A vgem dumb buffer exported as a dma-buf (another device than vkms: a real PRIME path). */
function vgemBuffer(width: number, height: number): { fd: OwnedFd; pitch: number; size: bigint } {
  const dev = openSync(vgem!.path, 'r+');
  try {
    const dumb = native.dumbCreate(dev, width, height, 32);
    const fd = native.drmPrimeHandleToFd(dev, dumb.handle, true);
    native.dumbDestroy(dev, dumb.handle); // the dma-buf keeps the memory alive
    return { fd: new OwnedFd(fd, 'vgem dma-buf'), pitch: dumb.pitch, size: dumb.size };
  } finally {
    closeSync(dev);
  }
}

function addPlane(p: Proxy<'zwp_linux_buffer_params_v1'>, fd: OwnedFd, stride: number, offset = 0): void {
  p.request('add', { fd, plane_idx: 0, offset, stride, modifier_hi: 0, modifier_lo: Number(DRM_FORMAT_MOD_LINEAR) });
}

function outcome(p: Proxy<'zwp_linux_buffer_params_v1'>): Promise<string> {
  return new Promise((resolve) => {
    p.on('created', () => resolve('created'));
    p.on('failed', () => resolve('failed'));
  });
}

t.test('real dma-bufs: vgem buffers import into vkms through PRIME; GEM handles counted and dropped', async (t) => {
  const r = await rig();
  const handles0 = r.device.gemHandleCount;
  const b = vgemBuffer(256, 128);
  t.equal(native.wlFdSize(b.fd.fd), b.size, 'a dma-buf reports its size through lseek');
  const p = r.d.request('create_params', {});
  addPlane(p, b.fd, b.pitch);
  const o = outcome(p);
  p.request('create', { width: 256, height: 128, format: XR24, flags: 0 });
  t.equal(await o, 'created', 'created');
  t.equal(r.buffers.length, 1);
  t.equal(r.buffers[0]!.imported.handles.length, 1, 'one GEM handle on vkms');
  t.ok(r.buffers[0]!.imported.handles[0]! > 0);
  t.equal(r.device.gemHandleCount, handles0 + 1, 'the device counts it');
  r.buffers[0]!.resource.destroy();
  t.equal(r.device.gemHandleCount, handles0, 'destroying the wl_buffer drops the handle');
  p.request('destroy', {});
  b.fd.close();
  closeRig(r);
});

t.test('real dma-bufs: size checks against the dma-buf, non-dma-buf fds fail the PRIME import', async (t) => {
  const r = await rig();
  const b = vgemBuffer(64, 64);
  const p1 = r.d.request('create_params', {});
  addPlane(p1, b.fd, b.pitch);
  const o1 = outcome(p1);
  p1.request('create', { width: 64, height: 64, format: XR24, flags: 0 });
  t.equal(await o1, 'created', 'an exactly-sized buffer is accepted');
  p1.request('destroy', {});
  // A plain memfd is not a dma-buf: PRIME import fails -> `failed`, the client lives.
  const m = new OwnedFd(native.wlMemfd('not a dma-buf', 64 * 64 * 4));
  const p2 = r.d.request('create_params', {});
  addPlane(p2, m, 256);
  const o2 = outcome(p2);
  p2.request('create', { width: 64, height: 64, format: XR24, flags: 0 });
  t.equal(await o2, 'failed', 'memfd: PRIME import refused, failed event');
  t.match(r.verdicts.at(-1)?.detail, /import failed/);
  p2.request('destroy', {});
  await r.conn.roundtrip();
  t.equal(r.conn.error, null, 'no protocol error for an import failure');
  // Too small for its height: out_of_bounds from the real dma-buf size.
  const p3 = r.d.request('create_params', {});
  addPlane(p3, b.fd, b.pitch);
  p3.request('create', { width: 64, height: 65, format: XR24, flags: 0 });
  const err = await r.conn.roundtrip().catch((e: unknown) => e);
  t.match(err, { interface: 'zwp_linux_buffer_params_v1', code: 6 }, 'out_of_bounds');
  b.fd.close();
  m.close();
  closeRig(r);
});

t.test('udmabuf dma-bufs import too', async (t) => {
  const r = await rig();
  const size = 128 * 64 * 4;
  const memfd = native.memfdCreate('udmabuf backing', true);
  native.ftruncateFd(memfd, size);
  native.addSeals(memfd, 2 /* F_SEAL_SHRINK */);
  const dev = openSync('/dev/udmabuf', 'r+');
  const dmabufFd = new OwnedFd(native.udmabufCreate(dev, memfd, 0, size), 'udmabuf');
  closeSync(dev);
  native.closeFd(memfd);
  const p = r.d.request('create_params', {});
  addPlane(p, dmabufFd, 128 * 4);
  const o = outcome(p);
  p.request('create', { width: 128, height: 64, format: XR24, flags: 0 });
  t.equal(await o, 'created');
  dmabufFd.close();
  closeRig(r);
});

t.test('2,000 real dma-buf imports created and destroyed: GEM handles, fds and memory flat', async (t) => {
  const r = await rig();
  const b = vgemBuffer(64, 64);
  const round = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const p = r.d.request('create_params', {});
      addPlane(p, b.fd, b.pitch);
      const buf = p.request('create_immed', { width: 64, height: 64, format: XR24, flags: 0 });
      p.request('destroy', {});
      buf.request('destroy', {});
      if (i % 100 === 99) await r.conn.roundtrip();
    }
    await r.conn.roundtrip();
  };
  await round(200);
  r.buffers.length = 0;
  const fds0 = native.countOpenFds();
  const handles0 = r.device.gemHandleCount;
  const rss0 = process.memoryUsage().rss;
  await round(2000);
  const notFreed = r.buffers.filter((x) => !x.freed).length;
  t.equal(r.buffers.length, 2000, '2,000 buffers imported');
  t.equal(notFreed, 0, 'all freed');
  t.equal(r.device.gemHandleCount, handles0, 'GEM handle count flat');
  t.equal(native.countOpenFds(), fds0, 'fd count flat');
  const growth = process.memoryUsage().rss - rss0;
  t.ok(growth < 32 * 1024 * 1024, `RSS flat (${(growth / 1048576).toFixed(2)} MiB)`);
  b.fd.close();
  closeRig(r);
});
