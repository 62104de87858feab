/**
 * xdg_popup (xdg-shell v5, protocol/xdg-shell.xml): placed by its positioner's rules
 * (positioner.ts) against its parent's window geometry, kept inside the output's logical area.
 *
 * - The initial commit (no buffer) is answered with xdg_popup.configure (the placed rectangle,
 *   relative to the parent's window geometry) and xdg_surface.configure; a commit with a buffer
 *   after an ack maps the popup, a commit without one unmaps it (and its configures are
 *   forgotten: the initial commit comes again). The placement of an acked configure takes effect
 *   at the commit after the ack.
 * - A null parent (xdg_surface.get_popup allows it when another protocol gives the parent before
 *   the initial commit): the kiosk has no such protocol (no layer shell), so at its initial commit
 *   such a popup is dismissed (popup_done) and never configured nor mapped; the client is not
 *   disconnected. A parent that is not mapped at the popup's initial commit ("the parent of an
 *   xdg_popup must be mapped before the xdg_popup itself") is answered the same way.
 * - grab: allowed when the kiosk's policy says so (focus.ts: the serial is one of a key or button
 *   press the seat sent this client); denied otherwise, and "if the compositor denies the grab,
 *   the popup will be immediately dismissed": popup_done. A grab after the popup was mapped is
 *   xdg_popup.invalid_grab; so is a grab whose parent is a popup that did not ask for one ("an
 *   error will be raised"). While a grab holds, the policy gives the topmost grabbing popup the
 *   keyboard focus and dismisses the grabbing popups on a click outside the client's surfaces.
 * - popup_done also when the parent is unmapped or dismissed (its popups first, topmost first,
 *   the order the protocol gives for dismissals). A dismissed popup stays inert until the client
 *   destroys it: its commits are taken and ignored.
 * - reposition (v3+): repositioned with the token, then xdg_popup.configure and
 *   xdg_surface.configure; before the initial configure the token rides with it. An incomplete
 *   positioner (get_popup, reposition) is xdg_wm_base.invalid_positioner.
 * - Destroying a popup that has popups of its own not yet dismissed (not the topmost) is
 *   xdg_wm_base.not_the_topmost_popup.
 *
 * Stacking: "a newly created xdg_popup will be stacked on top of all previously created xdg_popup
 * surfaces associated with the same xdg_toplevel". The views (`popupViews`) are a tree: each
 * parent's popups in creation order, each above its parent with its own popups above it.
 */
import type { Rect, ServerResource } from 'primebuf';
import type { Surface, SurfaceRole } from './compositor.js';
import { placePopup, type PositionerRules } from './positioner.js';

/** xdg_wm_base.error, xdg_surface.error and xdg_popup.error codes (the ones popups use). */
export const WM_ERROR = { role: 0, defunct_surfaces: 1, not_the_topmost_popup: 2, invalid_popup_parent: 3, invalid_surface_state: 4, invalid_positioner: 5, unresponsive: 6 } as const;
export const SURFACE_ERROR = { not_constructed: 1, already_constructed: 2, unconfigured_buffer: 3, invalid_serial: 4, invalid_size: 5, defunct_role_object: 6 } as const;
const POPUP_ERROR = { invalid_grab: 0 } as const;

/** A mapped popup as the scene builder sees it. */
export interface PopupView {
  readonly surface: Surface;
  /**
   * Its surface's origin relative to its parent surface's origin (the toplevel's for the top
   * level of the tree, else the enclosing popup's), window geometry of both taken into account:
   * the popup's window geometry starts at the configured (x, y) from the parent's window geometry.
   */
  readonly x: number;
  readonly y: number;
  /** Its window geometry size as configured (what the client was asked to draw). */
  readonly width: number;
  readonly height: number;
  /** Its own popups, bottom to top, each above it. */
  readonly popups: readonly PopupView[];
}

/** What a popup needs of its xdg_surface. */
export interface PopupXdgSurface {
  readonly resource: ServerResource<'xdg_surface'>;
  readonly surface: Surface;
  /** The effective window geometry in surface coordinates. */
  geometry(): Rect;
}

/** A popup's parent: an xdg_toplevel or another xdg_popup. */
export interface PopupParent {
  readonly mapped: boolean;
  /** Its popups, in creation order (dismissed ones included until the client destroys them). */
  readonly children: Popup[];
  /** Its window geometry in surface coordinates. */
  geometry(): Rect;
  /** Its window geometry's origin on the output's logical area. */
  geometryOrigin(): { x: number; y: number };
  /** Something about its popups changed (mapped, unmapped, moved): for the toplevel's listener. */
  popupsChanged(): void;
}

export class Popup implements SurfaceRole, PopupParent {
  mapped = false;
  /** popup_done was sent (or it is destroyed): it never maps again. */
  dismissed = false;
  /** The client asked for a grab (allowed, or denied and dismissed). */
  grabbed = false;
  readonly children: Popup[] = [];
  #rules: PositionerRules;
  /** The initial configure was sent (since the last unmap). */
  #configured = false;
  /** configures sent and not acked yet, oldest first, with their placement */
  #sent: Array<{ serial: number; rect: Rect }> = [];
  /** an acked placement not committed yet */
  #acked: Rect | undefined;
  #ackedAny = false;
  /** The placement in effect (relative to the parent's window geometry). */
  #current: Rect | undefined;
  /** a reposition token waiting for the initial configure */
  #token: number | undefined;

  constructor(
    readonly xdg: PopupXdgSurface,
    readonly popup: ServerResource<'xdg_popup'>,
    readonly wm: ServerResource<'xdg_wm_base'>,
    readonly parent: PopupParent | null,
    rules: PositionerRules,
    /** The output's logical size. */
    readonly outputSize: () => { width: number; height: number },
  ) {
    this.#rules = rules;
    parent?.children.push(this);
  }

  get surface(): Surface {
    return this.xdg.surface;
  }

  /** The placement in effect: the window geometry rectangle relative to the parent's window geometry. */
  get placement(): Rect | undefined {
    return this.#current;
  }

  get rules(): PositionerRules {
    return this.#rules;
  }

  geometry(): Rect {
    return this.xdg.geometry();
  }

  geometryOrigin(): { x: number; y: number } {
    const p = this.parent?.geometryOrigin() ?? { x: 0, y: 0 };
    const c = this.#current ?? { x: 0, y: 0 };
    return { x: p.x + c.x, y: p.y + c.y };
  }

  popupsChanged(): void {
    this.parent?.popupsChanged();
  }

  /** Where the rules put the popup now, relative to the parent's window geometry. */
  place(): Rect {
    const o = this.parent?.geometryOrigin() ?? { x: 0, y: 0 };
    const { width, height } = this.outputSize();
    return placePopup(this.#rules, { x: -o.x, y: -o.y, width, height });
  }

  /** Sends [repositioned,] xdg_popup.configure and xdg_surface.configure with the placement now. */
  configure(token?: number): void {
    if (this.dismissed || this.popup.destroyed || this.xdg.resource.destroyed) return;
    const rect = this.place();
    if (token !== undefined) this.popup.send('repositioned', { token });
    this.popup.send('configure', { x: rect.x, y: rect.y, width: rect.width, height: rect.height });
    const serial = this.xdg.resource.server.nextSerial();
    this.#sent.push({ serial, rect });
    this.xdg.resource.send('configure', { serial });
  }

  /** A reactive popup is placed again when the conditions changed (its toplevel configured anew). */
  reconstrain(): void {
    if (this.dismissed || !this.#configured) return;
    if (this.#rules.reactive) {
      const last = this.#sent.at(-1)?.rect ?? this.#current;
      const now = this.place();
      if (!last || last.x !== now.x || last.y !== now.y || last.width !== now.width || last.height !== now.height) this.configure();
    }
    for (const c of this.children) c.reconstrain();
  }

  ack(serial: number): void {
    const i = this.#sent.findIndex((s) => s.serial === serial);
    if (i < 0) {
      this.xdg.resource.postError(SURFACE_ERROR.invalid_serial, `ack_configure with serial ${serial}, which was never sent (or was sent before an unmap)`);
      return;
    }
    this.#acked = this.#sent[i]!.rect;
    this.#sent.splice(0, i + 1);
    this.#ackedAny = true;
  }

  commit(s: Surface): void {
    if (this.dismissed) return;
    if (!this.#configured) {
      if (s.buffer) {
        this.xdg.resource.postError(SURFACE_ERROR.unconfigured_buffer, 'a buffer was attached to a popup before its first configure');
        return;
      }
      // the parent must exist (no other protocol can give one here) and be mapped before the popup
      if (!this.parent || !this.parent.mapped) {
        this.dismiss();
        return;
      }
      this.#configured = true;
      const token = this.#token;
      this.#token = undefined;
      this.configure(token);
      return;
    }
    if (s.buffer && !this.#ackedAny) {
      this.xdg.resource.postError(SURFACE_ERROR.unconfigured_buffer, 'a buffer was committed before the configure was acked');
      return;
    }
    let moved = false;
    if (this.#acked) {
      const a = this.#acked;
      const c = this.#current;
      moved = !c || c.x !== a.x || c.y !== a.y || c.width !== a.width || c.height !== a.height;
      this.#current = a;
      this.#acked = undefined;
    }
    if (s.buffer && !this.mapped) {
      this.mapped = true;
      this.popupsChanged();
    } else if (!s.buffer && this.mapped) {
      this.unmap();
    } else if (moved && this.mapped) {
      this.popupsChanged();
    }
  }

  /** Unmapped by a commit without a buffer, or because its xdg_surface or wl_surface went away. */
  unmap(): void {
    this.#dismissChildren();
    this.#configured = false;
    this.#sent = [];
    this.#acked = undefined;
    this.#ackedAny = false;
    this.#current = undefined;
    if (!this.mapped) return;
    this.mapped = false;
    this.popupsChanged();
  }

  /** The compositor dismisses the popup: its popups first (topmost first), then popup_done. */
  dismiss(): void {
    if (this.dismissed) return;
    this.#dismissChildren();
    this.dismissed = true;
    const wasMapped = this.mapped;
    this.mapped = false;
    this.popup.send('popup_done', {});
    if (wasMapped) this.popupsChanged();
  }

  #dismissChildren(): void {
    for (const c of [...this.children].reverse()) c.dismiss();
  }

  /** xdg_popup.grab: kept when `allowed`, else denied, which dismisses the popup. */
  grab(allowed = false): void {
    if (this.mapped) {
      this.popup.postError(POPUP_ERROR.invalid_grab, 'grab after the popup was mapped');
      return;
    }
    if (this.parent instanceof Popup && !this.parent.grabbed) {
      this.popup.postError(POPUP_ERROR.invalid_grab, 'grab on a popup whose parent is a popup without a grab');
      return;
    }
    this.grabbed = true;
    if (!allowed) this.dismiss();
  }

  /** xdg_popup.reposition with a complete positioner's rules. */
  reposition(rules: PositionerRules, token: number): void {
    this.#rules = rules;
    if (this.dismissed) return;
    if (this.#configured) this.configure(token);
    else this.#token = token;
  }

  /** xdg_popup.destroy (the request): a popup with popups of its own still up is not the topmost. */
  destroyRequest(): void {
    const up = this.children.filter((c) => !c.dismissed && !c.popup.destroyed);
    if (up.length > 0) this.wm.postError(WM_ERROR.not_the_topmost_popup, `xdg_popup@${this.popup.id} destroyed while its popup xdg_popup@${up[0]!.popup.id} is above it`);
  }

  /** The xdg_popup object is gone: unmapped without popup_done, and out of its parent's list. */
  destroyed(): void {
    this.#dismissChildren();
    this.dismissed = true;
    const wasMapped = this.mapped;
    this.mapped = false;
    if (this.parent) {
      const i = this.parent.children.indexOf(this);
      if (i >= 0) this.parent.children.splice(i, 1);
    }
    if (wasMapped) this.popupsChanged();
  }
}

/** The mapped popups of `parent`, bottom to top, as views relative to the parent surface. */
export function popupViews(parent: PopupParent): PopupView[] {
  const out: PopupView[] = [];
  const pg = parent.geometry();
  for (const c of parent.children) {
    const at = c.placement;
    if (!c.mapped || c.dismissed || !at) continue;
    const cg = c.geometry();
    out.push({ surface: c.surface, x: pg.x + at.x - cg.x, y: pg.y + at.y - cg.y, width: at.width, height: at.height, popups: popupViews(c) });
  }
  return out;
}
