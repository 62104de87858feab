/** dma-buf fds (and the owned fd they are made of), CPU mappings, sync_files, zwp_linux_buffer_params_v1 validation and PRIME import. */
export { Dmabuf, type CpuAccess, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START, DMA_BUF_SYNC_END } from './dmabuf.js';
export { Mapping } from './mapping.js';
export { OwnedFd } from '../fd.js';
export { SyncFile, TimeoutError, type SyncFileStatus } from './sync-file.js';
export {
  DmabufAttributes,
  PARAMS_ERROR,
  PARAMS_FLAGS,
  checkAdd,
  type ParamsProblem,
  type ParamsErrorName,
  type ParamsInput,
  type PlaneInput,
  type DmabufPlane,
  type ValidationContext,
  type Validation,
} from './attributes.js';
export { PrimeImporter, acceptAllImporter, type DmabufImporter, type ImportedDmabuf, type PrimeDevice } from './import.js';
