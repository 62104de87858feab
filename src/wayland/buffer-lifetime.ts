/**
 * The life of a client's wl_buffer on the compositor side (linux-dmabuf and wl_shm buffers), as
 * wlr_buffer keeps it: counted locks of whoever uses the buffer (the presenter while it scans it
 * out or copies from it; a surface while the buffer is its current content, `surfaceLock`), and
 * - wl_buffer.release, sent by the library when the last lock goes after a commit (no surface
 *   holds it as current and no reader has it);
 * - the end: once the client destroyed the wl_buffer and the last lock is gone, the `onEnd`
 *   callbacks run (caches drop what they made for the buffer: verdicts, framebuffers, copy
 *   sources), then what backs it (fds, import, pool reference) is freed. A destroyed wl_buffer
 *   that is still locked stays valid for its readers until then.
 * `BufferLifetime.of(resource)` finds the buffer object of a wl_buffer resource (e.g. the one a
 * wl_surface.attach names): the compositor keeps no map of its own.
 */
import { ClosedError } from '../errors.js';
import type { BufferLife, ScanoutBuffer } from '../scanout/verdict-buffer.js';
import type { ServerResource } from './server.js';

const KEY = 'bufferLifetime';

export abstract class BufferLifetime implements BufferLife {
  #locks = 0;
  #owed = false;
  #resourceGone = false;
  #released = false;
  #onDestroy: Array<() => void> = [];
  #onEnd: Array<() => void> = [];
  readonly #free: () => void;

  /** `free` releases what backs the buffer, once. */
  protected constructor(
    readonly resource: ServerResource<'wl_buffer'>,
    free: () => void,
  ) {
    this.#free = free;
    resource.data[KEY] = this;
    resource.onDestroy(() => {
      this.#resourceGone = true;
      for (const fn of this.#onDestroy.splice(0)) fn();
      this.#maybeFree();
    });
  }

  /** The buffer object of a wl_buffer resource (linux-dmabuf or wl_shm), or null (another kind, or none). */
  static of(resource: ServerResource | null | undefined): BufferLifetime | null {
    const b = resource?.data[KEY];
    return b instanceof BufferLifetime ? b : null;
  }

  /**
   * The buffer as the presenter takes it: the same object every call, its `life` this object.
   * ClosedError when asked first after the buffer ended.
   */
  abstract scanoutBuffer(): ScanoutBuffer;

  /** The client destroyed its wl_buffer (the compositor may still hold a lock). */
  get destroyed(): boolean {
    return this.#resourceGone;
  }

  /** What backs the buffer is released (wl_buffer gone and no lock left). */
  get freed(): boolean {
    return this.#released;
  }

  /** BufferLife: the same as `freed`. */
  get ended(): boolean {
    return this.#released;
  }

  /** Locks held now (surfaces and readers). */
  get locks(): number {
    return this.#locks;
  }

  /** Keeps what backs the buffer alive while the compositor uses it (e.g. while scanned out). */
  lock(): void {
    if (this.#released) throw new ClosedError(`wl_buffer@${this.resource.id} (freed)`);
    this.#locks++;
  }

  /** Drops one lock: the last one sends wl_buffer.release (when a commit owes one) or frees a destroyed buffer. */
  unlock(): void {
    if (this.#locks === 0) return;
    this.#locks--;
    if (this.#locks > 0) return;
    if (this.#owed) {
      this.#owed = false;
      if (!this.#resourceGone) this.resource.send('release', {});
    }
    this.#maybeFree();
  }

  /**
   * A surface committed this buffer as its current content: a lock that also owes the client a
   * wl_buffer.release once every lock is gone. Drop it with `unlock()` when the surface's next
   * commit replaces the buffer or the surface is destroyed.
   */
  surfaceLock(): void {
    this.lock();
    this.#owed = true;
  }

  /**
   * Sends wl_buffer.release now (a compositor that does its own bookkeeping). With surface locks
   * the library sends it by itself when the last lock goes: a release owed by a commit is
   * settled by this call.
   */
  release(): void {
    this.#owed = false;
    if (!this.#resourceGone) this.resource.send('release', {});
  }

  /** A commit made it current and its wl_buffer.release has not been sent yet. */
  get owed(): boolean {
    return this.#owed;
  }

  /**
   * @internal The direct lane sent (or still owes) the release of this buffer's last commit
   * itself: the library's record follows it, so the last unlock neither repeats nor skips it.
   */
  settleOwed(owed: boolean): void {
    this.#owed = owed;
  }

  /** Runs `fn` when the client destroys the wl_buffer (the buffer may live on while locked). */
  onDestroy(fn: () => void): void {
    if (this.#resourceGone) fn();
    else this.#onDestroy.push(fn);
  }

  /** Runs `fn` once when the buffer ends (destroyed and unlocked), before what backs it is freed. */
  onEnd(fn: () => void): void {
    if (this.#released) fn();
    else this.#onEnd.push(fn);
  }

  #maybeFree(): void {
    if (this.#released || !this.#resourceGone || this.#locks > 0) return;
    this.#released = true;
    let first: unknown;
    for (const fn of this.#onEnd.splice(0)) {
      try {
        fn();
      } catch (err) {
        first ??= err; // every cache still lets go, and what backs the buffer is freed
      }
    }
    this.#free();
    if (first !== undefined) throw first;
  }
}
