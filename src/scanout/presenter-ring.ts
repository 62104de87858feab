/**
 * The presenter's copy-ring buffer: a compositor-owned dumb buffer of the mode on the KMS device,
 * with what the copy needs (a CPU mapping, its dma-buf for the DMA_BUF_IOCTL_SYNC write bracket)
 * and what the commit needs (its framebuffer). One owner of all four; close() releases them
 * framebuffer first (it holds a reference to the GEM handle), then mapping, dma-buf, buffer.
 */
import { DumbBuffer } from '../alloc/backends/dumb.js';
import type { Dmabuf } from '../dmabuf/dmabuf.js';
import type { Mapping } from '../dmabuf/mapping.js';
import { DRM_FORMAT_MOD_LINEAR, formatInfo, formatName } from '../formats/index.js';
import type { Device } from '../kms/device.js';
import { Framebuffer } from '../kms/framebuffer.js';
import type { RingBufferSpec, ScanoutBuffer as RingBufferBase } from './copy-ring.js';

/** A ring buffer the presenter can put on a plane. */
export interface PresenterRingBuffer extends RingBufferBase {
  readonly fb: Framebuffer;
}

export class DumbRingBuffer implements PresenterRingBuffer {
  readonly format: number;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly memory: Mapping;
  readonly dmabuf: Dmabuf;
  readonly fb: Framebuffer;
  readonly #dumb: DumbBuffer;
  #closed = false;

  constructor(device: Device, spec: RingBufferSpec) {
    const info = formatInfo(spec.format);
    const cpp = info?.planes === 1 ? info.bytesPerBlock[0] : undefined;
    if (!cpp) throw new RangeError(`a ring buffer needs a one-plane format, not ${formatName(spec.format)}`);
    const dumb = DumbBuffer.create(device, { width: spec.width, height: spec.height, bpp: cpp * 8 });
    const made: Array<{ close(): void }> = [dumb];
    try {
      const memory = dumb.map();
      made.push(memory);
      const dmabuf = dumb.exportDmabuf();
      made.push(dmabuf);
      this.fb = Framebuffer.create(device, {
        width: spec.width,
        height: spec.height,
        format: spec.format,
        modifier: DRM_FORMAT_MOD_LINEAR,
        planes: [{ handle: dumb.handle, pitch: dumb.pitch }],
      });
      this.memory = memory;
      this.dmabuf = dmabuf;
    } catch (err) {
      for (const r of made.reverse()) r.close();
      throw err;
    }
    this.#dumb = dumb;
    this.format = spec.format;
    this.width = spec.width;
    this.height = spec.height;
    this.stride = dumb.pitch;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.fb.close();
    this.memory.close();
    this.dmabuf.close();
    this.#dumb.close();
  }
}
