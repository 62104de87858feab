/**
 * wl_seat (version 8, the vendored core protocol's), named "seat0", with wl_keyboard,
 * wl_pointer and wl_touch. The seat exists from the start, with no capabilities until an input
 * backend says which devices it has (toolkits bind it regardless); the protocol logic is here
 * and the devices are a backend's (InputBackend): it tells the seat what it has and feeds it
 * events through SeatInput. Two foci: the keyboard focus (focus(): the kiosk's shown toplevel or
 * its grabbing popup; the data device follows it) and the pointer focus (pointerFocus(): the
 * surface under the cursor, which the kiosk's policy finds, with the position in its
 * coordinates). A touch point goes to the surface it went down on (touchDown's surface, else the
 * keyboard focus). The serials of key and button presses are remembered per client (the last
 * INPUT_SERIALS_KEPT): an xdg_popup.grab must name one (isInputSerial).
 *
 * The protocol text (protocol/core/wayland.xml) decides the edges: get_pointer / get_keyboard /
 * get_touch on a seat that never had that capability is the missing_capability error; on a seat
 * that had it once the object is created and stays inert; objects of version 5 or later created
 * before the latest time a capability was added stay inert too. A second get_keyboard is
 * allowed (each object hears the same events). The keymap goes to every wl_keyboard as a memfd
 * sealed against shrink, grow, write and further seals (one fd for all clients: none can change
 * what another reads), with the terminating NUL its format asks for; no keymap yet: no_keymap
 * with an empty sealed memfd. set_cursor with a surface that has another role is
 * wl_pointer.error.role; the cursor surface of the client with the pointer focus (naming its
 * latest enter) is `cursor`, told to onCursorChange listeners (the kiosk's cursor plane).
 */
import type { ServerClient, ServerResource, WaylandServer } from 'primebuf';
import type { OwnedFd } from 'primebuf/dmabuf';
import { sealedMemfd } from 'primebuf/wayland';

export const SEAT_VERSION = 8;
export const SEAT_NAME = 'seat0';

/** wl_seat.capability bits. */
export const SEAT_CAPABILITY = { pointer: 1, keyboard: 2, touch: 4 } as const;
/** wl_seat.error codes. */
export const SEAT_ERROR = { missing_capability: 0 } as const;
/** wl_pointer.error codes. */
export const POINTER_ERROR = { role: 0 } as const;
/** wl_keyboard.keymap_format values. */
export const KEYMAP_FORMAT = { no_keymap: 0, xkb_v1: 1 } as const;

/** Serials of key and button presses remembered per client (an xdg_popup.grab names one). */
export const INPUT_SERIALS_KEPT = 16;

/** The role name a cursor surface gets (Surface.roleName). */
export const CURSOR_ROLE = 'wl_pointer cursor';

/** Which kinds of devices the seat has now. */
export interface SeatCapabilities {
  readonly pointer: boolean;
  readonly keyboard: boolean;
  readonly touch: boolean;
}

export interface KeyboardModifiers {
  readonly depressed: number;
  readonly latched: number;
  readonly locked: number;
  readonly group: number;
}

/** wl_pointer.axis (0 vertical, 1 horizontal) with what the frame carries about it. */
export interface PointerAxisEvent {
  readonly axis: 0 | 1;
  /** motion along the axis, in surface-local units (wl_fixed) */
  readonly value: number;
  /** wl_pointer.axis_source (0 wheel, 1 finger, 2 continuous, 3 wheel_tilt), v5+ */
  readonly source?: number;
  /** a wheel's movement in 1/120 of a detent (axis_value120 for v8, axis_discrete as detents for v5-7) */
  readonly value120?: number;
  /** the end of a finger/continuous scroll on this axis (axis_stop, v5+) */
  readonly stop?: boolean;
}

/**
 * What an input backend (libinput later, a synthetic one in tests) drives the seat through.
 * Times are milliseconds of CLOCK_MONOTONIC; keys are Linux evdev codes; positions are in the
 * coordinates of the surface they go to (the backend or the kiosk maps output to surface).
 */
export interface SeatInput {
  /** The devices changed: the complete set of capabilities now. */
  setCapabilities(caps: SeatCapabilities): void;
  /** The keymap (XKB text v1, without NUL) every wl_keyboard is sent; null: no_keymap. */
  setKeymap(xkb: string | null): void;
  /** wl_keyboard.repeat_info: keys per second (0: no repeat) and the delay in ms. */
  setRepeatInfo(rate: number, delay: number): void;
  key(timeMs: number, key: number, pressed: boolean): void;
  /** The modifier state changed (sent after the key that changed it). */
  modifiers(mods: KeyboardModifiers): void;
  /**
   * The pointer is over `surface` (null: over none of the kiosk's surfaces) at (x, y) in its
   * coordinates: leave on the old one and enter on the new one when it changes, nothing else.
   */
  pointerFocus(surface: ServerResource<'wl_surface'> | null, x: number, y: number): void;
  /** Motion on the pointer-focused surface, (x, y) in its coordinates. */
  pointerMotion(timeMs: number, x: number, y: number): void;
  pointerButton(timeMs: number, button: number, pressed: boolean): void;
  pointerAxis(timeMs: number, axis: PointerAxisEvent): void;
  /** Ends a group of pointer events that belong together (wl_pointer.frame, v5+). */
  pointerFrame(): void;
  /** A touch point down on `surface` (default: the keyboard focus), (x, y) in its coordinates; its motion and up go there too. */
  touchDown(timeMs: number, id: number, x: number, y: number, surface?: ServerResource<'wl_surface'> | null): void;
  touchMotion(timeMs: number, id: number, x: number, y: number): void;
  touchUp(timeMs: number, id: number): void;
  touchFrame(): void;
  touchCancel(): void;
}

/** An input backend: attached once to the seat it drives; close() stops it. */
export interface InputBackend {
  attach(seat: SeatInput): void;
  close(): void;
}

/** What the seat needs of a wl_surface beyond its resource: its role (for set_cursor). */
export interface SeatSurface {
  readonly resource: ServerResource<'wl_surface'>;
  roleName: string | null;
}

interface DeviceRes<I extends 'wl_pointer' | 'wl_keyboard' | 'wl_touch'> {
  res: ServerResource<I>;
  /** inert: created when the capability was absent, or (v5+) before it was last added */
  inert: boolean;
}

type Cap = keyof SeatCapabilities;

function u32Array(values: Iterable<number>): Uint8Array {
  return new Uint8Array(new Uint32Array([...values]).buffer);
}

/** The seat: one wl_seat global, its device objects per client, the focus and the input state. */
export class Seat implements SeatInput {
  readonly #server: WaylandServer;
  readonly #surfaceOf: (r: ServerResource<'wl_surface'>) => SeatSurface | undefined;
  readonly #seats = new Set<ServerResource<'wl_seat'>>();
  readonly #keyboards = new Set<DeviceRes<'wl_keyboard'>>();
  readonly #pointers = new Set<DeviceRes<'wl_pointer'>>();
  readonly #touches = new Set<DeviceRes<'wl_touch'>>();
  #caps: SeatCapabilities = { pointer: false, keyboard: false, touch: false };
  /** capabilities the seat ever had */
  readonly #had = { pointer: false, keyboard: false, touch: false };
  /** the keyboard focus */
  #focus: ServerResource<'wl_surface'> | null = null;
  /** the pointer focus */
  #pointerFocus: ServerResource<'wl_surface'> | null = null;
  /** surfaces whose destruction the seat watches (once each) */
  readonly #watched = new WeakSet<ServerResource<'wl_surface'>>();
  readonly #focusListeners: Array<(client: ServerClient | null, surface: ServerResource<'wl_surface'> | null) => void> = [];
  #keymap: { format: number; fd: OwnedFd; size: number };
  #repeat = { rate: 25, delay: 600 };
  readonly #pressed = new Set<number>();
  #mods: KeyboardModifiers = { depressed: 0, latched: 0, locked: 0, group: 0 };
  #pointerPos = { x: 0, y: 0 };
  /** the serial of the latest wl_pointer.enter per client (set_cursor must name it) */
  readonly #enterSerial = new WeakMap<ServerClient, number>();
  /** serials of the latest key and button presses sent to each client */
  readonly #inputSerials = new WeakMap<ServerClient, number[]>();
  /** the touch points down, each with the surface it went down on */
  readonly #touchPoints = new Map<number, ServerResource<'wl_surface'>>();
  /** clients sent touch events since the last wl_touch.frame */
  readonly #touchUnframed = new Set<ServerClient>();
  readonly #cursorListeners: Array<() => void> = [];
  #backend: InputBackend | null = null;
  #closed = false;
  /** The cursor surface the focused client asked for (kept for a cursor plane), with its hotspot. */
  cursor: { surface: ServerResource<'wl_surface'> | null; hotspotX: number; hotspotY: number } | null = null;
  readonly global;

  constructor(server: WaylandServer, surfaceOf: (r: ServerResource<'wl_surface'>) => SeatSurface | undefined) {
    this.#server = server;
    this.#surfaceOf = surfaceOf;
    this.#keymap = { format: KEYMAP_FORMAT.no_keymap, fd: sealedMemfd('primebuf-no-keymap', new Uint8Array(0)), size: 0 };
    this.global = server.createGlobal('wl_seat', SEAT_VERSION, (res) => this.#bind(res));
  }

  get capabilities(): SeatCapabilities {
    return { ...this.#caps };
  }

  /** capabilities.pointer without a copy (asked every frame) */
  get hasPointer(): boolean {
    return this.#caps.pointer;
  }

  /** The surface with the keyboard focus, if any. */
  get focused(): ServerResource<'wl_surface'> | null {
    return this.#focus;
  }

  /** The surface with the pointer focus, if any. */
  get pointerFocused(): ServerResource<'wl_surface'> | null {
    return this.#pointerFocus;
  }

  /** `serial` was sent to `client` with one of its latest key or button presses (xdg_popup.grab's test). */
  isInputSerial(client: ServerClient, serial: number): boolean {
    return this.#inputSerials.get(client)?.includes(serial) ?? false;
  }

  /** Runs `fn` when `cursor` changes (set_cursor of the pointer-focused client, or the focus moved). */
  onCursorChange(fn: () => void): void {
    this.#cursorListeners.push(fn);
  }

  /** The client of the focused surface: the one with keyboard focus (the data device's target). */
  get focusClient(): ServerClient | null {
    return this.#focus?.client ?? null;
  }

  /** Runs `fn` when the focus moves to another client (or none), before the keyboard enter (the selection goes first). */
  onFocusChange(fn: (client: ServerClient | null, surface: ServerResource<'wl_surface'> | null) => void): void {
    this.#focusListeners.push(fn);
  }

  /** Attaches the input backend that drives this seat (one). */
  attachBackend(backend: InputBackend): void {
    this.#backend?.close();
    this.#backend = backend;
    backend.attach(this);
  }

  /**
   * Moves the keyboard focus to `surface` (null: none): leave on the old surface's keyboards
   * (touch points down are cancelled: what is shown changed), the focus listeners (the data
   * device sends the selection first), then enter with the pressed keys and the modifiers. The
   * pointer focus is pointerFocus()'s.
   */
  focus(surface: ServerResource<'wl_surface'> | null): void {
    if (surface?.destroyed) surface = null;
    if (surface === this.#focus) return;
    const old = this.#focus;
    if (old && !old.destroyed) {
      const serial = this.#server.nextSerial();
      for (const k of this.#live(this.#keyboards, old.client)) k.send('leave', { serial, surface: old });
    }
    this.touchCancel();
    this.#focus = surface;
    if (surface) this.#watch(surface);
    // the listeners hear a change of client ("switching surface with keyboard focus within the
    // same client doesn't mean a new selection will be sent")
    if ((old?.client ?? null) !== (surface?.client ?? null)) for (const fn of this.#focusListeners) fn(surface?.client ?? null, surface);
    if (surface) this.#keyboardEnter(surface);
  }

  #watch(surface: ServerResource<'wl_surface'>): void {
    if (this.#watched.has(surface)) return;
    this.#watched.add(surface);
    surface.onDestroy(() => {
      if (this.#focus === surface) this.focus(null);
      if (this.#pointerFocus === surface) this.pointerFocus(null, 0, 0);
      for (const [id, s] of this.#touchPoints) if (s === surface) this.#touchPoints.delete(id);
      if (this.cursor?.surface === surface) this.#setCursor(null);
    });
  }

  #setCursor(c: Seat['cursor']): void {
    if (this.cursor === c) return;
    this.cursor = c;
    for (const fn of this.#cursorListeners) fn();
  }

  #rememberSerial(client: ServerClient, serial: number): void {
    let list = this.#inputSerials.get(client);
    if (!list) this.#inputSerials.set(client, (list = []));
    list.push(serial);
    if (list.length > INPUT_SERIALS_KEPT) list.splice(0, list.length - INPUT_SERIALS_KEPT);
  }

  // ---- SeatInput ----

  setCapabilities(caps: SeatCapabilities): void {
    const next = { pointer: !!caps.pointer, keyboard: !!caps.keyboard, touch: !!caps.touch };
    const added: Cap[] = (['pointer', 'keyboard', 'touch'] as const).filter((c) => next[c] && !this.#caps[c]);
    const removed: Cap[] = (['pointer', 'keyboard', 'touch'] as const).filter((c) => !next[c] && this.#caps[c]);
    if (added.length === 0 && removed.length === 0) return;
    // Objects go quiet with their capability, for good: those created before it is added again
    // stay inert (the protocol's rule for version 5 and later; older ones may not rely on more).
    for (const c of removed) for (const d of this.#devicesOf(c)) d.inert = true;
    for (const c of added) this.#had[c] = true;
    if (removed.includes('keyboard')) this.#pressed.clear();
    if (removed.includes('touch')) this.#touchPoints.clear();
    if (removed.includes('pointer')) this.pointerFocus(null, 0, 0);
    this.#caps = next;
    for (const s of this.#seats) s.send('capabilities', { capabilities: this.#capBits() });
  }

  setKeymap(xkb: string | null): void {
    const old = this.#keymap;
    if (xkb === null) this.#keymap = { format: KEYMAP_FORMAT.no_keymap, fd: sealedMemfd('primebuf-no-keymap', new Uint8Array(0)), size: 0 };
    else {
      const text = new TextEncoder().encode(xkb);
      const bytes = new Uint8Array(text.length + 1); // NUL-terminated, as xkb_v1 says
      bytes.set(text);
      this.#keymap = { format: KEYMAP_FORMAT.xkb_v1, fd: sealedMemfd('primebuf-keymap', bytes, 'wl_keyboard keymap'), size: bytes.length };
    }
    old.fd.close();
    for (const k of this.#keyboards) if (!k.inert) this.#sendKeymap(k.res);
  }

  setRepeatInfo(rate: number, delay: number): void {
    this.#repeat = { rate, delay };
    for (const k of this.#keyboards) if (!k.inert && k.res.version >= 4) k.res.send('repeat_info', this.#repeat);
  }

  key(timeMs: number, key: number, pressed: boolean): void {
    if (!this.#caps.keyboard) return;
    if (pressed) this.#pressed.add(key);
    else this.#pressed.delete(key);
    const f = this.#focus;
    if (!f) return;
    const serial = this.#server.nextSerial();
    if (pressed) this.#rememberSerial(f.client, serial);
    for (const k of this.#live(this.#keyboards, f.client)) k.send('key', { serial, time: timeMs >>> 0, key, state: pressed ? 1 : 0 });
  }

  modifiers(mods: KeyboardModifiers): void {
    if (!this.#caps.keyboard) return;
    this.#mods = { ...mods };
    const f = this.#focus;
    if (!f) return;
    const serial = this.#server.nextSerial();
    for (const k of this.#live(this.#keyboards, f.client)) k.send('modifiers', { serial, ...this.#modArgs() });
  }

  pointerFocus(surface: ServerResource<'wl_surface'> | null, x: number, y: number): void {
    if (surface?.destroyed) surface = null;
    this.#pointerPos = { x, y };
    if (surface === this.#pointerFocus) return;
    const old = this.#pointerFocus;
    if (old && !old.destroyed) {
      const serial = this.#server.nextSerial();
      for (const p of this.#live(this.#pointers, old.client)) {
        p.send('leave', { serial, surface: old });
        if (p.version >= 5) p.send('frame', {});
      }
    }
    this.#pointerFocus = surface;
    // a client sets its cursor after each enter: until then the default one
    this.#setCursor(null);
    if (surface) {
      this.#watch(surface);
      if (this.#caps.pointer) this.#pointerEnter(surface);
    }
  }

  pointerMotion(timeMs: number, x: number, y: number): void {
    if (!this.#caps.pointer) return;
    this.#pointerPos = { x, y };
    const f = this.#pointerFocus;
    if (!f) return;
    for (const p of this.#live(this.#pointers, f.client)) p.send('motion', { time: timeMs >>> 0, surface_x: x, surface_y: y });
  }

  pointerButton(timeMs: number, button: number, pressed: boolean): void {
    if (!this.#caps.pointer) return;
    const f = this.#pointerFocus;
    if (!f) return;
    const serial = this.#server.nextSerial();
    if (pressed) this.#rememberSerial(f.client, serial);
    for (const p of this.#live(this.#pointers, f.client)) p.send('button', { serial, time: timeMs >>> 0, button, state: pressed ? 1 : 0 });
  }

  pointerAxis(timeMs: number, a: PointerAxisEvent): void {
    if (!this.#caps.pointer) return;
    const f = this.#pointerFocus;
    if (!f) return;
    const time = timeMs >>> 0;
    for (const p of this.#live(this.#pointers, f.client)) {
      if (p.version >= 5 && a.source !== undefined) p.send('axis_source', { axis_source: a.source });
      if (a.value120 !== undefined) {
        if (p.version >= 8) p.send('axis_value120', { axis: a.axis, value120: a.value120 });
        else if (p.version >= 5 && a.value120 % 120 === 0) p.send('axis_discrete', { axis: a.axis, discrete: a.value120 / 120 });
      }
      if (a.stop && p.version >= 5) p.send('axis_stop', { time, axis: a.axis });
      else p.send('axis', { time, axis: a.axis, value: a.value });
    }
  }

  pointerFrame(): void {
    const f = this.#pointerFocus;
    if (!f || !this.#caps.pointer) return;
    for (const p of this.#live(this.#pointers, f.client)) if (p.version >= 5) p.send('frame', {});
  }

  touchDown(timeMs: number, id: number, x: number, y: number, surface?: ServerResource<'wl_surface'> | null): void {
    const f = surface === undefined ? this.#focus : surface;
    if (!f || f.destroyed || !this.#caps.touch) return;
    this.#watch(f);
    this.#touchPoints.set(id, f);
    this.#touchUnframed.add(f.client);
    const serial = this.#server.nextSerial();
    for (const t of this.#live(this.#touches, f.client)) t.send('down', { serial, time: timeMs >>> 0, surface: f, id, x, y });
  }

  touchMotion(timeMs: number, id: number, x: number, y: number): void {
    const f = this.#touchPoints.get(id);
    if (!f) return;
    this.#touchUnframed.add(f.client);
    for (const t of this.#live(this.#touches, f.client)) t.send('motion', { time: timeMs >>> 0, id, x, y });
  }

  touchUp(timeMs: number, id: number): void {
    const f = this.#touchPoints.get(id);
    if (!f) return;
    this.#touchPoints.delete(id);
    this.#touchUnframed.add(f.client);
    const serial = this.#server.nextSerial();
    for (const t of this.#live(this.#touches, f.client)) t.send('up', { serial, time: timeMs >>> 0, id });
  }

  /** wl_touch.frame to the clients sent touch events since the last frame. */
  touchFrame(): void {
    const clients = [...this.#touchUnframed];
    this.#touchUnframed.clear();
    if (!this.#caps.touch) return;
    for (const c of clients) if (!c.destroyed) for (const t of this.#live(this.#touches, c)) t.send('frame', {});
  }

  /** wl_touch.cancel to every client with a point down; the points are forgotten. */
  touchCancel(): void {
    const clients = new Set([...this.#touchPoints.values()].filter((s) => !s.destroyed).map((s) => s.client));
    this.#touchPoints.clear();
    this.#touchUnframed.clear();
    if (!this.#caps.touch) return;
    for (const c of clients) for (const t of this.#live(this.#touches, c)) t.send('cancel', {});
  }

  /** Withdraws the global, stops the backend and closes the keymap fd. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#backend?.close();
    this.#backend = null;
    this.global.destroy();
    this.#keymap.fd.close();
  }

  // ---- protocol ----

  #capBits(): number {
    return (this.#caps.pointer ? SEAT_CAPABILITY.pointer : 0) | (this.#caps.keyboard ? SEAT_CAPABILITY.keyboard : 0) | (this.#caps.touch ? SEAT_CAPABILITY.touch : 0);
  }

  #modArgs(): { mods_depressed: number; mods_latched: number; mods_locked: number; group: number } {
    const m = this.#mods;
    return { mods_depressed: m.depressed, mods_latched: m.latched, mods_locked: m.locked, group: m.group };
  }

  #devicesOf(c: Cap): Set<DeviceRes<'wl_pointer'>> | Set<DeviceRes<'wl_keyboard'>> | Set<DeviceRes<'wl_touch'>> {
    return c === 'pointer' ? this.#pointers : c === 'keyboard' ? this.#keyboards : this.#touches;
  }

  /** The live (not inert) device objects of `client`. */
  #live<I extends 'wl_pointer' | 'wl_keyboard' | 'wl_touch'>(set: Set<DeviceRes<I>>, client: ServerClient): ServerResource<I>[] {
    const out: ServerResource<I>[] = [];
    for (const d of set) if (!d.inert && d.res.client === client && !d.res.destroyed) out.push(d.res);
    return out;
  }

  #bind(res: ServerResource<'wl_seat'>): void {
    this.#seats.add(res);
    res.onDestroy(() => this.#seats.delete(res));
    res.implement({
      get_pointer: ({ id }) => this.#device('pointer', res, id, this.#pointers, () => this.#newPointer(id)),
      get_keyboard: ({ id }) => this.#device('keyboard', res, id, this.#keyboards, () => this.#newKeyboard(id)),
      get_touch: ({ id }) => this.#device('touch', res, id, this.#touches, () => undefined),
    });
    res.send('capabilities', { capabilities: this.#capBits() });
    if (res.version >= 2) res.send('name', { name: SEAT_NAME });
  }

  #device<I extends 'wl_pointer' | 'wl_keyboard' | 'wl_touch'>(
    cap: Cap,
    seat: ServerResource<'wl_seat'>,
    id: ServerResource<I>,
    set: Set<DeviceRes<I>>,
    live: () => void,
  ): void {
    if (!this.#had[cap]) {
      seat.postError(SEAT_ERROR.missing_capability, `get_${cap} on a seat that never had the ${cap} capability`);
      return;
    }
    const d: DeviceRes<I> = { res: id, inert: !this.#caps[cap] };
    set.add(d);
    id.onDestroy(() => set.delete(d));
    // release (the destructor of all three) is done by the bridge; an inert pointer still takes
    // set_cursor (checked, without effect: it never has the focus's enter serial)
    if (cap === 'pointer') this.#implementPointer(id as ServerResource<'wl_pointer'>);
    if (!d.inert) live();
  }

  #newKeyboard(k: ServerResource<'wl_keyboard'>): void {
    this.#sendKeymap(k);
    if (k.version >= 4) k.send('repeat_info', this.#repeat);
    const f = this.#focus;
    if (f && f.client === k.client) {
      const serial = this.#server.nextSerial();
      k.send('enter', { serial, surface: f, keys: u32Array(this.#pressed) });
      k.send('modifiers', { serial: this.#server.nextSerial(), ...this.#modArgs() });
    }
  }

  #newPointer(p: ServerResource<'wl_pointer'>): void {
    const f = this.#pointerFocus;
    if (f && f.client === p.client) this.#enterOne(p, f, this.#server.nextSerial());
  }

  #implementPointer(p: ServerResource<'wl_pointer'>): void {
    p.implement({
      set_cursor: ({ serial, surface, hotspot_x, hotspot_y }) => {
        if (surface) {
          const s = this.#surfaceOf(surface);
          if (s && s.roleName !== null && s.roleName !== CURSOR_ROLE) {
            p.postError(POINTER_ERROR.role, `wl_surface@${surface.id} has the role ${s.roleName}`);
            return;
          }
          if (s) s.roleName = CURSOR_ROLE;
        }
        // only the client with the pointer focus, naming its latest enter, sets the cursor
        if (this.#pointerFocus?.client !== p.client || this.#enterSerial.get(p.client) !== serial) return;
        if (surface) this.#watch(surface);
        this.#setCursor({ surface, hotspotX: hotspot_x, hotspotY: hotspot_y });
      },
    });
  }

  #sendKeymap(k: ServerResource<'wl_keyboard'>): void {
    k.send('keymap', { format: this.#keymap.format, fd: this.#keymap.fd.fd, size: this.#keymap.size });
  }

  #keyboardEnter(surface: ServerResource<'wl_surface'>): void {
    const ks = this.#live(this.#keyboards, surface.client);
    if (ks.length === 0) return;
    const serial = this.#server.nextSerial();
    const keys = u32Array(this.#pressed);
    for (const k of ks) k.send('enter', { serial, surface, keys });
    const mserial = this.#server.nextSerial();
    for (const k of ks) k.send('modifiers', { serial: mserial, ...this.#modArgs() });
  }

  #pointerEnter(surface: ServerResource<'wl_surface'>): void {
    const ps = this.#live(this.#pointers, surface.client);
    if (ps.length === 0) return;
    const serial = this.#server.nextSerial();
    for (const p of ps) this.#enterOne(p, surface, serial);
  }

  #enterOne(p: ServerResource<'wl_pointer'>, surface: ServerResource<'wl_surface'>, serial: number): void {
    this.#enterSerial.set(p.client, serial);
    p.send('enter', { serial, surface, surface_x: this.#pointerPos.x, surface_y: this.#pointerPos.y });
    if (p.version >= 5) p.send('frame', {});
  }
}
