// What every benchmark in the VM prints beside a figure: the clock it was measured in, and the
// committed baseline of its case (bench/baselines.json, issue 19).
//   clock "icount": the rig ran QEMU with -icount (node scripts/vkms-vm.mjs run --icount): the
//                   guest's clocks advance 1 ns per guest instruction, so a CPU time is an
//                   instruction count and repeats whatever the host's load;
//   clock "wall":   the guest's clocks follow the host's (TCG without icount, or no VM at all):
//                   a CPU time there moves with the host's load, by a factor of two under TCG.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLOCK = process.env.PRIMEBUF_VM_CLOCK === 'icount' ? 'icount' : 'wall';

export const BASELINES_PATH = join(dirname(fileURLToPath(import.meta.url)), 'baselines.json');

/** bench/baselines.json: { clock, cases: { NAME: { msPerFrame, spread, runs: [...] } } } (or null). */
export function loadBaselines() {
  try {
    return JSON.parse(readFileSync(BASELINES_PATH, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The baseline beside a figure of `name`: { msPerFrame, spread, limit } when the file has the
 * case and was measured in this clock (a wall-clock figure is not comparable with an
 * instruction-time baseline), else null. limit = msPerFrame x (1 + spread + 0.10): what the
 * budget test (test/budget/budget.test.ts) lets a case reach before it fails.
 */
export function baselineOf(name, baselines = loadBaselines()) {
  const b = baselines?.cases?.[name];
  if (!b || baselines.clock !== CLOCK) return null;
  return { msPerFrame: b.msPerFrame, spread: b.spread, limit: budgetLimit(b) };
}

/** The budget's bound of a baseline entry: its figure plus the measured spread (its slowest run above the median) plus 10 %. */
export function budgetLimit(b) {
  return +(b.msPerFrame * (1 + b.spread + 0.1)).toFixed(4);
}
