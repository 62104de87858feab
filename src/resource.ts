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
    this.#held = { what, release };
    leaked.register(this, this.#held, this.#token);
  }

  /** A human name for messages. */
  get what(): string {
    return this.#held?.what ?? 'closed resource';
  }

  get closed(): boolean {
    return this.#held === undefined;
  }

  /** Throws ClosedError when closed; call at the start of every method that uses the resource. */
  protected assertOpen(): void {
    if (this.#held === undefined) throw new ClosedError(this.constructor.name);
  }

  /** Releases the resource once; later calls do nothing. */
  close(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    leaked.unregister(this.#token);
    held.release();
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
