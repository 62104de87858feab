/** Raw native surface of native/shm.cc (primebuf's own wl_shm: src/wayland/shm.ts). */
import type { RawCopyJob } from './copy.js';

/** A copy job whose source the callee reads itself (a wl_shm pool): copyRects' job without `src`. */
export type RawShmCopyJob = Omit<RawCopyJob, 'src'>;

/** A buffer inside a wl_shm pool's mapping, as shmPoolCopyRects reads it. */
export interface RawShmPoolSource {
  /** the pool's whole mapping (mmapFd's ArrayBuffer); must stay mapped until the copy settles */
  data: ArrayBuffer;
  /** the buffer's byte offset in the pool */
  offset: number;
  /** DRM fourcc */
  format: number;
  stride: number;
  width: number;
  height: number;
  /** read under the SIGBUS guard (a pool that may shrink under us) */
  guarded: boolean;
  /** names the buffer in error messages */
  what: string;
}

export interface ShmNative {
  /** fstat's st_size (never lseek: the file offset is shared with the client) */
  fdSize(fd: number): bigint;
  /**
   * copyRects from a buffer in a pool's mapping on libuv's pool; with `guarded`, a pool whose
   * file was truncated rejects with SystemError code 'EFAULT', syscall 'SIGBUS'. Throws
   * TypeError/RangeError synchronously for a request that does not fit.
   */
  shmPoolCopyRects(src: RawShmPoolSource, job: RawShmCopyJob): Promise<number>;
}
