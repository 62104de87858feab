/**
 * GBM (Mesa's buffer allocator) on a DRM device, when the addon was built with libgbm and the
 * device has a GBM backend. Optional at build time (native.gbmAvailable) and at run time
 * (gbmCreateDevice can fail): both give a NativeUnavailableError / SystemError, never a crash.
 */
import { Dmabuf } from '../../dmabuf/dmabuf.js';
import { NativeUnavailableError } from '../../errors.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';
import type { Device } from '../../kms/device.js';

export const GBM_BO_USE_SCANOUT = 1 << 0;
export const GBM_BO_USE_CURSOR = 1 << 1;
export const GBM_BO_USE_RENDERING = 1 << 2;
export const GBM_BO_USE_WRITE = 1 << 3;
export const GBM_BO_USE_LINEAR = 1 << 4;

export function gbmBuilt(): boolean {
  return native.gbmAvailable === true;
}

export interface GbmBoPlane {
  dmabuf: Dmabuf;
  stride: number;
  offset: number;
}

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

/** A GBM buffer object with its exported plane fds (each owned by its Dmabuf). */
export class GbmBo extends Resource {
  readonly #bo: unknown;
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly modifier: bigint;
  readonly planes: readonly GbmBoPlane[];

  /** @internal */
  constructor(bo: unknown, width: number, height: number, format: number, modifier: bigint, planes: GbmBoPlane[], owner: GbmDevice) {
    super(`gbm bo ${width}x${height}`, () => {
      for (const p of planes) p.dmabuf.close();
      if (!owner.closed) native.gbmBoDestroy!(bo);
    });
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

export class GbmDevice extends Resource {
  readonly device: Device;
  readonly backend: string;
  readonly #gbm: unknown;

  /** GBM on `device`'s fd (the Device must outlive this object). */
  static create(device: Device): GbmDevice {
    if (!gbmBuilt()) throw new NativeUnavailableError('primebuf was built without libgbm (PRIMEBUF_HAVE_GBM)');
    return new GbmDevice(device, native.gbmCreateDevice!(device.fd));
  }

  private constructor(device: Device, gbm: unknown) {
    super(`gbm on ${device.name}`, () => native.gbmDestroyDevice!(gbm));
    this.device = device;
    this.#gbm = gbm;
    this.backend = native.gbmBackendName!(gbm);
  }

  isFormatSupported(format: number, usage: number): boolean {
    this.assertOpen();
    return native.gbmIsFormatSupported!(this.#gbm, format, usage);
  }

  /** gbm_bo_create_with_modifiers2 (explicit modifiers) or gbm_bo_create (modifiers null: implicit). */
  createBo(width: number, height: number, format: number, modifiers: bigint[] | null, usage: number): GbmBo {
    this.assertOpen();
    const raw = native.gbmBoCreate!(this.#gbm, width, height, format, modifiers, usage);
    const planes = raw.planes.map((p, i) => ({ dmabuf: new Dmabuf(p.fd, `gbm bo plane ${i}`), stride: p.stride, offset: p.offset }));
    return new GbmBo(raw.bo, width, height, raw.format, raw.modifier, planes, this);
  }
}
