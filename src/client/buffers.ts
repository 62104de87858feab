/**
 * Client buffers: allocate what pickFormat() chose through primebuf's allocators, on the device the
 * tranche targets where one of them allocates there, wrap it in a wl_buffer
 * (zwp_linux_buffer_params_v1.create_immed), and keep a ring of them that honours
 * wl_buffer.release: a buffer the compositor holds is never handed out. When the feedback
 * changes so that the pick changes (a scanout tranche gained or lost, another format or
 * device), the ring re-allocates: free buffers at once, held ones when the compositor releases
 * them.
 */
import { linearLayout, type LayoutRules } from '../constraints/solve.js';
import { ClosedError, InvalidArgumentError, SystemError } from '../errors.js';
import { formatName } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';
import { DmabufBacking } from '../alloc/backends/backing.js';
import type { SystemAllocators } from '../alloc/system.js';
import type { AllocationPlan, Allocator, Backing } from '../alloc/types.js';
import type { WaylandProxy } from '../wayland/client.js';
import { alive, type ClientDmabuf, type DmabufFeedback, type FeedbackWatch } from './feedback.js';
import { pickFormat, type Pick, type PickRequest } from './pick.js';

/** One of primebuf's allocators as the client sees it: with the dev_t of the device it allocates on. */
export interface ClientAllocator {
  /** dumbPoolAllocator, gbmPoolAllocator, dmaHeapPoolAllocator, udmabufPoolAllocator, ... */
  readonly allocator: Allocator;
  /** dev_t of the device whose memory it allocates (dumb, GBM); null for heaps and udmabuf */
  readonly device: bigint | null;
}

/** The allocators of openSystemAllocators() with their devices' dev_t. */
export function clientAllocators(sys: SystemAllocators): ClientAllocator[] {
  return sys.pool.allocators.map((allocator) => {
    const card = allocator.caps.device;
    return { allocator, device: card !== undefined ? (sys.devices.get(card)?.devId ?? null) : null };
  });
}

/**
 * The allocators that can make `p`, best first: for a scanout pick, those on the target device
 * (a dumb buffer on the KMS device is always importable and scanned out without a copy); for
 * any other pick, GBM on the target device, then device-less memory (heaps, udmabuf: dumb
 * buffers are for scanout), then the rest. Ties keep the caller's order.
 */
export function rankAllocators(allocators: readonly ClientAllocator[], p: Pick & { ok: true }): ClientAllocator[] {
  const score = (a: ClientAllocator): number => {
    const onTarget = p.device !== null && a.device === p.device;
    if (onTarget && (p.scanout || a.allocator.caps.kind === 'gbm')) return 0;
    if (a.device === null) return 1;
    return onTarget ? 2 : 3;
  };
  return allocators
    .filter((a) => a.allocator.canAllocate(p.format, p.modifier))
    .map((a, i) => ({ a, i, s: score(a) }))
    .sort((x, y) => x.s - y.s || x.i - y.i)
    .map((x) => x.a);
}

/** Alignments of client buffers: 64-byte pitches (what display engines commonly need), page-sized allocations. */
export const CLIENT_LAYOUT_RULES: LayoutRules = Object.freeze({ pitchAlign: 64, offsetAlign: 64, sizeAlign: 4096, widthAlign: 1, heightAlign: 1 });

export type RingBufferState = 'free' | 'client' | 'compositor';

/** One buffer of a ring: the allocation and its wl_buffer, owned together. */
export class RingBuffer {
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly modifier: bigint;
  /** the allocator that made it ('dumb@card0', 'udmabuf', ...) */
  readonly allocator: string;
  /** the ring generation (pick) it was allocated for */
  readonly generation: number;
  readonly planes: readonly { offset: number; stride: number }[];
  #backing: Backing;
  #wl: WaylandProxy<'wl_buffer'>;
  #state: RingBufferState = 'free';
  #closed = false;

  /** @internal made by BufferRing */
  constructor(backing: Backing, wl: WaylandProxy<'wl_buffer'>, generation: number, onRelease: (b: RingBuffer) => void) {
    const d = backing.description;
    this.#backing = backing;
    this.#wl = wl;
    this.width = d.width;
    this.height = d.height;
    this.format = d.format;
    this.modifier = d.modifier;
    this.allocator = d.allocator;
    this.generation = generation;
    this.planes = Object.freeze(d.planes.map((pl) => Object.freeze({ offset: Number(pl.offset), stride: Number(pl.pitch) })));
    wl.on('release', () => {
      if (this.#state === 'compositor') this.#state = 'free';
      onRelease(this);
    });
  }

  get state(): RingBufferState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The wl_buffer to attach. */
  get wlBuffer(): WaylandProxy<'wl_buffer'> {
    if (this.#closed) throw new ClosedError('ring buffer');
    return this.#wl;
  }

  /** Stride of plane 0 in bytes. */
  get stride(): number {
    return this.planes[0]!.stride;
  }

  /**
   * CPU drawing inside a DMA_BUF_IOCTL_SYNC bracket (started and ended on the thread pool):
   * `fn` gets the mapped bytes and plane 0's stride. `access` is 'rw' when `fn` also reads the
   * previous content (partial redraws). Only while the client holds the buffer (acquired, not
   * yet attached).
   */
  draw<T>(fn: (pixels: Uint8Array, stride: number) => T | Promise<T>, access: 'write' | 'rw' = 'write'): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('ring buffer'));
    if (this.#state !== 'client') return Promise.reject(new InvalidArgumentError(`draw on a ring buffer the ${this.#state === 'free' ? 'ring' : 'compositor'} holds (acquire() it first)`));
    const b = this.#backing;
    if (b instanceof DmabufBacking) return b.dmabuf.withCpuAccess(access, () => fn(b.map(), this.stride));
    const read = access === 'rw';
    return (async () => {
      b.sync({ phase: 'start', read, write: true });
      try {
        return await fn(b.map(), this.stride);
      } finally {
        b.sync({ phase: 'end', read, write: true });
      }
    })();
  }

  /** @internal */
  _setState(s: RingBufferState): void {
    this.#state = s;
  }

  /** Destroys the wl_buffer and frees the allocation (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (alive(this.#wl)) this.#wl.request('destroy', {});
    } finally {
      this.#backing.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Creates the wl_buffer of `backing` with create_immed (the params object is destroyed at
 * once). A buffer the server cannot import is a fatal invalid_wl_buffer protocol error with
 * create_immed: the ring only sends what the feedback offered.
 */
export function createWlBuffer(dmabuf: ClientDmabuf, backing: Backing): WaylandProxy<'wl_buffer'> {
  const d = backing.description;
  const params = dmabuf.proxy.request('create_params', {});
  try {
    d.planes.forEach((pl, i) => {
      const fd = backing.exportFd();
      try {
        params.request('add', {
          fd: fd.fd,
          plane_idx: i,
          offset: Number(pl.offset),
          stride: Number(pl.pitch),
          modifier_hi: Number(d.modifier >> 32n),
          modifier_lo: Number(d.modifier & 0xffffffffn),
        });
      } finally {
        fd.close(); // libwayland duplicated it into the message
      }
    });
    return params.request('create_immed', { width: d.width, height: d.height, format: d.format, flags: 0 });
  } finally {
    params.request('destroy', {});
  }
}

/** Why and how the ring re-allocated. */
export interface ClientReallocationEvent {
  readonly generation: number;
  readonly from: Pick;
  readonly to: Pick;
  /** buffers freed at once (the rest go when the compositor releases them) */
  readonly freedNow: number;
  readonly feedback: DmabufFeedback;
}

export interface BufferRingOptions {
  readonly dmabuf: ClientDmabuf;
  /** default or surface feedback; the ring follows its changes */
  readonly feedback: FeedbackWatch;
  /** best first; ranked per pick by rankAllocators() */
  readonly allocators: readonly ClientAllocator[];
  readonly width: number;
  readonly height: number;
  /** formats the client draws, best first */
  readonly formats: readonly number[];
  /** modifiers the client produces, best first (default LINEAR) */
  readonly modifiers?: readonly bigint[];
  /** at most this many buffers (default 3) */
  readonly count?: number;
  readonly onReallocate?: (e: ClientReallocationEvent) => void;
}

const pickKey = (p: Pick): string => (p.ok ? `${p.format}:${p.modifier}:${p.device}:${p.scanout}` : 'none');

/**
 * N buffers for one surface size. acquire() hands out a buffer nobody uses (allocating one
 * while fewer than `count` exist), attach() gives it to the compositor until wl_buffer.release.
 * Buffers of an old pick still held by the compositor count toward `count` until released. A
 * feedback in which nothing fits any more keeps the current pick and buffers.
 */
export class BufferRing {
  readonly width: number;
  readonly height: number;
  readonly count: number;
  #opts: BufferRingOptions;
  #buffers: RingBuffer[] = [];
  #pick: Pick;
  #generation = 0;
  #allocations = 0;
  #offChanged: () => void;
  #closed = false;

  constructor(opts: BufferRingOptions) {
    const count = opts.count ?? 3;
    if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`ring of ${count} buffers`);
    if (opts.allocators.length === 0) throw new InvalidArgumentError('a buffer ring needs at least one allocator');
    this.#opts = opts;
    this.width = opts.width;
    this.height = opts.height;
    this.count = count;
    this.#pick = this.#pickFor(opts.feedback.current);
    if (!this.#pick.ok) throw new InvalidArgumentError(`nothing to allocate: ${this.#pick.reasons.map((r) => r.detail).join('; ')}`);
    this.#offChanged = opts.feedback.on('changed', (f) => this.#changed(f));
  }

  /** The current choice and why. */
  get pick(): Pick {
    return this.#pick;
  }

  /** Bumped at every re-allocation. */
  get generation(): number {
    return this.#generation;
  }

  /** Buffers allocated so far (over the ring's life). */
  get allocations(): number {
    return this.#allocations;
  }

  /** The live buffers (any generation, any state). */
  get buffers(): readonly RingBuffer[] {
    return [...this.#buffers];
  }

  /**
   * A buffer of the current pick that neither the compositor nor the client holds, now in the
   * client's hands (state 'client'); a new allocation while fewer than `count` exist; null when
   * every buffer is held (wait for a release).
   */
  acquire(): RingBuffer | null {
    if (this.#closed) throw new ClosedError('buffer ring');
    let b = this.#buffers.find((x) => x.state === 'free' && x.generation === this.#generation);
    if (!b && this.#buffers.length < this.count) b = this.#allocate();
    if (!b) return null;
    b._setState('client');
    return b;
  }

  /** Attaches `buffer` to `surface` (wl_surface.attach); the compositor holds it until release. */
  attach(surface: WaylandProxy<'wl_surface'>, buffer: RingBuffer, x = 0, y = 0): void {
    this.#own(buffer, 'attach');
    surface.request('attach', { buffer: buffer.wlBuffer, x, y });
    buffer._setState('compositor');
  }

  /** Gives an acquired buffer back unused. */
  giveBack(buffer: RingBuffer): void {
    this.#own(buffer, 'giveBack');
    buffer._setState('free');
    this.#reap(buffer);
  }

  /** Destroys every wl_buffer and frees every allocation (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#offChanged();
    const errors: unknown[] = [];
    for (const b of this.#buffers.splice(0)) {
      try {
        b.close();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #own(buffer: RingBuffer, what: string): void {
    if (this.#closed) throw new ClosedError('buffer ring');
    if (!this.#buffers.includes(buffer)) throw new InvalidArgumentError(`${what}: the buffer is not in this ring`);
    if (buffer.state !== 'client') throw new InvalidArgumentError(`${what}: the buffer is not acquired (it is ${buffer.state === 'free' ? 'free' : 'held by the compositor'})`);
  }

  #pickFor(feedback: DmabufFeedback): Pick {
    const req: PickRequest = {
      width: this.#opts.width,
      height: this.#opts.height,
      formats: this.#opts.formats,
      canAllocate: (f, m) => this.#opts.allocators.some((a) => a.allocator.canAllocate(f, m)),
      ...(this.#opts.modifiers ? { modifiers: this.#opts.modifiers } : {}),
    };
    return pickFormat(feedback, req);
  }

  #allocate(): RingBuffer {
    const p = this.#pick as Pick & { ok: true };
    const ranked = rankAllocators(this.#opts.allocators, p);
    let lastError: unknown = new InvalidArgumentError(`no allocator makes ${formatName(p.format)} as ${modifierLabel(p.modifier)}`);
    for (const a of ranked) {
      const plan: AllocationPlan = {
        allocator: a.allocator.caps.name,
        format: p.format,
        modifier: p.modifier,
        width: this.width,
        height: this.height,
        layout: linearLayout(CLIENT_LAYOUT_RULES, this.width, this.height, p.format, p.modifier),
        rules: CLIENT_LAYOUT_RULES,
        writeCombine: false,
      };
      let backing: Backing;
      try {
        backing = a.allocator.allocate(plan);
      } catch (err) {
        if (!(err instanceof SystemError || err instanceof InvalidArgumentError)) throw err;
        lastError = err;
        continue;
      }
      let wl: WaylandProxy<'wl_buffer'>;
      try {
        wl = createWlBuffer(this.#opts.dmabuf, backing);
      } catch (err) {
        backing.close();
        throw err;
      }
      const b = new RingBuffer(backing, wl, this.#generation, (x) => this.#reap(x));
      this.#buffers.push(b);
      this.#allocations++;
      return b;
    }
    throw lastError;
  }

  /** Frees `b` if it is free and of an old generation. */
  #reap(b: RingBuffer): void {
    if (b.state !== 'free' || b.generation === this.#generation || b.closed) return;
    this.#buffers.splice(this.#buffers.indexOf(b), 1);
    b.close();
  }

  #changed(feedback: DmabufFeedback): void {
    if (this.#closed) return;
    const next = this.#pickFor(feedback);
    if (!next.ok || pickKey(next) === pickKey(this.#pick)) return;
    const from = this.#pick;
    this.#pick = next;
    this.#generation++;
    const before = this.#buffers.length;
    for (const b of [...this.#buffers]) this.#reap(b);
    this.#opts.onReallocate?.({ generation: this.#generation, from, to: next, freedNow: before - this.#buffers.length, feedback });
  }
}
