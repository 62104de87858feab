/**
 * GEM handles: per device, not counted by the kernel. Importing the same dma-buf twice into one
 * device returns the same handle and a single GEM_CLOSE frees it for both, so every handle
 * primebuf obtains on a Device (PRIME import, dumb create, a GBM bo's planes) goes through the
 * device's one counted table, and each holder owns a GemHandle reference; the last reference's
 * close() does GEM_CLOSE. libgbm works on a drm_file of its own (src/alloc/backends/gbm.ts):
 * its handles never appear on a Device, and gbm_bo_destroy is their only closer.
 */
import { native } from '../native.js';
import { Resource } from '../resource.js';

/** All live counted handles of every table, for leak checks: `device path -> handle -> count`. */
const allTables = new Set<GemHandleTable>();

export class GemHandleTable {
  readonly #counts = new Map<number, number>();
  /** the open GemHandle references of this table (weakly: a leaked one is still finalized) */
  readonly #holders = new Set<WeakRef<GemHandle>>();
  #fd: number;
  readonly name: string;

  constructor(fd: number, name: string) {
    this.#fd = fd;
    this.name = name;
    allTables.add(this);
  }

  /**
   * Closes every open GemHandle reference of this table (the last one of each handle does
   * GEM_CLOSE while the fd is still open), then invalidates the table. The device calls it
   * just before closing its fd.
   */
  closeAll(): void {
    for (const w of [...this.#holders]) {
      try {
        w.deref()?.close();
      } catch {
        // GEM_CLOSE failed: the fd close that follows frees the handle all the same
      }
    }
    this.#holders.clear();
    this.invalidate();
  }

  /** @internal a GemHandle reference was made (track) or released (untrack) */
  track(h: WeakRef<GemHandle>): void {
    this.#holders.add(h);
  }

  /** @internal */
  untrack(h: WeakRef<GemHandle>): void {
    this.#holders.delete(h);
  }

  /** The device fd is going away: the kernel frees every handle with it. */
  invalidate(): void {
    this.#fd = -1;
    this.#counts.clear();
    allTables.delete(this);
  }

  get valid(): boolean {
    return this.#fd >= 0;
  }

  /** Number of distinct live handles. */
  get size(): number {
    return this.#counts.size;
  }

  /** References held on `handle` (0 when not in the table). */
  count(handle: number): number {
    return this.#counts.get(handle) ?? 0;
  }

  handles(): number[] {
    return [...this.#counts.keys()].sort((a, b) => a - b);
  }

  /** Adds one reference to a handle the kernel just returned (or that is already counted). */
  ref(handle: number): void {
    this.#counts.set(handle, (this.#counts.get(handle) ?? 0) + 1);
  }

  /** Drops one reference; the last one closes the handle in the kernel. */
  unref(handle: number): void {
    const n = this.#counts.get(handle);
    if (n === undefined || this.#fd < 0) return;
    if (n > 1) {
      this.#counts.set(handle, n - 1);
      return;
    }
    this.#counts.delete(handle);
    native.drmGemClose(this.#fd, handle);
  }

  /** PRIME import: the kernel's handle for this dma-buf, with one more reference counted. */
  importFd(dmabufFd: number): number {
    if (this.#fd < 0) throw new Error(`${this.name}: device closed`);
    const handle = native.drmPrimeFdToHandle(this.#fd, dmabufFd);
    this.ref(handle);
    return handle;
  }
}

/** Live GEM handles primebuf holds across all open devices (for leak checks). */
export function liveGemHandleCount(): number {
  let n = 0;
  for (const t of allTables) n += t.size;
  return n;
}

/** One counted reference to a GEM handle of one device. */
export class GemHandle extends Resource {
  readonly handle: number;
  readonly #table: GemHandleTable;

  /** Takes over one reference already counted in `table`; closed with the table's device. */
  constructor(table: GemHandleTable, handle: number, what?: string) {
    const holder: { ref?: WeakRef<GemHandle> } = {};
    super(what ?? `${table.name} GEM handle ${handle}`, () => {
      if (holder.ref) table.untrack(holder.ref);
      table.unref(handle);
    });
    this.handle = handle;
    this.#table = table;
    holder.ref = new WeakRef(this);
    table.track(holder.ref);
  }

  /** Another reference to the same handle (its own close()). */
  ref(): GemHandle {
    this.assertOpen();
    this.#table.ref(this.handle);
    return new GemHandle(this.#table, this.handle);
  }

  /** References currently counted on this handle (all holders). */
  get refCount(): number {
    return this.#table.count(this.handle);
  }

  /** @internal */
  get table(): GemHandleTable {
    return this.#table;
  }
}
