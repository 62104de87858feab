/**
 * BufferRequest: deferred allocation.
 *
 * Create it with a size and candidate formats, attach the devices and usages that will touch
 * the buffer, and the backing storage is allocated on the first export or CPU map, by the
 * allocator the merged constraints choose (AllocatorPool). After that:
 *   - an attach the buffer satisfies just imports (the owner's import hook runs);
 *   - an attach it does not satisfy throws BufferBusyError (code 'EBUSY') with the reasons,
 *     unless the owner chose re-allocation: then a buffer is allocated for the new set, the
 *     content is copied (CPU, LINEAR to LINEAR of the same format), every attachment is
 *     re-imported and the owner is told (onReallocate), e.g. "preview, then start recording".
 * CPU accesses and device hand-overs go through the buffer's CacheDomainTracker.
 */
import { DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, minPitch, planeHeight } from '../formats/index.js';
import { InvalidArgumentError, ClosedError } from '../errors.js';
import { ConstraintSet, merge } from '../constraints/set.js';
import { satisfies, type BufferDescription, type SizeRequest } from '../constraints/solve.js';
import { BufferBusyError, ConstraintConflictError } from '../constraints/errors.js';
import { constraintKey, modifierLabel, type DeviceConstraint, type Reason } from '../constraints/types.js';
import { CacheDomainTracker, type Access, type SyncCounts } from './cache-domain.js';
import type { AllocatorPool, Plan } from './pool.js';
import type { PreflushedPool } from './preflushed.js';
import type { AllocationPlan, Backing, FdOwner } from './types.js';

/** What the owner's import hook returns: something to close when the device lets go. */
export interface Imported {
  close(): void;
}

/** What onReallocate is told after a late attach re-allocated the buffer. */
export interface ReallocationEvent {
  /** The attach that forced it. */
  readonly trigger: DeviceConstraint;
  /** Why the old buffer could not serve it. */
  readonly reasons: readonly Reason[];
  readonly before: BufferDescription;
  readonly after: BufferDescription;
  /** Whether the content was carried over; if not, `copyReason` says why. */
  readonly copied: boolean;
  readonly copyReason?: string;
}

/** A BufferRequest's size, candidate formats, pool, and late-attach behaviour. */
export interface BufferRequestOptions extends SizeRequest {
  readonly pool: AllocatorPool;
  /** Pre-flushed buffers to reuse; a closed request gives its buffer back here. */
  readonly reuse?: PreflushedPool;
  /** What a late incompatible attach does: throw EBUSY (default) or re-allocate. */
  readonly onIncompatibleAttach?: 'fail' | 'reallocate';
  /** Told after a re-allocation (the old fds the owner exported still show the old buffer). */
  readonly onReallocate?: (event: ReallocationEvent) => void;
  /** Imports the buffer into a device once it exists (PRIME import, EGLImage, ...). */
  readonly importer?: (constraint: DeviceConstraint, backing: Backing) => Imported | undefined;
}

/** One attached device and usage; detach() lets it go. */
export interface Attachment {
  readonly key: string;
  readonly constraint: DeviceConstraint;
  /** The re-allocation this attach caused, if any. */
  readonly reallocation?: ReallocationEvent;
  detach(): void;
}

interface Attached {
  constraint: DeviceConstraint;
  imported: Imported | undefined;
}

/** A buffer whose allocation waits for every device that will use it (see the top of this file). */
export class BufferRequest implements Disposable {
  readonly width: number;
  readonly height: number;
  /** Candidate formats in order of preference. */
  readonly formats: readonly number[];
  readonly #opts: BufferRequestOptions;
  readonly #attached = new Map<string, Attached>();
  #set = ConstraintSet.empty;
  #backing: Backing | undefined;
  #plan: AllocationPlan | undefined;
  #tracker: CacheDomainTracker | undefined;
  #closed = false;
  #reallocations = 0;
  #retired: SyncCounts = { starts: 0, ends: 0, skipped: 0 };

  constructor(opts: BufferRequestOptions) {
    if (!Number.isSafeInteger(opts.width) || !Number.isSafeInteger(opts.height) || opts.width < 1 || opts.height < 1) {
      throw new InvalidArgumentError(`invalid buffer size ${opts.width}x${opts.height}`);
    }
    if (opts.formats.length === 0) throw new InvalidArgumentError('a buffer request needs at least one candidate format');
    this.width = opts.width;
    this.height = opts.height;
    this.formats = Object.freeze([...opts.formats]);
    this.#opts = opts;
  }

  get state(): 'pending' | 'allocated' | 'closed' {
    return this.#closed ? 'closed' : this.#backing ? 'allocated' : 'pending';
  }

  /** The merged constraints of every attached device. */
  get constraints(): ConstraintSet {
    return this.#set;
  }

  /** The allocated buffer's description (undefined while pending). */
  get description(): BufferDescription | undefined {
    return this.#backing?.description;
  }

  get allocationPlan(): AllocationPlan | undefined {
    return this.#plan;
  }

  get reallocations(): number {
    return this.#reallocations;
  }

  /** Sync counts over the buffer's life (including buffers it re-allocated away from). */
  get syncCounts(): SyncCounts {
    const c = this.#tracker?.counts ?? { starts: 0, ends: 0, skipped: 0 };
    return { starts: c.starts + this.#retired.starts, ends: c.ends + this.#retired.ends, skipped: c.skipped + this.#retired.skipped };
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('BufferRequest');
  }

  #request(formats = this.formats): SizeRequest {
    return { width: this.width, height: this.height, formats };
  }

  /** Dry run for the current set plus `extra`: would it allocate, and how? */
  plan(extra?: DeviceConstraint): Plan {
    this.#assertOpen();
    const set = extra ? this.#set.combine(ConstraintSet.of(extra)) : this.#set;
    return this.#opts.pool.plan(set, this.#request());
  }

  /**
   * Attaches a device and usage. Pending: the merged set must still be allocatable (else
   * ConstraintConflictError). Allocated: see the class comment.
   */
  attach(c: DeviceConstraint): Attachment {
    this.#assertOpen();
    const key = constraintKey(c);
    if (this.#attached.has(key)) throw new InvalidArgumentError(`${key} is already attached`);
    if (!this.#backing) {
      const m = merge(this.#set, c);
      const plan = this.#opts.pool.plan(m.set, this.#request());
      if (!m.ok || !plan.ok) throw new ConstraintConflictError(`cannot attach ${key}`, m.ok ? plan.reasons : m.reasons);
      this.#set = m.set;
      this.#attached.set(key, { constraint: c, imported: undefined });
      return this.#attachment(key, c);
    }
    const misfit = satisfies(c, this.#backing.description);
    if (misfit.length === 0) {
      const imported = this.#opts.importer?.(c, this.#backing);
      this.#set = this.#set.combine(ConstraintSet.of(c));
      this.#attached.set(key, { constraint: c, imported });
      return this.#attachment(key, c);
    }
    if (this.#opts.onIncompatibleAttach !== 'reallocate') {
      throw new BufferBusyError(`${key} cannot use the buffer already allocated (${this.#backing.description.allocator})`, misfit);
    }
    const event = this.#reallocate(c, misfit);
    return this.#attachment(key, c, event);
  }

  #attachment(key: string, c: DeviceConstraint, reallocation?: ReallocationEvent): Attachment {
    const a = { key, constraint: c, detach: () => this.detach(key) };
    return reallocation ? { ...a, reallocation } : a;
  }

  /** Detaches a device (its import is closed). The buffer stays as it is. */
  detach(key: string): void {
    const a = this.#attached.get(key);
    if (!a) return;
    a.imported?.close();
    this.#attached.delete(key);
    this.#set = this.#set.without(key);
  }

  /** Allocates now if still pending (export and map do this on their own). */
  allocate(): BufferDescription {
    this.#assertOpen();
    if (!this.#backing) this.#allocate();
    return this.#backing!.description;
  }

  #obtain(set: ConstraintSet, formats: readonly number[]): { plan: AllocationPlan; backing: Backing; tracker: CacheDomainTracker } {
    const plan = this.#opts.pool.plan(set, this.#request(formats));
    if (!plan.ok || !plan.chosen) throw new ConstraintConflictError('cannot allocate the buffer', plan.reasons);
    const pooled = this.#opts.reuse?.take(plan.chosen);
    if (pooled) return { plan: plan.chosen, backing: pooled.backing, tracker: pooled.tracker };
    const { backing, plan: done } = this.#opts.pool.allocate(set, this.#request(formats));
    const tracker = new CacheDomainTracker((f) => backing.sync(f));
    return { plan: done.chosen!, backing, tracker };
  }

  #allocate(): void {
    const got = this.#obtain(this.#set, this.formats);
    this.#backing = got.backing;
    this.#plan = got.plan;
    this.#tracker = got.tracker;
    for (const a of this.#attached.values()) a.imported = this.#opts.importer?.(a.constraint, got.backing);
  }

  #reallocate(c: DeviceConstraint, reasons: Reason[]): ReallocationEvent {
    const old = this.#backing!;
    const oldPlan = this.#plan!;
    const oldTracker = this.#tracker!;
    const set = this.#set.combine(ConstraintSet.of(c));
    const m = merge(set);
    if (!m.ok) throw new ConstraintConflictError(`cannot re-allocate for ${constraintKey(c)}`, m.reasons);
    // Keep the current format first, so the content can be carried over when possible.
    const formats = [old.description.format, ...this.formats.filter((f) => f !== old.description.format)];
    const got = this.#obtain(set, formats);
    const copy = copyContent(old, oldTracker, got.backing, got.tracker);
    for (const a of this.#attached.values()) a.imported?.close();
    this.#backing = got.backing;
    this.#plan = got.plan;
    this.#tracker = got.tracker;
    this.#set = set;
    this.#attached.set(constraintKey(c), { constraint: c, imported: undefined });
    for (const a of this.#attached.values()) a.imported = this.#opts.importer?.(a.constraint, got.backing);
    const oc = oldTracker.counts;
    this.#retired = { starts: this.#retired.starts + oc.starts, ends: this.#retired.ends + oc.ends, skipped: this.#retired.skipped + oc.skipped };
    this.#release(oldPlan, old, oldTracker);
    this.#reallocations++;
    const event: ReallocationEvent = copy.copied
      ? { trigger: c, reasons, before: old.description, after: got.backing.description, copied: true }
      : { trigger: c, reasons, before: old.description, after: got.backing.description, copied: false, copyReason: copy.reason! };
    this.#opts.onReallocate?.(event);
    return event;
  }

  /** A new dma-buf fd for the buffer (allocating it first if pending); the caller owns it. */
  exportFd(): FdOwner {
    this.#assertOpen();
    if (!this.#backing) this.#allocate();
    return this.#backing!.exportFd();
  }

  /** Maps the buffer for the CPU (allocating first if pending) inside a cache-domain bracket. */
  beginCpuAccess(access: Access = 'readwrite'): Uint8Array {
    this.#assertOpen();
    if (!this.#backing) this.#allocate();
    const view = this.#backing!.map();
    this.#tracker!.beginCpu(access);
    return view;
  }

  endCpuAccess(): void {
    this.#assertOpen();
    if (!this.#tracker) throw new InvalidArgumentError('endCpuAccess() on a buffer that was never mapped');
    this.#tracker.endCpu();
  }

  /** Tells the tracker a device is about to use the buffer (before a commit, a render, ...). */
  deviceAccess(device: string): void {
    this.#assertOpen();
    if (!this.#backing) this.#allocate();
    this.#tracker!.deviceAccess(device);
  }

  #release(plan: AllocationPlan, backing: Backing, tracker: CacheDomainTracker): void {
    if (this.#opts.reuse) this.#opts.reuse.give(plan, { backing, tracker });
    else backing.close();
  }

  /** Detaches everything and gives the buffer back to the reuse pool (or closes it). */
  close(): void {
    if (this.#closed) return;
    for (const key of [...this.#attached.keys()]) this.detach(key);
    if (this.#backing) this.#release(this.#plan!, this.#backing, this.#tracker!);
    this.#backing = undefined;
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Copies the visible content of `src` into `dst` through CPU mappings (each inside its cache
 * bracket). Possible when both are LINEAR and of the same format and size.
 */
export function copyContent(src: Backing, srcTracker: CacheDomainTracker, dst: Backing, dstTracker: CacheDomainTracker): { copied: boolean; reason?: string } {
  const a = src.description, b = dst.description;
  if (a.format !== b.format) return { copied: false, reason: `the new buffer is ${formatName(b.format)}, the old one ${formatName(a.format)}` };
  if (a.modifier !== DRM_FORMAT_MOD_LINEAR || b.modifier !== DRM_FORMAT_MOD_LINEAR) {
    return { copied: false, reason: `a CPU copy needs LINEAR on both sides (${modifierLabel(a.modifier)} -> ${modifierLabel(b.modifier)})` };
  }
  if (a.width !== b.width || a.height !== b.height) return { copied: false, reason: `sizes differ (${a.width}x${a.height} -> ${b.width}x${b.height})` };
  const info = formatInfo(a.format)!;
  const from = src.map();
  const to = dst.map();
  srcTracker.beginCpu('read');
  dstTracker.beginCpu('write');
  try {
    for (let i = 0; i < info.planes; i++) {
      const rowBytes = Number(minPitch(a.format, a.width, i));
      // The kernel's extent of a plane: planeHeight rows of `pitch`, minPitch bytes used in
      // each (for block formats minPitch already spreads a block over its pixel rows).
      const rows = planeHeight(a.format, a.height, i);
      const sp = a.planes[i]!, dp = b.planes[i]!;
      for (let y = 0; y < rows; y++) {
        const s = Number(sp.offset + BigInt(y) * sp.pitch);
        const d = Number(dp.offset + BigInt(y) * dp.pitch);
        to.set(from.subarray(s, s + rowBytes), d);
      }
    }
  } finally {
    dstTracker.endCpu();
    srcTracker.endCpu();
  }
  return { copied: true };
}
