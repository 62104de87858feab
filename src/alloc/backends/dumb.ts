/**
 * KMS dumb buffers: CPU-mappable linear buffers any KMS driver can scan out. The GEM handle is
 * counted in the device's handle table (a PRIME re-import of the buffer's own dma-buf gives the
 * same handle back).
 */
import { Mapping } from '../../dmabuf/mapping.js';
import type { Dmabuf } from '../../dmabuf/dmabuf.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';
import type { Device } from '../../kms/device.js';
import type { GemHandle } from '../../kms/gem.js';

/** The size of a dumb buffer in pixels of `bpp` bits (the driver picks the pitch). */
export interface DumbBufferOptions {
  width: number;
  height: number;
  /** bits per pixel (32 for XRGB8888/ARGB8888, 16 for RGB565, 64 for 16161616) */
  bpp: number;
}

/**
 * A KMS dumb buffer (DRM_IOCTL_MODE_CREATE_DUMB) on a Device: its driver-chosen `pitch` and
 * `size`, its GEM handle as one counted reference in the device's table (close() drops it),
 * a CPU mapping (`map()`) and PRIME export (`exportDmabuf()`).
 */
export class DumbBuffer extends Resource {
  readonly device: Device;
  readonly handle: GemHandle;
  readonly width: number;
  readonly height: number;
  readonly bpp: number;
  readonly pitch: number;
  readonly size: bigint;

  /** Creates a dumb buffer on `device` (SystemError from DRM_IOCTL_MODE_CREATE_DUMB on failure). */
  static create(device: Device, opts: DumbBufferOptions): DumbBuffer {
    const raw = native.dumbCreate(device.fd, opts.width, opts.height, opts.bpp, 0);
    let handle: GemHandle;
    try {
      handle = device.adoptHandle(raw.handle, `${device.name} dumb ${opts.width}x${opts.height} handle ${raw.handle}`);
    } catch (err) {
      native.dumbDestroy(device.fd, raw.handle);
      throw err;
    }
    return new DumbBuffer(device, handle, opts, raw.pitch, raw.size);
  }

  private constructor(device: Device, handle: GemHandle, opts: DumbBufferOptions, pitch: number, size: bigint) {
    super(`${device.name} dumb buffer ${opts.width}x${opts.height}@${opts.bpp} (handle ${handle.handle})`, () => handle.close());
    this.device = device;
    this.handle = handle;
    this.width = opts.width;
    this.height = opts.height;
    this.bpp = opts.bpp;
    this.pitch = pitch;
    this.size = size;
  }

  /** A CPU mapping through the DRM fd (DRM_IOCTL_MODE_MAP_DUMB offset). */
  map(): Mapping {
    this.assertOpen();
    const offset = native.dumbMapOffset(this.device.fd, this.handle.handle);
    return Mapping.map(this.device.fd, offset, this.size, true, `mapping of ${this.what}`);
  }

  /** PRIME export: a dma-buf of this buffer (the caller owns it). */
  exportDmabuf(writable = true): Dmabuf {
    this.assertOpen();
    return this.device.exportDmabuf(this.handle, writable);
  }
}
