/**
 * Scanout verdicts: may this buffer go on this plane at this placement? Static checks first,
 * each giving a reason (buffer kind, plane, format and modifier in IN_FORMATS, the implicit
 * modifier policy, framebuffer size limits, layout, PRIME import capability, placement,
 * scaling, rotation); then the
 * kernel's word through the adapter (verdict-kms.ts): PRIME import, AddFB2, and an atomic
 * TEST_ONLY commit of the output's next state. Verdicts are cached per (buffer, plane,
 * placement): a frame in steady state computes none again.
 *
 * The implicit modifier (DRM_FORMAT_MOD_INVALID) policy: such a buffer has the layout its
 * allocating device chose without saying. primebuf scans it out only when the device the
 * client was told to allocate on (feedback main device or tranche target) is the KMS device
 * itself or another node of the same GPU (same sysfs device), and AddFB2 without modifiers and
 * TEST_ONLY accept it; never across devices, never when the allocating device is unknown.
 * (Weston never scans such buffers out; wlroots does when only one device is involved. Mesa's
 * GBM on vkms sends INVALID buffers that are vkms's own LINEAR dumb buffers.)
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, minPitch } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';
import { ClosedError, type SystemError } from '../errors.js';
import { KnownBadTable } from './known-bad.js';
import { placementKey, resolvePlacement, type ModeSize, type Placement, type ResolvedPlacement } from './placement.js';
import { reason, verdict, type ScanoutReason, type Verdict } from './reasons.js';
import { describeBuffer, type ScanoutBuffer } from './verdict-buffer.js';
import { ROTATE_0, type ScanoutDeviceInfo, type ScanoutPlaneInfo } from './verdict-device.js';
import type { KernelCounts, ScanoutKernel } from './verdict-kms.js';

export interface ScanoutVerdict extends Verdict {
  readonly plane?: number;
  /** The placement as it would be committed (defaults filled in, clipping applied). */
  readonly placement?: ResolvedPlacement;
  /** 'static' when a static check refused; 'kernel' when the kernel was asked. */
  readonly stage: 'static' | 'kernel';
}

/** The implicit-modifier policy for one buffer on one KMS device: undefined when allowed. */
export function implicitModifierRefusal(dev: ScanoutDeviceInfo, buffer: ScanoutBuffer, plane?: number): ScanoutReason | undefined {
  if (buffer.modifier !== DRM_FORMAT_MOD_INVALID) return undefined;
  const about = { plane, format: buffer.format, modifier: buffer.modifier };
  if (buffer.allocatedOn === undefined) {
    return reason('IMPLICIT_MODIFIER', 'implicit modifier and the allocating device is unknown: its layout cannot be trusted on a plane', about);
  }
  if (dev.devId !== undefined && (buffer.allocatedOn === dev.devId || dev.sameGpu.includes(buffer.allocatedOn))) return undefined;
  return reason(
    'IMPLICIT_MODIFIER',
    `implicit modifier from another device (dev_t ${buffer.allocatedOn}) than ${dev.name}${dev.devId !== undefined ? ` (dev_t ${dev.devId})` : ''}: its layout is that device's private choice`,
    about,
  );
}

/** Memory planes, minimum pitch (LINEAR and implicit layouts), pitch and offset alignment: LAYOUT reasons. */
export function layoutReasons(dev: { name: string; pitchAlign?: number | undefined; offsetAlign?: number | undefined }, buffer: ScanoutBuffer, plane?: number): ScanoutReason[] {
  const out: ScanoutReason[] = [];
  const about = { plane, format: buffer.format, modifier: buffer.modifier };
  const info = formatInfo(buffer.format);
  const n = buffer.planes.length;
  const linear = buffer.modifier === DRM_FORMAT_MOD_LINEAR || buffer.modifier === DRM_FORMAT_MOD_INVALID;
  if (n < 1 || n > 4) out.push(reason('LAYOUT', `${n} memory planes: a framebuffer has 1 to 4`, about));
  else if (info && linear && n !== info.planes) out.push(reason('LAYOUT', `${n} memory planes, ${info.name} has ${info.planes}`, about));
  buffer.planes.forEach((p, i) => {
    if (info && linear && i < info.planes && info.bytesPerBlock[i]) {
      const min = minPitch(buffer.format, buffer.width, i);
      if (BigInt(p.stride) < min) out.push(reason('LAYOUT', `plane ${i}: pitch ${p.stride} is below ${info.name}'s minimum ${min} for width ${buffer.width}`, about));
    }
    if (dev.pitchAlign && p.stride % dev.pitchAlign !== 0) out.push(reason('LAYOUT', `plane ${i}: pitch ${p.stride} is not a multiple of ${dev.pitchAlign} (${dev.name})`, about));
    if (dev.offsetAlign && p.offset % dev.offsetAlign !== 0) out.push(reason('LAYOUT', `plane ${i}: offset ${p.offset} is not a multiple of ${dev.offsetAlign} (${dev.name})`, about));
  });
  return out;
}

export interface StaticResult {
  readonly reasons: ScanoutReason[];
  readonly notes: string[];
  readonly plane?: ScanoutPlaneInfo;
  readonly placement?: ResolvedPlacement;
}

/**
 * Every static check of `buffer` on plane `planeId` at `placement` against `mode`; all reasons
 * are collected (not only the first). Pure: no kernel, host-testable on recorded devices.
 */
export function staticScanoutChecks(dev: ScanoutDeviceInfo, buffer: ScanoutBuffer, planeId: number, placement: Placement, mode: ModeSize): StaticResult {
  const reasons: ScanoutReason[] = [];
  const notes: string[] = [];
  if (buffer.kind !== 'dmabuf') {
    reasons.push(reason('NOT_DMABUF', `${describeBuffer(buffer)} is no dma-buf: it is copied, not scanned out`, { plane: planeId, format: buffer.format }));
    return { reasons, notes };
  }
  const plane = dev.planes.find((p) => p.id === planeId);
  if (!plane) {
    reasons.push(reason('NO_PLANE', `${dev.name} has no plane ${planeId} (planes: ${dev.planes.map((p) => p.id).join(', ')})`, { plane: planeId }));
    return { reasons, notes };
  }
  const crtc = dev.crtcs.find((c) => c.id === placement.crtc);
  if (!crtc) {
    reasons.push(reason('NO_PLANE', `${dev.name} has no CRTC ${placement.crtc}`, { plane: planeId }));
    return { reasons, notes, plane };
  }
  if (!plane.possibleCrtcs.includes(crtc.index)) {
    reasons.push(reason('NO_PLANE', `plane ${plane.id} cannot be used on CRTC ${crtc.id}`, { plane: planeId }));
    return { reasons, notes, plane };
  }
  const about = { plane: plane.id, format: buffer.format, modifier: buffer.modifier };
  const fname = formatName(buffer.format);
  if (!plane.formats.hasFormat(buffer.format)) {
    reasons.push(reason('FORMAT', `plane ${plane.id} does not take ${fname} (it takes ${plane.formats.formats().map(formatName).join(', ')})`, about));
  } else if (buffer.modifier === DRM_FORMAT_MOD_INVALID) {
    const refusal = implicitModifierRefusal(dev, buffer, plane.id);
    if (refusal) reasons.push(refusal);
    else notes.push(`implicit modifier accepted by policy: allocated on ${dev.name} or the same GPU; AddFB2 without modifiers and TEST_ONLY decide`);
  } else if (!plane.formats.has(buffer.format, buffer.modifier)) {
    reasons.push(
      reason('MODIFIER', `plane ${plane.id} takes ${fname} only as ${plane.formats.modifiers(buffer.format).map(modifierLabel).join(', ')}, not ${modifierLabel(buffer.modifier)}`, about),
    );
  }
  const c = dev.description;
  const lim = { ...(c.fbSize ?? { minWidth: 0, maxWidth: Infinity, minHeight: 0, maxHeight: Infinity }) };
  if (plane.type === 'cursor') {
    if (c.cursorWidth !== undefined) lim.maxWidth = Math.min(lim.maxWidth, c.cursorWidth);
    if (c.cursorHeight !== undefined) lim.maxHeight = Math.min(lim.maxHeight, c.cursorHeight);
  }
  if (buffer.width < lim.minWidth || buffer.width > lim.maxWidth || buffer.height < lim.minHeight || buffer.height > lim.maxHeight) {
    reasons.push(
      reason('SIZE', `${buffer.width}x${buffer.height} is outside ${plane.type === 'cursor' ? 'the cursor limits' : 'the framebuffer limits'} [${lim.minWidth}, ${lim.maxWidth}] x [${lim.minHeight}, ${lim.maxHeight}] of ${dev.name}`, about),
    );
  }
  reasons.push(...layoutReasons(dev, buffer, plane.id));
  const offset = buffer.planes.find((p) => p.offset !== 0);
  if (offset && dev.planeOffsets && !dev.planeOffsets.honoured) {
    reasons.push(reason('PLANE_OFFSET', `plane offset ${offset.offset}: ${dev.name} does not read plane offsets right (${dev.planeOffsets.detail})`, about));
  }
  if (c.prime !== undefined && !c.prime.import) {
    reasons.push(reason('IMPORT', `${dev.name} (${dev.driver}) imports no dma-buf (DRM_CAP_PRIME without IMPORT): only its own buffers reach its planes`, about));
  }
  const placed = resolvePlacement(placement, buffer, mode, plane);
  reasons.push(...placed.reasons);
  notes.push(...placed.notes);
  return { reasons, notes, plane, ...(placed.resolved ? { placement: placed.resolved } : {}) };
}

export interface ScanoutCheckerOptions {
  /** The kernel adapter (KmsScanoutKernel); without it only static checks run (a fixture). */
  readonly kernel?: ScanoutKernel;
  /** The mode the placements are checked against (the output's next mode). */
  readonly mode: ModeSize;
  /** The device's known-bad table (shared between the device's outputs); a new one by default. */
  readonly knownBad?: KnownBadTable;
}

export interface CheckerStats {
  /** check() calls answered from the cache. */
  hits: number;
  /** Verdicts computed. */
  computed: number;
}

/**
 * The verdicts of one output of one KMS device, cached per (buffer, plane, placement). A buffer
 * with a `life` leaves the cache (and its framebuffer the kernel) at its end; a plain one is
 * `forget`-ten by its owner; `invalidate` when the output's state (mode, background) changes;
 * `close` removes the framebuffers the kernel checks made.
 */
export class ScanoutChecker {
  readonly device: ScanoutDeviceInfo;
  readonly knownBad: KnownBadTable;
  readonly #kernel: ScanoutKernel | undefined;
  #mode: ModeSize;
  #cache = new WeakMap<object, Map<string, ScanoutVerdict>>();
  /** Buffers with a life whose end this checker listens for (once each). */
  readonly #watched = new WeakSet<ScanoutBuffer>();
  readonly #stats: CheckerStats = { hits: 0, computed: 0 };

  constructor(device: ScanoutDeviceInfo, opts: ScanoutCheckerOptions) {
    this.device = device;
    this.#kernel = opts.kernel;
    this.#mode = opts.mode;
    this.knownBad = opts.knownBad ?? new KnownBadTable();
  }

  get stats(): Readonly<CheckerStats> {
    return { ...this.#stats };
  }

  /** Kernel calls made (import, AddFB2, TEST_ONLY); zeros without a kernel. */
  get kernelCounts(): Readonly<KernelCounts> {
    return this.#kernel?.counts ?? { imports: 0, addfb2: 0, testOnly: 0 };
  }

  get mode(): ModeSize {
    return this.#mode;
  }

  /**
   * The verdict of `buffer` (the cache key is the object: pass the same one every frame) on
   * plane `planeId` at `placement`. Never throws for a bad buffer, plane or placement.
   */
  checkScanout(buffer: ScanoutBuffer, planeId: number, placement: Placement): ScanoutVerdict {
    const k = `${planeId}|${placementKey(placement, this.#mode)}`;
    let perBuffer = this.#cache.get(buffer);
    const hit = perBuffer?.get(k);
    if (hit) {
      this.#stats.hits++;
      return hit;
    }
    if (buffer.life?.ended) throw new ClosedError(`${describeBuffer(buffer)} ended: it is not checked again (its fd numbers may name other files now)`);
    if (buffer.life && !this.#watched.has(buffer)) {
      this.#watched.add(buffer);
      // the verdicts and the framebuffer leave with the buffer's end (no forget() to remember)
      buffer.life.onEnd(() => this.forget(buffer));
    }
    this.#stats.computed++;
    const v = this.#compute(buffer, planeId, placement);
    if (!perBuffer) this.#cache.set(buffer, (perBuffer = new Map()));
    perBuffer.set(k, v);
    return v;
  }

  #compute(buffer: ScanoutBuffer, planeId: number, placement: Placement): ScanoutVerdict {
    const st = staticScanoutChecks(this.device, buffer, planeId, placement, this.#mode);
    const base = { plane: planeId, ...(st.placement ? { placement: st.placement } : {}) };
    if (st.reasons.length > 0 || !st.plane || !st.placement) return { ...verdict(st.reasons, st.notes), ...base, stage: 'static' };
    if (!this.#kernel) {
      return { ...verdict([], [...st.notes, 'static checks only: no kernel to ask (AddFB2 and TEST_ONLY not run)']), ...base, stage: 'static' };
    }
    const about = { plane: planeId, format: buffer.format, modifier: buffer.modifier };
    let step = this.#kernel.framebuffer(buffer, buffer);
    if (step.ok) step = this.#kernel.testOnly(buffer, st.plane, st.placement);
    if (step.ok) return { ...verdict([], st.notes), ...base, stage: 'kernel' };
    const what = { IMPORT: `PRIME import into ${this.device.name}`, ADDFB2: 'AddFB2', TEST_ONLY: 'atomic TEST_ONLY' }[step.stage];
    const r = reason(step.stage, `${what} refused ${describeBuffer(buffer)} on plane ${planeId}: ${step.error.code} (${step.error.message})`, { ...about, errno: step.error.code });
    if (step.stage === 'ADDFB2' || (step.stage === 'TEST_ONLY' && this.#tranchePlacement(st.placement))) {
      this.knownBad.add({ format: buffer.format, modifier: buffer.modifier, plane: planeId, reason: r, taughtBy: describeBuffer(buffer) });
    }
    return { ...verdict([r], st.notes), ...base, stage: 'kernel' };
  }

  /**
   * Kernel refusals teach the table only for the placement a scanout tranche is for: the whole
   * mode, unrotated, unscaled (a refused window or scaling says nothing about the pair).
   */
  #tranchePlacement(p: ResolvedPlacement): boolean {
    const fullScreen = p.dst.x === 0 && p.dst.y === 0 && p.dst.width === this.#mode.width && p.dst.height === this.#mode.height;
    return fullScreen && p.rotation === ROTATE_0 && p.src.width === p.dst.width && p.src.height === p.dst.height;
  }

  /**
   * The real commit of `buffer` on plane `planeId` at `placement` failed after its verdict's
   * TEST_ONLY passed: the verdict becomes that refusal (COMMIT, with the errno), and the known-bad
   * table learns the pair when the placement is the tranche's (its onLearn listeners, such as
   * linux-dmabuf's scanout tranche, follow). Returns the new verdict.
   */
  commitRefused(buffer: ScanoutBuffer, planeId: number, placement: Placement, error: SystemError): ScanoutVerdict {
    const k = `${planeId}|${placementKey(placement, this.#mode)}`;
    const before = this.#cache.get(buffer)?.get(k);
    const about = { plane: planeId, format: buffer.format, modifier: buffer.modifier };
    const r = reason('COMMIT', `the atomic commit refused ${describeBuffer(buffer)} on plane ${planeId} after its TEST_ONLY passed: ${error.code} (${error.message})`, { ...about, errno: error.code });
    const v: ScanoutVerdict = { ...verdict([r], before?.notes ?? []), plane: planeId, ...(before?.placement ? { placement: before.placement } : {}), stage: 'kernel' };
    let perBuffer = this.#cache.get(buffer);
    if (!perBuffer) this.#cache.set(buffer, (perBuffer = new Map()));
    perBuffer.set(k, v);
    if (before?.placement && this.#tranchePlacement(before.placement)) {
      this.knownBad.add({ format: buffer.format, modifier: buffer.modifier, plane: planeId, reason: r, taughtBy: describeBuffer(buffer) });
    }
    return v;
  }

  /**
   * Drops the verdicts and the framebuffer of a buffer. A buffer with a `life` is forgotten at its
   * end without this call; a plain description is forgotten by its owner when it goes.
   */
  forget(buffer: ScanoutBuffer): void {
    this.#cache.delete(buffer);
    this.#kernel?.forget(buffer);
  }

  /** The output's state changed: every verdict is recomputed on next use. */
  invalidate(mode: ModeSize = this.#mode): void {
    this.#mode = mode;
    this.#cache = new WeakMap();
  }

  /** Removes the framebuffers made for verdicts (the kernel adapter's). */
  close(): void {
    this.#cache = new WeakMap();
    this.#kernel?.close();
  }
}
