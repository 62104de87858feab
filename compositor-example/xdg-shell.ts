/**
 * xdg_wm_base (ping/pong), xdg_surface (configure/ack_configure) and xdg_toplevel, configured
 * fullscreen and activated to the output's size (its rotated size under a 90 or 270 transform).
 * A toplevel is mapped by its first commit with a buffer after it acked a configure, and
 * unmapped by a commit without a buffer or by its destruction; the shell hears of both.
 * Popups and positioners are accepted and never shown (a kiosk shows one toplevel).
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import type { Surface, SurfaceRole } from './compositor.js';

/** xdg_toplevel.state values. */
const STATE_FULLSCREEN = 2;
const STATE_ACTIVATED = 4;

/** xdg_wm_base.error and xdg_surface.error codes. */
const WM_ERROR = { role: 0, defunct_surfaces: 1, not_the_topmost_popup: 2, invalid_popup_parent: 3, invalid_surface_state: 4, invalid_positioner: 5, unresponsive: 6 } as const;
const SURFACE_ERROR = { not_constructed: 1, already_constructed: 2, unconfigured_buffer: 3, invalid_serial: 4 } as const;

export class Toplevel implements SurfaceRole {
  mapped = false;
  title = '';
  appId = '';
  #configured = false;
  #sent: number[] = [];
  #acked = false;

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
    // A toplevel unmapped by a NULL commit starts again from its initial commit.
    this.#configured = false;
    this.#acked = false;
    this.shell.unmapped(this);
  }
}

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
  server.createGlobal('xdg_wm_base', 5, (wm) => {
    let pingSerial: number | null = null;
    wm.implement({
      pong: ({ serial }) => {
        if (serial === pingSerial) pingSerial = null;
      },
      create_positioner: ({ id }) => void id.implement({}),
      get_xdg_surface: ({ id, surface: res }) => {
        const surface = surfaceOf(res);
        if (!surface) return;
        if (surface.role || surface.buffer) {
          wm.postError(WM_ERROR.role, surface.role ? 'the surface already has a role' : 'the surface already has a buffer');
          return;
        }
        let toplevel: Toplevel | null = null;
        id.implement({
          get_toplevel: ({ id: tl }) => {
            if (toplevel) return id.postError(SURFACE_ERROR.already_constructed, 'the xdg_surface already has a toplevel');
            const t = new Toplevel(surface, id, tl, shell, size);
            toplevel = t;
            surface.role = t;
            tl.implement({
              set_title: ({ title }) => void (t.title = title),
              set_app_id: ({ app_id }) => void (t.appId = app_id),
            });
            tl.onDestroy(() => {
              t.unmap();
              if (surface.role === t) surface.role = null;
            });
          },
          get_popup: ({ id: popup }) => void popup.implement({}),
          set_window_geometry: () => undefined,
          ack_configure: ({ serial }) => toplevel?.ack(serial),
        });
        id.onDestroy(() => toplevel?.unmap());
        res.onDestroy(() => toplevel?.unmap());
        // A ping per new xdg_surface: a client that stopped answering is seen in the log.
        pingSerial = server.nextSerial();
        wm.send('ping', { serial: pingSerial });
      },
    });
  });
}
