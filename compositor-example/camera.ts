/**
 * The kiosk's camera (--camera): a V4L2 capture node opened at the largest size it offers that
 * fits the (logical) mode, its frames taken through CameraSource as they come, the newest kept
 * for the next frame of the kiosk and older ones given straight back. While a toplevel covers the
 * camera its frames go back unshown. A frame is released as soon as present() took it: its buffer
 * stays out of the camera while the presenter locks it (on screen, or being copied), and goes back
 * by itself with the presenter's last unlock. A camera that fails mid-stream (unplugged: its
 * QBUF or DQBUF refused) is reported to the kiosk (`failed`), which takes it off the screen and
 * then shuts it down (`shutDown`).
 */
import {
  CameraSource,
  V4l2Device,
  formatName,
  type PresentResult,
  type Presenter,
  type ScanoutBuffer,
  type SurfacePlacement,
} from 'primebuf';
import { openSystemAllocators, type SystemAllocators } from 'primebuf/alloc';
import { describeKmsDevice } from 'primebuf/constraints';
import type { DeviceOrModel } from 'primebuf/kms';
import { placementFor } from 'primebuf/scanout';
import type { CameraFrame } from 'primebuf/v4l2';
import type { OutputTransform } from './output.js';

export interface KioskCameraStats {
  device: string;
  width: number;
  height: number;
  format: string;
  memory: 'dmabuf' | 'mmap';
  /** camera frames presented */
  frames: number;
  direct: number;
  copied: number;
  bytesCopied: number;
  /** frames given back unshown (a newer one came first, or a toplevel covered the camera) */
  dropped: number;
  /** why the frames are copied (the presenter's reasons, CameraSource.directReasons); empty when direct */
  reasons: string[];
  /** why the camera stopped mid-stream (unplugged: a refused QBUF or DQBUF); absent while it runs */
  stopped?: string;
}

/** What the camera asks of the kiosk while it runs. */
export interface CameraHost {
  /** the kiosk is closing: no frame is kept any more */
  readonly closed: () => boolean;
  /** a toplevel covers the camera: its frames go back unshown */
  readonly covered: () => boolean;
  /** a new frame waits: present it with the next frame of the kiosk */
  readonly ready: () => void;
  /**
   * The camera failed (unplugged mid-stream: a refused QBUF or DQBUF): no frame comes any more.
   * The kiosk shows black or a client, then shuts the camera down (`shutDown`).
   */
  readonly failed: (err: Error) => void;
  readonly log: (line: string) => void;
}

/** A camera frame the presenter took (path 'unchanged' or no presentation: nothing was shown). */
export interface CameraShown {
  readonly result: PresentResult;
  readonly placement: SurfacePlacement;
  readonly buffer: ScanoutBuffer;
}

export class KioskCamera {
  readonly dev: V4l2Device;
  readonly sys: SystemAllocators;
  readonly src: CameraSource;
  readonly stats: KioskCameraStats;
  /** the newest frame not shown yet */
  latest: CameraFrame | null = null;
  /** the frame pump (runs from start() until the source stops) */
  pump: Promise<void> = Promise.resolve();
  /** where its frames go (one object: every frame has the capture size, so the presenter's key is made once) */
  #placement: SurfacePlacement | undefined;
  #host: CameraHost | undefined;
  /** why the camera failed (no frames any more) */
  #failure: Error | undefined;
  #shut = false;

  private constructor(dev: V4l2Device, sys: SystemAllocators, src: CameraSource, stats: KioskCameraStats) {
    this.dev = dev;
    this.sys = sys;
    this.src = src;
    this.stats = stats;
  }

  /** Opens `path` capturing `format` at the largest size that fits `fit`, for `device`'s display. */
  static open(path: string, format: number, device: DeviceOrModel, fit: { width: number; height: number }): KioskCamera {
    const dev = V4l2Device.open(path);
    let sys: SystemAllocators | undefined;
    try {
      const pf = dev.pixelformatFor(format);
      if (pf === null) throw new RangeError(`camera ${path} does not capture ${formatName(format)}`);
      const size = cameraSize(dev, pf, fit);
      sys = openSystemAllocators(); // after the kiosk's device: its fd is the DRM master
      const src = CameraSource.open({ camera: dev, display: describeKmsDevice(device), pool: sys.pool, ...size, format });
      const stats: KioskCameraStats = { device: path, ...size, format: formatName(format), memory: src.memory, frames: 0, direct: 0, copied: 0, bytesCopied: 0, dropped: 0, reasons: [] };
      return new KioskCamera(dev, sys, src, stats);
    } catch (err) {
      sys?.close();
      dev.close();
      throw err;
    }
  }

  /** One line for the log: what was opened and whether its buffers suit the display. */
  describe(): string {
    const s = this.stats;
    return `camera ${this.dev.path}: ${s.width}x${s.height} ${s.format}, ${s.memory} buffers${this.src.directReasons.length ? `, for the copy path (${this.src.directReasons.join('; ')})` : ', allocated for camera and display'}`;
  }

  /** Starts taking frames. */
  start(host: CameraHost): void {
    this.#host = host;
    this.pump = this.#pump(host);
  }

  /** The camera's frames as they come: the newest waits for the next frame of the kiosk. */
  async #pump(host: CameraHost): Promise<void> {
    for (;;) {
      let f: CameraFrame;
      try {
        f = await this.src.next();
      } catch (err) {
        if (host.closed() || this.#shut) return;
        this.#failure = err instanceof Error ? err : new Error(String(err));
        this.stats.stopped = this.#failure.message;
        if (this.latest) {
          this.latest.release(); // never shown; the failed stream takes it back as nothing
          this.latest = null;
        }
        host.failed(this.#failure);
        return;
      }
      if (host.closed()) {
        f.release();
        return;
      }
      if (this.latest) {
        this.latest.release(); // replaced before it was shown
        this.stats.dropped++;
      }
      if (host.covered()) {
        f.release(); // a toplevel covers the camera
        this.stats.dropped++;
        this.latest = null;
        continue;
      }
      this.latest = f;
      host.ready();
    }
  }

  /** Why the camera stopped delivering frames (undefined while it runs). */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * After a failure, once the presenter no longer shows its buffers: stops the source (the
   * buffers' lives end with the presenter's last unlock, and its caches of them leave then),
   * closes the node and the allocators. What fails here is logged, not thrown.
   */
  shutDown(): void {
    if (this.#shut) return;
    this.#shut = true;
    this.latest?.release();
    this.latest = null;
    for (const [what, fn] of [
      ['stopping the stream', () => this.src.stop()],
      ['closing the node', () => this.dev.close()],
      ['closing the allocators', () => this.sys.close()],
    ] as const) {
      try {
        fn();
      } catch (err) {
        this.#host?.log(`camera ${this.dev.path}: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /**
   * Presents the newest frame (`latest`, which must be set), centred on the mode turned by the
   * output transform, and keeps the stats. The caller keeps its own frame counts.
   */
  async show(presenter: Presenter, transform: OutputTransform, mode: { width: number; height: number }): Promise<CameraShown> {
    const f = this.latest!;
    this.latest = null;
    const b = f.buffer;
    const placement = (this.#placement ??= placementFor(b, 0, 1, transform, mode));
    let r: PresentResult;
    try {
      r = await presenter.present({ buffer: b, placement, constraints: this.src.constraints });
    } finally {
      // the presenter holds its own lock while it shows the buffer: it goes back to the camera with that
      f.release();
    }
    const p = r.presentation;
    if (r.path === 'unchanged' || !p) return { result: r, placement, buffer: b };
    const path = r.path === 'direct' ? 'direct' : 'copy';
    const st = this.stats;
    st.frames++;
    st[path === 'direct' ? 'direct' : 'copied']++;
    st.bytesCopied += r.bytesCopied;
    if (st.frames === 1 || (path === 'copy') !== st.reasons.length > 0) {
      st.reasons = path === 'copy' ? [...new Set([...this.src.directReasons, ...presenter.explain(b, placement, !this.src.constraints.writeCombine)])] : [];
      this.#host?.log(`camera ${this.dev.path}: ${path}${r.path === 'direct' ? ` on plane ${r.plane}` : ''}${st.reasons.length ? ` (${st.reasons.join('; ')})` : ''}`);
    }
    return { result: r, placement, buffer: b };
  }

  /** After the presenter closed (it let go of the camera's buffers): STREAMOFF, the buffers freed. */
  async close(): Promise<void> {
    if (this.#shut) return;
    this.latest?.release();
    this.latest = null;
    this.src.stop();
    await this.pump;
    this.shutDown();
  }

  /** Start-up failed after open: everything closed at once. */
  closeNow(): void {
    this.src.stop();
    this.dev.close();
    this.sys.close();
  }
}

/** The largest size the camera offers for `pixelformat` that fits `fit` (discrete sizes, or a stepwise range). */
export function cameraSize(dev: V4l2Device, pixelformat: number, fit: { width: number; height: number }): { width: number; height: number } {
  const fs = dev.frameSizes(pixelformat);
  if (!fs) throw new RangeError(`camera ${dev.path}: no frame sizes for its format`);
  if (fs.kind === 'discrete') {
    const ok = fs.sizes.filter((z) => z.width <= fit.width && z.height <= fit.height);
    if (ok.length === 0) throw new RangeError(`camera ${dev.path}: none of its sizes (${fs.sizes.map((z) => `${z.width}x${z.height}`).join(', ')}) fits ${fit.width}x${fit.height}`);
    return ok.reduce((a, z) => (z.width * z.height > a.width * a.height ? z : a));
  }
  const step = (v: number, min: number, max: number, st: number): number => Math.min(max, min + Math.floor((v - min) / Math.max(1, st)) * Math.max(1, st));
  if (fs.minWidth > fit.width || fs.minHeight > fit.height) throw new RangeError(`camera ${dev.path}: its smallest size ${fs.minWidth}x${fs.minHeight} does not fit ${fit.width}x${fit.height}`);
  return { width: step(fit.width, fs.minWidth, fs.maxWidth, fs.stepWidth), height: step(fit.height, fs.minHeight, fs.maxHeight, fs.stepHeight) };
}
