/** Raw native surface of native/dmabuf.cc (dma-buf and sync_file fds) and native/alloc.cc. */

export interface RawMapping {
  /** external memory, no finalizer: munmapFd detaches it */
  buffer: ArrayBuffer;
  address: bigint;
}

export interface RawSyncFileInfo {
  name: string;
  /** 1 signaled, 0 active, < 0 error */
  status: number;
  numFences: number;
}

export interface DmabufNative {
  /** lseek(fd, 0, SEEK_END) (then back to 0) */
  dmabufSize(fd: number): bigint;
  /** DMA_BUF_IOCTL_SYNC */
  dmabufSync(fd: number, flags: number): void;
  /** DMA_BUF_IOCTL_SYNC on libuv's thread pool (START may wait on fences); the fd must stay open until it settles */
  dmabufSyncAsync(fd: number, flags: number): Promise<void>;
  dmabufExportSyncFile(fd: number, flags: number): number;
  /** poll(POLLIN, timeout 0): true when every write fence of the dma-buf has signaled */
  dmabufWritesDone(fd: number): boolean;
  dmabufImportSyncFile(fd: number, syncFd: number, flags: number): void;
  dmabufSetName(fd: number, name: string): void;
  syncFileInfo(fd: number): RawSyncFileInfo;
  syncFileMerge(fd1: number, fd2: number, name?: string): number;
  /** MAP_SHARED mapping of an fd (dma-buf, or a DRM fd at a dumb-buffer offset) */
  mmapFd(fd: number, offset: bigint | number, length: bigint | number, writable?: boolean): RawMapping;
  /** detaches `buffer`, then munmap */
  munmapFd(address: bigint, length: bigint | number, buffer?: ArrayBuffer): void;
  /** sysconf(_SC_PAGESIZE): mmap offsets are multiples of it */
  readonly pageSize: number;
}

export interface RawDumb {
  handle: number;
  pitch: number;
  size: bigint;
}

export interface RawGbmPlane {
  fd: number;
  stride: number;
  offset: number;
  /** libgbm's GEM handle of the plane on the GBM device's fd (gbm_bo_destroy closes it) */
  handle: number;
}

export interface RawGbmBo {
  bo: unknown;
  modifier: bigint;
  format: number;
  planes: RawGbmPlane[];
}

export interface AllocNative {
  dumbCreate(fd: number, width: number, height: number, bpp: number, flags?: number): RawDumb;
  dumbMapOffset(fd: number, handle: number): bigint;
  dumbDestroy(fd: number, handle: number): void;
  dmaHeapAlloc(heapFd: number, len: bigint | number): number;
  memfdCreate(name: string, allowSealing?: boolean): number;
  ftruncateFd(fd: number, size: bigint | number): void;
  addSeals(fd: number, seals: number): void;
  getSeals(fd: number): number;
  udmabufCreate(udmabufFd: number, memfd: number, offset: bigint | number, size: bigint | number): number;
  /** whether the addon was built with libgbm */
  gbmAvailable: boolean;
  /**
   * opens a DRM node for libgbm alone (O_RDWR | O_CLOEXEC), dropping DRM master if the open made
   * it master; a primary node is authenticated through `authFd` (best effort)
   */
  gbmOpenNode?(path: string, authFd?: number): number;
  gbmCreateDevice?(fd: number): unknown;
  gbmDestroyDevice?(device: unknown): void;
  gbmBackendName?(device: unknown): string;
  gbmIsFormatSupported?(device: unknown, format: number, usage: number): boolean;
  gbmBoCreate?(device: unknown, width: number, height: number, format: number, modifiers: bigint[] | null, usage: number): RawGbmBo;
  gbmBoDestroy?(bo: unknown): void;
  gbmBoMap?(bo: unknown, width: number, height: number, flags: number): { buffer: ArrayBuffer; stride: number; mapData: unknown };
  gbmBoUnmap?(bo: unknown, mapData: unknown, buffer?: ArrayBuffer): void;
}
