// The kiosk's xdg-shell (compositor-example/xdg-shell.ts) against the protocol text of xdg-shell
// v5 (protocol/xdg-shell.xml), server and client in one process: wm_capabilities before the
// first configure, the xdg_surface errors (not_constructed, already_constructed,
// defunct_role_object, invalid_serial for a configure from before an unmap) and xdg_wm_base.role
// for a second role (issue 18, fault 9).
import t from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { errorOf } from '../util/protocol-error.js';
import { WaylandConnection, WaylandServer, ProtocolError, type WaylandProxy } from '../../src/wayland/index.js';
import { installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { installXdgShell, type Toplevel } from '../../compositor-example/xdg-shell.js';

interface Rig {
  server: WaylandServer;
  conn: WaylandConnection;
  comp: WaylandProxy<'wl_compositor'>;
  wm: WaylandProxy<'xdg_wm_base'>;
  shm: WaylandProxy<'wl_shm'>;
  events: string[];
  toplevels: Toplevel[];
  close(): void;
}

/** A server with wl_compositor, xdg_wm_base v5 and a stand-in wl_shm (buffers that hold nothing). */
async function rig(): Promise<Rig> {
  const server = new WaylandServer();
  const events: string[] = [];
  const toplevels: Toplevel[] = [];
  const surfaces = installCompositor(server, () => undefined);
  installXdgShell(server, (r) => surfaces.get(r) as Surface | undefined, () => ({ width: 640, height: 480 }), {
    mapped: (tl) => {
      events.push('mapped');
      if (!toplevels.includes(tl)) toplevels.push(tl);
    },
    unmapped: () => void events.push('unmapped'),
  });
  server.createGlobal('wl_shm', 1, (res) =>
    res.implement({
      create_pool: ({ id, fd }) => {
        fd.close();
        id.implement({ create_buffer: ({ id: b }) => void b.implement({}) });
      },
    }),
  );
  const conn = WaylandConnection.fromFd(server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const g = (name: string): (typeof globals)[number] => globals.find((x) => x.interface === name)!;
  const comp = conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5);
  const wm = conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', g('xdg_wm_base').version);
  wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
  const shm = conn.bind(registry, g('wl_shm'), 'wl_shm', 1);
  return {
    server,
    conn,
    comp,
    wm,
    shm,
    events,
    toplevels,
    close() {
      conn.close();
      server.close();
    },
  };
}

function buffer(r: Rig): WaylandProxy<'wl_buffer'> {
  const fd = plainMemfd('xdg-test', 64 * 64 * 4);
  const pool = r.shm.request('create_pool', { fd, size: 64 * 64 * 4 });
  fd.close();
  return pool.request('create_buffer', { offset: 0, width: 64, height: 64, stride: 256, format: 1 });
}

/** A toplevel's client side: every configure serial it got, the event order. */
function toplevel(r: Rig, xs: WaylandProxy<'xdg_surface'>): { tl: WaylandProxy<'xdg_toplevel'>; serials: number[]; order: string[] } {
  const tl = xs.request('get_toplevel', {});
  const serials: number[] = [];
  const order: string[] = [];
  tl.on('wm_capabilities', ({ capabilities }) => void order.push(`wm_capabilities[${capabilities.length}]`));
  tl.on('configure', () => void order.push('toplevel.configure'));
  xs.on('configure', ({ serial }) => {
    serials.push(serial);
    order.push('xdg_surface.configure');
  });
  return { tl, serials, order };
}

t.test('fault 9: a v5 toplevel gets wm_capabilities before its first configure', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  t.equal(r.wm.version, 5, 'xdg_wm_base is advertised at version 5');
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  const { order } = toplevel(r, xs);
  surf.request('commit', {});
  t.equal(await errorOf(r), null);
  t.same(order, ['wm_capabilities[0]', 'toplevel.configure', 'xdg_surface.configure'], 'wm_capabilities (none: a kiosk offers no window menu, maximize, fullscreen toggle or minimize), then the configure');
});

t.test('fault 9: an xdg_surface destroyed before its toplevel is defunct_role_object', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  toplevel(r, xs);
  await r.conn.roundtrip();
  const id = xs.id;
  xs.request('destroy', {});
  const e = await errorOf(r);
  // The client forgot the xdg_surface with its destructor request, so libwayland's client cannot
  // name the object the error is on (it reports object 0 of no interface): the code says which.
  t.ok(e instanceof ProtocolError, `a protocol error (${String(e)})`);
  t.equal(e?.code, 6, 'xdg_surface.error.defunct_role_object (6)');
  t.ok(e?.objectId === 0 || e?.objectId === id, 'on the destroyed xdg_surface');
});

t.test('fault 9: xdg_wm_base destroyed before its xdg_surfaces is defunct_surfaces', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  r.wm.request('get_xdg_surface', { surface: surf });
  await r.conn.roundtrip();
  r.wm.request('destroy', {});
  const e = await errorOf(r);
  t.ok(e instanceof ProtocolError, `a protocol error (${String(e)})`);
  t.equal(e?.code, 1, 'xdg_wm_base.error.defunct_surfaces (1)');
});

t.test('fault 9: the toplevel first, then its xdg_surface, is no error', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  const { tl } = toplevel(r, xs);
  surf.request('commit', {});
  await r.conn.roundtrip();
  tl.request('destroy', {});
  xs.request('destroy', {});
  t.equal(await errorOf(r), null);
  // and the wl_surface can have a new xdg_surface and toplevel
  const xs2 = r.wm.request('get_xdg_surface', { surface: surf });
  const { order } = toplevel(r, xs2);
  surf.request('commit', {});
  t.equal(await errorOf(r), null);
  t.same(order, ['wm_capabilities[0]', 'toplevel.configure', 'xdg_surface.configure'], 'configured again');
});

t.test('fault 9: a second get_xdg_surface on one wl_surface is already_constructed', async (t) => {
  for (const withRole of [false, true]) {
    const r = await rig();
    const surf = r.comp.request('create_surface', {});
    const xs = r.wm.request('get_xdg_surface', { surface: surf });
    if (withRole) toplevel(r, xs);
    const xs2 = r.wm.request('get_xdg_surface', { surface: surf });
    const e = await errorOf(r);
    t.match(e, { interface: 'xdg_surface', objectId: xs2.id, codeName: 'already_constructed' }, `${withRole ? 'after' : 'before'} get_toplevel on the first`);
    r.close();
  }
});

t.test('fault 9: a second role object on one xdg_surface is already_constructed', async (t) => {
  for (const second of ['get_toplevel', 'get_popup'] as const) {
    const r = await rig();
    const surf = r.comp.request('create_surface', {});
    const xs = r.wm.request('get_xdg_surface', { surface: surf });
    toplevel(r, xs);
    if (second === 'get_toplevel') xs.request('get_toplevel', {});
    else xs.request('get_popup', { parent: null, positioner: r.wm.request('create_positioner', {}) });
    const e = await errorOf(r);
    t.match(e, { interface: 'xdg_surface', objectId: xs.id, codeName: 'already_constructed' }, `${second} after get_toplevel`);
    r.close();
  }
});

t.test('fault 9: a wl_surface that was a popup cannot become a toplevel (xdg_wm_base.role)', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  // a complete positioner (an incomplete one is invalid_positioner, see kiosk-popup.test.ts)
  const positioner = r.wm.request('create_positioner', {});
  positioner.request('set_size', { width: 10, height: 10 });
  positioner.request('set_anchor_rect', { x: 0, y: 0, width: 1, height: 1 });
  const popup = xs.request('get_popup', { parent: null, positioner });
  await r.conn.roundtrip();
  popup.request('destroy', {});
  xs.request('destroy', {});
  t.equal(await errorOf(r), null, 'popup, then its xdg_surface, destroyed in order');
  const xs2 = r.wm.request('get_xdg_surface', { surface: surf });
  xs2.request('get_toplevel', {});
  const e = await errorOf(r);
  t.match(e, { interface: 'xdg_wm_base', objectId: r.wm.id, codeName: 'role', code: 0 });
});

t.test('fault 9: xdg_surface requests and a commit before a role are not_constructed', async (t) => {
  const cases: Array<[string, (xs: WaylandProxy<'xdg_surface'>, surf: WaylandProxy<'wl_surface'>) => void]> = [
    ['set_window_geometry', (xs) => xs.request('set_window_geometry', { x: 0, y: 0, width: 10, height: 10 })],
    ['ack_configure', (xs) => xs.request('ack_configure', { serial: 1 })],
    ['wl_surface.commit', (_xs, surf) => surf.request('commit', {})],
  ];
  for (const [name, act] of cases) {
    const r = await rig();
    const surf = r.comp.request('create_surface', {});
    const xs = r.wm.request('get_xdg_surface', { surface: surf });
    act(xs, surf);
    const e = await errorOf(r);
    t.match(e, { interface: 'xdg_surface', objectId: xs.id, codeName: 'not_constructed', code: 1 }, name);
    r.close();
  }
});

t.test('fault 9: a configure serial from before an unmap cannot ack the new map (invalid_serial)', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  const { serials } = toplevel(r, xs);
  surf.request('commit', {});
  await r.conn.roundtrip();
  xs.request('ack_configure', { serial: serials[0]! });
  surf.request('attach', { buffer: buffer(r), x: 0, y: 0 });
  surf.request('commit', {});
  await r.conn.roundtrip();
  t.same(r.events, ['mapped']);
  // the compositor configures the mapped toplevel again (a new output size, say); before the
  // client acks, it unmaps with a NULL buffer and starts over
  r.toplevels[0]!.configure();
  await r.conn.roundtrip();
  t.equal(serials.length, 2, 'a second configure');
  const beforeUnmap = serials[1]!;
  surf.request('attach', { buffer: null, x: 0, y: 0 });
  surf.request('commit', {});
  surf.request('commit', {}); // the initial commit again
  await r.conn.roundtrip();
  t.same(r.events, ['mapped', 'unmapped']);
  t.equal(serials.length, 3, 'the new map is configured');
  xs.request('ack_configure', { serial: beforeUnmap });
  const e = await errorOf(r);
  t.match(e, { interface: 'xdg_surface', objectId: xs.id, codeName: 'invalid_serial', code: 4 }, 'the serial from before the unmap is refused');
});

t.test('fault 9: after an unmap, the new configure acked maps the toplevel again', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const surf = r.comp.request('create_surface', {});
  const xs = r.wm.request('get_xdg_surface', { surface: surf });
  const { serials } = toplevel(r, xs);
  surf.request('commit', {});
  await r.conn.roundtrip();
  xs.request('ack_configure', { serial: serials[0]! });
  surf.request('attach', { buffer: buffer(r), x: 0, y: 0 });
  surf.request('commit', {});
  surf.request('attach', { buffer: null, x: 0, y: 0 });
  surf.request('commit', {});
  surf.request('commit', {});
  await r.conn.roundtrip();
  xs.request('ack_configure', { serial: serials.at(-1)! });
  surf.request('attach', { buffer: buffer(r), x: 0, y: 0 });
  surf.request('commit', {});
  t.equal(await errorOf(r), null);
  t.same(r.events, ['mapped', 'unmapped', 'mapped']);
});
