/**
 * DmabufBacking: the one Backing (src/alloc/types.ts) of every allocator. It owns exactly one
 * dma-buf plus the objects that keep its memory alive (a DumbBuffer with its counted GEM
 * handle, a GbmBo), maps the buffer once on first use, and releases everything once, in
 * reverse order. Its constructor cannot fail: an allocator settles ownership of every part
 * before it builds the backing, so an error on the way closes what was made and nothing more.
 */
import { Dmabuf, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE } from '../../dmabuf/dmabuf.js';
import { ClosedError } from '../../errors.js';
import { OwnedFd } from '../../fd.js';
import { formatName } from '../../formats/index.js';
import { native } from '../../native.js';
import type { BufferDescription } from '../../constraints/solve.js';
import type { Backing, FdOwner, SyncFlags } from '../types.js';

/** Something a backing keeps alive and closes after its dma-buf. */
export interface Closable {
  close(): void;
}

/** A CPU mapping a backing keeps until it closes. */
export interface BackingMapping {
  bytes(): Uint8Array;
  close(): void;
}

/** The page size dma-buf exporters allocate in. */
export const PAGE_SIZE = 4096n;

/** `size` rounded up to whole pages. */
export function pageAlign(size: bigint): bigint {
  return ((size + PAGE_SIZE - 1n) / PAGE_SIZE) * PAGE_SIZE;
}

/** Open backings per allocator name (for leak checks). */
const live = new Map<string, number>();

/** Open backings of one allocator (by caps name), or of all allocators. */
export function liveBackings(allocator?: string): number {
  if (allocator !== undefined) return live.get(allocator) ?? 0;
  let n = 0;
  for (const v of live.values()) n += v;
  return n;
}

/**
 * Names the dma-buf after its buffer (seen in /sys/kernel/debug/dma_buf/bufinfo). Best effort:
 * a name is for debugging, so a kernel that refuses it (old kernels: ENOTTY) does not fail the
 * allocation.
 */
export function nameDmabuf(dmabuf: Dmabuf, d: BufferDescription): void {
  try {
    dmabuf.setName(`primebuf ${d.allocator} ${formatName(d.format)} ${d.width}x${d.height}`.slice(0, 31));
  } catch {
    // the buffer works the same without a name
  }
}

/** The Backing of every allocator: one owned dma-buf plus what keeps its memory alive. */
export class DmabufBacking implements Backing {
  readonly description: BufferDescription;
  readonly #dmabuf: Dmabuf;
  readonly #keep: Closable[];
  readonly #mapper: (() => BackingMapping) | undefined;
  #mapping: BackingMapping | undefined;
  #closed = false;

  /**
   * Takes ownership of `dmabuf` and of `keep` (closed after the dma-buf, last first).
   * `mapper` maps the buffer for the CPU when mmap of the dma-buf is not the way (GBM).
   */
  constructor(description: BufferDescription, dmabuf: Dmabuf, keep: Closable[] = [], mapper?: () => BackingMapping) {
    this.description = description;
    this.#dmabuf = dmabuf;
    this.#keep = keep;
    this.#mapper = mapper;
    live.set(description.allocator, (live.get(description.allocator) ?? 0) + 1);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The owned dma-buf (valid while the backing is open). */
  get dmabuf(): Dmabuf {
    if (this.#closed) throw new ClosedError(`${this.description.allocator} backing`);
    return this.#dmabuf;
  }

  exportFd(): FdOwner {
    return new OwnedFd(native.dupFd(this.dmabuf.fd), `dma-buf of ${this.description.allocator}`);
  }

  map(): Uint8Array {
    if (!this.#mapping) {
      const d = this.dmabuf; // throws ClosedError once closed
      this.#mapping = this.#mapper ? this.#mapper() : d.map({ length: this.description.size });
    }
    return this.#mapping.bytes();
  }

  /** DMA_BUF_IOCTL_SYNC; neither read nor write asked means both (the kernel needs one). */
  sync(flags: SyncFlags): void {
    const access = (flags.read ? DMA_BUF_SYNC_READ : 0) | (flags.write ? DMA_BUF_SYNC_WRITE : 0);
    this.dmabuf.sync((flags.phase === 'start' ? DMA_BUF_SYNC_START : DMA_BUF_SYNC_END) | (access || DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.set(this.description.allocator, (live.get(this.description.allocator) ?? 1) - 1);
    try {
      this.#mapping?.close();
      this.#dmabuf.close();
    } finally {
      for (const k of this.#keep.reverse()) k.close();
    }
  }
}
