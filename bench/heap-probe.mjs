// A preload (node --import) for the benchmark's kiosk processes (bench/kiosk-vs-weston.mjs): the
// JavaScript heap this process has allocated so far, appended as one JSON line to
// $PRIMEBUF_HEAP_PROBE on every SIGUSR2, so the benchmark can take the bytes allocated over its
// window of frames from two probes, at the window's first and last frame.
//
// The measure: bytes allocated in V8's young generation (new_space and new_large_object_space,
// where V8 allocates every new JavaScript object; only objects that survive are moved to the old
// generation later, so counting the young generation counts each allocation once). At any instant
//   allocated = young bytes in use now + Σ over every collection so far (young in use before it -
//   young in use after it),
// with each collection's before and after taken by V8 itself (v8.GCProfiler records the heap's
// spaces at the start and end of every GC). That is exact whenever the collections come: a
// scavenge moves bytes out of the count of what is in use and into the sum, so the result does
// not depend on the semi-space size or on when V8 decides to collect (no GC timing bias), unlike
// a count of scavenges times a semi-space size. Not counted: objects V8 allocates straight into
// the old generation (pretenured allocation sites, which are objects that survive anyway) and
// memory outside the JS heap (Buffers' backing stores, the addon's).
//
// The probe's own work does not count: the bytes the whole SIGUSR2 dispatch allocates (this
// handler, and any other, e.g. bench/kiosk-camera.mjs's, which answers the same signal) are
// measured around it and subtracted (with what the last measuring call allocates after its own
// sample, measured once at start). The profiler is stopped and started again at each probe; a
// collection in the few instructions between the two would be missed (it would need the young
// generation to fill in that instant).
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.PRIMEBUF_HEAP_PROBE;
if (file) {
  const YOUNG = new Set(['new_space', 'new_large_object_space']);
  /** young bytes in use: getHeapSpaceStatistics() (snake_case) */
  const youngNow = () => {
    let n = 0;
    for (const s of v8.getHeapSpaceStatistics()) if (YOUNG.has(s.space_name)) n += s.space_used_size;
    return n;
  };
  /** young bytes in use in a GCProfiler record (camelCase) */
  const youngOf = (h) => h.heapSpaceStatistics.reduce((n, s) => n + (YOUNG.has(s.spaceName) ? s.spaceUsedSize : 0), 0);
  let collected = 0; // Σ (before - after) of the young generation over the collections so far
  let scavenges = 0;
  let others = 0; // mark-compacts and the rest
  let probeBytes = 0; // allocated by the SIGUSR2 dispatches themselves
  let n = 0;
  let profiler = new v8.GCProfiler();
  profiler.start();
  const take = () => {
    const r = profiler.stop();
    profiler = new v8.GCProfiler();
    profiler.start();
    for (const g of r?.statistics ?? []) {
      collected += youngOf(g.beforeGC) - youngOf(g.afterGC);
      if (g.gcType === 'Scavenge' || g.gcType === 'MinorMarkCompact' || g.gcType === 'MinorMarkSweep') scavenges++;
      else others++;
    }
  };
  // youngNow() first: V8 reads the spaces before it builds the objects it returns, so the bytes a
  // call allocates come after its sample (the next sample counts them)
  const allocated = () => {
    const y = youngNow();
    take();
    return y + collected;
  };
  // what one allocated() allocates after its sample: the least of a few back-to-back pairs
  let tail = Infinity;
  for (let i = 0; i < 5; i++) {
    const a = allocated();
    tail = Math.min(tail, allocated() - a);
  }
  const emit = process.emit;
  process.emit = function (event, ...args) {
    if (event !== 'SIGUSR2') return emit.call(this, event, ...args);
    const before = allocated();
    appendFileSync(file, JSON.stringify({ n: ++n, allocated: before - probeBytes, scavenges, others, probeBytes }) + '\n');
    const ret = emit.call(this, event, ...args);
    // everything from the first sample to the end of the last call is the probe's
    probeBytes += Math.max(0, allocated() - before) + tail;
    return ret;
  };
  // after the patch: Node binds the signal to process.emit as it is when the first listener comes;
  // before any other listener: SIGUSR2's default would end the process
  process.on('SIGUSR2', () => {});
}
