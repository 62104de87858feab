/**
 * The import hook of the linux-dmabuf global: turning validated attributes into something the
 * compositor's devices can use. The PRIME importer imports every plane into the main device
 * (DRM_IOCTL_PRIME_FD_TO_HANDLE through the kms Device, whose GEM handles are counted per
 * device); tests and other compositors inject their own importer.
 */
import type { Device } from '../kms/device.js';
import type { GemHandle } from '../kms/gem.js';
import type { DmabufAttributes } from './attributes.js';

/** What an import produced; close() drops every reference it took. */
export interface ImportedDmabuf {
  /** GEM handle numbers per plane, when the importer works with a DRM device. */
  readonly handles: readonly number[];
  /**
   * The same handles as counted references of `device`'s handle table, one per plane (planes
   * that share a dma-buf share the handle, each with its own reference), owned by the import:
   * close() closes them. A framebuffer made from them (Framebuffer.forBuffer) takes its own.
   */
  readonly gemHandles?: readonly GemHandle[];
  /** The device the GEM handles belong to. */
  readonly device?: PrimeDevice;
  close(): void;
}

/** Imports a buffer or throws (a SystemError from the kernel, or any Error with a reason). */
export interface DmabufImporter {
  readonly name: string;
  importDmabuf(attributes: DmabufAttributes): ImportedDmabuf;
}

/** The part of a kms Device the PRIME importer needs (kept structural for tests). */
export type PrimeDevice = Pick<Device, 'path' | 'importDmabuf'>;

/** Imports each plane's dma-buf into `device` through PRIME. */
export class PrimeImporter implements DmabufImporter {
  readonly name: string;
  constructor(readonly device: PrimeDevice) {
    this.name = `PRIME ${device.path}`;
  }

  importDmabuf(attributes: DmabufAttributes): ImportedDmabuf {
    const taken: GemHandle[] = [];
    try {
      for (const p of attributes.planes) taken.push(this.device.importDmabuf(p.fd.fd));
    } catch (err) {
      for (const h of taken) h.close();
      throw err;
    }
    let closed = false;
    return {
      handles: taken.map((h) => h.handle),
      gemHandles: taken,
      device: this.device,
      close: () => {
        if (closed) return;
        closed = true;
        for (const h of taken) h.close();
      },
    };
  }
}

/** Accepts every validated buffer without touching a device (validation-only servers, tests). */
export const acceptAllImporter: DmabufImporter = {
  name: 'none (validation only)',
  importDmabuf: () => ({ handles: [], close: () => undefined }),
};
