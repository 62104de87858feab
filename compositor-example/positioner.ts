/**
 * xdg_positioner (xdg-shell v5, protocol/xdg-shell.xml) and the placement of a popup from its
 * rules. Every request of version 5 is taken: set_size, set_anchor_rect, set_anchor,
 * set_gravity, set_constraint_adjustment, set_offset, and since version 3 set_reactive,
 * set_parent_size and set_parent_configure.
 *
 * Errors: a zero or negative size is invalid_input (set_size); a negative anchor rectangle size is
 * invalid_input (set_anchor_rect: the text names only negative sizes); an anchor or gravity
 * outside its enum is invalid_input (the text names it for set_gravity; an anchor outside the
 * enum is refused alike). A positioner is complete with a size and a non-zero anchor rectangle
 * (both sides above zero); an incomplete one given to xdg_surface.get_popup or
 * xdg_popup.reposition is xdg_wm_base.invalid_positioner (checked there, see popup.ts).
 * Unknown bits of a constraint adjustment are ignored.
 *
 * set_parent_size and set_parent_configure are kept with the rules and do not change the
 * placement: the kiosk places against the parent's current window geometry, and its toplevels
 * are fullscreen, never resized behind a client's back. set_reactive is kept too: a reactive
 * popup is placed again when its toplevel is configured anew (a new output size).
 */
import type { Rect, ServerResource } from 'primebuf';

/** xdg_positioner.anchor and xdg_positioner.gravity (the same values). */
export const ANCHOR = { none: 0, top: 1, bottom: 2, left: 3, right: 4, top_left: 5, bottom_left: 6, top_right: 7, bottom_right: 8 } as const;
export const GRAVITY = ANCHOR;

/** xdg_positioner.constraint_adjustment bits. */
export const ADJUST = { none: 0, slide_x: 1, slide_y: 2, flip_x: 4, flip_y: 8, resize_x: 16, resize_y: 32 } as const;
const ADJUST_ALL = 63;

/** xdg_positioner.error */
const POSITIONER_ERROR = { invalid_input: 0 } as const;

/** A copy of a positioner's rules (the protocol's "the compositor makes a copy of the rules"). */
export interface PositionerRules {
  /** The popup's window geometry size (set_size). */
  readonly width: number;
  readonly height: number;
  /** In the parent's window geometry coordinates (set_anchor_rect). */
  readonly anchorRect: Rect;
  readonly anchor: number;
  readonly gravity: number;
  readonly constraintAdjustment: number;
  readonly offsetX: number;
  readonly offsetY: number;
  readonly reactive: boolean;
  readonly parentSize?: { readonly width: number; readonly height: number };
  readonly parentConfigure?: number;
}

/** A positioner as a client builds it. */
export class Positioner {
  #rules: { -readonly [K in keyof PositionerRules]: PositionerRules[K] } = {
    width: 0,
    height: 0,
    anchorRect: { x: 0, y: 0, width: 0, height: 0 },
    anchor: ANCHOR.none,
    gravity: GRAVITY.none,
    constraintAdjustment: ADJUST.none,
    offsetX: 0,
    offsetY: 0,
    reactive: false,
  };

  /** The Positioner of an xdg_positioner resource implemented by `implementPositioner`. */
  static of(r: ServerResource<'xdg_positioner'>): Positioner | undefined {
    const p = r.data[KEY];
    return p instanceof Positioner ? p : undefined;
  }

  /** A size and a non-zero anchor rectangle were set. */
  get complete(): boolean {
    const r = this.#rules;
    return r.width > 0 && r.height > 0 && r.anchorRect.width > 0 && r.anchorRect.height > 0;
  }

  /** What is missing, for an invalid_positioner message ('' when complete). */
  get missing(): string {
    const r = this.#rules;
    const out: string[] = [];
    if (!(r.width > 0 && r.height > 0)) out.push('no size (set_size)');
    if (!(r.anchorRect.width > 0 && r.anchorRect.height > 0)) out.push(`no non-zero anchor rectangle (set_anchor_rect; it is ${r.anchorRect.width}x${r.anchorRect.height})`);
    return out.join(', ');
  }

  /** A copy: later changes of the positioner do not reach it. */
  rules(): PositionerRules {
    return { ...this.#rules, anchorRect: { ...this.#rules.anchorRect }, ...(this.#rules.parentSize ? { parentSize: { ...this.#rules.parentSize } } : {}) };
  }

  /** @internal */
  set<K extends keyof PositionerRules>(key: K, value: PositionerRules[K]): void {
    this.#rules[key] = value;
  }
}

const KEY = 'primebuf.kiosk.positioner';

/** Implements a new xdg_positioner resource (from xdg_wm_base.create_positioner). */
export function implementPositioner(res: ServerResource<'xdg_positioner'>): Positioner {
  const p = new Positioner();
  res.data[KEY] = p;
  const bad = (msg: string): void => res.postError(POSITIONER_ERROR.invalid_input, msg);
  res.implement({
    set_size: ({ width, height }) => {
      if (width <= 0 || height <= 0) return bad(`set_size ${width}x${height}: the size must be positive`);
      p.set('width', width);
      p.set('height', height);
    },
    set_anchor_rect: ({ x, y, width, height }) => {
      if (width < 0 || height < 0) return bad(`set_anchor_rect ${width}x${height}: the size must not be negative`);
      p.set('anchorRect', { x, y, width, height });
    },
    set_anchor: ({ anchor }) => {
      if (!(anchor >= 0 && anchor <= 8)) return bad(`set_anchor ${anchor}: not an xdg_positioner.anchor`);
      p.set('anchor', anchor);
    },
    set_gravity: ({ gravity }) => {
      if (!(gravity >= 0 && gravity <= 8)) return bad(`set_gravity ${gravity}: not an xdg_positioner.gravity`);
      p.set('gravity', gravity);
    },
    set_constraint_adjustment: ({ constraint_adjustment }) => p.set('constraintAdjustment', constraint_adjustment & ADJUST_ALL),
    set_offset: ({ x, y }) => {
      p.set('offsetX', x);
      p.set('offsetY', y);
    },
    set_reactive: () => p.set('reactive', true),
    set_parent_size: ({ parent_width, parent_height }) => p.set('parentSize', { width: parent_width, height: parent_height }),
    set_parent_configure: ({ serial }) => p.set('parentConfigure', serial),
  });
  return p;
}

// ---- placement ----

/** -1: towards left/top, +1: towards right/bottom, 0: centred; per axis, for an anchor or gravity value. */
function dirX(v: number): -1 | 0 | 1 {
  if (v === ANCHOR.left || v === ANCHOR.top_left || v === ANCHOR.bottom_left) return -1;
  if (v === ANCHOR.right || v === ANCHOR.top_right || v === ANCHOR.bottom_right) return 1;
  return 0;
}
function dirY(v: number): -1 | 0 | 1 {
  if (v === ANCHOR.top || v === ANCHOR.top_left || v === ANCHOR.top_right) return -1;
  if (v === ANCHOR.bottom || v === ANCHOR.bottom_left || v === ANCHOR.bottom_right) return 1;
  return 0;
}
/** The anchor or gravity value with the given directions. */
function fromDirs(x: -1 | 0 | 1, y: -1 | 0 | 1): number {
  const table: Record<string, number> = {
    '0,0': ANCHOR.none,
    '0,-1': ANCHOR.top,
    '0,1': ANCHOR.bottom,
    '-1,0': ANCHOR.left,
    '1,0': ANCHOR.right,
    '-1,-1': ANCHOR.top_left,
    '-1,1': ANCHOR.bottom_left,
    '1,-1': ANCHOR.top_right,
    '1,1': ANCHOR.bottom_right,
  };
  return table[`${x},${y}`]!;
}
const neg = (d: -1 | 0 | 1): -1 | 0 | 1 => (d === 0 ? 0 : d === 1 ? -1 : 1);

/** One axis of the placement: start, size of the popup; anchor rect start, size; anchor and gravity directions; offset. */
function axisPosition(rectStart: number, rectSize: number, anchorDir: -1 | 0 | 1, gravityDir: -1 | 0 | 1, size: number, offset: number): number {
  // The anchor point: the rectangle's edge the anchor names, or its middle.
  const a = anchorDir < 0 ? rectStart : anchorDir > 0 ? rectStart + rectSize : rectStart + Math.floor(rectSize / 2);
  // The popup goes towards its gravity from the anchor point, or is centred on it.
  const start = gravityDir < 0 ? a - size : gravityDir > 0 ? a : a - Math.floor(size / 2);
  return start + offset;
}

/** The rectangle the rules give before any constraint adjustment (the offset applied). */
export function unconstrainedPlacement(r: PositionerRules, anchor = r.anchor, gravity = r.gravity): Rect {
  return {
    x: axisPosition(r.anchorRect.x, r.anchorRect.width, dirX(anchor), dirX(gravity), r.width, r.offsetX),
    y: axisPosition(r.anchorRect.y, r.anchorRect.height, dirY(anchor), dirY(gravity), r.height, r.offsetY),
    width: r.width,
    height: r.height,
  };
}

/** Whether `p` leaves `bounds` on the x axis (its left or right edge outside). */
const outX = (p: Rect, b: Rect): boolean => p.x < b.x || p.x + p.width > b.x + b.width;
const outY = (p: Rect, b: Rect): boolean => p.y < b.y || p.y + p.height > b.y + b.height;

/**
 * Slides one axis as xdg_positioner.constraint_adjustment.slide_x/slide_y says: first towards the
 * gravity until the edge opposite the gravity is inside or the edge towards the gravity would
 * leave; then the other way until the edge towards the gravity is inside or the opposite edge
 * would leave. A centred gravity is taken as towards the end (right, bottom). Returns the start.
 */
function slideAxis(start: number, size: number, lo: number, hi: number, gravityDir: -1 | 0 | 1): number {
  let s = start;
  const towardsEnd = (): void => {
    // the start edge is outside: move towards the end, as far as the end edge stays inside
    if (s < lo) s += Math.min(lo - s, Math.max(0, hi - (s + size)));
  };
  const towardsStart = (): void => {
    if (s + size > hi) s -= Math.min(s + size - hi, Math.max(0, s - lo));
  };
  if (gravityDir < 0) {
    towardsStart();
    towardsEnd();
  } else {
    towardsEnd();
    towardsStart();
  }
  return s;
}

/**
 * Where a popup goes: its window geometry rectangle in the parent's window geometry coordinates,
 * from the positioner's rules and the area it must stay inside (`bounds`, in the same
 * coordinates: the output's logical area as seen from the parent).
 *
 * The anchor point on the anchor rectangle, the gravity from that point, the offset; then, on an
 * axis where the popup leaves the bounds, the constraint adjustments in the protocol's precedence
 * "1) Flip, 2) Slide, 3) Resize":
 * - flip: anchor and gravity inverted on that axis (the original anchor rectangle and offset);
 *   kept only when the flipped rectangle is inside the bounds on that axis, else the position
 *   before the flip stays;
 * - slide: see slideAxis;
 * - resize: the popup cut to the bounds on that axis (kept as it was if nothing would be left).
 * The axes are independent. With no adjustment for an axis the popup stays where the rules put it,
 * outside or not.
 */
export function placePopup(r: PositionerRules, bounds: Rect): Rect {
  const adj = r.constraintAdjustment;
  let anchor = r.anchor;
  let gravity = r.gravity;
  let p = unconstrainedPlacement(r);
  // 1) flip
  if (adj & ADJUST.flip_x && outX(p, bounds)) {
    const a = fromDirs(neg(dirX(anchor)), dirY(anchor));
    const g = fromDirs(neg(dirX(gravity)), dirY(gravity));
    const q = unconstrainedPlacement(r, a, g);
    if (!outX(q, bounds)) {
      p = { ...p, x: q.x };
      anchor = a;
      gravity = g;
    }
  }
  if (adj & ADJUST.flip_y && outY(p, bounds)) {
    const a = fromDirs(dirX(anchor), neg(dirY(anchor)));
    const g = fromDirs(dirX(gravity), neg(dirY(gravity)));
    const q = unconstrainedPlacement(r, a, g);
    if (!outY(q, bounds)) {
      p = { ...p, y: q.y };
      anchor = a;
      gravity = g;
    }
  }
  // 2) slide
  if (adj & ADJUST.slide_x && outX(p, bounds)) p = { ...p, x: slideAxis(p.x, p.width, bounds.x, bounds.x + bounds.width, dirX(gravity)) };
  if (adj & ADJUST.slide_y && outY(p, bounds)) p = { ...p, y: slideAxis(p.y, p.height, bounds.y, bounds.y + bounds.height, dirY(gravity)) };
  // 3) resize
  if (adj & ADJUST.resize_x && outX(p, bounds)) {
    const x0 = Math.max(p.x, bounds.x);
    const x1 = Math.min(p.x + p.width, bounds.x + bounds.width);
    if (x1 > x0) p = { ...p, x: x0, width: x1 - x0 };
  }
  if (adj & ADJUST.resize_y && outY(p, bounds)) {
    const y0 = Math.max(p.y, bounds.y);
    const y1 = Math.min(p.y + p.height, bounds.y + bounds.height);
    if (y1 > y0) p = { ...p, y: y0, height: y1 - y0 };
  }
  return p;
}
