/** Raw native surface of native/input.cc (libinput and libxkbcommon). */
import type { DeviceOpener, InputEvent, KeymapNames } from '../input/types.js';

export interface RawInputOptions {
  seat?: string;
  devices?: readonly string[];
  keymap?: KeymapNames;
  opener?: DeviceOpener;
}

/** A libinput context with its xkb keymap and state (native/input.cc). */
export interface RawInputContext {
  /** libinput's epoll fd (owned by the context) */
  readonly fd: number;
  readonly keymap: string;
  /** libinput_dispatch, then every queued event converted, in order */
  dispatch(): InputEvent[];
  suspend(): void;
  resume(): void;
  /** idempotent */
  close(): void;
}

/** What KeyState.key returns: the key's keysym and text before it, the modifiers when it changed them. */
export interface RawKeyResult {
  keysym: number;
  utf8: string;
  modifiers?: { depressed: number; latched: number; locked: number; group: number };
}

export interface RawKeyState {
  readonly keymap: string;
  key(code: number, pressed: boolean): RawKeyResult;
  close(): void;
}

export interface InputNative {
  InputContext: new (options: RawInputOptions) => RawInputContext;
  KeyState: new (names?: KeymapNames) => RawKeyState;
}
