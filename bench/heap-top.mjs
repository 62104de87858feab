// Top allocation sites of the .heapprofile files in a folder (node --heap-prof output: V8's
// sampling heap profiler, bytes still live or not at the sample), each with its callers:
//   node bench/heap-top.mjs DIR [N]
import { readFileSync, readdirSync } from 'node:fs';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 30);
const where = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
for (const f of readdirSync(dir).filter((x) => x.endsWith('.heapprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const self = new Map();
  const stacks = new Map();
  let total = 0;
  const walk = (n, chain) => {
    const k = where(n);
    if (n.selfSize > 0) {
      self.set(k, (self.get(k) ?? 0) + n.selfSize);
      const s = chain.slice(-4).reverse().join(' < ');
      const m = stacks.get(k) ?? new Map();
      m.set(s, (m.get(s) ?? 0) + n.selfSize);
      stacks.set(k, m);
      total += n.selfSize;
    }
    for (const c of n.children ?? []) walk(c, [...chain, k]);
  };
  walk(p.head, []);
  console.log(JSON.stringify({ profile: f, sampledBytes: total }));
  for (const [k, b] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${String(b).padStart(10)} ${k}`);
    for (const [s, x] of [...stacks.get(k)].sort((a, b) => b[1] - a[1]).slice(0, 2)) console.log(`${''.padStart(14)}${String(x).padStart(9)} < ${s}`);
  }
}
