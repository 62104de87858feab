// linux-dmabuf against the real kernel (vkms + vgem + udmabuf in the guest): real dma-bufs
// imported through PRIME into vkms by the linux-dmabuf global, GEM handles counted and dropped,
// fds and memory flat. Fails (never skips) when the devices are missing. Leak-checked: every
// case leaves fds, primebuf's GEM handle and framebuffer counts and the kernel's framebuffer list
// as it found them (leakFree), and before its vkms fd closes (which would free any handle), the
// kernel's own GEM handles on that fd are the ones it had when the case opened it.
import t from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { openSync, closeSync } from 'node:fs';
import { OwnedFd } from '../../src/fd.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { Device, Framebuffer } from '../../src/kms/index.js';
import { liveGemHandleCount } from '../../src/kms/gem.js';
import { findDriver } from './devices-util.js';
import { gemHandlesOn, leakFree, type TapTest } from './leak.js';
import { native, testNative } from '../../src/native.js';
import { PrimeImporter } from '../../src/dmabuf/import.js';
import { LinuxDmabuf, type BufferVerdict, type LinuxDmabufBuffer } from '../../src/wayland/linux-dmabuf.js';
import { kmsFormats } from '../../src/wayland/kms-formats.js';
import { WaylandConnection, WaylandServer, type WaylandProxy } from '../../src/wayland/index.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const XR24 = fourcc('XRGB8888');

const vkms = findDriver('vkms');
const vgem = findDriver('vgem');

t.ok(vkms, 'vkms primary node present');
t.ok(vgem, 'vgem node present');
if (!vkms || !vgem) process.exit(1);

interface Rig {
  server: WaylandServer;
  dmabuf: LinuxDmabuf;
  device: Device;
  verdicts: BufferVerdict[];
  buffers: LinuxDmabufBuffer[];
  conn: WaylandConnection;
  d: WaylandProxy<'zwp_linux_dmabuf_v1'>;
  /** the kernel's GEM handles on the vkms fd once the rig was up */
  kernelHandles0: number[];
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
  return { server, dmabuf, device, verdicts, buffers, conn, d, kernelHandles0: gemHandlesOn(device.fd) };
}

/** Closes the rig, first asserting that the kernel has no GEM handle on vkms that it did not have at the start. */
function closeRig(r: Rig, t: TapTest): void {
  t.same(gemHandlesOn(r.device.fd), r.kernelHandles0, 'the kernel holds no GEM handle on the vkms fd beyond those at the start');
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

function addPlane(p: WaylandProxy<'zwp_linux_buffer_params_v1'>, fd: OwnedFd, stride: number, offset = 0): void {
  p.request('add', { fd, plane_idx: 0, offset, stride, modifier_hi: 0, modifier_lo: Number(DRM_FORMAT_MOD_LINEAR) });
}

function outcome(p: WaylandProxy<'zwp_linux_buffer_params_v1'>): Promise<string> {
  return new Promise((resolve) => {
    p.on('created', () => resolve('created'));
    p.on('failed', () => resolve('failed'));
  });
}

leakFree(t, 'real dma-bufs: vgem buffers import into vkms through PRIME; GEM handles counted and dropped', async (t) => {
  const r = await rig();
  const handles0 = r.device.gemHandleCount;
  const b = vgemBuffer(256, 128);
  t.equal(native.dmabufSize(b.fd.fd), b.size, 'a dma-buf reports its size through lseek');
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
  closeRig(r, t);
});

leakFree(t, 'Framebuffer.forBuffer: a framebuffer from the imported client buffer, no second import; GEM handle counts at each step', async (t) => {
  const r = await rig();
  const handles0 = r.device.gemHandleCount;
  const live0 = liveGemHandleCount();
  const b = vgemBuffer(256, 128);
  const p = r.d.request('create_params', {});
  addPlane(p, b.fd, b.pitch);
  const o = outcome(p);
  p.request('create', { width: 256, height: 128, format: XR24, flags: 0 });
  t.equal(await o, 'created');
  const buf = r.buffers[0]!;
  const [gem] = buf.imported.gemHandles ?? [];
  t.ok(gem, 'the import holds a counted GemHandle');
  t.equal(buf.imported.device, r.device, 'of the vkms device');
  t.equal(gem!.handle, buf.imported.handles[0], 'the same handle as the number');
  t.equal(r.device.gemHandleCount, handles0 + 1, 'import: one more handle on vkms');
  t.equal(r.device.gemHandleRefs(gem!.handle), 1, 'import: one reference');
  const fb = Framebuffer.forBuffer(r.device, buf);
  t.ok(fb.id > 0, `framebuffer ${fb.id}`);
  t.equal(r.device.gemHandleCount, handles0 + 1, 'framebuffer: still one handle (no second PRIME import)');
  t.equal(r.device.gemHandleRefs(gem!.handle), 2, 'framebuffer: its own reference');
  t.equal(fb.width, 256);
  t.equal(fb.modifier, DRM_FORMAT_MOD_LINEAR);
  const other = Device.open(vkms!.path);
  t.throws(() => Framebuffer.forBuffer(other, buf), TypeError, 'another device\'s framebuffer is refused');
  other.close();
  buf.resource.destroy();
  t.ok(gem!.closed, 'the wl_buffer gone: the import closed its reference');
  t.equal(r.device.gemHandleRefs(buf.imported.handles[0]!), 1, 'the framebuffer keeps the handle alive');
  t.equal(r.device.gemHandleCount, handles0 + 1);
  fb.close();
  t.equal(r.device.gemHandleCount, handles0, 'framebuffer closed: back to the baseline');
  t.equal(liveGemHandleCount(), live0, 'and across all devices');
  p.request('destroy', {});
  b.fd.close();
  closeRig(r, t);
});

leakFree(t, 'real dma-bufs: size checks against the dma-buf, non-dma-buf fds fail the PRIME import', async (t) => {
  const r = await rig();
  const b = vgemBuffer(64, 64);
  const p1 = r.d.request('create_params', {});
  addPlane(p1, b.fd, b.pitch);
  const o1 = outcome(p1);
  p1.request('create', { width: 64, height: 64, format: XR24, flags: 0 });
  t.equal(await o1, 'created', 'an exactly-sized buffer is accepted');
  p1.request('destroy', {});
  // A plain memfd is not a dma-buf: PRIME import fails -> `failed`, the client lives.
  const m = plainMemfd('not a dma-buf', 64 * 64 * 4);
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
  closeRig(r, t);
});

leakFree(t, 'udmabuf dma-bufs import too', async (t) => {
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
  t.equal(r.device.gemHandleCount, 1, 'imported into vkms: one GEM handle');
  r.buffers[0]!.resource.destroy();
  p.request('destroy', {});
  t.equal(r.device.gemHandleCount, 0, 'the wl_buffer destroyed: its handle closed');
  dmabufFd.close();
  closeRig(r, t);
});

leakFree(t, '1,000 real dma-buf imports created and destroyed: GEM handles, fds and memory flat', async (t) => {
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
  const fds0 = testNative.countOpenFds();
  const handles0 = r.device.gemHandleCount;
  const rss0 = process.memoryUsage().rss;
  await round(1000);
  const notFreed = r.buffers.filter((x) => !x.freed).length;
  t.equal(r.buffers.length, 1000, '1,000 buffers imported');
  t.equal(notFreed, 0, 'all freed');
  t.equal(r.device.gemHandleCount, handles0, 'GEM handle count flat');
  t.equal(testNative.countOpenFds(), fds0, 'fd count flat');
  const growth = process.memoryUsage().rss - rss0;
  t.ok(growth < 32 * 1024 * 1024, `RSS flat (${(growth / 1048576).toFixed(2)} MiB)`);
  b.fd.close();
  closeRig(r, t);
});
