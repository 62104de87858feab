/**
 * udmabuf: a dma-buf over the pages of a sealed memfd (F_SEAL_SHRINK, no write seal), so CPU
 * memory can be imported by a device. The memfd is closed after creation (the dma-buf keeps its
 * pages); the CPU reaches the buffer by mapping the dma-buf.
 */
import { readFileSync } from 'node:fs';
import { Dmabuf } from '../../dmabuf/dmabuf.js';
import { native } from '../../native.js';
import { Resource } from '../../resource.js';
import { pageAlign } from './backing.js';

/** The udmabuf device node. */
export const UDMABUF_PATH = '/dev/udmabuf';
/** memfd seals (fcntl F_ADD_SEALS). */
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

/** udmabuf's default size_limit_mb in bytes (drivers/dma-buf/udmabuf.c). */
export const UDMABUF_DEFAULT_LIMIT = 64n * 1024n * 1024n;

/** udmabuf's size limit: the size_limit_mb module parameter in bytes, else the default. */
export function udmabufSizeLimit(): bigint {
  try {
    return BigInt(readFileSync('/sys/module/udmabuf/parameters/size_limit_mb', 'utf8').trim()) * 1024n * 1024n;
  } catch {
    return UDMABUF_DEFAULT_LIMIT;
  }
}

/** /dev/udmabuf, open: allocate() turns a fresh sealed memfd into a dma-buf; close() closes the device fd only. */
export class UdmabufAllocator extends Resource {
  readonly #fd: number;

  /** Opens /dev/udmabuf (SystemError ENOENT/EACCES when absent). */
  static open(path = UDMABUF_PATH): UdmabufAllocator {
    return new UdmabufAllocator(native.drmOpenPath(path));
  }

  private constructor(fd: number) {
    super('udmabuf', () => native.closeFd(fd));
    this.#fd = fd;
  }

  /**
   * A dma-buf over `size` bytes at `offset` of someone else's memfd (both page-aligned; the memfd
   * sealed against shrinking, without a write seal), e.g. a client's wl_shm pool. The memfd stays
   * the caller's.
   */
  fromMemfd(memfd: number, offset: number | bigint, size: number | bigint, what?: string): Dmabuf {
    this.assertOpen();
    return new Dmabuf(native.udmabufCreate(this.#fd, memfd, BigInt(offset), BigInt(size)), what ?? `udmabuf (${size} bytes)`);
  }

  /** A dma-buf of `size` bytes (rounded up to whole pages) over a fresh sealed memfd. */
  allocate(size: bigint | number, name = 'primebuf-udmabuf'): Dmabuf {
    this.assertOpen();
    const bytes = pageAlign(BigInt(size));
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
