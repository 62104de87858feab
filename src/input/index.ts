/**
 * Input from libinput with key state from libxkbcommon (`primebuf/input`): `openInput` gives an
 * InputContext whose events arrive on the Node loop (libinput's fd watched, never blocking);
 * `KeyState` is the same xkb keymap and state without devices. What an event means for a seat
 * (focus, key repeat, pointer position, which output a touch lands on) is the caller's policy.
 */
import { ClosedError, InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';
import type { RawFdWatch } from '../native/drm.js';
import type { RawInputContext, RawKeyState } from '../native/input.js';
import { typedInputError } from './errors.js';
import type { DeviceOpener, InputContext, InputDeviceInfo, InputEvent, InputModifiers, InputOptions, KeymapNames } from './types.js';

export type * from './types.js';
export { InputError, KeymapError } from './errors.js';

/** Linux evdev codes the tests and simple policies name (linux/input-event-codes.h). */
export const KEY = {
  ESC: 1,
  BACKSPACE: 14,
  TAB: 15,
  ENTER: 28,
  LEFTCTRL: 29,
  LEFTSHIFT: 42,
  RIGHTSHIFT: 54,
  LEFTALT: 56,
  SPACE: 57,
  CAPSLOCK: 58,
  RIGHTCTRL: 97,
  RIGHTALT: 100,
  LEFTMETA: 125,
} as const;

/** Mouse buttons (BTN_*): what pointer-button events carry. */
export const BTN = { LEFT: 0x110, RIGHT: 0x111, MIDDLE: 0x112 } as const;

function checkNames(names: KeymapNames | undefined): KeymapNames {
  if (names === undefined) return {};
  if (typeof names !== 'object' || names === null) throw new InvalidArgumentError('keymap names must be an object');
  for (const k of ['rules', 'model', 'layout', 'variant', 'options'] as const) {
    const v = names[k];
    if (v !== undefined && typeof v !== 'string') throw new InvalidArgumentError(`keymap.${k} must be a string`);
  }
  return names;
}

/** What a key does in an xkb state (KeyState.key). */
export interface KeyResult {
  /** the keysym the key has in the state before it (0 when none) */
  readonly keysym: number;
  /** its text ('' when none) */
  readonly utf8: string;
  /** the state after the key, when the key changed it */
  readonly modifiers?: InputModifiers;
}

/**
 * An xkb keymap compiled from RMLVO names, with its state (no devices): `key(code, pressed)`
 * feeds evdev key codes as a keyboard would. Throws KeymapError when xkb cannot compile the names.
 */
export class KeyState {
  #raw: RawKeyState | undefined;
  /** the keymap as XKB text v1 */
  readonly keymap: string;

  constructor(names?: KeymapNames) {
    const n = checkNames(names);
    try {
      this.#raw = new native.KeyState(n);
    } catch (err) {
      throw typedInputError(err, n);
    }
    this.keymap = this.#raw.keymap;
  }

  key(code: number, pressed: boolean): KeyResult {
    if (!this.#raw) throw new ClosedError('KeyState');
    return this.#raw.key(code, pressed);
  }

  close(): void {
    this.#raw?.close();
    this.#raw = undefined;
  }
}

class LibinputContext implements InputContext {
  readonly keymap: string;
  #raw: RawInputContext | undefined;
  #watch: RawFdWatch | undefined;
  #devices = new Map<number, InputDeviceInfo>();
  #listeners: Array<(e: InputEvent) => void> = [];
  /** events taken before any listener was registered: delivered to the first one */
  #held: InputEvent[] = [];
  #flushQueued = false;

  constructor(raw: RawInputContext) {
    this.#raw = raw;
    this.keymap = raw.keymap;
    // The devices libinput added while starting (assign_seat, path_add_device) are known at once.
    this.#take(raw.dispatch());
    this.#watch = new native.FdWatch(raw.fd, false, (status) => this.#onReadable(status));
  }

  get devices(): readonly InputDeviceInfo[] {
    return [...this.#devices.values()];
  }

  onEvent(fn: (e: InputEvent) => void): void {
    this.#listeners.push(fn);
    if (this.#held.length > 0 && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        const held = this.#held;
        this.#held = [];
        this.#deliver(held);
      });
    }
  }

  suspend(): void {
    this.#live('suspend').suspend();
    this.#take(this.#live('suspend').dispatch());
  }

  resume(): void {
    const raw = this.#live('resume');
    try {
      raw.resume();
    } catch (err) {
      throw typedInputError(err);
    }
    this.#take(raw.dispatch());
  }

  close(): void {
    this.#watch?.stop();
    this.#watch = undefined;
    this.#raw?.close();
    this.#raw = undefined;
    this.#devices.clear();
    this.#listeners = [];
    this.#held = [];
  }

  #live(what: string): RawInputContext {
    if (!this.#raw) throw new ClosedError(`InputContext (${what})`);
    return this.#raw;
  }

  #onReadable(status: number): void {
    if (!this.#raw) return;
    if (status !== 0) {
      // a poll error on libinput's epoll fd: nothing more will come
      this.#watch?.stop();
      this.#watch = undefined;
      process.nextTick(() => {
        throw new Error(`input: poll on libinput's fd failed (${native.errnoName(status)})`);
      });
      return;
    }
    let events: InputEvent[];
    try {
      events = this.#raw.dispatch();
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
      return;
    }
    this.#take(events);
  }

  /** Updates the device list, then delivers (or holds, before the first listener). */
  #take(events: InputEvent[]): void {
    if (events.length === 0) return;
    for (const e of events) {
      if (e.type === 'device-added') this.#devices.set(e.device.id, e.device);
      else if (e.type === 'device-removed') this.#devices.delete(e.device.id);
    }
    if (this.#listeners.length === 0 || this.#held.length > 0) {
      this.#held.push(...events);
      return;
    }
    this.#deliver(events);
  }

  #deliver(events: InputEvent[]): void {
    let thrown: unknown[] | undefined;
    for (const e of events) {
      for (const l of this.#listeners) {
        try {
          l(e);
        } catch (err) {
          (thrown ??= []).push(err);
        }
      }
    }
    // Every event of the batch reached every listener; what they threw surfaces afterwards.
    for (const err of thrown ?? []) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

/**
 * Opens libinput on a udev seat (`seat`, default "seat0": every input device udev tags for it,
 * and hotplug), or on explicit `devices` paths (libinput's path backend), with an xkb keymap
 * compiled from `keymap` (unset names: XKB_DEFAULT_* then xkb's defaults). Device nodes are
 * opened through `opener` when given (a session's), else open(2) with O_CLOEXEC.
 * Events that arrive before the first onEvent listener are delivered to it. The open context
 * keeps the Node process alive (libinput's fd is watched) until close().
 * Throws KeymapError (names xkb cannot compile), InputError (udev, seat, or a device path).
 */
export function openInput(options: InputOptions = {}): InputContext {
  const names = checkNames(options.keymap);
  if (options.seat !== undefined && typeof options.seat !== 'string') throw new InvalidArgumentError('seat must be a string');
  if (options.devices !== undefined) {
    if (!Array.isArray(options.devices) || options.devices.some((d) => typeof d !== 'string' || d.length === 0)) {
      throw new InvalidArgumentError('devices must be an array of device paths');
    }
  }
  const opener: DeviceOpener | undefined = options.opener;
  if (opener !== undefined && (typeof opener.open !== 'function' || typeof opener.close !== 'function')) {
    throw new InvalidArgumentError('opener must have open(path, flags) and close(fd)');
  }
  let raw: RawInputContext;
  try {
    raw = new native.InputContext({
      ...(options.seat !== undefined ? { seat: options.seat } : {}),
      ...(options.devices !== undefined ? { devices: [...options.devices] } : {}),
      keymap: names,
      ...(opener ? { opener } : {}),
    });
  } catch (err) {
    throw typedInputError(err, names);
  }
  try {
    return new LibinputContext(raw);
  } catch (err) {
    raw.close();
    throw err;
  }
}
