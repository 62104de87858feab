/**
 * The allocators of this machine: which ones /dev offers (findSystemAllocators, opens nothing;
 * `primebuf solve` plans with it) and the pool of the open ones (openSystemAllocators), built
 * from the one implementation of each allocator in src/alloc/backends.
 */
import { existsSync, readdirSync } from 'node:fs';
import { describeKmsDevice } from '../constraints/live.js';
import { Device } from '../kms/index.js';
import { AllocatorPool } from './pool.js';
import { dmaHeapPoolAllocator, dumbPoolAllocator, gbmPoolAllocator, udmabufPoolAllocator, type PoolAllocator } from './backends/allocators.js';
import { listDmaHeaps } from './backends/heap.js';
import { UDMABUF_PATH } from './backends/udmabuf.js';
import type { MissingAllocator } from './types.js';

/** What /dev offers: DRM cards, dma-heaps, udmabuf, and the kinds missing with why. */
export interface SystemAllocatorNodes {
  /** 'card0', 'card1', ... */
  readonly cards: readonly string[];
  /** dma-heap names ('system', 'linux,cma', ...) */
  readonly heaps: readonly string[];
  readonly udmabuf: boolean;
  readonly missing: readonly MissingAllocator[];
}

/** Looks at /dev/dri, /dev/dma_heap and /dev/udmabuf (opens nothing). */
export function findSystemAllocators(): SystemAllocatorNodes {
  const missing: MissingAllocator[] = [];
  const cards = existsSync('/dev/dri') ? readdirSync('/dev/dri').filter((n) => /^card\d+$/.test(n)).sort() : [];
  if (cards.length === 0) missing.push({ name: 'dumb', kind: 'dumb', reason: 'no /dev/dri/card* on this machine' });
  const heaps = listDmaHeaps();
  if (heaps.length === 0) missing.push({ name: 'dma-heap:system', kind: 'dma-heap', reason: 'no /dev/dma_heap on this machine' });
  if (!heaps.some((h) => h !== 'system' && h !== 'system-uncached')) missing.push({ name: 'dma-heap:cma', kind: 'dma-heap', reason: 'no CMA heap in /dev/dma_heap' });
  const udmabuf = existsSync(UDMABUF_PATH);
  if (!udmabuf) missing.push({ name: 'udmabuf', kind: 'udmabuf', reason: `no ${UDMABUF_PATH} on this machine` });
  return { cards, heaps, udmabuf, missing };
}

/** The open allocators of this machine in a pool, and the cards opened for them. */
export interface SystemAllocators {
  readonly pool: AllocatorPool;
  /** The Devices opened, by card name ('card0'); closed by close(). */
  readonly devices: ReadonlyMap<string, Device>;
  /** Closes every allocator and device (buffers still open keep their own references). */
  close(): void;
}

/** The modifiers GBM is asked for on `d`: LINEAR, plus what its planes list when it has KMS. */
function gbmModifiers(d: Device): bigint[] {
  const mods = new Set<bigint>([0n]);
  if (d.nodeType === 'primary' && d.tryGetCap('DUMB_BUFFER', -1n) === 1n) {
    try {
      for (const p of describeKmsDevice(d).planes) for (const x of p.formats) mods.add(x.modifier);
    } catch {
      // no KMS (vgem): LINEAR only
    }
  }
  return [...mods];
}

/**
 * Opens every allocator present: dumb buffers on each card that does not deny
 * DRM_CAP_DUMB_BUFFER (vgem's card has no KMS, does not answer the cap, and makes dumb
 * buffers), every dma-heap (those other than system/system-uncached taken as contiguous, CMA),
 * udmabuf, and with `gbm` GBM on each card (a missing libgbm or driver is reported in
 * `pool.missing`, not thrown). `cards` limits which cards are opened.
 */
export function openSystemAllocators(opts: { cards?: readonly string[]; gbm?: boolean } = {}): SystemAllocators {
  const found = findSystemAllocators();
  const allocators: PoolAllocator[] = [];
  const missing: MissingAllocator[] = opts.cards ? found.missing.filter((m) => m.kind !== 'dumb') : [...found.missing];
  const devices = new Map<string, Device>();
  const closers: Array<{ close(): void }> = [];
  const add = (a: PoolAllocator) => {
    closers.push(a);
    allocators.push(a);
  };
  try {
    for (const c of opts.cards ?? found.cards) {
      const d = Device.open(`/dev/dri/${c}`);
      devices.set(c, d);
      closers.push(d);
      if (d.tryGetCap('DUMB_BUFFER', -1n) === 0n) missing.push({ name: `dumb@${c}`, kind: 'dumb', reason: `${c} has no DRM_CAP_DUMB_BUFFER` });
      else add(dumbPoolAllocator(d));
      if (opts.gbm) {
        try {
          add(gbmPoolAllocator(d, gbmModifiers(d)));
        } catch (err) {
          missing.push({ name: `gbm@${c}`, kind: 'gbm', reason: (err as Error).message });
        }
      }
    }
    for (const h of found.heaps) add(dmaHeapPoolAllocator(h));
    if (found.udmabuf) add(udmabufPoolAllocator());
  } catch (err) {
    for (const c of closers.reverse()) c.close();
    throw err;
  }
  return {
    pool: new AllocatorPool(allocators, missing),
    devices,
    close() {
      for (const c of closers.reverse()) c.close();
    },
  };
}
