/**
 * The one ownership pattern for kernel resources (fds, GEM handles, framebuffers, mappings):
 * exactly one owner object releases each resource, close() is idempotent and is also
 * [Symbol.dispose], use after close throws ClosedError, and a FinalizationRegistry releases
 * what a caller leaked (with a warning, because a leak is a bug in the caller).
 */
import { ClosedError } from './errors.js';

type Release = () => void;

interface Held {
  what: string;
  release: Release;
  /** jobs started through hold() that have not settled */
  pending: number;
  /** close() came while jobs were pending: the last one to settle releases */
  releaseWhenIdle: boolean;
}

const leaked = new FinalizationRegistry<Held>((held) => {
  process.emitWarning(`primebuf: ${held.what} was garbage-collected without close(); releasing it now`, {
    code: 'PRIMEBUF_LEAK',
  });
  try {
    held.release();
  } catch {
    // A finalizer has no caller to report to; the warning above already names the object.
  }
});

export abstract class Resource implements Disposable {
  #held: Held | undefined;
  #token = {};

  /**
   * @param what a human name for messages, e.g. 'card0 framebuffer 42'
   * @param release frees the kernel resource; must not capture `this` (or the object never dies)
   */
  protected constructor(what: string, release: Release) {
    this.#held = { what, release, pending: 0, releaseWhenIdle: false };
    leaked.register(this, this.#held, this.#token);
  }

  /** A human name for messages. */
  get what(): string {
    return this.#held?.what ?? 'closed resource';
  }

  get closed(): boolean {
    return this.#held === undefined;
  }

  /** Whether jobs started through hold() are still running. */
  protected get busy(): boolean {
    return (this.#held?.pending ?? 0) > 0;
  }

  /** Throws ClosedError when closed; call at the start of every method that uses the resource. */
  protected assertOpen(): void {
    if (this.#held === undefined) throw new ClosedError(this.constructor.name);
  }

  /**
   * Releases the resource once; later calls do nothing. While jobs started with hold() are
   * pending, the object is closed at once (use throws ClosedError) and the kernel resource is
   * released when the last of them settles.
   */
  close(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    leaked.unregister(this.#token);
    if (held.pending > 0) held.releaseWhenIdle = true;
    else held.release();
  }

  /**
   * Runs `job` (work that uses the resource off the JS thread: a pool job reading an fd or
   * writing a mapping) with the resource kept alive until the job's promise settles, even when
   * close() is called meanwhile, so another thread never touches a closed fd number or unmapped
   * memory. The object stays reachable (and so unfinalized) for as long.
   */
  protected hold<T>(job: () => Promise<T>): Promise<T> {
    this.assertOpen();
    const held = this.#held as Held;
    held.pending++;
    const settled = (): void => {
      held.pending--;
      if (held.pending === 0 && held.releaseWhenIdle) {
        held.releaseWhenIdle = false;
        held.release();
      }
      void this; // keeps the owner reachable until the job settles
    };
    let p: Promise<T>;
    try {
      p = job();
    } catch (err) {
      settled();
      throw err;
    }
    return p.finally(settled);
  }

  /** Marks the resource closed without releasing it: ownership moved elsewhere. */
  protected detach(): void {
    if (this.#held === undefined) return;
    this.#held = undefined;
    leaked.unregister(this.#token);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
