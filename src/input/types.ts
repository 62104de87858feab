/**
 * Input from libinput with key state from libxkbcommon: the shapes the library hands a
 * compositor. Native code (native/input.cc) is the mechanism (libinput's context, its fd on the
 * Node loop, xkb keymap and state); what an event means for a seat is the compositor's policy.
 *
 * Times are microseconds of CLOCK_MONOTONIC (libinput's clock); keys and buttons are Linux evdev
 * codes (linux/input-event-codes.h); absolute positions are fractions 0..1 of the device's range
 * (the compositor maps them to an output and its transform).
 */

/** What a device can do (libinput_device_has_capability). */
export type InputCapability = 'keyboard' | 'pointer' | 'touch';

export interface InputDeviceInfo {
  /** stable for the device's life in this context */
  readonly id: number;
  /** the kernel's name (libinput_device_get_name) */
  readonly name: string;
  /** e.g. "event3" */
  readonly sysname: string;
  readonly capabilities: readonly InputCapability[];
}

/** xkb's modifier state, serialized as wl_keyboard.modifiers carries it. */
export interface InputModifiers {
  readonly depressed: number;
  readonly latched: number;
  readonly locked: number;
  readonly group: number;
}

/** The keymap names (RMLVO) to compile; unset fields come from XKB_DEFAULT_* then xkb's defaults. */
export interface KeymapNames {
  readonly rules?: string;
  readonly model?: string;
  readonly layout?: string;
  readonly variant?: string;
  readonly options?: string;
}

export type AxisSource = 'wheel' | 'finger' | 'continuous' | 'wheel-tilt';

/** One scroll axis in a pointer-axis event. */
export interface AxisValue {
  /** movement in the compositor's pointer units (libinput's scroll value) */
  readonly value: number;
  /** a wheel's movement in 1/120 of a detent (wheel sources only) */
  readonly value120?: number;
  /** the scroll on this axis ended (finger/continuous sources) */
  readonly stop?: boolean;
}

export type InputEvent =
  | { readonly type: 'device-added'; readonly device: InputDeviceInfo }
  | { readonly type: 'device-removed'; readonly device: InputDeviceInfo }
  | {
      readonly type: 'key';
      readonly device: number;
      readonly timeUs: number;
      readonly key: number;
      readonly pressed: boolean;
      /** the keysym xkb gives this key in the state before the key (0 when none) */
      readonly keysym: number;
      /** the text xkb gives it ('' when none) */
      readonly utf8: string;
      /** set when this key changed the modifier state: the state after it */
      readonly modifiers?: InputModifiers;
      /**
       * how many keyboards of the seat hold this key down after the event (libinput's seat key
       * count); the xkb state changes only on the first press (1) and the last release (0).
       * Always set by openInput.
       */
      readonly seatKeyCount?: number;
    }
  | {
      readonly type: 'pointer-motion';
      readonly device: number;
      readonly timeUs: number;
      readonly dx: number;
      readonly dy: number;
      /** the motion before pointer acceleration (for relative-pointer); always set by openInput */
      readonly dxUnaccelerated?: number;
      readonly dyUnaccelerated?: number;
    }
  | { readonly type: 'pointer-motion-absolute'; readonly device: number; readonly timeUs: number; readonly x: number; readonly y: number }
  | {
      readonly type: 'pointer-button';
      readonly device: number;
      readonly timeUs: number;
      readonly button: number;
      readonly pressed: boolean;
      /** how many pointers of the seat hold this button down after the event; always set by openInput */
      readonly seatButtonCount?: number;
    }
  | {
      readonly type: 'pointer-axis';
      readonly device: number;
      readonly timeUs: number;
      readonly source: AxisSource;
      readonly vertical?: AxisValue;
      readonly horizontal?: AxisValue;
    }
  // touch `slot`: the seat's slot (libinput_event_touch_get_seat_slot), unique across the seat's
  // touch devices while the touch lasts
  | { readonly type: 'touch-down'; readonly device: number; readonly timeUs: number; readonly slot: number; readonly x: number; readonly y: number }
  | { readonly type: 'touch-motion'; readonly device: number; readonly timeUs: number; readonly slot: number; readonly x: number; readonly y: number }
  | { readonly type: 'touch-up'; readonly device: number; readonly timeUs: number; readonly slot: number }
  | { readonly type: 'touch-frame'; readonly device: number; readonly timeUs: number }
  | { readonly type: 'touch-cancel'; readonly device: number; readonly timeUs: number };

/** Opens and closes device nodes for libinput (a session's, or open(2) as root). */
export interface DeviceOpener {
  /** returns an fd the caller owns until close(fd), or throws (an errno-bearing error) */
  open(path: string, flags: number): number;
  close(fd: number): void;
}

export interface InputOptions {
  /** the udev seat whose devices libinput takes (default "seat0"); ignored with `devices` */
  readonly seat?: string;
  /** explicit /dev/input/event* paths (libinput's path backend) instead of udev enumeration */
  readonly devices?: readonly string[];
  readonly keymap?: KeymapNames;
  /** how device nodes are opened (default: open(2), which needs the rights to the nodes) */
  readonly opener?: DeviceOpener;
}

/**
 * An open input context (openInput): devices, events, the keymap. Events are delivered on the
 * Node loop in the order libinput produced them; close() releases libinput, xkb and every fd.
 */
export interface InputContext {
  /** the compiled keymap as XKB text v1 (what wl_keyboard.keymap carries, without the NUL) */
  readonly keymap: string;
  readonly devices: readonly InputDeviceInfo[];
  onEvent(fn: (e: InputEvent) => void): void;
  /** libinput_suspend: every device closed (a session switched away) */
  suspend(): void;
  /** libinput_resume: devices opened again */
  resume(): void;
  close(): void;
}
