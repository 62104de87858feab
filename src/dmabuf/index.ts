/** dma-buf fds, CPU mappings, sync_files and PRIME import. */
export { DmaBuf, accessFlags, type CpuAccess, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START, DMA_BUF_SYNC_END } from './dmabuf.js';
export { Mapping } from './mapping.js';
export { SyncFile, TimeoutError, type SyncFileStatus } from './sync-file.js';
