/**
 * Damage: rectangles in buffer pixels, and the damage history a ring of scanout buffers needs.
 *
 * A damage list here is always clipped to its surface and made of non-overlapping rectangles, so
 * a copy writes each byte at most once and the area is a plain sum. Merging may cover a little
 * more than the exact union (two overlapping rectangles become their bounding box; past `maxRects`
 * the pair whose bounding box adds the least area is merged); copying a few unchanged pixels
 * from a source that holds the whole current frame is harmless.
 */

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Default bound on the length of a merged damage list. */
export const MAX_DAMAGE_RECTS = 16;

function checkRect(r: Rect): void {
  for (const k of ['x', 'y', 'width', 'height'] as const) {
    if (!Number.isSafeInteger(r[k])) throw new TypeError(`rect.${k} must be an integer (got ${String(r[k])})`);
  }
  if (r.width < 0 || r.height < 0) throw new RangeError(`rect ${rectString(r)} has a negative size`);
}

export function rectString(r: Rect): string {
  return `${r.x},${r.y} ${r.width}x${r.height}`;
}

export function rectArea(r: Rect): number {
  return r.width * r.height;
}

/** The sum of the areas (the union's area for a merged, non-overlapping list). */
export function damageArea(rects: readonly Rect[]): number {
  let a = 0;
  for (const r of rects) a += rectArea(r);
  return a;
}

/** The part of `r` inside a width x height surface, or undefined when nothing is left. */
export function clipRect(r: Rect, width: number, height: number): Rect | undefined {
  checkRect(r);
  const x0 = Math.max(0, r.x);
  const y0 = Math.max(0, r.y);
  const x1 = Math.min(width, r.x + r.width);
  const y1 = Math.min(height, r.y + r.height);
  if (x1 <= x0 || y1 <= y0) return undefined;
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** Two rectangles whose union is exactly their bounding box (one contains the other, or they
 * share a full edge). */
function unionIsBox(a: Rect, b: Rect): boolean {
  const sameCols = a.x === b.x && a.width === b.width;
  const sameRows = a.y === b.y && a.height === b.height;
  if (sameCols && a.y <= b.y + b.height && b.y <= a.y + a.height) return true;
  if (sameRows && a.x <= b.x + b.width && b.x <= a.x + a.width) return true;
  return contains(a, b) || contains(b, a);
}

function contains(a: Rect, b: Rect): boolean {
  return a.x <= b.x && a.y <= b.y && a.x + a.width >= b.x + b.width && a.y + a.height >= b.y + b.height;
}

export function boundingBox(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

/**
 * Clips every rectangle to the surface and merges them into at most `maxRects` non-overlapping
 * rectangles that cover the union.
 */
export function mergeDamage(rects: Iterable<Rect>, width: number, height: number, maxRects = MAX_DAMAGE_RECTS): Rect[] {
  if (!Number.isSafeInteger(maxRects) || maxRects < 1) throw new RangeError(`maxRects must be a positive integer (got ${maxRects})`);
  let list: Rect[] = [];
  for (const r of rects) {
    const c = clipRect(r, width, height);
    if (c) list.push(c);
  }
  // A flood of rectangles is not worth pairing up: its bounding box is the damage.
  if (list.length > 256) list = [list.reduce(boundingBox)];
  // Overlapping or exactly-joinable pairs become their bounding box, until none is left.
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i < list.length && !changed; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (overlaps(list[i]!, list[j]!) || unionIsBox(list[i]!, list[j]!)) {
          list[i] = boundingBox(list[i]!, list[j]!);
          list.splice(j, 1);
          changed = true;
          break;
        }
      }
    }
  }
  // Too many: merge the pair whose bounding box adds the least area, then undo new overlaps.
  while (list.length > maxRects) {
    let best = [0, 1];
    let bestCost = Infinity;
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const cost = rectArea(boundingBox(list[i]!, list[j]!)) - rectArea(list[i]!) - rectArea(list[j]!);
        if (cost < bestCost) (bestCost = cost), (best = [i, j]);
      }
    }
    const [i, j] = best as [number, number];
    const box = boundingBox(list[i]!, list[j]!);
    list.splice(j, 1);
    list.splice(i, 1);
    list = mergeDamage([box, ...list], width, height, Number.MAX_SAFE_INTEGER);
  }
  return list.sort((a, b) => a.y - b.y || a.x - b.x);
}

/** The whole surface as one damage rectangle. */
export function fullDamage(width: number, height: number): Rect[] {
  return [{ x: 0, y: 0, width, height }];
}

/**
 * The damage of the last frames of one surface, for buffers that each remember which frame they
 * hold. `push()` records a frame's damage and returns its number (1, 2, ...). A buffer that holds
 * frame `f` needs `since(f)`: the union of the damage of every frame after `f`. Its age in the
 * EGL_EXT_buffer_age sense is `current - f`. A buffer of unknown content (`f` undefined), one
 * older than the history keeps, or one that claims a future frame gets the full surface. When the
 * surface changes wholesale (a new source, a resize), push its full damage.
 */
export class DamageHistory {
  readonly width: number;
  readonly height: number;
  /** How many frames of damage are kept: buffers older than that get a full copy. */
  readonly maxAge: number;
  readonly maxRects: number;
  #frame = 0;
  /** damage of frames #frame - entries.length + 1 .. #frame, oldest first */
  #entries: Rect[][] = [];

  constructor(width: number, height: number, opts: { maxAge?: number; maxRects?: number } = {}) {
    for (const [k, v] of [['width', width], ['height', height]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${k} must be a positive integer (got ${v})`);
    }
    this.width = width;
    this.height = height;
    this.maxAge = opts.maxAge ?? 8;
    this.maxRects = opts.maxRects ?? MAX_DAMAGE_RECTS;
    if (!Number.isSafeInteger(this.maxAge) || this.maxAge < 1) throw new RangeError(`maxAge must be a positive integer (got ${this.maxAge})`);
  }

  /** The number of the newest frame (0 before the first push). */
  get frame(): number {
    return this.#frame;
  }

  /** Records the next frame's damage (clipped, merged); returns its frame number. */
  push(damage: Iterable<Rect>): number {
    this.#entries.push(mergeDamage(damage, this.width, this.height, this.maxRects));
    if (this.#entries.length > this.maxAge) this.#entries.shift();
    return ++this.#frame;
  }

  /**
   * Age of a buffer that holds frame `held`, counted after the newest frame was pushed: 0 when it
   * holds the newest frame, 1 when it holds the one before, ...; undefined when its content is
   * unknown (never written, or a frame this history never numbered).
   */
  age(held: number | undefined): number | undefined {
    if (held === undefined || !Number.isSafeInteger(held) || held < 1 || held > this.#frame) return undefined;
    return this.#frame - held;
  }

  /** What a buffer holding frame `held` must receive to show the newest frame. */
  since(held: number | undefined): Rect[] {
    const age = this.age(held);
    if (age === undefined || age > this.#entries.length) return fullDamage(this.width, this.height);
    if (age === 0) return [];
    return mergeDamage(this.#entries.slice(this.#entries.length - age).flat(), this.width, this.height, this.maxRects);
  }
}
