// The kiosk's scene frames on the real vkms kernel (issue 20): a toplevel with a subsurface goes
// through presenter.presentScene; the writeback capture shows the subsurface at its position over
// its parent; every surface of the scene gets its frame callbacks and presentation feedback; a
// desynchronized subsurface updates alone; a popup lies where its positioner puts it; the kiosk's log says per surface where it went and why
// and its stats count the scene frames; a dma-buf subsurface's linux-dmabuf feedback offers the
// scanout tranche while it is on a plane and withdraws it while the scene composes it for a
// reason re-allocation cannot fix (Z_ORDER below a composed surface).
import t from 'tap';
import { basename } from 'node:path';
import { openSystemAllocators } from '../../src/alloc/index.js';
import { BufferRing, ClientDmabuf, clientAllocators, type FeedbackWatch } from '../../src/client/index.js';
import { fourcc } from '../../src/formats/index.js';
import { WaylandConnection, type WaylandProxy } from '../../src/wayland/index.js';
import { startKiosk, type Kiosk, type KioskCapture, type KioskOptions } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { colourBuffer, openToplevel } from '../util/toplevel.js';
import type { TapTest } from './leak.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-kiosk-scene-');

const ZERO_COPY = 0x8;

function pixel(c: KioskCapture, x: number, y: number): number {
  return new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength).getUint32(y * c.stride + x * 4, true) & 0xffffff;
}

/** Pixels of the capture that differ from `want(x, y)`. */
function diff(c: KioskCapture, want: (x: number, y: number) => number): { bad: number; first: string } {
  let bad = 0;
  let first = '';
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const v = pixel(c, x, y);
      const w = want(x, y) & 0xffffff;
      if (v !== w && bad++ === 0) first = ` first (${x},${y}) 0x${v.toString(16)} want 0x${w.toString(16)}`;
    }
  }
  return { bad, first };
}

async function withKiosk(t: TapTest, opts: Partial<KioskOptions> & { socket: string }, fn: (k: Kiosk, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const k = await startKiosk({ device: vkms.path, log: (l) => log.push(l), ...opts });
  try {
    await fn(k, log);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-30).join('\n')}`);
    await k.close();
  }
}

function feedback(p: WaylandProxy<'wp_presentation'>, surface: WaylandProxy<'wl_surface'>): Promise<number | 'discarded'> {
  const fb = p.request('feedback', { surface });
  return new Promise((resolve) => {
    fb.on('presented', ({ flags }) => resolve(flags));
    fb.on('discarded', () => resolve('discarded'));
  });
}

function frame(surface: WaylandProxy<'wl_surface'>): Promise<number> {
  const cb = surface.request('frame', {});
  return new Promise((resolve) => cb.on('done', ({ callback_data }) => resolve(callback_data)));
}

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

t.test('a toplevel with a subsurface: both on screen, each with its callbacks and feedback', async (t) => {
  // no default cursor: the capture is compared pixel for pixel with the two surfaces
  await withKiosk(t, { socket: 'kiosk-scene-sub', hideCursor: true }, async (k, log) => {
    const conn = WaylandConnection.connect(k.socket);
    t.teardown(() => conn.close());
    let size = { width: 0, height: 0 };
    const top = await openToplevel(conn, (s) => (size = s));
    const shm = top.bind('wl_shm', 1);
    const sub = top.bind('wl_subcompositor', 1);
    const pres = top.bind('wp_presentation', 1);
    const W = k.output.mode.hdisplay;
    const H = k.output.mode.vdisplay;
    t.same(size, { width: W, height: H }, 'configured to the mode');
    const [A, B, C] = [0x204060, 0xc08020, 0x30a050];
    const [sx, sy, sw, sh] = [100, 50, 128, 96];
    const child = top.compositor.request('create_surface', {});
    const ss = sub.request('get_subsurface', { surface: child, parent: top.surface });
    ss.request('set_position', { x: sx, y: sy });
    child.request('attach', { buffer: colourBuffer(shm, sw, sh, B, 'sealed'), x: 0, y: 0 });
    const childFrame = frame(child);
    const childFb = feedback(pres, child);
    child.request('commit', {}); // synchronized: cached until the parent commits
    top.surface.request('attach', { buffer: colourBuffer(shm, W, H, A, 'sealed'), x: 0, y: 0 });
    const topFb = feedback(pres, top.surface);
    top.surface.request('commit', {});
    conn.flush();
    const [cf, tf, cd] = await Promise.all([within(childFb, 20000), within(topFb, 20000), within(childFrame, 20000)]);
    t.not(cf, 'timeout', 'the subsurface hears of its frame');
    t.not(cf, 'discarded', 'the subsurface commit is presented');
    t.not(tf, 'discarded', 'the toplevel commit is presented');
    t.not(cd, 'timeout', "the subsurface's frame callback is done");
    const inside = (x: number, y: number, cx: number): number => (x >= sx && x < sx + sw && y >= sy && y < sy + sh ? cx : A);
    let cap = await k.capture();
    let d = diff(cap, (x, y) => inside(x, y, B));
    t.equal(d.bad, 0, `the subsurface at (${sx}, ${sy}) over its parent, every pixel${d.first}`);
    const s = k.stats();
    t.ok((s.scene?.frames ?? 0) >= 1, `scene frames counted (${s.scene?.frames})`);
    t.ok((s.scene?.planesUsed ?? 0) >= 1, `planes used (${s.scene?.planesUsed})`);
    t.comment(`stats.scene ${JSON.stringify(s.scene)}; feedback flags toplevel ${String(tf)}, subsurface ${String(cf)}`);
    const lines = log.filter((l) => / wl_surface@\d+ .*: (plane \d+|composed)/.test(l));
    t.ok(lines.length >= 2, `the log says per surface plane or composed:\n${lines.join('\n')}`);
    if (typeof cf === 'number') {
      const onPlane = lines.some((l) => l.includes(`wl_surface@${child.id} `) && /: plane \d+/.test(l));
      t.equal((cf & ZERO_COPY) !== 0, onPlane, 'the subsurface feedback says ZERO_COPY exactly when it is on a plane of its own');
    }
    // desynchronized: the subsurface alone updates the screen
    ss.request('set_desync', {});
    child.request('attach', { buffer: colourBuffer(shm, sw, sh, C, 'sealed'), x: 0, y: 0 });
    child.request('damage_buffer', { x: 0, y: 0, width: sw, height: sh });
    const alone = feedback(pres, child);
    const aloneFrame = frame(child);
    child.request('commit', {});
    conn.flush();
    const [af, ad] = await Promise.all([within(alone, 20000), within(aloneFrame, 20000)]);
    t.not(af, 'discarded', 'a desynchronized commit is presented without the parent');
    t.not(af, 'timeout');
    t.not(ad, 'timeout', 'and its frame callback is done');
    cap = await k.capture();
    d = diff(cap, (x, y) => inside(x, y, C));
    t.equal(d.bad, 0, `the new colour on screen, the parent unchanged${d.first}`);
    // the subsurface unmapped (NULL buffer, desynchronized): the parent alone again
    child.request('attach', { buffer: null, x: 0, y: 0 });
    const gone = frame(top.surface);
    child.request('commit', {});
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(gone, 20000), 'timeout');
    cap = await k.capture();
    d = diff(cap, () => A);
    t.equal(d.bad, 0, `the parent alone${d.first}`);
  });
});

t.test('a popup over its toplevel: where its positioner puts it, on screen pixel for pixel; gone, the toplevel alone', async (t) => {
  await withKiosk(t, { socket: 'kiosk-scene-popup', hideCursor: true }, async (k, log) => {
    const conn = WaylandConnection.connect(k.socket);
    t.teardown(() => conn.close());
    const top = await openToplevel(conn, () => undefined);
    const shm = top.bind('wl_shm', 1);
    const W = k.output.mode.hdisplay;
    const H = k.output.mode.vdisplay;
    const [A, B] = [0x203040, 0xe0c040];
    top.surface.request('attach', { buffer: colourBuffer(shm, W, H, A, 'sealed'), x: 0, y: 0 });
    const mapped = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(mapped, 20000), 'timeout', 'the toplevel is shown');
    // a 200x100 popup on a 20x20 anchor rectangle at (300, 200), anchor and gravity none: centred on it
    const pos = top.wm.request('create_positioner', {});
    pos.request('set_size', { width: 200, height: 100 });
    pos.request('set_anchor_rect', { x: 300, y: 200, width: 20, height: 20 });
    const psurf = top.compositor.request('create_surface', {});
    const pxs = top.wm.request('get_xdg_surface', { surface: psurf });
    let pserial = -1;
    pxs.on('configure', ({ serial }) => void (pserial = serial));
    let placed: { x: number; y: number; width: number; height: number } | undefined;
    const popup = pxs.request('get_popup', { parent: top.xdgSurface, positioner: pos });
    popup.on('configure', ({ x, y, width, height }) => void (placed = { x, y, width, height }));
    psurf.request('commit', {});
    await conn.roundtrip();
    t.same(placed, { x: 210, y: 160, width: 200, height: 100 }, 'configured centred on its anchor rectangle');
    pxs.request('ack_configure', { serial: pserial });
    psurf.request('attach', { buffer: colourBuffer(shm, 200, 100, B, 'sealed'), x: 0, y: 0 });
    const shown = frame(psurf);
    psurf.request('commit', {});
    conn.flush();
    t.not(await within(shown, 20000), 'timeout', 'the popup is presented');
    const inPopup = (x: number, y: number): boolean => x >= 210 && x < 410 && y >= 160 && y < 260;
    let d = diff(await k.capture(), (x, y) => (inPopup(x, y) ? B : A));
    t.equal(d.bad, 0, `the popup over the toplevel where it was configured, the toplevel around it${d.first}`);
    t.ok(log.some((l) => l.includes(`wl_surface@${psurf.id} `)), 'the popup has its verdict line in the log');
    // the popup destroyed: the toplevel alone on screen again
    popup.request('destroy', {});
    pxs.request('destroy', {});
    psurf.request('destroy', {});
    const again = frame(top.surface);
    top.surface.request('damage_buffer', { x: 0, y: 0, width: W, height: H });
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(again, 20000), 'timeout', 'the toplevel is presented again');
    d = diff(await k.capture(), () => A);
    t.equal(d.bad, 0, `the toplevel alone${d.first}`);
  });
});

t.test('a single-pixel buffer below the toplevel, stretched by its viewport', async (t) => {
  await withKiosk(t, { socket: 'kiosk-scene-spb', hideCursor: true }, async (k, log) => {
    const conn = WaylandConnection.connect(k.socket);
    t.teardown(() => conn.close());
    const top = await openToplevel(conn, () => undefined);
    const shm = top.bind('wl_shm', 1);
    const sub = top.bind('wl_subcompositor', 1);
    const vpr = top.bind('wp_viewporter', 1);
    const spb = top.bind('wp_single_pixel_buffer_manager_v1', 1);
    const W = k.output.mode.hdisplay;
    const H = k.output.mode.vdisplay;
    // the toplevel: a small XRGB picture on a viewport that keeps it small, centred; a full-size fill above it
    const px = spb.request('create_u32_rgba_buffer', { r: 0xffffffff, g: 0, b: 0, a: 0xffffffff });
    const child = top.compositor.request('create_surface', {});
    const ss = sub.request('get_subsurface', { surface: child, parent: top.surface });
    ss.request('set_position', { x: 0, y: 0 });
    vpr.request('get_viewport', { surface: child }).request('set_destination', { width: 64, height: 32 });
    child.request('attach', { buffer: px, x: 0, y: 0 });
    child.request('commit', {});
    top.surface.request('attach', { buffer: colourBuffer(shm, W, H, 0x102030, 'sealed'), x: 0, y: 0 });
    const done = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(done, 20000), 'timeout', 'presented');
    t.ok(log.some((l) => /single-pixel fill: /.test(l)), `the fill has its verdict line:\n${log.filter((l) => /wl_surface@/.test(l)).join('\n')}`);
    let cap: KioskCapture | undefined;
    try {
      cap = await k.capture();
    } catch (err) {
      t.fail(`capture: ${String(err)}`);
      return;
    }
    const d = diff(cap, (x, y) => (x < 64 && y < 32 ? 0xff0000 : 0x102030));
    t.equal(d.bad, 0, `a 64x32 red fill at the top-left over the toplevel${d.first}`);
  });
});

t.test('the default cursor is on top of a scene', async (t) => {
  await withKiosk(t, { socket: 'kiosk-scene-cursor' }, async (k, log) => {
    const conn = WaylandConnection.connect(k.socket);
    t.teardown(() => conn.close());
    const top = await openToplevel(conn, () => undefined);
    const shm = top.bind('wl_shm', 1);
    const sub = top.bind('wl_subcompositor', 1);
    const W = k.output.mode.hdisplay;
    const H = k.output.mode.vdisplay;
    const child = top.compositor.request('create_surface', {});
    sub.request('get_subsurface', { surface: child, parent: top.surface }).request('set_position', { x: 10, y: 10 });
    child.request('attach', { buffer: colourBuffer(shm, 32, 32, 0x00ff00, 'sealed'), x: 0, y: 0 });
    child.request('commit', {});
    top.surface.request('attach', { buffer: colourBuffer(shm, W, H, 0x0000ff, 'sealed'), x: 0, y: 0 });
    const done = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(done, 20000), 'timeout', 'presented');
    const hot = k.cursor.position;
    t.ok(hot, 'the kiosk has a default cursor');
    if (!hot) return;
    const cap = await k.capture();
    t.equal(pixel(cap, hot.x, hot.y), 0x000000, 'the arrow\'s black tip at the hotspot');
    t.equal(pixel(cap, hot.x + 1, hot.y + 3), 0xffffff, 'white inside the arrow');
    t.equal(pixel(cap, hot.x + 40, hot.y + 3), 0x0000ff, 'the toplevel beside it');
    t.equal(pixel(cap, 20, 20), 0x00ff00, 'the subsurface');
    const s = k.stats();
    t.ok((s.scene?.planesUsed ?? 0) >= 3, `three surfaces on planes (${s.scene?.planesUsed}; composed ${s.scene?.surfacesComposed})`);
    t.ok(log.some((l) => /^default cursor: (plane \d+|composed)/.test(l)), `the cursor's verdict is logged:\n${log.filter((l) => /wl_surface@|cursor/.test(l)).join('\n')}`);
  });
});

t.test("a dma-buf subsurface's scanout tranche follows its verdict in the scene", async (t) => {
  await withKiosk(t, { socket: 'kiosk-scene-tranche', hideCursor: true }, async (k, log) => {
    const conn = WaylandConnection.connect(k.socket);
    t.teardown(() => conn.close());
    const top = await openToplevel(conn, () => undefined);
    const shm = top.bind('wl_shm', 1);
    const sub = top.bind('wl_subcompositor', 1);
    const client = await ClientDmabuf.bind(conn, { registry: top.registry, globals: top.globals });
    t.teardown(() => client.close());
    t.ok(client.proxy.version >= 4, `zwp_linux_dmabuf_v1 v${client.proxy.version}: per-surface feedback`);
    const sys = openSystemAllocators({ cards: [basename(vkms.path)] });
    t.teardown(() => sys.close());
    const W = k.output.mode.hdisplay;
    const H = k.output.mode.vdisplay;
    const [sx, sy, sw, sh] = [100, 50, 128, 96];
    const child = top.compositor.request('create_surface', {});
    const ss = sub.request('get_subsurface', { surface: child, parent: top.surface });
    ss.request('set_position', { x: sx, y: sy });
    const watch: FeedbackWatch = await client.surfaceFeedback(child);
    t.teardown(() => watch.close());
    await conn.roundtrip();
    const scanout = () => watch.current.tranches.some((tr) => tr.scanout);
    t.notOk(scanout(), 'before any frame: no scanout tranche');
    const ring = new BufferRing({ dmabuf: client, feedback: watch, allocators: clientAllocators(sys), width: sw, height: sh, formats: [fourcc('XRGB8888')], count: 3 });
    t.teardown(() => ring.close());
    let colour = 0x405060;
    /** One new frame of the subsurface (desynchronized after the first): resolves when its frame is done (`wait`). */
    const draw = async (wait = true): Promise<void> => {
      let b = ring.acquire();
      for (let i = 0; !b && i < 200; i++) {
        await conn.roundtrip();
        await new Promise((r) => setTimeout(r, 10));
        b = ring.acquire();
      }
      if (!b) throw new Error('no ring buffer released');
      const c = (colour = (colour + 0x010101) & 0xffffff);
      await b.draw((px) => void new Uint32Array(px.buffer, px.byteOffset, px.byteLength / 4).fill(c));
      ring.attach(child, b);
      child.request('damage_buffer', { x: 0, y: 0, width: sw, height: sh });
      const done = wait ? frame(child) : undefined;
      child.request('commit', {});
      conn.flush();
      if (done) t.not(await within(done, 20000), 'timeout', "the subsurface's frame callback is done");
    };
    const childLines = () => log.filter((l) => l.includes(`wl_surface@${child.id} `));
    // 1. the subsurface alone over its parent: on an overlay of its own (synchronized: cached until the parent commits)
    await draw(false);
    top.surface.request('attach', { buffer: colourBuffer(shm, W, H, 0x102030, 'sealed'), x: 0, y: 0 });
    const first = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(first, 20000), 'timeout', 'the scene is presented');
    ss.request('set_desync', {});
    await draw();
    t.ok(childLines().some((l) => /: plane \d+/.test(l)), `the dma-buf subsurface is on a plane:\n${childLines().join('\n')}`);
    for (let i = 0; i < 100 && !scanout(); i++) {
      await new Promise((r) => setTimeout(r, 50));
      await conn.roundtrip();
    }
    t.ok(scanout(), 'on a plane: its feedback offers the scanout tranche');
    const kmsDev = watch.current.tranches.find((tr) => tr.scanout)?.device;
    t.equal(kmsDev, k.device.devId, 'the scanout tranche targets the vkms device');
    // 2. a copied wl_shm subsurface above it, overlapping: composed, so the dma-buf below is composed too (Z_ORDER)
    const cover = top.compositor.request('create_surface', {});
    const cs = sub.request('get_subsurface', { surface: cover, parent: top.surface });
    cs.request('set_position', { x: sx + 32, y: sy + 32 });
    cover.request('attach', { buffer: colourBuffer(shm, 64, 64, 0xe0e0e0, 'unsealed'), x: 0, y: 0 });
    cover.request('commit', {});
    const covered = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(covered, 20000), 'timeout', 'the covered scene is presented');
    // the hold: over 1 s and 2 frames of the new verdict
    const t0 = Date.now();
    for (let i = 0; i < 40 && scanout(); i++) {
      await draw();
      await new Promise((r) => setTimeout(r, 150));
      await conn.roundtrip();
    }
    t.ok(childLines().some((l) => /composed.*Z_ORDER/.test(l)), `the dma-buf subsurface is composed for Z_ORDER:\n${childLines().join('\n')}`);
    t.notOk(scanout(), `composed for a reason re-allocation cannot fix: the scanout tranche is withdrawn (after ${Date.now() - t0} ms)`);
    t.ok(watch.current.tranches.length >= 1 && watch.current.tranches.every((tr) => !tr.scanout), 'the main tranche stays');
    // 3. the cover gone: on a plane again, the tranche comes back
    cover.request('attach', { buffer: null, x: 0, y: 0 });
    cover.request('commit', {});
    const uncovered = frame(top.surface);
    top.surface.request('commit', {});
    conn.flush();
    t.not(await within(uncovered, 20000), 'timeout');
    for (let i = 0; i < 40 && !scanout(); i++) {
      await draw();
      await new Promise((r) => setTimeout(r, 150));
      await conn.roundtrip();
    }
    t.ok(scanout(), 'on a plane again: the scanout tranche is offered again');
    const last = childLines().at(-1) ?? '';
    t.match(last, /: plane \d+/, 'the log says it is on a plane again');
  });
});
