// The kiosk's wl_subcompositor / wl_subsurface (compositor-example/subsurface.ts), wp_viewporter
// (viewporter.ts), wp_single_pixel_buffer_v1 (single-pixel.ts) and the scene built from a
// toplevel's tree (scene.ts), server and real clients in one process (issue 20): the protocol
// errors, the cache of synchronized subsurfaces as wayland.xml describes it, stacking, viewports
// and single-pixel buffers as the scene shows them, and a server that goes on serving after a
// client's protocol error.
import t from 'tap';
import { plainMemfd } from '../util/memfd.js';
import { errorOf } from '../util/protocol-error.js';
import { BufferLifetime, WaylandConnection, WaylandServer, ProtocolError, installShm, type WaylandProxy } from '../../src/wayland/index.js';
import { installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { installXdgShell, type Toplevel } from '../../compositor-example/xdg-shell.js';
import { installSubcompositor } from '../../compositor-example/subsurface.js';
import { installViewporter } from '../../compositor-example/viewporter.js';
import { installSinglePixelBuffer } from '../../compositor-example/single-pixel.js';
import { buildScene, transformRect } from '../../compositor-example/scene.js';
import type { SceneFrame } from '../../src/scanout/scene-types.js';

const MODE = { width: 640, height: 480 };
const XRGB = 1; // wl_shm.format.xrgb8888
const ARGB = 0; // wl_shm.format.argb8888

interface Server {
  server: WaylandServer;
  surfaces: Map<unknown, Surface>;
  toplevels: Toplevel[];
  close(): void;
}

function kioskServer(): Server {
  const server = new WaylandServer();
  const toplevels: Toplevel[] = [];
  installShm(server, { formats: [] });
  const surfaces = installCompositor(server, () => undefined);
  const surfaceOf = (r: Parameters<typeof surfaces.get>[0]): Surface | undefined => surfaces.get(r);
  installXdgShell(server, surfaceOf, () => MODE, {
    mapped: (tl) => void (toplevels.includes(tl) || toplevels.push(tl)),
    unmapped: () => undefined,
  });
  installSubcompositor(server, surfaceOf);
  installViewporter(server, surfaceOf);
  installSinglePixelBuffer(server);
  return { server, surfaces: surfaces as Map<unknown, Surface>, toplevels, close: () => server.close() };
}

interface Client {
  conn: WaylandConnection;
  comp: WaylandProxy<'wl_compositor'>;
  sub: WaylandProxy<'wl_subcompositor'>;
  vp: WaylandProxy<'wp_viewporter'>;
  spb: WaylandProxy<'wp_single_pixel_buffer_manager_v1'>;
  wm: WaylandProxy<'xdg_wm_base'>;
  shm: WaylandProxy<'wl_shm'>;
}

async function client(s: Server): Promise<Client> {
  const conn = WaylandConnection.fromFd(s.server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const g = (name: string): (typeof globals)[number] => globals.find((x) => x.interface === name)!;
  const wm = conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', 5);
  wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
  return {
    conn,
    comp: conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5),
    sub: conn.bind(registry, g('wl_subcompositor'), 'wl_subcompositor', 1),
    vp: conn.bind(registry, g('wp_viewporter'), 'wp_viewporter', 1),
    spb: conn.bind(registry, g('wp_single_pixel_buffer_manager_v1'), 'wp_single_pixel_buffer_manager_v1', 1),
    wm,
    shm: conn.bind(registry, g('wl_shm'), 'wl_shm', 1),
  };
}

function buffer(c: Client, width: number, height: number, format = XRGB): WaylandProxy<'wl_buffer'> {
  const size = width * height * 4;
  const fd = plainMemfd('subsurface-test', size);
  const pool = c.shm.request('create_pool', { fd, size });
  fd.close();
  const b = pool.request('create_buffer', { offset: 0, width, height, stride: width * 4, format });
  pool.request('destroy', {});
  return b;
}

const taken = new WeakSet<Toplevel>();

/** A mapped toplevel with a `width` x `height` buffer; resolves with its wl_surface and the server's Toplevel. */
async function mappedToplevel(s: Server, c: Client, width = 640, height = 480): Promise<{ surf: WaylandProxy<'wl_surface'>; xs: WaylandProxy<'xdg_surface'>; top: Toplevel }> {
  const surf = c.comp.request('create_surface', {});
  const xs = c.wm.request('get_xdg_surface', { surface: surf });
  const serials: number[] = [];
  xs.on('configure', ({ serial }) => void serials.push(serial));
  xs.request('get_toplevel', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  xs.request('ack_configure', { serial: serials[0]! });
  surf.request('attach', { buffer: buffer(c, width, height), x: 0, y: 0 });
  surf.request('commit', {});
  await c.conn.roundtrip();
  const top = s.toplevels.find((tl) => tl.surface.resource.id === surf.id && tl.client.pid === process.pid && !tl.surface.destroyed && tl.mapped && !taken.has(tl));
  if (top) taken.add(top);
  if (!top) throw new Error('the toplevel was not mapped');
  return { surf, xs, top };
}

/** The server's Surface of a client's wl_surface (one client per server in these tests). */
function surfaceOf(s: Server, p: WaylandProxy<'wl_surface'>): Surface {
  for (const surface of s.surfaces.values()) if (surface.resource.id === p.id && !surface.destroyed) return surface;
  throw new Error(`no server surface for wl_surface@${p.id}`);
}

function scene(top: Toplevel, outputTransform: 0 | 90 | 180 | 270 = 0): SceneFrame {
  return buildScene(top, { outputTransform, mode: MODE, bufferOf: (s) => BufferLifetime.of(s.buffer) ?? undefined }).frame;
}

function dsts(f: SceneFrame): string[] {
  return f.surfaces.map((x) => `${x.dst.width}x${x.dst.height}+${x.dst.x}+${x.dst.y}`);
}

async function rig(t: { teardown(fn: () => void): void }): Promise<{ s: Server; c: Client }> {
  const s = kioskServer();
  const c = await client(s);
  t.teardown(() => {
    c.conn.close();
    s.close();
  });
  return { s, c };
}

t.test('get_subsurface: a surface with another role or a live wl_subsurface is bad_surface', async (t) => {
  {
    const { c } = await rig(t);
    const parent = c.comp.request('create_surface', {});
    const surf = c.comp.request('create_surface', {});
    c.wm.request('get_xdg_surface', { surface: surf }).request('get_toplevel', {});
    c.sub.request('get_subsurface', { surface: surf, parent });
    t.match(await errorOf(c), { interface: 'wl_subcompositor', objectId: c.sub.id, code: 0 }, 'an xdg_toplevel cannot become a subsurface');
  }
  {
    const { c } = await rig(t);
    const parent = c.comp.request('create_surface', {});
    const surf = c.comp.request('create_surface', {});
    c.sub.request('get_subsurface', { surface: surf, parent });
    t.equal(await errorOf(c), null, 'the first wl_subsurface is fine');
    c.sub.request('get_subsurface', { surface: surf, parent });
    t.match(await errorOf(c), { interface: 'wl_subcompositor', code: 0 }, 'a second one while the first lives is bad_surface');
  }
  {
    const { c } = await rig(t);
    const parent = c.comp.request('create_surface', {});
    const surf = c.comp.request('create_surface', {});
    const ss = c.sub.request('get_subsurface', { surface: surf, parent });
    ss.request('destroy', {});
    c.sub.request('get_subsurface', { surface: surf, parent });
    t.equal(await errorOf(c), null, 'after the first is destroyed, the surface may be a subsurface again (same role)');
  }
  {
    const { c } = await rig(t);
    const parent = c.comp.request('create_surface', {});
    const surf = c.comp.request('create_surface', {});
    c.sub.request('get_subsurface', { surface: surf, parent }).request('destroy', {});
    c.wm.request('get_xdg_surface', { surface: surf }).request('get_toplevel', {});
    t.match(await errorOf(c), { interface: 'xdg_wm_base', code: 0 }, 'a former subsurface keeps its role: it cannot become a toplevel (xdg_wm_base.role)');
  }
});

t.test('get_subsurface: a parent that is the surface or one of its descendants is bad_parent', async (t) => {
  {
    const { c } = await rig(t);
    const surf = c.comp.request('create_surface', {});
    c.sub.request('get_subsurface', { surface: surf, parent: surf });
    t.match(await errorOf(c), { interface: 'wl_subcompositor', code: 1 }, 'its own parent');
  }
  {
    const { c } = await rig(t);
    const a = c.comp.request('create_surface', {});
    const b = c.comp.request('create_surface', {});
    const d = c.comp.request('create_surface', {});
    c.sub.request('get_subsurface', { surface: b, parent: a });
    c.sub.request('get_subsurface', { surface: d, parent: b });
    t.equal(await errorOf(c), null, 'a > b > d');
    c.sub.request('get_subsurface', { surface: a, parent: d });
    t.match(await errorOf(c), { interface: 'wl_subcompositor', code: 1 }, 'a under its grandchild d: it would be its own ancestor');
  }
});

t.test('place_above / place_below: only the parent or a sibling, else bad_surface', async (t) => {
  for (const [what, pick] of [
    ['the subsurface itself', (x: { self: WaylandProxy<'wl_surface'> }) => x.self],
    ['a surface of another tree', (x: { other: WaylandProxy<'wl_surface'> }) => x.other],
    ['its own child', (x: { child: WaylandProxy<'wl_surface'> }) => x.child],
  ] as const) {
    for (const req of ['place_above', 'place_below'] as const) {
      const { c } = await rig(t);
      const parent = c.comp.request('create_surface', {});
      const self = c.comp.request('create_surface', {});
      const child = c.comp.request('create_surface', {});
      const other = c.comp.request('create_surface', {});
      const ss = c.sub.request('get_subsurface', { surface: self, parent });
      c.sub.request('get_subsurface', { surface: child, parent: self });
      ss.request(req, { sibling: pick({ self, other, child } as never) });
      t.match(await errorOf(c), { interface: 'wl_subsurface', objectId: ss.id, code: 0 }, `${req} ${what}`);
    }
  }
  const { c } = await rig(t);
  const parent = c.comp.request('create_surface', {});
  const a = c.comp.request('create_surface', {});
  const b = c.comp.request('create_surface', {});
  const sa = c.sub.request('get_subsurface', { surface: a, parent });
  c.sub.request('get_subsurface', { surface: b, parent });
  sa.request('place_above', { sibling: b });
  sa.request('place_below', { sibling: parent });
  t.equal(await errorOf(c), null, 'a sibling and the parent are fine');
});

t.test('a synchronized subsurface: its commits are cached until its parent commits; position too', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_position', { x: 10, y: 20 });
  child.request('attach', { buffer: buffer(c, 64, 32), x: 0, y: 0 });
  child.request('commit', {});
  await c.conn.roundtrip();
  const cs = surfaceOf(s, child);
  t.equal(cs.buffer, null, 'the child commit is cached: no buffer applied');
  t.ok(cs.hasCache, 'the commit waits in the cache');
  t.same(dsts(scene(top)), ['640x480+0+0'], 'not in the scene before the parent commits');
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.not(cs.buffer, null, 'applied with the parent commit');
  t.notOk(cs.hasCache, 'the cache is spent');
  t.same(dsts(scene(top)), ['640x480+0+0', '64x32+10+20'], 'above its parent at the position set before the parent commit');
  // a new position waits for the parent's commit, whatever the child does
  ss.request('set_position', { x: 100, y: 50 });
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '64x32+100+50'], 'moved with the parent commit');
  ss.request('set_position', { x: 1, y: 2 });
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '64x32+100+50'], 'set_position alone does not move it');
});

t.test('set_desync applies the cache at once; a desynchronized subsurface commits on its own', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  surf.request('commit', {}); // the subsurface joins the parent's stack
  child.request('attach', { buffer: buffer(c, 50, 50), x: 0, y: 0 });
  child.request('commit', {});
  await c.conn.roundtrip();
  const cs = surfaceOf(s, child);
  t.equal(cs.buffer, null, 'cached while synchronized');
  ss.request('set_desync', {});
  await c.conn.roundtrip();
  t.not(cs.buffer, null, 'set_desync applied the cache');
  t.same(dsts(scene(top)), ['640x480+0+0', '50x50+0+0']);
  child.request('attach', { buffer: buffer(c, 20, 10), x: 0, y: 0 });
  child.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '20x10+0+0'], 'a desynchronized commit is shown without the parent');
  ss.request('set_sync', {});
  child.request('attach', { buffer: buffer(c, 30, 30), x: 0, y: 0 });
  child.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '20x10+0+0'], 'synchronized again: cached');
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '30x30+0+0'], 'applied with the parent');
});

t.test('nested: a desynchronized grandchild under a synchronized child waits for the main surface', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const grand = c.comp.request('create_surface', {});
  const sc = c.sub.request('get_subsurface', { surface: child, parent: surf });
  const sg = c.sub.request('get_subsurface', { surface: grand, parent: child });
  sg.request('set_desync', {}); // desynchronized, but its parent is synchronized: it behaves as synchronized
  sc.request('set_position', { x: 100, y: 100 });
  sg.request('set_position', { x: 5, y: 6 });
  child.request('attach', { buffer: buffer(c, 200, 200), x: 0, y: 0 });
  grand.request('attach', { buffer: buffer(c, 10, 10), x: 0, y: 0 });
  grand.request('commit', {});
  child.request('commit', {});
  await c.conn.roundtrip();
  const gs = surfaceOf(s, grand);
  t.equal(gs.buffer, null, 'the grandchild is cached (its parent is synchronized)');
  t.same(dsts(scene(top)), ['640x480+0+0'], 'nothing shown before the main surface commits');
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '200x200+100+100', '10x10+105+106'], 'child and grandchild applied with the main surface, at their positions');
  grand.request('attach', { buffer: buffer(c, 12, 12), x: 0, y: 0 });
  grand.request('commit', {});
  child.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '200x200+100+100', '10x10+105+106'], 'still waiting for the main surface');
  sc.request('set_desync', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '200x200+100+100', '12x12+105+106'], "the child's set_desync applied its cache, and its child's with it");
  grand.request('attach', { buffer: buffer(c, 14, 14), x: 0, y: 0 });
  grand.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '200x200+100+100', '14x14+105+106'], 'now both desynchronized: the grandchild commits on its own');
});

t.test('place_above / place_below: the order in the scene, applied with the parent commit', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const a = c.comp.request('create_surface', {});
  const b = c.comp.request('create_surface', {});
  const sa = c.sub.request('get_subsurface', { surface: a, parent: surf });
  const sb = c.sub.request('get_subsurface', { surface: b, parent: surf });
  a.request('attach', { buffer: buffer(c, 11, 11), x: 0, y: 0 });
  a.request('commit', {});
  b.request('attach', { buffer: buffer(c, 22, 22), x: 0, y: 0 });
  b.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '11x11+0+0', '22x22+0+0'], 'new subsurfaces go on top, in order of creation');
  sa.request('place_above', { sibling: b });
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '11x11+0+0', '22x22+0+0'], 'not before the parent commits');
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '22x22+0+0', '11x11+0+0'], 'a above b');
  sb.request('place_below', { sibling: surf });
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['22x22+0+0', '640x480+0+0', '11x11+0+0'], 'b below the parent');
  sb.request('destroy', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0', '11x11+0+0'], 'a destroyed wl_subsurface leaves at once');
  a.request('attach', { buffer: null, x: 0, y: 0 });
  a.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.same(dsts(scene(top)), ['640x480+0+0'], 'a NULL buffer hides it');
});

t.test('wp_viewport: source (fractional) and destination in the scene', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_desync', {});
  ss.request('set_position', { x: 8, y: 4 });
  const vp = c.vp.request('get_viewport', { surface: child });
  vp.request('set_source', { x: 10.5, y: 20.25, width: 160.75, height: 120 });
  vp.request('set_destination', { width: 320, height: 240 });
  child.request('attach', { buffer: buffer(c, 320, 240), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  t.equal(await errorOf(c), null);
  let sub = scene(top).surfaces[1]!;
  t.same(sub.src, { x: 10.5, y: 20.25, width: 160.75, height: 120 }, 'the source in buffer pixels, fractional as wl_fixed gave it');
  t.same(sub.dst, { x: 8, y: 4, width: 320, height: 240 }, 'the destination size at the position');
  // with buffer scale 2 and transform 90 (the buffer holds the surface turned): the source
  // rectangle is in surface coordinates and comes back to buffer pixels
  vp.request('set_source', { x: 10, y: 20, width: 30, height: 40 });
  vp.request('set_destination', { width: -1, height: -1 });
  child.request('set_buffer_scale', { scale: 2 });
  child.request('set_buffer_transform', { transform: 1 });
  child.request('attach', { buffer: buffer(c, 240, 320), x: 0, y: 0 }); // a 160x120 surface
  child.request('commit', {});
  t.equal(await errorOf(c), null);
  sub = scene(top).surfaces[1]!;
  t.same(sub.dst, { x: 8, y: 4, width: 30, height: 40 }, 'no destination: the source size (integer) is the surface size');
  // surface rect (20,40 60x80) in the 320x240 transformed space, transform 90: x = 240 - 40 - 80, y = 20
  t.same(sub.src, { x: 120, y: 20, width: 80, height: 60 }, 'source scaled by 2 and turned into buffer coordinates');
  t.equal(sub.rotation, 270, "placementFor's rotation for buffer transform 90");
  // destroying the viewport removes crop and scale at the next commit
  vp.request('destroy', {});
  child.request('set_buffer_scale', { scale: 1 });
  child.request('set_buffer_transform', { transform: 0 });
  child.request('commit', {});
  t.equal(await errorOf(c), null);
  sub = scene(top).surfaces[1]!;
  t.same(sub.src, { x: 0, y: 0, width: 240, height: 320 }, 'the whole buffer');
  t.same(sub.dst, { x: 8, y: 4, width: 240, height: 320 });
});

t.test('wp_viewport errors', async (t) => {
  const cases: Array<[string, number, (c: Client, surf: WaylandProxy<'wl_surface'>) => void]> = [
    ['viewport_exists', 0, (c, surf) => {
      c.vp.request('get_viewport', { surface: surf });
      c.vp.request('get_viewport', { surface: surf });
    }],
    ['bad_value: negative source position', 0, (c, surf) => c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: -2, y: 0, width: 10, height: 10 })],
    ['bad_value: zero source width', 0, (c, surf) => c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: 0, y: 0, width: 0, height: 10 })],
    ['bad_value: -1 source but not all of it', 0, (c, surf) => c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: -1, y: -1, width: -1, height: 5 })],
    ['bad_value: zero destination', 0, (c, surf) => c.vp.request('get_viewport', { surface: surf }).request('set_destination', { width: 0, height: 10 })],
    ['bad_value: -1 destination but not both', 0, (c, surf) => c.vp.request('get_viewport', { surface: surf }).request('set_destination', { width: -1, height: 10 })],
    ['bad_size: a non-integer source and no destination', 1, (c, surf) => {
      c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: 0, y: 0, width: 10.5, height: 10 });
      surf.request('attach', { buffer: buffer(c, 64, 64), x: 0, y: 0 });
      surf.request('commit', {});
    }],
    ['out_of_buffer: a source beyond the buffer', 2, (c, surf) => {
      c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: 32, y: 0, width: 40, height: 10 });
      surf.request('attach', { buffer: buffer(c, 64, 64), x: 0, y: 0 });
      surf.request('commit', {});
    }],
    ['out_of_buffer: in surface coordinates (buffer scale 2)', 2, (c, surf) => {
      c.vp.request('get_viewport', { surface: surf }).request('set_source', { x: 0, y: 0, width: 40, height: 10 });
      surf.request('set_buffer_scale', { scale: 2 });
      surf.request('attach', { buffer: buffer(c, 64, 64), x: 0, y: 0 });
      surf.request('commit', {});
    }],
    ['no_surface: set_source after the wl_surface is destroyed', 3, (c, surf) => {
      const vp = c.vp.request('get_viewport', { surface: surf });
      surf.request('destroy', {});
      vp.request('set_source', { x: 0, y: 0, width: 1, height: 1 });
    }],
    ['no_surface: set_destination after the wl_surface is destroyed', 3, (c, surf) => {
      const vp = c.vp.request('get_viewport', { surface: surf });
      surf.request('destroy', {});
      vp.request('set_destination', { width: 1, height: 1 });
    }],
  ];
  for (const [name, code, act] of cases) {
    const { c } = await rig(t);
    const surf = c.comp.request('create_surface', {});
    act(c, surf);
    const e = await errorOf(c);
    t.ok(e instanceof ProtocolError, `${name}: a protocol error (${String(e)})`);
    t.equal(e?.code, code, `${name}: code ${code}`);
    t.ok(e?.interface === 'wp_viewport' || e?.interface === 'wp_viewporter', `${name}: on ${e?.interface}`);
  }
  // the valid edges: -1 unsets, a fractional source with a destination, a source of the whole buffer
  const { c } = await rig(t);
  const surf = c.comp.request('create_surface', {});
  const vp = c.vp.request('get_viewport', { surface: surf });
  vp.request('set_source', { x: -1, y: -1, width: -1, height: -1 });
  vp.request('set_destination', { width: -1, height: -1 });
  vp.request('set_source', { x: 0.5, y: 0, width: 63.5, height: 64 });
  vp.request('set_destination', { width: 10, height: 10 });
  surf.request('attach', { buffer: buffer(c, 64, 64), x: 0, y: 0 });
  surf.request('commit', {});
  t.equal(await errorOf(c), null, 'valid requests are no error');
  const surf2 = c.comp.request('create_surface', {});
  const vp2 = c.vp.request('get_viewport', { surface: surf2 });
  surf2.request('destroy', {});
  vp2.request('destroy', {});
  t.equal(await errorOf(c), null, 'destroy after the wl_surface is gone is no error');
});

t.test('a synchronized subsurface: the viewport error comes when its cache is applied', async (t) => {
  const { s, c } = await rig(t);
  const { surf } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  c.sub.request('get_subsurface', { surface: child, parent: surf });
  c.vp.request('get_viewport', { surface: child }).request('set_source', { x: 0, y: 0, width: 100, height: 10 });
  child.request('attach', { buffer: buffer(c, 64, 64), x: 0, y: 0 });
  child.request('commit', {});
  t.equal(await errorOf(c), null, 'cached: not applied yet');
  surf.request('commit', {});
  t.match(await errorOf(c), { interface: 'wp_viewport', code: 2 }, 'out_of_buffer with the parent commit');
});

t.test('wp_single_pixel_buffer_v1: a SolidColor in the scene, scaled by its viewport; released when replaced', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('place_below', { sibling: surf });
  const max = 0xffffffff;
  const px = c.spb.request('create_u32_rgba_buffer', { r: max, g: Math.floor(max / 2), b: 0, a: max });
  let released = 0;
  px.on('release', () => void released++);
  c.vp.request('get_viewport', { surface: child }).request('set_destination', { width: 640, height: 480 });
  child.request('attach', { buffer: px, x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  t.equal(await errorOf(c), null);
  const f = scene(top);
  t.equal(f.surfaces.length, 2);
  const bg = f.surfaces[0]!;
  t.match(bg.content, { kind: 'solid', r: 1, b: 0, a: 1 }, 'a solid colour, premultiplied channels in [0, 1]');
  t.ok(Math.abs((bg.content as { g: number }).g - 0.5) < 1e-6, 'green at half');
  t.same(bg.dst, { x: 0, y: 0, width: 640, height: 480 }, 'stretched to its destination, below its parent');
  t.equal(bg.opaque, true, 'alpha 1: opaque');
  t.equal(released, 0, 'not released while it is the content');
  child.request('attach', { buffer: buffer(c, 4, 4), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.equal(released, 1, 'released once a commit replaced it');
});

t.test('opaque: X formats, and an ARGB surface by its opaque region', async (t) => {
  const { s, c } = await rig(t);
  const { surf, top } = await mappedToplevel(s, c);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_position', { x: 100, y: 100 });
  child.request('attach', { buffer: buffer(c, 64, 64, ARGB), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  let f = scene(top);
  t.equal(f.surfaces[0]!.opaque, true, 'XRGB: opaque');
  t.equal(f.surfaces[1]!.opaque, false, 'ARGB without an opaque region: not');
  const region = c.comp.request('create_region', {});
  region.request('add', { x: 0, y: 0, width: 64, height: 64 });
  region.request('subtract', { x: 0, y: 0, width: 64, height: 16 });
  child.request('set_opaque_region', { region });
  region.request('destroy', {});
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  f = scene(top);
  t.same(f.surfaces[1]!.opaque, [{ x: 100, y: 116, width: 64, height: 48 }], 'the opaque region placed on the CRTC');
  const all = c.comp.request('create_region', {});
  all.request('add', { x: -10, y: -10, width: 200, height: 200 });
  child.request('set_opaque_region', { region: all });
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  t.equal(scene(top).surfaces[1]!.opaque, true, 'a region covering the surface: opaque');
});

t.test('the output transform turns the logical layout onto the CRTC', async (t) => {
  // logical 480x640 under a 90 degree output: a toplevel of the logical size, a subsurface at its top-left
  const s = kioskServer();
  const c = await client(s);
  t.teardown(() => {
    c.conn.close();
    s.close();
  });
  const { surf, top } = await mappedToplevel(s, c, 480, 640);
  const child = c.comp.request('create_surface', {});
  const ss = c.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_position', { x: 10, y: 20 });
  child.request('attach', { buffer: buffer(c, 30, 40), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  await c.conn.roundtrip();
  const f = scene(top, 90);
  t.same(f.surfaces[0]!.dst, { x: 0, y: 0, width: 640, height: 480 }, 'the toplevel fills the CRTC');
  t.same(f.surfaces[1]!.dst, transformRect({ x: 10, y: 20, width: 30, height: 40 }, 1, 480, 640), 'the subsurface where wl_output.transform 90 puts its logical rectangle');
  t.same(f.surfaces[1]!.dst, { x: 580, y: 10, width: 40, height: 30 });
  t.equal(f.surfaces[1]!.rotation, 90, 'turned with the output');
});

t.test('after a protocol error of one client, the kiosk goes on serving another', async (t) => {
  const s = kioskServer();
  t.teardown(() => s.close());
  const bad = await client(s);
  const good = await client(s);
  t.teardown(() => {
    bad.conn.close();
    good.conn.close();
  });
  const { surf, top } = await mappedToplevel(s, good);
  const bs = bad.comp.request('create_surface', {});
  bad.sub.request('get_subsurface', { surface: bs, parent: bs });
  t.match(await errorOf(bad), { interface: 'wl_subcompositor', code: 1 }, 'the bad client gets its error');
  const vs = bad.comp.request('create_surface', {});
  t.ok(vs, 'the disconnected client can still build requests locally');
  const child = good.comp.request('create_surface', {});
  const ss = good.sub.request('get_subsurface', { surface: child, parent: surf });
  ss.request('set_position', { x: 3, y: 4 });
  const vp = good.vp.request('get_viewport', { surface: child });
  vp.request('set_destination', { width: 100, height: 50 });
  child.request('attach', { buffer: buffer(good, 10, 10), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  t.equal(await errorOf(good), null, 'the other client is served');
  t.same(dsts(scene(top)), ['640x480+0+0', '100x50+3+4'], 'and its scene is built');
});

t.test('popups: above the toplevel and its subsurfaces, at their configured place, with their own subsurfaces', async (t) => {
  const { s, c } = await rig(t);
  const { surf, xs, top } = await mappedToplevel(s, c);
  // a subsurface of the toplevel, then a popup
  const child = c.comp.request('create_surface', {});
  c.sub.request('get_subsurface', { surface: child, parent: surf }).request('set_position', { x: 5, y: 5 });
  child.request('attach', { buffer: buffer(c, 40, 40), x: 0, y: 0 });
  child.request('commit', {});
  surf.request('commit', {});
  const pos = c.wm.request('create_positioner', {});
  pos.request('set_size', { width: 100, height: 50 });
  pos.request('set_anchor_rect', { x: 200, y: 100, width: 20, height: 20 });
  const psurf = c.comp.request('create_surface', {});
  const pxs = c.wm.request('get_xdg_surface', { surface: psurf });
  const pserials: number[] = [];
  pxs.on('configure', ({ serial }) => void pserials.push(serial));
  const placed: number[] = [];
  pxs.request('get_popup', { parent: xs, positioner: pos }).on('configure', ({ x, y }) => void placed.push(x, y));
  psurf.request('commit', {});
  await c.conn.roundtrip();
  t.equal(placed.length, 2, 'the popup was configured');
  pxs.request('ack_configure', { serial: pserials.at(-1)! });
  // the popup's own subsurface, below it
  const pchild = c.comp.request('create_surface', {});
  const pss = c.sub.request('get_subsurface', { surface: pchild, parent: psurf });
  pss.request('place_below', { sibling: psurf });
  pss.request('set_position', { x: -2, y: -3 });
  pchild.request('attach', { buffer: buffer(c, 7, 7), x: 0, y: 0 });
  pchild.request('commit', {});
  psurf.request('attach', { buffer: buffer(c, 100, 50), x: 0, y: 0 });
  psurf.request('commit', {});
  t.equal(await errorOf(c), null);
  const [px, py] = placed as [number, number];
  t.same(
    dsts(scene(top)),
    ['640x480+0+0', '40x40+5+5', `7x7+${px - 2}+${py - 3}`, `100x50+${px}+${py}`],
    'toplevel, its subsurface, then the popup (its subsurface below it) where it was configured',
  );
});
