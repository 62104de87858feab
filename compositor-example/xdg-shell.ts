/**
 * xdg_wm_base (ping/pong), xdg_surface (configure/ack_configure) and xdg_toplevel, configured
 * fullscreen and activated to the output's size (its rotated size under a 90 or 270 transform).
 * A toplevel is mapped by its first commit with a buffer after it acked a configure, and
 * unmapped by a commit without a buffer or by its destruction; the shell hears of both.
 * Popups (popup.ts) are placed by their positioner (positioner.ts) inside the output's logical
 * area; a toplevel's mapped popups are `Toplevel.popups()`, for the scene.
 *
 * Window geometry (xdg_surface.set_window_geometry) is double-buffered and applied at commit,
 * clamped to the surface's bounds (its buffer's size in surface coordinates; subsurfaces are not
 * counted); never set, it is the whole surface. A toplevel's surface is centred on the output's
 * logical area, as the kiosk shows it: popups are placed and constrained from there.
 *
 * The protocol's rules (xdg-shell v5, protocol/xdg-shell.xml) are enforced with its errors: a
 * toplevel of version 5 hears wm_capabilities (none) before its first configure; an xdg_surface
 * takes no request and no commit before a role object (not_constructed), one xdg_surface per
 * wl_surface and one role object per xdg_surface (already_constructed), a wl_surface keeps the
 * role it was given (xdg_wm_base.role), an xdg_surface outlives its role object
 * (defunct_role_object), xdg_wm_base outlives its xdg_surfaces (defunct_surfaces), and an unmap
 * forgets the configures sent before it (acking one is invalid_serial).
 */
import { ShmBuffer, type Rect, type ServerResource, type WaylandServer } from 'primebuf';
import { BufferLifetime, LinuxDmabufBuffer } from 'primebuf/wayland';
import type { Surface, SurfaceRole } from './compositor.js';
import { Popup, SURFACE_ERROR, WM_ERROR, popupViews, type PopupParent, type PopupView } from './popup.js';
import { Positioner, implementPositioner } from './positioner.js';

export type { PopupView } from './popup.js';

/** xdg_toplevel.state values. */
const STATE_FULLSCREEN = 2;
const STATE_ACTIVATED = 4;


/**
 * xdg_toplevel.wm_capabilities: none. Every toplevel is fullscreen and stays so; the kiosk has no
 * window menu, no maximize, no fullscreen toggle and no minimize (those requests are ignored).
 */
const WM_CAPABILITIES = new Uint8Array(0);

export class Toplevel implements SurfaceRole, PopupParent {
  mapped = false;
  /** Its popups (creation order), see popup.ts. */
  readonly children: Popup[] = [];
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
    /** Its xdg_surface's effective window geometry and surface size (see XdgSurface). */
    readonly xdg: { geometry(): Rect; surfaceSize(): { width: number; height: number } } = {
      geometry: () => ({ x: 0, y: 0, width: 0, height: 0 }),
      surfaceSize: () => ({ width: 0, height: 0 }),
    },
  ) {}

  /** Its mapped popups, bottom to top, each with its position relative to this surface's origin. */
  popups(): readonly PopupView[] {
    return popupViews(this);
  }

  geometry(): Rect {
    return this.xdg.geometry();
  }

  /**
   * Its window geometry's origin on the output's logical area: the surface centred on the
   * output (as the kiosk shows it), plus the geometry's offset in the surface.
   */
  geometryOrigin(): { x: number; y: number } {
    const out = this.size();
    const s = this.xdg.surfaceSize();
    const g = this.xdg.geometry();
    return { x: Math.floor((out.width - s.width) / 2) + g.x, y: Math.floor((out.height - s.height) / 2) + g.y };
  }

  popupsChanged(): void {
    this.shell.popupsChanged?.(this);
  }

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
    // reactive popups are placed again (the output's size may have changed)
    for (const p of this.children) p.reconstrain();
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
    // its popups are dismissed with it (popup_done), topmost first
    for (const p of [...this.children].reverse()) p.dismiss();
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

/** An xdg_surface: the wl_surface's commits go through it to its role object. */
class XdgSurface implements SurfaceRole {
  /** the live role object (xdg_toplevel or xdg_popup) */
  role: Toplevel | Popup | null = null;
  /** a role object was created on it once */
  constructed = false;
  /** set_window_geometry: pending (applied at commit) and applied; undefined: never set */
  pendingGeometry: Rect | undefined;
  setGeometry: Rect | undefined;

  constructor(
    readonly resource: ServerResource<'xdg_surface'>,
    readonly surface: Surface,
    readonly sizeOf: (s: Surface) => { width: number; height: number } | undefined,
  ) {}

  /** The surface's size in surface coordinates (0x0 without a buffer). */
  surfaceSize(): { width: number; height: number } {
    return this.sizeOf(this.surface) ?? { width: 0, height: 0 };
  }

  /** The effective window geometry: the one set, clamped to the surface; else the whole surface. */
  geometry(): Rect {
    const { width, height } = this.surfaceSize();
    const g = this.setGeometry;
    if (!g) return { x: 0, y: 0, width, height };
    const x0 = Math.max(g.x, 0);
    const y0 = Math.max(g.y, 0);
    const x1 = Math.min(g.x + g.width, width);
    const y1 = Math.min(g.y + g.height, height);
    // nothing of the surface inside it (no buffer yet): the geometry as set
    return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : g;
  }

  commit(s: Surface): void {
    if (!this.constructed) {
      this.resource.postError(SURFACE_ERROR.not_constructed, 'wl_surface.commit before the xdg_surface has a role object');
      return;
    }
    if (this.pendingGeometry) {
      this.setGeometry = this.pendingGeometry;
      this.pendingGeometry = undefined;
    }
    this.role?.commit(s);
  }
}

/**
 * A surface's size in surface coordinates: its buffer's (wl_shm or linux-dmabuf) divided by the
 * buffer scale, turned by a 90 or 270 degree buffer transform; undefined without a known buffer.
 */
export function bufferSurfaceSize(s: Surface): { width: number; height: number } | undefined {
  const b = BufferLifetime.of(s.buffer);
  const px = b instanceof ShmBuffer ? { width: b.width, height: b.height } : b instanceof LinuxDmabufBuffer ? { width: b.attributes.width, height: b.attributes.height } : undefined;
  if (!px) return undefined;
  const swap = s.transform % 2 === 1;
  const w = swap ? px.height : px.width;
  const h = swap ? px.width : px.height;
  return { width: Math.max(1, Math.round(w / s.scale)), height: Math.max(1, Math.round(h / s.scale)) };
}

const XDG_ROLES = ['xdg_toplevel', 'xdg_popup'];

export interface XdgShellListener {
  mapped(t: Toplevel): void;
  unmapped(t: Toplevel): void;
  /** A popup of `t` (or of its popups) was mapped, unmapped, dismissed or moved. */
  popupsChanged?(t: Toplevel): void;
}

export interface XdgShellOptions {
  /** A surface's size in surface coordinates (default bufferSurfaceSize). */
  readonly sizeOf?: (s: Surface) => { width: number; height: number } | undefined;
  /** Whether xdg_popup.grab with this seat and serial is allowed (default: every grab denied). */
  readonly grab?: (popup: Popup, seat: ServerResource<'wl_seat'>, serial: number) => boolean;
}

/** The xdg_wm_base global (version 5). */
export function installXdgShell(
  server: WaylandServer,
  surfaceOf: (r: ServerResource<'wl_surface'>) => Surface | undefined,
  size: () => { width: number; height: number },
  shell: XdgShellListener,
  options: XdgShellOptions = {},
): void {
  const sizeOf = options.sizeOf ?? bufferSurfaceSize;
  /** the live xdg_surface of each wl_surface */
  const xdgOf = new WeakMap<Surface, XdgSurface>();
  /** the XdgSurface of each xdg_surface resource (a popup's parent is named by its xdg_surface) */
  const xdgOfResource = new WeakMap<ServerResource<'xdg_surface'>, XdgSurface>();
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
      create_positioner: ({ id }) => void implementPositioner(id),
      get_xdg_surface: ({ id, surface: res }) => {
        const surface = surfaceOf(res);
        if (!surface) return;
        if (xdgOf.has(surface)) return id.postError(SURFACE_ERROR.already_constructed, `wl_surface@${res.id} already has an xdg_surface`);
        if (surface.roleName !== null && !XDG_ROLES.includes(surface.roleName)) return wm.postError(WM_ERROR.role, `wl_surface@${res.id} has the role ${surface.roleName}`);
        if (surface.buffer || surface.bufferPending) return id.postError(SURFACE_ERROR.unconfigured_buffer, `wl_surface@${res.id} already has a buffer`);
        const xdg = new XdgSurface(id, surface, sizeOf);
        xdgOf.set(surface, xdg);
        xdgOfResource.set(id, xdg);
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
            const t = new Toplevel(surface, id, tl, shell, size, xdg);
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
          get_popup: ({ id: popup, parent, positioner }) => {
            if (!takeRole('xdg_popup')) return;
            const pos = Positioner.of(positioner);
            if (!pos?.complete) return wm.postError(WM_ERROR.invalid_positioner, `get_popup with an incomplete xdg_positioner@${positioner.id}: ${pos?.missing ?? 'unknown'}`);
            let parentRole: Toplevel | Popup | null = null;
            if (parent) {
              const px = xdgOfResource.get(parent);
              if (!px?.role || px === xdg) return wm.postError(WM_ERROR.invalid_popup_parent, `get_popup with parent xdg_surface@${parent.id}, which has no xdg_toplevel or xdg_popup`);
              parentRole = px.role;
            }
            const p = new Popup(xdg, popup, wm, parentRole, pos.rules(), size);
            xdg.role = p;
            popup.implement({
              destroy: () => p.destroyRequest(),
              grab: ({ seat, serial }) => p.grab(options.grab?.(p, seat, serial) ?? false),
              reposition: ({ positioner: next, token }) => {
                const np = Positioner.of(next);
                if (!np?.complete) return wm.postError(WM_ERROR.invalid_positioner, `reposition with an incomplete xdg_positioner@${next.id}: ${np?.missing ?? 'unknown'}`);
                p.reposition(np.rules(), token);
              },
            });
            popup.onDestroy(() => {
              p.destroyed();
              if (xdg.role === p) xdg.role = null;
            });
          },
          set_window_geometry: ({ x, y, width, height }) => {
            if (!constructed('set_window_geometry')) return;
            if (width <= 0 || height <= 0) return id.postError(SURFACE_ERROR.invalid_size, `window geometry ${width}x${height}`);
            xdg.pendingGeometry = { x, y, width, height };
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
