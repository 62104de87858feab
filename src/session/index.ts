/**
 * primebuf/session: the seat's devices opened without root through libseat (seatd or logind),
 * paused and resumed when the session is switched away and back. Native code (native/session.cc)
 * is the mechanism: libseat's fd is watched on the Node loop and dispatched without blocking,
 * its enable/disable callbacks queued and delivered here, from the loop. What a compositor does
 * on disable (stop presenting, then ackDisable()) is its policy.
 */
import { InvalidArgumentError, SessionError, SystemError, type SessionAttempt } from '../errors.js';
import type { DeviceOpener } from '../input/types.js';
import { native } from '../native.js';
import type { RawFdWatch } from '../native/drm.js';
import type { RawLibseat } from '../native/session.js';
import { Resource } from '../resource.js';
import type { Session, SessionDevice, SessionOptions } from './types.js';

export type { Session, SessionDevice, SessionOptions } from './types.js';
export { SessionError, type SessionAttempt } from '../errors.js';

/** The backends tried when neither the options nor LIBSEAT_BACKEND name one. */
export const DEFAULT_SESSION_BACKENDS: readonly string[] = Object.freeze(['seatd', 'logind']);

const DEFAULT_ACTIVE_TIMEOUT_MS = 10_000;

function forwardLog(log: ((line: string) => void) | undefined): void {
  const lines = native.libseatTakeLog();
  if (!log) return;
  for (const l of lines) log(`libseat: ${l.text}`);
}

class LibseatSession extends Resource implements Session {
  readonly seatName: string;
  readonly backend: string;
  readonly #raw: RawLibseat;
  readonly #watch: RawFdWatch;
  readonly #log: ((line: string) => void) | undefined;
  /** devices open through the session, by fd */
  readonly #devices = new Map<number, SessionDevice>();
  readonly #enable: Array<() => void> = [];
  readonly #disable: Array<() => void> = [];
  readonly #error: Array<(err: Error) => void> = [];
  readonly #waiters = new Set<{ resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #active = false;
  #pendingDisable = false;
  #soonQueued = false;
  #failed = false;

  constructor(raw: RawLibseat, backend: string, log: ((line: string) => void) | undefined) {
    const watch = new native.FdWatch(raw.fd, false, (status) => this.#readable(status));
    super(`libseat seat ${raw.seatName} (${backend})`, () => {
      watch.stop();
      raw.close();
    });
    this.#raw = raw;
    this.#watch = watch;
    this.#log = log;
    this.seatName = raw.seatName;
    this.backend = backend;
    // open_seat may have run the enable callback already, and read more than it handled
    this.#soon();
  }

  get active(): boolean {
    return this.#active && !this.closed;
  }

  openDevice(path: string): SessionDevice {
    this.assertOpen();
    let opened: { id: number; fd: number };
    try {
      opened = this.#raw.openDevice(path);
    } finally {
      forwardLog(this.#log);
      this.#soon();
    }
    const dev: SessionDevice = Object.freeze({ id: opened.id, path, fd: opened.fd });
    this.#devices.set(dev.fd, dev);
    return dev;
  }

  closeDevice(dev: SessionDevice): void {
    if (this.closed || this.#devices.get(dev.fd) !== dev) return; // closed already (or by close())
    this.#devices.delete(dev.fd);
    const err = this.#raw.closeDevice(dev.fd);
    forwardLog(this.#log);
    if (err !== 0) this.#log?.(`libseat: closing ${dev.path} (device ${dev.id}): ${native.errnoName(err)} (its fd is closed)`);
    this.#soon();
  }

  onDisable(fn: () => void): void {
    this.#disable.push(fn);
  }

  onEnable(fn: () => void): void {
    this.#enable.push(fn);
  }

  onError(fn: (err: Error) => void): void {
    this.#error.push(fn);
  }

  ackDisable(): void {
    if (this.closed || !this.#pendingDisable) return; // nothing to acknowledge
    this.#pendingDisable = false;
    try {
      this.#raw.disableSeat();
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    this.#soon();
  }

  switchSession(n: number): void {
    this.assertOpen();
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`switchSession: session must be a positive integer (got ${String(n)})`);
    this.#raw.switchSession(n);
    this.#soon();
  }

  whenActive(timeoutMs = DEFAULT_ACTIVE_TIMEOUT_MS): Promise<void> {
    if (this.closed) return Promise.reject(new SessionError(`${this.what} is closed`, 'CLOSED'));
    if (this.#active) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new SessionError(`${this.what}: not active after ${timeoutMs} ms (another session has the seat)`, 'INACTIVE'));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  override close(): void {
    if (this.closed) return;
    this.#devices.clear(); // the native seat closes each device's fd once
    super.close();
    forwardLog(this.#log);
    this.#active = false;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new SessionError(`${this.what} was closed`, 'CLOSED'));
    }
    this.#waiters.clear();
  }

  /** Dispatches once from the loop: what libseat read into its buffer inside a call is not on the fd any more. */
  #soon(): void {
    if (this.#soonQueued) return;
    this.#soonQueued = true;
    setImmediate(() => {
      this.#soonQueued = false;
      this.#dispatch();
    });
  }

  #readable(status: number): void {
    if (status !== 0) {
      this.#fail(new SystemError(`${this.what}: poll failed`, { code: native.errnoName(status), errno: status, syscall: 'uv_poll', detail: this.what }));
      return;
    }
    this.#dispatch();
  }

  #dispatch(): void {
    if (this.closed || this.#failed) return;
    try {
      this.#raw.dispatch();
    } catch (err) {
      forwardLog(this.#log);
      this.#fail(err as Error);
      return;
    }
    forwardLog(this.#log);
    for (const e of this.#raw.takeEvents()) {
      if (this.closed) return;
      if (e === 'enable') this.#enabled();
      else this.#disabled();
    }
  }

  #enabled(): void {
    this.#active = true;
    this.#pendingDisable = false;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.#waiters.clear();
    this.#call(this.#enable, 'enable');
  }

  #disabled(): void {
    this.#active = false;
    this.#pendingDisable = true;
    // nobody to stop using the devices: acknowledge at once, or the seat manager waits forever
    if (this.#disable.length === 0) this.ackDisable();
    else this.#call(this.#disable, 'disable');
  }

  #call(fns: ReadonlyArray<() => void>, what: string): void {
    for (const fn of fns) {
      try {
        fn();
      } catch (err) {
        this.#report(new Error(`session ${what} listener failed: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#active = false;
    this.#watch.stop();
    this.#report(err);
  }

  #report(err: Error): void {
    if (this.#error.length === 0) {
      process.emitWarning(`primebuf: ${this.what}: ${err.message}`, { code: 'PRIMEBUF_SESSION' });
      return;
    }
    for (const fn of this.#error) {
      try {
        fn(err);
      } catch {
        // an error listener that throws has nobody left to tell
      }
    }
  }
}

/**
 * Opens a session through libseat: each backend of `options.backends` (default: LIBSEAT_BACKEND
 * when set, else seatd then logind) is tried in order; the first that opens a seat wins.
 * Throws SessionError 'NO_BACKEND' with each backend's failure when none does, 'SEAT_MISMATCH'
 * when `options.seat` names another seat than the one opened. Opening is a short synchronous
 * exchange with the seat manager; everything after it runs on the Node loop. The session may
 * become active a moment later (`whenActive()`).
 */
export function openSession(options: SessionOptions = {}): Session {
  const fromEnv = process.env.LIBSEAT_BACKEND;
  const backends = options.backends ?? (fromEnv ? [fromEnv] : DEFAULT_SESSION_BACKENDS);
  if (backends.length === 0) throw new InvalidArgumentError('openSession: no backend to try');
  const attempts: SessionAttempt[] = [];
  for (const backend of backends) {
    let raw: RawLibseat;
    try {
      raw = new native.Libseat(backend);
    } catch (err) {
      forwardLog(options.log);
      const e = err as Partial<SystemError> & Error;
      // what libseat said, without its source locations
      const said = (e.detail ?? e.message).replace(/^backend \S+: /, '').replace(/\[[^\]]*\] /g, '');
      attempts.push({ backend, code: e.code ?? 'EIO', message: said });
      continue;
    }
    forwardLog(options.log);
    if (options.seat !== undefined && raw.seatName !== options.seat) {
      const name = raw.seatName;
      raw.close();
      throw new SessionError(`libseat (${backend}) opened seat ${name}, not ${options.seat}`, 'SEAT_MISMATCH');
    }
    try {
      return new LibseatSession(raw, backend, options.log);
    } catch (err) {
      raw.close(); // no watch on its fd: nothing else owns it
      throw err;
    }
  }
  throw new SessionError(`no libseat backend could open a seat (${attempts.map((a) => `${a.backend}: ${a.code}`).join(', ')})`, 'NO_BACKEND', attempts);
}

/**
 * A DeviceOpener (src/input's) over a session: open(path) is session.openDevice(path) (libseat
 * opens read-write, non-blocking, close-on-exec; `flags` is not passed on), close(fd) closes that
 * device through the session. An fd it did not open is refused (InvalidArgumentError).
 */
export function sessionOpener(session: Session): DeviceOpener {
  const open = new Map<number, SessionDevice>();
  return {
    open(path: string, _flags: number): number {
      const dev = session.openDevice(path);
      open.set(dev.fd, dev);
      return dev.fd;
    },
    close(fd: number): void {
      const dev = open.get(fd);
      if (!dev) throw new InvalidArgumentError(`sessionOpener: fd ${fd} was not opened through it`);
      open.delete(fd);
      session.closeDevice(dev);
    },
  };
}
