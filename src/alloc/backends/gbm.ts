/**
 * GBM (Mesa's buffer allocator) on a DRM device, when the addon was built with libgbm and the
 * device has a GBM backend. Optional at build time (native.gbmAvailable) and at run time
 * (gbmCreateDevice can fail): both give a NativeUnavailableError / SystemError, never a crash.
 *
 * GEM handle ownership. GEM handles are per drm_file and not counted by the kernel, and
 * gbm_bo_destroy closes the bo's handle itself. If libgbm worked on the Device's own fd, a
 * PRIME import of the bo's dma-buf into that Device would return libgbm's handle, the import's
 * last close would GEM_CLOSE it under the live bo, and gbm_bo_destroy would later close a stale
 * (possibly reused) handle. So libgbm gets a drm_file of its own (the Device's node opened
 * again, never DRM master, authenticated through the Device's fd): its handles are its alone,
 * and gbm_bo_destroy is their one closer. On the Device, each bo plane
 * holds one counted reference (a GemHandle, PRIME import of the plane's dma-buf) in the
 * Device's GEM handle table, like any other holder; the table's last close frees that handle.
 */
import { Dmabuf } from '../../dmabuf/dmabuf.js';
import type { GemHandle } from '../../kms/gem.js';
import { ClosedError, NativeUnavailableError } from '../../errors.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';
import type { Device } from '../../kms/device.js';

/** gbm_bo usage flags (gbm.h). */
export const GBM_BO_USE_SCANOUT = 1 << 0;
export const GBM_BO_USE_CURSOR = 1 << 1;
export const GBM_BO_USE_RENDERING = 1 << 2;
export const GBM_BO_USE_WRITE = 1 << 3;
export const GBM_BO_USE_LINEAR = 1 << 4;

/** Whether the addon was built with libgbm. */
export function gbmBuilt(): boolean {
  return native.gbmAvailable === true;
}

export interface GbmBoPlane {
  /** The plane's dma-buf (owned by the bo). */
  dmabuf: Dmabuf;
  stride: number;
  offset: number;
  /** The plane's GEM handle on the Device: one counted reference, closed with the bo. */
  handle: GemHandle;
  /** libgbm's own GEM handle of the plane, on `GbmDevice.fd` (gbm_bo_destroy closes it). */
  gbmHandle: number;
}

/** gbm_bo_map transfer flags (gbm.h). */
export const GBM_BO_TRANSFER_READ = 1;
export const GBM_BO_TRANSFER_WRITE = 2;
export const GBM_BO_TRANSFER_READ_WRITE = 3;

/** A CPU mapping of a whole GBM bo (gbm_bo_map); close() unmaps once and detaches the buffer. */
export class GbmMapping extends Resource {
  readonly stride: number;
  readonly #buffer: ArrayBuffer;

  /** @internal */
  constructor(bo: unknown, raw: { buffer: ArrayBuffer; stride: number; mapData: unknown }) {
    const buffer = raw.buffer;
    super(`gbm mapping (${buffer.byteLength} bytes)`, () => native.gbmBoUnmap!(bo, raw.mapData, buffer));
    this.stride = raw.stride;
    this.#buffer = buffer;
  }

  bytes(): Uint8Array {
    this.assertOpen();
    return new Uint8Array(this.#buffer);
  }
}

/** libgbm's device and its private fd: destroyed once the GbmDevice and its every bo are closed. */
interface GbmState {
  gbm: unknown;
  fd: number;
  bos: number;
  closed: boolean;
}

function releaseIfDone(s: GbmState): void {
  if (!s.closed || s.bos > 0 || s.fd < 0) return;
  native.gbmDestroyDevice!(s.gbm);
  native.closeFd(s.fd);
  s.fd = -1;
}

let liveBos = 0;

/** GBM bos not yet closed (for leak checks). */
export function liveGbmBoCount(): number {
  return liveBos;
}

/** A GBM buffer object with its exported plane dma-bufs and Device GEM handles (each owned by the bo). */
export class GbmBo extends Resource {
  readonly #bo: unknown;
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly modifier: bigint;
  readonly planes: readonly GbmBoPlane[];

  /** @internal */
  constructor(bo: unknown, width: number, height: number, format: number, modifier: bigint, planes: GbmBoPlane[], state: GbmState) {
    super(`gbm bo ${width}x${height}`, () => {
      liveBos--;
      try {
        for (const p of planes) {
          p.handle.close();
          p.dmabuf.close();
        }
      } finally {
        native.gbmBoDestroy!(bo);
        state.bos--;
        releaseIfDone(state);
      }
    });
    liveBos++;
    this.#bo = bo;
    this.width = width;
    this.height = height;
    this.format = format;
    this.modifier = modifier;
    this.planes = planes;
  }

  /** gbm_bo_map of the whole bo (the driver may hand out a staging copy for tiled layouts). */
  map(flags = GBM_BO_TRANSFER_READ_WRITE): GbmMapping {
    this.assertOpen();
    return new GbmMapping(this.#bo, native.gbmBoMap!(this.#bo, this.width, this.height, flags));
  }
}

/**
 * GBM on a DRM device. libgbm works on a drm_file of its own (see the top of this file); the
 * bos' dma-bufs are imported into `device`, whose GEM handle table counts them. close() is
 * deferred past the last open bo.
 */
export class GbmDevice extends Resource {
  readonly device: Device;
  readonly backend: string;
  readonly #state: GbmState;

  /** GBM for `device` (which must stay open while bos are made; closing it first is safe). */
  static create(device: Device): GbmDevice {
    if (!gbmBuilt()) throw new NativeUnavailableError('primebuf was built without libgbm (PRIMEBUF_HAVE_GBM)');
    if (device.closed) throw new ClosedError(device.what);
    const fd = native.gbmOpenNode!(device.path, device.fd);
    let gbm: unknown;
    try {
      gbm = native.gbmCreateDevice!(fd);
    } catch (err) {
      native.closeFd(fd);
      throw err;
    }
    return new GbmDevice(device, { gbm, fd, bos: 0, closed: false });
  }

  private constructor(device: Device, state: GbmState) {
    super(`gbm on ${device.name}`, () => {
      state.closed = true;
      releaseIfDone(state);
    });
    this.device = device;
    this.#state = state;
    this.backend = native.gbmBackendName!(state.gbm);
  }

  /** libgbm's own DRM fd (a second open of `device.path`); its bos' `gbmHandle`s live there. */
  get fd(): number {
    this.assertOpen();
    return this.#state.fd;
  }

  isFormatSupported(format: number, usage: number): boolean {
    this.assertOpen();
    return native.gbmIsFormatSupported!(this.#state.gbm, format, usage);
  }

  /** gbm_bo_create_with_modifiers2 (explicit modifiers) or gbm_bo_create (modifiers null: implicit). */
  createBo(width: number, height: number, format: number, modifiers: bigint[] | null, usage: number): GbmBo {
    this.assertOpen();
    const raw = native.gbmBoCreate!(this.#state.gbm, width, height, format, modifiers, usage);
    const dmabufs = raw.planes.map((p, i) => new Dmabuf(p.fd, `gbm bo plane ${i}`));
    const handles: GemHandle[] = [];
    try {
      for (const d of dmabufs) handles.push(this.device.importDmabuf(d));
    } catch (err) {
      for (const h of handles) h.close();
      for (const d of dmabufs) d.close();
      native.gbmBoDestroy!(raw.bo);
      throw err;
    }
    const planes = raw.planes.map((p, i) => ({ dmabuf: dmabufs[i]!, stride: p.stride, offset: p.offset, handle: handles[i]!, gbmHandle: p.handle }));
    this.#state.bos++;
    return new GbmBo(raw.bo, width, height, raw.format, raw.modifier, planes, this.#state);
  }
}
