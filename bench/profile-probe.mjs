// A preload (node --import) for profiling the benchmark's kiosk in its steady window
// (bench/kiosk-vs-weston.mjs sends SIGUSR2 at the window's first and last frame):
//   node bench/kiosk-vs-weston.mjs --cases kiosk-shm-zero-copy \
//     --node-args "--import $PWD/bench/profile-probe.mjs"
// With $PRIMEBUF_PROFILE set to a file name prefix: the first SIGUSR2 starts V8's sampling heap
// profiler (every allocated byte counted, collected objects included) and its CPU profiler, the
// second stops both and writes PREFIX.heap.txt and PREFIX.cpu.txt: the allocation sites by bytes
// and the functions by self time (a text summary each), plus the raw PREFIX.cpuprofile.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const prefix = process.env.PRIMEBUF_PROFILE;
if (prefix) {
  const session = new Session();
  session.connect();
  const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
  const where = (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules|lib)\//, '$1/')}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
  let n = 0;
  process.on('SIGUSR2', () => {
    n++;
    if (n === 1) {
      void (async () => {
        await post('HeapProfiler.enable');
        await post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        await post('Profiler.enable');
        await post('Profiler.setSamplingInterval', { interval: 100 });
        await post('Profiler.start');
      })();
    } else if (n === 2) {
      void (async () => {
        const { profile: heap } = await post('HeapProfiler.stopSampling');
        const { profile: cpu } = await post('Profiler.stop');
        // heap: self bytes per site, with the caller chain (3 frames)
        const sites = new Map();
        const walk = (node, stack) => {
          const s = [where(node.callFrame), ...stack].slice(0, 4);
          if (node.selfSize > 0) {
            const k = s.join(' < ');
            sites.set(k, (sites.get(k) ?? 0) + node.selfSize);
          }
          for (const c of node.children) walk(c, s);
        };
        walk(heap.head, []);
        const total = [...sites.values()].reduce((a, b) => a + b, 0);
        const lines = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 80).map(([k, v]) => `${String(v).padStart(10)} ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
        writeFileSync(`${prefix}.heap.txt`, `total sampled ${total} bytes\n${lines.join('\n')}\n`);
        // cpu: self time per function
        const byId = new Map(cpu.nodes.map((x) => [x.id, x]));
        const self = new Map();
        const dt = cpu.timeDeltas;
        for (let i = 0; i < cpu.samples.length; i++) {
          const node = byId.get(cpu.samples[i]);
          const k = where(node.callFrame);
          self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0));
        }
        const tot = [...self.values()].reduce((a, b) => a + b, 0);
        const cl = [...self].sort((a, b) => b[1] - a[1]).slice(0, 60).map(([k, v]) => `${(v / 1000).toFixed(1).padStart(9)} ms ${(100 * v / tot).toFixed(1).padStart(5)}%  ${k}`);
        writeFileSync(`${prefix}.cpu.txt`, `total ${(tot / 1000).toFixed(1)} ms\n${cl.join('\n')}\n`);
        writeFileSync(`${prefix}.cpuprofile`, JSON.stringify(cpu));
      })();
    }
  });
}
