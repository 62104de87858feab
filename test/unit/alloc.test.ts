// Allocation policy on the host with injected fake allocators: the pool's choice and its
// reasons, deferred allocation, late attach (import / EBUSY / re-allocation with the content
// carried over), cache-domain sync counts and the pre-flushed pool.
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { BufferBusyError, ConstraintConflictError, cpuConstraint, merge, renderNodeConstraint, type DeviceConstraint } from '../../src/constraints/index.js';
import { declared } from '../../src/constraints/device.js';
import {
  AllocatorPool,
  BufferRequest,
  CacheDomainTracker,
  CacheDomainError,
  PreflushedPool,
  type ReallocationEvent,
  type SyncFlags,
} from '../../src/alloc/index.js';
import { allocationKey } from '../../src/alloc/preflushed.js';
import { dumbCaps, gbmCaps, heapCaps, udmabufCaps } from '../../src/alloc/catalog.js';
import { FakeAllocator, type FakeBacking } from './fake-alloc.js';

const XR24 = fourcc('XRGB8888');
const NV12 = fourcc('NV12');
const Y_TILED = 0x0100000000000002n;

const lin = (...fs: number[]) => FormatSet.from(fs.map((f) => [f, DRM_FORMAT_MOD_LINEAR] as [number, bigint]));
const card0: DeviceConstraint = declared({ device: 'card0', usage: 'scanout', plane: 31, formats: lin(XR24, fourcc('ARGB8888')), maxWidth: 8192, maxHeight: 8192 });
const vgem = renderNodeConstraint('renderD128', 'vgem');
const recorder = declared({ device: 'encoder', usage: 'video-encode', formats: lin(XR24, NV12), contiguous: true, pitchAlign: 256 });

function machine(opts: { cma?: boolean } = {}) {
  const dumb = new FakeAllocator(dumbCaps('card0'), { driverPitchAlign: 64 });
  const heap = new FakeAllocator(heapCaps('system'));
  const udmabuf = new FakeAllocator(udmabufCaps());
  const list = [dumb, heap, udmabuf];
  const cma = opts.cma ? new FakeAllocator(heapCaps('linux,cma')) : undefined;
  if (cma) list.push(cma);
  const pool = new AllocatorPool(list, opts.cma ? [] : [{ name: 'dma-heap:linux,cma', kind: 'dma-heap', reason: 'no CMA heap in /dev/dma_heap' }]);
  const all = () => list.flatMap((a) => a.made);
  return { dumb, heap, udmabuf, cma, pool, all };
}

t.test('pool: scanout + texture picks dumb@card0, and says why each allocator was or was not chosen', async (t) => {
  const { pool } = machine();
  const plan = pool.plan(merge(card0, vgem), { width: 1920, height: 1080, formats: [XR24] });
  t.ok(plan.ok);
  t.equal(plan.chosen!.allocator, 'dumb@card0');
  const by = Object.fromEntries(plan.candidates.map((c) => [c.allocator, c]));
  t.ok(by['dumb@card0']!.chosen);
  t.match(by['dumb@card0']!.reasons[0]!.detail, /allocates on the scanout device card0 \(-30\)/);
  t.ok(by['dma-heap:system']!.ok && !by['dma-heap:system']!.chosen, 'the heap could, but scores lower');
  t.match(by['udmabuf']!.reasons[0]!.detail, /udmabuf comes after the system heap/);
  t.notOk(by['dma-heap:linux,cma']!.ok);
  t.match(by['dma-heap:linux,cma']!.reasons[0]!.detail, /no CMA heap/);
});

t.test('pool: contiguous memory needs a CMA heap; without one every allocator says so', async (t) => {
  const without = machine().pool.plan(merge(recorder), { width: 1280, height: 720, formats: [NV12] });
  t.notOk(without.ok);
  t.ok(without.candidates.filter((c) => c.allocator !== 'dma-heap:linux,cma').every((c) => c.reasons.some((r) => r.code === 'CONTIGUOUS')));
  t.match(without.message, /dumb@card0 does not give physically contiguous memory, which encoder need\(s\)/);
  const withCma = machine({ cma: true }).pool.plan(merge(recorder), { width: 1280, height: 720, formats: [NV12] });
  t.ok(withCma.ok);
  t.equal(withCma.chosen!.allocator, 'dma-heap:linux,cma');
  t.equal(withCma.chosen!.layout.planes[0]!.pitch, 1280n, 'pitch aligned to 256');
});

t.test('pool: a GBM allocator wins when every device takes a tiled modifier; udmabuf has a size limit', async (t) => {
  const gbm = new FakeAllocator(gbmCaps('card0'), { modifiers: [DRM_FORMAT_MOD_LINEAR, Y_TILED] });
  const heap = new FakeAllocator(heapCaps('system'));
  const pool = new AllocatorPool([heap, gbm]);
  const tiled = FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR], [XR24, Y_TILED]]);
  const a = declared({ device: 'gpu', usage: 'render', formats: tiled });
  const b = declared({ device: 'card0', usage: 'scanout', plane: 32, formats: tiled });
  const plan = pool.plan(merge(a, b), { width: 1920, height: 1080, formats: [XR24] });
  t.equal(plan.chosen!.allocator, 'gbm@card0');
  t.equal(plan.chosen!.modifier, Y_TILED);
  const small = new AllocatorPool([new FakeAllocator(udmabufCaps(1024n * 1024n))]);
  const p2 = small.plan(merge(vgem), { width: 1920, height: 1080, formats: [XR24] });
  t.notOk(p2.ok);
  t.match(p2.message, /udmabuf allocates at most 1048576 bytes; XRGB8888 as LINEAR needs 8294400/);
});

t.test('BufferRequest: nothing is allocated until the first export; then the chosen allocator made it', async (t) => {
  const m = machine();
  const req = new BufferRequest({ width: 640, height: 480, formats: [XR24], pool: m.pool });
  req.attach(card0);
  req.attach(vgem);
  t.equal(req.state, 'pending');
  t.equal(m.all().length, 0, 'no allocation yet');
  t.equal(req.plan().chosen!.allocator, 'dumb@card0', 'the dry run says what will happen');
  const fd = req.exportFd();
  t.equal(req.state, 'allocated');
  t.equal(m.dumb.made.length, 1);
  t.equal(req.description!.planes[0]!.pitch % 64n, 0n, 'driver pitch');
  fd.close();
  req.close();
  t.equal(m.dumb.open, 0, 'closed on close() (no reuse pool)');
});

t.test('BufferRequest: a pending attach that makes the set impossible is refused with reasons', async (t) => {
  const m = machine();
  const req = new BufferRequest({ width: 640, height: 480, formats: [XR24], pool: m.pool });
  req.attach(card0);
  const nv12only = declared({ device: 'encoder', usage: 'video-encode', formats: lin(NV12) });
  const err = t.throws(() => req.attach(nv12only)) as unknown as ConstraintConflictError;
  t.ok(err instanceof ConstraintConflictError);
  t.equal(err.code, 'ERR_PRIMEBUF_CONSTRAINTS');
  t.same([...new Set(err.reasons.map((r) => r.device))].sort(), ['card0', 'encoder']);
  t.same(req.constraints.members.map((x) => x.device), ['card0'], 'the refused device is not attached');
});

t.test('BufferRequest: late compatible attach imports; late incompatible attach -> EBUSY with reasons', async (t) => {
  const m = machine();
  const imports: string[] = [];
  const closes: string[] = [];
  const req = new BufferRequest({
    width: 600,
    height: 480,
    formats: [XR24],
    pool: m.pool,
    importer: (c) => {
      imports.push(c.device);
      return { close: () => closes.push(c.device) };
    },
  });
  req.attach(card0);
  req.allocate();
  t.same(imports, ['card0'], 'attached devices import on allocation');
  req.attach(vgem);
  t.same(imports, ['card0', 'renderD128'], 'a late compatible attach just imports');
  t.equal(m.all().length, 1, 'no new allocation');
  const err = t.throws(() => req.attach(recorder)) as unknown as BufferBusyError;
  t.ok(err instanceof BufferBusyError);
  t.equal(err.code, 'EBUSY');
  t.equal(err.errno, 16);
  t.same(err.reasons.map((r) => r.code).sort(), ['CONTIGUOUS', 'PITCH']);
  t.ok(err.reasons.every((r) => r.device === 'encoder' && r.usage === 'video-encode'));
  t.match(err.message, /needs physically contiguous memory; the buffer came from dumb@card0/);
  t.equal(req.constraints.members.length, 2, 'the busy attach changed nothing');
  req.close();
  t.same(closes.sort(), ['card0', 'renderD128'], 'imports are closed');
});

t.test('BufferRequest: re-allocation carries the content over and tells the owner (preview, then record)', async (t) => {
  const m = machine({ cma: true });
  const events: ReallocationEvent[] = [];
  const req = new BufferRequest({ width: 64, height: 32, formats: [XR24, NV12], pool: m.pool, onIncompatibleAttach: 'reallocate', onReallocate: (e) => events.push(e) });
  req.attach(card0);
  req.attach(cpuConstraint('write'));
  const px = req.beginCpuAccess('write');
  const pitch = Number(req.description!.planes[0]!.pitch);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 64 * 4; x++) px[y * pitch + x] = (x * 7 + y * 13) & 0xff;
  req.endCpuAccess();
  req.deviceAccess('card0');
  const first = req.description!;
  t.equal(first.allocator, 'dumb@card0');
  const att = req.attach(recorder);
  t.ok(att.reallocation, 'the attach says it re-allocated');
  t.equal(events.length, 1, 'the owner was told once');
  const ev = events[0]!;
  t.equal(ev.copied, true);
  t.equal(ev.before.allocator, 'dumb@card0');
  t.equal(ev.after.allocator, 'dma-heap:linux,cma');
  t.ok(ev.reasons.some((r) => r.code === 'CONTIGUOUS'), 'why the old buffer could not serve');
  const after = req.description!;
  t.equal(after.planes[0]!.pitch % 256n, 0n);
  const view = req.beginCpuAccess('read');
  const np = Number(after.planes[0]!.pitch);
  let same = true;
  for (let y = 0; y < 32 && same; y++) for (let x = 0; x < 64 * 4; x++) if (view[y * np + x] !== ((x * 7 + y * 13) & 0xff)) { same = false; break; }
  req.endCpuAccess();
  t.ok(same, 'every visible byte carried over (pitch changed from ' + pitch + ' to ' + np + ')');
  t.equal(m.dumb.open, 0, 'the old buffer was released');
  t.equal(req.reallocations, 1);
  req.close();
  t.equal(m.all().filter((b) => !b.closed).length, 0, 'no leaks');
});

t.test('cache domains: a sync only where the CPU touches the buffer between device accesses', async (t) => {
  const log: SyncFlags[] = [];
  const tr = new CacheDomainTracker((f) => log.push(f));
  tr.deviceAccess('gpu'); // device -> device: free
  tr.deviceAccess('card0');
  t.same(tr.counts, { starts: 0, ends: 0, skipped: 2 });
  tr.beginCpu('write');
  tr.endCpu();
  tr.beginCpu('write'); // bracket still open: free
  tr.endCpu();
  t.same(tr.counts, { starts: 1, ends: 0, skipped: 3 });
  tr.beginCpu('read'); // read needs a wider START
  tr.endCpu();
  tr.deviceAccess('card0'); // END once
  t.same(log, [
    { phase: 'start', read: false, write: true },
    { phase: 'start', read: true, write: true },
    { phase: 'end', read: true, write: true },
  ]);
  t.same(tr.counts, { starts: 2, ends: 1, skipped: 3 });
  t.equal(tr.domain, 'device');
  tr.beginCpu('read');
  t.throws(() => tr.deviceAccess('card0'), CacheDomainError, 'a device cannot take it mid-CPU-access');
  tr.endCpu();
  t.ok(tr.flush(), 'flush ends the open bracket');
  t.notOk(tr.flush(), 'and is free when nothing is open');
  t.throws(() => tr.endCpu(), CacheDomainError);
});

t.test('BufferRequest sync counts follow the accesses made', async (t) => {
  const m = machine();
  const req = new BufferRequest({ width: 64, height: 64, formats: [XR24], pool: m.pool });
  req.attach(card0);
  req.attach(cpuConstraint('write'));
  for (let frame = 0; frame < 3; frame++) {
    req.beginCpuAccess('write');
    req.endCpuAccess();
    req.deviceAccess('card0');
    req.deviceAccess('renderD128');
  }
  t.same(req.syncCounts, { starts: 3, ends: 3, skipped: 3 }, '3 frames: START/END each, the second device free');
  const b = m.dumb.made[0]! as FakeBacking;
  t.equal(b.syncs.length, 6, 'the backing saw exactly those ioctls');
  req.close();
});

t.test('pre-flushed pool: reuse by allocation parameters, flushed on return, bounded in bytes', async (t) => {
  const m = machine();
  const reuse = new PreflushedPool({ maxBytes: 2 * 640 * 480 * 4 + 4096 });
  const mk = () => {
    const r = new BufferRequest({ width: 640, height: 480, formats: [XR24], pool: m.pool, reuse });
    r.attach(card0);
    r.attach(cpuConstraint('write'));
    return r;
  };
  const a = mk();
  a.beginCpuAccess('write');
  a.endCpuAccess();
  const backingA = m.dumb.made[0]!;
  a.close(); // CPU bracket open: the pool flushes it
  t.same(backingA.syncs.map((s) => s.phase), ['start', 'end'], 'flushed before resting');
  t.notOk(backingA.closed, 'kept, not closed');
  t.same({ ...reuse.stats, bytes: Number(reuse.stats.bytes) }, { hits: 0, misses: 1, evictions: 0, buffers: 1, bytes: Number(backingA.description.size), maxBytes: reuse.maxBytes });
  const b = mk();
  b.deviceAccess('card0');
  t.equal(m.dumb.made.length, 1, 'the second request reused the buffer');
  t.equal(reuse.stats.hits, 1);
  t.same(b.syncCounts, { starts: 1, ends: 1, skipped: 1 }, 'its first device access cost nothing');
  // Different parameters do not hit.
  const c = new BufferRequest({ width: 320, height: 240, formats: [XR24], pool: m.pool, reuse });
  c.attach(card0);
  c.allocate();
  t.equal(reuse.stats.misses, 2);
  // Over budget: the oldest is closed.
  const d = mk();
  d.allocate();
  const e = mk();
  e.allocate();
  b.close();
  d.close();
  e.close();
  t.ok(reuse.stats.bytes <= reuse.maxBytes, 'within the byte budget');
  t.ok(reuse.stats.evictions >= 1, 'something was evicted');
  c.close();
  reuse.close();
  t.equal(m.all().filter((x) => !x.closed).length, 0, 'pool close() releases everything');
  t.equal(reuse.stats.buffers, 0);
});

t.test('allocation keys differ with every parameter that changes the buffer', async (t) => {
  const { pool } = machine();
  const p1 = pool.plan(merge(card0), { width: 640, height: 480, formats: [XR24] }).chosen!;
  const p2 = pool.plan(merge(card0), { width: 640, height: 481, formats: [XR24] }).chosen!;
  const p3 = pool.plan(merge(card0, declared({ device: 'x', usage: 'texture', pitchAlign: 4096 })), { width: 640, height: 480, formats: [XR24] }).chosen!;
  t.not(allocationKey(p1), allocationKey(p2));
  t.not(allocationKey(p1), allocationKey(p3));
  t.equal(allocationKey(p1), allocationKey(pool.plan(merge(card0), { width: 640, height: 480, formats: [XR24] }).chosen!));
});

t.test('pool: a driver-laid-out buffer that misses an alignment is freed and the next allocator tried', async (t) => {
  const dumb = new FakeAllocator(dumbCaps('card0'), { pitchSkew: 4 });
  const heap = new FakeAllocator(heapCaps('system'));
  const pool = new AllocatorPool([dumb, heap]);
  const aligned = { ...card0, pitchAlign: 256 };
  const m = merge(aligned, vgem);
  t.equal(pool.plan(m, { width: 600, height: 400, formats: [XR24] }).chosen!.allocator, 'dumb@card0', 'the plan prefers dumb@card0');
  const { plan, backing } = pool.allocate(m, { width: 600, height: 400, formats: [XR24] });
  t.equal(plan.chosen!.allocator, 'dma-heap:system', 'the allocation actually made is reported');
  t.equal(backing.description.allocator, 'dma-heap:system');
  t.ok(dumb.made[0]!.closed, 'the misfit was freed');
  backing.close();
  const onlyDumb = new AllocatorPool([new FakeAllocator(dumbCaps('card0'), { pitchSkew: 4 })]);
  const err = t.throws(() => onlyDumb.allocate(m, { width: 600, height: 400, formats: [XR24] })) as unknown as ConstraintConflictError;
  t.ok(err instanceof ConstraintConflictError);
  t.match(err.message, /dumb@card0 made a buffer that does not fit: .*needs pitches aligned to 256 bytes/);
});
