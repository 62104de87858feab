/**
 * A raw test client's fullscreen toplevel: wl_compositor and xdg_wm_base bound (pings answered),
 * one wl_surface with its xdg_toplevel, the initial commit made and its configure acked. The
 * vkms tests that drive the kiosk with hand-written requests (buffer-life, kiosk-frames) start here.
 */
import type { GlobalInfo, InterfaceName, WaylandConnection, WaylandProxy } from '../../src/wayland/index.js';
import { poolFile, type PoolKind } from './own-shm.js';

export interface Toplevel {
  readonly registry: WaylandProxy<'wl_registry'>;
  readonly globals: GlobalInfo[];
  readonly compositor: WaylandProxy<'wl_compositor'>;
  readonly surface: WaylandProxy<'wl_surface'>;
  /** xdg_wm_base (a popup's positioner and xdg_surface come from it) and the toplevel's xdg_surface (a popup's parent) */
  readonly wm: WaylandProxy<'xdg_wm_base'>;
  readonly xdgSurface: WaylandProxy<'xdg_surface'>;
  /** Binds global `iface` at `version` (the first one the registry announced). */
  bind<I extends InterfaceName>(iface: I, version: number): WaylandProxy<I>;
}

/** Opens the toplevel; `onSize` gets every size the compositor configures it with. */
export async function openToplevel(conn: WaylandConnection, onSize: (size: { width: number; height: number }) => void): Promise<Toplevel> {
  const { registry, globals } = await conn.globals();
  const bind = <I extends InterfaceName>(iface: I, version: number): WaylandProxy<I> => {
    const g = globals.find((x) => x.interface === iface);
    if (!g) throw new Error(`the compositor has no ${iface}`);
    return conn.bind(registry, g, iface, version);
  };
  const compositor = bind('wl_compositor', 5);
  const wm = bind('xdg_wm_base', 5);
  wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
  const surface = compositor.request('create_surface', {});
  const xs = wm.request('get_xdg_surface', { surface });
  const tl = xs.request('get_toplevel', {});
  let serial = -1;
  tl.on('configure', ({ width, height }) => onSize({ width, height }));
  xs.on('configure', ({ serial: s }) => (serial = s));
  surface.request('commit', {});
  await conn.roundtrip();
  if (serial < 0) throw new Error('no configure after the initial commit');
  xs.request('ack_configure', { serial });
  return { registry, globals, compositor, surface, wm, xdgSurface: xs, bind };
}

/** A w x h XRGB8888 wl_shm buffer of one colour in a pool of its own (`kind`: sealed or not). */
export function colourBuffer(shm: WaylandProxy<'wl_shm'>, w: number, h: number, color: number, kind: PoolKind): WaylandProxy<'wl_buffer'> {
  const px = new Uint8Array(w * h * 4);
  new Uint32Array(px.buffer).fill(color);
  const mem = poolFile(kind, px.length, px);
  const pool = shm.request('create_pool', { fd: mem, size: px.length });
  const wl = pool.request('create_buffer', { offset: 0, width: w, height: h, stride: w * 4, format: 1 /* XRGB8888 */ });
  pool.request('destroy', {});
  mem.close();
  return wl;
}
