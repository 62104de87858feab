/** Raw native surface of native/session.cc (libseat). */

/** One libseat seat: the mechanism under src/session (which owns it). */
export interface RawLibseat {
  /** libseat_get_fd (-1 once closed): watched on the Node loop, then dispatch() */
  readonly fd: number;
  readonly seatName: string;
  readonly closed: boolean;
  /** devices open through this seat (fds owned by it) */
  readonly deviceCount: number;
  /** libseat_dispatch(seat, 0): never blocks; the number of events dispatched */
  dispatch(): number;
  /** the enable/disable callbacks libseat ran since the last call, in order */
  takeEvents(): Array<'enable' | 'disable'>;
  /** libseat_open_device: the fd is owned by the seat until closeDevice(fd) or close() */
  openDevice(path: string): { id: number; fd: number };
  /** libseat_close_device, then close(fd): 0, or libseat's errno (the fd is closed either way) */
  closeDevice(fd: number): number;
  /** libseat_disable_seat: the ack of a disable */
  disableSeat(): void;
  switchSession(session: number): void;
  /** every device still open, then libseat_close_seat; idempotent */
  close(): void;
}

export interface SessionNative {
  /** libseat_open_seat with LIBSEAT_BACKEND set to `backend` for the call (unset: libseat's own choice) */
  Libseat: new (backend?: string) => RawLibseat;
  /** libseat's log lines since the last call (level 1 error, 2 info, 3 debug) */
  libseatTakeLog(): Array<{ level: number; text: string }>;
}
