#!/usr/bin/env node
// A filter for benchmarks that cannot read bench/baselines.json themselves (bench/flip-floor.c):
// each JSON line on stdin with a "case" gets its committed baseline beside the figure
// (bench/clock.mjs baselineOf: null when the case has none or the line's clock differs).
// Other lines pass through unchanged.
import { createInterface } from 'node:readline';
import { baselineOf, loadBaselines } from './clock.mjs';

const baselines = loadBaselines();
for await (const line of createInterface({ input: process.stdin })) {
  let o;
  try {
    o = JSON.parse(line);
  } catch {
    console.log(line);
    continue;
  }
  if (o && typeof o === 'object' && typeof o.case === 'string' && !('baseline' in o)) {
    const b = baselineOf(o.case, baselines);
    // baselineOf compares with this process's clock; the line says its own
    o.baseline = b && o.clock === (baselines?.clock ?? null) ? b : null;
  }
  console.log(JSON.stringify(o));
}
