/**
 * A pool of pre-flushed buffers, keyed by their allocation parameters and bounded in bytes.
 * A buffer given back is flushed (its open DMA_BUF_IOCTL_SYNC bracket ended) before it rests,
 * so whoever takes it next hands it to a device without paying for a sync. When the pool would
 * exceed its budget, the least recently given buffers are closed.
 */
import { formatName } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';
import { InvalidArgumentError } from '../errors.js';
import { CacheDomainTracker } from './cache-domain.js';
import type { AllocationPlan, Backing } from './types.js';

/** Reuse counters of a PreflushedPool. */
export interface PoolStats {
  readonly hits: number;
  readonly misses: number;
  /** Buffers closed to stay within the byte budget (or too large to keep). */
  readonly evictions: number;
  /** Buffers resting in the pool and their bytes. */
  readonly buffers: number;
  readonly bytes: bigint;
  readonly maxBytes: bigint;
}

export interface PooledBuffer {
  readonly backing: Backing;
  readonly tracker: CacheDomainTracker;
}

/** The key of an allocation: allocator, format, modifier, size, layout rules, mapping type. */
export function allocationKey(plan: AllocationPlan): string {
  const l = plan.layout;
  const planes = l.planes.map((p) => `${p.offset}+${p.pitch}`).join(',');
  const rules = plan.rules;
  return [
    plan.allocator,
    formatName(plan.format),
    modifierLabel(plan.modifier),
    `${plan.width}x${plan.height}`,
    `${l.allocWidth}x${l.allocHeight}`,
    planes,
    String(l.size),
    `a${rules.pitchAlign}/${rules.offsetAlign}/${rules.sizeAlign}/${rules.widthAlign}/${rules.heightAlign}`,
    plan.writeCombine ? 'wc' : 'cached',
  ].join('|');
}

/** Buffers given back, kept flushed for reuse by allocation parameters, up to a byte budget. */
export class PreflushedPool {
  readonly maxBytes: bigint;
  /** key -> buffers, oldest first; Map order doubles as LRU order of keys. */
  readonly #entries = new Map<string, PooledBuffer[]>();
  #order: Array<{ key: string; item: PooledBuffer }> = [];
  #bytes = 0n;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #closed = false;

  constructor(opts: { maxBytes: bigint | number }) {
    const max = BigInt(opts.maxBytes);
    if (max < 0n) throw new InvalidArgumentError(`maxBytes must not be negative, got ${max}`);
    this.maxBytes = max;
  }

  get stats(): PoolStats {
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, buffers: this.#order.length, bytes: this.#bytes, maxBytes: this.maxBytes };
  }

  /** A resting buffer made with exactly these parameters, or undefined (counted hit/miss). */
  take(plan: AllocationPlan): PooledBuffer | undefined {
    const key = allocationKey(plan);
    const list = this.#entries.get(key);
    const item = list?.pop();
    if (!item) {
      this.#misses++;
      return undefined;
    }
    if (list!.length === 0) this.#entries.delete(key);
    this.#order = this.#order.filter((e) => e.item !== item);
    this.#bytes -= item.backing.description.size;
    this.#hits++;
    return item;
  }

  /**
   * Gives a buffer back: it is flushed and kept (the pool owns it now), or closed when it is
   * larger than the whole budget or the pool is closed. Returns whether it was kept.
   */
  give(plan: AllocationPlan, item: PooledBuffer): boolean {
    if (item.backing.closed) throw new InvalidArgumentError('cannot pool a closed buffer');
    const size = item.backing.description.size;
    if (this.#closed || size > this.maxBytes) {
      item.backing.close();
      this.#evictions++;
      return false;
    }
    item.tracker.flush();
    const key = allocationKey(plan);
    const list = this.#entries.get(key) ?? [];
    list.push(item);
    this.#entries.set(key, list);
    this.#order.push({ key, item });
    this.#bytes += size;
    while (this.#bytes > this.maxBytes && this.#order.length > 0) {
      const oldest = this.#order.shift()!;
      const l = this.#entries.get(oldest.key)!;
      l.splice(l.indexOf(oldest.item), 1);
      if (l.length === 0) this.#entries.delete(oldest.key);
      this.#bytes -= oldest.item.backing.description.size;
      oldest.item.backing.close();
      this.#evictions++;
    }
    return !item.backing.closed;
  }

  /** Closes every resting buffer; later gives close their buffer at once. */
  close(): void {
    this.#closed = true;
    for (const { item } of this.#order) item.backing.close();
    this.#order = [];
    this.#entries.clear();
    this.#bytes = 0n;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
