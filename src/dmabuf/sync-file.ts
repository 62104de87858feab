/**
 * SyncFile: the one owner of a sync_file fd (an explicit fence). wait() resolves when the fence
 * signals, through a libuv poll on the fd: the event loop keeps running meanwhile.
 */
import { ClosedError, PrimebufError, SystemError } from '../errors.js';
import { native } from '../native.js';
import type { RawFdWatch } from '../native/drm.js';
import { Resource } from '../resource.js';

/** A wait that did not finish in time; the fence may still signal later. */
export class TimeoutError extends PrimebufError {
  override name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
}

interface Waiter {
  watch: RawFdWatch;
  timer: NodeJS.Timeout | undefined;
  reject(err: Error): void;
}

export interface SyncFileStatus {
  name: string;
  signaled: boolean;
  error: number;
  numFences: number;
}

export class SyncFile extends Resource {
  readonly #fd: number;
  readonly #waiters: Set<Waiter>;

  /** Takes ownership of a sync_file fd. */
  constructor(fd: number, what = `sync_file fd ${fd}`) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`SyncFile: ${fd} is not a file descriptor`);
    const waiters = new Set<Waiter>();
    super(what, () => {
      // Stop every poll before the fd goes away; pending waits fail with ClosedError.
      for (const w of [...waiters]) {
        w.watch.stop();
        if (w.timer) clearTimeout(w.timer);
        waiters.delete(w);
        w.reject(new ClosedError(what));
      }
      native.closeFd(fd);
    });
    this.#fd = fd;
    this.#waiters = waiters;
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
   * TimeoutError after `timeoutMs`, ClosedError when closed first). Never blocks the loop.
   */
  wait(timeoutMs?: number): Promise<void> {
    this.assertOpen();
    return new Promise<void>((resolve, reject) => {
      const waiters = this.#waiters;
      const fd = this.#fd;
      const what = this.what;
      let waiter: Waiter | undefined;
      const finish = (err?: Error): void => {
        if (!waiter || !waiters.has(waiter)) return;
        waiters.delete(waiter);
        waiter.watch.stop();
        if (waiter.timer) clearTimeout(waiter.timer);
        if (err) reject(err);
        else resolve();
      };
      const watch = new native.FdWatch(fd, false, (status) => {
        if (status !== 0) {
          finish(new SystemError(`poll on ${what} failed`, { code: native.errnoName(status), errno: status, syscall: 'uv_poll', detail: what }));
          return;
        }
        const s = native.syncFileInfo(fd);
        if (s.status === 0) return; // spurious wake-up
        if (s.status < 0) {
          const e = -s.status;
          finish(new SystemError(`${what} signaled with an error`, { code: native.errnoName(e), errno: e, syscall: 'sync_file', detail: what }));
          return;
        }
        finish();
      });
      waiter = { watch, timer: undefined, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => finish(new TimeoutError(`${what}: not signaled after ${timeoutMs} ms`)), timeoutMs);
      }
      waiters.add(waiter);
    });
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
    if (this.#waiters.size > 0) throw new PrimebufError(`${this.what}: cannot release while waits are pending`);
    this.detach();
    return fd;
  }
}
