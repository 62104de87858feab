/**
 * A kiosk made slower on purpose, for tests only: how the per-frame budget (test/budget) is shown
 * to fail on a frame that costs 20 % more. Off unless PRIMEBUF_KIOSK_SLOWER is set (a fraction,
 * e.g. 0.2); off, the kiosk holds `undefined` and its frame path pays one comparison.
 *
 * On, every frame the kiosk's loop runs first spins for `fraction` times the process's own CPU
 * per frame, measured over the last WINDOW frames without the spin itself, so the process's CPU
 * per frame becomes (1 + fraction) times what it would have been, in every case (a copied frame,
 * a direct one, a camera frame) and whatever counts as a frame: the added CPU is a share of all
 * the CPU the process spends (every thread: what the benchmark reads from /proc/PID/stat), so
 * frames that coalesce several client commits scale like the rest.
 *
 * The spin is a loop of fixed work whose cost per iteration is the least measured over the last
 * WINDOW spins (process.cpuUsage() around each): V8's helper threads (concurrent marking,
 * compilation) and the libuv pool may run on the other vCPU during a spin, and their CPU only ever
 * adds to a measurement, so the least is this thread's own cost. A wait on process.cpuUsage()
 * instead counts their work as spin and adds less than asked (bench/slower.mjs, before this: +5-11 %
 * in the direct cases for a 20 % burn). Node 20 has no per-thread CPU clock, and
 * /proc/thread-self/schedstat is not updated while the thread runs (it lags by up to a tick).
 */
/** Frames of the moving window the CPU per frame is measured over. */
const WINDOW = 32;

export interface FrameSlowdownSummary {
  fraction: number;
  /** frames that spun (the first WINDOW only measure) */
  frames: number;
  /** CPU spun in all, ms (iterations times the least cost per iteration measured) */
  spunMs: number;
  /** the process's CPU over the same frames without the spin, ms */
  baseMs: number;
  /** the spin loop's cost per iteration, µs */
  usPerIteration: number;
}

export class FrameSlowdown {
  readonly fraction: number;
  /** per slot: the process's CPU (µs) and the spin so far (µs) at the start of a frame */
  readonly #cpu = new Float64Array(WINDOW);
  readonly #spun = new Float64Array(WINDOW);
  /** the spin loop's measured µs per iteration, the last WINDOW spins (Infinity: none yet) */
  readonly #perIter = new Float64Array(WINDOW).fill(Infinity);
  #n = 0;
  #spins = 0;
  #spunTotal = 0;
  #baseTotal = 0;
  #spinFrames = 0;
  /** the spin loop's result, kept so that the loop cannot be optimised away */
  sink = 0;

  constructor(fraction: number) {
    if (!(fraction > 0 && fraction < 10)) throw new RangeError(`PRIMEBUF_KIOSK_SLOWER=${fraction}: a fraction above 0 (0.2: 20 % slower)`);
    this.fraction = fraction;
  }

  /** The slowdown PRIMEBUF_KIOSK_SLOWER asks for, or undefined (the default: none). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): FrameSlowdown | undefined {
    const v = env.PRIMEBUF_KIOSK_SLOWER;
    return v === undefined || v === '' || Number(v) === 0 ? undefined : new FrameSlowdown(Number(v));
  }

  /** µs per iteration of the spin loop: the least of the recent measurements. */
  #cost(): number {
    let m = Infinity;
    for (const c of this.#perIter) if (c < m) m = c;
    return m;
  }

  /** Spins for `us` of this thread's CPU; returns what it spun by its estimate, in µs. */
  #spin(us: number): number {
    let cost = this.#cost();
    // until a measurement exists: a short first spin measures the loop
    const iters = cost === Infinity ? 1000 : Math.round(us / cost);
    if (iters <= 0) return 0;
    const c0 = process.cpuUsage();
    let x = this.sink | 0;
    for (let i = 0; i < iters; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
    this.sink = x;
    const c = process.cpuUsage(c0);
    this.#perIter[this.#spins++ % WINDOW] = Math.max(c.user + c.system, 1e-3) / iters;
    if (cost === Infinity) cost = this.#cost();
    return iters * cost;
  }

  /** At the start of each frame: spins for `fraction` of the CPU per frame of the last WINDOW frames. */
  frame(): void {
    const c = process.cpuUsage();
    const now = c.user + c.system;
    const slot = this.#n % WINDOW;
    const spunBefore = this.#spunTotal;
    if (this.#n >= WINDOW) {
      // the CPU over the last WINDOW frames, less what this spun in them
      const base = now - this.#cpu[slot]! - (this.#spunTotal - this.#spun[slot]!);
      this.#spunTotal += this.#spin((this.fraction * Math.max(0, base)) / WINDOW);
      this.#baseTotal += base / WINDOW;
      this.#spinFrames++;
    }
    this.#cpu[slot] = now;
    this.#spun[slot] = spunBefore; // the window from this frame's start holds its spin
    this.#n++;
  }

  summary(): FrameSlowdownSummary {
    return {
      fraction: this.fraction,
      frames: this.#spinFrames,
      spunMs: this.#spunTotal / 1000,
      baseMs: this.#baseTotal / 1000,
      usPerIteration: this.#cost(),
    };
  }
}
