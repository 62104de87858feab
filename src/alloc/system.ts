/**
 * Allocators of this machine behind the policy interface (types.ts): KMS dumb buffers on a
 * card, dma-heaps (system; CMA where present) and udmabuf, built on the drm layer's owners
 * (Device, GemHandle, Dmabuf, Mapping) and the raw allocation ioctls of native/alloc.cc.
 * Each Backing owns exactly: the dma-buf (Dmabuf), the GEM handle of a dumb buffer, the memfd
 * of a udmabuf, and its CPU mapping once made; close() releases them once, in reverse order.
 *
 * openSystemAllocators() looks at /dev/dri, /dev/dma_heap and /dev/udmabuf and returns the pool
 * with every allocator found, plus those missing and why.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { formatInfo, formatName } from '../formats/index.js';
import { native } from '../native.js';
import { OwnedFd } from '../fd.js';
import { InvalidArgumentError } from '../errors.js';
import { Device, type GemHandle } from '../kms/index.js';
import { Dmabuf, Mapping } from '../dmabuf/index.js';
import type { BufferDescription, Layout } from '../constraints/solve.js';
import { dumbCaps, heapCaps, linearOnly, udmabufCaps, UDMABUF_DEFAULT_LIMIT } from './catalog.js';
import { AllocatorPool } from './pool.js';
import { gbmAllocator } from './backends/allocators.js';
import { describeKmsDevice } from '../constraints/live.js';
import type { AllocationPlan, Allocator, AllocatorCaps, Backing, FdOwner, MissingAllocator, SyncFlags } from './types.js';

const DMA_BUF_SYNC_READ = 1;
const DMA_BUF_SYNC_WRITE = 2;
const DMA_BUF_SYNC_END = 4;
const F_SEAL_SHRINK = 0x0002;
const F_SEAL_SEAL = 0x0001;
const PAGE = 4096n;

const pageAlign = (v: bigint) => ((v + PAGE - 1n) / PAGE) * PAGE;

/** Live allocations per allocator name (leak checks in tests). */
const live = new Map<string, number>();
export function liveBackings(name?: string): number {
  if (name !== undefined) return live.get(name) ?? 0;
  let n = 0;
  for (const v of live.values()) n += v;
  return n;
}

class SystemBacking implements Backing {
  readonly description: BufferDescription;
  readonly #dmabuf: Dmabuf;
  readonly #extra: Array<{ close(): void }>;
  #mapping: Mapping | undefined;
  #closed = false;

  constructor(description: BufferDescription, dmabuf: Dmabuf, extra: Array<{ close(): void }>) {
    this.description = description;
    this.#dmabuf = dmabuf;
    this.#extra = extra;
    live.set(description.allocator, (live.get(description.allocator) ?? 0) + 1);
    dmabuf.setName(`primebuf ${description.allocator} ${formatName(description.format)} ${description.width}x${description.height}`.slice(0, 31));
  }

  get closed(): boolean {
    return this.#closed;
  }

  exportFd(): FdOwner {
    return new OwnedFd(native.dupFd(this.#dmabuf.fd), `dma-buf of ${this.description.allocator}`);
  }

  map(): Uint8Array {
    this.#mapping ??= this.#dmabuf.map({ length: this.description.size });
    return this.#mapping.bytes();
  }

  sync(flags: SyncFlags): void {
    const f = (flags.read ? DMA_BUF_SYNC_READ : 0) | (flags.write ? DMA_BUF_SYNC_WRITE : 0) | (flags.phase === 'end' ? DMA_BUF_SYNC_END : 0);
    this.#dmabuf.sync(f);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mapping?.close();
    this.#dmabuf.close();
    for (const x of this.#extra.reverse()) x.close();
    live.set(this.description.allocator, (live.get(this.description.allocator) ?? 1) - 1);
  }
}

function describe(plan: AllocationPlan, caps: AllocatorCaps, layout: Layout): BufferDescription {
  const d: BufferDescription = { ...layout, allocator: caps.name, contiguous: caps.contiguous, cpuCache: caps.cpuCache };
  return caps.device !== undefined ? { ...d, allocatedOn: caps.device } : d;
}

/** KMS dumb buffers on a card, exported with PRIME. */
export class DumbAllocator implements Allocator {
  readonly caps: AllocatorCaps;
  readonly #device: Device;

  /** @param device an open primary node with DRM_CAP_DUMB_BUFFER; the allocator does not own it. */
  constructor(device: Device) {
    this.#device = device;
    this.caps = dumbCaps(basename(device.path));
  }

  canAllocate(format: number, modifier: bigint): boolean {
    return linearOnly(format, modifier);
  }

  allocate(plan: AllocationPlan): Backing {
    const info = formatInfo(plan.format)!;
    const want = plan.layout;
    // One plane with a pixel size: ask for the pixel width whose pitch meets the alignment.
    // Several planes: one 8-bit "image" as wide as the planned pitch and tall enough for all.
    let width: number, height: number, bpp: number;
    if (info.planes === 1 && info.cpp[0]! > 0) {
      bpp = info.cpp[0]! * 8;
      width = Number(want.planes[0]!.pitch) / info.cpp[0]!;
      height = want.allocHeight;
      if (!Number.isInteger(width)) {
        bpp = 8;
        width = Number(want.planes[0]!.pitch);
      }
    } else {
      bpp = 8;
      width = Number(want.planes[0]!.pitch);
      height = Number((want.size + want.planes[0]!.pitch - 1n) / want.planes[0]!.pitch);
    }
    const raw = native.dumbCreate(this.#device.fd, width, height, bpp);
    const gem: GemHandle = this.#device.adoptHandle(raw.handle, `dumb ${width}x${height}x${bpp}`);
    try {
      const pitch = BigInt(raw.pitch);
      let layout: Layout;
      if (pitch === want.planes[0]!.pitch) layout = { ...want, size: raw.size };
      else if (info.planes === 1) layout = { ...want, planes: [{ offset: 0n, pitch }], size: raw.size };
      else throw new InvalidArgumentError(`${this.caps.name} gave pitch ${pitch} for a ${width}-byte-wide dumb buffer; ${formatName(plan.format)} was planned with ${want.planes[0]!.pitch}`);
      const dmabuf = this.#device.exportDmabuf(gem);
      return new SystemBacking(describe(plan, this.caps, layout), dmabuf, [gem]);
    } catch (err) {
      gem.close();
      throw err;
    }
  }
}

/** A dma-heap (/dev/dma_heap/<name>). */
export class HeapAllocator implements Allocator {
  readonly caps: AllocatorCaps;
  readonly #heap: OwnedFd;

  constructor(name: string, opts: { contiguous?: boolean } = {}) {
    this.caps = { ...heapCaps(name), ...(opts.contiguous !== undefined ? { contiguous: opts.contiguous } : {}) };
    this.#heap = new OwnedFd(native.drmOpenPath(`/dev/dma_heap/${name}`), `dma-heap ${name}`);
  }

  canAllocate(format: number, modifier: bigint): boolean {
    return linearOnly(format, modifier);
  }

  allocate(plan: AllocationPlan): Backing {
    const size = pageAlign(plan.layout.size);
    const dmabuf = new Dmabuf(native.dmaHeapAlloc(this.#heap.fd, size), `${this.caps.name} buffer`);
    return new SystemBacking(describe(plan, this.caps, { ...plan.layout, size }), dmabuf, []);
  }

  close(): void {
    this.#heap.close();
  }
}

/** udmabuf: a sealed memfd turned into a dma-buf. */
export class UdmabufAllocator implements Allocator {
  readonly caps: AllocatorCaps;
  readonly #dev: OwnedFd;

  constructor(maxSize: bigint = udmabufLimit()) {
    this.caps = udmabufCaps(maxSize);
    this.#dev = new OwnedFd(native.drmOpenPath('/dev/udmabuf'), '/dev/udmabuf');
  }

  canAllocate(format: number, modifier: bigint): boolean {
    return linearOnly(format, modifier);
  }

  allocate(plan: AllocationPlan): Backing {
    const size = pageAlign(plan.layout.size);
    const memfd = new OwnedFd(native.memfdCreate('primebuf-udmabuf', true), 'udmabuf memfd');
    try {
      native.ftruncateFd(memfd.fd, size);
      native.addSeals(memfd.fd, F_SEAL_SHRINK | F_SEAL_SEAL);
      const dmabuf = new Dmabuf(native.udmabufCreate(this.#dev.fd, memfd.fd, 0n, size), 'udmabuf buffer');
      return new SystemBacking(describe(plan, this.caps, { ...plan.layout, size }), dmabuf, [memfd]);
    } catch (err) {
      memfd.close();
      throw err;
    }
  }

  close(): void {
    this.#dev.close();
  }
}

/** udmabuf's size limit from the module parameter, else the default. */
export function udmabufLimit(): bigint {
  try {
    const mb = BigInt(readFileSync('/sys/module/udmabuf/parameters/size_limit_mb', 'utf8').trim());
    return mb * 1024n * 1024n;
  } catch {
    return UDMABUF_DEFAULT_LIMIT;
  }
}

export interface SystemAllocators {
  readonly pool: AllocatorPool;
  readonly devices: ReadonlyMap<string, Device>;
  close(): void;
}

/**
 * Opens every allocator present: dumb buffers on each card that does not deny
 * DRM_CAP_DUMB_BUFFER (vgem's card has no KMS, does not answer the cap, and makes dumb
 * buffers), every dma-heap, udmabuf, and with `gbm` GBM on each card (src/alloc/backends). Heaps other than
 * 'system' are taken as contiguous (CMA). `cards` limits which cards are opened.
 */
export function openSystemAllocators(opts: { cards?: readonly string[]; gbm?: boolean } = {}): SystemAllocators {
  const allocators: Allocator[] = [];
  const missing: MissingAllocator[] = [];
  const devices = new Map<string, Device>();
  const closers: Array<{ close(): void }> = [];
  try {
    const cards = opts.cards ?? (existsSync('/dev/dri') ? readdirSync('/dev/dri').filter((n) => /^card\d+$/.test(n)).sort() : []);
    if (cards.length === 0) missing.push({ name: 'dumb', kind: 'dumb', reason: 'no /dev/dri/card* on this machine' });
    for (const c of cards) {
      const d = Device.open(`/dev/dri/${c}`);
      devices.set(c, d);
      closers.push(d);
      // A driver without KMS (vgem) does not answer DRM_CAP_DUMB_BUFFER (EINVAL) yet creates
      // dumb buffers: only an explicit 0 rules dumb buffers out.
      if (d.tryGetCap('DUMB_BUFFER', -1n) === 0n) missing.push({ name: `dumb@${c}`, kind: 'dumb', reason: `${c} has no DRM_CAP_DUMB_BUFFER` });
      else allocators.push(new DumbAllocator(d));
      if (opts.gbm) {
        // GBM (drm layer's backend) with the modifiers the card's planes list; LINEAR for a card
        // without KMS. Missing libgbm or a driver is reported, not fatal.
        try {
          const mods = new Set<bigint>([0n]);
          if (d.nodeType === 'primary' && d.tryGetCap('DUMB_BUFFER', -1n) === 1n) {
            try {
              for (const p of describeKmsDevice(d).planes) for (const x of p.formats) mods.add(x.modifier);
            } catch {
              // no KMS (vgem): LINEAR only
            }
          }
          const g = gbmAllocator(d, [...mods]);
          closers.push(g);
          allocators.push(g);
        } catch (err) {
          missing.push({ name: `gbm@${c}`, kind: 'gbm', reason: (err as Error).message });
        }
      }
    }
    const heaps = existsSync('/dev/dma_heap') ? readdirSync('/dev/dma_heap').sort() : [];
    if (heaps.length === 0) missing.push({ name: 'dma-heap:system', kind: 'dma-heap', reason: 'no /dev/dma_heap on this machine' });
    if (!heaps.some((h) => h !== 'system' && h !== 'system-uncached')) missing.push({ name: 'dma-heap:cma', kind: 'dma-heap', reason: 'no CMA heap in /dev/dma_heap' });
    for (const h of heaps) {
      const a = new HeapAllocator(h);
      closers.push(a);
      allocators.push(a);
    }
    if (existsSync('/dev/udmabuf')) {
      const u = new UdmabufAllocator();
      closers.push(u);
      allocators.push(u);
    } else missing.push({ name: 'udmabuf', kind: 'udmabuf', reason: 'no /dev/udmabuf on this machine' });
  } catch (err) {
    for (const c of closers.reverse()) c.close();
    throw err;
  }
  return {
    pool: new AllocatorPool(allocators, missing),
    devices,
    close() {
      for (const c of closers.reverse()) c.close();
    },
  };
}
