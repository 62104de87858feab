/** Allocation mechanism: dumb buffers, dma-heaps, udmabuf, GBM (policy lives in src/alloc). */
export { DumbBuffer, type DumbBufferOptions } from './dumb.js';
export { DmaHeap, listDmaHeaps, DMA_HEAP_DIR } from './heap.js';
export { UdmabufAllocator, udmabufSizeLimit, UDMABUF_PATH, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE } from './udmabuf.js';
export { GbmDevice, GbmBo, gbmBuilt, GBM_BO_USE_SCANOUT, GBM_BO_USE_CURSOR, GBM_BO_USE_RENDERING, GBM_BO_USE_WRITE, GBM_BO_USE_LINEAR, type GbmBoPlane } from './gbm.js';
export { DmabufBacking, gbmAllocator } from './allocators.js';
