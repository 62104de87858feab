/**
 * The life of a client's wl_buffer on the compositor side (linux-dmabuf and wl_shm buffers): what
 * backs it (fds, an import, a pool) is freed once the client destroyed the wl_buffer and the
 * compositor holds no lock (e.g. while it is scanned out).
 */
import { InvalidArgumentError } from '../errors.js';
import type { ServerResource } from './server.js';

export abstract class BufferLifetime {
  #locks = 0;
  #resourceGone = false;
  #released = false;
  #onDestroy: Array<() => void> = [];
  readonly #free: () => void;

  /** `free` releases what backs the buffer, once. */
  protected constructor(
    readonly resource: ServerResource<'wl_buffer'>,
    free: () => void,
  ) {
    this.#free = free;
    resource.onDestroy(() => {
      this.#resourceGone = true;
      for (const fn of this.#onDestroy.splice(0)) fn();
      this.#maybeFree();
    });
  }

  /** The client destroyed its wl_buffer (the compositor may still hold a lock). */
  get destroyed(): boolean {
    return this.#resourceGone;
  }

  /** What backs the buffer is released (wl_buffer gone and no lock left). */
  get freed(): boolean {
    return this.#released;
  }

  /** Keeps what backs the buffer alive while the compositor uses it (e.g. while scanned out). */
  lock(): void {
    if (this.#released) throw new InvalidArgumentError('buffer already freed');
    this.#locks++;
  }

  unlock(): void {
    if (this.#locks > 0) this.#locks--;
    this.#maybeFree();
  }

  /** wl_buffer.release: the compositor no longer reads the buffer; the client may reuse it. */
  release(): void {
    if (!this.#resourceGone) this.resource.send('release', {});
  }

  /** Runs `fn` when the client destroys the wl_buffer (e.g. presenter.forget). */
  onDestroy(fn: () => void): void {
    if (this.#resourceGone) fn();
    else this.#onDestroy.push(fn);
  }

  #maybeFree(): void {
    if (this.#released || !this.#resourceGone || this.#locks > 0) return;
    this.#released = true;
    this.#free();
  }
}
