/**
 * Atomic requests over property names: `req.set(plane, 'FB_ID', fb)`; TEST_ONLY, blocking and
 * non-blocking commits; page-flip events (one per affected CRTC) delivered on the event loop;
 * out-fences (OUT_FENCE_PTR, WRITEBACK_OUT_FENCE_PTR) returned as owned SyncFiles.
 */
import { InvalidArgumentError, SystemError } from '../errors.js';
import { native } from '../native.js';
import { SyncFile } from '../dmabuf/sync-file.js';
import type { Device } from './device.js';
import type { PageFlipEvent } from './events.js';

export const DRM_MODE_PAGE_FLIP_EVENT = 0x01;
export const DRM_MODE_PAGE_FLIP_ASYNC = 0x02;
export const DRM_MODE_ATOMIC_TEST_ONLY = 0x0100;
export const DRM_MODE_ATOMIC_NONBLOCK = 0x0200;
export const DRM_MODE_ATOMIC_ALLOW_MODESET = 0x0400;

/** Anything with a KMS object id (Plane, Crtc, Connector, Framebuffer, PropertyBlob) or the id. */
export type KmsRef = number | { readonly id: number };
export type PropertyValue = bigint | number | boolean | { readonly id: number } | null;

function idOf(r: KmsRef): number {
  return typeof r === 'number' ? r : r.id;
}

const U64_END = 1n << 64n;
/**
 * BigInts of small non-negative integers (object ids, rectangle values), made once: BigInt(n)
 * allocates, and a frame's request sets the same few dozen values every time. Bounded.
 */
const smallBigints = new Map<number, bigint>();

function valueOf(v: PropertyValue): bigint {
  if (v === null) return 0n;
  if (typeof v === 'bigint') return v >= 0n && v < U64_END ? v : BigInt.asUintN(64, v); // (asUintN allocates, even for a value in range)
  if (typeof v === 'boolean') return v ? 1n : 0n;
  const n = typeof v === 'number' ? v : v.id;
  if (n >= 0 && n <= 0xffffffff && Number.isInteger(n)) {
    let b = smallBigints.get(n);
    if (b === undefined) {
      if (smallBigints.size >= 4096) smallBigints.clear();
      smallBigints.set(n, (b = BigInt(n)));
    }
    return b;
  }
  return n >= 0 ? BigInt(n) : BigInt.asUintN(64, BigInt(n)); // (BigInt throws on a fraction)
}

/**
 * The arrays a commit hands the kernel, one set per request size, reused: the native call copies
 * them into its ioctl argument before it returns, and a frame's request has the same size every
 * time (per frame, not three typed arrays and their buffers).
 */
const scratch = new Map<number, { objs: Uint32Array; props: Uint32Array; values: BigUint64Array }>();

function scratchOf(n: number): { objs: Uint32Array; props: Uint32Array; values: BigUint64Array } {
  let a = scratch.get(n);
  if (!a) {
    if (scratch.size >= 64) scratch.clear();
    scratch.set(n, (a = { objs: new Uint32Array(n), props: new Uint32Array(n), values: new BigUint64Array(n) }));
  }
  return a;
}

export interface CommitOptions {
  allowModeset?: boolean;
}

export interface CommitResult {
  /** out-fences in the order outFence() was called (-1 slots are omitted: null) */
  fences: Array<SyncFile | null>;
}

export interface FlipResult extends CommitResult {
  /** resolves with one page-flip event per affected CRTC */
  flip: Promise<PageFlipEvent[]>;
}

export class AtomicRequest {
  readonly device: Device;
  // The entries as parallel arrays, filled up to #n: no object per property, and a request that
  // is reset() and filled again (an output's commit every frame) writes the same slots in place.
  readonly #objs: number[] = [];
  readonly #props: number[] = [];
  readonly #values: bigint[] = [];
  readonly #fence: boolean[] = [];
  #n = 0;
  #fenceCount = 0;

  constructor(device: Device) {
    this.device = device;
  }

  /** Empties the request for reuse (its arrays are kept). */
  reset(): this {
    this.#n = 0;
    this.#fenceCount = 0;
    return this;
  }

  #propId(obj: number, name: string): number {
    const props = this.device.objectPropertyIds(obj);
    const id = props.get(name);
    if (id === undefined) {
      throw new InvalidArgumentError(`${this.device.name}: object ${obj} has no property '${name}' (it has ${[...props.keys()].join(', ')})`);
    }
    return id;
  }

  #put(obj: number, name: string, value: bigint, fence: boolean): void {
    const prop = this.#propId(obj, name);
    // a request holds a few dozen entries at most: a scan, no string key per set (per frame)
    const objs = this.#objs;
    const props = this.#props;
    const n = this.#n;
    let i = 0;
    while (i < n && (objs[i] !== obj || props[i] !== prop)) i++;
    if (i < n && this.#fence[i]) this.#fenceCount--;
    if (i === n) this.#n++;
    objs[i] = obj;
    props[i] = prop;
    this.#values[i] = value;
    this.#fence[i] = fence;
    if (fence) this.#fenceCount++;
  }

  /** Sets a property by name (a later set of the same property replaces the earlier one). */
  set(obj: KmsRef, name: string, value: PropertyValue): this {
    this.#put(idOf(obj), name, valueOf(value), false);
    return this;
  }

  /** Sets several properties of one object. */
  setAll(obj: KmsRef, values: Record<string, PropertyValue>): this {
    const id = idOf(obj);
    for (const k in values) this.#put(id, k, valueOf(values[k] as PropertyValue), false);
    return this;
  }

  /** Asks for an out-fence through a fence-pointer property (OUT_FENCE_PTR, WRITEBACK_OUT_FENCE_PTR). */
  outFence(obj: KmsRef, name = 'OUT_FENCE_PTR'): this {
    this.#put(idOf(obj), name, 0n, true);
    return this;
  }

  get size(): number {
    return this.#n;
  }

  /**
   * The request's properties in the order they were first set (a later set replaces the value in
   * place): object id, property id, value, and whether it is an out-fence slot. For logs and tests.
   */
  entries(): Array<{ readonly obj: number; readonly prop: number; readonly value: bigint; readonly fence: boolean }> {
    const out = [];
    for (let i = 0; i < this.#n; i++) out.push({ obj: this.#objs[i]!, prop: this.#props[i]!, value: this.#values[i]!, fence: this.#fence[i]! });
    return out;
  }

  #run(flags: number, userData?: bigint): number[] {
    const n = this.#n;
    const { objs, props, values } = scratchOf(n);
    // the fence slots' array only when there are fence pointers (not on a steady-state flip)
    const slots: number[] | undefined = this.#fenceCount > 0 ? [] : undefined;
    for (let i = 0; i < n; i++) {
      objs[i] = this.#objs[i]!;
      props[i] = this.#props[i]!;
      values[i] = this.#values[i]!;
      if (this.#fence[i]) slots!.push(i);
    }
    return native.drmAtomicCommit(this.device.fd, objs, props, values, slots, flags, userData);
  }

  #fences(fds: number[]): Array<SyncFile | null> {
    if (fds.length === 0) return fds as never[]; // a steady-state flip has no out-fences: the native call's own empty array
    return fds.map((fd) => (fd >= 0 ? new SyncFile(fd, `${this.device.name} out-fence`) : null));
  }

  /** DRM_MODE_ATOMIC_TEST_ONLY: throws SystemError (with the kernel's errno) when refused. */
  test(opts: CommitOptions = {}): void {
    if (this.#fenceCount > 0) {
      // fence pointers are filled only by real commits; test the rest
      const copy = new AtomicRequest(this.device);
      for (let i = 0; i < this.#n; i++) {
        if (this.#fence[i]) continue;
        const j = copy.#n++;
        copy.#objs[j] = this.#objs[i]!;
        copy.#props[j] = this.#props[i]!;
        copy.#values[j] = this.#values[i]!;
        copy.#fence[j] = false;
      }
      copy.test(opts);
      return;
    }
    this.#run(DRM_MODE_ATOMIC_TEST_ONLY | (opts.allowModeset ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0));
  }

  /** test() as a value: { ok } or { ok: false, error }. */
  check(opts: CommitOptions = {}): { ok: true } | { ok: false; error: SystemError } {
    try {
      this.test(opts);
      return { ok: true };
    } catch (err) {
      if (err instanceof SystemError) return { ok: false, error: err };
      throw err;
    }
  }

  /** A blocking commit: returns when the new state is on screen (the kernel waits). */
  commitBlocking(opts: CommitOptions = {}): CommitResult {
    return { fences: this.#fences(this.#run(opts.allowModeset ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0)) };
  }

  /**
   * A commit with a page-flip event per affected CRTC, non-blocking by default (returns at once;
   * `flip` resolves from the event loop when the flip completed at vblank).
   */
  commit(opts: CommitOptions & { nonBlocking?: boolean; crtcCount?: number } = {}): FlipResult {
    // crtcCount: the caller knows how many CRTCs the request touches (no GETPLANE ioctls per commit)
    const crtcs = opts.crtcCount ?? this.#affectedCrtcs();
    const events = this.device.events;
    const token = events.expect(crtcs);
    let fds: number[];
    try {
      fds = this.#run(
        DRM_MODE_PAGE_FLIP_EVENT |
          (opts.nonBlocking === false ? 0 : DRM_MODE_ATOMIC_NONBLOCK) |
          (opts.allowModeset ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0),
        token.userData,
      );
    } catch (err) {
      token.cancel();
      throw err;
    }
    return { fences: this.#fences(fds), flip: token.done };
  }

  /** How many CRTCs this request touches: CRTC objects, CRTC_ID values, planes' current CRTC. */
  #affectedCrtcs(): number {
    const crtcIds = new Set(this.device.resourceIds().crtcs);
    const affected = new Set<number>();
    for (let i = 0; i < this.#n; i++) {
      const obj = this.#objs[i]!;
      if (crtcIds.has(obj)) affected.add(obj);
      const name = this.device.propertyInfo(this.#props[i]!).name;
      if (name === 'CRTC_ID' && this.#values[i] !== 0n) affected.add(Number(this.#values[i]));
    }
    const planeIds = new Set(this.device.resourceIds().planes);
    const seen = new Set<number>();
    for (let i = 0; i < this.#n; i++) {
      const obj = this.#objs[i]!;
      if (crtcIds.has(obj) || seen.has(obj)) continue;
      seen.add(obj);
      if (planeIds.has(obj)) {
        const cur = native.drmGetPlane(this.device.fd, obj).crtcId;
        if (cur !== 0) affected.add(cur);
      }
    }
    return Math.max(1, affected.size);
  }
}
