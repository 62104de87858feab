/**
 * The copy ring: compositor-owned scanout buffers of one output's mode that the copy fallback
 * writes a frame into. A frame never writes into a buffer that is on screen or queued for the
 * next flip; each buffer remembers which frame it holds, so a reused buffer receives the union
 * of the damage since it was last written (DamageHistory), not the whole frame.
 *
 * The buffers come from an injected allocator (dumb buffers on the KMS device in a compositor;
 * memfd-backed fakes in host tests). The ring owns them: close() closes each exactly once, after
 * any copy still writing into it has settled.
 *
 * A buffer's life: free -> writing (copyFrame) -> ready -> queued (markQueued: the commit that
 * shows it was submitted) -> onscreen (markOnScreen: its flip completed; the buffer that was on
 * screen before becomes free) -> free. release() returns a ready or queued buffer (a commit that
 * failed, an output turned off) without losing its content.
 *
 * Pixels of a source that is gone never reach the screen: when the next frames will not paint the
 * whole buffer (a smaller surface follows a fullscreen one), clearBeforeNextWrite() marks every
 * buffer, the one on screen and the queued one included, and each is zeroed (black) right before it
 * is next written, whatever state it was in when marked.
 */
import { Mapping } from '../dmabuf/mapping.js';
import { ClosedError, PrimebufError } from '../errors.js';
import type { CopySource, CopySurface, CopyStats } from './copy.js';
import { copyRects, newCopyStats } from './copy.js';
import type { Rect } from './damage.js';
import { DamageHistory, damageArea } from './damage.js';

/** A buffer the ring can copy into: a CopySurface it owns (and closes). */
export interface ScanoutBuffer extends CopySurface {
  close(): void;
}

export interface RingBufferSpec {
  width: number;
  height: number;
  format: number;
  /** position of the buffer in the ring (0, 1, ...) */
  index: number;
}

export type AllocateScanoutBuffer<B extends ScanoutBuffer> = (spec: RingBufferSpec) => B;

export type SlotState = 'free' | 'writing' | 'ready' | 'queued' | 'onscreen';

export interface RingSlot<B extends ScanoutBuffer> {
  readonly index: number;
  readonly buffer: B;
  readonly state: SlotState;
  /** the frame (DamageHistory numbering) the buffer holds; undefined when unknown */
  readonly frame: number | undefined;
  /** zeroed before its next write (clearBeforeNextWrite) */
  readonly stale: boolean;
}

export interface RingFrame<B extends ScanoutBuffer> {
  slot: RingSlot<B>;
  /** the frame number the buffer now holds */
  frame: number;
  /** the rectangles copied (destination = source coordinates + dx, dy) */
  rects: Rect[];
  bytes: number;
}

export interface CopyRingOptions<B extends ScanoutBuffer> {
  width: number;
  height: number;
  format: number;
  allocate: AllocateScanoutBuffer<B>;
  /** number of buffers, at least 2 (default 2) */
  buffers?: number;
  /** frames of damage remembered (default 8) */
  maxAge?: number;
  /** bound on a merged damage list (default MAX_DAMAGE_RECTS) */
  maxRects?: number;
}

/** Every buffer is on screen, queued or being written: the frame must wait for a flip. */
export class RingBusyError extends PrimebufError {
  override name = 'RingBusyError';
  readonly code = 'EBUSY';
  constructor(detail: string) {
    super(`copy ring busy: ${detail}`);
  }
}

interface Slot<B extends ScanoutBuffer> {
  index: number;
  buffer: B;
  state: SlotState;
  frame: number | undefined;
  /** the ring was closed while this slot was being written: close the buffer once the copy settles */
  closeWhenDone: boolean;
  /** holds pixels the coming frames do not paint over: zeroed before its next write */
  stale: boolean;
}

export class CopyRing<B extends ScanoutBuffer> {
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly history: DamageHistory;
  /** totals over every copy into this ring; `clears`: buffers zeroed before a write */
  readonly stats: CopyStats & { frames: number; fullFrames: number; clears: number };
  readonly #slots: Slot<B>[] = [];
  #closed = false;

  constructor(opts: CopyRingOptions<B>) {
    const n = opts.buffers ?? 2;
    if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`a copy ring needs at least 2 buffers (got ${n})`);
    this.width = opts.width;
    this.height = opts.height;
    this.format = opts.format;
    this.history = new DamageHistory(opts.width, opts.height, { maxAge: opts.maxAge, maxRects: opts.maxRects });
    this.stats = { ...newCopyStats(), frames: 0, fullFrames: 0, clears: 0 };
    try {
      for (let index = 0; index < n; index++) {
        const buffer = opts.allocate({ width: opts.width, height: opts.height, format: opts.format, index });
        this.#slots.push({ index, buffer, state: 'free', frame: undefined, closeWhenDone: false, stale: false });
        if (buffer.width !== opts.width || buffer.height !== opts.height || buffer.format !== opts.format) {
          throw new RangeError(
            `ring buffer ${index} is ${buffer.width}x${buffer.height} format 0x${buffer.format.toString(16)}, ` +
              `the ring wants ${opts.width}x${opts.height} format 0x${opts.format.toString(16)}`,
          );
        }
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The slots, in ring order (read-only views). */
  get slots(): readonly RingSlot<B>[] {
    return this.#slots;
  }

  /** The slot on screen, if any. */
  get onScreen(): RingSlot<B> | undefined {
    return this.#slots.find((s) => s.state === 'onscreen');
  }

  /** Whether a frame can be written now (some buffer is neither on screen, queued nor being written). */
  get available(): boolean {
    return this.#pick() !== undefined;
  }

  /** The free buffer that needs the least copying: the newest content first, unknown content last. */
  #pick(): Slot<B> | undefined {
    let best: Slot<B> | undefined;
    for (const s of this.#slots) {
      if (s.state !== 'free') continue;
      if (!best || (s.frame ?? 0) > (best.frame ?? 0)) best = s;
    }
    return best;
  }

  #slot(slot: RingSlot<B>): Slot<B> {
    const s = this.#slots[slot.index];
    if (s === undefined || s !== slot) throw new RangeError(`slot ${slot.index} does not belong to this ring`);
    return s;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('CopyRing');
  }

  /**
   * Records the next frame's damage and copies what the chosen buffer lacks from `source` (the
   * whole new frame's content; damage in source coordinates, placed at dx, dy). Throws
   * RingBusyError, recording nothing, when every buffer is on screen, queued or being written.
   * `write`, when given, writes the buffer instead of the damage copy (a transformed copy): it
   * must write everything the damage covers (then `rects` is the damage, in destination coordinates).
   * A source given as a CopySource (a wl_shm buffer) is copied through its own copyRects.
   */
  async copyFrame(
    source: CopySurface | { readonly width: number; readonly height: number; readonly copySource: CopySource },
    damage: Iterable<Rect>,
    opts: { dx?: number; dy?: number; write?: (buffer: B, needed: readonly Rect[]) => Promise<number> } = {},
  ): Promise<RingFrame<B>> {
    this.#assertOpen();
    const slot = this.#pick();
    if (!slot) {
      const states = this.#slots.map((s) => `${s.index}:${s.state}`).join(' ');
      throw new RingBusyError(`no buffer is free (${states})`);
    }
    // Damage in destination coordinates: the history is the output's.
    const dx = opts.dx ?? 0;
    const dy = opts.dy ?? 0;
    const frame = this.history.push([...damage].map((r) => ({ ...r, x: r.x + dx, y: r.y + dy })));
    const clear = slot.stale;
    if (clear) slot.frame = undefined; // zeroed below: it needs everything this frame paints
    const needed = this.history.since(slot.frame);
    // The copy reads the source where the destination needs pixels: back to source coordinates,
    // clipped to what the source covers (the rest of the buffer is not this source's to fill).
    const rects: Rect[] = [];
    for (const r of opts.write ? [] : needed) {
      const x0 = Math.max(r.x - dx, 0);
      const y0 = Math.max(r.y - dy, 0);
      const x1 = Math.min(r.x - dx + r.width, source.width);
      const y1 = Math.min(r.y - dy + r.height, source.height);
      if (x1 > x0 && y1 > y0) rects.push({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
    }
    slot.state = 'writing';
    slot.frame = undefined; // half-written content is unknown content
    try {
      if (clear) {
        await zeroFill(slot.buffer);
        slot.stale = false;
        this.stats.clears++;
      }
      if (opts.write) rects.push(...needed);
      const copy = { dx, dy, stats: this.stats };
      const bytes = await (opts.write ? opts.write(slot.buffer, needed) : 'copySource' in source ? source.copySource.copyRects(slot.buffer, rects, copy) : copyRects(source, slot.buffer, rects, copy));
      this.stats.frames++;
      if (damageArea(needed) === this.width * this.height) this.stats.fullFrames++;
      if (slot.closeWhenDone) throw new ClosedError('CopyRing'); // the catch closes the buffer
      slot.frame = frame;
      slot.state = 'ready';
      return { slot, frame, rects, bytes };
    } catch (err) {
      if (slot.closeWhenDone) slot.buffer.close();
      slot.state = 'free';
      throw err;
    }
  }

  /**
   * A frame drawn by `write` (a composition) rather than copied from one source: `damage` is in
   * buffer coordinates, `write` gets the rectangles the chosen buffer needs (the damage since the
   * frame it holds, the whole buffer when it holds none) and must paint all of them.
   */
  composeFrame(damage: Iterable<Rect>, write: (buffer: B, needed: readonly Rect[]) => Promise<number>): Promise<RingFrame<B>> {
    const none = { width: this.width, height: this.height, copySource: undefined as unknown as CopySource };
    return this.copyFrame(none, damage, { write });
  }

  /** The commit that shows `slot` was submitted. */
  markQueued(slot: RingSlot<B>): void {
    this.#assertOpen();
    const s = this.#slot(slot);
    if (s.state !== 'ready') throw new RangeError(`ring buffer ${s.index} is ${s.state}, only a ready buffer can be queued`);
    s.state = 'queued';
  }

  /** The flip that shows `slot` completed: it is on screen, and the one that was is free again. */
  markOnScreen(slot: RingSlot<B>): void {
    this.#assertOpen();
    const s = this.#slot(slot);
    if (s.state !== 'queued') throw new RangeError(`ring buffer ${s.index} is ${s.state}, only a queued buffer goes on screen`);
    for (const other of this.#slots) if (other.state === 'onscreen') other.state = 'free';
    s.state = 'onscreen';
  }

  /** Gives a ready, queued or on-screen buffer back (failed commit, output off); its content is kept. */
  release(slot: RingSlot<B>): void {
    this.#assertOpen();
    const s = this.#slot(slot);
    if (s.state === 'writing') throw new RangeError(`ring buffer ${s.index} is being written`);
    s.state = 'free';
  }

  /**
   * @internal Something else (the direct lane's copy mode) wrote the buffers and flipped them:
   * `index` is on screen, the others are free, and what every buffer holds is forgotten.
   */
  adoptOnScreen(index: number): void {
    this.#assertOpen();
    for (const s of this.#slots) {
      if (s.state === 'writing') throw new RangeError(`ring buffer ${s.index} is being written`);
      s.state = s.index === index ? 'onscreen' : 'free';
      s.frame = undefined;
    }
  }

  /**
   * Every buffer (free, queued, on screen) is zeroed right before its next write: the frames from
   * now on do not paint all of it (a smaller surface, another placement), and what they leave must
   * be black, not the pixels of an earlier source. Also forgets what the buffers hold (invalidate).
   */
  clearBeforeNextWrite(): void {
    this.#assertOpen();
    for (const s of this.#slots) {
      s.stale = true;
      s.frame = undefined;
    }
  }

  /** Forgets what every buffer holds (something else wrote them): the next frames copy in full. */
  invalidate(): void {
    for (const s of this.#slots) s.frame = undefined;
  }

  /** Closes every buffer once; a buffer still being written is closed when its copy settles. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#slots) {
      if (s.state === 'writing') s.closeWhenDone = true;
      else s.buffer.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Zeroes a buffer's plane (black in the RGB formats), inside its dma-buf's write bracket when it has one. */
async function zeroFill(b: CopySurface): Promise<void> {
  const fill = (): void => {
    const m = b.memory;
    const all = m instanceof Mapping ? m.bytes() : m instanceof ArrayBuffer ? new Uint8Array(m) : new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    const start = b.offset ?? 0;
    all.subarray(start, start + b.stride * b.height).fill(0);
  };
  if (b.dmabuf) await b.dmabuf.withCpuAccess('write', fill);
  else fill();
}
