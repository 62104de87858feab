/**
 * wl_compositor (version 5), wl_surface and wl_region. A surface double-buffers its state:
 * attach, damage (surface coordinates), damage_buffer, frame, set_buffer_transform,
 * set_buffer_scale and offset go to the pending state, commit applies it and hands the commit
 * to the surface's role (xdg-shell) and to the compositor's listeners. Damage accumulates
 * (in buffer pixels) until the kiosk presents the surface; so do frame callbacks and
 * presentation feedback of the commits in between.
 */
import type { Rect, ServerResource, WaylandServer } from 'primebuf';
import { mergeDamage } from 'primebuf/scanout';

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

interface Pending {
  /** undefined: no attach since the last commit; null: attach(NULL) */
  buffer: ServerResource | null | undefined;
  surfaceDamage: Rect[];
  bufferDamage: Rect[];
  frames: ServerResource<'wl_callback'>[];
  feedbacks: FeedbackSink[];
  transform: number | undefined;
  scale: number | undefined;
  dx: number;
  dy: number;
}

function emptyPending(): Pending {
  return { buffer: undefined, surfaceDamage: [], bufferDamage: [], frames: [], feedbacks: [], transform: undefined, scale: undefined, dx: 0, dy: 0 };
}

/** The role of a surface (xdg_surface): sees each commit before the compositor acts on it. */
export interface SurfaceRole {
  commit(surface: Surface): void;
}

export class Surface {
  /** The committed buffer (null: none). */
  buffer: ServerResource | null = null;
  /** wl_output.transform value of the buffer (0-7). */
  transform = 0;
  scale = 1;
  /** Damage in buffer pixels since the kiosk last presented this surface; undefined: all of it. */
  damage: Rect[] | undefined = undefined;
  /** Frame callbacks of the commits not presented yet. */
  frames: ServerResource<'wl_callback'>[] = [];
  /** Presentation feedback of the latest commit not presented yet. */
  feedbacks: FeedbackSink[] = [];
  /** What sees the surface's commits (its xdg_surface while it has one). */
  role: SurfaceRole | null = null;
  /**
   * The role the surface was given ('xdg_toplevel', 'xdg_popup'): a wl_surface keeps its role
   * for life, even after the role object is gone; only the same role may be given again.
   */
  roleName: string | null = null;
  #pending: Pending = emptyPending();
  #listeners: Array<(s: Surface) => void> = [];

  constructor(readonly resource: ServerResource<'wl_surface'>) {}

  get destroyed(): boolean {
    return this.resource.destroyed;
  }

  /** Runs `fn` after every commit (after the role saw it). */
  onCommit(fn: (s: Surface) => void): void {
    this.#listeners.push(fn);
  }

  /** Adds a presentation feedback to the pending state (wp_presentation.feedback). */
  addFeedback(fb: FeedbackSink): void {
    this.#pending.feedbacks.push(fb);
  }

  /** A buffer attached and not committed yet. */
  get bufferPending(): boolean {
    return this.#pending.buffer != null;
  }

  /** The kiosk presented the surface: the damage starts again from nothing. */
  takeFrame(): { damage: Rect[] | undefined; frames: ServerResource<'wl_callback'>[]; feedbacks: FeedbackSink[] } {
    const out = { damage: this.damage, frames: this.frames, feedbacks: this.feedbacks };
    this.damage = [];
    this.frames = [];
    this.feedbacks = [];
    return out;
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
  }

  /** @internal the wl_surface requests */
  implement(): void {
    const p = (): Pending => this.#pending;
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
      damage: (r) => void p().surfaceDamage.push({ x: r.x, y: r.y, width: r.width, height: r.height }),
      damage_buffer: (r) => void p().bufferDamage.push({ x: r.x, y: r.y, width: r.width, height: r.height }),
      frame: ({ callback }) => void p().frames.push(callback),
      set_opaque_region: () => undefined,
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
    const pend = this.#pending;
    this.#pending = emptyPending();
    const geometryChanged = (pend.transform !== undefined && pend.transform !== this.transform) || (pend.scale !== undefined && pend.scale !== this.scale);
    if (pend.transform !== undefined) this.transform = pend.transform;
    if (pend.scale !== undefined) this.scale = pend.scale;
    if (pend.buffer !== undefined) this.buffer = pend.buffer && !pend.buffer.destroyed ? pend.buffer : null;
    // Damage into buffer pixels: surface damage is converted exactly only for the identity
    // transform and scale 1 (what nearly every client sends); otherwise it counts as everything.
    if (this.damage !== undefined) {
      const identity = this.transform === 0 && this.scale === 1;
      const surf = pend.surfaceDamage.map((r) => (identity ? r : EVERYTHING));
      this.damage.push(...surf, ...pend.bufferDamage);
      if (this.damage.length > MAX_PENDING_DAMAGE) this.damage = mergeDamage(this.damage, EVERYTHING.width, EVERYTHING.height);
      if (geometryChanged) this.damage = undefined;
    }
    this.frames.push(...pend.frames);
    // Feedback of a commit replaced before it was shown is discarded.
    for (const fb of this.feedbacks.splice(0)) fb.discarded();
    this.feedbacks = pend.feedbacks;
    this.role?.commit(this);
    for (const fn of this.#listeners) fn(this);
  }

  /** Marks everything as damaged (the surface is shown anew). */
  damageAll(): void {
    this.damage = undefined;
  }
}

/** Clips damage to a buffer's size; undefined stays undefined (everything). */
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
        // Regions only matter for input and opaque hints: a kiosk with one fullscreen surface
        // and no input uses neither, so the rectangles are accepted and not kept.
        id.implement({ add: () => undefined, subtract: () => undefined });
      },
    }),
  );
  return surfaces;
}
