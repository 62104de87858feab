/**
 * The verdicts' one adapter to src/kms: PRIME import into the KMS device, AddFB2 through the
 * FramebufferCache (which remembers a refusal with its reason), and the atomic TEST_ONLY commit
 * of the output's next state. Everything the verdicts ask the kernel goes through here, and is
 * counted, so a test can prove that a cached verdict asks nothing. A buffer its owner already
 * imported into this device (linux-dmabuf) gets its framebuffer from that import's GEM handles.
 */
import { ClosedError, SystemError } from '../errors.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR } from '../formats/index.js';
import type { RawMode } from '../native/drm.js';
import { PropertyBlob } from '../kms/blob.js';
import type { AtomicRequest } from '../kms/atomic.js';
import type { Device } from '../kms/device.js';
import { FramebufferCache } from '../kms/fb-cache.js';
import { Framebuffer } from '../kms/framebuffer.js';
import type { GemHandle } from '../kms/gem.js';
import type { ResolvedPlacement } from './placement.js';
import { describeBuffer, type ScanoutBuffer } from './verdict-buffer.js';
import type { ScanoutPlaneInfo } from './verdict-device.js';
import { OutputState } from './output-state.js';

export type KernelStep = { ok: true } | { ok: false; stage: 'IMPORT' | 'ADDFB2' | 'TEST_ONLY'; error: SystemError };

/** Kernel calls made so far. */
export interface KernelCounts {
  imports: number;
  addfb2: number;
  testOnly: number;
}

/** What the verdicts need from the kernel (a fake in host tests). */
export interface ScanoutKernel {
  /** Import + AddFB2 for `key`, made once and remembered (a refusal too). */
  framebuffer(key: object, buffer: ScanoutBuffer): KernelStep;
  /** TEST_ONLY of the output's next state with the framebuffer of `key` on `plane` at `placement`. */
  testOnly(key: object, plane: ScanoutPlaneInfo, placement: ResolvedPlacement): KernelStep;
  /** Drops what was made for `key` (its framebuffer). */
  forget(key: object): void;
  readonly counts: Readonly<KernelCounts>;
  close(): void;
}

/**
 * The output the verdicts test against, described (a CLI, a test): a CRTC driving a connector
 * with a mode, always tested with the modeset. A presenter gives its OutputState instead: the
 * TEST_ONLY is then the next commit's request, flags and extras included.
 */
export interface OutputDescription {
  readonly crtcId: number;
  readonly connectorId: number;
  readonly mode: RawMode;
  /**
   * The compositor's background on the primary plane (a black full-mode framebuffer), part of
   * the next state whenever the plane under test is not the primary.
   */
  readonly background?: { readonly planeId: number; readonly fb: Framebuffer };
  /**
   * The rest of the output's next state (the presenter's other planes), added to every TEST_ONLY
   * before the plane under test is set. Call ScanoutChecker.invalidate() when it changes.
   */
  readonly nextState?: (req: AtomicRequest, planeUnderTest: number) => void;
  /** TEST_ONLY with DRM_MODE_ATOMIC_ALLOW_MODESET (default true: the output may be off now). */
  readonly allowModeset?: boolean;
}

function toFixed16(v: number): bigint {
  return BigInt(Math.round(v * 65536));
}

export class KmsScanoutKernel implements ScanoutKernel {
  readonly device: Device;
  readonly output: OutputState | OutputDescription;
  readonly #fbs: FramebufferCache;
  readonly #results = new Map<object, { ok: true; fb: Framebuffer; own?: true } | { ok: false; stage: 'IMPORT' | 'ADDFB2'; error: SystemError }>();
  readonly #counts: KernelCounts = { imports: 0, addfb2: 0, testOnly: 0 };
  #modeBlob: PropertyBlob | undefined;

  constructor(device: Device, output: OutputState | OutputDescription) {
    this.device = device;
    this.output = output;
    this.#fbs = new FramebufferCache(device);
  }

  get counts(): Readonly<KernelCounts> {
    return { ...this.#counts };
  }

  /**
   * The framebuffer of `buffer` under `key`, made once and remembered (a refusal too): from the
   * GEM handles of its import when its owner imported it into this device (Framebuffer.forBuffer:
   * no second PRIME import), else from one PRIME import of its fds made here (a camera buffer, a
   * wl_shm udmabuf), kept by the framebuffer for the buffer's life. ClosedError for a buffer that
   * ended: its fd numbers may name other files by now.
   */
  framebuffer(key: object, buffer: ScanoutBuffer): KernelStep {
    const cur = this.#results.get(key);
    if (cur && (!cur.ok ? true : !cur.fb.closed)) return cur.ok ? { ok: true } : cur;
    if (buffer.life?.ended) throw new ClosedError(`${describeBuffer(buffer)} ended: no framebuffer is made from it`);
    // A driver without ADDFB2_MODIFIERS takes LINEAR only as "no modifier".
    const explicitOk = this.device.tryGetCap('ADDFB2_MODIFIERS', 0n) !== 0n;
    const modifier = !explicitOk && buffer.modifier === DRM_FORMAT_MOD_LINEAR ? DRM_FORMAT_MOD_INVALID : buffer.modifier;
    const imp = buffer.imported;
    if (imp?.gemHandles && imp.gemHandles.length > 0 && imp.device === this.device) {
      this.#counts.addfb2++;
      let r: { ok: true; fb: Framebuffer; own: true } | { ok: false; stage: 'ADDFB2'; error: SystemError };
      try {
        r = { ok: true, fb: Framebuffer.forBuffer(this.device, { attributes: { ...buffer, modifier }, imported: imp }), own: true };
      } catch (err) {
        if (!(err instanceof SystemError)) throw err;
        r = { ok: false, stage: 'ADDFB2', error: err };
      }
      if (cur?.ok && cur.own) cur.fb.close();
      this.#results.set(key, r);
      return r.ok ? { ok: true } : r;
    }
    const handles: GemHandle[] = [];
    try {
      for (const p of buffer.planes) {
        this.#counts.imports++;
        handles.push(this.device.importDmabuf(p.fd));
      }
    } catch (err) {
      for (const h of handles) h.close();
      if (!(err instanceof SystemError)) throw err;
      const r = { ok: false as const, stage: 'IMPORT' as const, error: err };
      this.#results.set(key, r);
      return r;
    }
    try {
      this.#counts.addfb2++;
      const res = this.#fbs.get(key, {
        width: buffer.width,
        height: buffer.height,
        format: buffer.format,
        modifier,
        planes: buffer.planes.map((p, i) => ({ handle: handles[i]!, pitch: p.stride, offset: p.offset })),
      });
      const r = res.ok ? { ok: true as const, fb: res.fb } : { ok: false as const, stage: 'ADDFB2' as const, error: res.error };
      this.#results.set(key, r);
      return r.ok ? { ok: true } : r;
    } finally {
      // the framebuffer holds its own references
      for (const h of handles) h.close();
    }
  }

  testOnly(key: object, plane: ScanoutPlaneInfo, placement: ResolvedPlacement): KernelStep {
    const fb = this.#results.get(key);
    if (!fb || !fb.ok) throw new Error('testOnly before a framebuffer was made');
    if (this.output instanceof OutputState) {
      // the request the commit of this frame would make, with its flags
      this.#counts.testOnly++;
      const r = this.output.test(this.output.direct(plane, fb.fb, placement));
      return r.ok ? r : { ok: false, stage: 'TEST_ONLY', error: r.error };
    }
    const out = this.output;
    this.#modeBlob ??= PropertyBlob.fromMode(this.device, out.mode);
    const req = this.device
      .atomic()
      .set(out.crtcId, 'ACTIVE', 1)
      .set(out.crtcId, 'MODE_ID', this.#modeBlob)
      .set(out.connectorId, 'CRTC_ID', out.crtcId);
    if (out.background && out.background.planeId !== plane.id) {
      const bg = out.background.fb;
      req.setAll(out.background.planeId, {
        FB_ID: bg,
        CRTC_ID: out.crtcId,
        SRC_X: 0,
        SRC_Y: 0,
        SRC_W: BigInt(bg.width) << 16n,
        SRC_H: BigInt(bg.height) << 16n,
        CRTC_X: 0,
        CRTC_Y: 0,
        CRTC_W: bg.width,
        CRTC_H: bg.height,
      });
    }
    out.nextState?.(req, plane.id);
    const { src, dst } = placement;
    req.setAll(plane.id, {
      FB_ID: fb.fb,
      CRTC_ID: placement.crtc,
      SRC_X: toFixed16(src.x),
      SRC_Y: toFixed16(src.y),
      SRC_W: toFixed16(src.width),
      SRC_H: toFixed16(src.height),
      CRTC_X: BigInt.asUintN(64, BigInt(dst.x)),
      CRTC_Y: BigInt.asUintN(64, BigInt(dst.y)),
      CRTC_W: dst.width,
      CRTC_H: dst.height,
    });
    if (plane.hasRotationProperty) req.set(plane.id, 'rotation', placement.rotation);
    this.#counts.testOnly++;
    const r = req.check({ allowModeset: out.allowModeset ?? true });
    return r.ok ? r : { ok: false, stage: 'TEST_ONLY', error: r.error };
  }

  /** The framebuffer made for `key` by framebuffer(), when it was made and is open (the presenter commits it). */
  framebufferOf(key: object): Framebuffer | undefined {
    const r = this.#results.get(key);
    return r?.ok && !r.fb.closed ? r.fb : undefined;
  }

  forget(key: object): void {
    const r = this.#results.get(key);
    this.#results.delete(key);
    if (r?.ok && r.own) r.fb.close();
    this.#fbs.forget(key);
  }

  /** Removes every framebuffer made for a verdict and the mode blob. */
  close(): void {
    for (const r of this.#results.values()) if (r.ok && r.own) r.fb.close();
    this.#results.clear();
    this.#fbs.close();
    this.#modeBlob?.close();
    this.#modeBlob = undefined;
  }
}
