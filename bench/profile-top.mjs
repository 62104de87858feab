// Top self times of the .cpuprofile files in a folder (node --cpu-prof output):
//   node bench/profile-top.mjs DIR [N]
import { readFileSync, readdirSync } from 'node:fs';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 30);
for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
    const dt = p.timeDeltas[i] ?? 0;
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  });
  console.log(JSON.stringify({ profile: f, totalMs: Math.round(total / 1000) }));
  for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log((t / 1000).toFixed(1).padStart(8), k);
}

// where the named functions (argv[4..], comma-separated) were called from
const want = (process.argv[4] ?? '').split(',').filter(Boolean);
for (const f of want.length ? readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')) : []) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const dt = new Map();
  p.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  for (const w of want) {
    const stacks = new Map();
    for (const [id, t] of dt) {
      if (byId.get(id).callFrame.functionName !== w) continue;
      const chain = [];
      for (let q = parent.get(id); q && chain.length < 5; q = parent.get(q)) {
        const m = byId.get(q);
        chain.push(`${m.callFrame.functionName || '(anon)'}@${m.callFrame.url.split('/').pop()}:${m.callFrame.lineNumber}`);
      }
      stacks.set(chain.join(' < '), (stacks.get(chain.join(' < ')) ?? 0) + t);
    }
    console.log(`== ${w}`);
    for (const [k, t] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 3)) console.log((t / 1000).toFixed(1).padStart(8), k);
  }
}
