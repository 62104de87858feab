/**
 * udmabuf: a dma-buf over the pages of a sealed memfd (F_SEAL_SHRINK, no write seal), so CPU
 * memory can be imported by a device. The memfd is closed after creation (the dma-buf keeps its
 * pages); the CPU reaches the buffer by mapping the dma-buf.
 */
import { readFileSync } from 'node:fs';
import { Dmabuf } from '../../dmabuf/dmabuf.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';

export const UDMABUF_PATH = '/dev/udmabuf';
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;
const PAGE = 4096n;

/** udmabuf's size_limit_mb module parameter in bytes, when readable. */
export function udmabufSizeLimit(): bigint | null {
  try {
    return BigInt(readFileSync('/sys/module/udmabuf/parameters/size_limit_mb', 'utf8').trim()) * 1024n * 1024n;
  } catch {
    return null;
  }
}

export class UdmabufAllocator extends Resource {
  readonly #fd: number;

  static open(path = UDMABUF_PATH): UdmabufAllocator {
    return new UdmabufAllocator(native.drmOpenPath(path));
  }

  private constructor(fd: number) {
    super('udmabuf', () => native.closeFd(fd));
    this.#fd = fd;
  }

  /** A dma-buf of `size` bytes (rounded up to whole pages) over a fresh sealed memfd. */
  allocate(size: bigint | number, name = 'primebuf-udmabuf'): Dmabuf {
    this.assertOpen();
    const bytes = ((BigInt(size) + PAGE - 1n) / PAGE) * PAGE;
    const memfd = native.memfdCreate(name, true);
    try {
      native.ftruncateFd(memfd, bytes);
      native.addSeals(memfd, F_SEAL_SHRINK | F_SEAL_SEAL);
      return new Dmabuf(native.udmabufCreate(this.#fd, memfd, 0n, bytes), `udmabuf (${bytes} bytes)`);
    } finally {
      native.closeFd(memfd);
    }
  }
}
