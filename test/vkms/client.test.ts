// The client helper against the real kernel: a linux-dmabuf server on vkms in-process (PRIME
// imports into vkms), a client that reads its surface feedback, picks LINEAR XRGB8888, allocates
// through primebuf's allocators (dumb on the vkms card when the scanout tranche targets it,
// device-less memory otherwise), draws inside DMA_BUF_IOCTL_SYNC brackets, and keeps a ring
// that honours out-of-order releases and re-allocates when the scanout tranche comes and goes.
// Leak-checked; fails (never skips) when the devices are missing.
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { Device } from '../../src/kms/index.js';
import { Dmabuf } from '../../src/dmabuf/index.js';
import { PrimeImporter } from '../../src/dmabuf/import.js';
import { openSystemAllocators } from '../../src/alloc/index.js';
import { LinuxDmabuf, type LinuxDmabufBuffer } from '../../src/wayland/linux-dmabuf.js';
import { kmsFormats } from '../../src/wayland/kms-formats.js';
import { WaylandConnection, WaylandServer, type ServerResource } from '../../src/wayland/index.js';
import { BufferRing, ClientDmabuf, clientAllocators, type ClientReallocationEvent, type RingBuffer } from '../../src/client/index.js';
import { requireVkms } from './devices-util.js';
import { leakFree, type TapTest } from './leak.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const XR24 = fourcc('XRGB8888');
const W = 128;
const H = 64;

const vkms = requireVkms(t);

/** Reads the first pixel of a buffer the server received (through its own fd, inside a read bracket). */
async function firstPixel(b: LinuxDmabufBuffer): Promise<number> {
  const d = Dmabuf.dupFrom(b.attributes.planes[0]!.fd.fd, 'server view');
  try {
    return await d.withCpuAccess('read', () => {
      const m = d.map({ writable: false, length: 4096 });
      try {
        return new DataView(m.bytes().buffer, m.bytes().byteOffset, 4).getUint32(0, true);
      } finally {
        m.close();
      }
    });
  } finally {
    d.close();
  }
}

async function paint(b: RingBuffer, color: number): Promise<void> {
  await b.draw((px, stride) => {
    const v = new DataView(px.buffer, px.byteOffset, px.byteLength);
    for (let y = 0; y < b.height; y++) for (let x = 0; x < b.width; x++) v.setUint32(y * stride + x * 4, color, true);
  });
}

leakFree(t as TapTest, 'client: feedback, pick, real allocations imported by the server, ring releases, re-allocation', async (t) => {
  const device = Device.open(vkms.path);
  const { all, primary } = kmsFormats(device);
  const server = new WaylandServer();
  const received: LinuxDmabufBuffer[] = [];
  const surfaces: ServerResource<'wl_surface'>[] = [];
  server.createGlobal('wl_compositor', 4, (res) => res.implement({ create_surface: ({ id }) => surfaces.push(id) }));
  const linuxDmabuf = new LinuxDmabuf(server, {
    mainDevice: device.devId,
    formats: all,
    scanout: { device: device.devId, formats: primary },
    importer: new PrimeImporter(device),
    onBuffer: (b) => received.push(b),
  });
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const compositor = conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const client = await ClientDmabuf.bind(conn, { registry, globals });
  const surface = compositor.request('create_surface', {});
  const feedback = await client.surfaceFeedback(surface);
  const f = feedback.current;
  t.equal(f.mainDevice, device.devId, "the main device is vkms's dev_t");
  t.equal(f.tranches.length, 1, 'not scanout-eligible yet: the main tranche only');
  t.ok(f.tranches[0]!.formats.has(XR24, DRM_FORMAT_MOD_LINEAR), 'XRGB8888 LINEAR offered');

  // The client's own allocators: dumb buffers on its own open of the vkms card, heaps, udmabuf.
  const sys = openSystemAllocators({ cards: [vkms.path.split('/').pop()!] });
  const allocators = clientAllocators(sys);
  const dumbName = allocators.find((a) => a.device === device.devId)?.allocator.caps.name;
  t.ok(dumbName?.startsWith('dumb@'), `a dumb allocator on the vkms device (${dumbName})`);
  t.ok(allocators.some((a) => a.allocator.caps.kind === 'udmabuf'), 'udmabuf present');

  const events: ClientReallocationEvent[] = [];
  const ring = new BufferRing({ dmabuf: client, feedback, allocators, width: W, height: H, formats: [XR24], count: 3, onReallocate: (e) => events.push(e) });
  const p0 = ring.pick;
  t.ok(p0.ok && p0.format === XR24 && p0.modifier === DRM_FORMAT_MOD_LINEAR && !p0.scanout, 'LINEAR XRGB8888 from the main tranche');

  const bufs = [ring.acquire()!, ring.acquire()!, ring.acquire()!];
  t.equal(ring.acquire(), null, 'a ring of three');
  t.ok(bufs.every((b) => b.allocator !== dumbName), `not for scanout: device-less memory (${bufs[0]!.allocator})`);
  const colors = [0xff102030, 0xff405060, 0xff708090];
  for (const [i, b] of bufs.entries()) {
    await paint(b, colors[i]!);
    ring.attach(surface, b);
    surface.request('commit', {});
  }
  await conn.roundtrip();
  t.equal(conn.error, null, 'create_immed accepted: no protocol error');
  t.equal(received.length, 3, "the server's onBuffer saw three buffers");
  t.ok(received.every((b) => b.imported.handles.length === 1 && b.imported.handles[0]! > 0), 'each PRIME-imported into vkms');
  t.same(await Promise.all(received.map(firstPixel)), colors, 'the server reads what the client drew');

  // Releases out of order: 2, then 0; buffer 1 stays held and is never handed out.
  received[2]!.release();
  await conn.roundtrip();
  t.equal(ring.acquire(), bufs[2], 'the first released buffer comes back');
  t.equal(ring.acquire(), null, 'nothing else is free');
  received[0]!.release();
  await conn.roundtrip();
  t.equal(ring.acquire(), bufs[0], 'then the second released one');
  t.equal(ring.acquire(), null, 'buffer 1 is still held by the compositor');
  t.equal(ring.allocations, 3, 'reuse, no new allocation');
  ring.giveBack(bufs[0]!);
  ring.giveBack(bufs[2]!);

  // Scanout tranche gained: the ring re-allocates, on the KMS device the tranche targets.
  const gained = feedback.nextChange();
  linuxDmabuf.setScanoutEligible(surfaces[0]!, true);
  const g = await gained;
  t.ok(g.tranches[0]!.scanout && g.tranches[0]!.device === device.devId, 'scanout tranche on vkms first');
  t.equal(events.length, 1, 'one re-allocation');
  t.ok(events[0]!.to.ok && events[0]!.to.scanout, 'for the scanout tranche');
  t.equal(events[0]!.freedNow, 2, 'the free buffers went at once; the held one waits for its release');
  const s = ring.acquire()!;
  t.equal(s.allocator, dumbName, 'a dumb buffer on the vkms card');
  await paint(s, 0xffabcdef);
  ring.attach(surface, s);
  surface.request('commit', {});
  await conn.roundtrip();
  t.equal(received.length, 4);
  t.equal(received[3]!.imported.handles.length, 1, 'the dumb buffer imported (into the device it came from)');
  t.equal(await firstPixel(received[3]!), 0xffabcdef);
  received[1]!.release();
  await conn.roundtrip();
  t.ok(bufs[1]!.closed, 'the old held buffer is freed on release, not reused');
  await conn.roundtrip(); // the destroy sent from the release handler
  t.ok(received[1]!.destroyed, 'its wl_buffer destroyed');

  // Scanout tranche lost: device-less memory again.
  const lost = feedback.nextChange();
  linuxDmabuf.setScanoutEligible(surfaces[0]!, false);
  await lost;
  t.equal(events.length, 2, 're-allocated again');
  const back = ring.acquire()!;
  t.not(back.allocator, dumbName, `scanout lost: ${back.allocator}`);
  ring.giveBack(back);

  ring.close();
  feedback.close();
  client.close();
  await conn.roundtrip();
  t.equal(conn.error, null, 'clean to the end');
  t.ok(received.every((b) => b.destroyed), 'every wl_buffer destroyed');
  conn.close();
  linuxDmabuf.close();
  server.close();
  sys.close();
  device.close();
});
