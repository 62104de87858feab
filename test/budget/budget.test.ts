// The per-frame budget (issue 19): the kiosk's cases measured as `npm run bench:kiosk` measures
// them (bench/kiosk-vs-weston.mjs: a settle time, then 800 client frames, the compositor's CPU
// over the window per frame) in instruction time, against bench/baselines.json. A case fails when
// its figure exceeds its baseline by more than the spread measured over the baseline's runs plus
// 10 % (the spread: how far the slowest baseline run went above the median); a run over it is
// measured twice more and the median of the three decides; the failure names
// the case and both figures. Lowering a baseline is a commit (README, "Instruction time: the
// clock, the baselines and the per-frame budget").
//
// Instruction time needs the rig's --icount: `npm test` runs this file in its own VM with it
// (scripts/test.mjs), or by hand: node scripts/vkms-vm.mjs test --icount test/budget/budget.test.ts
// Outside icount it fails (a wall-clock figure under TCG moves 2x with the host's load: no budget
// can be judged on it).
// PRIMEBUF_BUDGET_SLOWER=0.2 runs the kiosk with PRIMEBUF_KIOSK_SLOWER=0.2 (compositor-example/
// slower.ts): every frame spins for 20 % of the kiosk's own CPU per frame, so every case costs 20 %
// more and must then fail (how the test is shown to catch a slower frame).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
// Each case boots a compositor and runs 800 frames in the emulated guest: minutes, not tap's 30 s.
t.setTimeout(900000);

/** budgetFrames: the budget's window when smaller than the benchmark's 800 (README, "Instruction time: the clock, the baselines and the per-frame budget"). */
interface Baseline { msPerFrame: number; spread: number; runs: number[]; frames: number; budgetFrames?: number }
interface Baselines { clock: string; cases: Record<string, Baseline> }
interface Line { case: string; clock: string; cpuMsPerFrame?: number; frames?: number; error?: string }

const baselines = JSON.parse(readFileSync(join(root, 'bench', 'baselines.json'), 'utf8')) as Baselines;
/** The kiosk's cases: the frame path primebuf is responsible for (the floor and the anchors are not budgeted). */
const cases = Object.keys(baselines.cases).filter((c) => c.startsWith('kiosk-'));
const slower = Number(process.env.PRIMEBUF_BUDGET_SLOWER ?? 0);
const FRAMES = 800;

function limitOf(b: Baseline): number {
  return b.msPerFrame * (1 + b.spread + 0.1);
}

/** One case through the benchmark; its JSON line. */
function bench(name: string): Promise<Line> {
  const b = baselines.cases[name]!;
  const env = { ...process.env };
  const frames = String(b.budgetFrames ?? FRAMES);
  const args = [join(root, 'bench', 'kiosk-vs-weston.mjs'), '--cases', name, name === 'kiosk-camera' ? '--camera-frames' : '--frames', frames];
  if (slower > 0) {
    env.PRIMEBUF_KIOSK_SLOWER = String(slower);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line).find((l) => l.case === name);
      if (!line) reject(new Error(`${name}: the benchmark printed no line for it (exit ${code}): ${err.slice(-1500)}`));
      else resolve(line);
    });
  });
}

t.test('the clock is instruction time (the rig\'s --icount)', async (t) => {
  t.equal(process.env.PRIMEBUF_VM_CLOCK, 'icount', 'PRIMEBUF_VM_CLOCK=icount: run this file with node scripts/vkms-vm.mjs test --icount');
  t.equal(baselines.clock, 'icount', 'bench/baselines.json is in instruction time');
});

t.test('bench/baselines.json has the kiosk\'s cases, each from repeated runs', async (t) => {
  for (const c of ['kiosk-shm-zero-copy', 'kiosk-shm-copy', 'kiosk-dmabuf-direct']) t.ok(cases.includes(c), `${c} has a baseline`);
  for (const c of cases) {
    const b = baselines.cases[c]!;
    t.ok(b.runs.length >= 3 && b.frames >= (b.budgetFrames ?? FRAMES), `${c}: ${b.runs.length} runs of ${b.frames} frames`);
    t.ok(b.msPerFrame > 0 && b.spread >= 0 && b.spread < 1, `${c}: ${b.msPerFrame} ms per frame, spread ${(b.spread * 100).toFixed(1)} %`);
  }
});

for (const name of cases) {
  t.test(`${name} within its budget${slower > 0 ? ` (made ${slower * 100} % slower on purpose)` : ''}`, async (t) => {
    if (process.env.PRIMEBUF_VM_CLOCK !== 'icount') return t.fail(`${name}: not measured: the clock is not icount`);
    const b = baselines.cases[name]!;
    const limit = limitOf(b);
    // One run decides when it is within the limit. A run over it is measured twice more and the
    // median of the three decides: a single run moves by up to half between VMs (README, "the
    // per-frame budget"), a kiosk made slower on purpose is slower in every run.
    const runs: number[] = [];
    while (runs.length === 0 || (runs.length < 3 && runs[0]! > limit)) {
      const line = await bench(name);
      if (line.error !== undefined || line.cpuMsPerFrame === undefined) return t.fail(`${name}: the benchmark failed: ${line.error}`);
      t.equal(line.clock, 'icount', `${name}: measured in instruction time`);
      runs.push(line.cpuMsPerFrame);
    }
    const figure = [...runs].sort((a, c) => a - c)[Math.floor(runs.length / 2)]!;
    t.ok(figure <= limit,
      `${name}: ${figure.toFixed(4)} ms per frame${runs.length > 1 ? ` (the median of ${runs.map((r) => r.toFixed(4)).join(', ')})` : ''} against the baseline ${b.msPerFrame} ms ` +
      `(limit ${limit.toFixed(4)} ms = baseline + spread ${(b.spread * 100).toFixed(1)} % (its slowest run above the median) + 10 %)`);
  });
}
