/**
 * The small interface between allocation policy (pool.ts, request.ts) and allocation
 * mechanism (src/alloc/backends/*: dumb buffers, dma-heaps, udmabuf, GBM). Policy only ever
 * sees these types, so host tests inject fake allocators and the vkms tests real ones.
 */
import type { BufferDescription, CpuCache, Layout, LayoutRules } from '../constraints/solve.js';

export type AllocatorKind = 'dumb' | 'dma-heap' | 'udmabuf' | 'gbm';

/** What an allocator can make, known before allocating anything. */
export interface AllocatorCaps {
  /** Unique name: 'dumb@card0', 'dma-heap:system', 'dma-heap:linux,cma', 'udmabuf', 'gbm@card0'. */
  readonly name: string;
  readonly kind: AllocatorKind;
  /** The device that allocates (dumb, GBM): buffers come from its memory and it exports them. */
  readonly device?: string;
  /** Physically contiguous memory (a CMA heap; dumb buffers of a DMA-GEM driver). */
  readonly contiguous: boolean;
  /** The CPU mapping type it gives. */
  readonly cpuCache: CpuCache;
  /** Largest allocation in bytes (udmabuf's size_limit_mb), when limited. */
  readonly maxSize?: bigint;
  /**
   * 'caller': the allocator takes a byte size and primebuf lays the planes out (heaps,
   * udmabuf). 'driver': the driver picks the pitch (dumb, GBM); primebuf checks the result.
   */
  readonly layoutBy: 'caller' | 'driver';
}

/** A single allocation decided by the pool: everything the backend needs. */
export interface AllocationPlan {
  readonly allocator: string;
  readonly format: number;
  /** The modifier to allocate with (the backend must produce exactly this one). */
  readonly modifier: bigint;
  readonly width: number;
  readonly height: number;
  /** The layout to produce ('caller' allocators) or the minimum ('driver' allocators). */
  readonly layout: Layout;
  /** Alignments the result must meet. */
  readonly rules: LayoutRules;
  /** Preferred CPU mapping (write-combined when a member is not coherent). */
  readonly writeCombine: boolean;
}

/** DMA_BUF_IOCTL_SYNC flags. */
export interface SyncFlags {
  readonly phase: 'start' | 'end';
  readonly read: boolean;
  readonly write: boolean;
}

/** An fd the receiver owns and closes (OwnedFd satisfies this). */
export interface FdOwner {
  readonly fd: number;
  close(): void;
}

/** One allocated buffer. Exactly one owner (the BufferRequest or the pre-flushed pool). */
export interface Backing {
  readonly description: BufferDescription;
  readonly closed: boolean;
  /** A new fd for the dma-buf (F_DUPFD_CLOEXEC); the caller owns it. */
  exportFd(): FdOwner;
  /** The CPU mapping of the whole buffer (made on first use, kept until close). */
  map(): Uint8Array;
  /** DMA_BUF_IOCTL_SYNC on the dma-buf. */
  sync(flags: SyncFlags): void;
  close(): void;
}

export interface Allocator {
  readonly caps: AllocatorCaps;
  /** Can it lay out this format with this modifier (heaps: LINEAR and a known layout only)? */
  canAllocate(format: number, modifier: bigint): boolean;
  /** Allocates; throws SystemError on kernel failure. */
  allocate(plan: AllocationPlan): Backing;
}

/** An allocator that is not present on this machine, and why (no /dev/udmabuf, no GBM). */
export interface MissingAllocator {
  readonly name: string;
  readonly kind: AllocatorKind;
  readonly reason: string;
}
