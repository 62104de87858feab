/**
 * DRM events on the Node event loop: a libuv poll on the device fd (no busy waiting, no
 * thread). The poll keeps the process alive only while page flips are pending.
 *
 * A listener that throws does not cost anyone else their event: every event of a read reaches
 * every listener and resolves its flip first; then each error is passed to the `onError`
 * listeners, or, when there are none, thrown on the next tick (the process's
 * 'uncaughtException', as an EventEmitter's unhandled 'error' would be): one error per read,
 * an AggregateError when several listener calls threw.
 */
import { ClosedError, PrimebufError } from '../errors.js';
import { native } from '../native.js';
import type { RawDrmEvent, RawFdWatch } from '../native/drm.js';

export const DRM_EVENT_VBLANK = 1;
export const DRM_EVENT_FLIP_COMPLETE = 2;
export const DRM_EVENT_CRTC_SEQUENCE = 3;

export interface PageFlipEvent {
  crtcId: number;
  /** the vblank counter of the flip */
  sequence: number;
  /** the vblank timestamp (CLOCK_MONOTONIC when DRM_CAP_TIMESTAMP_MONOTONIC) */
  tvSec: number;
  tvUsec: number;
  timestampNs: bigint;
  userData: bigint;
}

interface Pending {
  expected: number;
  /** the events so far (made with the first: `[e]` is one slot, a push onto `[]` seventeen) */
  events: PageFlipEvent[] | undefined;
  done: Promise<PageFlipEvent[]>;
  resolve(events: PageFlipEvent[]): void;
  reject(err: Error): void;
}

/** A flip expected (the dispatcher's record) and the token expect() returns. */
class PendingFlip implements Pending {
  readonly expected: number;
  events: PageFlipEvent[] | undefined;
  readonly done: Promise<PageFlipEvent[]>;
  resolve!: (events: PageFlipEvent[]) => void;
  reject!: (err: Error) => void;
  readonly key: number;
  readonly #cancel: (key: number) => void;

  constructor(key: number, expected: number, cancel: (key: number) => void) {
    this.key = key;
    this.expected = expected;
    this.#cancel = cancel;
    this.done = new Promise<PageFlipEvent[]>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }

  get userData(): bigint {
    return BigInt(this.key);
  }

  cancel(): void {
    this.#cancel(this.key);
  }
}

/**
 * Rejects a pending flip. A caller that dropped the promise must not get an unhandled
 * rejection (the device closed with the flip pending); callers that await it still see the
 * rejection. Marked handled here, on the rare rejection, not with a catch per flip.
 */
function rejectPending(p: Pending, err: Error): void {
  p.done.catch(() => {});
  p.reject(err);
}

const NOTHING_THROWN: unknown[] = [];

/**
 * A timestamp in ns as one BigInt: exact in a double while below 2^53 ns (104 days of
 * CLOCK_MONOTONIC), one allocation instead of the five of BigInt arithmetic (per flip).
 */
function nsOf(tvSec: number, tvUsec: number): bigint {
  const ns = tvSec * 1e9 + tvUsec * 1000;
  return ns <= Number.MAX_SAFE_INTEGER ? BigInt(ns) : BigInt(tvSec) * 1_000_000_000n + BigInt(tvUsec) * 1000n;
}

export class DrmEventDispatcher {
  readonly #fd: number;
  readonly #what: string;
  /** keyed by the user_data token as a number (tokens count up from 1: far below 2^53) */
  /**
   * Flips waiting for their event, oldest first: an array searched by key, not a Map (one or two
   * at a time; a Map shrinking back to empty reallocates its table on every flip).
   */
  #pending: PendingFlip[] = [];
  readonly #listeners = new Set<(e: PageFlipEvent) => void>();
  readonly #errorListeners = new Set<(err: unknown) => void>();
  #watch: RawFdWatch | undefined;
  /** whether the watch keeps the loop alive (ref() and unref() only on a change: once per flip each otherwise) */
  #refed = false;
  #nextUserData = 1;
  #closed = false;
  #error: Error | undefined;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
  }

  /** Flips waiting for their event. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /**
   * Reserves a user_data token for a commit with DRM_MODE_PAGE_FLIP_EVENT that affects
   * `crtcCount` CRTCs; the promise resolves with one event per CRTC.
   */
  expect(crtcCount: number): { userData: bigint; done: Promise<PageFlipEvent[]>; cancel(): void } {
    if (this.#closed) throw new ClosedError(this.#what);
    this.#ensureWatch(); // first: a failure here must leave nothing pending
    const key = this.#nextUserData++;
    // one object is the pending flip and the caller's token (no token object and cancel closure per flip)
    const p = new PendingFlip(key, Math.max(1, crtcCount), this.#cancel);
    this.#pending.push(p);
    this.#updateRef();
    return p;
  }

  /** A token's cancel(): the commit failed, no event will come. */
  readonly #cancel = (key: number): void => {
    if (this.#take(key)) this.#updateRef();
  };

  #find(key: number): PendingFlip | undefined {
    const pending = this.#pending;
    for (let i = 0; i < pending.length; i++) if (pending[i]!.key === key) return pending[i];
    return undefined;
  }

  /** Removes the flip `key` (in place: pop, no splice array); whether it was pending. */
  #take(key: number): boolean {
    const pending = this.#pending;
    let i = 0;
    while (i < pending.length && pending[i]!.key !== key) i++;
    if (i === pending.length) return false;
    for (; i < pending.length - 1; i++) pending[i] = pending[i + 1]!;
    pending.pop();
    return true;
  }

  /** Called for every page-flip event (including ones primebuf did not request). */
  onPageFlip(listener: (e: PageFlipEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Called with what a page-flip listener threw, after every event of that read was delivered
   * and every flip it completed was resolved. Without error listeners such an error is thrown
   * on the next tick (uncaughtException).
   */
  onError(listener: (err: unknown) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  #ensureWatch(): void {
    if (this.#watch) return;
    // The callback never throws into native code (FdWatch reports a throw as fatal): listener
    // errors are collected and reported after the read was fully dispatched.
    this.#watch = new native.FdWatch(this.#fd, false, (status) => this.#report(this.#onReadable(status)));
    this.#watch.unref();
    this.#refed = false;
  }

  #updateRef(): void {
    if (!this.#watch) return;
    const want = this.#pending.length > 0;
    if (want === this.#refed) return;
    this.#refed = want;
    if (want) this.#watch.ref();
    else this.#watch.unref();
  }

  /** Dispatches one read; returns what listeners threw. */
  #onReadable(status: number): unknown[] {
    if (status !== 0) {
      this.#failAll(new PrimebufError(`${this.#what}: poll failed (${native.errnoName(status)})`));
      return [];
    }
    let events: RawDrmEvent[];
    try {
      events = native.drmReadEvents(this.#fd);
    } catch (err) {
      this.#failAll(err as Error);
      return [];
    }
    let thrown: unknown[] | undefined; // made only when a listener throws (not per flip)
    for (let i = 0; i < events.length; i++) {
      const raw = events[i]!;
      if (raw.type !== DRM_EVENT_FLIP_COMPLETE && raw.type !== DRM_EVENT_VBLANK) continue;
      const e: PageFlipEvent = {
        crtcId: raw.crtcId ?? 0,
        sequence: Number(raw.sequence ?? 0),
        tvSec: raw.tvSec ?? 0,
        tvUsec: raw.tvUsec ?? 0,
        timestampNs: nsOf(raw.tvSec ?? 0, raw.tvUsec ?? 0),
        userData: raw.userData ?? 0n,
      };
      if (this.#listeners.size > 0) for (const l of this.#listeners) {
        try {
          l(e);
        } catch (err) {
          (thrown ??= []).push(err);
        }
      }
      const key = Number(e.userData);
      const p = this.#find(key);
      if (!p) continue;
      if (p.events) p.events.push(e);
      else p.events = [e];
      if (p.events.length >= p.expected) {
        this.#take(key);
        p.resolve(p.events);
      }
    }
    this.#updateRef();
    return thrown ?? NOTHING_THROWN;
  }

  /** Hands listener errors to the error listeners, or to the process (next tick). */
  #report(errors: unknown[]): void {
    if (errors.length === 0) return;
    if (this.#errorListeners.size === 0) {
      const err = errors.length === 1 ? errors[0] : new AggregateError(errors, `${this.#what}: ${errors.length} page-flip listener calls threw`);
      process.nextTick(() => {
        throw err;
      });
      return;
    }
    for (const err of errors) {
      for (const l of this.#errorListeners) {
        try {
          l(err);
        } catch (again) {
          process.nextTick(() => {
            throw again;
          });
        }
      }
    }
  }

  #failAll(err: Error): void {
    this.#error = err;
    const all = this.#pending;
    this.#pending = [];
    this.#updateRef();
    for (const p of all) rejectPending(p, err);
  }

  /**
   * Stops reading the fd while another reader has it (the direct lane reads its own flips in
   * native code: two polls of one fd would race for its events). Only with no flip pending; the
   * next expect() polls again.
   */
  suspend(): void {
    if (this.#pending.length > 0) throw new PrimebufError(`${this.#what}: suspend() with flips pending`);
    this.#watch?.stop();
    this.#watch = undefined;
    this.#refed = false;
  }

  /** Stops polling (before the fd closes); pending flips reject with ClosedError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = undefined;
    const all = this.#pending;
    this.#pending = [];
    for (const p of all) rejectPending(p, new ClosedError(this.#what));
  }

  get lastError(): Error | undefined {
    return this.#error;
  }
}
