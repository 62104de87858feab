// zwp_linux_dmabuf_v1 on the host (no DRM: memfds stand in for dma-bufs, an injected importer
// stands in for PRIME): a hostile client sends every kind of bad params request and must get
// exactly the protocol error the XML names, with the server alive and its fd count back to the
// baseline afterwards; v2/v3/v4/v5 clients get what their version promises; feedback tables are
// shared, sealed and re-sent only on change; 10,000 buffers leave fds and memory flat.
import t from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OwnedFd } from '../../src/fd.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { native, testNative } from '../../src/native.js';
import { PARAMS_ERROR, type ParamsErrorName } from '../../src/dmabuf/attributes.js';
import type { DmabufImporter } from '../../src/dmabuf/import.js';
import { parseFormatTable, readDevArray } from '../../src/wayland/dmabuf-feedback.js';
import { LinuxDmabuf, type BufferVerdict, type LinuxDmabufBuffer } from '../../src/wayland/linux-dmabuf.js';
import { ProtocolError, WaylandConnection, WaylandServer, type WaylandProxy, type ServerResource } from '../../src/wayland/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const YU12 = fourcc('YUV420');
const RGB565 = fourcc('RGB565');
const X_TILED = 0x0100000000000001n; // I915_FORMAT_MOD_X_TILED: never advertised here
const MAIN_DEV = (226n << 8n) | 128n; // renderD128
const KMS_DEV = 226n << 8n; // card0

const advertised = FormatSet.from([
  [XR24, DRM_FORMAT_MOD_LINEAR],
  [XR24, DRM_FORMAT_MOD_INVALID],
  [AR24, DRM_FORMAT_MOD_LINEAR],
  [NV12, DRM_FORMAT_MOD_LINEAR],
  [NV12, DRM_FORMAT_MOD_INVALID],
  [YU12, DRM_FORMAT_MOD_LINEAR],
]);
const scanoutPairs = FormatSet.from([
  [XR24, DRM_FORMAT_MOD_LINEAR],
  [AR24, DRM_FORMAT_MOD_LINEAR],
]);

interface Harness {
  server: WaylandServer;
  dmabuf: LinuxDmabuf;
  verdicts: BufferVerdict[];
  buffers: LinuxDmabufBuffer[];
  surfaces: ServerResource<'wl_surface'>[];
  importer: { fail: string | null; live: number; imports: number };
}

function harness(): Harness {
  const server = new WaylandServer();
  const verdicts: BufferVerdict[] = [];
  const buffers: LinuxDmabufBuffer[] = [];
  const surfaces: ServerResource<'wl_surface'>[] = [];
  const state = { fail: null as string | null, live: 0, imports: 0 };
  const importer: DmabufImporter = {
    name: 'test importer',
    importDmabuf: () => {
      if (state.fail) throw new Error(state.fail);
      state.imports++;
      state.live++;
      let closed = false;
      return {
        handles: [],
        close: () => {
          if (!closed) state.live--;
          closed = true;
        },
      };
    },
  };
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({ create_surface: ({ id }) => surfaces.push(id) }),
  );
  const dmabuf = new LinuxDmabuf(server, {
    mainDevice: MAIN_DEV,
    formats: advertised,
    scanout: { device: KMS_DEV, formats: scanoutPairs },
    importer,
    onVerdict: (v) => verdicts.push(v),
    onBuffer: (b) => buffers.push(b),
  });
  return { server, dmabuf, verdicts, buffers, surfaces, importer: state };
}

async function connect(h: Harness, version: number) {
  const { fd } = h.server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const g = globals.find((x) => x.interface === 'zwp_linux_dmabuf_v1')!;
  const dmabuf = conn.bind(registry, g, 'zwp_linux_dmabuf_v1', version);
  const compositor = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  return { conn, dmabuf, compositor };
}

/**
 * Waits (bounded, 10 s) until the server has seen every client hang up: a disconnect reaches the
 * server only when libuv next polls its fd, which a fixed sleep cannot promise on a loaded host.
 */
async function settle(server: { clients: { size: number } }): Promise<void> {
  const end = Date.now() + 10_000;
  while (server.clients.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setImmediate(r));
}

function memfd(size: number): OwnedFd {
  return plainMemfd('dmabuf stand-in', size);
}

type Params = WaylandProxy<'zwp_linux_buffer_params_v1'>;
function add(p: Params, fd: OwnedFd, plane: number, offset: number, stride: number, modifier: bigint = DRM_FORMAT_MOD_LINEAR): void {
  p.request('add', {
    fd,
    plane_idx: plane,
    offset,
    stride,
    modifier_hi: Number(modifier >> 32n),
    modifier_lo: Number(modifier & 0xffffffffn),
  });
}

interface BadCase {
  name: string;
  error: ParamsErrorName;
  version?: number;
  before?: (h: Harness) => void;
  send: (d: WaylandProxy<'zwp_linux_dmabuf_v1'>, fds: (size: number) => OwnedFd) => void;
}

const W = 64;
const H = 32;
const S = W * 4;
const FRAME = S * H;

const badCases: BadCase[] = [
  // already_used
  { name: 'add after create', error: 'already_used', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME);
    add(p, f, 0, 0, S); p.request('create', { width: W, height: H, format: XR24, flags: 0 }); add(p, f, 1, 0, S);
  } },
  { name: 'create twice', error: 'already_used', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S);
    p.request('create', { width: W, height: H, format: XR24, flags: 0 }); p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'create_immed after create', error: 'already_used', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S);
    p.request('create', { width: W, height: H, format: XR24, flags: 0 }); p.request('create_immed', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'add after a successful create_immed', error: 'already_used', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME); add(p, f, 0, 0, S);
    p.request('create_immed', { width: W, height: H, format: XR24, flags: 0 }); add(p, f, 0, 0, S);
  } },
  // plane_idx
  { name: 'plane index 4', error: 'plane_idx', send: (d, fd) => add(d.request('create_params', {}), fd(FRAME), 4, 0, S) },
  { name: 'plane index 0xffffffff', error: 'plane_idx', send: (d, fd) => add(d.request('create_params', {}), fd(FRAME), 0xffffffff, 0, S) },
  { name: 'plane index 7 after a good plane', error: 'plane_idx', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME); add(p, f, 0, 0, S); add(p, f, 7, 0, S);
  } },
  // plane_set
  { name: 'plane 0 twice', error: 'plane_set', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME); add(p, f, 0, 0, S); add(p, f, 0, 0, S);
  } },
  { name: 'plane 1 twice (NV12)', error: 'plane_set', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME * 2); add(p, f, 0, 0, W); add(p, f, 1, W * H, W); add(p, f, 1, W * H, W);
  } },
  // incomplete
  { name: 'create without planes', error: 'incomplete', send: (d) => d.request('create_params', {}).request('create', { width: W, height: H, format: XR24, flags: 0 }) },
  { name: 'create_immed without planes', error: 'incomplete', send: (d) => d.request('create_params', {}).request('create_immed', { width: W, height: H, format: XR24, flags: 0 }) },
  { name: 'NV12 with only the luma plane', error: 'incomplete', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, W); p.request('create', { width: W, height: H, format: NV12, flags: 0 });
  } },
  { name: 'NV12 with only the chroma plane', error: 'incomplete', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 1, 0, W); p.request('create', { width: W, height: H, format: NV12, flags: 0 });
  } },
  { name: 'XRGB8888 with two planes (too many)', error: 'incomplete', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME * 2); add(p, f, 0, 0, S); add(p, f, 1, FRAME, S);
    p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'YUV420 with planes 0 and 2 (hole)', error: 'incomplete', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME * 2); add(p, f, 0, 0, W); add(p, f, 2, W * H, W / 2);
    p.request('create_immed', { width: W, height: H, format: YU12, flags: 0 });
  } },
  // invalid_format
  { name: 'unknown fourcc', error: 'invalid_format', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create', { width: W, height: H, format: 0x12345678, flags: 0 });
  } },
  { name: 'known format never advertised (RGB565)', error: 'invalid_format', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, W * 2); p.request('create', { width: W, height: H, format: RGB565, flags: 0 });
  } },
  { name: 'v4: advertised format with an unadvertised modifier', error: 'invalid_format', version: 4, send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S, X_TILED); p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'v5: ARGB8888 with the implicit modifier (only LINEAR advertised)', error: 'invalid_format', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S, DRM_FORMAT_MOD_INVALID); p.request('create_immed', { width: W, height: H, format: AR24, flags: 0 });
  } },
  { name: 'v5: planes with different modifiers (raised at add)', error: 'invalid_format', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(FRAME * 2); add(p, f, 0, 0, W, DRM_FORMAT_MOD_LINEAR); add(p, f, 1, W * H, W, DRM_FORMAT_MOD_INVALID);
  } },
  // invalid_dimensions
  { name: 'width 0', error: 'invalid_dimensions', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create', { width: 0, height: H, format: XR24, flags: 0 });
  } },
  { name: 'negative height', error: 'invalid_dimensions', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create_immed', { width: W, height: -1, format: XR24, flags: 0 });
  } },
  { name: 'INT32_MIN width', error: 'invalid_dimensions', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create', { width: -2147483648, height: H, format: XR24, flags: 0 });
  } },
  // out_of_bounds
  { name: 'offset beyond the dma-buf', error: 'out_of_bounds', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, FRAME, S); p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'stride * height larger than the dma-buf', error: 'out_of_bounds', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME - 1), 0, 0, S); p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'stride*height wraps in 32 bits but not in 64', error: 'out_of_bounds', send: (d, fd) => {
    // 0x10000 * 0x10000 = 2^32: a u32 product would be 0
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, 0x10000); p.request('create', { width: 16, height: 0x10000, format: XR24, flags: 0 });
  } },
  { name: 'NV12 chroma plane: odd height needs ceil(h/2) rows', error: 'out_of_bounds', send: (d, fd) => {
    // height 33: luma 33 rows, chroma ceil(33/2) = 17 rows; the buffer only holds 16
    const size = W * 33 + W * 16;
    const p = d.request('create_params', {}); const f = fd(size); add(p, f, 0, 0, W); add(p, f, 1, W * 33, W);
    p.request('create_immed', { width: W, height: 33, format: NV12, flags: 0 });
  } },
  { name: 'offset + stride beyond the dma-buf on plane 1', error: 'out_of_bounds', send: (d, fd) => {
    const p = d.request('create_params', {}); const f = fd(W * H + 10); add(p, f, 0, 0, W); add(p, f, 1, W * H, W);
    p.request('create', { width: W, height: H, format: NV12, flags: 0 });
  } },
  // invalid_wl_buffer (create_immed only)
  { name: 'create_immed the importer refuses', error: 'invalid_wl_buffer', before: (h) => (h.importer.fail = 'EINVAL from PRIME'), send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create_immed', { width: W, height: H, format: XR24, flags: 0 });
  } },
  { name: 'create_immed of an interlaced buffer', error: 'invalid_wl_buffer', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create_immed', { width: W, height: H, format: XR24, flags: 2 });
  } },
  { name: 'create_immed with unknown flag bits', error: 'invalid_wl_buffer', send: (d, fd) => {
    const p = d.request('create_params', {}); add(p, fd(FRAME), 0, 0, S); p.request('create_immed', { width: W, height: H, format: XR24, flags: 0x80 });
  } },
];

t.test('every bad params request gets exactly its protocol error; server alive, fds back to baseline', async (t) => {
  const h = harness();
  // Warm up (first client allocations, lazily opened fds) before taking the baseline.
  {
    const c = await connect(h, 5);
    await c.conn.roundtrip();
    c.conn.close();
    await settle(h.server);
  }
  const baseline = testNative.countOpenFds();
  for (const bad of badCases) {
    await t.test(bad.name, async (t) => {
      h.importer.fail = null;
      bad.before?.(h);
      const verdictsBefore = h.verdicts.length;
      const c = await connect(h, bad.version ?? 5);
      const mine: OwnedFd[] = [];
      bad.send(c.dmabuf, (size) => {
        const f = memfd(size);
        mine.push(f);
        return f;
      });
      const err = await c.conn.roundtrip().then(
        () => null,
        (e: unknown) => e,
      );
      t.ok(err instanceof ProtocolError, 'the client died of a protocol error');
      const pe = err as ProtocolError;
      t.equal(pe.interface, 'zwp_linux_buffer_params_v1', 'on the params object');
      t.equal(pe.code, PARAMS_ERROR[bad.error], `error ${bad.error} (${PARAMS_ERROR[bad.error]})`);
      t.equal(pe.codeName, bad.error);
      const newVerdicts = h.verdicts.slice(verdictsBefore);
      t.ok(newVerdicts.length <= 1, 'at most one verdict (one create reached validation)');
      for (const f of mine) f.close();
      c.conn.close();
      await settle(h.server);
      t.equal(h.server.clients.size, 0, 'the client is gone on the server');
      t.equal(testNative.countOpenFds(), baseline, 'every fd the server received was closed');
      t.equal(h.importer.live, 0, 'no import left behind');
      // The server is alive and serves a well-behaved client.
      h.importer.fail = null;
      const ok = await connect(h, 5);
      const p = ok.dmabuf.request('create_params', {});
      const f = memfd(FRAME);
      add(p, f, 0, 0, S);
      const created = new Promise<string>((resolve) => {
        p.on('created', () => resolve('created'));
        p.on('failed', () => resolve('failed'));
      });
      p.request('create', { width: W, height: H, format: XR24, flags: 0 });
      t.equal(await created, 'created', 'the server still creates buffers');
      f.close();
      ok.conn.close();
      await settle(h.server);
      t.equal(testNative.countOpenFds(), baseline, 'and releases them with the client');
    });
  }
  h.server.close();
});

t.test('non-fatal failures: create gets `failed`, the client lives', async (t) => {
  const h = harness();
  const c = await connect(h, 5);
  const outcome = (p: Params) =>
    new Promise<string>((resolve) => {
      p.on('created', () => resolve('created'));
      p.on('failed', () => resolve('failed'));
    });
  const f = memfd(FRAME);
  h.importer.fail = 'ENODEV';
  let p = c.dmabuf.request('create_params', {});
  add(p, f, 0, 0, S);
  let o = outcome(p);
  p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  t.equal(await o, 'failed', 'import failure -> failed');
  t.match(h.verdicts.at(-1), { outcome: 'failed', detail: /import failed: ENODEV/ });
  p.request('destroy', {});
  h.importer.fail = null;
  p = c.dmabuf.request('create_params', {});
  add(p, f, 0, 0, S);
  o = outcome(p);
  p.request('create', { width: W, height: H, format: XR24, flags: 6 });
  t.equal(await o, 'failed', 'interlaced -> failed');
  p.request('destroy', {});
  await c.conn.roundtrip();
  t.equal(c.conn.error, null, 'no protocol error');
  t.equal(h.buffers.length, 0);
  f.close();
  c.conn.close();
  h.server.close();
});

t.test('v4: planes with different modifiers are a failed import, not a protocol error', async (t) => {
  const h = harness();
  const c = await connect(h, 4);
  const f = memfd(FRAME * 2);
  const p = c.dmabuf.request('create_params', {});
  add(p, f, 0, 0, W, DRM_FORMAT_MOD_LINEAR);
  add(p, f, 1, W * H, W, DRM_FORMAT_MOD_INVALID);
  const o = new Promise<string>((resolve) => {
    p.on('created', () => resolve('created'));
    p.on('failed', () => resolve('failed'));
  });
  p.request('create', { width: W, height: H, format: NV12, flags: 0 });
  t.equal(await o, 'failed');
  t.equal(c.conn.error, null);
  f.close();
  c.conn.close();
  h.server.close();
});

t.test('good buffers: created, create_immed, multi-planar, release, ownership of fds', async (t) => {
  const h = harness();
  const c = await connect(h, 5);
  const baseline = testNative.countOpenFds();
  const f = memfd(W * H * 2);
  const p = c.dmabuf.request('create_params', {});
  add(p, f, 0, 0, W);
  add(p, f, 1, W * H, W);
  const created = new Promise<WaylandProxy<'wl_buffer'>>((resolve, reject) => {
    p.on('created', ({ buffer }) => resolve(buffer));
    p.on('failed', () => reject(new Error('failed')));
  });
  p.request('create', { width: W, height: H, format: NV12, flags: 1 });
  const wlBuffer = await created;
  t.equal(wlBuffer.interface, 'wl_buffer', 'created carries a new wl_buffer');
  p.request('destroy', {});
  t.equal(h.buffers.length, 1);
  const b = h.buffers[0]!;
  t.equal(b.attributes.format, NV12);
  t.equal(b.attributes.planes.length, 2);
  t.equal(b.attributes.flags, 1, 'y_invert carried');
  t.equal(b.attributes.planes[1]!.offset, W * H);
  t.equal(native.wlFdIdentity(b.attributes.planes[0]!.fd.fd), native.wlFdIdentity(f.fd), 'the buffer owns fds of the client file');
  t.equal(testNative.countOpenFds(), baseline + 1 + 2, 'our memfd plus two plane fds held by the buffer');
  let releases = 0;
  const released = new Promise<void>((resolve) => wlBuffer.on('release', () => (releases++, resolve())));
  b.lock(); // a reader (the presenter) before the commit's surface lock
  b.surfaceLock(); // committed: the surface holds it as current
  b.unlock(); // the reader lets go: the surface still holds it
  await c.conn.roundtrip();
  t.equal(releases, 0, 'no release while a surface holds it as current');
  b.unlock(); // replaced by the surface's next commit: the last lock
  await released;
  t.pass('wl_buffer.release reached the client, sent by the library with the last unlock');
  b.lock();
  b.unlock();
  await c.conn.roundtrip();
  t.equal(releases, 1, 'a reader\'s lock and unlock without a commit owes no second release');
  b.lock();
  wlBuffer.request('destroy', {});
  await c.conn.roundtrip();
  t.ok(b.destroyed, 'client destroyed the wl_buffer');
  t.notOk(b.freed, 'a compositor lock keeps fds and import');
  t.equal(h.importer.live, 1);
  b.unlock();
  t.ok(b.freed, 'unlocked: freed');
  t.equal(h.importer.live, 0);
  t.equal(testNative.countOpenFds(), baseline + 1, 'plane fds closed once');
  // create_immed
  const p2 = c.dmabuf.request('create_params', {});
  add(p2, f, 0, 0, S);
  const immed = p2.request('create_immed', { width: W, height: H / 2, format: XR24, flags: 0 });
  await c.conn.roundtrip();
  t.equal(h.buffers.length, 2, 'create_immed produced a buffer without an event');
  t.equal(LinuxDmabuf.bufferOf(h.buffers[1]!.resource), h.buffers[1], 'bufferOf finds it from the wl_buffer resource');
  immed.request('destroy', {});
  p2.request('destroy', {});
  await c.conn.roundtrip();
  t.ok(h.buffers[1]!.freed);
  f.close();
  t.equal(testNative.countOpenFds(), baseline);
  c.conn.close();
  h.server.close();
});

t.test('version promises: v2 format events, v3 modifier events, v4/v5 feedback only', async (t) => {
  const h = harness();
  for (const version of [2, 3, 4, 5]) {
    const { fd } = h.server.connectPair();
    const conn = WaylandConnection.fromFd(fd);
    const { registry, globals } = await conn.globals();
    const g = globals.find((x) => x.interface === 'zwp_linux_dmabuf_v1')!;
    t.equal(g.version, 5, 'the global is version 5');
    const d = conn.bind(registry, g, 'zwp_linux_dmabuf_v1', version);
    const formats: number[] = [];
    const mods: Array<[number, bigint]> = [];
    d.on('format', ({ format }) => formats.push(format));
    d.on('modifier', ({ format, modifier_hi, modifier_lo }) => mods.push([format, (BigInt(modifier_hi) << 32n) | BigInt(modifier_lo)]));
    await conn.roundtrip();
    if (version === 2) {
      t.same(formats, [...advertised.formats()], 'v2: one format event per format');
      t.same(mods, [], 'v2: no modifier events');
    } else if (version === 3) {
      t.same(formats, [], 'v3: no format events');
      t.ok(FormatSet.from(mods).equals(advertised), 'v3: a modifier event for every advertised pair');
      t.equal(mods.length, advertised.size, 'each pair once');
    } else {
      t.same(formats, [], `v${version}: no format events`);
      t.same(mods, [], `v${version}: no modifier events`);
      const fb = await readFeedback(conn, d.request('get_default_feedback', {}));
      t.equal(fb.mainDevice, MAIN_DEV, 'main device');
      t.equal(fb.tranches.length, 1, 'one render tranche');
      t.equal(fb.tranches[0]!.device, MAIN_DEV);
      t.equal(fb.tranches[0]!.flags, 0);
      t.ok(FormatSet.from(fb.tranches[0]!.pairs).equals(advertised), 'tranche = advertised pairs');
    }
    conn.close();
  }
  h.server.close();
});

interface ReadFeedback {
  mainDevice: bigint;
  tableId: string;
  seals: number;
  writableMap?: boolean;
  tranches: Array<{ device: bigint; flags: number; pairs: Array<[number, bigint]> }>;
  dones: number;
}

function collectFeedback(fbProxy: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'>): { latest: () => ReadFeedback | null; count: () => number; next: () => Promise<ReadFeedback> } {
  let table: Array<{ format: number; modifier: bigint }> = [];
  let cur: ReadFeedback = { mainDevice: 0n, tableId: '', seals: 0, tranches: [], dones: 0 };
  let tranche: { device: bigint; flags: number; pairs: Array<[number, bigint]> } = { device: 0n, flags: 0, pairs: [] };
  let latest: ReadFeedback | null = null;
  let dones = 0;
  let waiters: Array<(f: ReadFeedback) => void> = [];
  fbProxy.on('main_device', ({ device }) => (cur.mainDevice = readDevArray(device)));
  fbProxy.on('format_table', ({ fd, size }) => {
    table = parseFormatTable(native.wlReadFdPrivate(fd.fd, size));
    cur.tableId = native.wlFdIdentity(fd.fd);
    cur.seals = native.getSeals(fd.fd);
    try {
      native.mmapFd(fd.fd, 0, size, true); // MAP_SHARED + PROT_WRITE: refused by F_SEAL_WRITE
      cur.writableMap = true;
    } catch {
      cur.writableMap = false;
    }
    fd.close();
  });
  fbProxy.on('tranche_target_device', ({ device }) => (tranche.device = readDevArray(device)));
  fbProxy.on('tranche_flags', ({ flags }) => (tranche.flags = flags));
  fbProxy.on('tranche_formats', ({ indices }) => {
    const idx = new Uint16Array(indices.buffer.slice(indices.byteOffset, indices.byteOffset + indices.byteLength));
    for (const i of idx) tranche.pairs.push([table[i]!.format, table[i]!.modifier]);
  });
  fbProxy.on('tranche_done', () => {
    cur.tranches.push(tranche);
    tranche = { device: 0n, flags: 0, pairs: [] };
  });
  fbProxy.on('done', () => {
    dones++;
    cur.dones = dones;
    latest = cur;
    cur = { mainDevice: 0n, tableId: '', seals: 0, tranches: [], dones: 0 };
    const w = waiters;
    waiters = [];
    for (const fn of w) fn(latest);
  });
  return {
    latest: () => latest,
    count: () => dones,
    next: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

async function readFeedback(conn: WaylandConnection, fb: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'>): Promise<ReadFeedback> {
  const c = collectFeedback(fb);
  await conn.roundtrip();
  const f = c.latest();
  if (!f) throw new Error('no feedback done event');
  return f;
}

t.test('feedback: shared sealed tables, scanout tranche, re-sent only on change, inert after surface destroy', async (t) => {
  const h = harness();
  const a = await connect(h, 5);
  const b = await connect(h, 4);
  const defA = collectFeedback(a.dmabuf.request('get_default_feedback', {}));
  const defB = collectFeedback(b.dmabuf.request('get_default_feedback', {}));
  const surfA = a.compositor.request('create_surface', {});
  const sfA = collectFeedback(a.dmabuf.request('get_surface_feedback', { surface: surfA }));
  await a.conn.roundtrip();
  await b.conn.roundtrip();
  const dA = defA.latest()!;
  const dB = defB.latest()!;
  t.equal(dA.tableId, dB.tableId, 'two clients received the same table file');
  t.equal(dA.seals & 0xf, 0xf, 'sealed: seal, shrink, grow, write');
  t.equal(dA.writableMap, false, 'a client cannot map the shared table writable');
  t.equal(sfA.latest()!.tableId, dA.tableId, 'a surface that is not scanout-eligible shares the default table');
  t.equal(h.dmabuf.formatTables, 1, 'one table for one distinct feedback');
  t.equal(sfA.count(), 1);

  const serverSurface = h.surfaces[0]!;
  const nextA = sfA.next();
  h.dmabuf.setScanoutEligible(serverSurface, true);
  const scan = await nextA;
  t.equal(scan.tranches.length, 2, 'scanout tranche + render tranche');
  t.equal(scan.tranches[0]!.device, KMS_DEV, 'scanout tranche targets the KMS device');
  t.equal(scan.tranches[0]!.flags, 1, 'with the scanout flag');
  t.ok(FormatSet.from(scan.tranches[0]!.pairs).equals(scanoutPairs), 'with the pairs a plane accepts');
  t.equal(scan.tranches[1]!.device, MAIN_DEV, 'then the main device');
  t.equal(scan.mainDevice, MAIN_DEV);
  t.not(scan.tableId, dA.tableId, 'a different feedback has its own table');
  t.equal(h.dmabuf.formatTables, 2);

  h.dmabuf.setScanoutEligible(serverSurface, true);
  await a.conn.roundtrip();
  t.equal(sfA.count(), 2, 'marking again re-sends nothing');
  t.equal(defA.count(), 1, 'default feedback untouched');

  const back = sfA.next();
  h.dmabuf.setScanoutEligible(serverSurface, false);
  const plain = await back;
  t.equal(plain.tranches.length, 1, 'back to the render tranche');
  t.equal(plain.tableId, dA.tableId, 'and to the shared default table');
  t.equal(h.dmabuf.formatTables, 1, 'the scanout table was dropped');

  surfA.request('destroy', {});
  await a.conn.roundtrip();
  h.dmabuf.setScanoutEligible(serverSurface, true);
  await a.conn.roundtrip();
  t.equal(sfA.count(), 3, 'feedback of a destroyed surface is inert');
  t.equal(a.conn.error, null, 'and no error');
  a.conn.close();
  b.conn.close();
  await settle(h.server);
  t.equal(h.dmabuf.formatTables, 0, 'no table left once no feedback object exists');
  h.server.close();
});

t.test('10,000 buffers created and destroyed: fd count and memory flat', async (t) => {
  const h = harness();
  const c = await connect(h, 5);
  const f = memfd(FRAME);
  const round = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const p = c.dmabuf.request('create_params', {});
      add(p, f, 0, 0, S);
      const buf = p.request('create_immed', { width: W, height: H, format: XR24, flags: 0 });
      p.request('destroy', {});
      buf.request('destroy', {});
      if (i % 100 === 99) await c.conn.roundtrip();
    }
    await c.conn.roundtrip();
  };
  await round(1000); // warm-up
  h.buffers.length = 0;
  gc();
  const fds0 = testNative.countOpenFds();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const created0 = h.importer.imports;
  await round(10000);
  const retained = h.buffers.filter((b) => !b.freed).length;
  h.buffers.length = 0;
  gc();
  const fds1 = testNative.countOpenFds();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  t.equal(h.importer.imports - created0, 10000, '10,000 buffers imported');
  t.equal(retained, 0, 'every buffer freed');
  t.equal(h.importer.live, 0, 'no import alive');
  t.equal(fds1, fds0, `fd count flat (${fds0} -> ${fds1})`);
  t.equal(h.server.resourceCount, 2, 'only the client\'s zwp_linux_dmabuf_v1 and wl_compositor remain (libwayland owns the registry)');
  t.ok(heap1 - heap0 < 8 * 1024 * 1024, `JS heap flat (${((heap1 - heap0) / 1048576).toFixed(2)} MiB growth)`);
  t.ok(rss1 - rss0 < 32 * 1024 * 1024, `RSS flat (${((rss1 - rss0) / 1048576).toFixed(2)} MiB growth)`);
  f.close();
  c.conn.close();
  h.server.close();
});

t.test('v3: an unadvertised modifier of an advertised format is not a protocol error (the import decides)', async (t) => {
  const h = harness();
  const c = await connect(h, 3);
  const f = memfd(FRAME);
  const p = c.dmabuf.request('create_params', {});
  add(p, f, 0, 0, S, X_TILED);
  const o = new Promise<string>((resolve) => {
    p.on('created', () => resolve('created'));
    p.on('failed', () => resolve('failed'));
  });
  p.request('create', { width: W, height: H, format: XR24, flags: 0 });
  t.equal(await o, 'created', 'the (injected) importer accepted it');
  t.equal(c.conn.error, null);
  t.equal(h.buffers[0]!.attributes.modifier, X_TILED);
  f.close();
  c.conn.close();
  h.server.close();
});

t.test('DmabufAttributes directly: ownership, unknown sizes, 64-bit bounds, describe', async (t) => {
  const { DmabufAttributes } = await import('../../src/dmabuf/attributes.js');
  const mk = (size: number) => memfd(size);
  const planes = new Map([[0, { fd: mk(FRAME), offset: 0, stride: S, modifier: DRM_FORMAT_MOD_LINEAR }]]);
  const bad = DmabufAttributes.validate({ planes, width: W, height: H + 1, format: XR24, flags: 0 }, { version: 5, advertised });
  t.notOk(bad.ok);
  if (!bad.ok) {
    t.equal(bad.problem.error, 'out_of_bounds');
    t.equal(bad.problem.fatal, true);
    t.equal(bad.problem.plane, 0);
  }
  t.notOk(planes.get(0)!.fd.closed, 'a failed validation leaves the fds with the caller');
  const unknown = DmabufAttributes.validate(
    { planes, width: W, height: H + 1, format: XR24, flags: 0 },
    { version: 5, advertised, fdSize: () => null },
  );
  t.ok(unknown.ok, 'no size known (lseek failed): bounds are left to the import');
  if (unknown.ok) {
    t.equal(unknown.attributes.planes[0]!.size, null);
    t.match(unknown.attributes.describe(), /64x33 XRGB8888 LINEAR p0\{off 0 stride 256\}/);
    unknown.attributes.close();
    t.ok(planes.get(0)!.fd.closed, 'validated attributes own and close the fds');
    unknown.attributes.close();
    t.pass('close is idempotent');
  }
  // NV12 4096x4096 with stride 0xffffffff: only 64-bit arithmetic sees the overflow
  const p2 = new Map([
    [0, { fd: mk(4096), offset: 0, stride: 0xffffffff, modifier: DRM_FORMAT_MOD_LINEAR }],
    [1, { fd: mk(4096), offset: 0, stride: 0xffffffff, modifier: DRM_FORMAT_MOD_LINEAR }],
  ]);
  const big = DmabufAttributes.validate({ planes: p2, width: 4096, height: 4096, format: NV12, flags: 0 }, { version: 5, advertised, fdSize: () => 0x100_0000_0000n }); // 2^40: above the u32-wrapped end, below the real one
  t.notOk(big.ok);
  if (!big.ok) t.match(big.problem.message, /4294967295 \* height 4096 = 17592186040320 exceeds/);
  for (const p of p2.values()) p.fd.close();
});
