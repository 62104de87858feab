/**
 * Frame callbacks and presentation feedback of commits that put nothing new on the screen (a
 * client pacing itself with empty commits: a frame callback, no buffer, no damage). The kiosk
 * does not commit to KMS for them, and they are not answered at once either (the client would
 * spin): they are answered at the next vblank. That is the next page flip when one comes first,
 * else the vblank predicted from the last flip and the mode's refresh period, as Weston's repaint
 * timer does when an output has nothing to repaint. The feedback of such a commit is `presented`
 * at that vblank (the surface's content, unchanged, is what the screen shows then) with VSYNC and,
 * when the last flip had it, ZERO_COPY; HW_CLOCK and HW_COMPLETION only for a real flip. It is
 * `discarded` when the surface is no longer shown then, or a newer commit of it replaced it.
 */
import { PRESENTATION_VSYNC, PRESENTATION_ZERO_COPY, type Presentation, type ServerResource } from 'primebuf';
import type { FeedbackSink, PresentedInfo, Surface } from './compositor.js';

/** Sends `done` (with `ms`, the time in milliseconds) to each callback and destroys it. */
export function sendDone(frames: readonly ServerResource<'wl_callback'>[], ms = Number(process.hrtime.bigint() / 1_000_000n)): void {
  for (let i = 0; i < frames.length; i++) {
    const cb = frames[i]!;
    if (cb.destroyed) continue;
    cb.send('done', { callback_data: ms >>> 0 });
    cb.destroy();
  }
}

/** What waits for the next vblank: one commit's frame callbacks and feedback. */
export interface Waiting<S> {
  readonly surface: S;
  readonly frames: readonly ServerResource<'wl_callback'>[];
  readonly feedbacks: readonly FeedbackSink[];
}

export interface VblankPacerOptions<S> {
  /** The mode's refresh period. */
  readonly refreshNs: number;
  /** Whether `surface` is what the screen shows (its feedback is presented, else discarded). */
  readonly shown: (surface: S) => boolean;
  /** CLOCK_MONOTONIC in ns (default process.hrtime.bigint, which is CLOCK_MONOTONIC). */
  readonly now?: () => bigint;
}

export class VblankPacer<S> {
  readonly #period: bigint;
  readonly #shown: (surface: S) => boolean;
  readonly #now: () => bigint;
  #waiting: Array<{ readonly surface: S; readonly frames: readonly ServerResource<'wl_callback'>[]; feedbacks: readonly FeedbackSink[] }> = [];
  /** the last real flip */
  #last: { readonly timestampNs: bigint; readonly sequence: number; readonly flags: number } | undefined;
  /** the last vblank the waiting were answered at (a flip's or a predicted one) */
  #lastAnsweredNs = 0n;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** vblanks answered without a flip (predicted) */
  predicted = 0;

  constructor(opts: VblankPacerOptions<S>) {
    if (!(opts.refreshNs > 0)) throw new RangeError(`refreshNs must be positive (got ${opts.refreshNs})`);
    this.#period = BigInt(Math.round(opts.refreshNs));
    this.#shown = opts.shown;
    this.#now = opts.now ?? (() => process.hrtime.bigint());
  }

  /** Commits waiting for the next vblank. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** A commit that put nothing new on the screen: its callbacks and feedback wait for the next vblank. */
  defer(w: Waiting<S>): void {
    if (this.#closed) return;
    if (w.frames.length === 0 && w.feedbacks.length === 0) return;
    this.#waiting.push({ surface: w.surface, frames: w.frames, feedbacks: w.feedbacks });
    this.#arm();
  }

  /** A newer commit of `surface` goes to the screen: the feedback of its waiting commits is discarded (superseded). */
  supersede(surface: S): void {
    if (this.#waiting.length === 0) return; // the steady state
    for (const w of this.#waiting) {
      if (w.surface !== surface || w.feedbacks.length === 0) continue;
      for (const fb of w.feedbacks) fb.discarded();
      w.feedbacks = [];
    }
  }

  /** A page flip completed: what waits is answered with it. */
  flipped(p: Presentation): void {
    this.#last = p; // (a Presentation is not changed after it is made)
    if (this.#waiting.length === 0 && !this.#timer) {
      // nothing waits (the steady state of a client that commits every frame): no answer to build
      if (p.timestampNs > this.#lastAnsweredNs) this.#lastAnsweredNs = p.timestampNs;
      return;
    }
    this.#answer({ tvSec: p.tvSec, tvNsec: p.tvUsec * 1000, refreshNs: p.refreshNs, sequence: p.sequence, flags: p.flags }, p.timestampNs);
  }

  /** Drops what waits (the kiosk is closing: its clients are going away). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#waiting = [];
  }

  #answer(info: PresentedInfo, atNs: bigint): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (atNs > this.#lastAnsweredNs) this.#lastAnsweredNs = atNs;
    const waiting = this.#waiting;
    this.#waiting = [];
    const ms = Number(atNs / 1_000_000n);
    for (const w of waiting) {
      const shown = this.#shown(w.surface);
      for (const fb of w.feedbacks) {
        if (shown) fb.presented(info);
        else fb.discarded();
      }
      sendDone(w.frames, ms);
    }
  }

  /** The first vblank after now (and after the last one answered), on the grid of the last flip. */
  #next(): bigint {
    const now = this.#now();
    const base = this.#last?.timestampNs ?? now;
    const after = now > this.#lastAnsweredNs ? now : this.#lastAnsweredNs;
    const periods = after >= base ? (after - base) / this.#period + 1n : 1n;
    const atNs = base + periods * this.#period;
    return atNs <= this.#lastAnsweredNs ? atNs + this.#period : atNs;
  }

  #arm(): void {
    if (this.#timer || this.#closed) return;
    const atNs = this.#next();
    const delayMs = Math.max(0, Math.ceil(Number(atNs - this.#now()) / 1e6));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#closed || this.#waiting.length === 0) return;
      // the vblank the timer was set for (a late timer still answers with that vblank's time)
      const at = atNs;
      const periods = this.#last ? (at - this.#last.timestampNs) / this.#period : 0n;
      this.predicted++;
      const sec = at / 1_000_000_000n;
      const last = this.#last;
      const sequence = last ? last.sequence + Number(periods) : 0;
      const flags = PRESENTATION_VSYNC | ((last?.flags ?? 0) & PRESENTATION_ZERO_COPY);
      this.#answer({ tvSec: Number(sec), tvNsec: Number(at - sec * 1_000_000_000n), refreshNs: Number(this.#period), sequence, flags }, at);
    }, delayMs);
  }
}

/**
 * Frame callbacks of surfaces that are not shown (covered by a newer toplevel, not mapped, no
 * role): answered at a throttled rate, every `intervalMs`, as compositors do for surfaces on no
 * enabled output, so a client drawing on frame callbacks keeps running slowly instead of piling
 * up callbacks (and waiting forever). Their feedback is discarded (nothing of them was shown).
 */
export class HiddenFrames {
  readonly #intervalMs: number;
  readonly #shown: (s: Surface) => boolean;
  readonly #surfaces = new Set<Surface>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** frame callbacks answered this way */
  answered = 0;

  constructor(opts: { readonly intervalMs: number; readonly shown: (s: Surface) => boolean }) {
    if (!(opts.intervalMs > 0)) throw new RangeError(`intervalMs must be positive (got ${opts.intervalMs})`);
    this.#intervalMs = opts.intervalMs;
    this.#shown = opts.shown;
  }

  /** Follows `s`'s commits from now on. */
  watch(s: Surface): void {
    this.#surfaces.add(s);
    s.onCommit(() => {
      if (s.frames.length > 0 && !this.#shown(s)) this.poke();
    });
    s.resource.onDestroy(() => this.#surfaces.delete(s));
  }

  /** What is shown changed (or a hidden surface asked for a frame): a sweep within `intervalMs`. */
  poke(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => this.#sweep(), this.#intervalMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #sweep(): void {
    this.#timer = null;
    const now = Number(process.hrtime.bigint() / 1_000_000n);
    for (const s of this.#surfaces) {
      if (s.frames.length === 0 || this.#shown(s)) continue; // shown: its frames go with the next flip
      const frames = s.takeCallbacks();
      this.answered += frames.length;
      sendDone(frames, now);
    }
  }
}
