// The kiosk's input policy (compositor-example/input.ts, focus.ts, pick.ts) over the seat
// (seat.ts), xdg popups (popup.ts) and subsurfaces, with real clients (libwayland-client through
// primebuf's WaylandConnection) on a server wired as kiosk.ts wires it (wl_compositor, primebuf's
// wl_shm, wl_subcompositor, xdg_wm_base with the focus policy's grab test, the Shell whose shown
// toplevel is what input goes to) and a fake input context emitting the InputEvents of
// primebuf/input (src/input/types.ts) in place of libinput. Output: a 640x480 mode (480x640 with
// transform 90: the same 640x480 logical area).
import t, { type Test } from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { errorOf } from '../util/protocol-error.js';
import { WaylandConnection, WaylandServer, installShm, type WaylandProxy, type GlobalInfo } from '../../src/wayland/index.js';
import { BTN, KEY, type InputDeviceInfo, type InputEvent, type InputCapability } from '../../src/input/index.js';
import { installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { installXdgShell } from '../../compositor-example/xdg-shell.js';
import { installSubcompositor } from '../../compositor-example/subsurface.js';
import { Shell } from '../../compositor-example/shell.js';
import { Seat } from '../../compositor-example/seat.js';
import { DataDeviceManager } from '../../compositor-example/data-device.js';
import { FocusPolicy } from '../../compositor-example/focus.js';
import { LibinputBackend, parseKeySpec, parseKeymapOption, type InputSource } from '../../compositor-example/input.js';
import { crtcToLogical, logicalToCrtc } from '../../compositor-example/pick.js';

const KEYMAP = 'xkb_keymap { xkb_keycodes "test" { minimum = 8; maximum = 255; <AE01> = 10; }; };';
const KEY_1 = 2;
const KEY_BACKSPACE = KEY.BACKSPACE;
const KEY_LEFTCTRL = KEY.LEFTCTRL;
const KEY_LEFTALT = KEY.LEFTALT;
const BTN_LEFT = BTN.LEFT;

/** The fake input context: devices and events as openInput's would give them. */
class FakeInput implements InputSource {
  readonly keymap = KEYMAP;
  devices: InputDeviceInfo[] = [];
  closed = false;
  #fn: ((e: InputEvent) => void) | undefined;
  onEvent(fn: (e: InputEvent) => void): void {
    this.#fn = fn;
  }
  emit(e: InputEvent): void {
    this.#fn?.(e);
  }
  close(): void {
    this.closed = true;
  }
}

function device(id: number, ...capabilities: InputCapability[]): InputDeviceInfo {
  return { id, name: `test ${capabilities.join('+')}`, sysname: `event${id}`, capabilities };
}

interface Rig {
  server: WaylandServer;
  seat: Seat;
  shell: Shell;
  input: FakeInput;
  backend: LibinputBackend;
  quits: number;
  surfaceOf(r: Parameters<Seat['focus']>[0] & object): Surface | undefined;
}

function rig(t: Test, opts: { transform?: 0 | 90 | 180 | 270; quitKey?: string; devices?: InputDeviceInfo[] } = {}): Rig {
  const transform = opts.transform ?? 0;
  const mode = transform % 180 === 0 ? { width: 640, height: 480 } : { width: 480, height: 640 };
  const server = new WaylandServer({ onHandlerError: () => undefined });
  const surfaces = installCompositor(server, () => undefined);
  const surfaceOf = (r: Parameters<typeof surfaces.get>[0]): Surface | undefined => surfaces.get(r);
  const shm = installShm(server);
  const seat = new Seat(server, surfaceOf);
  const data = new DataDeviceManager(server, seat, surfaceOf);
  const focus = new FocusPolicy(seat, () => shell.top);
  const shell = new Shell(() => {
    focus.update();
    backend.repick();
  });
  installXdgShell(server, surfaceOf, () => ({ width: 640, height: 480 }), {
    mapped: (tl) => shell.mapped(tl),
    unmapped: (tl) => shell.unmapped(tl),
    popupsChanged: (tl) => {
      if (shell.top !== tl) return;
      focus.update();
      backend.repick();
    },
  }, { grab: (p, s, serial) => focus.grabAllowed(p, s, serial) });
  installSubcompositor(server, surfaceOf);
  const input = new FakeInput();
  input.devices = opts.devices ?? [device(1, 'keyboard'), device(2, 'pointer'), device(3, 'touch')];
  const r: Rig = { server, seat, shell, input, backend: undefined as unknown as LibinputBackend, quits: 0, surfaceOf };
  const backend = (r.backend = new LibinputBackend(input, {
    mode,
    transform,
    root: () => shell.top,
    buttonPressed: (s) => void focus.buttonPressed(s),
    quit: () => void r.quits++,
  }, opts.quitKey ? { quitKey: parseKeySpec(opts.quitKey) } : {}));
  seat.attachBackend(backend);
  t.teardown(() => {
    data.close();
    seat.close();
    shm.close();
    server.close();
  });
  return r;
}

interface Client {
  conn: WaylandConnection;
  globals: GlobalInfo[];
  comp: WaylandProxy<'wl_compositor'>;
  wm: WaylandProxy<'xdg_wm_base'>;
  shm: WaylandProxy<'wl_shm'>;
  sub: WaylandProxy<'wl_subcompositor'>;
  seat: WaylandProxy<'wl_seat'>;
  close(): void;
}

async function connect(t: Test, r: Rig): Promise<Client> {
  const conn = WaylandConnection.fromFd(r.server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const g = (name: string): GlobalInfo => globals.find((x) => x.interface === name)!;
  const wm = conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', 5);
  wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
  const c: Client = {
    conn,
    globals,
    comp: conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5),
    wm,
    shm: conn.bind(registry, g('wl_shm'), 'wl_shm', 1),
    sub: conn.bind(registry, g('wl_subcompositor'), 'wl_subcompositor', 1),
    seat: conn.bind(registry, g('wl_seat'), 'wl_seat', 8),
    close: () => conn.close(),
  };
  t.teardown(() => c.close());
  await conn.roundtrip();
  return c;
}

function buffer(c: Client, w: number, h: number): WaylandProxy<'wl_buffer'> {
  const size = w * h * 4;
  const fd = plainMemfd('input-test', size);
  const pool = c.shm.request('create_pool', { fd, size });
  fd.close();
  const b = pool.request('create_buffer', { offset: 0, width: w, height: h, stride: w * 4, format: 1 });
  pool.request('destroy', {});
  return b;
}

/** A mapped toplevel of w x h (centred on the 640x480 logical area). */
async function toplevel(c: Client, w: number, h: number): Promise<{ surf: WaylandProxy<'wl_surface'>; xs: WaylandProxy<'xdg_surface'> }> {
  const surf = c.comp.request('create_surface', {});
  const xs = c.wm.request('get_xdg_surface', { surface: surf });
  xs.request('get_toplevel', {});
  let serial = -1;
  xs.on('configure', (e) => void (serial = e.serial));
  surf.request('commit', {});
  await c.conn.roundtrip();
  xs.request('ack_configure', { serial });
  surf.request('attach', { buffer: buffer(c, w, h), x: 0, y: 0 });
  surf.request('commit', {});
  await c.conn.roundtrip();
  return { surf, xs };
}

/** Events of a wl_pointer as lines. */
function watchPointer(p: WaylandProxy<'wl_pointer'>, log: string[], enterSerials: number[] = []): void {
  p.on('enter', ({ serial, surface, surface_x, surface_y }) => {
    enterSerials.push(serial);
    log.push(`enter ${surface?.id} ${surface_x},${surface_y}`);
  });
  p.on('leave', ({ surface }) => void log.push(`leave ${surface?.id}`));
  p.on('motion', ({ time, surface_x, surface_y }) => void log.push(`motion ${time} ${surface_x},${surface_y}`));
  p.on('button', ({ time, button, state }) => void log.push(`button ${time} ${button} ${state}`));
  p.on('axis', ({ axis, value }) => void log.push(`axis ${axis} ${value}`));
  p.on('axis_source', ({ axis_source }) => void log.push(`axis_source ${axis_source}`));
  p.on('axis_value120', ({ axis, value120 }) => void log.push(`axis_value120 ${axis} ${value120}`));
  p.on('axis_stop', ({ axis }) => void log.push(`axis_stop ${axis}`));
  p.on('frame', () => void log.push('frame'));
}

t.test('key specs and --keymap', async (t) => {
  t.same(parseKeySpec('ctrl+alt+BackSpace'), { text: 'ctrl+alt+BackSpace', mods: 4 | 8, keysyms: [0xff08] });
  t.same(parseKeySpec('super+q').keysyms, [0x71, 0x51], 'a letter matches in either case');
  t.throws(() => parseKeySpec('hyper+q'), RangeError, 'an unknown modifier');
  t.throws(() => parseKeySpec('ctrl+NoSuchKey'), RangeError, 'an unknown key');
  t.same(parseKeymapOption('us,dvorak'), { layout: 'us', variant: 'dvorak' });
  t.same(parseKeymapOption('de'), { layout: 'de' });
  t.equal(parseKeymapOption(undefined), undefined, 'unset: XKB_DEFAULT_* (openInput) decide');
});

t.test('logical <-> CRTC points round-trip under every output transform', async (t) => {
  for (const rot of [0, 90, 180, 270] as const) {
    const mode = rot % 180 === 0 ? { width: 640, height: 480 } : { width: 480, height: 640 };
    const c = logicalToCrtc(100, 30, mode, rot);
    t.ok(c.x >= 0 && c.x <= mode.width && c.y >= 0 && c.y <= mode.height, `${rot}: on the CRTC`);
    t.same(crtcToLogical(c.x, c.y, mode, rot), { x: 100, y: 30 }, `${rot}: back on the logical area`);
  }
  t.same(logicalToCrtc(0, 0, { width: 480, height: 640 }, 90), { x: 480, y: 0 }, "90: the logical top-left is the CRTC's top-right");
});

t.test('capabilities follow device-added and device-removed; the context is closed with the seat', async (t) => {
  const r = rig(t, { devices: [] });
  const c = await connect(t, r);
  t.same(r.seat.capabilities, { pointer: false, keyboard: false, touch: false }, 'no devices: no capabilities');
  const caps: number[] = [];
  c.seat.on('capabilities', ({ capabilities }) => void caps.push(capabilities));
  r.input.emit({ type: 'device-added', device: device(7, 'keyboard') });
  r.input.emit({ type: 'device-added', device: device(8, 'pointer', 'touch') });
  r.input.emit({ type: 'device-added', device: device(9, 'keyboard') });
  r.input.emit({ type: 'device-removed', device: device(7, 'keyboard') });
  await c.conn.roundtrip();
  r.input.emit({ type: 'device-removed', device: device(9, 'keyboard') });
  r.input.emit({ type: 'device-removed', device: device(8, 'pointer', 'touch') });
  await c.conn.roundtrip();
  t.same(caps, [2, 7, 5, 0], 'keyboard, +pointer+touch, (a second keyboard changes nothing, nor its twin leaving), keyboard gone, none');
  t.notOk(r.input.closed);
  r.seat.close();
  t.ok(r.input.closed, "the seat's close closes the backend's input context");
});

t.test('keys reach the focused client with the keymap, times in ms; a second wl_keyboard hears them too', async (t) => {
  const r = rig(t);
  const c = await connect(t, r);
  const { surf } = await toplevel(c, 200, 100);
  const logs: string[][] = [[], []];
  for (const log of logs) {
    const kb = c.seat.request('get_keyboard', {});
    kb.on('keymap', ({ format, size, fd }) => {
      fd.close();
      log.push(`keymap ${format} ${size}`);
    });
    kb.on('enter', ({ surface }) => void log.push(`enter ${surface?.id}`));
    kb.on('key', ({ time, key, state }) => void log.push(`key ${time} ${key} ${state}`));
    kb.on('modifiers', ({ mods_depressed, mods_locked }) => void log.push(`modifiers ${mods_depressed} ${mods_locked}`));
  }
  await c.conn.roundtrip();
  r.input.emit({ type: 'key', device: 1, timeUs: 1_234_567, key: KEY_1, pressed: true, keysym: 0x31, utf8: '1' });
  r.input.emit({ type: 'key', device: 1, timeUs: 1_300_999, key: KEY_1, pressed: false, keysym: 0x31, utf8: '1' });
  r.input.emit({ type: 'key', device: 1, timeUs: 2_000_000, key: 42, pressed: true, keysym: 0xffe1, utf8: '', modifiers: { depressed: 1, latched: 0, locked: 0, group: 0 } });
  await c.conn.roundtrip();
  const expected = [`keymap 1 ${KEYMAP.length + 1}`, `enter ${surf.id}`, 'modifiers 0 0', 'key 1234 2 1', 'key 1300 2 0', 'key 2000 42 1', 'modifiers 1 0'];
  t.same(logs[0], expected, 'keymap (the text and its NUL), enter on the shown toplevel, keys with ms times, the modifiers after the key that changed them');
  t.same(logs[1], expected, 'a second wl_keyboard of the client hears the same');
  t.equal(await errorOf(c), null, 'no protocol error');
});

t.test('pointer: enter/leave/motion in surface coordinates across a toplevel and its subsurface, buttons, axis', async (t) => {
  const r = rig(t);
  const c = await connect(t, r);
  const log: string[] = [];
  const enterSerials: number[] = [];
  watchPointer(c.seat.request('get_pointer', {}), log, enterSerials);
  // the toplevel 200x100 centred on 640x480: at (220, 190); its subsurface 50x40 at (10, 20) in it
  const { surf } = await toplevel(c, 200, 100);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_position', { x: 10, y: 20 });
  child.request('attach', { buffer: buffer(c, 50, 40), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {}); // the synchronized subsurface's state with its parent's
  await c.conn.roundtrip();
  r.backend.repick(); // the kiosk repicks at every frame: the cursor (the centre, 320,240) is over the toplevel
  await c.conn.roundtrip();
  t.same(log, [`enter ${surf.id} 100,50`, 'frame'], 'the cursor starts at the centre: enter on the toplevel at (100, 50)');
  log.length = 0;
  // relative motion to (235, 215): inside the subsurface at (5, 5)
  r.input.emit({ type: 'pointer-motion', device: 2, timeUs: 10_000, dx: -85, dy: -25 });
  r.input.emit({ type: 'pointer-motion', device: 2, timeUs: 11_000, dx: 2.5, dy: 1 });
  // absolute motion to (300, 250) (a fraction of the 640x480 CRTC): the toplevel at (80, 60)
  r.input.emit({ type: 'pointer-motion-absolute', device: 2, timeUs: 12_000, x: 300 / 640, y: 250 / 480 });
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 13_000, button: BTN_LEFT, pressed: true });
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 14_000, button: BTN_LEFT, pressed: false });
  r.input.emit({ type: 'pointer-axis', device: 2, timeUs: 15_000, source: 'wheel', vertical: { value: 15, value120: 120 } });
  r.input.emit({ type: 'pointer-axis', device: 2, timeUs: 16_000, source: 'finger', vertical: { value: 0, stop: true } });
  // off the toplevel, clamped to the output: over no surface
  r.input.emit({ type: 'pointer-motion', device: 2, timeUs: 17_000, dx: -5000, dy: -5000 });
  await c.conn.roundtrip();
  t.same(
    log,
    [
      `leave ${surf.id}`, 'frame', `enter ${child.id} 5,5`, 'frame',
      'motion 11 7.5,6', 'frame',
      `leave ${child.id}`, 'frame', `enter ${surf.id} 80,60`, 'frame',
      `button 13 ${BTN_LEFT} 1`, 'frame', `button 14 ${BTN_LEFT} 0`, 'frame',
      'axis_source 0', 'axis_value120 0 120', 'axis 0 15', 'frame',
      'axis_source 1', 'axis_stop 0', 'frame',
      `leave ${surf.id}`, 'frame',
    ],
    'leave/enter as the cursor crosses surfaces (the enter carries the position), motion in the subsurface, buttons, a wheel and a finger stop, leave off the toplevel',
  );
  t.same(r.backend.position, { x: 0, y: 0 }, 'relative motion is clamped to the output');
  t.equal(await errorOf(c), null, 'no protocol error');
});

t.test("set_cursor of the pointer-focused client (its latest enter) is the seat's cursor; a surface with another role is wl_pointer.error.role", async (t) => {
  const r = rig(t);
  const c = await connect(t, r);
  const log: string[] = [];
  const enters: number[] = [];
  const ptr = c.seat.request('get_pointer', {});
  watchPointer(ptr, log, enters);
  const { surf } = await toplevel(c, 200, 100);
  let changes = 0;
  r.seat.onCursorChange(() => void changes++);
  r.backend.repick();
  await c.conn.roundtrip();
  const cs = c.comp.request('create_surface', {});
  ptr.request('set_cursor', { serial: enters.at(-1)! - 1, surface: cs, hotspot_x: 3, hotspot_y: 4 });
  await c.conn.roundtrip();
  t.equal(r.seat.cursor, null, 'a serial that is not the latest enter: ignored');
  ptr.request('set_cursor', { serial: enters.at(-1)!, surface: cs, hotspot_x: 3, hotspot_y: 4 });
  await c.conn.roundtrip();
  t.match(r.seat.cursor, { surface: { id: cs.id }, hotspotX: 3, hotspotY: 4 }, 'the cursor surface with its hotspot');
  t.equal(changes, 1, 'the kiosk hears of it');
  r.input.emit({ type: 'pointer-motion', device: 2, timeUs: 1000, dx: -1000, dy: 0 });
  t.equal(r.seat.cursor, null, 'the pointer left the client: back to the default cursor');
  ptr.request('set_cursor', { serial: enters.at(-1)!, surface: surf, hotspot_x: 0, hotspot_y: 0 });
  t.match(await errorOf(c), { interface: 'wl_pointer', objectId: ptr.id, code: 0 }, 'the toplevel surface as cursor: wl_pointer.error.role');
});

/** A popup of `parent` (size 100x50 anchored at (10,10,20,20) of its geometry), events recorded. */
function popup(c: Client, parent: WaylandProxy<'xdg_surface'>): { surf: WaylandProxy<'wl_surface'>; xs: WaylandProxy<'xdg_surface'>; popup: WaylandProxy<'xdg_popup'>; events: string[]; serials: number[] } {
  const pos = c.wm.request('create_positioner', {});
  pos.request('set_size', { width: 100, height: 50 });
  pos.request('set_anchor_rect', { x: 10, y: 10, width: 20, height: 20 });
  pos.request('set_anchor', { anchor: 8 /* bottom_right */ });
  pos.request('set_gravity', { gravity: 8 /* bottom_right */ });
  const surf = c.comp.request('create_surface', {});
  const xs = c.wm.request('get_xdg_surface', { surface: surf });
  const pp = xs.request('get_popup', { parent, positioner: pos });
  const w = { surf, xs, popup: pp, events: [] as string[], serials: [] as number[] };
  pp.on('popup_done', () => void w.events.push('popup_done'));
  xs.on('configure', ({ serial }) => void w.serials.push(serial));
  return w;
}

t.test('a button serial lets a popup grab: keyboard focus to the popup; a click on the client is reported, a click outside dismisses (topmost first)', async (t) => {
  const r = rig(t);
  const c = await connect(t, r);
  const kbLog: string[] = [];
  const kb = c.seat.request('get_keyboard', {});
  kb.on('keymap', ({ fd }) => fd.close());
  kb.on('enter', ({ surface }) => void kbLog.push(`enter ${surface?.id}`));
  kb.on('leave', ({ surface }) => void kbLog.push(`leave ${surface?.id}`));
  let buttonSerial = -1;
  const ptr = c.seat.request('get_pointer', {});
  ptr.on('button', ({ serial, state }) => void (state === 1 && (buttonSerial = serial)));
  const top = await toplevel(c, 200, 100);
  r.backend.repick();

  // a grab with a serial the client was never sent: denied, dismissed at once
  const bad = popup(c, top.xs);
  bad.popup.request('grab', { seat: c.seat, serial: 12345 });
  bad.surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(bad.events, ['popup_done'], 'a grab naming no input event: denied (popup_done)');
  bad.popup.request('destroy', {});
  bad.xs.request('destroy', {});

  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 1000, button: BTN_LEFT, pressed: true });
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 2000, button: BTN_LEFT, pressed: false });
  await c.conn.roundtrip();
  t.ok(buttonSerial > 0, 'the press carried a serial');
  const map = async (p: ReturnType<typeof popup>): Promise<void> => {
    p.popup.request('grab', { seat: c.seat, serial: buttonSerial });
    p.surf.request('commit', {});
    await c.conn.roundtrip();
    p.xs.request('ack_configure', { serial: p.serials.at(-1)! });
    p.surf.request('attach', { buffer: buffer(c, 100, 50), x: 0, y: 0 });
    p.surf.request('commit', {});
    await c.conn.roundtrip();
  };
  const a = popup(c, top.xs);
  await map(a);
  const b = popup(c, a.xs); // a nested grabbing popup
  await map(b);
  t.same(a.events, [], 'the grab with the press serial is kept: no popup_done');
  t.same(kbLog, [`enter ${top.surf.id}`, `leave ${top.surf.id}`, `enter ${a.surf.id}`, `leave ${a.surf.id}`, `enter ${b.surf.id}`], 'keyboard focus to the topmost grabbing popup');
  kbLog.length = 0;
  // a click on the popup (the client's own surface): reported, nothing dismissed. Popup a at
  // (30, 30) of the toplevel at (220, 190): (250, 220) on the logical area
  r.input.emit({ type: 'pointer-motion-absolute', device: 2, timeUs: 3000, x: 260 / 640, y: 230 / 480 });
  t.equal(r.seat.pointerFocused?.id, a.surf.id, 'the pointer is over popup a');
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 4000, button: BTN_LEFT, pressed: true });
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 5000, button: BTN_LEFT, pressed: false });
  await c.conn.roundtrip();
  t.same([a.events, b.events], [[], []], "a click on the client's surface: no dismissal");
  // outside every surface (the black around the toplevel)
  r.input.emit({ type: 'pointer-motion-absolute', device: 2, timeUs: 6000, x: 5 / 640, y: 5 / 480 });
  r.input.emit({ type: 'pointer-button', device: 2, timeUs: 7000, button: BTN_LEFT, pressed: true });
  const order: string[] = [];
  a.popup.on('popup_done', () => void order.push('a'));
  b.popup.on('popup_done', () => void order.push('b'));
  await c.conn.roundtrip();
  t.same(order, ['b', 'a'], 'a click outside: popup_done to the popups, topmost first');
  t.same(kbLog, [`leave ${b.surf.id}`, `enter ${top.surf.id}`], 'the keyboard focus returns to the toplevel');
  t.equal(await errorOf(c), null, 'no protocol error');
});

t.test('touch: mapped through the output transform (90) to the surface under it, which keeps the point', async (t) => {
  const r = rig(t, { transform: 90 });
  const c = await connect(t, r);
  const ev: string[] = [];
  const touch = c.seat.request('get_touch', {});
  touch.on('down', ({ surface, id, x, y }) => void ev.push(`down ${surface?.id} ${id} ${x},${y}`));
  touch.on('motion', ({ id, x, y }) => void ev.push(`motion ${id} ${x},${y}`));
  touch.on('up', ({ id }) => void ev.push(`up ${id}`));
  touch.on('frame', () => void ev.push('frame'));
  const { surf } = await toplevel(c, 200, 100);
  // logical (250, 200) is the toplevel's (30, 10); on the 480x640 CRTC turned 90: (480-200, 250)
  r.input.emit({ type: 'touch-down', device: 3, timeUs: 1000, slot: 0, x: 280 / 480, y: 250 / 640 });
  r.input.emit({ type: 'touch-frame', device: 3, timeUs: 1000 });
  // outside the toplevel: the point stays with it (coordinates may leave the surface)
  r.input.emit({ type: 'touch-motion', device: 3, timeUs: 2000, slot: 0, x: 480 / 480, y: 200 / 640 });
  r.input.emit({ type: 'touch-frame', device: 3, timeUs: 2000 });
  r.input.emit({ type: 'touch-up', device: 3, timeUs: 3000, slot: 0 });
  r.input.emit({ type: 'touch-frame', device: 3, timeUs: 3000 });
  // a touch on no surface goes nowhere
  r.input.emit({ type: 'touch-down', device: 3, timeUs: 4000, slot: 1, x: 0.01, y: 0.01 });
  r.input.emit({ type: 'touch-frame', device: 3, timeUs: 4000 });
  await c.conn.roundtrip();
  t.same(ev, [`down ${surf.id} 0 30,10`, 'frame', 'motion 0 -20,-190', 'frame', 'up 0', 'frame'], 'down at (30, 10) of the toplevel, motion relative to it, up; nothing for a touch outside');
});

t.test('the quit key stops the kiosk and never reaches the client (press nor release); other keys do', async (t) => {
  const r = rig(t, { quitKey: 'ctrl+alt+BackSpace' });
  const c = await connect(t, r);
  const keys: string[] = [];
  const kb = c.seat.request('get_keyboard', {});
  kb.on('keymap', ({ fd }) => fd.close());
  kb.on('key', ({ key, state }) => void keys.push(`${key} ${state}`));
  await toplevel(c, 200, 100);
  const mods = (depressed: number): { depressed: number; latched: number; locked: number; group: number } => ({ depressed, latched: 0, locked: 0, group: 0 });
  const key = (key: number, pressed: boolean, keysym: number, m?: number): void =>
    r.input.emit({ type: 'key', device: 1, timeUs: 1000, key, pressed, keysym, utf8: '', ...(m !== undefined ? { modifiers: mods(m) } : {}) });
  key(KEY_BACKSPACE, true, 0xff08); // BackSpace alone: the client's
  key(KEY_BACKSPACE, false, 0xff08);
  key(KEY_LEFTCTRL, true, 0xffe3, 4);
  key(KEY_BACKSPACE, true, 0xff08); // ctrl+BackSpace: the client's
  key(KEY_BACKSPACE, false, 0xff08);
  t.equal(r.quits, 0, 'no quit without every modifier of the spec');
  key(KEY_LEFTALT, true, 0xffe9, 12);
  key(KEY_BACKSPACE, true, 0xff08);
  t.equal(r.quits, 1, 'ctrl+alt+BackSpace: quit');
  key(KEY_BACKSPACE, false, 0xff08);
  key(KEY_LEFTALT, false, 0xffe9, 4);
  key(KEY_LEFTCTRL, false, 0xffe3, 0);
  await c.conn.roundtrip();
  t.same(
    keys,
    [`${KEY_BACKSPACE} 1`, `${KEY_BACKSPACE} 0`, `${KEY_LEFTCTRL} 1`, `${KEY_BACKSPACE} 1`, `${KEY_BACKSPACE} 0`, `${KEY_LEFTALT} 1`, `${KEY_LEFTALT} 0`, `${KEY_LEFTCTRL} 0`],
    'the client hears every key but the quit key, neither its press nor its release',
  );
});
