/** Allocation mechanism (dumb buffers, dma-heaps, udmabuf, GBM), the one Backing, and each behind the pool's Allocator interface. */
export { DumbBuffer, type DumbBufferOptions } from './dumb.js';
export { DmaHeap, listDmaHeaps, DMA_HEAP_DIR } from './heap.js';
export { UdmabufAllocator, udmabufSizeLimit, UDMABUF_PATH, UDMABUF_DEFAULT_LIMIT, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE } from './udmabuf.js';
export {
  GbmDevice,
  GbmBo,
  GbmMapping,
  gbmBuilt,
  liveGbmBoCount,
  GBM_BO_USE_SCANOUT,
  GBM_BO_USE_CURSOR,
  GBM_BO_USE_RENDERING,
  GBM_BO_USE_WRITE,
  GBM_BO_USE_LINEAR,
  GBM_BO_TRANSFER_READ,
  GBM_BO_TRANSFER_WRITE,
  GBM_BO_TRANSFER_READ_WRITE,
  type GbmBoPlane,
} from './gbm.js';
export { DmabufBacking, liveBackings, nameDmabuf, pageAlign, PAGE_SIZE, type BackingMapping, type Closable } from './backing.js';
export { dumbPoolAllocator, dmaHeapPoolAllocator, udmabufPoolAllocator, gbmPoolAllocator, type PoolAllocator } from './allocators.js';
