// Conformance: primebuf's own wl_shm on the real kernel (vkms, udmabuf). A client's buffer in a
// memfd sealed as Weston's clients seal it (F_SEAL_SHRINK | F_SEAL_SEAL) becomes a udmabuf,
// PRIME-imports into vkms and goes DIRECT through a Presenter: zero bytes copied, ZERO_COPY, the
// writeback capture shows its pixels, and pixels the client writes into its pool afterwards show
// on the next frame with nothing copied (the display reads the client's own pages); a pool whose
// file ends mid-page is grown to the page boundary first (udmabuf pins whole pages of the file
// only) and goes direct too; a buffer
// that starts mid-page is copied on vkms, which applies plane offsets twice (shown by scanning
// such a buffer out with its plane offset inside the udmabuf anyway); a sealed
// XBGR8888 buffer (no vkms plane takes it) is a udmabuf the verdicts refuse, copied with their
// reasons. An unsealed memfd and a file in XDG_RUNTIME_DIR are copied correctly into a vkms dumb
// buffer through their copySource. A client that truncates its unsealed pool gets invalid_fd,
// and the compositor carries on. weston-simple-shm on a server of ours: its pools are sealed
// memfds, every buffer zero-copy, its last frame scanned out directly. Every subtest returns fds, GEM handles and framebuffers to
// baseline (leakFree). Fault 7: a client that re-creates its buffer at 1000 page offsets of one
// pool keeps the udmabufs (fds, pinned pages) bounded, and the buffer on screen keeps its own.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { F_SEAL_SHRINK, F_SEAL_WRITE, UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import { fourcc } from '../../src/formats/index.js';
import type { Device } from '../../src/kms/device.js';
import { readResources, type KmsResources } from '../../src/kms/resources.js';
import { PRESENTATION_ZERO_COPY, Presenter, type PresentResult } from '../../src/scanout/index.js';
import { newCopyStats, type CopySurface } from '../../src/scanout/copy.js';
import { native, testNative } from '../../src/native.js';
import {
  IDLE_UDMABUFS_PER_POOL,
  ProtocolError,
  ShmBuffer,
  WL_SHM_ERROR,
  WaylandServer,
  displayHonoursPlaneOffsets,
  installMinimalShell,
  installShm,
  isShmTruncated,
  type ShmOptions,
} from '../../src/wayland/index.js';
import { clientBuffer, ownShmClient, ownShmCompositor, poolFile, protocolError, type OwnShmClient, type OwnShmCompositor, type PoolKind } from '../util/own-shm.js';
import { until } from '../util/wait.js';
import { openDriver } from './devices-util.js';
import { disableAll } from './kms-util.js';
import { leakFree, type TapTest } from './leak.js';
import { writebackCapture, type Pixel } from './writeback-util.js';

t.setTimeout(600000); // TCG guest on a shared host

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');


/** A per-pixel XRGB pattern (a shifted or mis-strided image cannot match). */
function pattern(tag: number): Pixel {
  return (x, y) => (0xff000000 | (tag << 16) | ((((x * 3) ^ y) & 0xff) << 8) | ((x + y * 5) & 0xff)) >>> 0;
}

function pixels(fn: Pixel, w: number, h: number, stride: number): Uint8Array {
  const out = new Uint8Array(stride * h);
  const dv = new DataView(out.buffer);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dv.setUint32(y * stride + x * 4, fn(x, y), true);
  return out;
}

/** This process's open dma-bufs that udmabuf exported, as the kernel lists them (/proc/self/fdinfo's exp_name). */
function openUdmabufFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      if (/^exp_name:\s*udmabuf$/m.test(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))) n++;
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return n;
}

/** vkms, a presenter on its CRTC, the writeback capture, and a wl_shm compositor with a client. */
interface Rig {
  vkms: Device;
  W: number;
  H: number;
  comp: OwnShmCompositor;
  client: OwnShmClient;
  presenter: Presenter;
  capture(): void;
  /** Waits for the capture in `r` and compares every pixel (RGB). */
  check(t: TapTest, r: PresentResult, want: Pixel, what: string): Promise<void>;
  /** A vkms dumb buffer (XRGB8888) as a copy destination, and its bytes. */
  dumb(w: number, h: number): { surface: CopySurface; read(): Promise<Uint8Array>; pitch: number };
  close(): void;
}

async function rig(t: TapTest, shmOpts: (udmabuf: UdmabufAllocator, vkms: Device) => ShmOptions): Promise<Rig> {
  const vkms = openDriver('vkms');
  const res: KmsResources = readResources(vkms, { probe: true });
  const wb = writebackCapture(t, vkms, res);
  const owned: Array<{ close(): void }> = [];
  const presenter = new Presenter({ device: vkms, crtcId: wb.crtc, connectorId: wb.connector, mode: wb.mode, extraState: (req) => wb.extraState(req) });
  const udmabuf = UdmabufAllocator.open();
  const comp = ownShmCompositor(shmOpts(udmabuf, vkms));
  const client = await ownShmClient(comp.server);
  return {
    vkms,
    W: wb.W,
    H: wb.H,
    comp,
    client,
    presenter,
    capture: () => wb.capture(),
    check: (t, r, want, what) => wb.check(t, r, want, what),
    dumb(w, h) {
      const d = DumbBuffer.create(vkms, { width: w, height: h, bpp: 32 });
      const map = d.map();
      const dmabuf = d.exportDmabuf();
      owned.push(dmabuf, map, d);
      return {
        surface: { memory: map, dmabuf, format: XR24, stride: d.pitch, width: w, height: h },
        pitch: d.pitch,
        read: () => dmabuf.withCpuAccess('read', () => map.bytes().slice()),
      };
    },
    close() {
      client.conn.close();
      comp.server.close();
      presenter.close();
      disableAll(vkms, res);
      for (const o of owned.reverse()) o.close();
      wb.close();
      udmabuf.close();
      vkms.close();
    },
  };
}

function rigTest(name: string, shmOpts: (udmabuf: UdmabufAllocator, vkms: Device) => ShmOptions, fn: (t: TapTest, r: Rig) => Promise<void>): void {
  void leakFree(t, name, async (t) => {
    const r = await rig(t, shmOpts);
    try {
      await fn(t, r);
    } finally {
      r.close();
    }
  });
}

/** Zero copy as a kiosk on this device would configure it. */
const zeroCopy = (udmabuf: UdmabufAllocator, vkms: Device): ShmOptions => ({
  formats: [XB24],
  zeroCopy: { udmabuf, planeOffsets: displayHonoursPlaneOffsets(vkms.version.name) },
});
/** Zero copy with plane offsets used whatever the display does with them. */
const planeOffsetsAlways = (udmabuf: UdmabufAllocator): ShmOptions => ({ zeroCopy: { udmabuf, planeOffsets: true } });

rigTest('a sealed memfd buffer: a udmabuf, PRIME-imported, DIRECT, zero bytes copied, writeback shows it; later client writes show without a copy', zeroCopy, async (t, r) => {
  const { W, H } = r;
  const stride = W * 4;
  const size = stride * H;
  const fd = poolFile('sealed', size, pixels(pattern(0x21), W, H, stride));
  const b = await clientBuffer(r.client, r.comp, fd, size, { offset: 0, width: W, height: H, stride, format: XR24 });
  t.same(b.shm.zeroCopy, { ok: true }, 'zero copy applies');
  const sb = b.shm.scanoutBuffer();
  t.equal(sb.kind, 'dmabuf', 'a dma-buf ScanoutBuffer (the udmabuf)');
  t.equal(r.comp.shm.stats.udmabufs, 1, 'one UDMABUF_CREATE');

  r.capture();
  const f1 = await r.presenter.present({ buffer: sb });
  t.equal(f1.path, 'direct', `direct (${r.presenter.explain(sb).join('; ')})`);
  t.equal(f1.bytesCopied, 0, 'zero bytes copied');
  t.ok(f1.presentation!.flags & PRESENTATION_ZERO_COPY, 'ZERO_COPY');
  t.equal(r.presenter.stats.imports, 1, 'PRIME-imported once');
  await r.check(t, f1, pattern(0x21), 'the client buffer scanned out');

  // the client draws into its pool again (as after a release): the display reads the new pixels from the same pages
  writeSync(fd.fd, pixels(pattern(0x42), W, H, stride), 0, size, 0);
  r.capture();
  const f2 = await r.presenter.present({ buffer: sb, damage: [{ x: 0, y: 0, width: W, height: H }] });
  t.equal(f2.path, 'direct', 'direct again');
  t.equal(r.presenter.stats.bytesCopied, 0, 'still zero bytes copied in all');
  t.equal(r.presenter.stats.imports, 1, 'no second import');
  t.equal(r.presenter.stats.addfb2, 1, 'no second AddFB2');
  await r.check(t, f2, pattern(0x42), "the client's new pixels, read from its own pages");
  fd.close();
});

rigTest('a sealed pool whose file ends mid-page (100x100: 40000 bytes): grown to the page boundary, a udmabuf, DIRECT', zeroCopy, async (t, r) => {
  const W = 100, H = 100, stride = 400, size = stride * H;
  const fd = poolFile('sealed', size, pixels(pattern(0x29), W, H, stride));
  const b = await clientBuffer(r.client, r.comp, fd, size, { offset: 0, width: W, height: H, stride, format: XR24 });
  t.same(b.shm.zeroCopy, { ok: true }, 'zero copy (UDMABUF_CREATE takes only whole pages inside the file)');
  t.equal(native.fdSize(fd.fd), 40960n, 'the file grew to the page boundary (it was not sealed against growing)');
  const sb = b.shm.scanoutBuffer();
  r.capture();
  const f = await r.presenter.present({ buffer: sb });
  t.equal(f.path, 'direct', `direct (${r.presenter.explain(sb).join('; ')})`);
  t.equal(f.bytesCopied, 0, 'zero bytes copied');
  await r.check(t, f, (x, y) => (x < W && y < H ? pattern(0x29)(x, y) : 0), 'the 100x100 buffer at (0, 0) on black');
  fd.close();
});

rigTest('a sealed buffer that starts mid-page on vkms (plane offsets mishandled): copied, with the reason, correctly', zeroCopy, async (t, r) => {
  t.equal(displayHonoursPlaneOffsets(r.vkms.version.name), false, 'vkms is known to mishandle plane offsets');
  const W = 200, H = 100, stride = 1024, offset = 4096 + 256;
  const size = offset + stride * H;
  const fd = poolFile('sealed', size, pixels(pattern(0x33), W, H, stride), offset);
  const b = await clientBuffer(r.client, r.comp, fd, size, { offset, width: W, height: H, stride, format: XR24 });
  t.match(b.shm.zeroCopy, { ok: false, reason: /starts 256 bytes into a page/ }, 'no zero copy, with the reason');
  const sb = b.shm.scanoutBuffer();
  t.equal(sb.kind, 'shm', 'a shm ScanoutBuffer');
  t.equal(b.shm.guarded, false, 'sealed: its reads need no guard');
  const d = r.dumb(W, H);
  await sb.copySource!.copyRects(d.surface, [{ x: 0, y: 0, width: W, height: H }], {});
  const got = new DataView((await d.read()).buffer);
  let bad = 0;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (got.getUint32(y * d.pitch + x * 4, true) !== pattern(0x33)(x, y)) bad++;
  t.equal(bad, 0, `all ${W * H} pixels copied`);
  fd.close();
});

rigTest('why: vkms 6.12 applies a framebuffer plane offset twice (a mid-page udmabuf scanned out shows the pixels one offset further on)', planeOffsetsAlways, async (t, r) => {
  const { W, H } = r;
  const stride = W * 4;
  const offset = 4096 + 256;
  const size = offset + stride * H + 4096;
  const fd = poolFile('sealed', size, pixels(pattern(0x34), W, H, stride), offset);
  const b = await clientBuffer(r.client, r.comp, fd, size, { offset, width: W, height: H, stride, format: XR24 });
  const sb = b.shm.scanoutBuffer();
  t.equal(sb.kind, 'dmabuf', 'zero copy (plane offsets forced on)');
  t.equal(sb.planes[0]!.offset, 256, 'the plane offset inside the udmabuf');
  r.capture();
  const f = await r.presenter.present({ buffer: sb });
  t.equal(f.path, 'direct', `direct: AddFB2 and TEST_ONLY take the offset (${r.presenter.explain(sb).join('; ')})`);
  // what shows at (x, y) is the buffer's pixel 256 bytes (64 pixels) further on: the next row's
  // first pixels at the right edge, the zeroes after the buffer at the end of the last row
  const shifted: Pixel = (x, y) => {
    const i = y * W + x + 64;
    return i < W * H ? pattern(0x34)(i % W, Math.floor(i / W)) : 0;
  };
  await r.check(t, f, shifted, 'the capture is the buffer shifted by the plane offset once more');
  fd.close();
});

rigTest('a sealed XBGR8888 buffer: a udmabuf the planes refuse, copied with the reason, writeback exact', zeroCopy, async (t, r) => {
  const { W, H } = r;
  const stride = W * 4;
  const xbgr: Pixel = (x, y) => {
    const p = pattern(0x17)(x, y);
    return ((p & 0xff) << 16) | (p & 0xff00) | ((p >>> 16) & 0xff);
  };
  const fd = poolFile('sealed', stride * H, pixels(xbgr, W, H, stride));
  const b = await clientBuffer(r.client, r.comp, fd, stride * H, { offset: 0, width: W, height: H, stride, format: XB24 });
  const sb = b.shm.scanoutBuffer();
  t.equal(sb.kind, 'dmabuf', 'a udmabuf all the same: the verdicts decide');
  r.capture();
  const f = await r.presenter.present({ buffer: sb });
  t.equal(f.path, 'copy', 'copied');
  t.match(r.presenter.explain(sb).join('; '), /format|XBGR8888/i, `with the verdicts' reason (${r.presenter.explain(sb).join('; ')})`);
  t.equal(f.bytesCopied, W * H * 4, 'the whole buffer copied once');
  await r.check(t, f, pattern(0x17), 'the copy shows the right colours');
  fd.close();
});

for (const kind of ['unsealed', 'file'] as const satisfies readonly PoolKind[]) {
  rigTest(`${kind === 'file' ? 'a file in XDG_RUNTIME_DIR' : 'an unsealed memfd'}: kind shm, copied correctly into a vkms dumb buffer`, zeroCopy, async (t, r) => {
    const W = 200, H = 120, stride = 1024, offset = 512;
    const px = pixels(pattern(0x55), W, H, stride);
    const size = offset + stride * H;
    const fd = poolFile(kind, size, px, offset);
    const b = await clientBuffer(r.client, r.comp, fd, size, { offset, width: W, height: H, stride, format: XR24 });
    t.match(b.shm.zeroCopy, { ok: false, reason: /not a memfd sealed against shrinking/ }, 'no zero copy, with the reason');
    const sb = b.shm.scanoutBuffer();
    t.equal(sb.kind, 'shm', 'a shm ScanoutBuffer');
    t.equal(b.shm.guarded, true, 'its reads are guarded');
    const d = r.dumb(W + 10, H + 10);
    const stats = newCopyStats();
    const n = await sb.copySource!.copyRects(d.surface, [{ x: 0, y: 0, width: W, height: H }], { dx: 10, dy: 10, stats });
    t.equal(n, W * H * 4, 'bytes copied');
    t.equal(stats.syncCalls, 2, 'inside the dumb buffer\'s write bracket');
    const got = new DataView((await d.read()).buffer);
    let bad = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (got.getUint32((y + 10) * d.pitch + (x + 10) * 4, true) !== pattern(0x55)(x, y)) bad++;
    t.equal(bad, 0, `all ${W * H} pixels in place`);
    fd.close();
  });
}

rigTest('a hostile client truncates its unsealed pool: typed rejection, invalid_fd, the compositor carries on', zeroCopy, async (t, r) => {
  const W = 256, H = 64, stride = 1024;
  const fd = poolFile('unsealed', stride * H, pixels(pattern(0x66), W, H, stride));
  const b = await clientBuffer(r.client, r.comp, fd, stride * H, { offset: 0, width: W, height: H, stride, format: XR24 });
  let gone = false;
  b.shm.client.onDestroy(() => (gone = true));
  const d = r.dumb(W + 1, H); // one pixel wider: copied row by row
  const sb = b.shm.scanoutBuffer();
  native.ftruncateFd(fd.fd, 8 * stride); // the hostile part: the pool's file loses all but 8 rows
  const err = await sb.copySource!.copyRects(d.surface, [{ x: 0, y: 0, width: W, height: H }], {}).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isShmTruncated(err), `rejects with SystemError EFAULT/SIGBUS (${String(err)})`);
  const pe = await protocolError(r.client.conn);
  t.ok(pe instanceof ProtocolError, `the client gets a protocol error (${String(pe)})`);
  t.match(pe, { interface: 'wl_buffer', objectId: b.buffer.id, code: WL_SHM_ERROR.invalid_fd }, 'wl_shm.error.invalid_fd on its wl_buffer');
  t.ok(await until(() => gone), 'that client is disconnected');
  fd.close();

  // the compositor carries on: another client's sealed buffer goes direct
  const other = await ownShmClient(r.comp.server);
  const sfd = poolFile('sealed', r.W * 4 * r.H, pixels(pattern(0x77), r.W, r.H, r.W * 4));
  const ob = await clientBuffer(other, r.comp, sfd, r.W * 4 * r.H, { offset: 0, width: r.W, height: r.H, stride: r.W * 4, format: XR24 });
  r.capture();
  const f = await r.presenter.present({ buffer: ob.shm.scanoutBuffer() });
  t.equal(f.path, 'direct', 'another client scanned out');
  await r.check(t, f, pattern(0x77), 'and shown');
  other.conn.close();
  sfd.close();
});

rigTest('fault 7: a client re-creating its buffer at 1000 offsets of one sealed pool: udmabufs and fds stay bounded, the buffer on screen keeps its udmabuf', zeroCopy, async (t, r) => {
  const { W, H } = r;
  const stride = W * 4;
  const page = native.pageSize;
  const N = 1000;
  const screen = Math.ceil((stride * H) / page) * page;
  const size = screen + N * page;
  const fd = poolFile('sealed', size, pixels(pattern(0x71), W, H, stride));
  const first = await clientBuffer(r.client, r.comp, fd, size, { offset: 0, width: W, height: H, stride, format: XR24 });
  const sb = first.shm.scanoutBuffer();
  t.equal(sb.kind, 'dmabuf', 'the fullscreen buffer is a udmabuf');
  r.capture();
  const f1 = await r.presenter.present({ buffer: sb });
  t.equal(f1.path, 'direct', `direct (${r.presenter.explain(sb).join('; ')})`);
  await r.check(t, f1, pattern(0x71), 'on screen');
  // on screen, so locked; its client destroys the wl_buffer (the lock keeps it)
  first.shm.lock();
  first.buffer.request('destroy', {});
  await r.client.conn.roundtrip();
  const fds0 = testNative.countOpenFds();
  const ub0 = openUdmabufFds();
  t.equal(ub0, 1, 'one udmabuf open (the one on screen)');
  let maxFds = 0;
  let maxUdmabufs = 0;
  for (let i = 0; i < N; i++) {
    // a client that makes a new wl_buffer for each frame, each at another place in its pool
    const b = first.pool.request('create_buffer', { offset: screen + i * page, width: 16, height: 16, stride: 64, format: 1 });
    await r.client.conn.roundtrip();
    if (r.comp.buffers.at(-1)!.scanoutBuffer().kind !== 'dmabuf') t.fail(`buffer ${i}: not zero copy`);
    b.request('destroy', {});
    await r.client.conn.roundtrip();
    if (i % 50 === 49) {
      // every 50 frames (reading /proc for each fd is slow under TCG)
      maxFds = Math.max(maxFds, testNative.countOpenFds() - fds0);
      maxUdmabufs = Math.max(maxUdmabufs, openUdmabufFds());
    }
  }
  t.equal(r.comp.shm.stats.udmabufs, N + 1, `${N + 1} UDMABUF_CREATE, one per page range`);
  t.ok(maxFds <= IDLE_UDMABUFS_PER_POOL, `open fds stayed within ${IDLE_UDMABUFS_PER_POOL} of where they were (at most ${maxFds} more)`);
  t.ok(maxUdmabufs <= IDLE_UDMABUFS_PER_POOL + 1, `the kernel lists at most ${IDLE_UDMABUFS_PER_POOL + 1} udmabufs of ours at any time (${maxUdmabufs})`);
  // the buffer on screen kept its udmabuf: the display still reads it and it goes out again
  r.capture();
  const f2 = await r.presenter.present({ buffer: sb, damage: [{ x: 0, y: 0, width: W, height: H }] });
  t.equal(f2.path, 'direct', 'the locked buffer is still scanned out directly');
  await r.check(t, f2, pattern(0x71), 'its pixels, read through the same udmabuf');
  first.shm.unlock();
  fd.close();
});

rigTest("weston-simple-shm: its pools are memfds sealed against shrinking (their size no page multiple), its buffers zero-copy, one scanned out DIRECT with writeback showing its pixels", zeroCopy, async (t, r) => {
  // weston-simple-shm on a server of ours: primebuf's wl_shm (zero copy) and the minimal shell
  const xdg = mkdtempSync(join(tmpdir(), 'primebuf-shm-xdg-'));
  const xdgBefore = process.env['XDG_RUNTIME_DIR'];
  process.env['XDG_RUNTIME_DIR'] = xdg; // where server.addSocket listens
  const server = new WaylandServer();
  const udmabuf = UdmabufAllocator.open();
  const buffers: ShmBuffer[] = [];
  const shm = installShm(server, { zeroCopy: { udmabuf, planeOffsets: displayHonoursPlaneOffsets(r.vkms.version.name) }, onBuffer: (b) => buffers.push(b) });
  let committed: ShmBuffer | undefined;
  let commits = 0;
  installMinimalShell(server, {
    onSurfaceBuffer: (_s, res) => {
      const b = ShmBuffer.from(res);
      if (!b) return;
      committed = b;
      commits++;
      b.scanoutBuffer(); // what a compositor does with a committed buffer
    },
  });
  const socket = server.addSocket('pb-shm-zero-copy');
  const child = spawn('weston-simple-shm', [], { env: { ...process.env, XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: socket }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let locked: ShmBuffer | undefined;
  try {
    t.ok(await until(() => commits >= 10, 60_000), `weston-simple-shm committed 10 frames (${commits}; stderr: ${stderr.trim() || 'none'})`);
    // freeze the last committed frame: keep its pool, stop the client
    locked = committed!;
    locked.lock();
    const gone = new Promise((res) => child.once('exit', res));
    child.kill('SIGKILL');
    await gone;
    t.ok(await until(() => server.clients.size === 0), 'the client is gone');
    t.ok(buffers.length >= 2, `it made ${buffers.length} buffers`);
    for (const b of buffers) {
      t.equal(b.pool.seals & (F_SEAL_SHRINK | F_SEAL_WRITE), F_SEAL_SHRINK, `wl_buffer@${b.resource.id}: its pool is sealed against shrinking (seals 0x${b.pool.seals.toString(16)}: Weston 10's clients add F_SEAL_SHRINK alone)`);
      t.same(b.zeroCopy, { ok: true }, `wl_buffer@${b.resource.id} (${b.width}x${b.height}, offset ${b.offset}): zero copy`);
    }
    const sb = locked.scanoutBuffer();
    r.capture();
    const f = await r.presenter.present({ buffer: sb });
    t.equal(f.path, 'direct', `direct (${r.presenter.explain(sb).join('; ')})`);
    t.equal(f.bytesCopied, 0, 'zero bytes copied');
    const px = new DataView(locked.pool.mapping.bytes(locked.offset, locked.stride * locked.height).slice().buffer);
    const { width: bw, height: bh, stride } = locked;
    await r.check(t, f, (x, y) => (x < bw && y < bh ? px.getUint32(y * stride + x * 4, true) : 0), `its ${bw}x${bh} frame at (0, 0) on black`);
    t.equal(shm.stats.truncations, 0, 'no guarded read faulted');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    locked?.unlock();
    server.close();
    udmabuf.close();
    rmSync(xdg, { recursive: true, force: true });
    if (xdgBefore === undefined) delete process.env['XDG_RUNTIME_DIR'];
    else process.env['XDG_RUNTIME_DIR'] = xdgBefore;
  }
});
