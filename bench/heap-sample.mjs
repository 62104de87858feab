// A preload (node --import) that records where a process allocates JavaScript heap, garbage
// included: V8's sampling heap profiler through the inspector, with the objects that scavenges
// and mark-compacts collected kept in the profile (node --heap-prof keeps only those still live,
// which hides per-frame garbage). Sampling starts $PRIMEBUF_HEAP_SAMPLE_AFTER seconds after start
// (default 5: past start-up) and the profile is written at exit to $PRIMEBUF_HEAP_SAMPLE
// (a .heapprofile: bench/heap-top.mjs DIR lists its top sites).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const file = process.env.PRIMEBUF_HEAP_SAMPLE;
if (file) {
  const session = new Session();
  session.connect();
  let on = false;
  setTimeout(() => {
    session.post('HeapProfiler.startSampling', { samplingInterval: Number(process.env.PRIMEBUF_HEAP_SAMPLE_INTERVAL ?? 128), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }, (err) => {
      if (err) console.error(`heap-sample: ${err.message}`);
      else on = true;
    });
  }, Number(process.env.PRIMEBUF_HEAP_SAMPLE_AFTER ?? 5) * 1000).unref();
  process.on('exit', () => {
    if (!on) return;
    session.post('HeapProfiler.stopSampling', (err, r) => {
      if (err) console.error(`heap-sample: ${err.message}`);
      else writeFileSync(file, JSON.stringify(r.profile));
    });
  });
}
