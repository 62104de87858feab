/**
 * The kiosk's focus policy over the seat (seat.ts) and xdg popups (popup.ts):
 * - the keyboard focus is the shown toplevel's surface, or, while popups of it hold a grab, the
 *   topmost mapped grabbing popup's ("the topmost grabbing popup should receive keyboard focus");
 *   the data device follows the keyboard focus (the seat's focus listeners);
 * - xdg_popup.grab is allowed when its seat is the kiosk's and its serial is one the seat sent
 *   the popup's client with a key or button press (Seat.isInputSerial), its toplevel being shown;
 * - a button pressed while a grab holds, outside the grabbing client's surfaces (on another
 *   client's surface or on none), dismisses the grabbing popups, topmost first (xdg-shell: "clicks
 *   in other clients' surfaces will be discarded and trigger the callback"); a click on the
 *   client's own surfaces is reported as usual.
 * The pointer focus is the input backend's (input.ts: the surface under the cursor, pick.ts).
 */
import type { ServerResource } from 'primebuf';
import type { Surface } from './compositor.js';
import { Popup } from './popup.js';
import type { Seat } from './seat.js';
import type { Toplevel } from './xdg-shell.js';

/** The grabbing popups (mapped, not dismissed) of `parent`, bottom to top. */
function grabbing(children: readonly Popup[], out: Popup[] = []): Popup[] {
  for (const c of children) {
    if (c.dismissed) continue;
    if (c.grabbed && c.mapped) out.push(c);
    grabbing(c.children, out);
  }
  return out;
}

/** The toplevel a popup belongs to (undefined: a parentless popup). */
function toplevelOf(p: Popup): Toplevel | undefined {
  let parent = p.parent;
  while (parent instanceof Popup) parent = parent.parent;
  return (parent ?? undefined) as Toplevel | undefined;
}

export class FocusPolicy {
  readonly #seat: Seat;
  readonly #top: () => Toplevel | undefined;
  /** dismissing a grab: the focus moves once, at the end */
  #dismissing = false;

  constructor(seat: Seat, top: () => Toplevel | undefined) {
    this.#seat = seat;
    this.#top = top;
  }

  /** The grabbing popups of the shown toplevel, bottom to top. */
  get grabs(): Popup[] {
    const t = this.#top();
    return t ? grabbing(t.children) : [];
  }

  /** The surface that should have the keyboard focus now. */
  keyboardTarget(): ServerResource<'wl_surface'> | null {
    const g = this.grabs;
    return g.at(-1)?.surface.resource ?? this.#top()?.surface.resource ?? null;
  }

  /** The shown toplevel or its popups changed: the keyboard focus moves where it belongs. */
  update(): void {
    if (this.#dismissing) return;
    this.#seat.focus(this.keyboardTarget());
  }

  /** xdg_popup.grab's test (XdgShellOptions.grab). */
  grabAllowed(popup: Popup, seat: ServerResource<'wl_seat'>, serial: number): boolean {
    if (seat.interface !== 'wl_seat') return false;
    const t = toplevelOf(popup);
    return t !== undefined && t === this.#top() && this.#seat.isInputSerial(popup.popup.client, serial);
  }

  /**
   * A button press with the pointer over `surface` (undefined: over none): dismisses the grabbing
   * popups when it is not one of the grabbing client's surfaces. True when it did.
   */
  buttonPressed(surface: Surface | undefined): boolean {
    const g = this.grabs;
    if (g.length === 0) return false;
    const client = g[0]!.popup.client;
    if (surface && surface.resource.client === client) return false;
    this.#dismissing = true;
    try {
      for (const p of [...g].reverse()) p.dismiss();
    } finally {
      this.#dismissing = false;
    }
    this.update();
    return true;
  }
}
