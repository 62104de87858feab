/**
 * xdg_wm_base (ping/pong), xdg_surface (configure/ack_configure) and xdg_toplevel, configured
 * fullscreen and activated to the output's size (its rotated size under a 90 or 270 transform).
 * A toplevel is mapped by its first commit with a buffer after it acked a configure, and
 * unmapped by a commit without a buffer or by its destruction; the shell hears of both.
 * Popups and positioners are accepted and never shown (a kiosk shows one toplevel).
 *
 * The protocol's rules (xdg-shell v5, protocol/xdg-shell.xml) are enforced with its errors: a
 * toplevel of version 5 hears wm_capabilities (none) before its first configure; an xdg_surface
 * takes no request and no commit before a role object (not_constructed), one xdg_surface per
 * wl_surface and one role object per xdg_surface (already_constructed), a wl_surface keeps the
 * role it was given (xdg_wm_base.role), an xdg_surface outlives its role object
 * (defunct_role_object), xdg_wm_base outlives its xdg_surfaces (defunct_surfaces), and an unmap
 * forgets the configures sent before it (acking one is invalid_serial).
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import type { Surface, SurfaceRole } from './compositor.js';

/** xdg_toplevel.state values. */
const STATE_FULLSCREEN = 2;
const STATE_ACTIVATED = 4;

/** xdg_wm_base.error and xdg_surface.error codes. */
const WM_ERROR = { role: 0, defunct_surfaces: 1, not_the_topmost_popup: 2, invalid_popup_parent: 3, invalid_surface_state: 4, invalid_positioner: 5, unresponsive: 6 } as const;
const SURFACE_ERROR = { not_constructed: 1, already_constructed: 2, unconfigured_buffer: 3, invalid_serial: 4, invalid_size: 5, defunct_role_object: 6 } as const;

/**
 * xdg_toplevel.wm_capabilities: none. Every toplevel is fullscreen and stays so; the kiosk has no
 * window menu, no maximize, no fullscreen toggle and no minimize (those requests are ignored).
 */
const WM_CAPABILITIES = new Uint8Array(0);

export class Toplevel implements SurfaceRole {
  mapped = false;
  title = '';
  appId = '';
  #configured = false;
  /** configure serials sent and not acked yet, oldest first */
  #sent: number[] = [];
  #acked = false;
  #capabilitiesSent = false;

  constructor(
    readonly surface: Surface,
    readonly xdgSurface: ServerResource<'xdg_surface'>,
    readonly toplevel: ServerResource<'xdg_toplevel'>,
    readonly shell: XdgShellListener,
    readonly size: () => { width: number; height: number },
  ) {}

  get client(): ServerResource['client'] {
    return this.toplevel.client;
  }

  /** Sends the toplevel's configure (fullscreen, activated, the output's size) and xdg_surface.configure. */
  configure(): void {
    if (this.toplevel.destroyed || this.xdgSurface.destroyed) return;
    if (!this.#capabilitiesSent && this.toplevel.version >= 5) {
      // before the first configure (xdg_toplevel.wm_capabilities, since 5)
      this.toplevel.send('wm_capabilities', { capabilities: WM_CAPABILITIES });
      this.#capabilitiesSent = true;
    }
    const { width, height } = this.size();
    const states = new Uint8Array(new Uint32Array([STATE_FULLSCREEN, STATE_ACTIVATED]).buffer);
    this.toplevel.send('configure', { width, height, states });
    const serial = this.xdgSurface.server.nextSerial();
    this.#sent.push(serial);
    this.xdgSurface.send('configure', { serial });
  }

  ack(serial: number): void {
    const i = this.#sent.indexOf(serial);
    if (i < 0) {
      this.xdgSurface.postError(SURFACE_ERROR.invalid_serial, `ack_configure with serial ${serial}, which was never sent`);
      return;
    }
    this.#sent.splice(0, i + 1); // older configures are acked by a newer one
    this.#acked = true;
  }

  commit(s: Surface): void {
    if (!this.#configured) {
      // The initial commit (no buffer allowed): answer with the first configure.
      if (s.buffer) {
        this.xdgSurface.postError(SURFACE_ERROR.unconfigured_buffer, 'a buffer was attached before the first configure');
        return;
      }
      this.#configured = true;
      this.configure();
      return;
    }
    if (s.buffer && !this.#acked) {
      this.xdgSurface.postError(SURFACE_ERROR.unconfigured_buffer, 'a buffer was committed before the configure was acked');
      return;
    }
    if (s.buffer && !this.mapped) {
      this.mapped = true;
      this.shell.mapped(this);
    } else if (!s.buffer && this.mapped) {
      this.unmap();
    }
  }

  /** Unmapped: by a NULL buffer commit, or because the toplevel or its surface went away. */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    // A toplevel unmapped by a NULL commit starts again from its initial commit, and the
    // configures sent before cannot be acked for the new map.
    this.#configured = false;
    this.#acked = false;
    this.#sent = [];
    this.shell.unmapped(this);
  }
}

/** An xdg_popup: never configured, never shown (a kiosk shows one toplevel). */
class Popup implements SurfaceRole {
  constructor(readonly xdgSurface: ServerResource<'xdg_surface'>) {}

  commit(s: Surface): void {
    // no configure is ever sent, so no buffer may be attached
    if (s.buffer) this.xdgSurface.postError(SURFACE_ERROR.unconfigured_buffer, 'a buffer was attached to a popup before a configure');
  }

  ack(serial: number): void {
    this.xdgSurface.postError(SURFACE_ERROR.invalid_serial, `ack_configure with serial ${serial}, which was never sent`);
  }

  unmap(): void {}
}

/** An xdg_surface: the wl_surface's commits go through it to its role object. */
class XdgSurface implements SurfaceRole {
  /** the live role object (xdg_toplevel or xdg_popup) */
  role: Toplevel | Popup | null = null;
  /** a role object was created on it once */
  constructed = false;

  constructor(readonly resource: ServerResource<'xdg_surface'>) {}

  commit(s: Surface): void {
    if (!this.constructed) {
      this.resource.postError(SURFACE_ERROR.not_constructed, 'wl_surface.commit before the xdg_surface has a role object');
      return;
    }
    this.role?.commit(s);
  }
}

const XDG_ROLES = ['xdg_toplevel', 'xdg_popup'];

export interface XdgShellListener {
  mapped(t: Toplevel): void;
  unmapped(t: Toplevel): void;
}

/** The xdg_wm_base global (version 5). */
export function installXdgShell(
  server: WaylandServer,
  surfaceOf: (r: ServerResource<'wl_surface'>) => Surface | undefined,
  size: () => { width: number; height: number },
  shell: XdgShellListener,
): void {
  /** the live xdg_surface of each wl_surface */
  const xdgOf = new WeakMap<Surface, XdgSurface>();
  server.createGlobal('xdg_wm_base', 5, (wm) => {
    let pingSerial: number | null = null;
    let live = 0;
    wm.implement({
      destroy: () => {
        if (live > 0) wm.postError(WM_ERROR.defunct_surfaces, `xdg_wm_base destroyed with ${live} xdg_surface(s) alive`);
      },
      pong: ({ serial }) => {
        if (serial === pingSerial) pingSerial = null;
      },
      create_positioner: ({ id }) => void id.implement({}),
      get_xdg_surface: ({ id, surface: res }) => {
        const surface = surfaceOf(res);
        if (!surface) return;
        if (xdgOf.has(surface)) return id.postError(SURFACE_ERROR.already_constructed, `wl_surface@${res.id} already has an xdg_surface`);
        if (surface.roleName !== null && !XDG_ROLES.includes(surface.roleName)) return wm.postError(WM_ERROR.role, `wl_surface@${res.id} has the role ${surface.roleName}`);
        if (surface.buffer || surface.bufferPending) return id.postError(SURFACE_ERROR.unconfigured_buffer, `wl_surface@${res.id} already has a buffer`);
        const xdg = new XdgSurface(id);
        xdgOf.set(surface, xdg);
        surface.role = xdg;
        live++;
        /** Gives the wl_surface `name`: false (and a protocol error) when it cannot have it. */
        const takeRole = (name: string): boolean => {
          if (xdg.role) {
            id.postError(SURFACE_ERROR.already_constructed, `the xdg_surface already has an ${xdg.role instanceof Toplevel ? 'xdg_toplevel' : 'xdg_popup'}`);
            return false;
          }
          if (surface.roleName !== null && surface.roleName !== name) {
            wm.postError(WM_ERROR.role, `wl_surface@${res.id} has the role ${surface.roleName}, not ${name}`);
            return false;
          }
          surface.roleName = name;
          xdg.constructed = true;
          return true;
        };
        const constructed = (request: string): boolean => {
          if (xdg.constructed) return true;
          id.postError(SURFACE_ERROR.not_constructed, `${request} before the xdg_surface has a role object`);
          return false;
        };
        id.implement({
          destroy: () => {
            if (xdg.role) id.postError(SURFACE_ERROR.defunct_role_object, `the xdg_surface was destroyed before its ${xdg.role instanceof Toplevel ? 'xdg_toplevel' : 'xdg_popup'}`);
          },
          get_toplevel: ({ id: tl }) => {
            if (!takeRole('xdg_toplevel')) return;
            const t = new Toplevel(surface, id, tl, shell, size);
            xdg.role = t;
            tl.implement({
              set_title: ({ title }) => void (t.title = title),
              set_app_id: ({ app_id }) => void (t.appId = app_id),
            });
            tl.onDestroy(() => {
              t.unmap();
              if (xdg.role === t) xdg.role = null;
            });
          },
          get_popup: ({ id: popup }) => {
            if (!takeRole('xdg_popup')) return;
            const p = new Popup(id);
            xdg.role = p;
            popup.implement({});
            popup.onDestroy(() => {
              if (xdg.role === p) xdg.role = null;
            });
          },
          set_window_geometry: ({ width, height }) => {
            if (!constructed('set_window_geometry')) return;
            if (width <= 0 || height <= 0) id.postError(SURFACE_ERROR.invalid_size, `window geometry ${width}x${height}`);
          },
          ack_configure: ({ serial }) => {
            if (constructed('ack_configure')) xdg.role?.ack(serial);
          },
        });
        id.onDestroy(() => {
          xdg.role?.unmap();
          xdg.role = null;
          if (xdgOf.get(surface) === xdg) xdgOf.delete(surface);
          if (surface.role === xdg) surface.role = null;
          live--;
        });
        res.onDestroy(() => xdg.role?.unmap());
        // A ping per new xdg_surface: a client that stopped answering is seen in the log.
        pingSerial = server.nextSerial();
        wm.send('ping', { serial: pingSerial });
      },
    });
  });
}
