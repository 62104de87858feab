/** Allocation: deferred BufferRequest, allocator pool, the allocators, cache domains, pre-flushed pool. */
export * from './types.js';
export { AllocatorPool, planToJSON, type Plan, type CandidateVerdict } from './pool.js';
export { BufferRequest, copyContent, type BufferRequestOptions, type Attachment, type ReallocationEvent, type Imported } from './request.js';
export { CacheDomainTracker, CacheDomainError, type Access, type SyncCounts } from './cache-domain.js';
export { PreflushedPool, allocationKey, type PoolStats, type PooledBuffer } from './preflushed.js';
export { describedAllocator, dumbCaps, heapCaps, udmabufCaps, gbmCaps, linearOnly } from './catalog.js';
export * from './backends/index.js';
export { openSystemAllocators, findSystemAllocators, type SystemAllocators, type SystemAllocatorNodes } from './system.js';
