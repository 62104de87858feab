/**
 * wl_compositor (version 5), wl_surface and wl_region. A surface double-buffers its state:
 * attach, damage (surface coordinates), damage_buffer, frame, set_buffer_transform,
 * set_buffer_scale, set_opaque_region, offset (and wp_viewport's source and destination,
 * viewporter.ts, and its subsurfaces' order and positions, subsurface.ts) go to the pending
 * state (a SurfaceState); commit applies it, or adds it to the cache of a synchronized
 * subsurface, applied with its parent's state. An applied commit goes to the surface's role
 * (xdg-shell, wl_subsurface) and to the compositor's listeners. Damage accumulates
 * (in buffer pixels) until the kiosk presents the surface; so do frame callbacks and
 * presentation feedback of the commits in between.
 */
import type { Rect, ServerResource, WaylandServer } from 'primebuf';
import { mergeDamage } from 'primebuf/scanout';
import { BufferLifetime } from 'primebuf/wayland';
import { SinglePixelBuffer } from './single-pixel.js';

/** wl_surface.error codes. */
const SURFACE_ERROR = { invalid_scale: 0, invalid_transform: 1, invalid_size: 2, invalid_offset: 3 } as const;

/**
 * Damage rectangles a surface keeps between two presentations before they are merged (into at
 * most MAX_DAMAGE_RECTS covering their union): a surface that is not shown is not presented,
 * and its damage must not grow with every commit.
 */
export const MAX_PENDING_DAMAGE = 64;

/** Whole-buffer damage: the clients' favourite (0, 0, INT32_MAX, INT32_MAX) is clipped to it. */
const EVERYTHING: Rect = { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff };

/** A commit's presentation feedback object (wp_presentation.feedback), see presentation.ts. */
export interface FeedbackSink {
  /** The content of its commit was shown (the presentation data comes from the presenter). */
  presented(info: PresentedInfo): void;
  /** Its commit was replaced (or its surface went away) before it was shown. */
  discarded(): void;
}

export interface PresentedInfo {
  readonly tvSec: number;
  readonly tvNsec: number;
  readonly refreshNs: number;
  readonly sequence: number;
  readonly flags: number;
}

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

/**
 * One commit's worth of a wl_surface's double-buffered state: what wl_surface.commit applies, or
 * what the commit of a synchronized subsurface adds to its cache (subsurface.ts). `undefined`
 * fields leave the surface's state as it is.
 */
export interface SurfaceState {
  /** undefined: no attach since the last commit; null: attach(NULL) */
  buffer: ServerResource | null | undefined;
  dx: number;
  dy: number;
  surfaceDamage: Rect[];
  bufferDamage: Rect[];
  frames: ServerResource<'wl_callback'>[];
  feedbacks: FeedbackSink[];
  transform: number | undefined;
  scale: number | undefined;
  /** wl_surface.set_opaque_region, in surface coordinates (null: none) */
  opaque: readonly Rect[] | null | undefined;
  /** wp_viewport.set_source in surface coordinates, fractional (null: unset) */
  viewportSrc: Rect | null | undefined;
  /** wp_viewport.set_destination (null: unset) */
  viewportDst: Size | null | undefined;
  /** this surface and its subsurfaces bottom to top, as wl_subcompositor / wl_subsurface requests left them */
  stack: Surface[] | undefined;
  /** positions of this surface's subsurfaces scheduled by wl_subsurface.set_position */
  positions: Map<Surface, Point> | undefined;
}

export function emptyState(): SurfaceState {
  return {
    buffer: undefined,
    dx: 0,
    dy: 0,
    surfaceDamage: [],
    bufferDamage: [],
    frames: [],
    feedbacks: [],
    transform: undefined,
    scale: undefined,
    opaque: undefined,
    viewportSrc: undefined,
    viewportDst: undefined,
    stack: undefined,
    positions: undefined,
  };
}

/** What Surface.takeFrame hands out: the damage, frame callbacks and feedback since the last frame. */
export interface TakenFrame {
  damage: Rect[] | undefined;
  frames: ServerResource<'wl_callback'>[];
  feedbacks: FeedbackSink[];
}

/** Empties an array keeping its backing store (`length = 0` drops it: the next push allocates again). */
function clear(a: unknown[]): void {
  while (a.length > 0) a.pop();
}

/** Empties `st` in place, as emptyState() makes it (its arrays kept). */
function resetState(st: SurfaceState): void {
  st.buffer = undefined;
  st.dx = 0;
  st.dy = 0;
  clear(st.surfaceDamage);
  clear(st.bufferDamage);
  clear(st.frames);
  clear(st.feedbacks);
  st.transform = undefined;
  st.scale = undefined;
  st.opaque = undefined;
  st.viewportSrc = undefined;
  st.viewportDst = undefined;
  st.stack = undefined;
  st.positions = undefined;
}

/**
 * `later` added to `earlier` (a synchronized subsurface's cache gaining a commit): what `later`
 * sets replaces, damage and frame callbacks accumulate. A buffer committed into the cache and
 * replaced there before it was ever applied is released at once (the compositor never used it).
 */
export function mergeState(earlier: SurfaceState, later: SurfaceState): SurfaceState {
  if (later.buffer !== undefined && earlier.buffer && earlier.buffer !== later.buffer) releaseUnused(earlier.buffer);
  let positions = earlier.positions;
  if (later.positions) positions = positions ? new Map([...positions, ...later.positions]) : later.positions;
  return {
    buffer: later.buffer !== undefined ? later.buffer : earlier.buffer,
    dx: earlier.dx + later.dx,
    dy: earlier.dy + later.dy,
    surfaceDamage: [...earlier.surfaceDamage, ...later.surfaceDamage],
    bufferDamage: [...earlier.bufferDamage, ...later.bufferDamage],
    frames: [...earlier.frames, ...later.frames],
    // the merged content is shown as one: every commit's feedback hears of it
    feedbacks: [...earlier.feedbacks, ...later.feedbacks],
    transform: later.transform ?? earlier.transform,
    scale: later.scale ?? earlier.scale,
    opaque: later.opaque !== undefined ? later.opaque : earlier.opaque,
    viewportSrc: later.viewportSrc !== undefined ? later.viewportSrc : earlier.viewportSrc,
    viewportDst: later.viewportDst !== undefined ? later.viewportDst : earlier.viewportDst,
    stack: later.stack ?? earlier.stack,
    positions,
  };
}

/** Sends wl_buffer.release for a committed buffer the compositor never used. */
function releaseUnused(buffer: ServerResource): void {
  if (buffer.destroyed) return;
  const life = BufferLifetime.of(buffer);
  if (life) {
    if (life.freed) return;
    // a lock that owes the release, dropped at once: sent now, or with the last other lock
    life.surfaceLock();
    life.unlock();
  } else if (SinglePixelBuffer.of(buffer) && buffer.is('wl_buffer')) buffer.send('release', {});
}

/** The size of a wl_buffer in pixels: a library buffer's (wl_shm, linux-dmabuf) or a single-pixel buffer's. */
export function bufferSize(buffer: ServerResource): Size | undefined {
  if (SinglePixelBuffer.of(buffer)) return { width: 1, height: 1 };
  const life = BufferLifetime.of(buffer);
  if (!life || life.freed) return undefined;
  const b = life.scanoutBuffer();
  return { width: b.width, height: b.height };
}

/** The role of a surface (xdg_surface, wl_subsurface): sees each applied commit before the compositor acts on it. */
export interface SurfaceRole {
  commit(surface: Surface): void;
}

/** A subsurface's side of the tree (subsurface.ts keeps it while the wl_subsurface lives). */
export interface SubsurfaceLink {
  /** null once the parent wl_surface is destroyed (the subsurface is then never shown) */
  parent: Surface | null;
  /** wl_subsurface.set_sync / set_desync (synchronized at first) */
  sync: boolean;
  /** relative to the parent, in the parent's surface coordinates (applied with the parent's state) */
  position: Point;
}

/** wp_viewport.error codes (viewporter.ts posts the request-time ones). */
export const VIEWPORT_ERROR = { bad_value: 0, bad_size: 1, out_of_buffer: 2, no_surface: 3 } as const;

export class Surface {
  /** The committed buffer (null: none). */
  buffer: ServerResource | null = null;
  /** wl_output.transform value of the buffer (0-7). */
  transform = 0;
  scale = 1;
  /** The opaque region in surface coordinates (null: none). */
  opaque: readonly Rect[] | null = null;
  /** The viewport's source rectangle in surface coordinates before cropping (null: the whole buffer). */
  viewportSrc: Rect | null = null;
  /** The viewport's destination size (null: unset). */
  viewportDst: Size | null = null;
  /** The wp_viewport of the surface while it lives (viewporter.ts). */
  viewport: ServerResource<'wp_viewport'> | null = null;
  /** Damage in buffer pixels since the kiosk last presented this surface; undefined: all of it. */
  damage: Rect[] | undefined = undefined;
  /** Frame callbacks of the commits not presented yet. */
  frames: ServerResource<'wl_callback'>[] = [];
  /** Presentation feedback of the latest commit not presented yet. */
  feedbacks: FeedbackSink[] = [];
  /** What sees the surface's commits (its xdg_surface or wl_subsurface while it has one). */
  role: SurfaceRole | null = null;
  /**
   * The role the surface was given ('xdg_toplevel', 'xdg_popup', 'wl_subsurface'): a wl_surface
   * keeps its role for life, even after the role object is gone; only the same role may be given again.
   */
  roleName: string | null = null;
  /** Its wl_subsurface's link to the parent, while it has one. */
  sub: SubsurfaceLink | null = null;
  /** This surface and its subsurfaces, bottom to top (the applied z-order). */
  stack: Surface[] = [this];
  /** The z-order wl_subsurface requests left for the next commit (undefined: unchanged). */
  pendingStack: Surface[] | undefined = undefined;
  /** Subsurface positions scheduled for the next commit. */
  pendingPositions = new Map<Surface, Point>();
  #pending: SurfaceState = emptyState();
  /** a taken frame given back (releaseFrame) */
  #spareFrame: TakenFrame | undefined;
  /** an applied commit's state object, emptied: the next commit's pending state */
  #spare: SurfaceState | undefined;
  /** a synchronized subsurface's commits not applied yet */
  #cache: SurfaceState | undefined = undefined;
  #listeners: Array<(s: Surface) => void> = [];

  constructor(readonly resource: ServerResource<'wl_surface'>) {}

  get destroyed(): boolean {
    return this.resource.destroyed;
  }

  /** Runs `fn` after every applied commit (after the role saw it). */
  onCommit(fn: (s: Surface) => void): void {
    this.#listeners.push(fn);
  }

  /** The state the next commit takes (protocol extensions of wl_surface write into it: wp_viewport). */
  get pending(): SurfaceState {
    return this.#pending;
  }

  /** Adds a presentation feedback to the pending state (wp_presentation.feedback). */
  addFeedback(fb: FeedbackSink): void {
    this.#pending.feedbacks.push(fb);
  }

  /** Nothing was requested since the last commit (no attach, damage, callback, or state change). */
  pendingEmpty(): boolean {
    const p = this.#pending;
    return (
      p.buffer === undefined && p.surfaceDamage.length === 0 && p.bufferDamage.length === 0 && p.frames.length === 0 && p.feedbacks.length === 0 &&
      p.transform === undefined && p.scale === undefined && p.opaque === undefined && p.viewportSrc === undefined && p.viewportDst === undefined &&
      p.stack === undefined && p.positions === undefined && this.pendingStack === undefined && this.pendingPositions.size === 0 && this.#cache === undefined
    );
  }

  /**
   * The direct lane handed back (kiosk.ts): `buffer` is the current buffer its commits applied,
   * `committedCallbacks` those commits' frame callbacks not answered yet; the pending state gets
   * the attach and callbacks requested since.
   */
  adoptLane(a: {
    buffer: ServerResource;
    committedCallbacks: readonly ServerResource<'wl_callback'>[];
    attached: boolean;
    pendingBuffer: ServerResource | null;
    pendingCallbacks: readonly ServerResource<'wl_callback'>[];
  }): void {
    if (this.buffer !== a.buffer) {
      this.buffer = a.buffer;
      this.damage = undefined;
    }
    for (const cb of a.committedCallbacks) this.frames.push(cb);
    if (a.attached) {
      this.#pending.buffer = a.pendingBuffer;
      this.#pending.dx = 0;
      this.#pending.dy = 0;
    }
    for (const cb of a.pendingCallbacks) this.#pending.frames.push(cb);
  }

  /** A buffer attached and not committed yet. */
  get bufferPending(): boolean {
    return this.#pending.buffer != null || this.#cache?.buffer != null;
  }

  /** A synchronized subsurface's commits wait in its cache. */
  get hasCache(): boolean {
    return this.#cache !== undefined;
  }

  /**
   * Its commits are cached: it is a subsurface and it or a subsurface ancestor is synchronized
   * (a subsurface whose parent is gone is not).
   */
  get synchronized(): boolean {
    for (let s: Surface | null = this; s?.sub?.parent; s = s.sub.parent) if (s.sub.sync) return true;
    return false;
  }

  /** Its size in surface coordinates (viewport destination, else source, else the buffer's), none without a buffer. */
  get size(): Size | undefined {
    if (!this.buffer) return undefined;
    if (this.viewportDst) return this.viewportDst;
    if (this.viewportSrc) return { width: this.viewportSrc.width, height: this.viewportSrc.height };
    const b = bufferSize(this.buffer);
    if (!b) return undefined;
    const swap = this.transform % 2 === 1;
    return { width: Math.floor((swap ? b.height : b.width) / this.scale), height: Math.floor((swap ? b.width : b.height) / this.scale) };
  }

  /**
   * The kiosk presented the surface: the damage starts again from nothing. The caller owns what
   * it gets (until it hands it back with releaseFrame).
   */
  takeFrame(): TakenFrame {
    // the frame given back last time, emptied: its arrays become the surface's (no new arrays per frame)
    const out = this.#spareFrame ?? { damage: undefined, frames: [], feedbacks: [] };
    this.#spareFrame = undefined;
    const damage = out.damage ?? [];
    const frames = out.frames;
    const feedbacks = out.feedbacks;
    out.damage = this.damage;
    out.frames = this.frames;
    out.feedbacks = this.feedbacks;
    this.damage = damage;
    this.frames = frames;
    this.feedbacks = feedbacks;
    return out;
  }

  /**
   * A taken frame is done with (its callbacks answered, its feedback sent, nothing keeps its
   * arrays): emptied, they serve the next takeFrame.
   */
  releaseFrame(f: TakenFrame): void {
    if (f.damage) clear(f.damage);
    clear(f.frames);
    clear(f.feedbacks);
    this.#spareFrame = f;
  }

  /**
   * The surface is not shown: its frame callbacks are taken (to be answered at a throttled rate)
   * and its feedback discarded; its damage stays (bounded).
   */
  takeCallbacks(): ServerResource<'wl_callback'>[] {
    const frames = this.frames;
    this.frames = [];
    for (const fb of this.feedbacks.splice(0)) fb.discarded();
    return frames;
  }

  /** The surface was destroyed or is no longer shown: its feedback is discarded. */
  discardFeedback(): void {
    for (const fb of this.feedbacks.splice(0)) fb.discarded();
    for (const fb of this.#pending.feedbacks.splice(0)) fb.discarded();
    if (this.#cache) for (const fb of this.#cache.feedbacks.splice(0)) fb.discarded();
  }

  /** Applies the cached commits now (the parent's state was applied, or the subsurface became desynchronized). */
  applyCache(): void {
    const st = this.#cache;
    if (!st) return;
    this.#cache = undefined;
    this.#apply(st);
  }

  /**
   * wl_subsurface.set_desync: a surface that no longer behaves as synchronized applies its cache
   * at once, and so do its descendants that no longer do (applying a surface's state applies its
   * children's caches).
   */
  flushDesynchronized(): void {
    if (this.synchronized) return;
    if (this.#cache) return this.applyCache();
    for (const c of this.stack) if (c !== this) c.flushDesynchronized();
  }

  /** @internal the wl_surface requests */
  implement(): void {
    const p = (): SurfaceState => this.#pending;
    this.resource.implement({
      attach: ({ buffer, x, y }) => {
        if (this.resource.version >= 5 && (x !== 0 || y !== 0)) {
          this.resource.postError(SURFACE_ERROR.invalid_offset, 'attach with a non-zero offset on wl_surface v5: use offset');
          return;
        }
        p().buffer = buffer;
        p().dx = x;
        p().dy = y;
      },
      // the request's own arguments are the rectangle (x, y, width, height): no copy per request
      damage: (r) => void p().surfaceDamage.push(r),
      damage_buffer: (r) => void p().bufferDamage.push(r),
      frame: ({ callback }) => void p().frames.push(callback),
      // the region is copied: the wl_region may be changed or destroyed right after
      set_opaque_region: ({ region }) => void (p().opaque = region ? [...Region.of(region).rects] : null),
      set_input_region: () => undefined,
      set_buffer_transform: ({ transform }) => {
        if (transform < 0 || transform > 7) return this.resource.postError(SURFACE_ERROR.invalid_transform, `buffer transform ${transform} is not a wl_output.transform`);
        p().transform = transform;
      },
      set_buffer_scale: ({ scale }) => {
        if (scale < 1) return this.resource.postError(SURFACE_ERROR.invalid_scale, `buffer scale ${scale} is not positive`);
        p().scale = scale;
      },
      offset: ({ x, y }) => {
        p().dx = x;
        p().dy = y;
      },
      commit: () => this.#commit(),
    });
    this.resource.onDestroy(() => this.discardFeedback());
  }

  #commit(): void {
    const st = this.#pending;
    // the state object of the commit before, emptied (two alternate while commits are applied at once)
    this.#pending = this.#spare ?? emptyState();
    this.#spare = undefined;
    // what wl_subsurface requests did to this surface's children is part of its state
    if (this.pendingStack) {
      st.stack = this.pendingStack;
      this.pendingStack = undefined;
    }
    if (this.pendingPositions.size > 0) {
      st.positions = this.pendingPositions;
      this.pendingPositions = new Map();
    }
    if (this.synchronized) {
      // a synchronized subsurface: cached until its parent's state is applied
      this.#cache = this.#cache ? mergeState(this.#cache, st) : st;
      return;
    }
    // a desynchronized one with a cache: the commit is added to it and applied as a whole
    if (this.#cache) {
      const whole = mergeState(this.#cache, st);
      this.#cache = undefined;
      this.#apply(whole);
      return;
    }
    this.#apply(st);
    // nothing keeps the applied state (#apply copies what it takes, or swaps in an empty array): reused
    resetState(st);
    this.#spare = st;
  }

  /** Checks the viewport against the state about to be applied: false (and a protocol error) when it is invalid. */
  #viewportValid(buffer: ServerResource | null, transform: number, scale: number, src: Rect | null, dst: Size | null): boolean {
    const vp = this.viewport;
    if (!src || !vp) return true;
    if (!dst && (!Number.isInteger(src.width) || !Number.isInteger(src.height))) {
      vp.postError(VIEWPORT_ERROR.bad_size, `source size ${src.width}x${src.height} is not integer and no destination size is set`);
      return false;
    }
    if (!buffer) return true;
    const b = bufferSize(buffer);
    if (!b) return true;
    const swap = transform % 2 === 1;
    const w = (swap ? b.height : b.width) / scale;
    const h = (swap ? b.width : b.height) / scale;
    if (src.x + src.width > w || src.y + src.height > h) {
      vp.postError(VIEWPORT_ERROR.out_of_buffer, `source ${src.width}x${src.height}+${src.x}+${src.y} is outside the ${w}x${h} surface the buffer makes`);
      return false;
    }
    return true;
  }

  #apply(st: SurfaceState): void {
    const buffer = st.buffer !== undefined ? (st.buffer && !st.buffer.destroyed ? st.buffer : null) : this.buffer;
    const transform = st.transform ?? this.transform;
    const scale = st.scale ?? this.scale;
    const src = st.viewportSrc !== undefined ? st.viewportSrc : this.viewportSrc;
    const dst = st.viewportDst !== undefined ? st.viewportDst : this.viewportDst;
    if (!this.#viewportValid(buffer, transform, scale, src, dst)) {
      for (const fb of st.feedbacks) fb.discarded();
      return; // the client is disconnected
    }
    const geometryChanged =
      transform !== this.transform || scale !== this.scale || src !== this.viewportSrc || dst !== this.viewportDst;
    this.transform = transform;
    this.scale = scale;
    this.viewportSrc = src;
    this.viewportDst = dst;
    // a single-pixel buffer is read by nobody (a fill): released as soon as it is replaced
    const prev = this.buffer;
    this.buffer = buffer;
    if (prev && prev !== buffer && SinglePixelBuffer.of(prev) && prev.is('wl_buffer')) prev.send('release', {});
    if (st.opaque !== undefined) this.opaque = st.opaque;
    // Damage into buffer pixels: surface damage is converted exactly only for the identity
    // transform, scale 1 and no viewport (what nearly every client sends); otherwise it counts
    // as everything.
    // (loops, not spreads: this runs for every commit)
    if (this.damage !== undefined) {
      const identity = this.transform === 0 && this.scale === 1 && !src && !dst;
      const damage = this.damage;
      for (let i = 0; i < st.surfaceDamage.length; i++) damage.push(identity ? st.surfaceDamage[i]! : EVERYTHING);
      for (let i = 0; i < st.bufferDamage.length; i++) damage.push(st.bufferDamage[i]!);
      if (damage.length > MAX_PENDING_DAMAGE) this.damage = mergeDamage(damage, EVERYTHING.width, EVERYTHING.height);
      if (geometryChanged) this.damage = undefined;
    }
    if (this.frames.length === 0) {
      // the common case (the last frame took them): the commit's array itself, the empty one in its place
      const empty = this.frames;
      this.frames = st.frames;
      st.frames = empty;
    } else for (let i = 0; i < st.frames.length; i++) this.frames.push(st.frames[i]!);
    // Feedback of a commit replaced before it was shown is discarded.
    const replaced = this.feedbacks;
    this.feedbacks = st.feedbacks;
    st.feedbacks = replaced;
    for (let i = 0; i < replaced.length; i++) replaced[i]!.discarded();
    clear(replaced);
    // the subsurface order and positions scheduled on this parent
    if (st.stack) this.stack = st.stack.filter((c) => c === this || c.sub?.parent === this);
    if (st.positions) {
      for (const [c, pos] of st.positions) if (c.sub?.parent === this) c.sub.position = pos;
    }
    this.role?.commit(this);
    // (indexed loops: this runs for every commit)
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!(this);
    // synchronized children: their cached state is applied right after their parent's
    const stack = this.stack;
    for (let i = 0; i < stack.length; i++) {
      const c = stack[i]!;
      if (c !== this && c.sub?.parent === this) c.applyCache();
    }
  }

  /** Takes a subsurface out of this parent's stacks at once (its wl_subsurface or wl_surface is gone). */
  removeChild(c: Surface): void {
    this.stack = this.stack.filter((x) => x !== c);
    if (this.pendingStack) this.pendingStack = this.pendingStack.filter((x) => x !== c);
    this.pendingPositions.delete(c);
  }

  /** Marks everything as damaged (the surface is shown anew). */
  damageAll(): void {
    this.damage = undefined;
  }
}

/** `a` without `b`: up to four rectangles. */
export function subtractRect(a: Rect, b: Rect): Rect[] {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width);
  const y1 = Math.min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return [a];
  const out: Rect[] = [];
  if (y0 > a.y) out.push({ x: a.x, y: a.y, width: a.width, height: y0 - a.y });
  if (y1 < a.y + a.height) out.push({ x: a.x, y: y1, width: a.width, height: a.y + a.height - y1 });
  if (x0 > a.x) out.push({ x: a.x, y: y0, width: x0 - a.x, height: y1 - y0 });
  if (x1 < a.x + a.width) out.push({ x: x1, y: y0, width: a.x + a.width - x1, height: y1 - y0 });
  return out;
}

/** A wl_region: disjoint rectangles, built by add and subtract in order. */
export class Region {
  rects: Rect[] = [];

  static of(resource: ServerResource<'wl_region'>): Region {
    const r = resource.data.region;
    return r instanceof Region ? r : new Region();
  }

  add(r: Rect): void {
    if (r.width <= 0 || r.height <= 0) return;
    let pieces = [r];
    for (const e of this.rects) pieces = pieces.flatMap((p) => subtractRect(p, e));
    this.rects.push(...pieces);
  }

  subtract(r: Rect): void {
    if (r.width <= 0 || r.height <= 0) return;
    this.rects = this.rects.flatMap((e) => subtractRect(e, r));
  }
}

/** Clips damage to a buffer's size; undefined stays undefined (everything). */
/**
 * clipDamage of damage the caller owns (a surface's taken frame): the array itself when every
 * rectangle is inside already (a client damaging what it drew), no copy per frame.
 */
export function clipOwnDamage(damage: Rect[] | undefined, width: number, height: number): Rect[] | undefined {
  if (damage === undefined) return undefined;
  for (let i = 0; i < damage.length; i++) {
    const r = damage[i]!;
    if (!(r.x >= 0 && r.y >= 0 && r.width > 0 && r.height > 0 && r.x + r.width <= width && r.y + r.height <= height)) return clipDamage(damage, width, height);
  }
  return damage;
}

export function clipDamage(damage: readonly Rect[] | undefined, width: number, height: number): Rect[] | undefined {
  if (damage === undefined) return undefined;
  const out: Rect[] = [];
  for (const r of damage) {
    const x0 = Math.max(0, r.x);
    const y0 = Math.max(0, r.y);
    const x1 = Math.min(width, r.x + r.width);
    const y1 = Math.min(height, r.y + r.height);
    if (x1 > x0 && y1 > y0) out.push({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
  }
  return out;
}

/** The wl_compositor global; `onSurface` sees every new surface. */
export function installCompositor(server: WaylandServer, onSurface: (s: Surface) => void): Map<ServerResource<'wl_surface'>, Surface> {
  const surfaces = new Map<ServerResource<'wl_surface'>, Surface>();
  server.createGlobal('wl_compositor', 5, (res) =>
    res.implement({
      create_surface: ({ id }) => {
        const s = new Surface(id);
        s.implement();
        surfaces.set(id, s);
        id.onDestroy(() => surfaces.delete(id));
        onSurface(s);
      },
      create_region: ({ id }) => {
        // kept for wl_surface.set_opaque_region (input regions are accepted and unused: no input yet)
        const region = new Region();
        id.data.region = region;
        id.implement({ add: (r) => region.add({ x: r.x, y: r.y, width: r.width, height: r.height }), subtract: (r) => region.subtract({ x: r.x, y: r.y, width: r.width, height: r.height }) });
      },
    }),
  );
  return surfaces;
}
