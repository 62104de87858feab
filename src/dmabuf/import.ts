/**
 * The import hook of the linux-dmabuf global: turning validated attributes into something the
 * compositor's devices can use. The PRIME importer imports every plane into the main device
 * (DRM_IOCTL_PRIME_FD_TO_HANDLE through the kms Device, whose GEM handles are counted per
 * device); tests and other compositors inject their own importer.
 */
import type { DmabufAttributes } from './attributes.js';

/** What an import produced; close() drops every reference it took. */
export interface ImportedDmabuf {
  /** GEM handles per plane, when the importer works with a DRM device. */
  readonly handles: readonly number[];
  close(): void;
}

/** Imports a buffer or throws (a SystemError from the kernel, or any Error with a reason). */
export interface DmabufImporter {
  readonly name: string;
  importDmabuf(attributes: DmabufAttributes): ImportedDmabuf;
}

/** The part of a kms Device the PRIME importer needs (kept structural for tests). */
export interface PrimeDevice {
  readonly path: string;
  importDmabuf(fd: number): { readonly handle: number; close(): void };
}

/** Imports each plane's dma-buf into `device` through PRIME. */
export class PrimeImporter implements DmabufImporter {
  readonly name: string;
  constructor(readonly device: PrimeDevice) {
    this.name = `PRIME ${device.path}`;
  }

  importDmabuf(attributes: DmabufAttributes): ImportedDmabuf {
    const taken: Array<{ readonly handle: number; close(): void }> = [];
    try {
      for (const p of attributes.planes) taken.push(this.device.importDmabuf(p.fd.fd));
    } catch (err) {
      for (const h of taken) h.close();
      throw err;
    }
    let closed = false;
    return {
      handles: taken.map((h) => h.handle),
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
