/**
 * The smallest compositor side a buffer client needs: wl_compositor / wl_surface / wl_region,
 * and xdg_wm_base enough for one toplevel (a configure on the first commit; it never pings, and
 * answers a client's pong with nothing). Nothing is
 * displayed: a committed buffer is held until the next commit replaces it, then released;
 * frame callbacks are answered on commit. Used by `primebuf serve` and by tests; a real
 * compositor (compositor-example/) implements these itself.
 */
import { interfaces } from '../generated/protocols.js';
import type { ServerResource, WaylandServer } from './server.js';

export interface MinimalShellOptions {
  /** A surface committed a buffer (the first time, and whenever it changes). */
  onSurfaceBuffer?: (surface: ServerResource<'wl_surface'>, buffer: ServerResource) => void;
  /** Version of wl_compositor to advertise (default: the vendored core protocol's). */
  compositorVersion?: number;
  /** The one wl_output advertised (default: 1024x768 at 60 Hz, vkms's preferred mode). */
  output?: { width: number; height: number; refreshMhz: number; name: string };
}

interface SurfaceState {
  pending: ServerResource | null | undefined; // undefined: no attach since last commit
  current: ServerResource | null;
  frames: ServerResource<'wl_callback'>[];
  xdg: { surface: ServerResource<'xdg_surface'>; toplevel: ServerResource<'xdg_toplevel'> | null; configured: boolean } | null;
}

/** Installs wl_compositor and xdg_wm_base globals on `server`. */
export function installMinimalShell(server: WaylandServer, opts: MinimalShellOptions = {}): void {
  const states = new Map<ServerResource<'wl_surface'>, SurfaceState>();
  const start = process.hrtime.bigint();
  const nowMs = (): number => Number((process.hrtime.bigint() - start) / 1_000_000n) >>> 0;

  const commit = (surface: ServerResource<'wl_surface'>, st: SurfaceState): void => {
    if (st.xdg && !st.xdg.configured) {
      // The initial commit of a role surface: answer with a configure.
      st.xdg.configured = true;
      st.xdg.toplevel?.send('configure', { width: 0, height: 0, states: new Uint8Array(0) });
      st.xdg.surface.send('configure', { serial: server.nextSerial() });
    }
    if (st.pending !== undefined) {
      const buffer = st.pending;
      st.pending = undefined;
      // The buffer it replaces is released, as a compositor releases the buffer it stopped
      // showing (committing the same buffer again keeps it).
      const previous = st.current;
      st.current = buffer && !buffer.destroyed ? buffer : null;
      if (previous && previous !== st.current && !previous.destroyed && previous.is('wl_buffer')) previous.send('release', {});
      if (st.current) opts.onSurfaceBuffer?.(surface, st.current);
    }
    const t = nowMs();
    for (const cb of st.frames.splice(0)) {
      if (cb.destroyed) continue;
      cb.send('done', { callback_data: t });
      cb.destroy();
    }
  };

  const version = opts.compositorVersion ?? interfaces['wl_compositor']!.version;
  server.createGlobal('wl_compositor', version, (res) =>
    res.implement({
      create_surface: ({ id: surface }) => {
        const st: SurfaceState = { pending: undefined, current: null, frames: [], xdg: null };
        states.set(surface, st);
        surface.onDestroy(() => states.delete(surface));
        surface.implement({
          attach: ({ buffer }) => {
            st.pending = buffer;
          },
          frame: ({ callback }) => {
            st.frames.push(callback);
          },
          commit: () => commit(surface, st),
        });
      },
      create_region: () => undefined,
    }),
  );

  const out = opts.output ?? { width: 1024, height: 768, refreshMhz: 60000, name: 'Virtual-1' };
  server.createGlobal('wl_output', interfaces['wl_output']!.version, (o) => {
    o.send('geometry', { x: 0, y: 0, physical_width: 0, physical_height: 0, subpixel: 0, make: 'primebuf', model: out.name, transform: 0 });
    o.send('mode', { flags: 3 /* current | preferred */, width: out.width, height: out.height, refresh: out.refreshMhz });
    if (o.version >= 2) o.send('scale', { factor: 1 });
    if (o.version >= 4) {
      o.send('name', { name: out.name });
      o.send('description', { description: `primebuf output ${out.width}x${out.height}` });
    }
    if (o.version >= 2) o.send('done', {});
  });

  server.createGlobal('xdg_wm_base', Math.min(interfaces['xdg_wm_base']!.version, 5), (wm) =>
    wm.implement({
      get_xdg_surface: ({ id, surface }) => {
        const st = states.get(surface);
        if (st) st.xdg = { surface: id, toplevel: null, configured: false };
        id.implement({
          get_toplevel: ({ id: toplevel }) => {
            if (st?.xdg) st.xdg.toplevel = toplevel;
          },
        });
        id.onDestroy(() => {
          if (st) st.xdg = null;
        });
      },
      create_positioner: () => undefined,
    }),
  );
}
