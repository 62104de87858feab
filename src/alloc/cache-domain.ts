/**
 * Cache-domain tracking for one buffer: DMA_BUF_IOCTL_SYNC only where the CPU touches the
 * buffer between device accesses.
 *
 *   CPU begins access   START(read/write) unless a START bracket is already open and covers it
 *   CPU ends access     nothing yet: the bracket stays open while only the CPU uses the buffer
 *   a device accesses   END(flags of the open bracket) if one is open; otherwise nothing
 *                       (a device-to-device hand-over costs no sync)
 *   flush()             END now if open (the pre-flushed pool flushes before keeping a buffer)
 *
 * So a run of CPU accesses costs one START and one END, however long; a run of device accesses
 * costs nothing. The counts say what was done and what was skipped.
 */
import { PrimebufError } from '../errors.js';
import type { SyncFlags } from './types.js';

/** How the CPU touches a buffer. */
export type Access = 'read' | 'write' | 'readwrite';

/** DMA_BUF_IOCTL_SYNC STARTs and ENDs issued, and brackets skipped as unnecessary. */
export interface SyncCounts {
  /** DMA_BUF_IOCTL_SYNC START issued. */
  readonly starts: number;
  /** DMA_BUF_IOCTL_SYNC END issued. */
  readonly ends: number;
  /** Accesses that needed no ioctl (bracket already open, or device-to-device hand-over). */
  readonly skipped: number;
}

/** Using the buffer in a way that breaks the cache-domain protocol. */
export class CacheDomainError extends PrimebufError {
  override name = 'CacheDomainError';
  readonly code = 'ERR_PRIMEBUF_CACHE_DOMAIN';
}

const reads = (a: Access) => a === 'read' || a === 'readwrite';
const writes = (a: Access) => a === 'write' || a === 'readwrite';

/** One buffer's cache domain (CPU or device): issues DMA_BUF_IOCTL_SYNC only when the CPU touched the buffer between device accesses. */
export class CacheDomainTracker {
  readonly #sync: (flags: SyncFlags) => void;
  #open = false;
  #read = false;
  #write = false;
  #cpuActive = 0;
  #starts = 0;
  #ends = 0;
  #skipped = 0;
  #lastDevice: string | undefined;

  /** @param sync issues DMA_BUF_IOCTL_SYNC on the buffer (Backing.sync). */
  constructor(sync: (flags: SyncFlags) => void) {
    this.#sync = sync;
  }

  /** 'cpu' while a START bracket is open, else 'device'. */
  get domain(): 'cpu' | 'device' {
    return this.#open ? 'cpu' : 'device';
  }

  /** The device that accessed the buffer last (undefined before any). */
  get lastDevice(): string | undefined {
    return this.#lastDevice;
  }

  get counts(): SyncCounts {
    return { starts: this.#starts, ends: this.#ends, skipped: this.#skipped };
  }

  /** The CPU is about to read and/or write the buffer's mapping. */
  beginCpu(access: Access): void {
    const r = reads(access), w = writes(access);
    if (this.#open && (!r || this.#read) && (!w || this.#write)) {
      this.#skipped++;
    } else {
      const read = r || this.#read;
      const write = w || this.#write;
      this.#sync({ phase: 'start', read, write });
      this.#starts++;
      this.#open = true;
      this.#read = read;
      this.#write = write;
    }
    this.#cpuActive++;
  }

  /** The CPU is done with this access (the bracket stays open until a device needs it). */
  endCpu(): void {
    if (this.#cpuActive === 0) throw new CacheDomainError('endCpu() without beginCpu()');
    this.#cpuActive--;
  }

  /** A device (display, GPU, encoder) is about to use the buffer. */
  deviceAccess(device: string): void {
    if (this.#cpuActive > 0) {
      throw new CacheDomainError(`${device} would access the buffer while a CPU access is still in progress (call endCpuAccess() first)`);
    }
    this.#lastDevice = device;
    if (this.#open) this.#end();
    else this.#skipped++;
  }

  /** Ends an open bracket now (e.g. before the buffer rests in a pre-flushed pool). */
  flush(): boolean {
    if (this.#cpuActive > 0) throw new CacheDomainError('flush() while a CPU access is in progress');
    if (!this.#open) return false;
    this.#end();
    return true;
  }

  #end(): void {
    this.#sync({ phase: 'end', read: this.#read, write: this.#write });
    this.#ends++;
    this.#open = false;
    this.#read = false;
    this.#write = false;
  }
}
