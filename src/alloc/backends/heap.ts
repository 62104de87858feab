/** dma-heaps (/dev/dma_heap/<name>: 'system', 'linux,cma', ...): dma-bufs of a byte size. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Dmabuf } from '../../dmabuf/dmabuf.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';

/** Where the dma-heaps are. */
export const DMA_HEAP_DIR = '/dev/dma_heap';

/** The heaps this machine has (names), [] without /dev/dma_heap. */
export function listDmaHeaps(dir = DMA_HEAP_DIR): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** An open dma-heap (/dev/dma_heap/<name>) that allocates dma-bufs of a byte size; close() closes the heap fd only. */
export class DmaHeap extends Resource {
  readonly name: string;
  readonly #fd: number;

  /** Opens /dev/dma_heap/<name>; SystemError (ENOENT, EACCES) when it is not there. */
  static open(name = 'system', dir = DMA_HEAP_DIR): DmaHeap {
    const path = join(dir, name);
    return new DmaHeap(name, native.drmOpenPath(path));
  }

  private constructor(name: string, fd: number) {
    super(`dma-heap ${name}`, () => native.closeFd(fd));
    this.name = name;
    this.#fd = fd;
  }

  /** DMA_HEAP_IOCTL_ALLOC: a new dma-buf of `size` bytes (rounded up to pages by the kernel). */
  allocate(size: bigint | number): Dmabuf {
    this.assertOpen();
    return new Dmabuf(native.dmaHeapAlloc(this.#fd, BigInt(size)), `dma-heap ${this.name} buffer (${size} bytes)`);
  }
}
