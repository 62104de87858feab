// bench/baselines.json (issue 19) is what the budget test judges the kiosk against: its figures
// must be what its runs say (the median, and the spread (slowest - median) / median), in instruction
// time, with the kiosk's cases from repeated runs; and the bound the benchmark prints beside a
// figure is the budget test's (baseline + spread + 10 %).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Case { msPerFrame: number; spread: number; runs: number[]; frames: number; budgetFrames?: number }
const file = JSON.parse(readFileSync(join(root, 'bench', 'baselines.json'), 'utf8')) as { clock: string; cases: Record<string, Case> };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

t.test('in instruction time, with the kiosk\'s cases', async (t) => {
  t.equal(file.clock, 'icount');
  for (const c of ['kiosk-shm-zero-copy', 'kiosk-shm-copy', 'kiosk-dmabuf-direct']) t.ok(file.cases[c], `${c} has a baseline`);
});

t.test('each figure is its runs\' median, each spread (slowest - median) / median', async (t) => {
  for (const [name, c] of Object.entries(file.cases)) {
    t.ok(c.runs.length >= 3, `${name}: ${c.runs.length} runs (at least 3)`);
    const m = median(c.runs);
    t.ok(Math.abs(c.msPerFrame - m) < 1e-3, `${name}: ${c.msPerFrame} = median ${m}`);
    const spread = (Math.max(...c.runs) - m) / m;
    t.ok(Math.abs(c.spread - spread) < 1e-3, `${name}: spread ${c.spread} = ${spread.toFixed(4)}`);
    if (name.startsWith('kiosk-') && name !== 'kiosk-camera') t.ok(c.frames >= 800, `${name}: ${c.frames} frames per run (at least 800)`);
  }
});

t.test('the bound beside a figure is baseline x (1 + spread + 0.10)', async (t) => {
  const { budgetLimit } = (await import(pathToFileURL(join(root, 'bench', 'clock.mjs')).href)) as { budgetLimit: (b: Case) => number };
  t.equal(budgetLimit({ msPerFrame: 1, spread: 0.05, runs: [], frames: 800 }), 1.15);
  t.equal(budgetLimit({ msPerFrame: 0.8, spread: 0, runs: [], frames: 800 }), 0.88);
  // a case made 20 % slower than its baseline is over the bound when its spread is under 10 %
  for (const [name, c] of Object.entries(file.cases)) {
    if (c.spread < 0.1) t.ok(c.msPerFrame * 1.2 > budgetLimit(c), `${name}: 20 % slower (${(c.msPerFrame * 1.2).toFixed(4)} ms) exceeds ${budgetLimit(c)} ms`);
  }
});
