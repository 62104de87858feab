/**
 * The per-frame presenter: one object per output (a CRTC driving a connector with a mode) that a
 * compositor calls each frame with its surface's current buffer, damage and placement
 * (transform). Each frame it
 * 1. decides direct or copy: the verdicts (ScanoutChecker: static checks, then the kernel's
 *    import, AddFB2 and TEST_ONLY) through assignPlanes, cached per (buffer, placement): a frame
 *    in steady state computes no verdict; a buffer whose consumers are not all cache-coherent
 *    (`coherent: false`, from the constraint model; or the `forceCopy` test option) is copied
 *    even when the verdict says direct;
 * 2. direct: the buffer's framebuffer (made once by the verdict's AddFB2) on the plane, its
 *    pending writes as the plane's IN_FENCE_FD (implicit-sync.ts; none when its writes are done);
 *    copy: waits (on the loop) for the buffer's pending writes, then copies only the damaged
 *    rectangles into a free buffer of the copy ring (compositor-owned dumb buffers of the mode;
 *    a reused buffer gets the union of the damage since it was last written), off the JS thread
 *    inside DMA_BUF_IOCTL_SYNC brackets, and puts that buffer on the primary plane;
 * 3. builds ONE atomic commit through its OutputState (`presenter.output`: the modeset on the
 *    first frame; planes that are no longer used are turned off; the extras, such as a writeback
 *    connector), the same builder the verdicts' TEST_ONLY used, and commits it non-blocking with
 *    a page-flip event; a direct frame whose commit the kernel refuses all the same (EINVAL,
 *    ERANGE, ENOSPC) is decided again as a copy and committed (its verdict becomes COMMIT, the
 *    known-bad table learns the pair);
 * 4. on the flip: releases the client buffers that left the screen (`onRelease`, one call per
 *    buffer; a copied buffer is released as soon as its copy is done) and resolves the
 *    presentation data: timestamp, sequence, refresh and the wp_presentation flags.
 * A frame with the same buffer, the same placement and empty damage commits nothing.
 *
 * Buffer life: present() locks a buffer that has a `life` (every linux-dmabuf and wl_shm buffer,
 * every camera frame's);
 * the lock is dropped when its copy is done, or, scanned out, when the flip that replaced it
 * completed (and at close). The last unlock of a destroyed wl_buffer ends it, and its decisions,
 * copy source (dup fd, mapping), verdicts and framebuffer leave with it: no forget() to call.
 *
 * The copy path draws what no plane takes: an unscaled, unrotated, uncropped buffer as a damage
 * copy; a crop, scaling (nearest neighbour), rotation or reflection as a transformed copy
 * (copyTransformed) that repaints the whole destination rectangle each frame. What it still
 * cannot do is refused with CopyUnsupportedError (see there).
 * Frames are serialized: present() waits for the previous frame's flip.
 */
import { ClosedError, PrimebufError, SystemError } from '../errors.js';
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { Mapping } from '../dmabuf/mapping.js';
import type { SyncFile } from '../dmabuf/sync-file.js';
import { fourcc, formatName } from '../formats/index.js';
import type { AtomicRequest } from '../kms/atomic.js';
import type { Device } from '../kms/device.js';
import { DumbBuffer } from '../alloc/backends/dumb.js';
import { Framebuffer } from '../kms/framebuffer.js';
import type { RawMode } from '../native/drm.js';
import { assignPlanes } from './assign.js';
import { canCopy, copyTransformed, type ComposeSource, type CopySource, type CopySurface, type CopyTransform } from './copy.js';
import { CopyRing, type RingBufferSpec, type RingFrame } from './copy-ring.js';
import type { Rect } from './damage.js';
import { exportWriteFence } from './implicit-sync.js';
import type { KnownBadTable } from './known-bad.js';
import { OutputState, type OutputExtra, type PlaneContent } from './output-state.js';
import { placementKey, type ModeSize, type Placement, type ResolvedPlacement } from './placement.js';
import { DumbRingBuffer, type PresenterRingBuffer } from './presenter-ring.js';
import { ScanoutChecker, type ScanoutVerdict } from './verdict.js';
import type { ScanoutBuffer } from './verdict-buffer.js';
import { findPlane, scanoutDeviceFromLive, type ScanoutDeviceInfo, type ScanoutPlaneInfo } from './verdict-device.js';
import { KmsScanoutKernel } from './verdict-kms.js';
import { SceneRunner, type ScenePlaneInfo } from './scene.js';
import { composeLayers } from './compose.js';
import type { ComposeJob, ComposeResult, SceneFrame, SceneResult, SceneSurfaceResult } from './scene-types.js';

/** wp_presentation_feedback.kind bits. */
export const PRESENTATION_VSYNC = 0x1;
export const PRESENTATION_HW_CLOCK = 0x2;
export const PRESENTATION_HW_COMPLETION = 0x4;
export const PRESENTATION_ZERO_COPY = 0x8;

const XRGB8888 = fourcc('XRGB8888');
const ARGB8888 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');

/** The placement of the surface on the output (the CRTC is the presenter's). */
export type SurfacePlacement = Omit<Placement, 'crtc'>;

export interface PresentFrame {
  /** The surface's current buffer: pass the same object for the same buffer every frame. */
  readonly buffer: ScanoutBuffer;
  /** Damage in buffer pixels since the surface's previous content; undefined: all of it. */
  readonly damage?: readonly Rect[];
  /**
   * Default: the whole buffer at (0, 0), unscaled. Not changed after it was given: pass the same
   * object while the surface does not move (its key is then not built again), a new one when it does.
   */
  readonly placement?: SurfacePlacement;
  /**
   * false when a device that touches the buffer is not cache-coherent: the buffer is copied even
   * when the verdict says direct.
   */
  readonly coherent?: boolean;
  /**
   * The buffer's merged constraints (merge(...).set): `writeCombine` (some member is not
   * cache-coherent) has the same effect as `coherent: false`.
   */
  readonly constraints?: { readonly writeCombine: boolean };
}

export interface Presentation {
  /** The flip's vblank timestamp (CLOCK_MONOTONIC when `flags` has HW_CLOCK). */
  readonly timestampNs: bigint;
  readonly tvSec: number;
  readonly tvUsec: number;
  /** The vblank counter of the flip. */
  readonly sequence: number;
  /** The mode's refresh period in nanoseconds. */
  readonly refreshNs: number;
  /** PRESENTATION_* bits. */
  readonly flags: number;
}

export interface PresentResult {
  /** 'unchanged': nothing to show, no commit; 'black': clear() (or refresh() of a black screen). */
  readonly path: 'direct' | 'copy' | 'unchanged' | 'black';
  readonly committed: boolean;
  /** The plane the client buffer went on (direct) or the copy's plane. */
  readonly plane?: number;
  readonly bytesCopied: number;
  readonly presentation?: Presentation;
  /** Out-fences the `extraState` hook asked for (OUT_FENCE_PTR, writeback): the caller owns them. */
  readonly fences: ReadonlyArray<SyncFile | null>;
}

/** Counts since the presenter was made (the kiosk's --stats prints them). */
export interface PresenterStats {
  /** present() calls that committed. */
  frames: number;
  /** present() calls with nothing to show (no commit). */
  unchanged: number;
  /** Atomic commits (the first one with the modeset). */
  commits: number;
  directFrames: number;
  copiedFrames: number;
  /** PRIME imports, AddFB2 and TEST_ONLY calls the verdicts made. */
  imports: number;
  addfb2: number;
  testOnly: number;
  /** Verdicts computed (cache misses of the checker). */
  verdictsComputed: number;
  /** Buffers the presenter allocated (copy-ring buffers, the black background). */
  allocations: number;
  /** Client buffers mapped for the copy path (once per buffer). */
  sourceMaps: number;
  bytesCopied: number;
  /** DMA_BUF_IOCTL_SYNC calls of the copies (START and END both count). */
  syncCalls: number;
  /** Write fences exported from client buffers (DMA_BUF_IOCTL_EXPORT_SYNC_FILE): only for writes still pending. */
  fenceExports: number;
  /** onRelease calls. */
  releases: number;
  /**
   * Commits of a direct frame the kernel refused after the verdict's TEST_ONLY passed: the
   * buffer at that placement is copied from then on (the frame itself went on as a copy).
   */
  commitFailures: number;
  /** presentScene() calls that committed. */
  sceneFrames: number;
  /** Scene shapes searched (per (surface, plane) verdicts and TEST_ONLY of candidates). */
  sceneSearches: number;
  /** Planes the last frame committed used (the composite's and the background's included). */
  planesUsed: number;
  /** Surfaces composed, over every scene frame. */
  surfacesComposed: number;
  /** Bytes of composites written, over every scene frame. */
  bytesComposed: number;
  /** Surfaces composed in the last scene frame. */
  lastSurfacesComposed: number;
  /** Bytes composed in the last scene frame. */
  lastBytesComposed: number;
}

export interface PresenterOptions {
  readonly device: Device;
  readonly crtcId: number;
  readonly connectorId: number;
  readonly mode: RawMode;
  /** The device as the verdicts see it (default: read from the live device). */
  readonly model?: ScanoutDeviceInfo;
  /** Shared between a device's outputs (default: the presenter's own). */
  readonly knownBad?: KnownBadTable;
  /** Copy-ring buffers (default 2: one on screen, one to write). */
  readonly ringBuffers?: number;
  /** The copy ring's format (default XRGB8888). */
  readonly ringFormat?: number;
  /** Makes a copy-ring buffer (default: a dumb buffer of the mode on `device`). */
  readonly allocateRingBuffer?: (spec: RingBufferSpec) => PresenterRingBuffer;
  /** Test option: copy every frame (the non-coherent override for all buffers). */
  readonly forceCopy?: boolean;
  /**
   * A buffer left the screen (or its copy is done). Buffers with a `life` need no call here (the
   * unlock gives them back: wl_buffer.release, a camera's QBUF); for plain descriptions.
   */
  readonly onRelease?: (buffer: ScanoutBuffer) => void;
  /**
   * Adds to every commit, not to the verdicts' TEST_ONLY (it may use up one-shot state); its
   * out-fences come back in the result. State that the TEST_ONLY must carry too (a writeback
   * connector on the CRTC) goes in `extras` (or `presenter.output.addExtra`).
   */
  readonly extraState?: (req: AtomicRequest) => void;
  /** State that rides along in every request of the output, TEST_ONLY included (OutputState.addExtra). */
  readonly extras?: readonly OutputExtra[];
  /** The scene path's composer (default composeLayers, compose.ts: pixman off the JS thread). */
  readonly compose?: (job: ComposeJob) => Promise<ComposeResult>;
}

/**
 * The copy path cannot show this placement: a format it cannot convert to the ring's (or a
 * multi-plane buffer); a crop, scaling, rotation or reflection with a source rectangle at
 * non-integer coordinates, or with a destination that has no pixel on the mode.
 */
export class CopyUnsupportedError extends PrimebufError {
  override name = 'CopyUnsupportedError';
  readonly code = 'COPY_UNSUPPORTED';
}

type Decision =
  | { readonly path: 'direct'; readonly plane: number; readonly placement: ResolvedPlacement; readonly background: boolean; readonly why: readonly string[] }
  | {
      readonly path: 'copy';
      /** the destination rectangle on the mode */
      readonly dx: number;
      readonly dy: number;
      readonly width: number;
      readonly height: number;
      /** present when the copy crops, scales, rotates or reflects: a full repaint of the destination each frame */
      readonly transform?: CopyTransform;
      readonly why: readonly string[];
    };

/** A client buffer's CPU side for the copy path: the presenter's own dup of its fd and a mapping. */
interface Source {
  readonly dmabuf: Dmabuf;
  readonly memory: Mapping;
}

interface FrameKey {
  readonly width: number;
  readonly height: number;
  readonly forceCopy: boolean;
  readonly placement: Placement;
  readonly key: string;
}

interface Shown {
  readonly buffer: ScanoutBuffer;
  readonly key: string;
  readonly path: 'direct' | 'copy';
}

/**
 * A frame's decision key: placement, mode, the copy override and the buffer's size (a copy
 * continues the ring's damage history only for a surface of the same size at the same place).
 */
function frameKey(buffer: ScanoutBuffer, placement: Placement, mode: ModeSize, forceCopy: boolean): string {
  return `${placementKey(placement, mode)}|${forceCopy ? 'copy' : 'any'}|${buffer.width}x${buffer.height}`;
}

export class Presenter {
  readonly device: Device;
  readonly crtcId: number;
  readonly connectorId: number;
  readonly mode: RawMode;
  readonly modeSize: ModeSize;
  /** The mode's refresh period in nanoseconds. */
  readonly refreshNs: number;
  readonly checker: ScanoutChecker;
  readonly #kernel: KmsScanoutKernel;
  readonly #opts: PresenterOptions;
  readonly #primary: ScanoutPlaneInfo;
  readonly #planes: readonly ScanoutPlaneInfo[];
  readonly #hwClock: boolean;
  readonly #stats = { frames: 0, unchanged: 0, commits: 0, directFrames: 0, copiedFrames: 0, allocations: 0, sourceMaps: 0, fenceExports: 0, releases: 0 };
  #decisions = new WeakMap<ScanoutBuffer, Map<string, Decision>>();
  readonly #sources = new Map<ScanoutBuffer, Source>();
  #ring: CopyRing<PresenterRingBuffer> | undefined;
  #background: { dumb: DumbBuffer; fb: Framebuffer } | undefined;
  /**
   * The output's KMS state: every commit, the verdicts' TEST_ONLY and the turn-off are written
   * by it (a writeback capture registers its connector with `output.addExtra`).
   */
  readonly output: OutputState;
  /** The last frame committed. */
  #shown: Shown | undefined;
  /** frame keys by the caller's placement object (a compositor keeps one per buffer while nothing moves) */
  #keys = new WeakMap<SurfacePlacement, FrameKey>();
  #defaultKey: FrameKey | undefined;
  /** Commits that failed after their TEST_ONLY passed (the frame went on as a copy). */
  #commitFailures = 0;
  /** Planes the last committed frame used. */
  #planesUsed = 0;
  #lastWasScene = false;

  /** The client buffer scanned out directly by the last completed flip. */
  #onScreen: ScanoutBuffer | undefined;
  /** The client buffer of a direct frame committed and not flipped yet. */
  #pendingDirect: ScanoutBuffer | undefined;
  /** Plain buffers (no `life`) forgotten while on screen: dropped when they leave it. */
  readonly #forgetLater = new Set<ScanoutBuffer>();
  /** Buffers with a life whose end this presenter listens for (once each). */
  readonly #watched = new WeakSet<ScanoutBuffer>();
  /** The scene path (presentScene), made on its first frame. */
  #scene: SceneRunner | undefined;
  #sceneRing: CopyRing<PresenterRingBuffer> | undefined;
  /** Primary, overlays and cursor of the CRTC, with their stacking (zpos) and blending. */
  readonly #scenePlanes: readonly ScenePlaneInfo[];
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** While a direct lane is armed on this output: hands it back before the presenter commits anything itself. */
  #laneGuard: (() => void) | undefined;

  constructor(opts: PresenterOptions) {
    this.#opts = opts;
    this.device = opts.device;
    this.crtcId = opts.crtcId;
    this.connectorId = opts.connectorId;
    this.mode = opts.mode;
    this.modeSize = { width: opts.mode.hdisplay, height: opts.mode.vdisplay };
    this.refreshNs = Math.round((opts.mode.htotal * opts.mode.vtotal * 1e6) / opts.mode.clock);
    const model = opts.model ?? scanoutDeviceFromLive(opts.device);
    const primary = findPlane(model, 'primary', opts.crtcId);
    if (!primary) throw new RangeError(`${opts.device.name}: CRTC ${opts.crtcId} has no primary plane`);
    this.#primary = primary;
    const index = model.crtcs.find((c) => c.id === opts.crtcId)?.index;
    this.#planes = model.planes.filter((p) => (p.type === 'primary' ? p.id === primary.id : p.type === 'overlay') && index !== undefined && p.possibleCrtcs.includes(index));
    this.#scenePlanes = scenePlanes(opts.device, model.planes.filter((p) => (p.type === 'primary' ? p.id === primary.id : true) && index !== undefined && p.possibleCrtcs.includes(index)));
    this.#hwClock = opts.device.tryGetCap('TIMESTAMP_MONOTONIC', 0n) !== 0n;
    this.output = new OutputState(opts.device, {
      crtcId: opts.crtcId,
      connectorId: opts.connectorId,
      mode: opts.mode,
      // a surface on an overlay lies above the black background on the primary (made when
      // first needed: an output whose surfaces all go on the primary never allocates it)
      background: { plane: primary, fb: () => this.#backgroundFb() },
    });
    const hook = opts.extraState;
    if (hook) this.output.addExtra({ apply: (req, testOnly) => (testOnly ? undefined : hook(req)), turnOff: () => undefined });
    for (const x of opts.extras ?? []) this.output.addExtra(x);
    // the verdicts' TEST_ONLY is the request the frame's commit will make (OutputState)
    this.#kernel = new KmsScanoutKernel(opts.device, this.output);
    this.checker = new ScanoutChecker(model, { kernel: this.#kernel, mode: this.modeSize, ...(opts.knownBad ? { knownBad: opts.knownBad } : {}) });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): Readonly<PresenterStats> {
    const k = this.checker.kernelCounts;
    const ring = this.#ring?.stats;
    const sc = this.#scene?.counters;
    return {
      ...this.#stats,
      imports: k.imports,
      addfb2: k.addfb2,
      verdictsComputed: this.checker.stats.computed,
      bytesCopied: ring?.bytes ?? 0,
      syncCalls: ring?.syncCalls ?? 0,
      testOnly: k.testOnly + (sc?.testOnly ?? 0),
      commits: this.#stats.commits + (sc?.frames ?? 0),
      commitFailures: this.#commitFailures + (sc?.commitFailures ?? 0),
      sceneFrames: sc?.frames ?? 0,
      sceneSearches: sc?.searches ?? 0,
      planesUsed: this.#planesUsed,
      surfacesComposed: sc?.surfacesComposed ?? 0,
      bytesComposed: sc?.bytesComposed ?? 0,
      lastSurfacesComposed: this.#lastWasScene ? (sc?.lastSurfacesComposed ?? 0) : 0,
      lastBytesComposed: this.#lastWasScene ? (sc?.lastBytesComposed ?? 0) : 0,
    };
  }

  /** The copy ring, once a frame was copied. */
  get ring(): CopyRing<PresenterRingBuffer> | undefined {
    return this.#ring;
  }

  /**
   * Shows one frame; resolves after its flip with the presentation data (or at once, without a
   * commit, when nothing changed). Calls are serialized: a call made while a frame is in flight
   * starts after its flip.
   */
  present(frame: PresentFrame): Promise<PresentResult> {
    if (this.#closed) return Promise.reject(new ClosedError('Presenter'));
    this.#laneGuard?.();
    const { buffer } = frame;
    // the frame's lock, taken now: a wl_buffer destroyed before the frame runs stays valid for it
    try {
      buffer.life?.lock();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#watch(buffer);
    return this.#queue(() => this.#present(frame));
  }

  /**
   * Shows one frame of several surfaces (bottom to top): planes assigned across the scene (a
   * search with TEST_ONLY on a new shape, the cached assignment otherwise), the rest composed
   * into a buffer of the scene's copy ring on the plane beneath (only the frame's damage), all in
   * one atomic commit. Resolves after the flip (at once, without a commit, when nothing changed).
   * Every buffer is locked from this call: a composed one until its composition is done, one on a
   * plane until the flip that replaced it. Serialized with present(), refresh() and clear().
   */
  presentScene(frame: SceneFrame): Promise<SceneResult> {
    if (this.#closed) return Promise.reject(new ClosedError('Presenter'));
    this.#laneGuard?.();
    const locked: ScanoutBuffer[] = [];
    try {
      for (const s of frame.surfaces) {
        const c = s.content;
        if ((c as { kind: string }).kind === 'solid') continue;
        const b = c as ScanoutBuffer;
        b.life?.lock();
        locked.push(b);
      }
    } catch (err) {
      for (const b of locked) this.#unlock(b);
      return Promise.reject(err);
    }
    for (const b of locked) this.#watch(b);
    const run = this.#tail.then(async () => {
      const r = await this.#sceneRunner().present(frame);
      if (r.committed) {
        this.#planesUsed = r.planesUsed;
        this.#lastWasScene = true;
        this.#shown = undefined; // present() after a scene is never "unchanged"
      }
      return r;
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Per surface of the last scene shown: on a plane or composed, and why (empty before any scene). */
  explainScene(): readonly SceneSurfaceResult[] {
    return this.#scene?.explain() ?? [];
  }

  #sceneRunner(): SceneRunner {
    if (this.#scene) return this.#scene;
    const compose = this.#opts.compose ?? composeLayers;
    const isClosed = (): boolean => this.#closed;
    this.#scene = new SceneRunner({
      crtcId: this.crtcId,
      modeSize: this.modeSize,
      output: this.output,
      checker: this.checker,
      kernel: this.#kernel,
      planes: this.#scenePlanes,
      primary: this.#primary,
      backgroundFb: () => this.#backgroundFb(),
      source: (buffer): ComposeSource => {
        const cs = buffer.copySource;
        if (!cs) return { surface: this.#source(buffer), guarded: false };
        if (cs.composeSource) return cs.composeSource();
        return { surface: this.#copyInput(buffer, true) as CopySurface, guarded: false };
      },
      ring: () => this.#ensureSceneRing(),
      compose,
      release: (b) => this.#release(b),
      unlock: (b) => this.#unlock(b),
      presentation: (e, zeroCopy) => this.#presentation(e, zeroCopy),
      takeSingleOnScreen: () => {
        const on = this.#onScreen;
        this.#onScreen = undefined;
        this.#shown = undefined;
        return on;
      },
      assertOpen: () => this.#assertOpen(),
      get closed() {
        return isClosed();
      },
    });
    return this.#scene;
  }

  #ensureSceneRing(): CopyRing<PresenterRingBuffer> {
    this.#sceneRing ??= this.#newRing();
    return this.#sceneRing;
  }

  /** The scene path's buffers on screen leave it with a present() or clear() flip: released and unlocked. */
  #sceneLeft(nowOn: ScanoutBuffer | undefined): void {
    if (!this.#scene) return;
    for (const b of this.#scene.takeOnScreen()) {
      if (b !== nowOn) this.#release(b);
      this.#unlock(b);
    }
  }

  /** A buffer with a life leaves every cache of the presenter (and of its checker) at its end. */
  #watch(buffer: ScanoutBuffer): void {
    const life = buffer.life;
    if (!life || this.#watched.has(buffer)) return;
    this.#watched.add(buffer);
    life.onEnd(() => {
      if (this.#shown?.buffer === buffer) this.#shown = undefined;
      this.#drop(buffer);
    });
  }

  /**
   * Commits again what the planes show (no copy, no release; black before the first frame), for
   * state that `extraState` adds (a writeback capture) when no frame is coming. Serialized like
   * present().
   */
  refresh(): Promise<PresentResult> {
    this.#laneGuard?.();
    return this.#queue(() => this.#recommit());
  }

  async #recommit(): Promise<PresentResult> {
    this.#assertOpen();
    const planes = this.output.current;
    if (!planes) return this.#black();
    const { flip, fences } = this.output.commit(planes);
    this.#stats.commits++;
    const events = await flip;
    const path = this.#shown?.path ?? 'black';
    return { path, committed: true, bytesCopied: 0, presentation: this.#presentation(events[0]!, path === 'direct'), fences };
  }

  /**
   * Shows black: the background on the primary plane, every other plane off (the modeset too on
   * the first commit). The client buffer that was on screen is released after the flip.
   */
  clear(): Promise<PresentResult> {
    this.#laneGuard?.();
    return this.#queue(() => this.#black());
  }

  #queue(fn: () => Promise<PresentResult>): Promise<PresentResult> {
    if (this.#closed) return Promise.reject(new ClosedError('Presenter'));
    const run = this.#tail.then(fn);
    this.#tail = run.catch(ignore);
    return run;
  }

  /**
   * @deprecated A buffer with a `life` (every linux-dmabuf, wl_shm and camera buffer) leaves the caches
   * at its end by itself: this call does nothing for it. For a plain description the caller owns
   * (no `life`): drop its verdicts, framebuffer and mapping (after it left the screen, when it is
   * on it).
   */
  forget(buffer: ScanoutBuffer): void {
    if (buffer.life) return;
    if (this.#shown?.buffer === buffer) this.#shown = undefined; // never "unchanged" against a forgotten buffer
    if (this.#onScreen === buffer || this.#pendingDirect === buffer) {
      this.#forgetLater.add(buffer);
      return;
    }
    this.#drop(buffer);
  }

  #drop(buffer: ScanoutBuffer): void {
    this.#forgetLater.delete(buffer);
    this.#scene?.forget(buffer);
    this.#decisions.delete(buffer);
    this.checker.forget(buffer);
    const s = this.#sources.get(buffer);
    if (s) {
      this.#sources.delete(buffer);
      s.memory.close();
      s.dmabuf.close();
    }
  }

  #backgroundFb(): Framebuffer {
    if (this.#closed) throw new ClosedError('Presenter');
    if (!this.#background) {
      const { width, height } = this.modeSize;
      const dumb = DumbBuffer.create(this.device, { width, height, bpp: 32 }); // zero-filled: black
      try {
        const fb = Framebuffer.create(this.device, { width, height, format: XRGB8888, modifier: 0n, planes: [{ handle: dumb.handle, pitch: dumb.pitch }] });
        this.#background = { dumb, fb };
      } catch (err) {
        dumb.close();
        throw err;
      }
      this.#stats.allocations++;
    }
    return this.#background.fb;
  }

  #decide(buffer: ScanoutBuffer, placement: Placement, key: string, forceCopy: boolean): Decision {
    let perBuffer = this.#decisions.get(buffer);
    const hit = perBuffer?.get(key);
    if (hit) return hit;
    const d = forceCopy ? this.#copyDecision(buffer, placement, ['not cache-coherent: copied (non-coherent override)']) : this.#assign(buffer, placement);
    if (!perBuffer) this.#decisions.set(buffer, (perBuffer = new Map()));
    perBuffer.set(key, d);
    return d;
  }

  #assign(buffer: ScanoutBuffer, placement: Placement): Decision {
    const swap = placement.rotation === 90 || placement.rotation === 270;
    const src = placement.src ?? { x: 0, y: 0, width: buffer.width, height: buffer.height };
    const dst = placement.dst ?? { x: 0, y: 0, width: swap ? src.height : src.width, height: swap ? src.width : src.height };
    const verdicts = new Map<number, ScanoutVerdict>();
    const a = assignPlanes({
      mode: this.modeSize,
      planes: this.#planes,
      surfaces: [{ id: 0, dst }],
      verdict: (_surface, plane) => {
        const v = this.checker.checkScanout(buffer, plane, placement);
        verdicts.set(plane, v);
        return v;
      },
    });
    const direct = a.primary.kind === 'surface' ? this.#primary.id : a.overlays[0]?.plane;
    const v = direct === undefined ? undefined : verdicts.get(direct);
    if (direct !== undefined && v?.ok && v.placement) {
      return { path: 'direct', plane: direct, placement: v.placement, background: direct !== this.#primary.id, why: a.why };
    }
    const refusals = [...verdicts.values()].flatMap((x) => x.reasons.map((r) => `${r.code}: ${r.detail}`));
    return this.#copyDecision(buffer, placement, [...a.why, ...refusals]);
  }

  #copyDecision(buffer: ScanoutBuffer, placement: Placement, why: string[]): Decision {
    const format = this.#opts.ringFormat ?? XRGB8888;
    if (!copyPlanesOk(buffer) || !canCopy(buffer.format, format)) {
      throw new CopyUnsupportedError(`the copy path cannot convert ${formatName(buffer.format)} (${buffer.planes.length} planes) to ${formatName(format)} (${why.join('; ')})`);
    }
    const rotation = placement.rotation ?? 0;
    const swap = rotation === 90 || rotation === 270;
    const src = placement.src ?? { x: 0, y: 0, width: buffer.width, height: buffer.height };
    const dst = placement.dst ?? { x: 0, y: 0, width: swap ? src.height : src.width, height: swap ? src.width : src.height };
    const cropped = src.x !== 0 || src.y !== 0 || src.width !== buffer.width || src.height !== buffer.height;
    const scaled = dst.width !== buffer.width || dst.height !== buffer.height;
    const rotated = rotation !== 0 || placement.reflectX === true || placement.reflectY === true;
    const at = { dx: dst.x, dy: dst.y, width: dst.width, height: dst.height };
    if (!cropped && !scaled && !rotated) return { path: 'copy', ...at, why };
    const what = [cropped && 'a crop', scaled && 'scaling', rotated && 'rotation'].filter(Boolean).join(', ');
    const integral = [src.x, src.y, src.width, src.height].every(Number.isSafeInteger);
    if (!integral) throw new CopyUnsupportedError(`the copy path takes whole source pixels, not ${src.width}x${src.height}+${src.x}+${src.y} (${why.join('; ')})`);
    // partly off-screen: the part on the mode is drawn (clipped), as the whole would show it there
    const x0 = Math.max(dst.x, 0);
    const y0 = Math.max(dst.y, 0);
    const x1 = Math.min(dst.x + dst.width, this.modeSize.width);
    const y1 = Math.min(dst.y + dst.height, this.modeSize.height);
    if (!Number.isSafeInteger(dst.x) || !Number.isSafeInteger(dst.y) || x1 <= x0 || y1 <= y0) {
      throw new CopyUnsupportedError(`the copy path has nothing to draw of ${dst.width}x${dst.height}+${dst.x}+${dst.y} on the ${this.modeSize.width}x${this.modeSize.height} mode (${why.join('; ')})`);
    }
    const clip = { x: 0, y: 0, width: this.modeSize.width, height: this.modeSize.height };
    const transform: CopyTransform = { srcRect: src, dstRect: dst, clip, rotation, reflectX: placement.reflectX === true, reflectY: placement.reflectY === true };
    return { path: 'copy', dx: x0, dy: y0, width: x1 - x0, height: y1 - y0, transform, why: [...why, `copied with ${what} (transformed copy)`] };
  }

  #ensureRing(): CopyRing<PresenterRingBuffer> {
    this.#ring ??= this.#newRing();
    return this.#ring;
  }

  /** A copy ring of the mode's size (the single-surface copy path and the scene's composite each have one). */
  #newRing(): CopyRing<PresenterRingBuffer> {
    const make = this.#opts.allocateRingBuffer ?? ((spec: RingBufferSpec) => new DumbRingBuffer(this.device, spec));
    return new CopyRing<PresenterRingBuffer>({
      width: this.modeSize.width,
      height: this.modeSize.height,
      format: this.#opts.ringFormat ?? XRGB8888,
      buffers: this.#opts.ringBuffers ?? 2,
      allocate: (spec) => {
        const b = make(spec);
        this.#stats.allocations++;
        return b;
      },
    });
  }

  /** What the copy reads: the buffer's copy source (wl_shm), or a mapping of its dma-buf. */
  #copyInput(buffer: ScanoutBuffer, transformed: boolean): CopySurface | { readonly width: number; readonly height: number; readonly copySource: CopySource } {
    const cs = buffer.copySource;
    if (!cs) return this.#source(buffer);
    if (!transformed) return { width: buffer.width, height: buffer.height, copySource: cs };
    if (!cs.surface) throw new CopyUnsupportedError(`${buffer.name ?? 'the buffer'}: its copy source has no surface for a transformed copy`);
    return cs.surface();
  }

  #source(buffer: ScanoutBuffer): CopySurface {
    if (buffer.kind === 'shm') throw new CopyUnsupportedError(`${buffer.name ?? 'a wl_shm buffer'} has no copy source: the copy path cannot read it`);
    let s = this.#sources.get(buffer);
    if (!s) {
      const dmabuf = Dmabuf.dupFrom(buffer.planes[0]!.fd, `copy source ${buffer.name ?? 'client buffer'}`);
      try {
        s = { dmabuf, memory: dmabuf.map({ writable: false }) };
      } catch (err) {
        dmabuf.close();
        throw err;
      }
      this.#sources.set(buffer, s);
      this.#stats.sourceMaps++;
    }
    const p = buffer.planes[0]!;
    const c = buffer.planes[1]; // a two-plane YUV source (NV12): its CbCr plane in the same dma-buf
    return { memory: s.memory, dmabuf: s.dmabuf, offset: p.offset, format: buffer.format, stride: p.stride, width: buffer.width, height: buffer.height, ...(c ? { chroma: { offset: c.offset, stride: c.stride } } : {}), ...(buffer.yuv ? { yuv: buffer.yuv } : {}) };
  }

  /** Drops one lock of `buffer` (its last one may end it: its caches leave then). */
  #unlock(buffer: ScanoutBuffer): void {
    try {
      buffer.life?.unlock();
    } catch (err) {
      // an end listener's error is the listener's: report it without breaking the frame path
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  #release(buffer: ScanoutBuffer): void {
    this.#stats.releases++;
    const cb = this.#opts.onRelease;
    if (!cb) return;
    try {
      cb(buffer);
    } catch (err) {
      // a listener's error is the listener's: report it without breaking the frame path
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('Presenter');
  }

  async #black(): Promise<PresentResult> {
    this.#assertOpen();
    const black: PlaneContent[] = [{ plane: this.#primary, fb: this.#backgroundFb(), placement: this.output.fullMode }];
    const { flip, fences } = this.output.commit(black);
    this.#stats.commits++;
    this.#shown = undefined;
    this.#pendingDirect = undefined;
    const events = await flip;
    this.#sceneLeft(undefined);
    this.#lastWasScene = false;
    this.#planesUsed = 1;
    const left = this.#onScreen;
    this.#onScreen = undefined;
    if (left) {
      this.#release(left);
      this.#unlock(left);
    }
    for (const b of [...this.#forgetLater]) this.#drop(b);
    return { path: 'black', committed: true, bytesCopied: 0, presentation: this.#presentation(events[0]!, false), fences };
  }

  #presentation(e: import('../kms/events.js').PageFlipEvent, zeroCopy: boolean): Presentation {
    // The flip that enables the CRTC may carry no vblank timestamp (vkms: 0): the time the
    // event was read stands in for it, and it is no hardware clock reading.
    const stamped = e.timestampNs !== 0n;
    const timestampNs = stamped ? e.timestampNs : process.hrtime.bigint(); // libuv's hrtime is CLOCK_MONOTONIC
    const hwClock = stamped && this.#hwClock;
    const flags = PRESENTATION_VSYNC | PRESENTATION_HW_COMPLETION | (hwClock ? PRESENTATION_HW_CLOCK : 0) | (zeroCopy ? PRESENTATION_ZERO_COPY : 0);
    const tvSec = stamped ? e.tvSec : Number(timestampNs / 1_000_000_000n);
    const tvUsec = stamped ? e.tvUsec : Number((timestampNs % 1_000_000_000n) / 1000n);
    return { timestampNs, tvSec, tvUsec, sequence: e.sequence, refreshNs: this.refreshNs, flags };
  }

  /** Runs one frame; the frame's lock (taken by present()) is dropped here unless it stays on screen. */
  async #present(frame: PresentFrame): Promise<PresentResult> {
    let held = true; // the frame's lock: dropped at the end unless it stays on screen
    try {
      this.#assertOpen();
      const { buffer } = frame;
      const forceCopy = this.#opts.forceCopy === true || frame.coherent === false || frame.constraints?.writeCombine === true;
      const { placement, key } = this.#frameKey(buffer, frame.placement, forceCopy);
      const prev = this.#shown;
      if (prev && prev.buffer === buffer && prev.key === key && frame.damage !== undefined && frame.damage.length === 0) {
        this.#stats.unchanged++;
        return { path: 'unchanged', committed: false, bytesCopied: 0, fences: [] };
      }
      // a direct frame whose commit the kernel refuses is decided again (a copy) and committed
      for (;;) {
        const decision = this.#decide(buffer, placement, key, forceCopy);
        const fds = planeFds(buffer);
        let next: readonly PlaneContent[];
        let fence: SyncFile | undefined;
        let copied: RingFrame<PresenterRingBuffer> | undefined;
        if (decision.path === 'direct') {
          const fb = this.#kernel.framebufferOf(buffer);
          if (!fb) throw new PrimebufError(`${this.device.name}: the framebuffer of ${buffer.name ?? 'the buffer'} is gone (forgotten while presented?)`);
          const plane = planeById(this.#planes, decision.plane);
          // the same state the verdict's TEST_ONLY carried (the background under an overlay)
          next = this.output.direct(plane, fb, decision.placement);
          fence = exportWriteFence(fds, buffer.name);
          if (fence) this.#stats.fenceExports++;
        } else {
          const ring = this.#ensureRing();
          const { transform } = decision;
          const source = this.#copyInput(buffer, transform !== undefined);
          // a new source, a new placement or frames shown directly since: the ring's buffers do
          // not hold this surface's previous frames, so its damage history cannot be trusted
          const continues = prev?.path === 'copy' && prev.key === key;
          if (!continues) {
            ring.invalidate();
            // what the surface does not cover must be black, not a previous frame's pixels
            const covers = decision.dx <= 0 && decision.dy <= 0 && decision.dx + decision.width >= this.modeSize.width && decision.dy + decision.height >= this.modeSize.height;
            if (!covers) ring.clearBeforeNextWrite(); // every ring buffer, the one on screen too, zeroed before its next write
          }
          // counted when exported, before the wait (a stats reader sees the pending fence)
          const writes = buffer.kind === 'shm' ? null : exportWriteFence(fds, buffer.name);
          if (writes) {
            this.#stats.fenceExports++;
            try {
              await writes.wait();
            } finally {
              writes.close();
            }
          }
          this.#assertOpen();
          if (transform) {
            // a transformed frame repaints its whole destination rectangle: that is its damage
            const whole = [{ x: 0, y: 0, width: decision.width, height: decision.height }];
            const surface = source as CopySurface;
            const write = (b: PresenterRingBuffer): Promise<number> => copyTransformed(surface, b, transform, { stats: ring.stats });
            copied = await ring.copyFrame(source, whole, { dx: decision.dx, dy: decision.dy, write });
          } else {
            const damage = continues && frame.damage !== undefined ? frame.damage : [{ x: 0, y: 0, width: buffer.width, height: buffer.height }];
            copied = await ring.copyFrame(source, damage, { dx: decision.dx, dy: decision.dy });
          }
          this.#assertOpen();
          next = [{ plane: this.#primary, fb: copied.slot.buffer.fb, placement: this.output.fullMode }];
          // the compositor has its own copy now: the client may reuse the buffer
          if (buffer !== this.#onScreen) this.#release(buffer);
          held = false;
          this.#unlock(buffer);
        }
        let flip: Promise<import('../kms/events.js').PageFlipEvent[]>;
        let fences: ReadonlyArray<SyncFile | null>;
        try {
          // a throwing extra must not strand the fence or the ring slot
          ({ flip, fences } = this.output.commit(next, fence && decision.path === 'direct' ? { planeId: decision.plane, fd: fence.fd } : undefined));
        } catch (err) {
          if (copied) this.#ring!.release(copied.slot);
          if (decision.path === 'direct' && this.#commitRefused(buffer, placement, key, decision, err)) continue;
          throw err;
        } finally {
          fence?.close(); // the kernel holds its own reference to the fence
        }
        this.#stats.commits++;
        this.#stats.frames++;
        if (decision.path === 'direct') this.#stats.directFrames++;
        else this.#stats.copiedFrames++;
        this.#shown = { buffer, key, path: decision.path };
        const nowOn = decision.path === 'direct' ? buffer : undefined;
        this.#pendingDirect = nowOn;
        if (copied) this.#ring!.markQueued(copied.slot);
        const events = await flip;
        this.#pendingDirect = undefined;
        this.#lastWasScene = false;
        this.#planesUsed = next.length;
        this.#sceneLeft(nowOn);
        if (copied && !this.#ring!.closed) this.#ring!.markOnScreen(copied.slot);
        const left = this.#onScreen;
        // closed during the flip: close() let go of what was on screen, and this frame's lock goes below
        this.#onScreen = this.#closed ? undefined : nowOn;
        if (nowOn && !this.#closed) held = false; // the frame's lock stays while the buffer is on screen
        if (left) {
          if (left !== nowOn) this.#release(left);
          this.#unlock(left); // the flip that replaced it completed (the same buffer again: its new frame's lock holds it)
        }
        if (this.#forgetLater.size > 0) for (const b of [...this.#forgetLater]) if (b !== nowOn) this.#drop(b);
        return {
          path: decision.path,
          committed: true,
          plane: decision.path === 'direct' ? decision.plane : this.#primary.id,
          bytesCopied: copied?.bytes ?? 0,
          presentation: this.#presentation(events[0]!, decision.path === 'direct'),
          fences,
        };
      }
    } finally {
      if (held) this.#unlock(frame.buffer);
    }
  }

  /**
   * The kernel refused the commit of a direct frame whose verdict's TEST_ONLY passed. A refusal
   * of the state itself (EINVAL, ERANGE, ENOSPC: not EBUSY or a signal) becomes the verdict
   * (known-bad learns the pair, and linux-dmabuf's scanout tranche with it), and the buffer at
   * this placement is copied from now on. Returns whether the frame is to be tried again.
   */
  #commitRefused(buffer: ScanoutBuffer, placement: Placement, key: string, decision: Decision & { path: 'direct' }, err: unknown): boolean {
    if (!(err instanceof SystemError) || !['EINVAL', 'ERANGE', 'ENOSPC'].includes(err.code)) return false;
    this.#commitFailures++;
    const v = this.checker.commitRefused(buffer, decision.plane, placement, err);
    const why = [...decision.why, ...v.reasons.map((r) => `${r.code}: ${r.detail}`)];
    this.#decisions.get(buffer)?.set(key, this.#copyDecision(buffer, placement, why));
    return true;
  }

  /**
   * The placement on this CRTC and its frame key; a placement object given again (a compositor
   * keeps one per buffer while nothing moves) with a buffer of the same size reuses both: no
   * string is built per frame in steady state.
   */
  #frameKey(buffer: ScanoutBuffer, given: SurfacePlacement | undefined, forceCopy: boolean): { placement: Placement; key: string } {
    const m = given ? this.#keys.get(given) : this.#defaultKey;
    if (m && m.width === buffer.width && m.height === buffer.height && m.forceCopy === forceCopy) return m;
    const placement: Placement = { ...given, crtc: this.crtcId };
    const k = { width: buffer.width, height: buffer.height, forceCopy, placement, key: frameKey(buffer, placement, this.modeSize, forceCopy) };
    if (given) this.#keys.set(given, k);
    else this.#defaultKey = k;
    return k;
  }

  /** Why the last decision for `buffer` at `placement` was what it was (for logs). */
  explain(buffer: ScanoutBuffer, placement: SurfacePlacement = {}, coherent = true): readonly string[] {
    const key = frameKey(buffer, { ...placement, crtc: this.crtcId }, this.modeSize, this.#opts.forceCopy === true || !coherent);
    return this.#decisions.get(buffer)?.get(key)?.why ?? [];
  }

  /**
   * @internal The direct lane (wayland/direct-lane.ts): the state of the output's last commit as
   * the lane repeats it, when `buffer` is on screen directly at `placement` and nothing is in
   * flight; otherwise why not.
   */
  laneTemplate(buffer: ScanoutBuffer, placement: SurfacePlacement | undefined): LaneTemplate | string {
    if (this.#closed) return 'the presenter is closed';
    if (this.device.events.pendingCount > 0 || this.#pendingDirect) return 'a flip is in flight';
    const shown = this.#shown;
    if (!shown || shown.buffer !== buffer || this.#lastWasScene) return 'the buffer is not on screen';
    const key = this.#laneKey(buffer, placement);
    if (shown.key !== key) return 'its placement changed';
    const d = this.#decisions.get(buffer)?.get(key);
    if (!d || d.path !== shown.path) return 'its decision changed';
    let copy: LaneTemplate['copy'];
    if (d.path === 'direct') {
      if (this.#onScreen !== buffer) return 'the buffer is not on a plane';
    } else {
      // the copy mode: a wl_shm buffer copied as it is into the ring buffer that is not on screen
      if (d.transform) return 'its copy is transformed';
      if (!this.#laneCopyable(buffer)) return 'its copy is not a plain one (not an unguarded wl_shm buffer of XRGB8888 or ARGB8888 into an XRGB8888 ring)';
      const ring = this.#ring;
      const on = ring?.onScreen;
      if (!ring || !on) return 'no ring buffer is on screen';
      const slots: Array<{ fb: number; memory: ArrayBuffer; stride: number; dmabufFd: number }> = [];
      for (const sl of ring.slots) {
        if (sl.stale || (sl.state !== 'free' && sl !== on)) return 'a ring buffer is being written or not cleared yet';
        if (!(sl.buffer instanceof DumbRingBuffer)) return 'the ring buffers are not the presenter\'s own';
        slots.push({ fb: sl.buffer.fb.id, memory: sl.buffer.memory.buffer, stride: sl.buffer.stride, dmabufFd: sl.buffer.dmabuf.fd });
      }
      copy = { slots, slotShown: on.index, dx: d.dx, dy: d.dy, modeW: this.modeSize.width, modeH: this.modeSize.height };
    }
    const plane = d.path === 'direct' ? d.plane : this.#primary.id;
    const current = this.output.current;
    if (!current || this.output.needsModeset) return 'the output needs a modeset';
    const entries = this.output.apply(this.device.atomic(), current).entries();
    const fbProp = this.device.objectPropertyIds(plane).get('FB_ID');
    const fbSlot = entries.findIndex((e) => e.obj === plane && e.prop === fbProp);
    if (fbSlot < 0 || entries.some((e) => e.fence)) return 'its state has out-fences';
    return {
      key,
      ...(copy ? { copy } : {}),
      planeId: plane,
      fbSlot,
      inFenceProp: copy ? 0 : (this.device.objectPropertyIds(plane).get('IN_FENCE_FD') ?? 0),
      drmFd: this.device.fd,
      objs: Uint32Array.from(entries, (e) => e.obj),
      props: Uint32Array.from(entries, (e) => e.prop),
      values: BigUint64Array.from(entries, (e) => e.value),
    };
  }

  /**
   * @internal The direct lane armed (`fn` hands it back) or handed back (undefined): present(),
   * presentScene(), refresh(), clear() and close() hand it back first, so nothing of the
   * presenter's own races the lane's commits or its read of the DRM events.
   */
  laneGuard(fn: (() => void) | undefined): void {
    this.#laneGuard = fn;
  }

  /**
   * @internal The framebuffer the lane flips to for `buffer` at `placement`: when the presenter
   * decided it direct on the template's plane and its state is the template's but for FB_ID.
   */
  laneFb(buffer: ScanoutBuffer, placement: SurfacePlacement | undefined, t: LaneTemplate): number | undefined {
    if (this.#closed || buffer.life?.ended || t.copy) return undefined;
    const key = this.#laneKey(buffer, placement);
    const d = this.#decisions.get(buffer)?.get(key);
    if (key !== t.key || !d || d.path !== 'direct' || d.plane !== t.planeId) return undefined;
    const fb = this.#kernel.framebufferOf(buffer);
    if (!fb) return undefined;
    const entries = this.output.apply(this.device.atomic(), this.output.direct(planeById(this.#planes, d.plane), fb, d.placement)).entries();
    if (entries.length !== t.objs.length) return undefined;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.obj !== t.objs[i] || e.prop !== t.props[i] || e.fence || (i !== t.fbSlot && e.value !== t.values[i])) return undefined;
    }
    return fb.id;
  }

  /**
   * @internal The copy mode's source for `buffer` at `placement`: its pool's memory and layout,
   * when the presenter decided it a plain copy with the template's key.
   */
  laneCopySource(buffer: ScanoutBuffer, placement: SurfacePlacement | undefined, t: LaneTemplate): [ArrayBuffer, number, number, number, number] | undefined {
    if (this.#closed || buffer.life?.ended || !t.copy || !this.#laneCopyable(buffer)) return undefined;
    const key = this.#laneKey(buffer, placement);
    const d = this.#decisions.get(buffer)?.get(key);
    if (key !== t.key || !d || d.path !== 'copy' || d.transform || d.dx !== t.copy.dx || d.dy !== t.copy.dy) return undefined;
    const surface = buffer.copySource?.surface?.();
    if (!surface) return undefined;
    const m = surface.memory;
    if (!(m instanceof Mapping)) return undefined; // (the pool's mapping: an ArrayBuffer the lane keeps a pointer into)
    return [m.buffer, surface.offset ?? 0, surface.stride, surface.width, surface.height];
  }

  /** The frame key the lane's frames have: the presenter's own forceCopy only (no frame of its asks for a copy). */
  #laneKey(buffer: ScanoutBuffer, placement: SurfacePlacement | undefined): string {
    return this.#frameKey(buffer, placement, this.#opts.forceCopy === true).key;
  }

  /** A wl_shm buffer whose copy is rows as they are (an XRGB8888 ring) and reads memory that cannot vanish. */
  #laneCopyable(buffer: ScanoutBuffer): boolean {
    const ringFormat = this.#opts.ringFormat ?? XRGB8888;
    return (
      buffer.kind === 'shm' &&
      buffer.copySource?.surface !== undefined &&
      ringFormat === XRGB8888 &&
      (buffer.format === XRGB8888 || buffer.format === ARGB8888)
    );
  }

  /** The lane's frames in the stats, and the presentation of its last flip (none without frames). */
  #laneFrames(frames: number, last: { tvSec: number; tvUsec: number; sequence: number }, direct: boolean): Presentation | undefined {
    this.#stats.commits += frames;
    this.#stats.frames += frames;
    if (direct) this.#stats.directFrames += frames;
    else this.#stats.copiedFrames += frames;
    if (frames === 0) return undefined;
    const timestampNs = BigInt(last.tvSec) * 1_000_000_000n + BigInt(last.tvUsec) * 1000n;
    return this.#presentation({ crtcId: this.crtcId, sequence: last.sequence, tvSec: last.tvSec, tvUsec: last.tvUsec, timestampNs, userData: 0n }, direct);
  }

  /**
   * @internal The lane (copy mode) handed back after `frames` flips: ring buffer `slotShown` is on
   * screen, holding `current`'s content; what the other ring buffers hold is forgotten (the next
   * copy is whole). Stats count the lane's frames.
   */
  laneReturnedCopy(current: ScanoutBuffer, placement: SurfacePlacement | undefined, slotShown: number, frames: number, last: { tvSec: number; tvUsec: number; sequence: number }): Presentation | undefined {
    const presentation = this.#laneFrames(frames, last, false);
    const ring = this.#ring;
    if (this.#closed || !ring || ring.closed) return presentation;
    ring.stats.frames += frames;
    ring.adoptOnScreen(slotShown);
    const slot = ring.slots[slotShown]!;
    const key = this.#laneKey(current, placement);
    this.#shown = { buffer: current, key, path: 'copy' };
    this.output.adoptCurrent([{ plane: this.#primary, fb: slot.buffer.fb, placement: this.output.fullMode }]);
    return presentation;
  }

  /**
   * @internal The lane handed back after `frames` flips (the last one's event): `shown` is on
   * screen instead of `armed`, the buffer it was armed with. The presenter's lock moves to it and
   * the output's current state follows; stats count the lane's frames.
   */
  laneReturned(
    armed: ScanoutBuffer,
    shown: ScanoutBuffer,
    placement: SurfacePlacement | undefined,
    frames: number,
    last: { tvSec: number; tvUsec: number; sequence: number },
  ): Presentation | undefined {
    const presentation = this.#laneFrames(frames, last, true);
    if (shown === armed || this.#closed) return presentation;
    const key = this.#laneKey(shown, placement);
    const d = this.#decisions.get(shown)?.get(key);
    const fb = this.#kernel.framebufferOf(shown);
    if (!d || d.path !== 'direct' || !fb) throw new PrimebufError(`${this.device.name}: the lane showed ${shown.name ?? 'a buffer'} without its direct decision or framebuffer`);
    shown.life?.lock();
    this.#watch(shown);
    this.#onScreen = shown;
    this.#shown = { buffer: shown, key, path: 'direct' };
    this.output.adoptCurrent(this.output.direct(planeById(this.#planes, d.plane), fb, d.placement));
    this.#unlock(armed);
    return presentation;
  }

  /**
   * Turns the output off (one blocking commit: planes, connector and CRTC), then releases what
   * the presenter owns: the copy ring, the background, the verdicts' framebuffers, the client
   * mappings, the mode blob. Framebuffers leave the screen before they are removed.
   */
  close(): void {
    if (this.#closed) return;
    this.#laneGuard?.();
    this.#closed = true;
    this.output.turnOffNow(); // planes, extras (a writeback connector), connector and CRTC off
    this.#ring?.close();
    this.#sceneRing?.close();
    this.#scene?.close();
    if (this.#background) {
      this.#background.fb.close();
      this.#background.dumb.close();
      this.#background = undefined;
    }
    this.checker.close();
    for (const b of [...this.#sources.keys()]) this.#drop(b);
    this.#decisions = new WeakMap();
    // what was on screen is no longer read: its lock goes (a destroyed wl_buffer ends now)
    const on = this.#onScreen;
    this.#onScreen = undefined;
    if (on) this.#unlock(on);
    this.output.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** @internal What the direct lane repeats: the output's last commit, with the plane's FB_ID at `fbSlot`. */
export interface LaneTemplate {
  readonly key: string;
  /** the copy mode: the ring's buffers, the one on screen, where the source goes on the mode */
  readonly copy?: {
    readonly slots: ReadonlyArray<{ fb: number; memory: ArrayBuffer; stride: number; dmabufFd: number }>;
    readonly slotShown: number;
    readonly dx: number;
    readonly dy: number;
    readonly modeW: number;
    readonly modeH: number;
  };
  readonly planeId: number;
  readonly fbSlot: number;
  readonly inFenceProp: number;
  readonly drmFd: number;
  readonly objs: Uint32Array;
  readonly props: Uint32Array;
  readonly values: BigUint64Array;
}

/** A buffer's plane fds, one array per planes array (not a new array and closure every frame). */
const fdsOfPlanes = new WeakMap<ScanoutBuffer['planes'], readonly number[]>();
/** A settled queue step's rejection, already handed to its caller. */
const ignore = (): undefined => undefined;

/** The plane `id` of `planes` (a loop: no closure per frame). */
function planeById<P extends { readonly id: number }>(planes: readonly P[], id: number): P {
  for (let i = 0; i < planes.length; i++) if (planes[i]!.id === id) return planes[i]!;
  throw new PrimebufError(`no plane ${id} on the CRTC`);
}

function planeFds(buffer: ScanoutBuffer): readonly number[] {
  let fds = fdsOfPlanes.get(buffer.planes);
  if (!fds) fdsOfPlanes.set(buffer.planes, (fds = buffer.planes.map((p) => p.fd)));
  return fds;
}

/** The copy path reads one plane, or NV12's two planes in one dma-buf (the same fd at two offsets). */
function copyPlanesOk(buffer: ScanoutBuffer): boolean {
  if (buffer.planes.length === 1) return true;
  return buffer.planes.length === 2 && buffer.format === NV12 && buffer.kind !== 'shm' && buffer.planes[1]!.fd === buffer.planes[0]!.fd;
}

/**
 * The scene's view of the CRTC's planes: the zpos they stack at (the property's current value,
 * where the plane has one) and whether they blend premultiplied alpha (a `pixel blend mode`
 * property without "Pre-multiplied" does not; without the property KMS blends premultiplied).
 */
function scenePlanes(device: Device, planes: readonly ScanoutPlaneInfo[]): ScenePlaneInfo[] {
  return planes.map((p) => {
    let props: Map<string, { value: bigint; enums?: Array<{ name: string; value: bigint }> }> | undefined;
    try {
      props = device.properties.objectProperties(p.id, 'PLANE');
    } catch {
      props = undefined; // a plane of a model that is not this device's: nothing to read
    }
    const zpos = props?.get('zpos');
    const blend = props?.get('pixel blend mode');
    const premultiplied = blend?.enums ? blend.enums.some((e) => e.name === 'Pre-multiplied' && e.value === blend.value) : undefined;
    return { ...p, ...(zpos ? { zpos: Number(zpos.value) } : {}), ...(premultiplied === false ? { premultiplied: false } : {}) };
  });
}
