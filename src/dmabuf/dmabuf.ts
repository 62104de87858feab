/**
 * Dmabuf: the one owner of one dma-buf fd, with the fd-level operations: size (lseek),
 * DMA_BUF_IOCTL_SYNC brackets around CPU access, mmap, and implicit-fence interop through
 * sync_files (DMA_BUF_IOCTL_EXPORT_SYNC_FILE / IMPORT_SYNC_FILE).
 */
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

  /** Maps the whole buffer (or `length` bytes from `offset`); the Mapping owns the mapping. */
  map(opts: { writable?: boolean; offset?: bigint | number; length?: bigint | number } = {}): Mapping {
    const length = opts.length ?? this.size;
    return Mapping.map(this.fd, opts.offset ?? 0, length, opts.writable ?? true, `mapping of ${this.what}`);
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
    this.detach();
    return fd;
  }
}
