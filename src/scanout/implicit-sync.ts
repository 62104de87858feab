/**
 * Implicit sync for the frame path: a client's dma-buf may still be written by its GPU when the
 * client commits it. Before the buffer is scanned out or copied, its pending writes are waited
 * for without blocking the JS thread:
 * - scanout: the buffer's read fence (DMA_BUF_IOCTL_EXPORT_SYNC_FILE with DMA_BUF_SYNC_READ: the
 *   writers a reader must wait for) goes into the atomic commit as the plane's IN_FENCE_FD; the
 *   kernel's commit work waits for it, the non-blocking commit returns at once;
 * - copy: the copy starts after that sync_file signals (SyncFile.wait polls it on the loop).
 * A kernel without EXPORT_SYNC_FILE (before 5.20: ENOTTY) gives no fence: its atomic helpers
 * still wait for the implicit fences of a plane's buffer, and DMA_BUF_IOCTL_SYNC START waits for
 * them before a CPU read, so nothing is lost but the explicit hand-over.
 */
import { SystemError } from '../errors.js';
import { DMA_BUF_SYNC_READ } from '../dmabuf/dmabuf.js';
import { SyncFile } from '../dmabuf/sync-file.js';
import { native } from '../native.js';

/** The kernel has no DMA_BUF_IOCTL_EXPORT_SYNC_FILE: remembered after the first refusal. */
let exportUnsupported = false;

/** No write pending (the steady-state frame: no array made for it). */
const NONE: readonly number[] = [];

/**
 * One sync_file that signals when every pending write to the dma-bufs `fds` (a buffer's planes;
 * duplicates are asked once) has completed; undefined when every write has completed already
 * (a poll of each dma-buf: the steady-state frame of a finished buffer makes no sync_file) or
 * the kernel cannot export one. The caller owns the result.
 */
export function exportWriteFence(fds: readonly number[], what = 'client buffer'): SyncFile | undefined {
  if (exportUnsupported) return undefined;
  const pending = fds.length === 1 ? (native.dmabufWritesDone(fds[0]!) ? NONE : fds) : [...new Set(fds)].filter((fd) => !native.dmabufWritesDone(fd));
  if (pending.length === 0) return undefined; // the steady state: no iterator either
  let merged: SyncFile | undefined;
  for (const fd of pending) {
    let one: SyncFile;
    try {
      one = new SyncFile(native.dmabufExportSyncFile(fd, DMA_BUF_SYNC_READ), `write fence of ${what}`);
    } catch (err) {
      merged?.close();
      if (err instanceof SystemError && (err.code === 'ENOTTY' || err.code === 'EOPNOTSUPP')) {
        exportUnsupported = true;
        return undefined;
      }
      throw err;
    }
    if (!merged) {
      merged = one;
      continue;
    }
    const prev = merged;
    try {
      merged = prev.merge(one, `write fences of ${what}`);
    } finally {
      // on a failed merge too: neither input outlives this step
      prev.close();
      one.close();
    }
  }
  return merged;
}
