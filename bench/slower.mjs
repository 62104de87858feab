// A preload (node --import) that makes the kiosk slower on purpose: every Presenter.present()
// first runs a busy loop worth PRIMEBUF_BENCH_BURN_MS milliseconds of this thread's CPU. It is
// how the budget test is shown to fail (README, "Instruction time: the clock, the baselines and
// the per-frame budget"): PRIMEBUF_BUDGET_SLOWER=0.2 makes the budget test load this into the
// kiosk with 20 % of each case's baseline per frame. The loop's length is calibrated once at
// start-up (its fastest of several timed rounds): timing each burn with process.cpuUsage() would
// count the other threads' CPU (V8's compiler and collector) and burn less than asked.
import { Presenter } from 'primebuf';

const ms = Number(process.env.PRIMEBUF_BENCH_BURN_MS ?? 0);
let sink = 0;
function spin(n) {
  let x = sink;
  for (let i = 0; i < n; i++) x = (x * 1103515245 + 12345) | 0;
  sink = x;
}
if (ms > 0) {
  const N = 1000000;
  for (let i = 0; i < 5; i++) spin(N); // optimised before it is timed
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const c0 = process.cpuUsage();
    spin(N);
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  const iterations = Math.max(1, Math.round((N * ms) / Math.max(best, 1e-3)));
  const present = Presenter.prototype.present;
  Presenter.prototype.present = function (...args) {
    spin(iterations);
    return present.apply(this, args);
  };
}
