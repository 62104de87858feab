// primebuf's own wl_shm (src/wayland/shm.ts) against in-process clients, no DRM: the formats
// announced at bind; every wl_shm protocol error with its exact code and object (and the bounds
// exactly at the edge accepted); seals read from the pool's fd and what they decide (guarded
// reads or none, zero copy or why not); buffers copied correctly through their copySource (with
// offsets and a conversion); a destroyed pool's buffers stay valid and a resized pool keeps its
// old buffers; a client that truncates its pool gets invalid_fd while the compositor serves
// others; udmabufs made once per pool and page range, mid-page buffers as a plane offset, closed
// with the pool; 1000 pools created and destroyed with fds back to baseline.
import t, { type Test } from 'tap';
import { closeSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import { F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE } from '../../src/alloc/backends/udmabuf.js';
import { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import { ClosedError, SystemError } from '../../src/errors.js';
import { OwnedFd } from '../../src/fd.js';
import { fourcc } from '../../src/formats/index.js';
import { native, testNative } from '../../src/native.js';
import type { CopySurface } from '../../src/scanout/copy.js';
import { IDLE_UDMABUFS_PER_POOL, ProtocolError, WL_SHM_ERROR, WaylandServer, installShm, isShmTruncated, udmabufRange, type ShmOptions } from '../../src/wayland/index.js';
import {
  clientBuffer,
  ownShmClient,
  ownShmCompositor,
  pattern,
  poolFile,
  protocolError,
  type OwnShmClient,
  type OwnShmCompositor,
  type PoolKind,
} from '../util/own-shm.js';
import { until } from '../util/wait.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const XB24 = fourcc('XBGR8888');
const RG16 = fourcc('RGB565');

/** A destination the copy fills, every word a sentinel before. */
function dstSurface(width: number, height: number): { surface: CopySurface; bytes: Uint8Array } {
  const bytes = new Uint8Array(width * 4 * height);
  new Uint32Array(bytes.buffer).fill(0x5a5a5a5a);
  return { surface: { memory: bytes, format: XR24, stride: width * 4, width, height }, bytes };
}

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i}: ${a[i]} != ${b[i]}`;
  return 'equal';
}

/** A compositor and one client, closed after `fn`; fds back to where they were. */
async function withClient(t: Test, opts: ShmOptions, fn: (comp: OwnShmCompositor, c: OwnShmClient) => Promise<void>): Promise<void> {
  const base = testNative.countOpenFds();
  const comp = ownShmCompositor(opts);
  const c = await ownShmClient(comp.server);
  try {
    await fn(comp, c);
  } finally {
    c.conn.close();
    comp.server.close();
  }
  t.equal(comp.shm.livePools, 0, 'every pool freed');
  t.equal(testNative.countOpenFds(), base, `fds back to ${base}`);
}

t.test('bind: ARGB8888 and XRGB8888 as wl_shm codes 0 and 1, then the extra formats as fourccs', async (t) => {
  await withClient(t, { formats: [XB24, RG16, XR24] }, async (comp, c) => {
    t.same(c.formats, [0, 1, XB24, RG16], 'format events (no duplicate for XRGB8888)');
    t.same(comp.shm.formats, [AR24, XR24, XB24, RG16], 'the DRM fourccs advertised');
  });
  const server = new WaylandServer();
  t.throws(() => installShm(server, { formats: [fourcc('NV12')] }), /not a one-plane format/, 'a two-plane format is refused');
  server.close();
});

interface ErrorCase {
  name: string;
  /** makes the bad request; returns the object the error must be on */
  run(c: OwnShmClient, memfd: OwnedFd): { id: number; iface: string };
  code: number;
}

const SIZE = 64 * 64 * 4;
const okBuffer = { offset: 0, width: 64, height: 64, stride: 256, format: 1 };

function poolCase(name: string, args: Partial<typeof okBuffer>, code: number): ErrorCase {
  return {
    name,
    code,
    run(c, memfd) {
      const pool = c.shm.request('create_pool', { fd: memfd, size: SIZE });
      pool.request('create_buffer', { ...okBuffer, ...args });
      return { id: pool.id, iface: 'wl_shm_pool' };
    },
  };
}

const errorCases: ErrorCase[] = [
  { name: 'create_pool size 0', code: WL_SHM_ERROR.invalid_stride, run: (c, fd) => (c.shm.request('create_pool', { fd, size: 0 }), { id: c.shm.id, iface: 'wl_shm' }) },
  { name: 'create_pool size -4096', code: WL_SHM_ERROR.invalid_stride, run: (c, fd) => (c.shm.request('create_pool', { fd, size: -4096 }), { id: c.shm.id, iface: 'wl_shm' }) },
  {
    name: 'create_pool of a file that cannot be mapped (a directory)',
    code: WL_SHM_ERROR.invalid_fd,
    run(c) {
      const dir = openSync(tmpdir(), 'r');
      try {
        c.shm.request('create_pool', { fd: dir, size: 4096 });
      } finally {
        closeSync(dir); // libwayland-client sent its own dup
      }
      return { id: c.shm.id, iface: 'wl_shm' };
    },
  },
  poolCase('create_buffer with a format not advertised (XBGR8888)', { format: XB24 }, WL_SHM_ERROR.invalid_format),
  poolCase('create_buffer with an unknown format code', { format: 0x12345678 }, WL_SHM_ERROR.invalid_format),
  poolCase('create_buffer width 0', { width: 0 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer height -1', { height: -1 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer offset -4', { offset: -4 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer stride below width * 4', { stride: 252 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer stride not a whole number of pixels', { width: 60, stride: 250 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer one byte past the pool (offset)', { offset: 4 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer one row past the pool', { height: 65 }, WL_SHM_ERROR.invalid_stride),
  poolCase('create_buffer stride * height past 2^31', { width: 1, stride: 1 << 30, height: 8 }, WL_SHM_ERROR.invalid_stride),
  {
    name: 'resize to a smaller size',
    code: WL_SHM_ERROR.invalid_fd,
    run(c, fd) {
      const pool = c.shm.request('create_pool', { fd, size: SIZE });
      pool.request('resize', { size: SIZE - 1 });
      return { id: pool.id, iface: 'wl_shm_pool' };
    },
  },
];

t.test('every wl_shm protocol error with its exact code, on the object the protocol names', async (t) => {
  for (const e of errorCases) {
    await t.test(e.name, async (t) => {
      await withClient(t, {}, async (_comp, c) => {
        const memfd = poolFile('unsealed', SIZE);
        try {
          const on = e.run(c, memfd);
          const pe = await protocolError(c.conn);
          t.ok(pe instanceof ProtocolError, `a protocol error (${String(pe)})`);
          const p = pe as ProtocolError;
          t.equal(p.interface, on.iface, `on ${on.iface}`);
          t.equal(p.objectId, on.id, `on ${on.iface}@${on.id}`);
          t.equal(p.code, e.code, `code ${e.code} (${p.codeName})`);
        } finally {
          memfd.close();
        }
      });
    });
  }
});

t.test('the bounds themselves are accepted: a buffer ending at the pool end, a grown pool, resize to the same size', async (t) => {
  await withClient(t, {}, async (comp, c) => {
    const memfd = poolFile('unsealed', SIZE + 4096);
    const b = await clientBuffer(c, comp, memfd, SIZE, { offset: 256, width: 64, height: 63, stride: 256, format: XR24 });
    t.equal(b.shm.offset + b.shm.stride * b.shm.height, SIZE, 'ends exactly at the pool end');
    b.pool.request('resize', { size: SIZE });
    b.pool.request('resize', { size: SIZE + 4096 });
    const big = b.pool.request('create_buffer', { offset: SIZE, width: 16, height: 16, stride: 256, format: 0 });
    t.equal(await protocolError(c.conn), null, 'no protocol error');
    t.equal(comp.buffers.length, 2, 'a buffer in the grown part');
    t.equal(comp.buffers[1]!.pool.size, SIZE + 4096, 'the pool grew');
    t.equal(comp.buffers[1]!.format, AR24, 'wl_shm code 0 is ARGB8888');
    big.request('destroy', {});
    memfd.close();
  });
});

t.test('seals read from the pool fd, and what they decide', async (t) => {
  const cases: Array<{ kind: PoolKind | 'write-sealed'; seals: number; guarded: boolean }> = [
    { kind: 'sealed', seals: F_SEAL_SHRINK | F_SEAL_SEAL, guarded: false },
    { kind: 'unsealed', seals: F_SEAL_SEAL, guarded: true }, // a memfd made without MFD_ALLOW_SEALING is born F_SEAL_SEAL
    { kind: 'file', seals: 0, guarded: true },
    { kind: 'write-sealed', seals: F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL, guarded: false },
  ];
  await withClient(t, {}, async (comp, c) => {
    for (const k of cases) {
      let fd: OwnedFd;
      if (k.kind === 'write-sealed') {
        fd = new OwnedFd(native.memfdCreate('write-sealed', true));
        native.ftruncateFd(fd.fd, SIZE);
        native.addSeals(fd.fd, k.seals);
      } else {
        fd = poolFile(k.kind, SIZE);
      }
      const b = await clientBuffer(c, comp, fd, SIZE, { offset: 0, width: 64, height: 64, stride: 256, format: XR24 });
      t.equal(b.shm.pool.seals, k.seals, `${k.kind}: seals 0x${k.seals.toString(16)}`);
      t.equal(b.shm.guarded, k.guarded, `${k.kind}: reads ${k.guarded ? '' : 'not '}guarded`);
      t.equal(typeof b.shm.scanoutBuffer().copySource?.surface, k.guarded ? 'undefined' : 'function', `${k.kind}: a mapped surface for transformed copies only when reads cannot fault`);
      fd.close();
    }
    // sealed, but the file is smaller than the pool the client claims: reads past it would fault
    const short = poolFile('sealed', SIZE / 2);
    const b = await clientBuffer(c, comp, short, SIZE, { offset: 0, width: 64, height: 64, stride: 256, format: XR24 });
    t.equal(b.shm.guarded, true, 'a sealed file shorter than the buffer: guarded');
    const inside = b.pool.request('create_buffer', { offset: 0, width: 64, height: 32, stride: 256, format: 1 });
    await c.conn.roundtrip();
    t.equal(comp.buffers.at(-1)!.guarded, false, 'a buffer inside the sealed file of that pool: not guarded');
    inside.request('destroy', {});
    short.close();
  });
});

t.test('buffers are copied correctly through their copySource (sealed, unsealed, file; offsets; a conversion)', async (t) => {
  await withClient(t, { formats: [XB24] }, async (comp, c) => {
    const W = 40, H = 24, stride = 192, offset = 4096 + 64;
    for (const kind of ['sealed', 'unsealed', 'file'] as const) {
      const px = pattern(W, H, stride, kind.length);
      const fd = poolFile(kind, offset + stride * H, px, offset);
      const b = await clientBuffer(c, comp, fd, offset + stride * H, { offset, width: W, height: H, stride, format: XR24 });
      const sb = b.shm.scanoutBuffer();
      t.equal(sb.kind, 'shm', `${kind}: copied (no zero copy configured)`);
      t.equal(b.shm.scanoutBuffer(), sb, 'the same ScanoutBuffer object every call');
      t.match(b.shm.zeroCopy, { ok: false, reason: /zero copy is off/ });
      const { surface, bytes } = dstSurface(W + 8, H + 8);
      const stats = { copies: 0, bytes: 0, syncCalls: 0 };
      const n = await sb.copySource!.copyRects(surface, [{ x: 0, y: 0, width: W, height: H }], { dx: 8, dy: 8, stats });
      t.equal(n, W * H * 4, `${kind}: bytes written`);
      t.equal(stats.bytes, n, 'counted in the stats');
      const dv = new DataView(bytes.buffer);
      const sv = new DataView(px.buffer);
      let bad = 0;
      for (let y = 0; y < H + 8; y++)
        for (let x = 0; x < W + 8; x++) {
          const want = x >= 8 && y >= 8 ? sv.getUint32((y - 8) * stride + (x - 8) * 4, true) : 0x5a5a5a5a;
          if (dv.getUint32(y * (W + 8) * 4 + x * 4, true) !== want) bad++;
        }
      t.equal(bad, 0, `${kind}: every pixel at (+8, +8), nothing else written`);
      fd.close();
    }
    // XBGR8888 into XRGB8888: R and B swap
    const px = pattern(8, 8, 32, 9);
    const fd = poolFile('unsealed', 256, px);
    const b = await clientBuffer(c, comp, fd, 256, { offset: 0, width: 8, height: 8, stride: 32, format: XB24 });
    const { surface, bytes } = dstSurface(8, 8);
    await b.shm.scanoutBuffer().copySource!.copyRects(surface, [{ x: 0, y: 0, width: 8, height: 8 }], {});
    const want = new Uint8Array(256);
    for (let i = 0; i < 256; i += 4) want.set([px[i + 2]!, px[i + 1]!, px[i]!, 0xff], i);
    t.equal(firstDiff(bytes, want), 'equal', 'XBGR8888 converted');
    fd.close();
  });
});

t.test("a destroyed pool's buffers stay valid; the pool is freed with its last buffer", async (t) => {
  await withClient(t, {}, async (comp, c) => {
    const px = pattern(16, 16, 64, 5);
    const fd = poolFile('unsealed', 64 * 16, px);
    const b = await clientBuffer(c, comp, fd, 64 * 16, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    fd.close(); // the client's own copy of the fd: the pool has its own
    b.pool.request('destroy', {});
    await c.conn.roundtrip();
    t.equal(comp.shm.livePools, 1, 'the pool lives while its buffer does');
    t.equal(b.shm.pool.freed, false);
    const { surface, bytes } = dstSurface(16, 16);
    await b.shm.scanoutBuffer().copySource!.copyRects(surface, [{ x: 0, y: 0, width: 16, height: 16 }], {});
    t.equal(firstDiff(bytes, px), 'equal', 'copied after the pool was destroyed');
    b.shm.lock();
    b.buffer.request('destroy', {});
    await c.conn.roundtrip();
    t.equal(b.shm.destroyed, true, 'wl_buffer destroyed');
    t.equal(comp.shm.livePools, 1, 'a compositor lock keeps the pool');
    b.shm.unlock();
    t.equal(b.shm.pool.freed, true, 'freed with the last lock');
    t.equal(comp.shm.livePools, 0);
    t.equal(b.shm.scanoutBuffer().kind, 'shm', 'a ScanoutBuffer made while alive stays');
    const fd2 = poolFile('sealed', 4096);
    const late = await clientBuffer(c, comp, fd2, 4096, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    late.buffer.request('destroy', {});
    late.pool.request('destroy', {});
    await c.conn.roundtrip();
    t.throws(() => late.shm.scanoutBuffer(), ClosedError, 'a freed buffer asked for the first time: ClosedError');
    fd2.close();
  });
});

t.test('a resized pool: old and new buffers both read right', async (t) => {
  await withClient(t, {}, async (comp, c) => {
    const a = pattern(16, 16, 64, 1);
    const fd = poolFile('sealed', 8192, a); // sealed against shrinking, may still grow
    const b1 = await clientBuffer(c, comp, fd, 1024, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    const bpx = pattern(16, 16, 64, 2);
    const { writeSync } = await import('node:fs');
    writeSync(fd.fd, bpx, 0, bpx.length, 4096);
    b1.pool.request('resize', { size: 8192 });
    b1.pool.request('create_buffer', { offset: 4096, width: 16, height: 16, stride: 64, format: 1 });
    await c.conn.roundtrip();
    const b2 = comp.buffers.at(-1)!;
    for (const [b, px, what] of [[b1.shm, a, 'the old buffer'], [b2, bpx, 'the new buffer']] as const) {
      const { surface, bytes } = dstSurface(16, 16);
      await b.scanoutBuffer().copySource!.copyRects(surface, [{ x: 0, y: 0, width: 16, height: 16 }], {});
      t.equal(firstDiff(bytes, px), 'equal', what);
    }
    fd.close();
  });
});

t.test('a client truncating its unsealed pool: the copy rejects typed, the client gets invalid_fd, the compositor serves another client', async (t) => {
  await withClient(t, {}, async (comp, c) => {
    const W = 256, H = 64, stride = 1024;
    const fd = poolFile('unsealed', stride * H, pattern(W, H, stride, 3));
    const b = await clientBuffer(c, comp, fd, stride * H, { offset: 0, width: W, height: H, stride, format: XR24 });
    native.ftruncateFd(fd.fd, 16 * stride); // the hostile part
    let gone = false;
    b.shm.client.onDestroy(() => (gone = true));
    const { surface } = dstSurface(W + 1, H); // a wider destination: copied row by row, so the progress is per row
    const src = b.shm.scanoutBuffer().copySource!;
    const err = await src.copyRects(surface, [{ x: 0, y: 0, width: W, height: H }], {}).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(isShmTruncated(err), `rejects with SystemError EFAULT/SIGBUS (${String(err)})`);
    t.match((err as SystemError).detail, `stopped after ${16 * stride} of ${H * stride} bytes`, 'stopped at the first missing page');
    t.equal(b.shm.pool.bad, err, 'the pool is marked bad');
    t.equal(comp.shm.stats.truncations, 1);
    const pe = await protocolError(c.conn);
    t.ok(pe instanceof ProtocolError, `the client gets a protocol error (${String(pe)})`);
    t.match(pe, { interface: 'wl_buffer', objectId: b.buffer.id, code: WL_SHM_ERROR.invalid_fd }, 'wl_shm.error.invalid_fd on its wl_buffer');
    t.ok(await until(() => gone), 'that client is disconnected');
    fd.close();

    const other = await ownShmClient(comp.server);
    const px = pattern(16, 16, 64, 4);
    const ofd = poolFile('unsealed', 1024, px);
    const ob = await clientBuffer(other, comp, ofd, 1024, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    const d = dstSurface(16, 16);
    await ob.shm.scanoutBuffer().copySource!.copyRects(d.surface, [{ x: 0, y: 0, width: 16, height: 16 }], {});
    t.equal(firstDiff(d.bytes, px), 'equal', "another client's buffer is copied");
    other.conn.close();
    ofd.close();
  });
});

t.test('udmabufRange: whole pages around the buffer, the plane offset inside', async (t) => {
  t.same(udmabufRange(0, 3 * 4096, 4096), { start: 0, size: 3 * 4096, planeOffset: 0 }, 'page-aligned');
  t.same(udmabufRange(100, 5000, 4096), { start: 0, size: 8192, planeOffset: 100 }, 'starts mid-page, ends mid-page');
  t.same(udmabufRange(5000, 100, 4096), { start: 4096, size: 4096, planeOffset: 904 }, 'inside one page');
  t.same(udmabufRange(8192, 4097, 4096), { start: 8192, size: 8192, planeOffset: 0 }, 'one byte into the next page');
});

t.test('zero copy policy: a udmabuf per pool and page range, the plane offset for mid-page buffers, closed with the pool', async (t) => {
  // A stand-in for /dev/udmabuf (the host has none): records the ranges, gives a dup of the memfd as the "dma-buf".
  const calls: Array<[number, number]> = [];
  let refuse = false;
  const fake = {
    fromMemfd(memfd: number, offset: number | bigint, size: number | bigint, what?: string): Dmabuf {
      if (refuse) throw new SystemError('UDMABUF_CREATE: EINVAL', { code: 'EINVAL', errno: 22, syscall: 'UDMABUF_CREATE' });
      calls.push([Number(offset), Number(size)]);
      return Dmabuf.dupFrom(memfd, what);
    },
  } as unknown as UdmabufAllocator;
  const page = native.pageSize;
  await withClient(t, { zeroCopy: { udmabuf: fake } }, async (comp, c) => {
    const fd = poolFile('sealed', 4 * page);
    const a = await clientBuffer(c, comp, fd, 4 * page, { offset: 0, width: 32, height: 32, stride: 128, format: XR24 });
    const sa = a.shm.scanoutBuffer();
    t.same(a.shm.zeroCopy, { ok: true }, 'a sealed memfd: zero copy');
    t.match(sa, { kind: 'dmabuf', width: 32, height: 32, format: XR24, modifier: 0n }, 'a LINEAR dma-buf ScanoutBuffer');
    t.equal(sa.planes[0]!.offset, 0);
    t.equal(sa.planes[0]!.stride, 128);
    a.pool.request('create_buffer', { offset: 0, width: 32, height: 32, stride: 128, format: 1 });
    a.pool.request('create_buffer', { offset: page + 256, width: 32, height: 32, stride: 128, format: 1 });
    await c.conn.roundtrip();
    const [same, mid] = comp.buffers.slice(-2) as [(typeof comp.buffers)[0], (typeof comp.buffers)[0]];
    t.equal(same.scanoutBuffer().planes[0]!.fd, sa.planes[0]!.fd, 'the same page range shares the udmabuf');
    const sm = mid.scanoutBuffer();
    t.equal(sm.kind, 'dmabuf', 'a mid-page buffer: zero copy too');
    t.equal(sm.planes[0]!.offset, 256, 'as a plane offset inside the enclosing pages');
    t.same(calls.slice(0, 2), [[0, page], [page, 2 * page]], 'two UDMABUF_CREATE: one per page range');
    t.equal(comp.shm.stats.udmabufs, 2, 'counted');

    // a sealed file that ends mid-page: udmabuf pins whole pages inside the file only
    const short = poolFile('sealed', 40000);
    const sb = await clientBuffer(c, comp, short, 40000, { offset: 0, width: 100, height: 100, stride: 400, format: XR24 });
    t.same(sb.shm.zeroCopy, { ok: true }, 'a sealed file ending mid-page: zero copy');
    t.same(calls.at(-1), [0, 40960], 'over the enclosing pages');
    t.equal(native.fdSize(short.fd), 40960n, 'the file grown to the page boundary first');
    const g = new OwnedFd(native.memfdCreate('grow-sealed', true));
    native.ftruncateFd(g.fd, 40000);
    native.addSeals(g.fd, F_SEAL_SHRINK | F_SEAL_GROW);
    const gb = await clientBuffer(c, comp, g, 40000, { offset: 0, width: 100, height: 100, stride: 400, format: XR24 });
    t.match(gb.shm.zeroCopy, { ok: false, reason: /sealed against growing/ }, 'sealed against growing too: copied, with the reason');
    t.equal(native.fdSize(g.fd), 40000n, 'that file untouched');

    const u = poolFile('unsealed', page);
    const ub = await clientBuffer(c, comp, u, page, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    t.match(ub.shm.zeroCopy, { ok: false, reason: /not a memfd sealed against shrinking \(seals 0x1\)/ }, 'an unsealed memfd: copied, with the reason');
    t.equal(ub.shm.scanoutBuffer().kind, 'shm');

    const w = new OwnedFd(native.memfdCreate('write-sealed', true));
    native.ftruncateFd(w.fd, page);
    native.addSeals(w.fd, F_SEAL_SHRINK | F_SEAL_WRITE);
    const wb = await clientBuffer(c, comp, w, page, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    t.match(wb.shm.zeroCopy, { ok: false, reason: /write seal/ }, 'a write-sealed memfd: copied, udmabuf would refuse it');

    refuse = true;
    const r = poolFile('sealed', page);
    const rb = await clientBuffer(c, comp, r, page, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    t.match(rb.shm.zeroCopy, { ok: false, reason: /UDMABUF_CREATE refused/ }, 'UDMABUF_CREATE failing: copied, with the reason');
    t.equal(rb.shm.scanoutBuffer().kind, 'shm');
    for (const f of [fd, u, w, r, short, g]) f.close();
  });
  await withClient(t, { zeroCopy: { udmabuf: fake, coherent: false } }, async (comp, c) => {
    const fd = poolFile('sealed', page);
    const b = await clientBuffer(c, comp, fd, page, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    t.match(b.shm.zeroCopy, { ok: false, reason: /not cache-coherent/ }, 'a display that is not cache-coherent: copied');
    fd.close();
  });
});

t.test('1000 pools created and destroyed: fds back to baseline', async (t) => {
  await withClient(t, {}, async (comp, c) => {
    const fd = poolFile('sealed', 4096);
    const base = testNative.countOpenFds();
    for (let i = 0; i < 1000; i++) {
      const pool = c.shm.request('create_pool', { fd, size: 4096 });
      const buffer = pool.request('create_buffer', { offset: 0, width: 16, height: 16, stride: 64, format: 1 });
      if (i % 2 === 0) pool.request('destroy', {}); // half the pools die before their buffer
      buffer.request('destroy', {});
      if (i % 2 === 1) pool.request('destroy', {});
      if (i % 100 === 99) await c.conn.roundtrip();
    }
    await c.conn.roundtrip();
    t.equal(comp.shm.stats.pools, 1000, '1000 pools made');
    t.equal(comp.shm.livePools, 0, 'none left');
    t.equal(testNative.countOpenFds(), base, `fds back to ${base}`);
    fd.close();
  });
});

t.test('fault 7: a client re-creating its buffer at 1000 offsets of one pool: the udmabuf cache stays bounded, a locked buffer keeps its udmabuf', async (t) => {
  // The fake /dev/udmabuf of the zero-copy test: a dup of the memfd as the "dma-buf", so every
  // udmabuf the pool keeps is one more open fd of this process.
  const fake = { fromMemfd: (memfd: number, _o: number | bigint, _s: number | bigint, what?: string): Dmabuf => Dmabuf.dupFrom(memfd, what) } as unknown as UdmabufAllocator;
  const page = native.pageSize;
  const N = 1000;
  await withClient(t, { zeroCopy: { udmabuf: fake } }, async (comp, c) => {
    const size = page * (N + 1);
    const fd = poolFile('sealed', size);
    // the buffer on screen: made, scanned out, locked by the presenter, then destroyed by its client
    const first = await clientBuffer(c, comp, fd, size, { offset: 0, width: 16, height: 16, stride: 64, format: XR24 });
    const onScreen = first.shm.scanoutBuffer();
    t.equal(onScreen.kind, 'dmabuf', 'zero copy');
    const onScreenFd = onScreen.planes[0]!.fd;
    const identity = native.wlFdIdentity(onScreenFd);
    first.shm.lock();
    first.buffer.request('destroy', {});
    await c.conn.roundtrip();
    t.equal(first.shm.destroyed, true, 'its wl_buffer is destroyed (the lock keeps it)');
    const base = testNative.countOpenFds();
    const pool = comp.buffers[0]!.pool;
    let maxFds = 0;
    let maxOpen = 0;
    for (let i = 1; i <= N; i++) {
      const b = first.pool.request('create_buffer', { offset: i * page, width: 16, height: 16, stride: 64, format: 1 });
      await c.conn.roundtrip();
      const sb = comp.buffers.at(-1)!.scanoutBuffer(); // committed: the compositor makes its ScanoutBuffer
      if (sb.kind !== 'dmabuf') t.fail(`buffer ${i} is not zero copy`);
      b.request('destroy', {});
      await c.conn.roundtrip();
      maxFds = Math.max(maxFds, testNative.countOpenFds() - base);
      maxOpen = Math.max(maxOpen, pool.openUdmabufs);
    }
    t.equal(comp.shm.stats.udmabufs, N + 1, `${N + 1} udmabufs made, one per page range`);
    t.ok(maxFds <= IDLE_UDMABUFS_PER_POOL + 1, `open fds stayed within ${IDLE_UDMABUFS_PER_POOL + 1} of the baseline (at most ${maxFds} more)`);
    t.ok(maxOpen <= IDLE_UDMABUFS_PER_POOL + 1, `the pool held at most ${IDLE_UDMABUFS_PER_POOL} idle udmabufs and the locked one (${maxOpen})`);
    t.equal(comp.shm.stats.udmabufsEvicted, N - IDLE_UDMABUFS_PER_POOL, 'the rest were evicted, least recently used first');
    t.equal(native.wlFdIdentity(onScreenFd), identity, "the locked buffer's udmabuf was never evicted: its fd is still the same file");
    t.equal(first.shm.freed, false, 'and the buffer is not freed');

    // a buffer made again at an idle range reuses its udmabuf (no UDMABUF_CREATE)
    first.pool.request('create_buffer', { offset: N * page, width: 16, height: 16, stride: 64, format: 1 });
    await c.conn.roundtrip();
    comp.buffers.at(-1)!.scanoutBuffer();
    t.equal(comp.shm.stats.udmabufs, N + 1, 'the most recent idle range is reused');

    first.shm.unlock();
    t.equal(first.shm.freed, true, 'unlocked: freed');
    t.equal(pool.openUdmabufs, IDLE_UDMABUFS_PER_POOL + 1, `its udmabuf joined the idle ones: ${IDLE_UDMABUFS_PER_POOL} idle and the one the last buffer holds`);
    t.equal(native.wlFdIdentity(onScreenFd), identity, 'the most recently used idle entry is kept');
    fd.close();
  });
});
