// A preload (node --import) that makes the kiosk slower on purpose: every Presenter.present()
// first burns PRIMEBUF_BENCH_BURN_MS milliseconds of this process's CPU time. It is how the
// budget test is shown to fail (README, "Instruction time: the clock, the baselines and the per-frame budget"): PRIMEBUF_BUDGET_SLOWER=0.2 makes the
// budget test load this into the kiosk with 20 % of each case's baseline per frame.
import { Presenter } from 'primebuf';

const ms = Number(process.env.PRIMEBUF_BENCH_BURN_MS ?? 0);
if (ms > 0) {
  const present = Presenter.prototype.present;
  Presenter.prototype.present = function (...args) {
    const c0 = process.cpuUsage();
    for (;;) {
      const c = process.cpuUsage(c0);
      if ((c.user + c.system) / 1000 >= ms) break;
    }
    return present.apply(this, args);
  };
}
