/**
 * The kiosk's input policy over an input context (primebuf/input: libinput's devices and events,
 * xkbcommon's keymap and key state): LibinputBackend drives the seat (seat.ts, SeatInput).
 *
 * - Capabilities: the union of the present devices' (device-added / device-removed); none: a
 *   seat without capabilities. The keymap text goes to every wl_keyboard; repeat info (25 keys a
 *   second after 600 ms unless told).
 * - Keys: to the keyboard focus with their evdev code, then the modifiers when the key changed
 *   them. The quit key (--quit-key, none by default) stops the kiosk and never reaches a client:
 *   neither its press nor its release.
 * - Pointer: one cursor position on the output's logical area (what clients see): relative
 *   motion is added to it (clamped to the area), absolute motion (a fraction of the device's
 *   range) is a point of the CRTC turned onto the logical area by the output transform. The
 *   surface under it (pick.ts, the shown toplevel with its subsurfaces and popups) has the
 *   pointer focus, with enter/leave as the cursor crosses surfaces, motion in its coordinates.
 *   Buttons; axis with its source (a wheel's value120, a finger's stop); a wl_pointer.frame after
 *   each libinput event. A button press goes to the focus policy first (a click outside a popup
 *   grab dismisses it: focus.ts).
 * - Touch: a point is mapped from the device's range to the CRTC, then to the logical area by
 *   the output transform, then to the surface under it, which keeps the point until it is up;
 *   frame and cancel as libinput gives them.
 * - Times: libinput's microseconds, sent as milliseconds (us / 1000, truncated).
 *
 * defaultInput() is where the kiosk opens its input context (openInput of primebuf/input).
 */
import { openInput, type AxisSource, type DeviceOpener, type InputCapability, type InputContext, type InputEvent, type InputModifiers, type KeymapNames } from 'primebuf/input';
import type { Surface } from './compositor.js';
import { crtcToLogical, logicalOf, surfaceAt, type SurfaceHit } from './pick.js';
import type { SceneRoot } from './scene.js';
import type { InputBackend, SeatCapabilities, SeatInput } from './seat.js';

/** What the backend needs of an input context (InputContext; a fake one in tests). */
export type InputSource = Pick<InputContext, 'keymap' | 'devices' | 'onEvent' | 'close'>;

/** What the kiosk tells the backend and hears from it. */
export interface InputHost {
  /** The mode (CRTC) size and the output transform (degrees counter-clockwise). */
  readonly mode: { readonly width: number; readonly height: number };
  readonly transform: 0 | 90 | 180 | 270;
  /** What is shown: the toplevel with its subsurfaces and popups (none: nothing takes input). */
  root(): SceneRoot | undefined;
  /** The cursor moved to (x, y) on the logical area. */
  cursorMoved?(x: number, y: number): void;
  /** A button was pressed over `surface` (none: over no surface), before the client hears it. */
  buttonPressed?(surface: Surface | undefined): void;
  /** The quit key was pressed. */
  quit?(): void;
  /** One line worth telling (devices added and removed). */
  log?(line: string): void;
}

export interface LibinputBackendOptions {
  /** The quit key (parseKeySpec); none by default. */
  readonly quitKey?: KeySpec;
  /** wl_keyboard.repeat_info (default 25 keys a second after 600 ms). */
  readonly repeat?: { readonly rate: number; readonly delay: number };
}

// ---- key specs (--quit-key) ----

/** Real modifier bits of an xkb modifier mask (xkbcommon's fixed indices of Shift, Control, Mod1, Mod4). */
export const MOD_MASK = { shift: 1 << 0, ctrl: 1 << 2, alt: 1 << 3, super: 1 << 6 } as const;

/** Keysyms by name (xkbcommon-keysyms.h), the ones a quit key is likely to use; others as 0x hex. */
const KEYSYMS: Record<string, number> = {
  BackSpace: 0xff08, Tab: 0xff09, Return: 0xff0d, Pause: 0xff13, Scroll_Lock: 0xff14, Escape: 0xff1b, Delete: 0xffff,
  Home: 0xff50, Left: 0xff51, Up: 0xff52, Right: 0xff53, Down: 0xff54, Prior: 0xff55, Next: 0xff56, End: 0xff57,
  Print: 0xff61, Insert: 0xff63, Menu: 0xff67, space: 0x20,
};
for (let i = 1; i <= 12; i++) KEYSYMS[`F${i}`] = 0xffbe + i - 1;
for (let c = 0x61; c <= 0x7a; c++) KEYSYMS[String.fromCharCode(c)] = c;
for (let c = 0x41; c <= 0x5a; c++) KEYSYMS[String.fromCharCode(c)] = c;
for (let c = 0x30; c <= 0x39; c++) KEYSYMS[String.fromCharCode(c)] = c;

/** A key with its modifiers: `mods` must be held (shift/ctrl/alt/super not named must not be). */
export interface KeySpec {
  readonly text: string;
  readonly mods: number;
  /** the keysyms that match (a letter in either case) */
  readonly keysyms: readonly number[];
}

/** Parses 'ctrl+alt+BackSpace' (modifiers shift, ctrl, alt, super; a keysym name or 0x hex). */
export function parseKeySpec(text: string): KeySpec {
  const parts = text.split('+').map((p) => p.trim());
  const name = parts.pop() ?? '';
  let mods = 0;
  for (const p of parts) {
    const m = MOD_MASK[p.toLowerCase() as keyof typeof MOD_MASK];
    if (m === undefined) throw new RangeError(`key spec ${JSON.stringify(text)}: unknown modifier ${JSON.stringify(p)} (shift, ctrl, alt, super)`);
    mods |= m;
  }
  let sym = KEYSYMS[name];
  if (sym === undefined && /^0x[0-9a-f]+$/i.test(name)) sym = Number.parseInt(name, 16);
  if (sym === undefined) throw new RangeError(`key spec ${JSON.stringify(text)}: unknown key ${JSON.stringify(name)} (a keysym name such as BackSpace, Escape, F12, q, or 0x hex)`);
  const keysyms = /^[a-zA-Z]$/.test(name) ? [name.toLowerCase().charCodeAt(0), name.toUpperCase().charCodeAt(0)] : [sym];
  return { text, mods, keysyms };
}

/** --keymap LAYOUT[,VARIANT] as keymap names (unset: XKB_DEFAULT_* then xkb's defaults, openInput's). */
export function parseKeymapOption(text: string | undefined): KeymapNames | undefined {
  if (!text) return undefined;
  const [layout, variant] = text.split(',', 2).map((s) => s.trim());
  if (!layout) throw new RangeError(`--keymap ${JSON.stringify(text)}: expected LAYOUT[,VARIANT]`);
  return { layout, ...(variant ? { variant } : {}) };
}

const AXIS_SOURCE: Record<AxisSource, number> = { wheel: 0, finger: 1, continuous: 2, 'wheel-tilt': 3 };

/** libinput's microseconds as wl_pointer/wl_keyboard milliseconds. */
const ms = (us: number): number => Math.floor(us / 1000);

export class LibinputBackend implements InputBackend {
  readonly #source: InputSource;
  readonly #host: InputHost;
  readonly #opts: LibinputBackendOptions;
  #seat: SeatInput | null = null;
  readonly #devices = new Map<number, readonly InputCapability[]>();
  #mods: InputModifiers = { depressed: 0, latched: 0, locked: 0, group: 0 };
  /** keys whose press was the quit key: their release is swallowed too */
  readonly #swallowed = new Set<number>();
  #x: number;
  #y: number;
  #pointerSurface: Surface | undefined;
  readonly #touch = new Map<number, SurfaceHit>();
  #closed = false;

  constructor(source: InputSource, host: InputHost, opts: LibinputBackendOptions = {}) {
    this.#source = source;
    this.#host = host;
    this.#opts = opts;
    const l = this.#logical();
    this.#x = l.width / 2;
    this.#y = l.height / 2;
  }

  /** The cursor on the logical area. */
  get position(): { x: number; y: number } {
    return { x: this.#x, y: this.#y };
  }

  attach(seat: SeatInput): void {
    this.#seat = seat;
    seat.setKeymap(this.#source.keymap);
    const r = this.#opts.repeat ?? { rate: 25, delay: 600 };
    seat.setRepeatInfo(r.rate, r.delay);
    for (const d of this.#source.devices) this.#devices.set(d.id, d.capabilities);
    this.#sendCapabilities();
    this.#source.onEvent((e) => {
      if (this.#closed) return;
      try {
        this.#event(e);
      } catch (err) {
        this.#host.log?.(`input: ${e.type} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  /** What is shown changed: the pointer focus goes to the surface now under the cursor. */
  repick(): void {
    this.#pointerAt(undefined);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#source.close();
  }

  #logical(): { width: number; height: number } {
    return logicalOf(this.#host.mode, this.#host.transform);
  }

  #sendCapabilities(): void {
    const caps: { pointer: boolean; keyboard: boolean; touch: boolean } = { pointer: false, keyboard: false, touch: false };
    for (const c of this.#devices.values()) for (const x of c) caps[x] = true;
    this.#seat?.setCapabilities(caps satisfies SeatCapabilities);
  }

  /** A point of the device's range (0..1 of the CRTC) on the logical area. */
  #fromDevice(fx: number, fy: number): { x: number; y: number } {
    const m = this.#host.mode;
    const c = { x: Math.min(Math.max(fx, 0), 1) * m.width, y: Math.min(Math.max(fy, 0), 1) * m.height };
    return crtcToLogical(c.x, c.y, m, this.#host.transform);
  }

  /** The pointer focus for the cursor now; motion at `timeMs` unless it just entered (the enter carries the position). */
  #pointerAt(timeMs: number | undefined): void {
    const seat = this.#seat;
    if (!seat) return;
    const hit = surfaceAt(this.#host.root(), this.#logical(), this.#x, this.#y);
    const entered = hit?.surface !== this.#pointerSurface;
    this.#pointerSurface = hit?.surface;
    // (leave and enter come with their frames)
    seat.pointerFocus(hit?.surface.resource ?? null, hit?.x ?? 0, hit?.y ?? 0);
    if (hit && !entered && timeMs !== undefined) {
      seat.pointerMotion(timeMs, hit.x, hit.y);
      seat.pointerFrame();
    }
  }

  #moveTo(x: number, y: number, timeMs: number): void {
    const l = this.#logical();
    this.#x = Math.min(Math.max(x, 0), l.width - 1);
    this.#y = Math.min(Math.max(y, 0), l.height - 1);
    this.#pointerAt(timeMs);
    this.#host.cursorMoved?.(this.#x, this.#y);
  }

  #event(e: InputEvent): void {
    const seat = this.#seat!;
    switch (e.type) {
      case 'device-added':
        this.#devices.set(e.device.id, e.device.capabilities);
        this.#host.log?.(`input: ${e.device.sysname} ${e.device.name} added (${e.device.capabilities.join(', ') || 'nothing the seat uses'})`);
        this.#sendCapabilities();
        return;
      case 'device-removed':
        this.#devices.delete(e.device.id);
        this.#host.log?.(`input: ${e.device.sysname} ${e.device.name} removed`);
        this.#sendCapabilities();
        return;
      case 'key': {
        const q = this.#opts.quitKey;
        if (e.modifiers) this.#mods = e.modifiers;
        if (!e.pressed && this.#swallowed.delete(e.key)) return;
        if (e.pressed && q && q.keysyms.includes(e.keysym)) {
          const active = this.#mods.depressed | this.#mods.latched | this.#mods.locked;
          const all = MOD_MASK.shift | MOD_MASK.ctrl | MOD_MASK.alt | MOD_MASK.super;
          if ((active & all) === q.mods) {
            this.#swallowed.add(e.key);
            this.#host.log?.(`input: quit key ${q.text}`);
            this.#host.quit?.();
            return;
          }
        }
        seat.key(ms(e.timeUs), e.key, e.pressed);
        if (e.modifiers) seat.modifiers(e.modifiers);
        return;
      }
      case 'pointer-motion':
        this.#moveTo(this.#x + e.dx, this.#y + e.dy, ms(e.timeUs));
        return;
      case 'pointer-motion-absolute': {
        const p = this.#fromDevice(e.x, e.y);
        this.#moveTo(p.x, p.y, ms(e.timeUs));
        return;
      }
      case 'pointer-button':
        if (e.pressed) this.#host.buttonPressed?.(this.#pointerSurface);
        seat.pointerButton(ms(e.timeUs), e.button, e.pressed);
        seat.pointerFrame();
        return;
      case 'pointer-axis': {
        const t = ms(e.timeUs);
        const source = AXIS_SOURCE[e.source];
        for (const [axis, v] of [[0, e.vertical], [1, e.horizontal]] as const) {
          if (!v) continue;
          seat.pointerAxis(t, { axis, value: v.value, source, ...(v.value120 !== undefined ? { value120: v.value120 } : {}), ...(v.stop ? { stop: true } : {}) });
        }
        seat.pointerFrame();
        return;
      }
      case 'touch-down': {
        const p = this.#fromDevice(e.x, e.y);
        const hit = surfaceAt(this.#host.root(), this.#logical(), p.x, p.y);
        if (!hit) return;
        this.#touch.set(e.slot, hit);
        seat.touchDown(ms(e.timeUs), e.slot, hit.x, hit.y, hit.surface.resource);
        return;
      }
      case 'touch-motion': {
        const hit = this.#touch.get(e.slot);
        if (!hit) return;
        const p = this.#fromDevice(e.x, e.y);
        seat.touchMotion(ms(e.timeUs), e.slot, p.x - hit.originX, p.y - hit.originY);
        return;
      }
      case 'touch-up':
        if (this.#touch.delete(e.slot)) seat.touchUp(ms(e.timeUs), e.slot);
        return;
      case 'touch-frame':
        seat.touchFrame();
        return;
      case 'touch-cancel':
        this.#touch.clear();
        seat.touchCancel();
        return;
    }
  }
}

/**
 * >>> THE ONE PLACE THE KIOSK OPENS ITS INPUT (issue 21): to be wired at merge to
 * `openInput({ keymap, ...(opener ? { opener } : {}) })` of 'primebuf/input' once that module has
 * openInput (the input helper's branch). Until then it returns null: the kiosk runs with a seat
 * without capabilities and says so in its log.
 */
export function defaultInput(keymap: KeymapNames | undefined, opener?: DeviceOpener): InputContext {
  return openInput({ ...(keymap ? { keymap } : {}), ...(opener ? { opener } : {}) });
}
