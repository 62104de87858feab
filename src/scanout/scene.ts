/**
 * The scene path of the presenter (Presenter.presentScene): one frame of several surfaces on one
 * output. Per frame:
 * 1. the scene's shape (per surface, bottom to top: id, content kind, format, modifier, size,
 *    source, destination, rotation, opacity, cursor, coherence) picks a cached assignment; a new
 *    shape pays for a search (scene-assign.ts: per (surface, plane) verdicts from the checker,
 *    then one atomic TEST_ONLY of the whole output state per candidate, best first). A new buffer
 *    of the same shape keeps the assignment: it needs its framebuffer (import and AddFB2, once
 *    per buffer), no TEST_ONLY;
 * 2. the surfaces without a plane are composed (composeLayers: premultiplied OVER, bottom to top,
 *    fills for solid colours, scaling and rotation where needed) into a buffer of the scene's own
 *    copy ring, shown on the lowest plane. Only damage is composed: the composed surfaces' damage
 *    on the CRTC, the old and new rectangles of surfaces that appeared, vanished, moved or
 *    changed between plane and composite, and what the ring buffer lacks since the frame it holds
 *    (its age, DamageHistory). A composite without damage is not composed again: the ring buffer
 *    on screen goes in the commit again (a frame where only surfaces on planes changed);
 * 3. one atomic commit carries every plane (primary, overlays, cursor; the planes the last frame
 *    used and this one does not are turned off in it), each client buffer's pending writes as its
 *    plane's IN_FENCE_FD. A commit the kernel refuses after the assignment's TEST_ONLY (EINVAL,
 *    ERANGE, ENOSPC) composes the surfaces whose buffers are new since that TEST_ONLY, teaches the
 *    checker (COMMIT verdict, known-bad table) and is tried again;
 * 4. locks: presentScene locks every surface's buffer; a composed buffer's lock goes when the
 *    composition that read it is done (the composite holds its pixels: the client may reuse it);
 *    a buffer on a plane keeps its lock until the flip that replaced it.
 */
import { PrimebufError, SystemError } from '../errors.js';
import type { SyncFile } from '../dmabuf/sync-file.js';
import type { PageFlipEvent } from '../kms/events.js';
import type { Framebuffer } from '../kms/framebuffer.js';
import type { ComposeSource } from './copy.js';
import type { CopyRing, RingFrame } from './copy-ring.js';
import { damageArea, mergeDamage, type Rect } from './damage.js';
import { exportWriteFence } from './implicit-sync.js';
import type { OutputState, PlaneContent, InFence } from './output-state.js';
import { rotationBits, type ModeSize, type Placement, type ResolvedPlacement } from './placement.js';
import type { PresenterRingBuffer } from './presenter-ring.js';
import { reason, type ScanoutReason } from './reasons.js';
import { assignScene, candidateAllowed, rectsOverlap, type SceneAssignPlane, type SceneAssignSurface, type SceneCandidate } from './scene-assign.js';
import { staticScanoutChecks } from './verdict.js';
import type { ComposeJob, ComposeLayer, ComposeResult, SceneFrame, SceneResult, SceneSurface, SceneSurfaceId, SceneSurfaceResult, SolidColor } from './scene-types.js';
import type { ScanoutChecker } from './verdict.js';
import type { ScanoutBuffer } from './verdict-buffer.js';
import type { ScanoutPlaneInfo } from './verdict-device.js';
import type { KmsScanoutKernel } from './verdict-kms.js';

/** A plane of the output as the scene uses it. */
export type ScenePlaneInfo = ScanoutPlaneInfo & Pick<SceneAssignPlane, 'zpos' | 'premultiplied'>;

/** What the presenter lends the scene path. */
export interface SceneHost {
  readonly crtcId: number;
  readonly modeSize: ModeSize;
  readonly output: OutputState;
  readonly checker: ScanoutChecker;
  readonly kernel: KmsScanoutKernel;
  /** Primary, overlays and cursor usable on the CRTC. */
  readonly planes: readonly ScenePlaneInfo[];
  readonly primary: ScanoutPlaneInfo;
  backgroundFb(): Framebuffer;
  /** The CPU view of a client buffer for the composer (the presenter's mapping of its dma-buf, a wl_shm surface). */
  source(buffer: ScanoutBuffer): ComposeSource;
  ring(): CopyRing<PresenterRingBuffer>;
  compose(job: ComposeJob): Promise<ComposeResult>;
  release(buffer: ScanoutBuffer): void;
  unlock(buffer: ScanoutBuffer): void;
  presentation(e: PageFlipEvent, zeroCopy: boolean): import('./presenter.js').Presentation;
  /** present()'s on-screen buffer, handed over (its lock now the scene's to drop after the next flip). */
  takeSingleOnScreen(): ScanoutBuffer | undefined;
  assertOpen(): void;
  readonly closed: boolean;
}

interface ShapeEntry {
  /** per surface: plane id, or undefined (composed) */
  planes: Array<number | undefined>;
  compositePlane: number | undefined;
  /** per surface on a plane: its resolved placement on that plane */
  placements: Array<ResolvedPlacement | undefined>;
  reasons: ScanoutReason[][];
  /** the buffers the assignment's TEST_ONLY carried (a refused commit blames the new ones) */
  tested: Array<ScanoutBuffer | undefined>;
  /** surfaces composed for good in this shape (a commit refused them) */
  forced: Map<number, ScanoutReason[]>;
  why: string[];
}

/** What one surface was in the last frame shown (damage of the composite). */
interface Last {
  readonly dst: Rect;
  readonly composed: boolean;
  readonly content: ScanoutBuffer | SolidColor;
  /** the geometry key (src, dst, rotation): another one is a change of the whole surface */
  readonly geometry: string;
}

export interface SceneCounters {
  frames: number;
  unchanged: number;
  searches: number;
  /** New shapes that only moved surfaces: the last assignment offered again, one TEST_ONLY. */
  warmStarts: number;
  cacheHits: number;
  testOnly: number;
  planesUsed: number;
  surfacesComposed: number;
  bytesComposed: number;
  lastSurfacesComposed: number;
  lastBytesComposed: number;
  commitFailures: number;
}

function isSolid(c: SceneSurface['content']): c is SolidColor {
  return (c as SolidColor).kind === 'solid';
}

function fmtRect(r: Rect | undefined): string {
  return r ? `${r.width}x${r.height}+${r.x}+${r.y}` : '-';
}

function geometryKey(s: SceneSurface): string {
  return `${fmtRect(s.src)}/${fmtRect(s.dst)}/${rotationBits(s)}/${s.clip ? 1 : 0}`;
}

function opaqueAll(s: SceneSurface): boolean {
  if (s.opaque === true) return true;
  if (isSolid(s.content)) return s.content.a >= 1;
  const f = s.content.format;
  // X formats carry no alpha
  const name = String.fromCharCode(f & 0xff, (f >> 8) & 0xff, (f >> 16) & 0xff, (f >> 24) & 0xff);
  if (name[0] === 'X' || name === 'RG24' || name === 'BG24' || name === 'RG16' || name === 'BG16' || name === 'NV12' || name === 'YUYV' || name === 'XR30' || name === 'XB30') return true;
  if (Array.isArray(s.opaque)) return (s.opaque as readonly Rect[]).some((r) => r.x <= s.dst.x && r.y <= s.dst.y && r.x + r.width >= s.dst.x + s.dst.width && r.y + r.height >= s.dst.y + s.dst.height);
  return false;
}

/**
 * A scene's shape key: what decides the assignment, without the buffer objects themselves.
 * `positions: false` leaves the destinations' positions out (sizes stay): two scenes with the
 * same such key differ only in where surfaces are (a moving cursor, a dragged window).
 */
export function sceneShapeKey(frame: SceneFrame, positions = true): string {
  let k = '';
  for (const s of frame.surfaces) {
    const c = s.content;
    const content = isSolid(c) ? 'solid' : `${c.kind}:${c.format}:${c.modifier}:${c.width}x${c.height}:${c.planes.length}`;
    const geometry = positions ? geometryKey(s) : `${fmtRect(s.src)}/${s.dst.width}x${s.dst.height}/${rotationBits(s)}/${s.clip ? 1 : 0}`;
    k += `${String(s.id)}|${content}|${geometry}|${opaqueAll(s) ? 'o' : 't'}|${s.cursor ? 'c' : ''}|${s.coherent === false ? 'nc' : ''};`;
  }
  return k;
}

/** Shapes remembered at most (a moving surface makes a new shape per position). */
const MAX_SHAPES = 64;

/** Reasons a move on the output does not change: a surface composed for one of these stays composed. */
const INTRINSIC = new Set(['SOLID_FILL', 'NOT_COHERENT', 'NOT_DMABUF', 'FORMAT', 'MODIFIER', 'IMPLICIT_MODIFIER', 'LAYOUT', 'PLANE_OFFSET', 'IMPORT', 'ADDFB2', 'SIZE', 'SCALING', 'ROTATION']);

export class SceneRunner {
  readonly #host: SceneHost;
  readonly #shapes = new Map<string, ShapeEntry>();
  /** client buffers on planes since the last flip, one lock each */
  #onScreen: ScanoutBuffer[] = [];
  #last = new Map<SceneSurfaceId, Last>();
  /** the composite's plane in the last frame shown (another one: the ring's history is void) */
  #lastCompositePlane: number | undefined;
  #lastShape: string | undefined;
  /** the last frame's assignment and its position-free shape (a warm start's starting point) */
  #lastEntry: ShapeEntry | undefined;
  #lastMovable: string | undefined;
  #lastExplain: SceneSurfaceResult[] = [];
  readonly counters: SceneCounters = {
    frames: 0,
    unchanged: 0,
    searches: 0,
    warmStarts: 0,
    cacheHits: 0,
    testOnly: 0,
    planesUsed: 0,
    surfacesComposed: 0,
    bytesComposed: 0,
    lastSurfacesComposed: 0,
    lastBytesComposed: 0,
    commitFailures: 0,
  };

  constructor(host: SceneHost) {
    this.#host = host;
  }

  /** Per surface of the last scene: plane or composed, and why. */
  explain(): readonly SceneSurfaceResult[] {
    return this.#lastExplain;
  }

  /** The search's log lines for the last scene's shape. */
  explainLines(): readonly string[] {
    return (this.#lastShape !== undefined && this.#shapes.get(this.#lastShape)?.why) || [];
  }

  /** The client buffers this path has on screen, handed to present() (each with one lock to drop after its flip). */
  takeOnScreen(): ScanoutBuffer[] {
    const out = this.#onScreen;
    this.#onScreen = [];
    this.#last = new Map();
    this.#lastCompositePlane = undefined;
    this.#lastShape = undefined;
    this.#lastEntry = undefined;
    this.#lastMovable = undefined;
    return out;
  }

  /** Drops every cached assignment that names `buffer` as tested (the buffer ended). */
  forget(buffer: ScanoutBuffer): void {
    for (const e of this.#shapes.values()) e.tested = e.tested.map((b) => (b === buffer ? undefined : b));
    for (const [id, l] of this.#last) if (l.content === buffer) this.#last.set(id, { ...l, content: { kind: 'solid', r: -1, g: -1, b: -1, a: -1 } });
  }

  /** The presenter closes: the locks of what is on screen go. */
  close(): void {
    const on = this.#onScreen;
    this.#onScreen = [];
    for (const b of on) this.#host.unlock(b);
  }

  #placement(s: SceneSurface): Placement {
    return {
      crtc: this.#host.crtcId,
      ...(s.src ? { src: s.src } : {}),
      dst: s.dst,
      ...(s.rotation ? { rotation: s.rotation } : {}),
      ...(s.reflectX ? { reflectX: true } : {}),
      ...(s.reflectY ? { reflectY: true } : {}),
      ...(s.clip ? { clip: true } : {}),
    };
  }

  /** The plane state of an assignment: the composite (or the background), then the surfaces on planes. */
  #state(frame: SceneFrame, c: SceneCandidate, placements: ReadonlyArray<ResolvedPlacement | undefined>, composite: { readonly id: number } | undefined): PlaneContent[] | undefined {
    const h = this.#host;
    const next: PlaneContent[] = [];
    const byId = new Map(h.planes.map((p) => [p.id, p]));
    if (c.compositePlane !== undefined) {
      next.push({ plane: byId.get(c.compositePlane)!, fb: composite ?? h.ring().slots[0]!.buffer.fb, placement: h.output.fullMode });
    } else if (!c.planes.includes(h.primary.id)) {
      next.push({ plane: h.primary, fb: h.backgroundFb(), placement: h.output.fullMode });
    }
    for (let i = 0; i < frame.surfaces.length; i++) {
      const p = c.planes[i];
      if (p === undefined) continue;
      const content = frame.surfaces[i]!.content as ScanoutBuffer;
      const fb = h.kernel.framebufferOf(content);
      const placement = placements[i];
      if (!fb || !placement) return undefined;
      next.push({ plane: byId.get(p)!, fb, placement });
    }
    return next;
  }

  #assignSurfaces(frame: SceneFrame, forced: ReadonlyMap<number, ScanoutReason[]>): SceneAssignSurface[] {
    return frame.surfaces.map((s, i) => {
      const composeOnly = forced.get(i) ?? (isSolid(s.content) ? [reason('SOLID_FILL', 'a solid colour: a fill in the composite, no buffer to scan out')] : s.coherent === false ? [reason('NOT_COHERENT', 'a device touching the buffer is not cache-coherent: composed, never scanned out')] : undefined);
      return { dst: s.dst, opaque: opaqueAll(s), ...(s.cursor ? { cursor: true } : {}), ...(composeOnly ? { composeOnly } : {}) };
    });
  }

  #setShape(shape: string, entry: ShapeEntry): void {
    this.#shapes.delete(shape);
    this.#shapes.set(shape, entry);
    if (this.#shapes.size > MAX_SHAPES) this.#shapes.delete(this.#shapes.keys().next().value!);
  }

  /**
   * A new shape that only moved surfaces: the last frame's assignment at the new positions, when
   * the static checks and the stacking rules still hold, with one TEST_ONLY of the whole state (no
   * per-plane verdicts). Only when every composed surface was composed for a reason a move does not
   * change (a move cannot then free a plane for it); else undefined (a search).
   */
  #warmStart(frame: SceneFrame, movable: string): ShapeEntry | undefined {
    const h = this.#host;
    const last = this.#lastEntry;
    if (!last || this.#lastMovable !== movable || last.forced.size > 0) return undefined;
    const surfaces = frame.surfaces;
    for (let i = 0; i < surfaces.length; i++) {
      if (last.planes[i] !== undefined) continue;
      const rs = last.reasons[i] ?? [];
      if (rs.length === 0 || !rs.every((r) => INTRINSIC.has(r.code))) return undefined;
    }
    const placements: Array<ResolvedPlacement | undefined> = surfaces.map(() => undefined);
    for (let i = 0; i < surfaces.length; i++) {
      const plane = last.planes[i];
      if (plane === undefined) continue;
      const b = surfaces[i]!.content as ScanoutBuffer;
      const st = staticScanoutChecks(h.checker.device, b, plane, this.#placement(surfaces[i]!), h.modeSize);
      if (st.reasons.length > 0 || !st.placement) return undefined;
      if (h.checker.knownBad.has(b.format, b.modifier, plane)) return undefined;
      if (!h.kernel.framebufferOf(b) && !h.kernel.framebuffer(b, b).ok) return undefined;
      placements[i] = st.placement;
    }
    const c = { planes: last.planes, compositePlane: last.compositePlane };
    if (!candidateAllowed({ planes: h.planes, surfaces: this.#assignSurfaces(frame, new Map()) }, c)) return undefined;
    const next = this.#state(frame, c, placements, undefined);
    if (!next) return undefined;
    this.counters.testOnly++;
    if (!h.output.test(next).ok) return undefined;
    this.counters.warmStarts++;
    return {
      planes: [...last.planes],
      compositePlane: last.compositePlane,
      placements,
      reasons: last.reasons.map((r) => [...r]),
      tested: surfaces.map((s, i) => (last.planes[i] === undefined ? undefined : (s.content as ScanoutBuffer))),
      forced: new Map(),
      why: ['warm start: the last frame\'s assignment at the moved positions, one TEST_ONLY of the whole state'],
    };
  }

  #search(frame: SceneFrame, forced: Map<number, ScanoutReason[]>): ShapeEntry {
    const h = this.#host;
    this.counters.searches++;
    const surfaces = frame.surfaces;
    const placements: Array<ResolvedPlacement | undefined> = surfaces.map(() => undefined);
    const verdictPlacement = new Map<string, ResolvedPlacement>();
    const a = assignScene({
      mode: h.modeSize,
      planes: h.planes,
      surfaces: this.#assignSurfaces(frame, forced),
      verdict: (i, plane) => {
        const s = surfaces[i]!;
        const v = h.checker.checkScanout(s.content as ScanoutBuffer, plane, this.#placement(s));
        if (v.ok && v.placement) verdictPlacement.set(`${i}|${plane}`, v.placement);
        return v;
      },
      test: (c) => {
        const ps = c.planes.map((p, i) => (p === undefined ? undefined : verdictPlacement.get(`${i}|${p}`)));
        const next = this.#state(frame, c, ps, undefined);
        if (!next) return { ok: false, reason: reason('NO_PLANE', 'a framebuffer of the candidate is gone') };
        this.counters.testOnly++;
        const r = h.output.test(next);
        return r.ok ? r : { ok: false, reason: reason('TEST_ONLY', `atomic TEST_ONLY of the scene refused: ${r.error.code} (${r.error.message})`, { errno: r.error.code }) };
      },
    });
    a.planes.forEach((p, i) => {
      if (p !== undefined) placements[i] = verdictPlacement.get(`${i}|${p}`);
    });
    return {
      planes: [...a.planes],
      compositePlane: a.compositePlane,
      placements,
      reasons: a.reasons.map((r) => [...r]),
      tested: surfaces.map((s, i) => (a.planes[i] === undefined ? undefined : (s.content as ScanoutBuffer))),
      forced,
      why: [...a.why],
    };
  }

  /**
   * One scene frame (the presenter locked every buffer of it; this drops the locks that do not
   * stay on screen).
   */
  async present(frame: SceneFrame): Promise<SceneResult> {
    const h = this.#host;
    const surfaces = frame.surfaces;
    const held = new Set<number>(surfaces.map((_, i) => i).filter((i) => !isSolid(surfaces[i]!.content)));
    const unlockHeld = (i: number): void => {
      if (held.delete(i)) h.unlock(surfaces[i]!.content as ScanoutBuffer);
    };
    try {
      h.assertOpen();
      const shape = sceneShapeKey(frame);
      /** buffers released to their clients during this frame (once each, a retried commit included) */
      const released = new Set<ScanoutBuffer>();
      // nothing new: the same shape, the same buffers, no damage
      if (shape === this.#lastShape && surfaces.every((s) => s.damage !== undefined && s.damage.length === 0 && this.#last.get(s.id)?.content === s.content)) {
        this.counters.unchanged++;
        return { committed: false, surfaces: this.#lastExplain, planesUsed: this.counters.planesUsed, surfacesComposed: 0, bytesComposed: 0, fences: [] };
      }
      for (;;) {
        let entry = this.#shapes.get(shape);
        // a new buffer of a cached shape needs its framebuffer (import, AddFB2), no TEST_ONLY
        if (entry) {
          let fbsOk = true;
          for (let i = 0; i < surfaces.length && fbsOk; i++) {
            if (entry.planes[i] === undefined) continue;
            const b = surfaces[i]!.content as ScanoutBuffer;
            if (!h.kernel.framebufferOf(b) && !h.kernel.framebuffer(b, b).ok) fbsOk = false;
          }
          if (fbsOk) this.counters.cacheHits++;
          else entry = undefined;
        }
        if (!entry) {
          const forced = this.#shapes.get(shape)?.forced;
          entry = (forced === undefined ? this.#warmStart(frame, sceneShapeKey(frame, false)) : undefined) ?? this.#search(frame, forced ?? new Map());
          this.#setShape(shape, entry);
        }
        const composedIdx = surfaces.map((_, i) => i).filter((i) => entry!.planes[i] === undefined);
        // pending writes of the buffers on planes: their planes' IN_FENCE_FD
        const fences: SyncFile[] = [];
        const inFences: InFence[] = [];
        let copied: RingFrame<PresenterRingBuffer> | undefined;
        /** the composite's framebuffer: the new ring frame's, or the one on screen when nothing composed changed */
        let compositeFb: Framebuffer | undefined;
        let bytes = 0;
        let next: PlaneContent[] | undefined;
        try {
          if (composedIdx.length > 0) {
            const c = await this.#compose(frame, entry, composedIdx);
            if ('reuse' in c) compositeFb = c.reuse;
            else {
              copied = c;
              compositeFb = c.slot.buffer.fb;
              bytes = c.bytes;
            }
            h.assertOpen();
            // the composite holds their pixels now: the composed buffers' locks go
            for (const i of composedIdx) {
              const c = surfaces[i]!.content;
              if (isSolid(c)) continue;
              if (!released.has(c) && !this.#onScreen.includes(c) && !surfaces.some((s, k) => k !== i && s.content === c && entry!.planes[k] !== undefined)) {
                released.add(c);
                h.release(c);
              }
              unlockHeld(i);
            }
          }
          next = this.#state(frame, entry, entry.placements, compositeFb);
          if (!next) throw new PrimebufError('a framebuffer of the scene is gone (its buffer ended while presented?)');
          for (let i = 0; i < surfaces.length; i++) {
            const p = entry.planes[i];
            if (p === undefined) continue;
            const b = surfaces[i]!.content as ScanoutBuffer;
            const f = exportWriteFence(b.planes.map((x) => x.fd), b.name);
            if (f) {
              fences.push(f);
              inFences.push({ planeId: p, fd: f.fd });
            }
          }
        } catch (err) {
          for (const f of fences) f.close();
          if (copied && !h.ring().closed) h.ring().release(copied.slot);
          throw err;
        }
        let flip: Promise<PageFlipEvent[]>;
        let outFences: ReadonlyArray<SyncFile | null>;
        try {
          ({ flip, fences: outFences } = h.output.commit(next, inFences));
        } catch (err) {
          if (copied) h.ring().release(copied.slot);
          if (this.#commitRefused(frame, shape, entry, err)) continue;
          throw err;
        } finally {
          for (const f of fences) f.close(); // the kernel holds its own references
        }
        const handed = h.takeSingleOnScreen();
        if (copied) h.ring().markQueued(copied.slot);
        const nowOn: ScanoutBuffer[] = [];
        for (let i = 0; i < surfaces.length; i++) if (entry.planes[i] !== undefined) nowOn.push(surfaces[i]!.content as ScanoutBuffer);
        // their frame locks stay while they are on screen
        for (let i = 0; i < surfaces.length; i++) if (entry.planes[i] !== undefined) held.delete(i);
        const before = this.#onScreen;
        this.#onScreen = nowOn;
        this.#remember(frame, entry, shape);
        const events = await flip;
        if (copied && !h.ring().closed) h.ring().markOnScreen(copied.slot);
        // the flip that replaced them completed
        for (const b of handed ? [...before, handed] : before) {
          if (!nowOn.includes(b) && !released.has(b)) {
            released.add(b);
            h.release(b);
          }
          h.unlock(b);
        }
        const planesUsed = next.length;
        this.counters.frames++;
        this.counters.planesUsed = planesUsed;
        this.counters.lastSurfacesComposed = composedIdx.length;
        this.counters.lastBytesComposed = bytes;
        this.counters.surfacesComposed += composedIdx.length;
        this.counters.bytesComposed += bytes;
        return {
          committed: true,
          surfaces: this.#lastExplain,
          planesUsed,
          surfacesComposed: composedIdx.length,
          bytesComposed: bytes,
          presentation: h.presentation(events[0]!, nowOn.length > 0),
          fences: outFences,
        };
      }
    } finally {
      for (const i of [...held]) unlockHeld(i);
    }
  }

  #remember(frame: SceneFrame, entry: ShapeEntry, shape: string): void {
    const last = new Map<SceneSurfaceId, Last>();
    frame.surfaces.forEach((s, i) => last.set(s.id, { dst: s.dst, composed: entry.planes[i] === undefined, content: s.content, geometry: geometryKey(s) }));
    this.#last = last;
    this.#lastCompositePlane = entry.compositePlane;
    this.#lastShape = shape;
    this.#lastEntry = entry;
    this.#lastMovable = sceneShapeKey(frame, false);
    this.#lastExplain = frame.surfaces.map((s, i) => {
      const p = entry.planes[i];
      return p !== undefined
        ? { id: s.id, path: 'plane' as const, plane: p, reasons: [] }
        : { id: s.id, path: 'composed' as const, ...(entry.compositePlane !== undefined ? { plane: entry.compositePlane } : {}), reasons: entry.reasons[i] ?? [] };
    });
  }

  /**
   * The composite's damage on the CRTC, then the composition into a ring buffer; or, when the
   * composite has no damage this frame and the ring buffer on screen holds the newest composite,
   * that buffer's framebuffer again (`reuse`: nothing composed, no ring frame; a frame where only
   * surfaces on planes changed).
   */
  async #compose(frame: SceneFrame, entry: ShapeEntry, composedIdx: readonly number[]): Promise<RingFrame<PresenterRingBuffer> | { reuse: Framebuffer }> {
    const h = this.#host;
    const { width: W, height: H } = h.modeSize;
    const ring = h.ring();
    const surfaces = frame.surfaces;
    const damage: Rect[] = [];
    // another composite plane, or the composed surfaces restacked: everything
    const lastOrder = [...this.#last].filter(([id]) => composedIdx.some((i) => surfaces[i]!.id === id)).filter(([, l]) => l.composed).map(([id]) => String(id)).join('\u0000');
    const restacked = lastOrder !== composedIdx.filter((i) => this.#last.get(surfaces[i]!.id)?.composed).map((i) => String(surfaces[i]!.id)).join('\u0000');
    const full = this.#lastCompositePlane !== entry.compositePlane || restacked;
    if (full) ring.invalidate();
    const ids = new Set(surfaces.map((s) => s.id));
    // surfaces that vanished: what they covered in the composite
    for (const [id, l] of this.#last) if (!ids.has(id) && l.composed) damage.push(l.dst);
    for (let i = 0; i < surfaces.length; i++) {
      const s = surfaces[i]!;
      const composed = entry.planes[i] === undefined;
      const l = this.#last.get(s.id);
      if (!l) {
        if (composed) damage.push(s.dst); // appeared
        continue;
      }
      if (l.composed !== composed || l.geometry !== geometryKey(s)) {
        // moved, or changed between plane and composite: its old and new rectangles
        if (l.composed) damage.push(l.dst);
        if (composed) damage.push(s.dst);
        continue;
      }
      if (!composed) continue;
      damage.push(...this.#surfaceDamage(s, l));
    }
    if (!full && damage.length === 0) {
      const on = ring.onScreen;
      if (on && !on.stale && on.frame !== undefined && on.frame === ring.history.frame) return { reuse: on.buffer.fb };
    }
    // pending writes of the buffers read: wait for them (off the JS thread)
    for (const i of composedIdx) {
      const c = surfaces[i]!.content;
      if (isSolid(c) || c.kind === 'shm') continue;
      const writes = exportWriteFence(c.planes.map((p) => p.fd), c.name);
      if (writes) {
        try {
          await writes.wait();
        } finally {
          writes.close();
        }
      }
    }
    h.assertOpen();
    const layers: ComposeLayer[] = [];
    /** per layer, its source's failure hook (a truncated wl_shm pool: invalid_fd to its client) */
    const failed: Array<((err: unknown) => void) | undefined> = [];
    for (const i of composedIdx) {
      const s = surfaces[i]!;
      const c = s.content;
      if (isSolid(c)) {
        layers.push({ kind: 'solid', color: c, dst: s.dst });
        failed.push(undefined);
        continue;
      }
      const src = h.source(c);
      failed.push(src.failed?.bind(src));
      layers.push({
        kind: 'image',
        source: src.surface,
        ...(src.guarded ? { guarded: true } : {}),
        ...(s.src ? { src: s.src } : {}),
        dst: s.dst,
        rotation: rotationBits(s),
        ...(opaqueAll(s) ? { opaque: true } : {}),
      });
    }
    const clipped = mergeDamage(full ? [{ x: 0, y: 0, width: W, height: H }] : damage, W, H);
    return ring.composeFrame(clipped, async (target, needed) => {
      if (needed.length === 0) return 0;
      // composeLayers brackets the target (WRITE) and the dma-buf sources (READ) itself
      try {
        const r = await h.compose({ target, layers, clip: needed });
        return r.bytes;
      } catch (err) {
        // a layer's source failed (a truncated wl_shm pool): its buffer hears of it
        const layer = (err as { layer?: unknown }).layer;
        if (typeof layer === 'number') failed[layer]?.(err);
        throw err;
      }
    });
  }

  /** A composed surface's damage on the CRTC (its buffer damage mapped; the whole surface when unknown or transformed). */
  #surfaceDamage(s: SceneSurface, l: Last): Rect[] {
    const c = s.content;
    if (isSolid(c)) {
      const was = l.content;
      return isSolid(was) && was.r === c.r && was.g === c.g && was.b === c.b && was.a === c.a ? [] : [s.dst];
    }
    if (s.damage === undefined) return [s.dst];
    const src = s.src ?? { x: 0, y: 0, width: c.width, height: c.height };
    const rot = rotationBits(s);
    if (rot !== 1) return s.damage.length > 0 ? [s.dst] : [];
    const sx = s.dst.width / src.width;
    const sy = s.dst.height / src.height;
    const out: Rect[] = [];
    for (const d of s.damage) {
      const x0 = Math.max(d.x, src.x);
      const y0 = Math.max(d.y, src.y);
      const x1 = Math.min(d.x + d.width, src.x + src.width);
      const y1 = Math.min(d.y + d.height, src.y + src.height);
      if (x1 <= x0 || y1 <= y0) continue;
      // scaled (bilinear reads a neighbour): one pixel of margin
      const m = sx !== 1 || sy !== 1 ? 1 : 0;
      const X0 = Math.floor(s.dst.x + (x0 - src.x) * sx) - m;
      const Y0 = Math.floor(s.dst.y + (y0 - src.y) * sy) - m;
      const X1 = Math.ceil(s.dst.x + (x1 - src.x) * sx) + m;
      const Y1 = Math.ceil(s.dst.y + (y1 - src.y) * sy) + m;
      const r = { x: Math.max(X0, s.dst.x), y: Math.max(Y0, s.dst.y), width: 0, height: 0 };
      const rx1 = Math.min(X1, s.dst.x + s.dst.width);
      const ry1 = Math.min(Y1, s.dst.y + s.dst.height);
      if (rx1 > r.x && ry1 > r.y) out.push({ ...r, width: rx1 - r.x, height: ry1 - r.y });
    }
    return out;
  }

  /**
   * The kernel refused the commit after the assignment's TEST_ONLY passed: the surfaces on planes
   * whose buffers are new since that TEST_ONLY (all on planes when none is) are composed from now
   * on in this shape, the checker learns each refusal, and the frame is tried again.
   */
  #commitRefused(frame: SceneFrame, shape: string, entry: ShapeEntry, err: unknown): boolean {
    if (!(err instanceof SystemError) || !['EINVAL', 'ERANGE', 'ENOSPC'].includes(err.code)) return false;
    const h = this.#host;
    this.counters.commitFailures++;
    const onPlanes = frame.surfaces.map((_, i) => i).filter((i) => entry.planes[i] !== undefined);
    if (onPlanes.length === 0) return false; // nothing left to take off the planes
    const fresh = onPlanes.filter((i) => entry.tested[i] !== frame.surfaces[i]!.content);
    const blamed = fresh.length > 0 ? fresh : onPlanes;
    const forced = new Map(entry.forced);
    for (const i of blamed) {
      const s = frame.surfaces[i]!;
      const v = h.checker.commitRefused(s.content as ScanoutBuffer, entry.planes[i]!, this.#placement(s), err);
      forced.set(i, [...v.reasons]);
    }
    const again = this.#search(frame, forced);
    again.why.unshift(`the commit was refused after its TEST_ONLY passed (${err.code}): surfaces ${blamed.join(', ')} composed from now on`);
    this.#setShape(shape, again);
    return true;
  }
}

/** Surfaces of a scene that overlap (for callers that check a stacking). */
export function overlapping(a: SceneSurface, b: SceneSurface): boolean {
  return rectsOverlap(a.dst, b.dst);
}

export { damageArea };
