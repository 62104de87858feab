/**
 * Whether a surface's linux-dmabuf feedback offers the scanout tranche, debounced.
 *
 * The tranche is wanted while the surface's buffer is scanned out directly (keep it that way)
 * or while re-allocating could get it there (every reason of its verdict is fixable: format,
 * modifier, implicit modifier, import, AddFB2, TEST_ONLY); it is not wanted when re-allocation
 * could not help (no plane, scaling, a transform the plane lacks, placement, wl_shm) or the
 * surface is not a scanout candidate at all.
 *
 * A change of the wanted state is applied only after it has held, unbroken, for `holdMs` of
 * frame time AND at least `minFrames` frames. Each change makes the client re-allocate its
 * buffers, so feedback must not flap while a surface animates into or out of fullscreen.
 * Weston waits a fixed 2 s; wlroots counts 30 frames (0.5 s at 60 Hz, but 15 s for a client
 * drawing at 2 fps, and 0.2 s at 144 Hz). primebuf measures time, so slow clients and fast
 * outputs behave the same: 1 s by default (between the two at 60 Hz; a client re-allocates at
 * most once a second), plus 2 frames so that a single stale frame after an idle pause cannot
 * flip the state on its own. The first evaluation applies at once (there is nothing to flap from).
 */
import { reallocationCouldHelp, type ScanoutReason, type Verdict } from './reasons.js';
import type { SceneSurfaceResult } from './scene-types.js';

export interface DebounceOptions {
  /** Wall time the new state must hold (default 1000 ms). */
  readonly holdMs?: number;
  /** Frames the new state must hold (default 2). */
  readonly minFrames?: number;
}

/** The wanted state from a verdict (undefined verdict: the surface is no scanout candidate). */
export function scanoutTrancheWanted(v: Verdict | undefined): boolean {
  if (!v) return false;
  return v.ok || reallocationCouldHelp(v);
}

/**
 * The wanted state from a surface's outcome in a scene (Presenter.presentScene): on a plane, the
 * tranche stays offered; composed, it is offered when re-allocation could give the surface a plane
 * of its own: every reason that is about no plane in particular (TEST_ONLY of the whole scene;
 * the scene's NO_PLANE_LEFT, Z_ORDER, ALPHA, SOLID_FILL, NOT_COHERENT are not fixable) is fixable,
 * and either there is such a reason or some plane refused the buffer only for fixable reasons
 * (FORMAT on the primary is fixable even though the cursor plane refused the SIZE). Composed with
 * no reason at all: not offered (nothing known that re-allocation would fix).
 */
export function sceneScanoutTrancheWanted(r: Pick<SceneSurfaceResult, 'path' | 'reasons'>): boolean {
  if (r.path === 'plane') return true;
  const general: ScanoutReason[] = [];
  const perPlane = new Map<number, ScanoutReason[]>();
  for (const q of r.reasons) {
    if (q.plane === undefined) general.push(q);
    else {
      let l = perPlane.get(q.plane);
      if (!l) perPlane.set(q.plane, (l = []));
      l.push(q);
    }
  }
  if (!general.every((q) => q.fixable)) return false;
  if (general.length > 0) return true;
  for (const l of perPlane.values()) if (l.every((q) => q.fixable)) return true;
  return false;
}

export class ScanoutTrancheDebounce {
  readonly holdMs: number;
  readonly minFrames: number;
  #offered: boolean | undefined;
  #pending: { wanted: boolean; sinceMs: number; frames: number } | undefined;
  #changes = 0;

  constructor(opts: DebounceOptions = {}) {
    this.holdMs = opts.holdMs ?? 1000;
    this.minFrames = opts.minFrames ?? 2;
    if (!(this.holdMs >= 0) || !Number.isInteger(this.minFrames) || this.minFrames < 1) {
      throw new RangeError(`holdMs must be >= 0 and minFrames a positive integer (got ${this.holdMs}, ${this.minFrames})`);
    }
  }

  /** Whether the tranche is offered now (false before the first frame). */
  get offered(): boolean {
    return this.#offered ?? false;
  }

  /** How many times the offer changed after the first frame. */
  get changes(): number {
    return this.#changes;
  }

  /**
   * Feeds one frame: the surface's verdict for its best plane, its outcome in a scene
   * (sceneScanoutTrancheWanted), or a boolean "wanted", at
   * `nowMs` (the frame's presentation time). Returns whether the tranche is offered after it,
   * and whether that changed (then the presenter calls LinuxDmabuf.setScanoutEligible).
   */
  frame(v: Verdict | SceneSurfaceResult | boolean | undefined, nowMs: number): { offered: boolean; changed: boolean } {
    const wanted = typeof v === 'boolean' ? v : v !== undefined && 'path' in v ? sceneScanoutTrancheWanted(v) : scanoutTrancheWanted(v);
    if (this.#offered === undefined) {
      this.#offered = wanted;
      return { offered: wanted, changed: true };
    }
    if (wanted === this.#offered) {
      this.#pending = undefined;
      return { offered: wanted, changed: false };
    }
    if (!this.#pending || this.#pending.wanted !== wanted) this.#pending = { wanted, sinceMs: nowMs, frames: 0 };
    this.#pending.frames++;
    if (this.#pending.frames >= this.minFrames && nowMs - this.#pending.sinceMs >= this.holdMs) {
      this.#offered = wanted;
      this.#pending = undefined;
      this.#changes++;
      return { offered: wanted, changed: true };
    }
    return { offered: this.#offered, changed: false };
  }
}
