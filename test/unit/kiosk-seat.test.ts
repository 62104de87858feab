// The kiosk's wl_seat (compositor-example/seat.ts) and wl_data_device_manager
// (compositor-example/data-device.ts) against the core protocol's text (protocol/core/wayland.xml),
// with real clients on the server the kiosk builds (wl_compositor, xdg_wm_base, the Shell whose
// shown toplevel has the seat's focus, as kiosk.ts wires them) and a synthetic input backend in
// place of libinput (issue 21).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { errorOf } from '../util/protocol-error.js';
import { native, testNative } from '../../src/native.js';
import { OwnedFd } from '../../src/fd.js';
import { WaylandConnection, WaylandServer, SEALED_MEMFD_SEALS, type WaylandProxy, type GlobalInfo } from '../../src/wayland/index.js';
import { installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { installXdgShell } from '../../compositor-example/xdg-shell.js';
import { Shell } from '../../compositor-example/shell.js';
import { Seat, SEAT_VERSION, type InputBackend, type SeatInput } from '../../compositor-example/seat.js';
import { DataDeviceManager } from '../../compositor-example/data-device.js';

/** The synthetic backend: what libinput will be, driven by the test. */
class TestBackend implements InputBackend {
  input!: SeatInput;
  closed = false;
  attach(seat: SeatInput): void {
    this.input = seat;
  }
  close(): void {
    this.closed = true;
  }
}

interface Rig {
  server: WaylandServer;
  seat: Seat;
  data: DataDeviceManager;
  shell: Shell;
  close(): void;
}

/** The kiosk's input side on a server: compositor, xdg-shell, Shell -> seat focus, seat, data devices. */
function rig(): Rig {
  const server = new WaylandServer({ onHandlerError: () => undefined });
  const surfaces = installCompositor(server, () => undefined);
  const surfaceOf = (r: Parameters<typeof surfaces.get>[0]): Surface | undefined => surfaces.get(r);
  const seat = new Seat(server, surfaceOf);
  const data = new DataDeviceManager(server, seat, surfaceOf);
  const shell = new Shell((top) => seat.focus(top?.surface.resource ?? null));
  installXdgShell(server, surfaceOf, () => ({ width: 640, height: 480 }), shell);
  // a stand-in wl_shm: buffers that hold nothing (the seat never looks at them)
  server.createGlobal('wl_shm', 1, (res) =>
    res.implement({
      create_pool: ({ id, fd }) => {
        fd.close();
        id.implement({ create_buffer: ({ id: b }) => void b.implement({}) });
      },
    }),
  );
  return {
    server,
    seat,
    data,
    shell,
    close() {
      data.close();
      seat.close();
      server.close();
    },
  };
}

interface Client {
  conn: WaylandConnection;
  registry: WaylandProxy<'wl_registry'>;
  globals: GlobalInfo[];
  bind<I extends 'wl_seat' | 'wl_data_device_manager' | 'wl_compositor' | 'xdg_wm_base' | 'wl_shm'>(iface: I, version?: number): WaylandProxy<I>;
  /** Maps a toplevel (it becomes the shown one: the seat's focus); returns its wl_surface. */
  map(): Promise<WaylandProxy<'wl_surface'>>;
  close(): void;
}

async function client(r: Rig): Promise<Client> {
  const conn = WaylandConnection.fromFd(r.server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const bind = <I extends 'wl_seat' | 'wl_data_device_manager' | 'wl_compositor' | 'xdg_wm_base' | 'wl_shm'>(iface: I, version?: number): WaylandProxy<I> => {
    const g = globals.find((x) => x.interface === iface)!;
    return conn.bind(registry, g, iface, version ?? g.version);
  };
  let comp: WaylandProxy<'wl_compositor'> | undefined;
  let wm: WaylandProxy<'xdg_wm_base'> | undefined;
  let shm: WaylandProxy<'wl_shm'> | undefined;
  return {
    conn,
    registry,
    globals,
    bind,
    async map() {
      comp ??= bind('wl_compositor', 5);
      wm ??= bind('xdg_wm_base').on('ping', ({ serial }) => wm!.request('pong', { serial }));
      shm ??= bind('wl_shm', 1);
      const surf = comp.request('create_surface', {});
      const xs = wm.request('get_xdg_surface', { surface: surf });
      xs.request('get_toplevel', {});
      let serial = -1;
      xs.on('configure', (e) => void (serial = e.serial));
      surf.request('commit', {});
      await conn.roundtrip();
      xs.request('ack_configure', { serial });
      const fd = plainMemfd('seat-test', 64 * 64 * 4);
      const pool = shm.request('create_pool', { fd, size: 64 * 64 * 4 });
      fd.close();
      surf.request('attach', { buffer: pool.request('create_buffer', { offset: 0, width: 64, height: 64, stride: 256, format: 1 }), x: 0, y: 0 });
      surf.request('commit', {});
      await conn.roundtrip();
      return surf;
    },
    close() {
      conn.close();
    },
  };
}

/** A pipe (a FIFO opened at both ends, then unlinked): the read end non-blocking. */
function pipe(): { read: number; write: number } {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-seat-'));
  const path = join(dir, 'fifo');
  try {
    execFileSync('mkfifo', [path]);
    const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const write = openSync(path, constants.O_WRONLY);
    return { read, write };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a non-blocking fd to EOF (polling), then closes it. */
async function readAll(fd: number, timeoutMs = 5000): Promise<string> {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        if (Date.now() > end) throw new Error('pipe: no EOF in time');
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (n === 0) return Buffer.concat(chunks).toString();
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
}

const KEYMAP = 'xkb_keymap { xkb_keycodes "test" { minimum = 8; maximum = 255; <AC01> = 38; }; };';

t.test('a seat with no devices: "seat0", capabilities 0, and get_keyboard/get_pointer/get_touch are missing_capability', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  for (const req of ['get_keyboard', 'get_pointer', 'get_touch'] as const) {
    const c = await client(r);
    const seatG = c.globals.find((g) => g.interface === 'wl_seat');
    t.equal(seatG?.version, SEAT_VERSION, `wl_seat advertised at version ${SEAT_VERSION}`);
    const seat = c.bind('wl_seat');
    const got: string[] = [];
    seat.on('capabilities', ({ capabilities }) => void got.push(`capabilities ${capabilities}`));
    seat.on('name', ({ name }) => void got.push(`name ${name}`));
    await c.conn.roundtrip();
    t.same(got, ['capabilities 0', 'name seat0'], 'bound: no capabilities, named seat0');
    seat.request(req, {});
    const e = await errorOf(c);
    t.match(e, { interface: 'wl_seat', objectId: seat.id, code: 0 }, `${req} on a seat that never had the capability: wl_seat.error.missing_capability`);
    c.close();
  }
  // after three protocol errors the server still serves a client
  const c = await client(r);
  const seat = c.bind('wl_seat', 5);
  let caps = -1;
  seat.on('capabilities', ({ capabilities }) => void (caps = capabilities));
  await c.conn.roundtrip();
  seat.request('release', {});
  t.equal(await errorOf(c), null, 'another client binds and releases the seat without error');
  t.equal(caps, 0);
  c.close();
});

t.test('a synthetic backend: keymap (a sealed memfd the client maps), enter, modifiers, key, modifiers, in order', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const backend = new TestBackend();
  r.seat.attachBackend(backend);
  const c = await client(r);
  t.teardown(() => c.close());
  const seat = c.bind('wl_seat');
  const caps: number[] = [];
  seat.on('capabilities', ({ capabilities }) => void caps.push(capabilities));
  await c.conn.roundtrip();
  backend.input.setKeymap(KEYMAP);
  backend.input.setCapabilities({ pointer: false, keyboard: true, touch: false });
  await c.conn.roundtrip();
  t.same(caps, [0, 2], 'capabilities 0, then keyboard when the backend has one');

  const order: string[] = [];
  let keymapText = '';
  let seals = 0;
  const kb = seat.request('get_keyboard', {});
  kb.on('keymap', ({ format, fd, size }) => {
    seals = native.getSeals(fd.fd);
    const map = native.mmapFd(fd.fd, 0, size, false);
    const bytes = new Uint8Array(map.buffer, 0, size);
    t.equal(bytes[size - 1], 0, 'the keymap text is NUL-terminated');
    keymapText = Buffer.from(bytes.subarray(0, size - 1)).toString();
    native.munmapFd(map.address, size, map.buffer);
    fd.close();
    order.push(`keymap ${format}`);
  });
  kb.on('repeat_info', ({ rate, delay }) => void order.push(`repeat_info ${rate} ${delay}`));
  kb.on('enter', ({ surface, keys }) => void order.push(`enter ${surface?.id ?? 'null'} [${[...new Uint32Array(keys.buffer, keys.byteOffset, keys.byteLength / 4)].join(',')}]`));
  kb.on('leave', () => void order.push('leave'));
  kb.on('key', ({ key, state }) => void order.push(`key ${key} ${state}`));
  kb.on('modifiers', ({ mods_depressed, mods_locked, group }) => void order.push(`modifiers ${mods_depressed} ${mods_locked} ${group}`));
  await c.conn.roundtrip();
  const surf = await c.map();
  t.equal(r.seat.focused?.client.pid, process.pid, 'the shown toplevel has the focus');
  backend.input.key(1000, 30, true); // KEY_A
  backend.input.modifiers({ depressed: 1, latched: 0, locked: 0, group: 0 });
  backend.input.key(1010, 30, false);
  await c.conn.roundtrip();
  t.same(
    order,
    ['keymap 1', 'repeat_info 25 600', `enter ${surf.id} []`, 'modifiers 0 0 0', 'key 30 1', 'modifiers 1 0 0', 'key 30 0'],
    'keymap (xkb_v1), repeat_info, then enter and modifiers on the focus, then the injected key and modifiers in order',
  );
  t.equal(keymapText, KEYMAP, 'the client reads the keymap text through its mapping');
  t.equal(seals & SEALED_MEMFD_SEALS, SEALED_MEMFD_SEALS, `sealed: F_SEAL_SEAL|SHRINK|GROW|WRITE (F_GET_SEALS 0x${seals.toString(16)})`);

  // a second get_keyboard is allowed and hears the same events; a removed capability silences both
  const kb2 = seat.request('get_keyboard', {});
  const second: string[] = [];
  kb2.on('keymap', ({ fd }) => {
    fd.close();
    second.push('keymap');
  });
  kb2.on('enter', () => void second.push('enter'));
  kb2.on('key', ({ key }) => void second.push(`key ${key}`));
  kb2.on('modifiers', () => void second.push('modifiers'));
  await c.conn.roundtrip();
  backend.input.key(1020, 31, true);
  await c.conn.roundtrip();
  t.same(second, ['keymap', 'enter', 'modifiers', 'key 31'], 'a second wl_keyboard: keymap, enter with the focus, then the key');
  t.equal(order[order.length - 1], 'key 31 1', 'the first one hears the key too');
  backend.input.setCapabilities({ pointer: false, keyboard: false, touch: false });
  const before = order.length;
  backend.input.key(1030, 32, true);
  const kb3 = seat.request('get_keyboard', {});
  let kb3Events = 0;
  kb3.on('keymap', ({ fd }) => {
    fd.close();
    kb3Events++;
  });
  t.equal(await errorOf(c), null, 'get_keyboard after the keyboard went: no error (the seat had the capability)');
  t.equal(order.length, before, 'no key after the capability went');
  t.equal(kb3Events, 0, 'the keyboard created without the capability is inert');
});

t.test('the keymap fd is one sealed memfd, closed by the seat when replaced and at close', async (t) => {
  const base = testNative.countOpenFds();
  const r = rig();
  r.seat.setKeymap(KEYMAP);
  r.seat.setKeymap(KEYMAP + ' ');
  r.seat.setKeymap(null);
  r.close();
  t.equal(testNative.countOpenFds(), base, 'fds back to the baseline');
});

t.test("set_cursor with a surface that has another role is wl_pointer.error.role", async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const backend = new TestBackend();
  r.seat.attachBackend(backend);
  backend.input.setCapabilities({ pointer: true, keyboard: false, touch: false });
  const c = await client(r);
  t.teardown(() => c.close());
  const seat = c.bind('wl_seat');
  const ptr = seat.request('get_pointer', {});
  let enterSerial = -1;
  const events: string[] = [];
  ptr.on('enter', ({ serial, surface_x, surface_y }) => {
    enterSerial = serial;
    events.push(`enter ${surface_x},${surface_y}`);
  });
  ptr.on('motion', ({ surface_x, surface_y }) => void events.push(`motion ${surface_x},${surface_y}`));
  ptr.on('button', ({ button, state }) => void events.push(`button ${button} ${state}`));
  ptr.on('frame', () => void events.push('frame'));
  const surf = await c.map();
  await c.conn.roundtrip();
  t.same(events, [], 'the keyboard focus moved to the toplevel; the pointer focus is the policy\'s, not yet given');
  // the kiosk's policy (compositor-example/input.ts) finds the surface under the cursor
  backend.input.pointerFocus(r.seat.focused, 0, 0);
  backend.input.pointerMotion(5, 10.5, 20.25);
  backend.input.pointerButton(6, 0x110, true);
  backend.input.pointerFrame();
  await c.conn.roundtrip();
  t.same(events, ['enter 0,0', 'frame', 'motion 10.5,20.25', 'button 272 1', 'frame'], 'pointer enter on the surface the policy named, then the injected motion and button');
  ptr.request('set_cursor', { serial: enterSerial, surface: surf, hotspot_x: 0, hotspot_y: 0 });
  const e = await errorOf(c);
  t.match(e, { interface: 'wl_pointer', objectId: ptr.id, code: 0 }, 'the toplevel surface as cursor: wl_pointer.error.role');
});

t.test('a selection copied from client A to client B, the bytes through a pipe; cleared when A disconnects', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const fdBase = testNative.countOpenFds();
  const a = await client(r);
  const aSeat = a.bind('wl_seat');
  const aMgr = a.bind('wl_data_device_manager');
  t.equal(aMgr.version, 3, 'wl_data_device_manager version 3');
  const aDev = aMgr.request('get_data_device', { seat: aSeat });
  const aSel: string[] = [];
  aDev.on('data_offer', ({ id }) => id.on('offer', ({ mime_type }) => void aSel.push(mime_type)));
  aDev.on('selection', ({ id }) => void aSel.push(id ? 'selection' : 'selection null'));
  await a.map(); // A is shown: it has the (keyboard) focus
  const src = aMgr.request('create_data_source', {});
  src.request('offer', { mime_type: 'text/plain;charset=utf-8' });
  src.request('offer', { mime_type: 'text/plain' });
  const sends: string[] = [];
  src.on('send', ({ mime_type, fd }) => {
    sends.push(mime_type);
    writeSync(fd.fd, 'copied from A');
    fd.close();
  });
  let cancelled = false;
  src.on('cancelled', () => void (cancelled = true));
  aDev.request('set_selection', { source: src, serial: 0 });
  await a.conn.roundtrip();
  t.same(aSel, ['selection null', 'text/plain;charset=utf-8', 'text/plain', 'selection'], 'A (focused) had no selection, then hears its own');

  const b = await client(r);
  const bSeat = b.bind('wl_seat');
  const bDev = b.bind('wl_data_device_manager').request('get_data_device', { seat: bSeat });
  const bEvents: string[] = [];
  let offer: WaylandProxy<'wl_data_offer'> | null = null;
  bDev.on('data_offer', ({ id }) => {
    bEvents.push('data_offer');
    id.on('offer', ({ mime_type }) => void bEvents.push(`offer ${mime_type}`));
  });
  bDev.on('selection', ({ id }) => {
    bEvents.push(id ? 'selection' : 'selection null');
    offer = id;
  });
  await b.conn.roundtrip();
  t.same(bEvents, [], 'B has no focus: no selection yet');
  await b.map(); // B is shown now
  t.same(bEvents, ['data_offer', 'offer text/plain;charset=utf-8', 'offer text/plain', 'selection'], 'with the focus B gets data_offer, the mime types, selection');
  t.ok(offer, 'a selection offer');
  const held = offer as WaylandProxy<'wl_data_offer'> | null;

  const p = pipe();
  const pW = new OwnedFd(p.write, 'pipe write end');
  offer!.request('receive', { mime_type: 'text/plain;charset=utf-8', fd: pW });
  pW.close(); // the request carried a duplicate
  b.conn.flush();
  const text = readAll(p.read);
  await a.conn.roundtrip(); // A hears send and writes
  t.equal(await text, 'copied from A', 'the bytes went from A to B through the pipe');
  t.same(sends, ['text/plain;charset=utf-8'], "A's source was asked for the mime type B chose");
  t.equal(cancelled, false);
  t.same(r.data.selection, ['text/plain;charset=utf-8', 'text/plain']);

  a.close();
  await b.conn.roundtrip();
  await new Promise((res) => setTimeout(res, 20));
  await b.conn.roundtrip();
  t.equal(bEvents[bEvents.length - 1], 'selection null', "A's client gone: B hears selection(null)");
  t.equal(r.data.selection, null, 'no selection');

  // a receive on the offer of the gone selection: the compositor closes the fd, B reads EOF
  const p2 = pipe();
  const p2W = new OwnedFd(p2.write, 'pipe write end');
  held!.request('receive', { mime_type: 'text/plain', fd: p2W });
  p2W.close(); // the request carried a duplicate
  b.conn.flush();
  t.equal(await readAll(p2.read), '', 'a receive on a stale offer: EOF, no data');
  b.close();
  await new Promise((res) => setTimeout(res, 20));
  t.equal(testNative.countOpenFds(), fdBase, 'fds back to the baseline (sockets, pipes, the fds passed through)');
});

t.test('a receive into a pipe whose reader is closed, and a selection replaced: nothing crashes or leaks', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const fdBase = testNative.countOpenFds();
  const a = await client(r);
  const mgr = a.bind('wl_data_device_manager');
  const dev = mgr.request('get_data_device', { seat: a.bind('wl_seat') });
  let offer: WaylandProxy<'wl_data_offer'> | null = null;
  dev.on('selection', ({ id }) => void (offer = id));
  await a.map();
  const src = mgr.request('create_data_source', {});
  src.request('offer', { mime_type: 'text/plain' });
  const writes: string[] = [];
  src.on('send', ({ fd }) => {
    try {
      writeSync(fd.fd, 'x'.repeat(100));
      writes.push('written');
    } catch (err) {
      writes.push((err as NodeJS.ErrnoException).code ?? 'error');
    } finally {
      fd.close();
    }
  });
  dev.request('set_selection', { source: src, serial: 1 });
  await a.conn.roundtrip();
  t.ok(offer, 'the focused client holds an offer of its own selection');
  const p = pipe();
  closeSync(p.read); // the reader is gone before the source writes
  const pW = new OwnedFd(p.write, 'pipe write end');
  offer!.request('receive', { mime_type: 'text/plain', fd: pW });
  pW.close(); // the request carried a duplicate
  await a.conn.roundtrip();
  await a.conn.roundtrip();
  t.same(writes, ['EPIPE'], 'the source is asked and its write fails with EPIPE (SIGPIPE is ignored by Node)');
  // receive of a mime type the source did not offer: fd closed by the compositor, EOF
  const p2 = pipe();
  const p2W = new OwnedFd(p2.write, 'pipe write end');
  offer!.request('receive', { mime_type: 'image/png', fd: p2W });
  p2W.close(); // the request carried a duplicate
  a.conn.flush();
  t.equal(await readAll(p2.read), '', 'a mime type not offered: EOF');
  t.equal(writes.length, 1, 'the source was not asked');
  // a newer source replaces it: the old one hears cancelled
  let cancelled = false;
  src.on('cancelled', () => void (cancelled = true));
  const src2 = mgr.request('create_data_source', {});
  dev.request('set_selection', { source: src2, serial: 2 });
  await a.conn.roundtrip();
  t.ok(cancelled, 'the replaced source hears cancelled');
  t.equal(await errorOf(a), null, 'no protocol error');
  a.close();
  await new Promise((res) => setTimeout(res, 20));
  t.equal(testNative.countOpenFds(), fdBase, 'fds back to the baseline');
});

t.test('data device errors: a source used twice, set_actions misuse, finish on a selection offer, a drag icon with a role', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  type Case = { name: string; run(c: Client, mgr: WaylandProxy<'wl_data_device_manager'>, dev: WaylandProxy<'wl_data_device'>): Promise<unknown> | unknown; want: object };
  const cases: Case[] = [
    {
      name: 'a source set as the selection twice',
      run: (_c, mgr, dev) => {
        const s = mgr.request('create_data_source', {});
        dev.request('set_selection', { source: s, serial: 0 });
        dev.request('set_selection', { source: s, serial: 0 });
        return s;
      },
      want: { interface: 'wl_data_source', code: 1 },
    },
    {
      name: 'set_actions after the source was used',
      run: (_c, mgr, dev) => {
        const s = mgr.request('create_data_source', {});
        dev.request('set_selection', { source: s, serial: 0 });
        s.request('set_actions', { dnd_actions: 1 });
      },
      want: { interface: 'wl_data_source', code: 1 },
    },
    {
      name: 'a source given set_actions (drag and drop only) set as the selection',
      run: (_c, mgr, dev) => {
        const s = mgr.request('create_data_source', {});
        s.request('set_actions', { dnd_actions: 1 });
        dev.request('set_selection', { source: s, serial: 0 });
      },
      want: { interface: 'wl_data_source', code: 1 },
    },
    {
      name: 'set_actions with bits outside dnd_action',
      run: (_c, mgr) => mgr.request('create_data_source', {}).request('set_actions', { dnd_actions: 8 }),
      want: { interface: 'wl_data_source', code: 0 },
    },
    {
      name: 'a source used by start_drag, then for the selection',
      run: async (c, mgr, dev) => {
        const s = mgr.request('create_data_source', {});
        let cancelled = false;
        s.on('cancelled', () => void (cancelled = true));
        const surf = c.bind('wl_compositor', 5).request('create_surface', {});
        dev.request('start_drag', { source: s, origin: surf, icon: null, serial: 0 });
        await c.conn.roundtrip();
        t.ok(cancelled, 'start_drag is refused: the source hears cancelled (no pointer grab to drag with)');
        dev.request('set_selection', { source: s, serial: 0 });
      },
      want: { interface: 'wl_data_source', code: 1 },
    },
    {
      name: 'a drag icon that is a toplevel',
      run: async (c, mgr, dev) => {
        const surf = await c.map();
        dev.request('start_drag', { source: mgr.request('create_data_source', {}), origin: surf, icon: surf, serial: 0 });
      },
      want: { interface: 'wl_data_device', code: 0 },
    },
    {
      name: 'finish on a selection offer',
      run: async (c, mgr, dev) => {
        let offer: WaylandProxy<'wl_data_offer'> | null = null;
        dev.on('selection', ({ id }) => void (offer = id));
        await c.map();
        const s = mgr.request('create_data_source', {});
        s.request('offer', { mime_type: 'text/plain' });
        dev.request('set_selection', { source: s, serial: 100 });
        await c.conn.roundtrip();
        offer!.request('finish', {});
      },
      want: { interface: 'wl_data_offer', code: 0 },
    },
  ];
  for (const k of cases) {
    const c = await client(r);
    const mgr = c.bind('wl_data_device_manager');
    const dev = mgr.request('get_data_device', { seat: c.bind('wl_seat') });
    await k.run(c, mgr, dev);
    const e = await errorOf(c);
    t.match(e, k.want, `${k.name}: ${e ? `${e.interface}.${e.code}` : 'no error'}`);
    c.close();
  }
  // after the errors another client copies and pastes to itself
  const c = await client(r);
  const mgr = c.bind('wl_data_device_manager');
  const dev = mgr.request('get_data_device', { seat: c.bind('wl_seat') });
  let offer: WaylandProxy<'wl_data_offer'> | null = null;
  dev.on('selection', ({ id }) => void (offer = id));
  await c.map();
  const s = mgr.request('create_data_source', {});
  s.request('offer', { mime_type: 'text/plain' });
  s.on('send', ({ fd }) => {
    writeSync(fd.fd, 'still served');
    fd.close();
  });
  dev.request('set_selection', { source: s, serial: 1000 });
  await c.conn.roundtrip();
  const p = pipe();
  const pW = new OwnedFd(p.write, 'pipe write end');
  offer!.request('receive', { mime_type: 'text/plain', fd: pW });
  pW.close(); // the request carried a duplicate
  c.conn.flush();
  const text = readAll(p.read);
  await c.conn.roundtrip();
  t.equal(await text, 'still served', 'after the protocol errors another client is served');
  c.close();
});

t.test('focus follows the shown toplevel: leave/enter between surfaces, the selection only when the client changes', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const backend = new TestBackend();
  r.seat.attachBackend(backend);
  backend.input.setCapabilities({ pointer: false, keyboard: true, touch: false });
  const log: string[] = [];
  const a = await client(r);
  const b = await client(r);
  t.teardown(() => {
    a.close();
    b.close();
  });
  const watch = (name: string, c: Client): WaylandProxy<'wl_data_device_manager'> => {
    const seat = c.bind('wl_seat');
    const kb = seat.request('get_keyboard', {});
    kb.on('keymap', ({ fd }) => fd.close());
    kb.on('enter', ({ surface }) => void log.push(`${name} enter ${surface?.id}`));
    kb.on('leave', ({ surface }) => void log.push(`${name} leave ${surface?.id}`));
    const mgr = c.bind('wl_data_device_manager');
    const dev = mgr.request('get_data_device', { seat });
    dev.on('selection', ({ id }) => void log.push(`${name} selection${id ? '' : ' null'}`));
    return mgr;
  };
  const aMgr = watch('A', a);
  watch('B', b);
  await a.conn.roundtrip();
  await b.conn.roundtrip();
  const a1 = await a.map();
  const a2 = await a.map();
  await b.conn.roundtrip();
  t.same(log, ['A selection null', `A enter ${a1.id}`, `A leave ${a1.id}`, `A enter ${a2.id}`], "A's second toplevel takes the focus from its first: leave, enter, no second selection event");
  log.length = 0;
  const b1 = await b.map();
  await a.conn.roundtrip();
  // each client's events in order (the two connections are dispatched independently)
  const of = (name: string): string[] => log.filter((l) => l.startsWith(name));
  t.same(of('A'), [`A leave ${a2.id}`], 'B shown: A leaves');
  t.same(of('B'), ['B selection null', `B enter ${b1.id}`], 'B hears the selection, then enter');
  log.length = 0;
  b1.request('destroy', {});
  await b.conn.roundtrip();
  await a.conn.roundtrip();
  t.same(of('A'), ['A selection null', `A enter ${a2.id}`], "B's surface gone: the focus returns to A's shown toplevel, selection first");
  t.same(of('B'), [], 'B hears no leave for its destroyed surface');
  t.equal(aMgr.version, 3);
});

t.test('touch: down, motion, up, frame on the focused surface; a focus change cancels the points', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const backend = new TestBackend();
  r.seat.attachBackend(backend);
  backend.input.setCapabilities({ pointer: false, keyboard: false, touch: true });
  const c = await client(r);
  t.teardown(() => c.close());
  const touch = c.bind('wl_seat').request('get_touch', {});
  const ev: string[] = [];
  touch.on('down', ({ surface, id, x, y }) => void ev.push(`down ${surface?.id} ${id} ${x},${y}`));
  touch.on('motion', ({ id, x, y }) => void ev.push(`motion ${id} ${x},${y}`));
  touch.on('up', ({ id }) => void ev.push(`up ${id}`));
  touch.on('frame', () => void ev.push('frame'));
  touch.on('cancel', () => void ev.push('cancel'));
  const s1 = await c.map();
  backend.input.touchDown(1, 3, 10, 20);
  backend.input.touchFrame();
  backend.input.touchMotion(2, 3, 11, 21);
  backend.input.touchFrame();
  backend.input.touchUp(3, 3);
  backend.input.touchFrame();
  backend.input.touchDown(4, 4, 1, 2);
  await c.conn.roundtrip();
  await c.map();
  t.same(ev, [`down ${s1.id} 3 10,20`, 'frame', 'motion 3 11,21', 'frame', 'up 3', 'frame', `down ${s1.id} 4 1,2`, 'cancel'], 'the injected touch sequence in order; the point still down is cancelled when the focus moves');
});

t.test('the selection ends when its source is destroyed; a released data device hears nothing more', async (t) => {
  const r = rig();
  t.teardown(() => r.close());
  const c = await client(r);
  t.teardown(() => c.close());
  const seat = c.bind('wl_seat');
  const mgr = c.bind('wl_data_device_manager');
  const dev = mgr.request('get_data_device', { seat });
  const dev2 = mgr.request('get_data_device', { seat });
  const log: string[] = [];
  dev.on('selection', ({ id }) => void log.push(id ? 'dev selection' : 'dev selection null'));
  dev2.on('selection', ({ id }) => void log.push(id ? 'dev2 selection' : 'dev2 selection null'));
  await c.map();
  const src = mgr.request('create_data_source', {});
  src.request('offer', { mime_type: 'text/plain' });
  dev.request('set_selection', { source: src, serial: 5 });
  await c.conn.roundtrip();
  t.same(log, ['dev selection null', 'dev2 selection null', 'dev selection', 'dev2 selection'], 'both data devices of the focused client hear the selection');
  log.length = 0;
  dev2.request('release', {});
  src.request('destroy', {});
  t.equal(await errorOf(c), null, 'release (v2+) and destroy: no error');
  t.same(log, ['dev selection null'], 'the source destroyed: selection(null) on the device still there');
  t.equal(r.data.selection, null);
});
