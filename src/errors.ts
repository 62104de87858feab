/**
 * primebuf's typed errors. Every error a caller can act on has its own class and
 * machine-readable fields; messages name the object involved.
 */

/** Base class of every error primebuf throws on purpose. */
export class PrimebufError extends Error {
  override name = 'PrimebufError';
}

export interface SystemErrorOptions {
  /** errno name, e.g. 'EINVAL' */
  code: string;
  /** errno number, e.g. 22 */
  errno: number;
  /** the syscall or ioctl, e.g. 'DRM_IOCTL_MODE_ADDFB2' */
  syscall: string;
  /** what was being operated on, e.g. 'card0 fb 1024x768 XR24' */
  detail?: string;
}

/**
 * A failed syscall or ioctl. Thrown by the native addon itself (src/native.ts registers
 * this class with it), so `instanceof SystemError` holds for kernel errors.
 */
export class SystemError extends PrimebufError {
  override name = 'SystemError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly detail: string;
  constructor(message: string, opts: SystemErrorOptions) {
    super(message);
    this.code = opts.code;
    this.errno = opts.errno;
    this.syscall = opts.syscall;
    this.detail = opts.detail ?? '';
  }
}

/** An object was used after close(). */
export class ClosedError extends PrimebufError {
  override name = 'ClosedError';
  readonly code = 'ERR_PRIMEBUF_CLOSED';
  constructor(readonly what: string) {
    super(`${what} is closed`);
  }
}

/** Bad input from the caller (not from the kernel): a value out of range, an unknown name. */
export class InvalidArgumentError extends PrimebufError {
  override name = 'InvalidArgumentError';
  readonly code = 'ERR_PRIMEBUF_INVALID_ARGUMENT';
}

/** The addon could not be loaded or lacks a feature this build was made without. */
export class NativeUnavailableError extends PrimebufError {
  override name = 'NativeUnavailableError';
  readonly code = 'ERR_PRIMEBUF_NATIVE';
}

/**
 * EGL could not answer a query (native/egl.cc): code is 'EGL_NO_DEVICE' (no EGLDisplay for the
 * node), 'EGL_NOT_INITIALIZED', 'EGL_NO_DMABUF_MODIFIERS' (the display lacks
 * EGL_EXT_image_dma_buf_import_modifiers) or 'EGL_QUERY_FAILED'; eglError is EGL's error code.
 */
export class EglError extends PrimebufError {
  override name = 'EglError';
  constructor(
    message: string,
    readonly code: string,
    readonly path: string,
    readonly eglError?: number,
  ) {
    super(message);
  }
}

/** One libseat backend's failure to open a seat (SessionError.attempts). */
export interface SessionAttempt {
  /** the backend asked for ('seatd', 'logind', ...) */
  readonly backend: string;
  /** errno name, e.g. 'ENOENT' (no seatd socket) */
  readonly code: string;
  /** what libseat said */
  readonly message: string;
}

/**
 * A session (src/session, libseat) could not be had or used: code 'NO_BACKEND' (no libseat
 * backend opened a seat: `attempts` says why each failed), 'SEAT_MISMATCH' (the seat opened is not
 * the one asked for), 'INACTIVE' (the session did not become active in time), 'CLOSED' (closed
 * while waiting).
 */
export class SessionError extends PrimebufError {
  override name = 'SessionError';
  constructor(
    message: string,
    readonly code: 'NO_BACKEND' | 'SEAT_MISMATCH' | 'INACTIVE' | 'CLOSED',
    readonly attempts: readonly SessionAttempt[] = [],
  ) {
    super(message);
  }
}
