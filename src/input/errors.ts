/** The input area's typed errors (src/input). */
import { PrimebufError } from '../errors.js';
import type { KeymapNames } from './types.js';

/** xkbcommon could not compile a keymap from these names (an unknown layout, variant, option...). */
export class KeymapError extends PrimebufError {
  override name = 'KeymapError';
  readonly code = 'ERR_PRIMEBUF_KEYMAP';
  constructor(
    message: string,
    /** the names asked for (unset fields came from XKB_DEFAULT_* or xkb's defaults) */
    readonly names: KeymapNames,
    /** xkbcommon's own messages while compiling ('' when it gave none) */
    readonly log: string,
  ) {
    super(log ? `${message}: ${log.trim().split('\n').slice(0, 3).join('; ')}` : message);
  }
}

/**
 * libinput could not start: `reason` is 'udev' (no udev context), 'seat' (udev enumeration of
 * the seat failed), 'device' (a path in `devices` could not be added: `path`, and `errno`/`errnoCode`
 * when opening it failed) or 'resume' (libinput_resume failed).
 */
export class InputError extends PrimebufError {
  override name = 'InputError';
  readonly code = 'ERR_PRIMEBUF_INPUT';
  constructor(
    message: string,
    readonly reason: 'udev' | 'seat' | 'device' | 'resume',
    readonly path?: string,
    readonly errno?: number,
    readonly errnoCode?: string,
  ) {
    super(message);
  }
}

interface RawInputError {
  inputKind?: string;
  message: string;
  log?: string;
  errno?: number;
  code?: string;
  path?: string;
}

/** A native error from native/input.cc as its typed class (other errors pass through). */
export function typedInputError(err: unknown, names: KeymapNames = {}): unknown {
  const e = err as RawInputError;
  if (!e || typeof e !== 'object' || typeof e.inputKind !== 'string') return err;
  if (e.inputKind === 'keymap') return new KeymapError(e.message, names, e.log ?? '');
  const reason = e.inputKind as InputError['reason'];
  return new InputError(e.message, reason, e.path, e.errno, e.code);
}
