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

/** A placement's plane rectangles as property values, made once per placement. */
const rectValues = new WeakMap<ResolvedPlacement, Record<string, bigint>>();

function rectsOf(p: ResolvedPlacement): Record<string, bigint> {
  let v = rectValues.get(p);
  if (!v) {
    v = {
      SRC_X: fixed16(p.src.x),
      SRC_Y: fixed16(p.src.y),
      SRC_W: fixed16(p.src.width),
      SRC_H: fixed16(p.src.height),
      CRTC_X: BigInt.asUintN(64, BigInt(p.dst.x)),
      CRTC_Y: BigInt.asUintN(64, BigInt(p.dst.y)),
      CRTC_W: BigInt(p.dst.width),
      CRTC_H: BigInt(p.dst.height),
    };
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
  readonly #inUse = new Map<number, OutputPlane>();
  #current: readonly PlaneContent[] | undefined;
  readonly #extras = new Set<OutputExtra>();
  #closed = false;
  /** Sees every request before it goes to the kernel (a test hook). */
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
    return [...this.#inUse.keys()];
  }

  /** Adds state that rides along in every request from now on; returns the function that removes it. */
  addExtra(extra: OutputExtra): () => void {
    this.#extras.add(extra);
    return () => this.#extras.delete(extra);
  }

  /**
   * The next state of a direct frame: `fb` on `plane` at `placement`, above the background when
   * the plane is not the one the background goes on.
   */
  direct(plane: OutputPlane, fb: { readonly id: number }, placement: ResolvedPlacement): PlaneContent[] {
    const it = { plane, fb, placement };
    const bg = this.#background;
    return bg && bg.plane.id !== plane.id ? [{ plane: bg.plane, fb: bg.fb(), placement: this.fullMode }, it] : [it];
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
      req.set(plane.id, 'FB_ID', fb).set(plane.id, 'CRTC_ID', crtc).setAll(plane.id, rectsOf(placement));
      if (plane.hasRotationProperty) req.set(plane.id, 'rotation', placement.rotation);
    }
    for (const id of this.#inUse.keys()) if (!has(next, id)) req.set(id, 'FB_ID', 0).set(id, 'CRTC_ID', 0);
    for (const x of this.#extras) x.apply(req, testOnly);
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
    const req = this.apply(this.device.atomic(), next);
    if (inFence) for (const f of Array.isArray(inFence) ? (inFence as readonly InFence[]) : [inFence as InFence]) req.set(f.planeId, 'IN_FENCE_FD', f.fd);
    const allowModeset = !this.#modesetDone;
    this.observer?.('commit', req, allowModeset);
    const r = req.commit({ allowModeset, crtcCount: 1 });
    for (const x of this.#extras) x.committed?.();
    this.#modesetDone = true;
    this.#inUse.clear();
    for (let i = 0; i < next.length; i++) this.#inUse.set(next[i]!.plane.id, next[i]!.plane);
    this.#current = next;
    return r;
  }

  /** Writes everything off: the planes in use (rotation back to 0), the extras, the connector, the CRTC. */
  turnOff(req: AtomicRequest): AtomicRequest {
    this.#planesOff(req);
    for (const x of this.#extras) x.turnOff(req);
    return req.set(this.connectorId, 'CRTC_ID', 0).set(this.crtcId, 'ACTIVE', 0).set(this.crtcId, 'MODE_ID', 0);
  }

  #planesOff(req: AtomicRequest): AtomicRequest {
    for (const [id, plane] of this.#inUse) {
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
    this.#inUse.clear();
    this.#current = undefined;
  }

  /** Releases the mode blob (after turnOffNow, when the output is turned off). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#extras.clear();
    this.#blob?.close();
    this.#blob = undefined;
  }
}

function has(next: readonly PlaneContent[], id: number): boolean {
  for (let i = 0; i < next.length; i++) if (next[i]!.plane.id === id) return true;
  return false;
}
