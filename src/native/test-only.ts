/**
 * Natives that exist only for tests: they are not part of primebuf's shipped surface, nothing
 * in src/ may use them, and they may change without notice. src/native.ts exports them as
 * `testNative`, typed apart from `native`, so a use outside test/ and bench/ stands out.
 */
export interface TestOnlyNative {
  /** Number of open fds of this process (/proc/self/fd), for leak checks. */
  countOpenFds(): number;
  /** usleep(ms) on a libuv pool thread through RunOnPool (native/common.h): the mechanism's self-test. */
  poolSleep(ms: number): Promise<void>;
  /** memcpy of min(src, dst) bytes in a pool job (bench/copy.ts: a baseline on the copy's own footing) */
  poolMemcpy(src: ArrayBufferView, dst: ArrayBufferView): Promise<number>;
  /**
   * Nanoseconds copyRects' jobs have spent in their copy loops so far (pool thread, monotonic
   * clock, from the first byte to the store fence): bench/copy.ts's damage-proportional part.
   */
  copyWorkNs(): number;
  /**
   * DRM_IOCTL_VGEM_FENCE_ATTACH on a vgem fd: an unsignaled fence (a write fence when `write`) on
   * GEM object `handle`; returns the fence id for vgemFenceSignal. vgem signals it by itself
   * after about 10 s.
   */
  vgemFenceAttach(fd: number, handle: number, write: boolean): number;
  /**
   * The GEM handles in [1, limit] that exist on DRM fd `fd`, probed handle by handle with
   * DRM_IOCTL_MODE_MAP_DUMB (a primary node) or DRM_IOCTL_PRIME_HANDLE_TO_FD (a render node,
   * `render`): the kernel's answer for leak checks (test/vkms/leak.ts).
   */
  gemHandlesProbe(fd: number, render: boolean, limit: number): number[];
  /** DRM_IOCTL_VGEM_FENCE_SIGNAL: signals fence `fence` of this vgem fd (ETIMEDOUT when vgem already did). */
  vgemFenceSignal(fd: number, fence: number): void;
}
