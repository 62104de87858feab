// Conformance: waiting on real pending fences without blocking the JS thread. vgem's
// DRM_IOCTL_VGEM_FENCE_ATTACH puts an unsignaled write fence on a vgem dumb buffer (its dma-buf
// shares the reservation object) and DRM_IOCTL_VGEM_FENCE_SIGNAL signals it (test-only natives).
// Proves: exportSyncFile() of a busy buffer is unsignaled; concurrent SyncFile waits all resolve
// after the signal and never before, with timers firing meanwhile; a wait with a timeout rejects
// with TimeoutError; a DMA_BUF_IOCTL_SYNC START bracket waits for the fence on libuv's pool, not
// on the JS thread; close() during that wait keeps the fd open until the pool job settled;
// a copy whose source has a pending writer brackets itself inside its one pool job: it reads the
// source only after the fence signaled, and closing the destination meanwhile keeps it until the job settled;
// so does a composition (composeLayers) with such a source, blended into a dma-buf target;
// exportWriteFence (the presenter's implicit sync) gives a pending fence while the write is
// pending and none once it completed (no sync_file made per frame for a finished buffer).
// Emulated VM: every check is about order, none about durations. vgem signals a fence by itself
// after ~10 s, long after these tests signal it.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import type { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import { testNative } from '../../src/native.js';
import { composeLayers } from '../../src/scanout/compose.js';
import { copyRects, newCopyStats } from '../../src/scanout/copy.js';
import { exportWriteFence } from '../../src/scanout/implicit-sync.js';
import { fourcc } from '../../src/formats/index.js';
import { until } from '../util/wait.js';
import { openDriver } from './devices-util.js';
import { leakFree, type TapTest } from './leak.js';

/** A vgem dumb buffer, exported as a dma-buf, with a pending write fence until signal(). */
interface FencedBuffer {
  dmabuf: Dmabuf;
  /** true from the moment signal() is called (set before the ioctl) */
  readonly signaled: boolean;
  signal(): void;
  /** Signals the fence if the test did not, then closes the dma-buf, the buffer and vgem. */
  close(): void;
}

function fencedBuffer(): FencedBuffer & { dumb: DumbBuffer } {
  const vgem = openDriver('vgem');
  const dumb = DumbBuffer.create(vgem, { width: 64, height: 64, bpp: 32 });
  const dmabuf = dumb.exportDmabuf();
  const fence = testNative.vgemFenceAttach(vgem.fd, dumb.handle.handle, true);
  let signaled = false;
  const fb: FencedBuffer & { dumb: DumbBuffer } = {
    dmabuf,
    dumb,
    get signaled() {
      return signaled;
    },
    signal() {
      signaled = true;
      testNative.vgemFenceSignal(vgem.fd, fence);
    },
    close() {
      if (!signaled) fb.signal();
      dmabuf.close();
      dumb.close();
      vgem.close();
    },
  };
  return fb;
}

/** A leak-checked subtest with a fenced buffer that is closed (and signaled) however the body ends. */
function fencedTest(name: string, fn: (t: TapTest, f: ReturnType<typeof fencedBuffer>) => Promise<void>): void {
  void leakFree(t, name, async (t) => {
    const f = fencedBuffer();
    try {
      await fn(t, f);
    } finally {
      f.close();
    }
  });
}

/** Counts setInterval ticks until stopped: the JS thread's pulse. */
function pulse(): { readonly ticks: number; stop(): void } {
  let ticks = 0;
  const iv = setInterval(() => ticks++, 10);
  return {
    get ticks() {
      return ticks;
    },
    stop: () => clearInterval(iv),
  };
}

fencedTest('a pending vgem write fence: concurrent SyncFile waits all resolve after the signal, not before; timers keep firing', async (t, f) => {
  const sync = f.dmabuf.exportSyncFile('read');
  t.equal(sync.signaled, false, 'exportSyncFile of a buffer with a pending writer is unsignaled');
  const p = pulse();
  const settled: string[] = [];
  const waits = [undefined, undefined, undefined, 60_000].map((timeout) =>
    sync.wait(timeout).then(() => void settled.push(f.signaled ? 'after signal' : 'BEFORE signal')),
  );
  t.ok(await until(() => p.ticks >= 10), 'timers fire while four waits are pending');
  t.same(settled, [], 'no wait resolved while the fence is pending');
  t.equal(sync.signaled, false, 'the fence is still pending');
  f.signal();
  await Promise.all(waits);
  p.stop();
  t.same(settled, ['after signal', 'after signal', 'after signal', 'after signal'], 'every waiter resolved, after the signal');
  t.equal(sync.signaled, true);
  await sync.wait(1000);
  t.pass('a wait on the signaled fence resolves at once');
  sync.close();
});

fencedTest('a wait with a timeout on a pending fence rejects with TimeoutError; other waits go on', async (t, f) => {
  const sync = f.dmabuf.exportSyncFile('rw');
  const long = sync.wait();
  const short = sync.wait(50);
  await t.rejects(short, { name: 'TimeoutError', code: 'ETIMEDOUT' }, 'the short wait times out');
  t.equal(f.signaled, false, 'before the fence signaled');
  let longDone = false;
  void long.then(() => (longDone = true));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(longDone, false, 'the wait without a timeout is still pending');
  f.signal();
  await long;
  t.pass('and resolves once the fence signals');
  sync.close();
});

fencedTest('withCpuAccess: the START bracket waits for the fence on the pool; the JS thread keeps running', async (t, f) => {
  const p = pulse();
  const order: string[] = [];
  const bracket = f.dmabuf.withCpuAccess('read', () => {
    order.push(f.signaled ? 'callback after signal' : 'callback BEFORE signal');
    return 42;
  });
  t.ok(await until(() => p.ticks >= 10), 'timers fire while START waits on the pending fence');
  t.same(order, [], 'the bracket has not started');
  f.signal();
  t.equal(await bracket, 42, 'the bracket resolves with the callback\'s result');
  p.stop();
  t.same(order, ['callback after signal'], 'the callback ran only after the fence signaled');
});

fencedTest('close() during a pending START keeps the fd open until the pool job settles', async (t, f) => {
  const start = f.dmabuf.beginCpuAccessAsync('write');
  let startDone = false;
  void start.then(() => (startDone = true));
  const fds = testNative.countOpenFds();
  f.dmabuf.close();
  t.equal(f.dmabuf.closed, true, 'closed for its users at once');
  t.equal(testNative.countOpenFds(), fds, 'the fd stays open while the pool thread waits in the ioctl');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(startDone, false, 'START still waits for the fence');
  f.signal();
  await start;
  t.equal(testNative.countOpenFds(), fds - 1, 'the fd is closed once the job settled');
});

fencedTest('exportWriteFence: a pending write gives an unsignaled sync_file; once it completed, no sync_file at all', async (t, f) => {
  const pending = exportWriteFence([f.dmabuf.fd], 'fenced vgem');
  t.ok(pending, 'a sync_file while the write fence is pending');
  t.equal(pending?.signaled, false, 'and it is unsignaled');
  f.signal();
  t.ok(await until(() => pending!.signaled), 'it signals with the write fence');
  pending?.close();
  const after = exportWriteFence([f.dmabuf.fd], 'fenced vgem');
  after?.close();
  t.equal(after, undefined, 'no sync_file for a buffer whose writes are done');
});

fencedTest('composeLayers with a source that has a pending writer: its READ bracket waits inside the job; the target (a dma-buf, closed meanwhile) gets the blend of what the writer left', async (t, f) => {
  const W = 64;
  const H = 64;
  const XR24 = fourcc('XRGB8888');
  const map = f.dumb.map();
  const src = new Uint32Array(map.buffer);
  src.fill(0x00a0a0a0);
  const dstVgem = openDriver('vgem');
  const dstBuf = DumbBuffer.create(dstVgem, { width: W, height: H, bpp: 32 });
  const dstDmabuf = dstBuf.exportDmabuf();
  const dstMap = dstBuf.map();
  const p = pulse();
  let done = false;
  const half = { kind: 'solid' as const, a: 0.5, r: 0.5, g: 0, b: 0 }; // premultiplied half-red over the source
  const job = composeLayers({
    target: { memory: dstMap, dmabuf: dstDmabuf, format: XR24, width: W, height: H, stride: dstBuf.pitch },
    clip: [{ x: 0, y: 0, width: W, height: H }],
    layers: [
      { kind: 'image', source: { memory: map, dmabuf: f.dmabuf, format: XR24, width: W, height: H, stride: f.dumb.pitch }, dst: { x: 0, y: 0, width: W, height: H } },
      { kind: 'solid', color: half, dst: { x: 0, y: 0, width: W, height: H / 2 } },
    ],
  }).finally(() => (done = true));
  dstMap.close();
  dstDmabuf.close();
  t.ok(await until(() => p.ticks >= 10), 'timers fire while the job waits in START READ');
  t.equal(done, false, 'the composition has not finished while the write fence is pending');
  src.fill(0x00123456);
  f.signal();
  t.equal((await job).bytes, W * H * 4, 'resolves with the bytes written once the fence signaled');
  p.stop();
  map.close();
  // 0x12 0x34 0x56 under half-red: r = 128 + round(0x12 * 127 / 255), g and b halved the same way
  const mul = (c: number) => Math.floor((c * 127) / 255 + 0.5);
  const blended = ((128 + mul(0x12)) << 16) | (mul(0x34) << 8) | mul(0x56);
  const check = dstBuf.map();
  const got = new Uint32Array(check.buffer);
  let bad = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) if ((got[(y * dstBuf.pitch) / 4 + x]! & 0xffffff) !== (y < H / 2 ? blended : 0x123456)) bad++;
  t.equal(bad, 0, "every target pixel is the blend of the writer's pixels, none from before the fence signaled");
  check.close();
  dstBuf.close();
  dstVgem.close();
});

fencedTest('copyRects from a source with a pending writer: the START READ bracket runs inside the copy job and waits; the copy reads what the writer left', async (t, f) => {
  const W = 64;
  const H = 64;
  const XR24 = fourcc('XRGB8888');
  const map = f.dumb.map();
  const src = new Uint32Array(map.buffer);
  src.fill(0x00a0a0a0); // what the buffer held before the (emulated) GPU write
  const dstVgem = openDriver('vgem');
  const dstBuf = DumbBuffer.create(dstVgem, { width: W, height: H, bpp: 32 });
  const dstDmabuf = dstBuf.exportDmabuf();
  const dstMap = dstBuf.map();
  const stats = newCopyStats();
  const p = pulse();
  let done = false;
  const copy = copyRects(
    { memory: map, dmabuf: f.dmabuf, format: XR24, width: W, height: H, stride: f.dumb.pitch },
    { memory: dstMap, dmabuf: dstDmabuf, format: XR24, width: W, height: H, stride: dstBuf.pitch },
    [{ x: 0, y: 0, width: W, height: H }],
    { stats },
  ).finally(() => (done = true));
  // The destination closed by its owners while the job waits: kept until it settles.
  dstMap.close();
  dstDmabuf.close();
  t.ok(await until(() => p.ticks >= 10), 'timers fire while the copy job waits in START READ');
  t.equal(done, false, 'the copy has not finished while the write fence is pending');
  src.fill(0x00123456); // the writer's result lands, then its fence signals
  f.signal();
  t.equal(await copy, W * H * 4, 'the copy resolves with the bytes written once the fence signaled');
  p.stop();
  map.close();
  t.same(stats, { copies: 1, bytes: W * H * 4, syncCalls: 4 }, 'START and END on both dma-bufs, counted once the job settled');
  const check = dstBuf.map();
  const got = new Uint32Array(check.buffer);
  let bad = 0;
  for (let i = 0; i < W * H; i++) if (got[(Math.floor(i / W) * dstBuf.pitch) / 4 + (i % W)] !== 0x00123456) bad++;
  t.equal(bad, 0, 'every destination pixel is the writer\'s, none from before the fence signaled');
  check.close();
  dstBuf.close();
  dstVgem.close();
});
