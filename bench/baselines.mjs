#!/usr/bin/env node
// Writes bench/baselines.json from benchmark JSON lines (stdin or files): per case, its figures
// over the runs, the median as the baseline and the spread. Only lines in
// instruction time (clock "icount") with a "case" count; kiosk lines give cpuMsPerFrame, the
// floor's cpuMsPerFlip. spread = (slowest run - median) / median: how far above its baseline a run
// of the same code went (range = (max - min) / median is kept beside it).
//   npm run bench:kiosk -- --runs 5 | tee kiosk.jsonl; npm run bench:floor ... | tee floor.jsonl
//   node bench/baselines.mjs kiosk.jsonl floor.jsonl [--note TEXT]     (then commit the file)
// Lowering one case by hand is the same: edit its msPerFrame (and runs) and commit.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BASELINES_PATH } from './clock.mjs';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { note: { type: 'string' } } });
const text = positionals.length ? positionals.map((f) => readFileSync(f, 'utf8')).join('\n') : readFileSync(0, 'utf8');
const byCase = new Map();
for (const l of text.split('\n')) {
  if (!l.startsWith('{')) continue;
  const o = JSON.parse(l);
  if (o.clock !== 'icount' || typeof o.case !== 'string' || o.error) continue;
  const ms = o.cpuMsPerFrame ?? o.cpuMsPerFlip;
  if (typeof ms !== 'number') continue;
  if (!byCase.has(o.case)) byCase.set(o.case, []);
  byCase.get(o.case).push({ ms, user: o.userMsPerFrame ?? o.userMsPerFlip, sys: o.sysMsPerFrame ?? o.sysMsPerFlip, frames: o.frames ?? o.flips, client: o.client, compositor: o.compositor });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r = (x) => +x.toFixed(4);
const cases = {};
for (const [name, runs] of [...byCase].sort(([a], [b]) => a.localeCompare(b))) {
  const ms = runs.map((x) => x.ms);
  const m = median(ms);
  cases[name] = {
    msPerFrame: r(m),
    // how far above the baseline a run of the same code went: what the budget allows beyond it
    spread: r((Math.max(...ms) - m) / m),
    range: r((Math.max(...ms) - Math.min(...ms)) / m),
    runs: ms.map(r),
    userMsPerFrame: runs[0].user === undefined ? null : r(median(runs.map((x) => x.user))),
    sysMsPerFrame: runs[0].sys === undefined ? null : r(median(runs.map((x) => x.sys))),
    frames: Math.min(...runs.map((x) => x.frames)),
    // a window under the benchmark's 800 frames (the camera: vivid draws ~5 frames a guest second)
    // is also the budget test's window for the case
    ...(Math.min(...runs.map((x) => x.frames)) < 800 ? { budgetFrames: Math.min(...runs.map((x) => x.frames)) } : {}),
    ...(runs[0].compositor ? { compositor: runs[0].compositor } : {}),
    ...(runs[0].client ? { client: runs[0].client } : {}),
  };
}
const out = {
  about: 'Instruction-time CPU per frame (ms: 1 ns per guest instruction under QEMU -icount shift=0,sleep=on) of the kiosk\'s ' +
    'cases and the flip floor, median of the runs; spread = (slowest run - median) / median, range = (max - min) / median. The budget test ' +
    '(test/budget/budget.test.ts) fails a kiosk case above msPerFrame x (1 + spread + 0.10). Written by bench/baselines.mjs; ' +
    'lowering a baseline is a commit (README, "Instruction time: the clock, the baselines and the per-frame budget").',
  clock: 'icount',
  ...(values.note ? { note: values.note } : {}),
  cases,
};
writeFileSync(BASELINES_PATH, JSON.stringify(out, null, 2) + '\n');
for (const [k, v] of Object.entries(cases)) console.log(`${k}: ${v.msPerFrame} ms, spread +${(v.spread * 100).toFixed(1)} % (range ${(v.range * 100).toFixed(1)} %) over ${v.runs.length} runs: ${v.runs.join(', ')}`);
