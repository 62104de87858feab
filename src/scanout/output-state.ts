/**
 * The output's KMS state in one place: the CRTC, its connector and mode (the mode blob), which
 * planes show what (framebuffer, rectangles, rotation), and the extra connectors that ride along
 * in every commit (a writeback connector). Every atomic request of an output is written here: the
 * presenter's frames, black and refresh commits, the verdicts' TEST_ONLY (KmsScanoutKernel) and
 * the commit that turns the output off. So a TEST_ONLY tests exactly what the next commit will
 * carry: the same properties (modeset only while the output still needs it, planes left from
 * the last commit turned off, the extras) and the same flags (ALLOW_MODESET only with the modeset).
 */
import type { SystemError } from '../errors.js';
import type { AtomicRequest, FlipResult } from '../kms/atomic.js';
import { PropertyBlob } from '../kms/blob.js';
import type { Device } from '../kms/device.js';
import type { RawMode } from '../native/drm.js';
import type { ModeSize, ResolvedPlacement } from './placement.js';
import { ROTATE_0 } from './verdict-device.js';

/** A plane as the output state writes it. */
export interface OutputPlane {
  readonly id: number;
  /** The plane has a `rotation` property (it is then always written). */
  readonly hasRotationProperty?: boolean;
}

/** One plane of the next state: a framebuffer at a placement. */
export interface PlaneContent {
  readonly plane: OutputPlane;
  readonly fb: { readonly id: number };
  readonly placement: ResolvedPlacement;
}

/** A plane's IN_FENCE_FD for a commit (a scene gives one per plane that shows a client buffer). */
export interface InFence {
  readonly planeId: number;
  readonly fd: number;
}

/** State that rides along in every request of the output (a writeback connector). */
export interface OutputExtra {
  /**
   * Adds its part of the next state. `testOnly`: the request is a TEST_ONLY of the next commit
   * (an out-fence slot is left out of it by the request itself).
   */
  apply(req: AtomicRequest, testOnly: boolean): void;
  /**
   * A commit that carried its state went out: one-shot state (an armed capture) is used up here,
   * not in apply, so a commit the kernel refused and the one that replaces it both carry it.
   */
  committed?(): void;
  /** Its part of turning the output off. */
  turnOff(req: AtomicRequest): void;
}

/** Sees every request of the output just before it goes to the kernel (tests record them). */
export type AtomicObserver = (kind: 'test' | 'commit' | 'off', req: AtomicRequest, allowModeset: boolean) => void;

export interface OutputStateOptions {
  readonly crtcId: number;
  readonly connectorId: number;
  readonly mode: RawMode;
  /**
   * What lies under a surface on another plane than `background.plane` (the presenter's black
   * background on the primary plane, over the whole mode): `fb` is asked for when first needed.
   */
  readonly background?: { readonly plane: OutputPlane; readonly fb: () => { readonly id: number } };
}

function fixed16(v: number): bigint {
  return BigInt(Math.round(v * 65536));
}

/** The plane rectangle properties, in the order of rectsOf's values. */
const RECT_PROPS = ['SRC_X', 'SRC_Y', 'SRC_W', 'SRC_H', 'CRTC_X', 'CRTC_Y', 'CRTC_W', 'CRTC_H'] as const;

/** A placement's plane rectangles as property values (RECT_PROPS' order), made once per placement. */
const rectValues = new WeakMap<ResolvedPlacement, readonly bigint[]>();

function rectsOf(p: ResolvedPlacement): readonly bigint[] {
  let v = rectValues.get(p);
  if (!v) {
    v = [
      fixed16(p.src.x),
      fixed16(p.src.y),
      fixed16(p.src.width),
      fixed16(p.src.height),
      BigInt.asUintN(64, BigInt(p.dst.x)),
      BigInt.asUintN(64, BigInt(p.dst.y)),
      BigInt(p.dst.width),
      BigInt(p.dst.height),
    ];
    rectValues.set(p, v);
  }
  return v;
}

/** The whole mode on `crtc`. */
function fullModePlacement(crtc: number, m: ModeSize): ResolvedPlacement {
  const r = { x: 0, y: 0, width: m.width, height: m.height };
  return { crtc, src: r, dst: r, rotation: ROTATE_0, clipped: false };
}

/**
 * One output's state. `apply` writes the full next state into a request; `commit` and `test` run
 * it (and `commit` records it as the current state); `turnOff` writes everything off.
 */
export class OutputState {
  readonly device: Device;
  readonly crtcId: number;
  readonly connectorId: number;
  readonly mode: RawMode;
  /** The whole mode on the CRTC, unrotated (one object: its property values are made once). */
  readonly fullMode: ResolvedPlacement;
  readonly #background: OutputStateOptions['background'];
  #blob: PropertyBlob | undefined;
  #modesetDone = false;
  /** Planes the last commit put something on, and the planes themselves (rotation on turn-off). */
  readonly #inUse: OutputPlane[] = [];
  #current: readonly PlaneContent[] | undefined;
  // an array, not a Set: walked in every request without an iterator (a few entries at most)
  #extras: OutputExtra[] = [];
  #closed = false;
  /** direct()'s last state per framebuffer (PlaneContent arrays are never changed once made) */
  readonly #directOf = new WeakMap<object, { plane: OutputPlane; placement: ResolvedPlacement; bgFb: object | undefined; next: readonly PlaneContent[] }>();
  /** The request commit() fills (reset each time). */
  #commitReq: AtomicRequest | undefined;
  /** Sees every request before it goes to the kernel (a test hook; the request is reused after it returns). */
  observer: AtomicObserver | undefined;

  constructor(device: Device, opts: OutputStateOptions) {
    this.device = device;
    this.crtcId = opts.crtcId;
    this.connectorId = opts.connectorId;
    this.mode = opts.mode;
    this.fullMode = fullModePlacement(opts.crtcId, { width: opts.mode.hdisplay, height: opts.mode.vdisplay });
    this.#background = opts.background;
  }

  /** The next commit carries the modeset (MODE_ID, ACTIVE, the connector) and ALLOW_MODESET. */
  get needsModeset(): boolean {
    return !this.#modesetDone;
  }

  /**
   * The CRTC's state is no longer known to be ours (another DRM master had the device: a session
   * switched away and back): the next commit carries the modeset again, with ALLOW_MODESET, and
   * turns off the planes this state last used that it leaves off.
   */
  invalidate(): void {
    this.#modesetDone = false;
  }

  /** What the last commit put on the planes (undefined before the first commit or after turnOff). */
  get current(): readonly PlaneContent[] | undefined {
    return this.#current;
  }

  /** The plane ids the last commit put something on. */
  planesInUse(): number[] {
    return this.#inUse.map((p) => p.id);
  }

  /** Adds state that rides along in every request from now on; returns the function that removes it. */
  addExtra(extra: OutputExtra): () => void {
    if (!this.#extras.includes(extra)) this.#extras.push(extra);
    return () => {
      this.#extras = this.#extras.filter((x) => x !== extra);
    };
  }

  /**
   * The next state of a direct frame: `fb` on `plane` at `placement`, above the background when
   * the plane is not the one the background goes on.
   */
  direct(plane: OutputPlane, fb: { readonly id: number }, placement: ResolvedPlacement): readonly PlaneContent[] {
    const bg = this.#background;
    const bgFb = bg && bg.plane.id !== plane.id ? bg.fb() : undefined;
    // the same framebuffer at the same place as before (a client's few buffers, frame after frame): the same state
    const last = this.#directOf.get(fb);
    if (last && last.plane === plane && last.placement === placement && last.bgFb === bgFb) return last.next;
    const it = { plane, fb, placement };
    const next = bg && bgFb ? [{ plane: bg.plane, fb: bgFb, placement: this.fullMode }, it] : [it];
    this.#directOf.set(fb, { plane, placement, bgFb, next });
    return next;
  }

  /**
   * Writes the full next state into `req`: the modeset while the output needs it, every plane of
   * `next`, the planes of the current state that `next` leaves off, and the extras.
   */
  apply(req: AtomicRequest, next: readonly PlaneContent[], testOnly = false): AtomicRequest {
    const crtc = this.crtcId;
    if (!this.#modesetDone) {
      this.#blob ??= PropertyBlob.fromMode(this.device, this.mode);
      req.set(crtc, 'MODE_ID', this.#blob).set(crtc, 'ACTIVE', 1).set(this.connectorId, 'CRTC_ID', crtc);
    }
    for (let i = 0; i < next.length; i++) {
      const { plane, fb, placement } = next[i]!;
      req.set(plane.id, 'FB_ID', fb).set(plane.id, 'CRTC_ID', crtc);
      const rects = rectsOf(placement);
      for (let j = 0; j < RECT_PROPS.length; j++) req.set(plane.id, RECT_PROPS[j]!, rects[j]!);
      if (plane.hasRotationProperty) req.set(plane.id, 'rotation', placement.rotation);
    }
    const inUse = this.#inUse;
    for (let i = 0; i < inUse.length; i++) {
      const id = inUse[i]!.id;
      if (!has(next, id)) req.set(id, 'FB_ID', 0).set(id, 'CRTC_ID', 0);
    }
    const extras = this.#extras;
    for (let i = 0; i < extras.length; i++) extras[i]!.apply(req, testOnly);
    return req;
  }

  /** An atomic TEST_ONLY of `next` with the flags its commit would have. */
  test(next: readonly PlaneContent[]): { ok: true } | { ok: false; error: SystemError } {
    const req = this.apply(this.device.atomic(), next, true);
    const allowModeset = !this.#modesetDone;
    this.observer?.('test', req, allowModeset);
    return req.check({ allowModeset });
  }

  /**
   * Commits `next` non-blocking with a page-flip event (`inFence`: a plane's IN_FENCE_FD, or one
   * per plane: several planes of a scene in one commit, the planes left off turned off in it) and
   * records it as the current state. Throws the kernel's SystemError (nothing is recorded then).
   */
  commit(next: readonly PlaneContent[], inFence?: InFence | readonly InFence[]): FlipResult {
    // one request, emptied and filled again for every commit (it is done with once commit() returns)
    this.#commitReq ??= this.device.atomic();
    const req = this.apply(this.#commitReq.reset(), next);
    if (inFence) {
      if (Array.isArray(inFence)) for (const f of inFence as readonly InFence[]) req.set(f.planeId, 'IN_FENCE_FD', f.fd);
      else req.set((inFence as InFence).planeId, 'IN_FENCE_FD', (inFence as InFence).fd);
    }
    const allowModeset = !this.#modesetDone;
    this.observer?.('commit', req, allowModeset);
    const r = req.commit(allowModeset ? COMMIT_MODESET : COMMIT_FLIP);
    const extras = this.#extras;
    for (let i = 0; i < extras.length; i++) extras[i]!.committed?.();
    this.#modesetDone = true;
    // written in place (the same planes frame after frame)
    const inUse = this.#inUse;
    for (let i = 0; i < next.length; i++) inUse[i] = next[i]!.plane;
    if (inUse.length !== next.length) inUse.length = next.length;
    this.#current = next;
    return r;
  }

  /**
   * @internal The direct lane committed `next` (the same planes as the current state, another
   * framebuffer) outside commit(): it is the current state now.
   */
  adoptCurrent(next: readonly PlaneContent[]): void {
    this.#current = next;
  }

  /** Writes everything off: the planes in use (rotation back to 0), the extras, the connector, the CRTC. */
  turnOff(req: AtomicRequest): AtomicRequest {
    this.#planesOff(req);
    for (const x of this.#extras) x.turnOff(req);
    return req.set(this.connectorId, 'CRTC_ID', 0).set(this.crtcId, 'ACTIVE', 0).set(this.crtcId, 'MODE_ID', 0);
  }

  #planesOff(req: AtomicRequest): AtomicRequest {
    for (const plane of this.#inUse) {
      const id = plane.id;
      req.set(id, 'FB_ID', 0).set(id, 'CRTC_ID', 0);
      if (plane.hasRotationProperty) req.set(id, 'rotation', ROTATE_0); // leave no rotated plane behind
    }
    return req;
  }

  /**
   * Turns the output off in one blocking commit (when a commit went out); when that is refused
   * (another connector still on the CRTC, a device going away), the planes at least. The next
   * commit carries the modeset again.
   */
  turnOffNow(): void {
    if (!this.#modesetDone || this.device.closed) return;
    try {
      const req = this.turnOff(this.device.atomic());
      this.observer?.('off', req, true);
      req.commitBlocking({ allowModeset: true });
    } catch {
      try {
        this.#planesOff(this.device.atomic()).commitBlocking({ allowModeset: true });
      } catch {
        // nothing more to do: removing the framebuffers turns their planes off in any case
      }
    }
    this.#modesetDone = false;
    this.#inUse.length = 0;
    this.#current = undefined;
  }

  /** Releases the mode blob (after turnOffNow, when the output is turned off). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#extras = [];
    this.#blob?.close();
    this.#blob = undefined;
  }
}

/** commit()'s options (one CRTC: no GETPLANE ioctls per commit), made once */
const COMMIT_FLIP = Object.freeze({ allowModeset: false, crtcCount: 1 });
const COMMIT_MODESET = Object.freeze({ allowModeset: true, crtcCount: 1 });

function has(next: readonly PlaneContent[], id: number): boolean {
  for (let i = 0; i < next.length; i++) if (next[i]!.plane.id === id) return true;
  return false;
}
