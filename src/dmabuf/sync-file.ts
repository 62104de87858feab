/**
 * SyncFile: the one owner of a sync_file fd (an explicit fence). wait() resolves when the fence
 * signals, through a libuv poll on the fd: the event loop keeps running meanwhile.
 */
import { ClosedError, PrimebufError, SystemError } from '../errors.js';
import { native } from '../native.js';
import type { RawSyncFileInfo } from '../native/dmabuf.js';
import type { RawFdWatch } from '../native/drm.js';
import { Resource } from '../resource.js';

/** A wait that did not finish in time; the fence may still signal later. */
export class TimeoutError extends PrimebufError {
  override name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export interface SyncFileStatus {
  name: string;
  signaled: boolean;
  error: number;
  numFences: number;
}

/**
 * The waits of one sync_file: one libuv poll on its fd, shared by every pending wait() (libuv
 * allows one poll per fd: a second uv_poll_init fails with EEXIST). The poll starts with the
 * first waiter and stops when the fence signals, when the last waiter gave up (timeout) or
 * when the SyncFile closes.
 */
class Waits {
  readonly #fd: number;
  readonly #what: string;
  readonly #waiters = new Set<Waiter>();
  #watch: RawFdWatch | undefined;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
  }

  get pending(): number {
    return this.#waiters.size;
  }

  add(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!this.#watch) this.#watch = new native.FdWatch(this.#fd, false, (status) => this.#onReady(status));
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.#remove(waiter);
          reject(new TimeoutError(`${this.#what}: not signaled after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#waiters.add(waiter);
    });
  }

  /**
   * Settles every pending waiter with `err` (or resolves them) and stops the poll. `err` may be
   * a function making the error: it is called only when someone waits (a close without waiters,
   * every frame's fence, builds no error and no stack trace).
   */
  settleAll(err?: Error | (() => Error)): void {
    this.#stop();
    if (this.#waiters.size === 0) return;
    const all = [...this.#waiters];
    this.#waiters.clear();
    const e = typeof err === 'function' ? err() : err;
    for (const w of all) {
      if (w.timer) clearTimeout(w.timer);
      if (e) w.reject(e);
      else w.resolve();
    }
  }

  #remove(w: Waiter): void {
    this.#waiters.delete(w);
    if (this.#waiters.size === 0) this.#stop();
  }

  #stop(): void {
    this.#watch?.stop();
    this.#watch = undefined;
  }

  #onReady(status: number): void {
    const what = this.#what;
    if (status !== 0) {
      this.settleAll(new SystemError(`poll on ${what} failed`, { code: native.errnoName(status), errno: status, syscall: 'uv_poll', detail: what }));
      return;
    }
    let s: RawSyncFileInfo;
    try {
      s = native.syncFileInfo(this.#fd);
    } catch (err) {
      this.settleAll(err as Error);
      return;
    }
    if (s.status === 0) return; // spurious wake-up
    if (s.status < 0) {
      const e = -s.status;
      this.settleAll(new SystemError(`${what} signaled with an error`, { code: native.errnoName(e), errno: e, syscall: 'sync_file', detail: what }));
      return;
    }
    this.settleAll();
  }
}

export class SyncFile extends Resource {
  readonly #fd: number;
  readonly #waits: Waits;

  /** Takes ownership of a sync_file fd. */
  constructor(fd: number, what = `sync_file fd ${fd}`) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`SyncFile: ${fd} is not a file descriptor`);
    const waits = new Waits(fd, what);
    super(what, () => {
      // Stop the poll before the fd goes away; pending waits fail with ClosedError.
      waits.settleAll(() => new ClosedError(what));
      native.closeFd(fd);
    });
    this.#fd = fd;
    this.#waits = waits;
  }

  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  status(): SyncFileStatus {
    const s = native.syncFileInfo(this.fd);
    return { name: s.name, signaled: s.status === 1, error: s.status < 0 ? -s.status : 0, numFences: s.numFences };
  }

  get signaled(): boolean {
    return this.status().signaled;
  }

  /**
   * Resolves when the fence signals (rejects with SystemError if it signaled with an error,
   * TimeoutError after `timeoutMs`, ClosedError when closed first). Never blocks the loop. Any
   * number of waits may be pending at once: they share one poll on the fd, each keeps its own
   * timeout, and all settle together when the fence signals.
   */
  wait(timeoutMs?: number): Promise<void> {
    this.assertOpen();
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new RangeError(`${this.what}: timeout ${timeoutMs} is not a non-negative number`);
    return this.#waits.add(timeoutMs);
  }

  /** A new sync_file that signals when both have signaled. */
  merge(other: SyncFile, name = 'primebuf-merge'): SyncFile {
    return new SyncFile(native.syncFileMerge(this.fd, other.fd, name));
  }

  dup(): SyncFile {
    return new SyncFile(native.dupFd(this.fd));
  }

  /** Gives up ownership: the caller owns the returned fd. */
  release(): number {
    const fd = this.fd;
    if (this.#waits.pending > 0) throw new PrimebufError(`${this.what}: cannot release while waits are pending`);
    this.detach();
    return fd;
  }
}
