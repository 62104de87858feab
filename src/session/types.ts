/**
 * A session from libseat (seatd or logind): the seat's devices opened without root, paused and
 * resumed when the session is switched away and back (VT switch). Native code (native/session.cc)
 * binds libseat; policy (what to do on pause) is the compositor's.
 */
export interface SessionDevice {
  /** libseat's device id */
  readonly id: number;
  readonly path: string;
  /** the fd libseat opened; owned by the session until closeDevice() */
  readonly fd: number;
}

export interface SessionOptions {
  /** the seat libseat opens (default: its own choice, normally seat0) */
  readonly seat?: string;
  /**
   * libseat backends to try, in order (default: LIBSEAT_BACKEND when set, else 'seatd' then
   * 'logind'; libseat's 'builtin' backend, a seatd forked inside the process, only when named)
   */
  readonly backends?: readonly string[];
  /** libseat's log lines (its errors and what it did), as they come */
  readonly log?: (line: string) => void;
}

export interface Session {
  /** the seat's name (libseat_seat_name) */
  readonly seatName: string;
  /** whether the session is active now (false between disable and enable) */
  readonly active: boolean;
  /** which backend libseat chose: 'seatd' | 'logind' | 'builtin' | another libseat names */
  readonly backend: string;
  openDevice(path: string): SessionDevice;
  closeDevice(dev: SessionDevice): void;
  /** the session was disabled (switched away): stop using devices, then call ackDisable() */
  onDisable(fn: () => void): void;
  /** the session is active again */
  onEnable(fn: () => void): void;
  /** libseat_disable_seat: done with the devices after a disable */
  ackDisable(): void;
  /** libseat_switch_session (VT number) */
  switchSession(n: number): void;
  /**
   * Resolves once the session is active (at once when it is): a seat manager may enable a new
   * session a moment after opening it. Rejects with SessionError 'INACTIVE' after `timeoutMs`
   * (default 10000), 'CLOSED' when closed first.
   */
  whenActive(timeoutMs?: number): Promise<void>;
  /** the seat's connection failed (seatd went away): the session is unusable from then on */
  onError(fn: (err: Error) => void): void;
  /** every device still open is closed, then the seat; idempotent */
  close(): void;
}
