// The client helper against primebuf's own linux-dmabuf server in-process (no DRM on the host:
// memfds stand in for dma-bufs, the server's importer accepts them): the feedback reader gets
// the default and per-surface feedback as immutable snapshots, sees the scanout tranche come
// and go as 'changed' events (and nothing when the server re-sends nothing), falls back to
// modifier events on a version 3 global, and leaves no fd behind; the buffer ring never hands
// out a buffer the compositor holds, follows out-of-order releases and re-allocates when the
// feedback's pick changes.
import t from 'tap';
import { writeSync } from 'node:fs';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { native, testNative } from '../../src/native.js';
import { OwnedFd } from '../../src/fd.js';
import type { AllocationPlan, AllocatorCaps } from '../../src/alloc/index.js';
import type { DmabufImporter } from '../../src/dmabuf/import.js';
import { LinuxDmabuf, type LinuxDmabufBuffer } from '../../src/wayland/linux-dmabuf.js';
import { WaylandConnection, WaylandServer, type ServerResource } from '../../src/wayland/index.js';
import { BufferRing, ClientDmabuf, type ClientReallocationEvent } from '../../src/client/index.js';
import { FakeAllocator, type FakeBacking } from './fake-alloc.js';
import { plainMemfd } from '../util/memfd.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const MAIN_DEV = (226n << 8n) | 128n;
const KMS_DEV = 226n << 8n;

const advertised = FormatSet.from([
  [XR24, DRM_FORMAT_MOD_LINEAR],
  [XR24, DRM_FORMAT_MOD_INVALID],
  [AR24, DRM_FORMAT_MOD_LINEAR],
  [NV12, DRM_FORMAT_MOD_LINEAR],
]);
const scanoutPairs = FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR]]);

interface Harness {
  server: WaylandServer;
  dmabuf: LinuxDmabuf;
  buffers: LinuxDmabufBuffer[];
  surfaces: ServerResource<'wl_surface'>[];
  attached: Array<LinuxDmabufBuffer | null>;
}

function harness(): Harness {
  const server = new WaylandServer();
  const buffers: LinuxDmabufBuffer[] = [];
  const surfaces: ServerResource<'wl_surface'>[] = [];
  const attached: Array<LinuxDmabufBuffer | null> = [];
  const importer: DmabufImporter = { name: 'host stand-in', importDmabuf: () => ({ handles: [], close: () => undefined }) };
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({
      create_surface: ({ id }) => {
        surfaces.push(id);
        id.implement({ attach: ({ buffer }) => attached.push(buffer ? (buffer.data['linuxDmabufBuffer'] as LinuxDmabufBuffer) : null) });
      },
    }),
  );
  const dmabuf = new LinuxDmabuf(server, {
    mainDevice: MAIN_DEV,
    formats: advertised,
    scanout: { device: KMS_DEV, formats: scanoutPairs },
    importer,
    onBuffer: (b) => buffers.push(b),
  });
  return { server, dmabuf, buffers, surfaces, attached };
}

async function client(h: Harness, maxVersion = 5) {
  const { fd } = h.server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const compositor = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const dmabuf = await ClientDmabuf.bind(conn, { registry, globals, maxVersion });
  return { conn, compositor, dmabuf };
}

t.test('default and surface feedback: snapshots, scanout tranche gained and lost as changes', async (t) => {
  const h = harness();
  const c = await client(h);
  t.equal(c.dmabuf.version, 5, 'bound at the advertised version 5');
  const fds0 = testNative.countOpenFds();
  const def = await c.dmabuf.defaultFeedback();
  const d = def.current;
  t.equal(d.source, 'feedback');
  t.equal(d.mainDevice, MAIN_DEV, 'main device decoded from the dev_t array');
  t.equal(d.tranches.length, 1, 'one tranche');
  t.equal(d.tranches[0]!.device, MAIN_DEV);
  t.equal(d.tranches[0]!.scanout, false);
  t.ok(d.tranches[0]!.formats.equals(advertised), 'the tranche decodes to the advertised pairs through the mapped table');
  t.equal(d.badIndices, 0);
  t.ok(Object.isFrozen(d) && Object.isFrozen(d.tranches) && Object.isFrozen(d.tranches[0]), 'the snapshot is immutable');
  t.equal(testNative.countOpenFds(), fds0 + h.dmabuf.formatTables, 'the format table fd was closed after reading (only the server\'s own table file is open)');

  const surface = c.compositor.request('create_surface', {});
  const sf = await c.dmabuf.surfaceFeedback(surface);
  t.ok(sf.current.tranches[0]!.formats.equals(advertised), 'surface feedback starts as the default');
  const changes: Array<{ tranches: number; prevTranches: number }> = [];
  sf.on('changed', (f, prev) => changes.push({ tranches: f.tranches.length, prevTranches: prev.tranches.length }));

  const gained = sf.nextChange();
  h.dmabuf.setScanoutEligible(h.surfaces[0]!, true);
  const g = await gained;
  t.equal(g.tranches.length, 2, 'scanout tranche + main tranche');
  t.same([g.tranches[0]!.device, g.tranches[0]!.flags, g.tranches[0]!.scanout], [KMS_DEV, 1, true], 'scanout tranche first, on the KMS device');
  t.ok(g.tranches[0]!.formats.equals(scanoutPairs));
  t.equal(g.tranches[1]!.device, MAIN_DEV);

  const dones = sf.dones;
  h.dmabuf.setScanoutEligible(h.surfaces[0]!, true);
  await c.conn.roundtrip();
  t.equal(sf.dones, dones, 'marking again: the server sends nothing');
  t.equal(changes.length, 1, 'and no change event');

  const lost = sf.nextChange();
  h.dmabuf.setScanoutEligible(h.surfaces[0]!, false);
  const l = await lost;
  t.equal(l.tranches.length, 1, 'scanout tranche lost');
  t.same(changes, [{ tranches: 2, prevTranches: 1 }, { tranches: 1, prevTranches: 2 }], "'changed' with the previous snapshot");
  t.equal(def.dones, 1, 'the default feedback saw none of it');
  t.equal(testNative.countOpenFds(), fds0 + h.dmabuf.formatTables, 'every table fd received was closed');

  sf.close();
  sf.close();
  t.ok(sf.closed);
  t.ok(sf.current.tranches.length === 1, 'the last snapshot stays readable after close');
  c.dmabuf.close();
  await c.conn.roundtrip();
  t.equal(c.conn.error, null, 'destroys are clean');
  t.equal(h.dmabuf.formatTables, 0, 'the server dropped every table: our feedback objects are gone');
  c.conn.close();
  h.server.close();
});

t.test('version 3: the modifier events as one tranche without a device', async (t) => {
  const h = harness();
  const c = await client(h, 3);
  t.equal(c.dmabuf.version, 3);
  const f = await c.dmabuf.defaultFeedback();
  t.equal(f.current.source, 'modifiers');
  t.equal(f.current.mainDevice, null);
  t.equal(f.current.tranches.length, 1);
  t.ok(f.current.tranches[0]!.formats.equals(advertised), 'every advertised pair');
  const surface = c.compositor.request('create_surface', {});
  t.equal(await c.dmabuf.surfaceFeedback(surface), f, 'surface feedback is the same list');
  c.conn.close();
  h.server.close();
});

t.test('a global below version 3 is refused with a typed error', async (t) => {
  const h = harness();
  const { fd } = h.server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  await t.rejects(ClientDmabuf.bind(conn, { maxVersion: 2 }), { name: 'InvalidArgumentError', message: /version 2 has no modifiers/ });
  conn.close();
  h.server.close();
});

/** A fake allocator whose buffers are real memfds (the server's importer accepts any fd). */
class MemfdAllocator extends FakeAllocator {
  override allocate(plan: AllocationPlan): FakeBacking {
    const b = super.allocate(plan);
    const mem = plainMemfd('client buffer stand-in', Number(b.description.size));
    b.exportFd = () => new OwnedFd(native.dupFd(mem.fd), 'stand-in export');
    const close = b.close.bind(b);
    b.close = () => {
      close();
      mem.close();
    };
    return b;
  }
}

function caps(name: string, kind: AllocatorCaps['kind'], device?: string): AllocatorCaps {
  return { name, kind, contiguous: false, cpuCache: 'cached', layoutBy: kind === 'dumb' ? 'driver' : 'caller', ...(device ? { device } : {}) };
}

t.test('buffer ring: never hands out a held buffer, out-of-order releases, re-allocation on feedback change', async (t) => {
  const h = harness();
  const c = await client(h);
  const fds0 = testNative.countOpenFds();
  const surface = c.compositor.request('create_surface', {});
  const sf = await c.dmabuf.surfaceFeedback(surface);
  const dumb = new MemfdAllocator(caps('dumb@card0', 'dumb', 'card0'));
  const udmabuf = new MemfdAllocator(caps('udmabuf', 'udmabuf'));
  const events: ClientReallocationEvent[] = [];
  const ring = new BufferRing({
    dmabuf: c.dmabuf,
    feedback: sf,
    allocators: [
      { allocator: dumb, device: KMS_DEV },
      { allocator: udmabuf, device: null },
    ],
    width: 64,
    height: 32,
    formats: [XR24, AR24],
    count: 3,
    onReallocate: (e) => events.push(e),
  });
  t.ok(ring.pick.ok && ring.pick.format === XR24 && ring.pick.scanout === false, 'no scanout tranche: XRGB8888 from the main tranche');
  t.equal(ring.buffers.length, 0, 'allocation is lazy');

  const bufs = [ring.acquire()!, ring.acquire()!, ring.acquire()!];
  t.equal(ring.acquire(), null, 'three acquired, the fourth is refused');
  t.same(bufs.map((b) => b.allocator), ['udmabuf', 'udmabuf', 'udmabuf'], 'not for scanout: device-less memory, not dumb buffers');
  t.equal(bufs[0]!.stride % 64, 0, 'pitch aligned to 64');
  await bufs[0]!.draw((px, stride) => {
    px.fill(0xab, 0, stride);
  });
  const backing0 = udmabuf.made[0]!;
  t.same(backing0.syncs.map((s) => s.phase), ['start', 'end'], 'drawing is bracketed by sync start/end');
  t.equal(backing0.memory[0], 0xab, 'the drawing reached the buffer');
  t.same(backing0.syncs.map((s) => [s.read, s.write]), [[false, true], [false, true]], 'a write bracket');
  const seen = await bufs[0]!.draw((px) => px[0], 'rw');
  t.equal(seen, 0xab, "an 'rw' draw reads the previous content");
  t.same(backing0.syncs.slice(2).map((s) => [s.phase, s.read, s.write]), [['start', true, true], ['end', true, true]], 'inside a read-write bracket');

  for (const b of bufs) {
    ring.attach(surface, b);
    surface.request('commit', {});
  }
  await t.rejects(bufs[0]!.draw(() => undefined), /compositor holds/, 'no drawing into a buffer the compositor holds');
  t.throws(() => ring.attach(surface, bufs[0]!), /held by the compositor/, 'no second attach of a held buffer');
  await c.conn.roundtrip();
  t.equal(h.buffers.length, 3, 'the server got three wl_buffers');
  t.same(h.attached, h.buffers, 'attached in order');
  t.equal(ring.acquire(), null, 'all held by the compositor: nothing to hand out');

  // Out of order: the middle one first.
  h.buffers[1]!.release();
  await c.conn.roundtrip();
  const again = ring.acquire();
  t.equal(again, bufs[1], 'the released buffer (and only it) comes back');
  t.equal(ring.acquire(), null, 'the other two are still held');
  h.buffers[2]!.release();
  await c.conn.roundtrip();
  t.equal(ring.acquire(), bufs[2]);
  t.equal(ring.allocations, 3, 'no allocation beyond the ring size');
  ring.giveBack(bufs[2]!);
  ring.giveBack(bufs[1]!);

  // Scanout tranche gained: the pick changes, free buffers go at once, the held one at release.
  h.dmabuf.setScanoutEligible(h.surfaces[0]!, true);
  await sf.nextChange();
  t.equal(events.length, 1, 'one re-allocation');
  t.ok(events[0]!.to.ok && events[0]!.to.scanout, 'to the scanout tranche');
  t.equal(events[0]!.freedNow, 2, 'the two free buffers freed at once');
  t.equal(ring.buffers.length, 1, 'the held one stays until released');
  await c.conn.roundtrip();
  t.equal(h.buffers.filter((b) => b.destroyed).length, 2, 'their wl_buffers destroyed (seen by the server)');
  const scan = ring.acquire()!;
  t.equal(scan.allocator, 'dumb@card0', 'for scanout: a dumb buffer on the KMS device the tranche targets');
  t.equal(scan.generation, 1);
  h.buffers[0]!.release();
  await c.conn.roundtrip();
  t.equal(ring.buffers.length, 1, 'the old held buffer was freed on its release, not handed out');
  t.equal(bufs[0]!.closed, true);

  // Scanout tranche lost: back to device-less memory.
  ring.giveBack(scan);
  h.dmabuf.setScanoutEligible(h.surfaces[0]!, false);
  await sf.nextChange();
  t.equal(events.length, 2);
  t.equal(ring.acquire()!.allocator, 'udmabuf', 'scanout lost: device-less memory again');

  ring.close();
  ring.close();
  t.equal(dumb.open + udmabuf.open, 0, 'close() freed every allocation');
  t.throws(() => ring.acquire(), { name: 'ClosedError' });
  sf.close();
  c.dmabuf.close();
  await c.conn.roundtrip();
  t.equal(h.buffers.every((b) => b.destroyed), true, 'every wl_buffer destroyed');
  t.equal(c.conn.error, null, 'no protocol error');
  t.equal(testNative.countOpenFds(), fds0, 'no fd left');
  c.conn.close();
  h.server.close();
});

t.test('a format table whose advertised size exceeds its file: no SIGBUS, the problem is reported', async (t) => {
  const server = new WaylandServer();
  const XR24_LINEAR = new Uint8Array(16);
  new DataView(XR24_LINEAR.buffer).setUint32(0, XR24, true);
  server.createGlobal('zwp_linux_dmabuf_v1', 4, (res) =>
    res.implement({
      get_default_feedback: ({ id }) => {
        const table = plainMemfd('short table', 16);
        writeSync(table.fd, XR24_LINEAR, 0, 16, 0);
        const dev = new Uint8Array(new BigUint64Array([MAIN_DEV]).buffer);
        id.send('format_table', { fd: table, size: 64 * 1024 }); // 64 KiB claimed, 16 bytes real
        table.close();
        id.send('main_device', { device: dev });
        id.send('tranche_target_device', { device: dev });
        id.send('tranche_flags', { flags: 0 });
        id.send('tranche_formats', { indices: new Uint8Array(new Uint16Array([0, 3000]).buffer) });
        id.send('tranche_done', {});
        id.send('done', {});
      },
    }),
  );
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const fds0 = testNative.countOpenFds();
  const d = await ClientDmabuf.bind(conn);
  const f = (await d.defaultFeedback()).current;
  t.equal(f.tranches.length, 1, 'the tranche still arrives');
  t.equal(f.badIndices, 2, 'both indices count as outside the (unreadable) table');
  t.equal(f.problems.length, 2, 'two problems');
  t.match(f.problems[0], /format table of 65536 bytes advertised over a file of 16 bytes/, 'the short table is named');
  t.match(f.problems[1], /2 tranche indices outside the format table of 0 entries/, 'and the indices it made useless');
  t.equal(testNative.countOpenFds(), fds0, 'the table fd was closed anyway');
  conn.close();
  server.close();
});

t.test('a connection that dies before the first feedback: defaultFeedback() rejects, it does not hang', async (t) => {
  const server = new WaylandServer();
  server.createGlobal('zwp_linux_dmabuf_v1', 4, (res) =>
    res.implement({ get_default_feedback: ({ id }) => id.postError(0, 'no feedback for you') }),
  );
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const d = await ClientDmabuf.bind(conn);
  let outcome: unknown = 'pending';
  d.defaultFeedback().then(
    () => (outcome = 'resolved'),
    (e: unknown) => (outcome = e),
  );
  await conn.roundtrip().catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  t.match(outcome, { name: 'ProtocolError', interface: 'zwp_linux_dmabuf_feedback_v1' }, 'rejected with the protocol error');
  conn.close();
  server.close();
});
