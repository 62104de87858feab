// Deferred allocation on the real kernel (vkms guest): vkms card0, vgem card1/renderD128,
// udmabuf and the system dma-heap. Late attach (import / EBUSY / re-allocation with the content
// carried over), sync counts, pre-flushed reuse and leak checks.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { native, packageRoot, testNative } from '../../src/native.js';
import { Device, PropertyBlob, preferredMode, readResources } from '../../src/kms/index.js';
import { Framebuffer, liveFramebufferCount } from '../../src/kms/framebuffer.js';
import { liveGemHandleCount } from '../../src/kms/gem.js';
import {
  BufferBusyError,
  cpuConstraint,
  describeKmsDevice,
  merge,
  renderNodeConstraint,
  scanoutConstraint,
  type DeviceConstraint,
} from '../../src/constraints/index.js';
import { declared } from '../../src/constraints/device.js';
import { AllocatorPool, BufferRequest, PreflushedPool, type Backing, type Imported } from '../../src/alloc/index.js';
import { DumbBuffer, openSystemAllocators } from '../../src/alloc/index.js';
import { liveBackings } from '../../src/alloc/backends/index.js';
import { SystemError } from '../../src/errors.js';
import { allocTestHooks } from '../../src/alloc/backends/test-hooks.js';
import type { PoolAllocator } from '../../src/alloc/backends/allocators.js';
import { assertBack, snapshot } from './leak.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck (tap's default is 30 s per file)

const XR24 = fourcc('XRGB8888');
const NV12 = fourcc('NV12');
const fdsAtStart = testNative.countOpenFds();

const sys = openSystemAllocators();
const vkms = sys.devices.get('card0')!;
const render = Device.open('/dev/dri/renderD128');
const vkmsDesc = describeKmsDevice(vkms);
const scanout = scanoutConstraint(vkmsDesc);
const texture = renderNodeConstraint('renderD128', render.version.name);

/** The owner's import hook: PRIME import into the device the constraint names. */
function importer(c: DeviceConstraint, b: Backing): Imported | undefined {
  const dev = c.device === 'card0' ? vkms : c.device === 'renderD128' ? render : undefined;
  if (!dev) return undefined;
  const fd = b.exportFd();
  try {
    return dev.importDmabuf(fd.fd);
  } finally {
    fd.close();
  }
}

/** A framebuffer on vkms proves the buffer is scanout-usable as described. */
function addFb(b: Backing): Framebuffer {
  const d = b.description;
  const fd = b.exportFd();
  const h = vkms.importDmabuf(fd.fd);
  fd.close();
  try {
    return Framebuffer.create(vkms, { width: d.width, height: d.height, format: d.format, modifier: d.modifier, planes: d.planes.map((p) => ({ handle: h, pitch: Number(p.pitch), offset: Number(p.offset) })) });
  } finally {
    h.close();
  }
}

/**
 * Shows `b` on the vkms primary plane at (0, 0) and captures the CRTC with Writeback-1
 * (alone: stock vkms cannot clone it with Virtual-1). Returns the captured XRGB8888 rows.
 */
async function writeback(b: Backing): Promise<{ pixels: Uint8Array; pitch: number }> {
  const res = readResources(vkms, { probe: true });
  const crtc = res.crtcs[0]!;
  const primary = res.planes.find((p) => p.type === 'primary' && p.possibleCrtcs.includes(crtc.id))!;
  const virt = res.connectors.find((c) => !c.writeback)!;
  const wb = res.connectors.find((c) => c.writeback)!;
  const mode = preferredMode(virt)!;
  const blob = PropertyBlob.fromMode(vkms, mode);
  const target = new BufferRequest({ width: mode.hdisplay, height: mode.vdisplay, formats: [XR24], pool: sys.pool });
  target.attach(scanout);
  target.attach(cpuConstraint('read'));
  const fbSrc = addFb(b);
  const fbDst = addFb(backingOf(target));
  const d = b.description;
  try {
    const req = vkms.atomic();
    req.set(crtc, 'MODE_ID', blob).set(crtc, 'ACTIVE', 1);
    req.setAll(primary, { FB_ID: fbSrc, CRTC_ID: crtc, SRC_X: 0, SRC_Y: 0, SRC_W: d.width << 16, SRC_H: d.height << 16, CRTC_X: 0, CRTC_Y: 0, CRTC_W: d.width, CRTC_H: d.height });
    req.set(wb, 'CRTC_ID', crtc).set(wb, 'WRITEBACK_FB_ID', fbDst).outFence(wb, 'WRITEBACK_OUT_FENCE_PTR');
    const { fences } = req.commitBlocking({ allowModeset: true });
    await fences[0]!.wait(5000);
    fences[0]!.close();
    const off = vkms.atomic();
    off.set(crtc, 'MODE_ID', null).set(crtc, 'ACTIVE', 0).setAll(primary, { FB_ID: null, CRTC_ID: null }).set(wb, 'CRTC_ID', null);
    off.commitBlocking({ allowModeset: true });
    const view = target.beginCpuAccess('read');
    const pixels = view.slice();
    target.endCpuAccess();
    return { pixels, pitch: Number(target.description!.planes[0]!.pitch) };
  } finally {
    fbSrc.close();
    fbDst.close();
    blob.close();
    target.close();
  }
}

t.test('the live vkms description gives a scanout constraint like the recorded facts', async (t) => {
  t.equal(vkmsDesc.driver, 'vkms');
  t.ok(vkmsDesc.planes.some((p) => p.type === 'primary'));
  t.ok(scanout.formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), 'primary takes XRGB8888 LINEAR');
  t.notOk(scanout.formats!.hasFormat(NV12), 'and no NV12');
  t.equal(scanout.allocateOn, undefined, 'vkms imports (PRIME import cap)');
  t.same(sys.pool.allocators.map((a) => a.caps.name).sort(), ['dma-heap:system', 'dumb@card0', 'dumb@card1', 'udmabuf']);
});

t.test('deferred: nothing is allocated before the first export; the plan is carried out for real', async (t) => {
  const req = new BufferRequest({ width: 640, height: 480, formats: [XR24], pool: sys.pool, importer });
  req.attach(scanout);
  req.attach(texture);
  t.equal(liveBackings(), 0, 'no allocation while pending');
  const plan = req.plan();
  t.equal(plan.chosen!.allocator, 'dumb@card0', 'dry run: dumb buffer on the scanout device');
  const fd = req.exportFd();
  t.equal(liveBackings('dumb@card0'), 1);
  t.equal(native.dmabufSize(fd.fd), req.description!.size, 'the dma-buf has the described size');
  fd.close();
  const fb = addFb(backingOf(req));
  t.ok(fb.id > 0, 'vkms accepts it as a framebuffer');
  fb.close();
  req.close();
  t.equal(liveBackings(), 0);
});

// The request's backing is private; re-export through a tiny Backing view for addFb.
function backingOf(req: BufferRequest): Backing {
  const d = req.allocate();
  return { description: d, closed: false, exportFd: () => req.exportFd(), map: () => { throw new Error('unused'); }, sync: () => {}, close: () => {} };
}

t.test('every allocator of this machine makes a buffer vkms can scan out', async (t) => {
  for (const a of sys.pool.allocators) {
    const pool = new AllocatorPool([a]);
    const req = new BufferRequest({ width: 320, height: 240, formats: [XR24], pool, importer });
    req.attach(scanout);
    req.attach(texture);
    const d = req.allocate();
    t.equal(d.allocator, a.caps.name);
    const fb = addFb(backingOf(req));
    t.ok(fb.id > 0, `${a.caps.name}: AddFB2 on vkms`);
    fb.close();
    req.close();
  }
  t.equal(liveBackings(), 0);
});

t.test('late compatible attach imports; late incompatible attach -> EBUSY with reasons', async (t) => {
  const req = new BufferRequest({ width: 256, height: 256, formats: [XR24], pool: sys.pool, importer });
  req.attach(scanout);
  req.allocate();
  const handles = render.gemHandleCount;
  req.attach(texture);
  t.equal(render.gemHandleCount, handles + 1, 'vgem imported the existing buffer');
  const encoder = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[XR24, 0n]]), contiguous: true });
  const err = t.throws(() => req.attach(encoder)) as unknown as BufferBusyError;
  t.ok(err instanceof BufferBusyError);
  t.equal(err.code, 'EBUSY');
  t.same(err.reasons.map((r) => [r.code, r.device]), [['CONTIGUOUS', 'encoder']]);
  req.close();
  t.equal(render.gemHandleCount, handles, 'the import was closed with the request');
});

t.test('re-allocation carries the content over (preview, then start recording)', async (t) => {
  const events: string[] = [];
  const req = new BufferRequest({
    width: 200,
    height: 100,
    formats: [XR24],
    pool: sys.pool,
    importer,
    onIncompatibleAttach: 'reallocate',
    onReallocate: (e) => events.push(`${e.before.allocator} -> ${e.after.allocator} copied=${e.copied}`),
  });
  req.attach(scanout);
  req.attach(cpuConstraint('write'));
  const px = req.beginCpuAccess('write');
  const pitch = Number(req.description!.planes[0]!.pitch);
  for (let y = 0; y < 100; y++) for (let x = 0; x < 800; x++) px[y * pitch + x] = (x ^ y) & 0xff;
  req.endCpuAccess();
  req.deviceAccess('card0');
  t.equal(req.description!.allocator, 'dumb@card0');
  // The recorder needs pitches aligned to 1024 bytes: the dumb buffer (pitch 800) cannot serve it.
  const recorder = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[XR24, 0n]]), pitchAlign: 1024 });
  const a = req.attach(recorder);
  t.ok(a.reallocation);
  t.same(events.length, 1);
  t.equal(req.description!.planes[0]!.pitch, 1024n);
  const view = req.beginCpuAccess('read');
  let bad = 0;
  for (let y = 0; y < 100; y++) for (let x = 0; x < 800; x++) if (view[y * 1024 + x] !== ((x ^ y) & 0xff)) bad++;
  req.endCpuAccess();
  t.equal(bad, 0, `every pixel carried over (${events[0]})`);
  // What the display really shows: capture the re-allocated buffer with vkms writeback.
  const cap = await writeback(backingOf(req));
  let wrong = 0;
  for (let y = 0; y < 100; y++) {
    for (let x = 0; x < 200; x++) {
      for (let c = 0; c < 3; c++) if (cap.pixels[y * cap.pitch + x * 4 + c] !== ((x * 4 + c) ^ y) % 256) wrong++;
    }
  }
  t.equal(wrong, 0, 'the writeback capture of the new buffer shows the content drawn into the old one');
  req.close();
  t.equal(liveBackings(), 0, 'old and new buffers released');
});

t.test('sync counts match the accesses made (real DMA_BUF_IOCTL_SYNC)', async (t) => {
  const req = new BufferRequest({ width: 64, height: 64, formats: [XR24], pool: new AllocatorPool([sys.pool.get('dma-heap:system')!]), importer });
  req.attach(scanout);
  req.attach(cpuConstraint('write'));
  for (let i = 0; i < 4; i++) {
    const v = req.beginCpuAccess('write');
    v.fill(i);
    req.endCpuAccess();
    req.beginCpuAccess('write'); // same bracket
    req.endCpuAccess();
    req.deviceAccess('card0');
    req.deviceAccess('renderD128');
  }
  t.same(req.syncCounts, { starts: 4, ends: 4, skipped: 8 }, '4 frames: one START/END each; repeated CPU access and device hand-over free');
  req.close();
});

t.test('the pre-flushed pool reuses buffers by allocation parameters', async (t) => {
  const reuse = new PreflushedPool({ maxBytes: 4 * 1024 * 1024 });
  const mk = () => {
    const r = new BufferRequest({ width: 320, height: 240, formats: [XR24], pool: sys.pool, importer, reuse });
    r.attach(scanout);
    r.attach(cpuConstraint('write'));
    return r;
  };
  const a = mk();
  a.beginCpuAccess('write').fill(7);
  a.endCpuAccess();
  a.close();
  t.equal(liveBackings(), 1, 'kept by the pool');
  const b = mk();
  const v = b.beginCpuAccess('read');
  t.equal(v[0], 7, 'the same memory came back');
  b.endCpuAccess();
  t.same({ hits: reuse.stats.hits, misses: reuse.stats.misses }, { hits: 1, misses: 1 });
  t.equal(liveBackings(), 1, 'no second allocation');
  b.close();
  reuse.close();
  t.equal(liveBackings(), 0);
});

t.test('primebuf solve on the live devices (no device file): card0 read live, allocators found here', async (t) => {
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'solve', '--json', '--use', 'card0:scanout', '--use', 'renderD128:texture', '--size', '1280x720', '--format', 'NV12,XRGB8888'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.allocatorsAssumed, false, 'allocators were found, not assumed');
  t.equal(out.plan.chosen.allocator, 'dumb@card0');
  t.equal(out.plan.chosen.format, 'XRGB8888', 'NV12 is left out: no vkms plane takes it');
  t.match(out.constraints.members[0].source, /live \/dev\/dri\/card0/);
  t.match(out.constraints.members[1].source, /vgem/);
  t.same(out.plan.candidates.map((c: { allocator: string }) => c.allocator).sort(), ['dma-heap:cma', 'dma-heap:system', 'dumb@card0', 'dumb@card1', 'udmabuf']);
});

t.test('GBM where present: gbm@card0 joins the pool (opt-in) and makes a LINEAR buffer vkms scans out', async (t) => {
  const withGbm = openSystemAllocators({ cards: ['card0'], gbm: true });
  try {
    const gbm = withGbm.pool.get('gbm@card0');
    t.ok(gbm, `gbm@card0 is in the pool${gbm ? '' : `: ${withGbm.pool.missing.find((m) => m.name === 'gbm@card0')?.reason}`}`);
    if (!gbm) return;
    const vk = withGbm.devices.get('card0')!;
    const req = new BufferRequest({ width: 320, height: 200, formats: [XR24], pool: new AllocatorPool([gbm]) });
    req.attach(scanoutConstraint(describeKmsDevice(vk)));
    req.attach(cpuConstraint('write'));
    const d = req.allocate();
    t.equal(d.allocator, 'gbm@card0');
    t.equal(d.modifier, DRM_FORMAT_MOD_LINEAR);
    req.beginCpuAccess('write').fill(0x5a, 0, 4);
    req.endCpuAccess();
    req.deviceAccess('card0');
    const fd = req.exportFd();
    const h = vk.importDmabuf(fd.fd);
    fd.close();
    const fb = Framebuffer.create(vk, { width: 320, height: 200, format: XR24, modifier: d.modifier, planes: [{ handle: h, pitch: Number(d.planes[0]!.pitch) }] });
    t.ok(fb.id > 0, 'AddFB2 of the GBM buffer on vkms');
    fb.close();
    h.close();
    req.close();
  } finally {
    withGbm.close();
  }
});

/** Every allocator of the pool plus GBM on card0 (opt-in), each with the pool it belongs to closed by the caller. */
function allAllocators(): { allocators: PoolAllocator[]; close(): void } {
  const withGbm = openSystemAllocators({ cards: ['card0'], gbm: true });
  const gbm = withGbm.pool.get('gbm@card0') as PoolAllocator | undefined;
  if (!gbm) throw new Error(`gbm@card0 missing: ${withGbm.pool.missing.find((m) => m.name === 'gbm@card0')?.reason}`);
  return { allocators: [...(sys.pool.allocators as PoolAllocator[]), gbm], close: () => withGbm.close() };
}

/** What a fault may leave behind: fds, GEM handles (primebuf's count and the kernel's), GBM bos, backings. */
function state() {
  return { ...snapshot(), backings: liveBackings() };
}

// The step after the allocation fails (a test hook in allocators.ts `settle`, where a real
// failure after the backend made its buffer goes): the dma-buf, the dumb buffer or GBM bo that
// keeps its memory, and the GEM handles on the device must all be closed. The hook also looks
// at what existed at the fault, so the test proves there was something to release.
t.test('a failure after the dma-buf was made closes it and what keeps it alive (dumb, heap, udmabuf, GBM)', async (t) => {
  const all = allAllocators();
  t.teardown(() => {
    delete allocTestHooks.afterDmabuf;
    all.close();
  });
  for (const a of all.allocators) {
    const before = state();
    let atFault: ReturnType<typeof state> | undefined;
    const calls: string[] = [];
    allocTestHooks.afterDmabuf = (name) => {
      calls.push(name);
      atFault = state();
      throw new SystemError('the step after the allocation failed (injected)', { code: 'ENOMEM', errno: 12, syscall: 'test hook' });
    };
    t.throws(() => new AllocatorPool([a]).allocate(merge(scanout), { width: 64, height: 64, formats: [XR24] }), { code: 'ENOMEM', syscall: 'test hook' }, `${a.caps.name}: the injected error reaches the caller`);
    delete allocTestHooks.afterDmabuf;
    t.same(calls, [a.caps.name], `${a.caps.name}: the fault came after the backend made the buffer`);
    t.ok(atFault !== undefined && atFault.fds > before.fds, `${a.caps.name}: at the fault its dma-buf fd was open (${atFault?.fds} fds, ${before.fds} before)`);
    if (a.caps.kind === 'dumb' || a.caps.kind === 'gbm') {
      const dev = a.caps.kind === 'gbm' ? 'card0' : a.caps.device!;
      const grew = Object.entries(atFault?.kernelGemHandles ?? {}).some(([k, hs]) => k.endsWith(`/dev/dri/${dev}`) && hs.length > (before.kernelGemHandles[k]?.length ?? 0));
      t.ok(grew, `${a.caps.name}: at the fault the kernel had a new GEM handle on ${dev}`);
    }
    assertBack(t, before, a.caps.name);
    t.equal(liveBackings(), before.backings, `${a.caps.name}: no backing counted`);
  }
});

/** The most fds this process may have open (RLIMIT_NOFILE soft limit, /proc/self/limits). */
function fdLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return Number(m![1]);
}

/**
 * Runs `fn` with only `free` fd numbers left (the rest taken by dups of /dev/null), so the
 * kernel refuses the (free+1)-th fd that `fn` makes with EMFILE. Returns what fn returned or threw.
 */
function withFreeFds<T>(free: number, fn: () => T): { value?: T; error?: unknown } {
  const nul = openSync('/dev/null', 'r');
  const fillers: number[] = [];
  try {
    for (;;) {
      try {
        fillers.push(native.dupFd(nul));
      } catch (err) {
        if ((err as SystemError).code !== 'EMFILE') throw err;
        break;
      }
    }
    for (let i = 0; i < free; i++) native.closeFd(fillers.pop()!);
    try {
      return { value: fn() };
    } catch (error) {
      return { error };
    }
  } finally {
    for (const f of fillers) native.closeFd(f);
    closeSync(nul);
  }
}

// Real kernel failures at every step that makes an fd: with 0, 1, 2, ... fd numbers left, the
// allocation fails with EMFILE at its first, second, ... fd, until it has all it needs. Each
// failure must leave nothing behind. Steps: dumb = CREATE_DUMB (no fd), PRIME export; heap =
// DMA_HEAP_IOCTL_ALLOC; udmabuf = memfd, UDMABUF_CREATE (the memfd is closed on failure);
// GBM = gbm_bo_create and its plane fd (native), the bo's import, the backing's dup.
t.test('EMFILE at each fd an allocation makes leaves nothing behind', async (t) => {
  t.ok(fdLimit() <= 65536, `RLIMIT_NOFILE ${fdLimit()}: small enough to fill`);
  const all = allAllocators();
  t.teardown(() => all.close());
  const needs: Record<string, number> = {};
  for (const a of all.allocators) {
    const outcomes: string[] = [];
    for (let free = 0; free <= 6; free++) {
      const before = state();
      const r = withFreeFds(free, () => new AllocatorPool([a]).allocate(merge(scanout), { width: 64, height: 64, formats: [XR24] }).backing);
      if (r.error !== undefined) {
        t.match(r.error, { code: 'EMFILE' }, `${a.caps.name}, ${free} fds free: EMFILE (${(r.error as Error).message})`);
        outcomes.push(`${free}: ${(r.error as SystemError).syscall ?? (r.error as Error).message}`);
        assertBack(t, before, `${a.caps.name} after EMFILE with ${free} fds free`);
        t.equal(liveBackings(), before.backings, `${a.caps.name}: no backing counted`);
        continue;
      }
      outcomes.push(`${free}: allocated`);
      r.value!.close();
      assertBack(t, before, `${a.caps.name} allocated and closed`);
      needs[a.caps.name] = free;
      break;
    }
    t.comment(`${a.caps.name}: ${outcomes.join('; ')}`);
  }
  t.same(needs, { 'dumb@card0': 1, 'dumb@card1': 1, 'dma-heap:system': 1, udmabuf: 2, 'gbm@card0': 2 }, 'fds an allocation needs: every one of them was refused once');
});

t.test('a dumb buffer whose PRIME export fails is destroyed with its GEM handle', async (t) => {
  const real = DumbBuffer.prototype.exportDmabuf;
  DumbBuffer.prototype.exportDmabuf = () => {
    throw new SystemError('PRIME export refused (injected)', { code: 'ENOMEM', errno: 12, syscall: 'DRM_IOCTL_PRIME_HANDLE_TO_FD' });
  };
  try {
    for (const a of sys.pool.allocators.filter((x) => x.caps.kind === 'dumb')) {
      const fds = testNative.countOpenFds();
      const gem = liveGemHandleCount();
      t.throws(() => new AllocatorPool([a]).allocate(merge(scanout), { width: 64, height: 64, formats: [XR24] }), SystemError, `${a.caps.name}: the export's error`);
      t.equal(liveGemHandleCount(), gem, `${a.caps.name}: the dumb buffer's GEM handle was closed`);
      t.equal(testNative.countOpenFds(), fds, `${a.caps.name}: no fd left`);
      t.equal(liveBackings(), 0, `${a.caps.name}: no backing counted`);
    }
  } finally {
    DumbBuffer.prototype.exportDmabuf = real;
  }
});

t.test('no leaks: fds, GEM handles, framebuffers, buffers', async (t) => {
  sys.close();
  render.close();
  t.equal(liveBackings(), 0);
  t.equal(liveFramebufferCount(), 0);
  t.equal(liveGemHandleCount(), 0);
  t.equal(testNative.countOpenFds(), fdsAtStart, 'every fd opened was closed');
  t.ok(merge(scanout).ok);
});
