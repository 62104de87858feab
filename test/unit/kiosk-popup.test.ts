// The kiosk's xdg_popup and xdg_positioner (compositor-example/popup.ts, positioner.ts,
// xdg-shell.ts) against protocol/xdg-shell.xml, with real clients (libwayland-client through
// primebuf's WaylandConnection) against the kiosk's protocol implementations on the host: the
// configure sequence, the map, the placement seen by the scene (Toplevel.popups(), window geometry
// taken into account), reposition, popup_done when the parent goes, a denied grab, and each
// protocol error; after a client's protocol error the server goes on serving another client.
import t, { type Test } from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { errorOf } from '../util/protocol-error.js';
import { WaylandConnection, WaylandServer, type ServerResource, type WaylandProxy } from '../../src/wayland/index.js';
import { installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { installXdgShell, type Toplevel } from '../../compositor-example/xdg-shell.js';
import { ADJUST, ANCHOR, GRAVITY } from '../../compositor-example/positioner.js';

const OUTPUT = { width: 640, height: 480 };

interface Server {
  server: WaylandServer;
  toplevels: Toplevel[];
  /** popupsChanged calls */
  changes: number;
  close(): void;
}

/**
 * wl_compositor, xdg_wm_base v5, a stand-in wl_shm whose buffers hold nothing but remember their
 * size (the shell's sizeOf reads it), and a stand-in wl_seat (no input: only so that a client can
 * name a seat in xdg_popup.grab).
 */
function startServer(output: { width: number; height: number } = OUTPUT): Server {
  const server = new WaylandServer();
  const sizes = new WeakMap<ServerResource, { width: number; height: number }>();
  const s: Server = { server, toplevels: [], changes: 0, close: () => server.close() };
  const surfaces = installCompositor(server, () => undefined);
  installXdgShell(
    server,
    (r) => surfaces.get(r) as Surface | undefined,
    () => output,
    {
      mapped: (tl) => void (s.toplevels.includes(tl) || s.toplevels.push(tl)),
      unmapped: () => undefined,
      popupsChanged: () => void s.changes++,
    },
    { sizeOf: (surf) => (surf.buffer ? sizes.get(surf.buffer) : undefined) },
  );
  server.createGlobal('wl_shm', 1, (res) =>
    res.implement({
      create_pool: ({ id, fd }) => {
        fd.close();
        id.implement({ create_buffer: ({ id: b, width, height }) => void sizes.set(b.implement({}), { width, height }) });
      },
    }),
  );
  server.createGlobal('wl_seat', 1, (res) => void res.implement({}));
  return s;
}

interface Client {
  conn: WaylandConnection;
  comp: WaylandProxy<'wl_compositor'>;
  wm: WaylandProxy<'xdg_wm_base'>;
  shm: WaylandProxy<'wl_shm'>;
  seat: WaylandProxy<'wl_seat'>;
  close(): void;
}

async function connect(s: Server): Promise<Client> {
  const conn = WaylandConnection.fromFd(s.server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const g = (name: string): (typeof globals)[number] => globals.find((x) => x.interface === name)!;
  const comp = conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5);
  const wm = conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', 5);
  wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
  const shm = conn.bind(registry, g('wl_shm'), 'wl_shm', 1);
  const seat = conn.bind(registry, g('wl_seat'), 'wl_seat', 1);
  return { conn, comp, wm, shm, seat, close: () => conn.close() };
}

/** A server and one client; both closed at the end of the test. */
async function rig(t: Test): Promise<Server & { c: Client }> {
  const s = startServer();
  const c = await connect(s);
  t.teardown(() => {
    c.close();
    s.close();
  });
  return Object.assign(s, { c });
}

function buffer(c: Client, width: number, height: number): WaylandProxy<'wl_buffer'> {
  const fd = plainMemfd('popup-test', 4096);
  const pool = c.shm.request('create_pool', { fd, size: 4096 });
  fd.close();
  return pool.request('create_buffer', { offset: 0, width, height, stride: width * 4, format: 1 });
}

interface Window {
  surf: WaylandProxy<'wl_surface'>;
  xs: WaylandProxy<'xdg_surface'>;
  /** events in order */
  events: string[];
  serials: number[];
}

/** A mapped fullscreen toplevel with a `w` x `h` buffer (and a window geometry when given). */
async function mappedToplevel(c: Client, w = 640, h = 480, geometry?: { x: number; y: number; width: number; height: number }): Promise<Window & { tl: WaylandProxy<'xdg_toplevel'> }> {
  const surf = c.comp.request('create_surface', {});
  const xs = c.wm.request('get_xdg_surface', { surface: surf });
  const tl = xs.request('get_toplevel', {});
  const win: Window & { tl: WaylandProxy<'xdg_toplevel'> } = { surf, xs, tl, events: [], serials: [] };
  xs.on('configure', ({ serial }) => void win.serials.push(serial));
  surf.request('commit', {});
  await c.conn.roundtrip();
  xs.request('ack_configure', { serial: win.serials.at(-1)! });
  if (geometry) xs.request('set_window_geometry', geometry);
  surf.request('attach', { buffer: buffer(c, w, h), x: 0, y: 0 });
  surf.request('commit', {});
  await c.conn.roundtrip();
  return win;
}

interface PositionerSpec {
  size?: [number, number];
  rect?: [number, number, number, number];
  anchor?: number;
  gravity?: number;
  adjust?: number;
  offset?: [number, number];
}

function positioner(c: Client, p: PositionerSpec = {}): WaylandProxy<'xdg_positioner'> {
  const pos = c.wm.request('create_positioner', {});
  const [w, h] = p.size ?? [100, 50];
  pos.request('set_size', { width: w, height: h });
  const [x, y, rw, rh] = p.rect ?? [10, 10, 20, 20];
  pos.request('set_anchor_rect', { x, y, width: rw, height: rh });
  if (p.anchor !== undefined) pos.request('set_anchor', { anchor: p.anchor });
  if (p.gravity !== undefined) pos.request('set_gravity', { gravity: p.gravity });
  if (p.adjust !== undefined) pos.request('set_constraint_adjustment', { constraint_adjustment: p.adjust });
  if (p.offset) pos.request('set_offset', { x: p.offset[0], y: p.offset[1] });
  return pos;
}

/** A popup's client side, recording its events in order. */
function popup(c: Client, parent: WaylandProxy<'xdg_surface'> | null, pos: WaylandProxy<'xdg_positioner'>): Window & { popup: WaylandProxy<'xdg_popup'>; configures: Array<[number, number, number, number]> } {
  const surf = c.comp.request('create_surface', {});
  const xs = c.wm.request('get_xdg_surface', { surface: surf });
  const pp = xs.request('get_popup', { parent, positioner: pos });
  const win = { surf, xs, popup: pp, events: [] as string[], serials: [] as number[], configures: [] as Array<[number, number, number, number]> };
  pp.on('configure', ({ x, y, width, height }) => {
    win.configures.push([x, y, width, height]);
    win.events.push(`popup.configure ${x},${y} ${width}x${height}`);
  });
  pp.on('repositioned', ({ token }) => void win.events.push(`repositioned ${token}`));
  pp.on('popup_done', () => void win.events.push('popup_done'));
  xs.on('configure', ({ serial }) => {
    win.serials.push(serial);
    win.events.push('xdg_surface.configure');
  });
  return win;
}

/** Acks the last configure and commits a `w` x `h` buffer. */
function mapPopup(c: Client, p: Window, w = 100, h = 50): void {
  p.xs.request('ack_configure', { serial: p.serials.at(-1)! });
  p.surf.request('attach', { buffer: buffer(c, w, h), x: 0, y: 0 });
  p.surf.request('commit', {});
}

t.test('the initial commit is answered with xdg_popup.configure (the placed rectangle), then xdg_surface.configure', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const p = popup(r.c, top.xs, positioner(r.c, { rect: [10, 10, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right }));
  await r.c.conn.roundtrip();
  t.same(p.events, [], 'nothing before the initial commit');
  p.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  // anchor bottom_left of (10, 10, 20x20) is (10, 30); gravity bottom_right puts the popup there
  t.same(p.events, ['popup.configure 10,30 100x50', 'xdg_surface.configure']);
  t.same(r.toplevels[0]!.popups(), [], 'not mapped yet');
});

t.test('a commit with a buffer after the ack maps the popup: Toplevel.popups() places it relative to the parent surface', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const p = popup(r.c, top.xs, positioner(r.c, { rect: [10, 10, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right, offset: [3, 4] }));
  p.surf.request('commit', {});
  await r.c.conn.roundtrip();
  const before = r.changes;
  mapPopup(r.c, p);
  t.equal(await errorOf(r.c), null);
  const views = r.toplevels[0]!.popups();
  t.equal(views.length, 1);
  t.match(views[0], { x: 13, y: 34, width: 100, height: 50, popups: [] });
  t.equal(views[0]!.surface.resource.id, p.surf.id, 'the popup wl_surface');
  t.ok(r.changes > before, 'the shell heard that the popups changed');
});

t.test('window geometry: positions are relative to the parent window geometry, views to the surfaces', async (t) => {
  const r = await rig(t);
  // a toplevel with a 5 px shadow: geometry (5, 5, 630x470) of a 640x480 surface
  const top = await mappedToplevel(r.c, 640, 480, { x: 5, y: 5, width: 630, height: 470 });
  const p = popup(r.c, top.xs, positioner(r.c, { rect: [10, 10, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right }));
  p.xs.request('set_window_geometry', { x: 2, y: 3, width: 100, height: 50 });
  p.surf.request('commit', {});
  await r.c.conn.roundtrip();
  t.same(p.configures, [[10, 30, 100, 50]], 'configure relative to the parent window geometry');
  mapPopup(r.c, p, 104, 56);
  t.equal(await errorOf(r.c), null);
  // surface origin: parent geometry (5, 5) + (10, 30) - the popup's own geometry offset (2, 3)
  t.match(r.toplevels[0]!.popups(), [{ x: 13, y: 32, width: 100, height: 50 }]);
});

t.test('constraint adjustment keeps the popup on the output (slide_x, flip_y)', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  // right of x = 620 a 100-wide popup leaves the 640-wide output: slid left to 540
  const a = popup(r.c, top.xs, positioner(r.c, { rect: [600, 10, 20, 20], anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right, adjust: ADJUST.slide_x }));
  a.surf.request('commit', {});
  // below y = 470 a 50-high popup leaves the 480-high output: flipped above the anchor rectangle (450 - 50)
  const b = popup(r.c, top.xs, positioner(r.c, { rect: [100, 450, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right, adjust: ADJUST.flip_y }));
  b.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  t.same(a.configures, [[540, 30, 100, 50]]);
  t.same(b.configures, [[100, 400, 100, 50]]);
});

t.test('nested popups: a popup of a popup, placed from its parent popup, in the tree of views', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const a = popup(r.c, top.xs, positioner(r.c, { rect: [10, 10, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right }));
  a.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, a);
  const b = popup(r.c, a.xs, positioner(r.c, { rect: [90, 0, 10, 10], anchor: ANCHOR.top_right, gravity: GRAVITY.bottom_right }));
  b.surf.request('commit', {});
  await r.c.conn.roundtrip();
  t.same(b.configures, [[100, 0, 100, 50]], 'relative to the parent popup');
  mapPopup(r.c, b);
  const c2 = popup(r.c, top.xs, positioner(r.c, { rect: [300, 300, 20, 20] }));
  c2.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, c2);
  t.equal(await errorOf(r.c), null);
  const views = r.toplevels[0]!.popups();
  t.same(
    views.map((v) => [v.surface.resource.id, v.x, v.y, v.popups.map((w) => [w.surface.resource.id, w.x, w.y])]),
    [
      [a.surf.id, 10, 30, [[b.surf.id, 100, 0]]],
      [c2.surf.id, 260, 285, []],
    ],
    'creation order, each popup with its own',
  );
});

t.test('reposition: repositioned with the token, configure, xdg_surface.configure; the new place after ack and commit', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const p = popup(r.c, top.xs, positioner(r.c, { rect: [10, 10, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right }));
  p.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, p);
  await r.c.conn.roundtrip();
  p.events.length = 0;
  p.popup.request('reposition', { positioner: positioner(r.c, { rect: [200, 100, 20, 20], anchor: ANCHOR.bottom_left, gravity: GRAVITY.bottom_right }), token: 42 });
  t.equal(await errorOf(r.c), null);
  t.same(p.events, ['repositioned 42', 'popup.configure 200,120 100x50', 'xdg_surface.configure']);
  t.match(r.toplevels[0]!.popups(), [{ x: 10, y: 30 }], 'still at the old place before the ack');
  p.xs.request('ack_configure', { serial: p.serials.at(-1)! });
  await r.c.conn.roundtrip();
  t.match(r.toplevels[0]!.popups(), [{ x: 10, y: 30 }], 'acked, not committed: the old place');
  p.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  t.match(r.toplevels[0]!.popups(), [{ x: 200, y: 120 }], 'the new place after the commit');
});

t.test('popup_done when the parent goes: unmapped by a NULL buffer, or its xdg_toplevel destroyed; topmost first', async (t) => {
  for (const how of ['null buffer', 'destroyed'] as const) {
    const s = startServer();
    const c = await connect(s);
    const top = await mappedToplevel(c);
    const a = popup(c, top.xs, positioner(c));
    a.surf.request('commit', {});
    await c.conn.roundtrip();
    mapPopup(c, a);
    const b = popup(c, a.xs, positioner(c));
    b.surf.request('commit', {});
    await c.conn.roundtrip();
    mapPopup(c, b);
    await c.conn.roundtrip();
    t.equal(s.toplevels[0]!.popups().length, 1, `${how}: mapped`);
    const order: string[] = [];
    a.popup.on('popup_done', () => void order.push('a'));
    b.popup.on('popup_done', () => void order.push('b'));
    if (how === 'null buffer') {
      top.surf.request('attach', { buffer: null, x: 0, y: 0 });
      top.surf.request('commit', {});
    } else top.tl.request('destroy', {});
    t.equal(await errorOf(c), null);
    t.same(order, ['b', 'a'], `${how}: popup_done, the nested popup first`);
    t.same(s.toplevels[0]!.popups(), [], `${how}: no popup left in the scene`);
    // the client destroys them in order: no error
    b.popup.request('destroy', {});
    a.popup.request('destroy', {});
    t.equal(await errorOf(c), null, `${how}: destroyed after popup_done`);
    c.close();
    s.close();
  }
});

t.test('popup_done when a parent popup is unmapped; a dismissed popup ignores its commits', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const a = popup(r.c, top.xs, positioner(r.c));
  a.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, a);
  const b = popup(r.c, a.xs, positioner(r.c));
  b.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, b);
  await r.c.conn.roundtrip();
  a.surf.request('attach', { buffer: null, x: 0, y: 0 });
  a.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  t.equal(b.events.at(-1), 'popup_done');
  b.surf.request('attach', { buffer: buffer(r.c, 100, 50), x: 0, y: 0 });
  b.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  t.same(r.toplevels[0]!.popups(), [], 'the unmapped popup and its dismissed popup are not shown');
});

t.test('a popup without a parent: dismissed at its initial commit (the kiosk has no protocol giving one), never configured', async (t) => {
  const r = await rig(t);
  const p = popup(r.c, null, positioner(r.c));
  p.surf.request('commit', {});
  t.equal(await errorOf(r.c), null, 'no protocol error');
  t.same(p.events, ['popup_done']);
});

t.test('grab: without input no serial is valid, so the grab is denied and the popup dismissed', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const p = popup(r.c, top.xs, positioner(r.c));
  p.popup.request('grab', { seat: r.c.seat, serial: 1 });
  p.surf.request('commit', {});
  t.equal(await errorOf(r.c), null);
  t.same(p.events, ['popup_done'], 'popup_done, no configure');
  // a popup of the dismissed grabbing popup is dismissed too ("if the parent is a grabbing popup
  // which has already been dismissed, this popup will be immediately dismissed")
  const q = popup(r.c, p.xs, positioner(r.c));
  q.popup.request('grab', { seat: r.c.seat, serial: 2 });
  t.equal(await errorOf(r.c), null);
  t.same(q.events, ['popup_done']);
});

t.test('errors: a grab after the popup was mapped is xdg_popup.invalid_grab', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const p = popup(r.c, top.xs, positioner(r.c));
  p.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, p);
  await r.c.conn.roundtrip();
  p.popup.request('grab', { seat: r.c.seat, serial: 1 });
  t.match(await errorOf(r.c), { interface: 'xdg_popup', objectId: p.popup.id, codeName: 'invalid_grab', code: 0 });
});

t.test('errors: a grab on a popup whose parent popup took no grab is xdg_popup.invalid_grab', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const a = popup(r.c, top.xs, positioner(r.c));
  a.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, a);
  const b = popup(r.c, a.xs, positioner(r.c));
  b.popup.request('grab', { seat: r.c.seat, serial: 1 });
  t.match(await errorOf(r.c), { interface: 'xdg_popup', objectId: b.popup.id, codeName: 'invalid_grab' });
});

t.test('errors: destroying a popup that is not the topmost is xdg_wm_base.not_the_topmost_popup', async (t) => {
  const r = await rig(t);
  const top = await mappedToplevel(r.c);
  const a = popup(r.c, top.xs, positioner(r.c));
  a.surf.request('commit', {});
  await r.c.conn.roundtrip();
  mapPopup(r.c, a);
  const b = popup(r.c, a.xs, positioner(r.c));
  b.surf.request('commit', {});
  await r.c.conn.roundtrip();
  a.popup.request('destroy', {});
  t.match(await errorOf(r.c), { interface: 'xdg_wm_base', objectId: r.c.wm.id, codeName: 'not_the_topmost_popup', code: 2 });
});

t.test('errors: an incomplete positioner in get_popup or reposition is xdg_wm_base.invalid_positioner', async (t) => {
  const cases: Array<[string, (c: Client, pos: WaylandProxy<'xdg_positioner'>) => Promise<void>]> = [
    [
      'get_popup',
      async (c, pos) => {
        const top = await mappedToplevel(c);
        popup(c, top.xs, pos);
      },
    ],
    [
      'reposition',
      async (c, pos) => {
        const top = await mappedToplevel(c);
        const p = popup(c, top.xs, positioner(c));
        p.surf.request('commit', {});
        await c.conn.roundtrip();
        p.popup.request('reposition', { positioner: pos, token: 1 });
      },
    ],
  ];
  const incomplete: Array<[string, (c: Client) => WaylandProxy<'xdg_positioner'>]> = [
    ['no size', (c) => {
      const pos = c.wm.request('create_positioner', {});
      pos.request('set_anchor_rect', { x: 0, y: 0, width: 10, height: 10 });
      return pos;
    }],
    ['no anchor rectangle', (c) => {
      const pos = c.wm.request('create_positioner', {});
      pos.request('set_size', { width: 10, height: 10 });
      return pos;
    }],
    ['a zero-width anchor rectangle', (c) => positioner(c, { rect: [0, 0, 0, 10] })],
  ];
  for (const [request, act] of cases) {
    for (const [what, make] of incomplete) {
      const s = startServer();
      const c = await connect(s);
      await act(c, make(c));
      t.match(await errorOf(c), { interface: 'xdg_wm_base', objectId: c.wm.id, codeName: 'invalid_positioner', code: 5 }, `${request} with ${what}`);
      c.close();
      s.close();
    }
  }
});

t.test('errors: xdg_positioner.invalid_input for a non-positive size, a negative anchor rectangle, a gravity or anchor outside its enum', async (t) => {
  const cases: Array<[string, (pos: WaylandProxy<'xdg_positioner'>) => void]> = [
    ['set_size 0x10', (pos) => pos.request('set_size', { width: 0, height: 10 })],
    ['set_size 10x-1', (pos) => pos.request('set_size', { width: 10, height: -1 })],
    ['set_anchor_rect -1x10', (pos) => pos.request('set_anchor_rect', { x: 0, y: 0, width: -1, height: 10 })],
    ['set_anchor_rect 10x-5', (pos) => pos.request('set_anchor_rect', { x: 0, y: 0, width: 10, height: -5 })],
    ['set_gravity 9', (pos) => pos.request('set_gravity', { gravity: 9 })],
    ['set_anchor 9', (pos) => pos.request('set_anchor', { anchor: 9 })],
  ];
  for (const [name, act] of cases) {
    const s = startServer();
    const c = await connect(s);
    const pos = c.wm.request('create_positioner', {});
    act(pos);
    t.match(await errorOf(c), { interface: 'xdg_positioner', objectId: pos.id, codeName: 'invalid_input', code: 0 }, name);
    c.close();
    s.close();
  }
  // and what is allowed: a zero-size anchor rectangle (a point), the v3 requests
  const r = await rig(t);
  const pos = r.c.wm.request('create_positioner', {});
  pos.request('set_anchor_rect', { x: 5, y: 5, width: 0, height: 0 });
  pos.request('set_reactive', {});
  pos.request('set_parent_size', { parent_width: 640, parent_height: 480 });
  pos.request('set_parent_configure', { serial: 1 });
  pos.request('set_constraint_adjustment', { constraint_adjustment: 0xffff });
  t.equal(await errorOf(r.c), null, 'a point anchor rectangle, set_reactive, set_parent_size, set_parent_configure, unknown adjustment bits');
});

t.test('errors: a parent xdg_surface without a role is xdg_wm_base.invalid_popup_parent', async (t) => {
  const r = await rig(t);
  const bare = r.c.wm.request('get_xdg_surface', { surface: r.c.comp.request('create_surface', {}) });
  popup(r.c, bare, positioner(r.c));
  t.match(await errorOf(r.c), { interface: 'xdg_wm_base', objectId: r.c.wm.id, codeName: 'invalid_popup_parent', code: 3 });
});

t.test('errors: a buffer before the popup was configured, or before the ack, is unconfigured_buffer; an unknown serial invalid_serial', async (t) => {
  for (const when of ['initial commit', 'before the ack', 'unknown serial'] as const) {
    const s = startServer();
    const c = await connect(s);
    const top = await mappedToplevel(c);
    const p = popup(c, top.xs, positioner(c));
    if (when === 'initial commit') {
      p.surf.request('attach', { buffer: buffer(c, 100, 50), x: 0, y: 0 });
      p.surf.request('commit', {});
    } else {
      p.surf.request('commit', {});
      await c.conn.roundtrip();
      if (when === 'unknown serial') p.xs.request('ack_configure', { serial: p.serials.at(-1)! + 1000 });
      else {
        p.surf.request('attach', { buffer: buffer(c, 100, 50), x: 0, y: 0 });
        p.surf.request('commit', {});
      }
    }
    t.match(await errorOf(c), { interface: 'xdg_surface', objectId: p.xs.id, codeName: when === 'unknown serial' ? 'invalid_serial' : 'unconfigured_buffer' }, when);
    c.close();
    s.close();
  }
});

t.test('after a client protocol error the server goes on serving another client', async (t) => {
  const s = startServer();
  t.teardown(() => s.close());
  const bad = await connect(s);
  const good = await connect(s);
  const badTop = await mappedToplevel(bad);
  const goodTop = await mappedToplevel(good);
  const a = popup(bad, badTop.xs, positioner(bad));
  a.surf.request('commit', {});
  await bad.conn.roundtrip();
  mapPopup(bad, a);
  popup(bad, a.xs, positioner(bad)).surf.request('commit', {});
  await bad.conn.roundtrip();
  a.popup.request('destroy', {});
  t.match(await errorOf(bad), { codeName: 'not_the_topmost_popup' }, 'the first client is disconnected');
  bad.close();
  const p = popup(good, goodTop.xs, positioner(good, { rect: [50, 60, 10, 10], anchor: ANCHOR.top_left, gravity: GRAVITY.bottom_right }));
  p.surf.request('commit', {});
  await good.conn.roundtrip();
  mapPopup(good, p);
  t.equal(await errorOf(good), null);
  t.same(p.events, ['popup.configure 50,60 100x50', 'xdg_surface.configure']);
  const mine = s.toplevels.find((tl) => tl.popups().length > 0);
  t.match(mine?.popups(), [{ x: 50, y: 60 }], 'the other client popup is mapped');
  good.close();
});

t.test('set_reactive: a reactive popup is placed again (configure) when its toplevel is configured for a new output size', async (t) => {
  const output = { width: 640, height: 480 };
  const s = startServer(output);
  const c = await connect(s);
  t.teardown(() => {
    c.close();
    s.close();
  });
  const top = await mappedToplevel(c);
  const reactivePos = positioner(c, { rect: [560, 10, 20, 20], anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right, adjust: ADJUST.slide_x });
  reactivePos.request('set_reactive', {});
  const reactive = popup(c, top.xs, reactivePos);
  reactive.surf.request('commit', {});
  const still = popup(c, top.xs, positioner(c, { rect: [560, 100, 20, 20], anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right, adjust: ADJUST.slide_x }));
  still.surf.request('commit', {});
  await c.conn.roundtrip();
  mapPopup(c, reactive);
  mapPopup(c, still);
  t.equal(await errorOf(c), null);
  t.same(reactive.configures, [[540, 30, 100, 50]], 'slid inside 640');
  output.width = 800; // a new mode: the toplevel is configured again
  s.toplevels[0]!.configure();
  t.equal(await errorOf(c), null);
  t.same(reactive.configures, [[540, 30, 100, 50], [580, 30, 100, 50]], 'the reactive popup: placed again, no slide needed in 800');
  t.same(still.configures, [[540, 120, 100, 50]], 'the other popup: not configured again');
});
