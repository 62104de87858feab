/**
 * What each kind of allocator can make, as capabilities (policy's view of the mechanism):
 *   dumb@<card>        KMS dumb buffers: LINEAR only, laid out by the driver, allocated on that
 *                      device (so always importable by it); exported with PRIME
 *   dma-heap:system    pages from the system heap: LINEAR (primebuf lays it out), not
 *                      contiguous, cached mapping
 *   dma-heap:<cma>     a CMA heap ('linux,cma', 'reserved', ...): physically contiguous
 *   udmabuf            a sealed memfd turned into a dma-buf: LINEAR, not contiguous, cached,
 *                      limited by the udmabuf module's size_limit_mb (64 MiB by default)
 *   gbm@<card>         GBM on a GPU driver: tiled/compressed modifiers the driver lists
 * `describedAllocator` makes an Allocator that only plans (for `primebuf solve` on a machine
 * without the devices, and for tests); the real ones are in backends/allocators.ts.
 */
import { DRM_FORMAT_MOD_LINEAR, formatInfo } from '../formats/index.js';
import { NativeUnavailableError } from '../errors.js';
import type { Allocator, AllocatorCaps } from './types.js';
import { UDMABUF_DEFAULT_LIMIT } from './backends/udmabuf.js';

/** LINEAR, and a format whose every plane has a byte size per block (a CPU-known layout). */
export function linearOnly(format: number, modifier: bigint): boolean {
  if (modifier !== DRM_FORMAT_MOD_LINEAR) return false;
  const info = formatInfo(format);
  return info !== undefined && info.planes > 0 && info.bytesPerBlock.slice(0, info.planes).every((b) => b > 0);
}

export function dumbCaps(device: string, opts: { contiguous?: boolean; cpuCache?: AllocatorCaps['cpuCache'] } = {}): AllocatorCaps {
  return { name: `dumb@${device}`, kind: 'dumb', device, contiguous: opts.contiguous ?? false, cpuCache: opts.cpuCache ?? 'cached', layoutBy: 'driver' };
}

export function heapCaps(heap: string): AllocatorCaps {
  const contiguous = heap !== 'system' && heap !== 'system-uncached';
  return { name: `dma-heap:${heap}`, kind: 'dma-heap', contiguous, cpuCache: heap === 'system-uncached' ? 'uncached' : 'cached', layoutBy: 'caller' };
}

export function udmabufCaps(maxSize: bigint = UDMABUF_DEFAULT_LIMIT): AllocatorCaps {
  return { name: 'udmabuf', kind: 'udmabuf', contiguous: false, cpuCache: 'cached', maxSize, layoutBy: 'caller' };
}

export function gbmCaps(device: string): AllocatorCaps {
  return { name: `gbm@${device}`, kind: 'gbm', device, contiguous: false, cpuCache: 'write-combined', layoutBy: 'driver' };
}

/**
 * An allocator that plans but cannot allocate: `canAllocate` says what the kind can make
 * (LINEAR for dumb/heap/udmabuf; the given modifiers for GBM).
 */
export function describedAllocator(caps: AllocatorCaps, modifiers?: readonly bigint[]): Allocator {
  const canAllocate =
    caps.kind === 'gbm' && modifiers !== undefined
      ? (f: number, m: bigint) => formatInfo(f) !== undefined && modifiers.includes(m)
      : linearOnly;
  return {
    caps,
    canAllocate,
    allocate() {
      throw new NativeUnavailableError(`${caps.name} is described, not present: it can plan (dry run) but not allocate`);
    },
  };
}
