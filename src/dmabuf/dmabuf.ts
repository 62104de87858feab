/**
 * Dmabuf: the one owner of one dma-buf fd, with the fd-level operations: size (lseek),
 * DMA_BUF_IOCTL_SYNC brackets around CPU access, mmap, and implicit-fence interop through
 * sync_files (DMA_BUF_IOCTL_EXPORT_SYNC_FILE / IMPORT_SYNC_FILE).
 */
import { PrimebufError } from '../errors.js';
import { native } from '../native.js';
import { Resource } from '../resource.js';
import { Mapping } from './mapping.js';
import { SyncFile } from './sync-file.js';

/** DMA_BUF_SYNC_* bits (include/uapi/linux/dma-buf.h). */
export const DMA_BUF_SYNC_READ = 1;
export const DMA_BUF_SYNC_WRITE = 2;
export const DMA_BUF_SYNC_RW = 3;
export const DMA_BUF_SYNC_START = 0;
export const DMA_BUF_SYNC_END = 4;

export type CpuAccess = 'read' | 'write' | 'rw';

export function accessFlags(access: CpuAccess): number {
  return access === 'read' ? DMA_BUF_SYNC_READ : access === 'write' ? DMA_BUF_SYNC_WRITE : DMA_BUF_SYNC_RW;
}

function toBigInt(v: bigint | number, name: string): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw new RangeError(`map ${name} ${v} is not a safe integer`);
  return BigInt(v);
}

/**
 * The one owner of a dma-buf fd.
 *
 * Work off the JS thread: `syncAsync`, `beginCpuAccessAsync`, `endCpuAccessAsync` and
 * `withCpuAccess` run DMA_BUF_IOCTL_SYNC on libuv's thread pool (a START waits there for the
 * buffer's fences, which may take a frame or more), and return promises. While such a job (or a
 * whole `withCpuAccess` bracket) is pending, close() marks the Dmabuf closed at once (further use
 * throws ClosedError) but keeps the fd open until the last job has settled, so a pool thread never
 * uses a closed (or reused) fd number; the jobs themselves finish normally with their own result.
 * The synchronous `sync`/`beginCpuAccess`/`endCpuAccess` block the JS thread while fences are
 * pending: use them only on buffers known to be idle.
 */
export class Dmabuf extends Resource {
  readonly #fd: number;
  #size: bigint | null | undefined;

  /** Takes ownership of `fd`. */
  constructor(fd: number, what = `dma-buf fd ${fd}`) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`Dmabuf: ${fd} is not a file descriptor`);
    super(what, () => native.closeFd(fd));
    this.#fd = fd;
  }

  /** A new owner of a duplicate (F_DUPFD_CLOEXEC) of an fd someone else owns. */
  static dupFrom(fd: number, what?: string): Dmabuf {
    const d = native.dupFd(fd);
    return new Dmabuf(d, what ?? `dma-buf fd ${d}`);
  }

  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  /** The dma-buf's size in bytes (lseek SEEK_END); throws SystemError when it cannot be known. */
  get size(): bigint {
    this.assertOpen();
    if (this.#size === undefined) this.#size = native.dmabufSize(this.#fd);
    return this.#size as bigint;
  }

  /** The size, or null when lseek is not supported on this fd. */
  trySize(): bigint | null {
    try {
      return this.size;
    } catch {
      return null;
    }
  }

  /** DMA_BUF_IOCTL_SYNC with raw flags. */
  sync(flags: number): void {
    native.dmabufSync(this.fd, flags);
  }

  /** Starts a CPU access bracket (cache maintenance for non-coherent devices). */
  beginCpuAccess(access: CpuAccess = 'rw'): void {
    this.sync(DMA_BUF_SYNC_START | accessFlags(access));
  }

  /** Ends a CPU access bracket. */
  endCpuAccess(access: CpuAccess = 'rw'): void {
    this.sync(DMA_BUF_SYNC_END | accessFlags(access));
  }

  /** DMA_BUF_IOCTL_SYNC with raw flags, on libuv's thread pool (see the class comment on close). */
  syncAsync(flags: number): Promise<void> {
    return this.#onPool((fd) => native.dmabufSyncAsync(fd, flags));
  }

  /**
   * Starts a CPU access bracket off the JS thread: resolves once the buffer's fences (the
   * writers' for 'read', everyone's for 'write'/'rw') have signaled and caches are prepared.
   */
  beginCpuAccessAsync(access: CpuAccess = 'rw'): Promise<void> {
    return this.syncAsync(DMA_BUF_SYNC_START | accessFlags(access));
  }

  /** Ends a CPU access bracket off the JS thread (cache maintenance for non-coherent devices). */
  endCpuAccessAsync(access: CpuAccess = 'rw'): Promise<void> {
    return this.syncAsync(DMA_BUF_SYNC_END | accessFlags(access));
  }

  /**
   * Brackets `fn` with CPU access: START (off the JS thread, waiting for fences), then `fn`
   * (sync or async), then END, also when `fn` throws (its error wins over an END failure).
   * Resolves with `fn`'s result. The fd stays open for the whole bracket even if close() is
   * called meanwhile, so END always reaches the buffer it started on.
   */
  withCpuAccess<T>(access: CpuAccess, fn: () => T | Promise<T>): Promise<T> {
    const flags = accessFlags(access);
    return this.#onPool(async (fd) => {
      await native.dmabufSyncAsync(fd, DMA_BUF_SYNC_START | flags);
      let result: T;
      try {
        result = await fn();
      } catch (err) {
        await native.dmabufSyncAsync(fd, DMA_BUF_SYNC_END | flags).catch(() => undefined);
        throw err;
      }
      await native.dmabufSyncAsync(fd, DMA_BUF_SYNC_END | flags);
      return result;
    });
  }

  /**
   * Runs `job` (pool work that uses `fd`, e.g. a copy that brackets itself with
   * DMA_BUF_IOCTL_SYNC) with the fd held open: a close() meanwhile closes the fd only when the
   * last such job has settled, so a pool thread never meets a closed or reused fd number.
   */
  keepOpen<T>(job: () => Promise<T>): Promise<T> {
    return this.hold(job);
  }

  /** Runs `job` with the fd held open: a close() meanwhile closes the fd when the last job settles. */
  #onPool<T>(job: (fd: number) => Promise<T>): Promise<T> {
    const fd = this.fd;
    return this.hold(() => job(fd));
  }

  /**
   * Maps the whole buffer, or `length` bytes from `offset` (default: to the end of the buffer);
   * the Mapping owns the mapping. `offset` must be page-aligned and inside the buffer, and the
   * range must end within it (RangeError otherwise, before any syscall). When the size is unknown
   * (lseek unsupported) an explicit length is mapped unchecked and the kernel decides.
   */
  map(opts: { writable?: boolean; offset?: bigint | number; length?: bigint | number } = {}): Mapping {
    const offset = toBigInt(opts.offset ?? 0, 'offset');
    if (offset < 0n) throw new RangeError(`${this.what}: map offset ${offset} is negative`);
    if (offset % BigInt(native.pageSize) !== 0n) throw new RangeError(`${this.what}: map offset ${offset} is not a multiple of the page size ${native.pageSize}`);
    const size = opts.length === undefined ? this.size : this.trySize();
    if (size !== null && offset >= size) throw new RangeError(`${this.what}: map offset ${offset} is not inside its ${size} bytes`);
    const length = opts.length === undefined ? (size as bigint) - offset : toBigInt(opts.length, 'length');
    if (length <= 0n) throw new RangeError(`${this.what}: map length ${length} is not positive`);
    if (size !== null && offset + length > size) throw new RangeError(`${this.what}: map of ${length} bytes at ${offset} ends beyond its ${size} bytes`);
    return Mapping.map(this.fd, offset, length, opts.writable ?? true, `mapping of ${this.what}`);
  }

  /**
   * A sync_file of the buffer's current implicit fences: 'read' gives the fences a reader
   * must wait for (writers), 'write'/'rw' also the readers.
   */
  exportSyncFile(access: CpuAccess = 'rw'): SyncFile {
    return new SyncFile(native.dmabufExportSyncFile(this.fd, accessFlags(access)), `sync_file of ${this.what}`);
  }

  /** Adds a fence to the buffer's implicit fences ('write': as a writer, 'read': as a reader). */
  importSyncFile(syncFile: SyncFile, access: CpuAccess = 'write'): void {
    native.dmabufImportSyncFile(this.fd, syncFile.fd, accessFlags(access));
  }

  /** DMA_BUF_SET_NAME (shows in /sys/kernel/debug/dma_buf/bufinfo). */
  setName(name: string): void {
    native.dmabufSetName(this.fd, name);
  }

  /** Another owner of the same dma-buf. */
  dup(): Dmabuf {
    return new Dmabuf(native.dupFd(this.fd), `${this.what} (dup)`);
  }

  /** Gives up ownership: the caller owns the returned fd. */
  release(): number {
    const fd = this.fd;
    if (this.busy) throw new PrimebufError(`${this.what}: cannot release while thread-pool jobs use it`);
    this.detach();
    return fd;
  }
}
