/** Allocation: deferred BufferRequest, allocator pool, the allocators, cache domains, pre-flushed pool. */
export type * from './types.js';
export { AllocatorPool, type Plan, type CandidateVerdict } from './pool.js';
export { BufferRequest, type BufferRequestOptions, type Attachment, type ReallocationEvent, type Imported } from './request.js';
export { CacheDomainTracker, CacheDomainError, type Access, type SyncCounts } from './cache-domain.js';
export { PreflushedPool, type PoolStats, type PooledBuffer } from './preflushed.js';
export {
  DumbBuffer,
  DmaHeap,
  listDmaHeaps,
  UdmabufAllocator,
  udmabufSizeLimit,
  GbmDevice,
  GbmBo,
  type GbmMapping,
  GBM_BO_USE_SCANOUT,
  GBM_BO_USE_CURSOR,
  GBM_BO_USE_RENDERING,
  GBM_BO_USE_WRITE,
  GBM_BO_USE_LINEAR,
  GBM_BO_TRANSFER_READ,
  GBM_BO_TRANSFER_WRITE,
  GBM_BO_TRANSFER_READ_WRITE,
  DmabufBacking,
  dumbPoolAllocator,
  dmaHeapPoolAllocator,
  udmabufPoolAllocator,
  gbmPoolAllocator,
  type DumbBufferOptions,
  type GbmBoPlane,
  type BackingMapping,
  type Closable,
  type PoolAllocator,
} from './backends/index.js';
export { openSystemAllocators, findSystemAllocators, type SystemAllocators, type SystemAllocatorNodes } from './system.js';
