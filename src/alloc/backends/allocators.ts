/**
 * The real allocators behind the pool's `Allocator` interface (src/alloc/types.ts): each makes
 * a Backing that owns exactly one dma-buf (plus whatever keeps it alive: a dumb buffer's GEM
 * handle, a GBM bo) and gives out duplicates of its fd.
 */
import { DmaBuf, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE } from '../../dmabuf/dmabuf.js';
import type { Mapping } from '../../dmabuf/mapping.js';
import { InvalidArgumentError, ClosedError } from '../../errors.js';
import { OwnedFd } from '../../fd.js';
import { DRM_FORMAT_MOD_INVALID, formatInfo } from '../../formats/index.js';
import type { Device } from '../../kms/device.js';
import { native } from '../../native.js';
import type { BufferDescription, Layout } from '../../constraints/solve.js';
import { dumbCaps, gbmCaps, heapCaps, linearOnly, udmabufCaps } from '../catalog.js';
import type { AllocationPlan, Allocator, Backing, FdOwner, SyncFlags } from '../types.js';
import { DumbBuffer } from './dumb.js';
import { GbmDevice, GBM_BO_USE_LINEAR, GBM_BO_USE_RENDERING, GBM_BO_USE_SCANOUT, type GbmBo } from './gbm.js';
import { DmaHeap } from './heap.js';
import { UdmabufAllocator, udmabufSizeLimit } from './udmabuf.js';

interface Closable {
  close(): void;
}

/** A Backing over one owned dma-buf and the objects that keep its memory alive. */
export class DmabufBacking implements Backing {
  readonly description: BufferDescription;
  readonly #dmabuf: DmaBuf;
  readonly #keep: Closable[];
  #mapping: Mapping | undefined;
  #closed = false;

  constructor(description: BufferDescription, dmabuf: DmaBuf, keep: Closable[] = []) {
    this.description = description;
    this.#dmabuf = dmabuf;
    this.#keep = keep;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The owned dma-buf (valid while the backing is open). */
  get dmabuf(): DmaBuf {
    if (this.#closed) throw new ClosedError(`${this.description.allocator} backing`);
    return this.#dmabuf;
  }

  exportFd(): FdOwner {
    return new OwnedFd(native.dupFd(this.dmabuf.fd), `dma-buf of ${this.description.allocator}`);
  }

  map(): Uint8Array {
    this.#mapping ??= this.dmabuf.map();
    return this.#mapping.bytes();
  }

  sync(flags: SyncFlags): void {
    const access = (flags.read ? DMA_BUF_SYNC_READ : 0) | (flags.write ? DMA_BUF_SYNC_WRITE : 0);
    this.dmabuf.sync((flags.phase === 'start' ? DMA_BUF_SYNC_START : DMA_BUF_SYNC_END) | (access || DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mapping?.close();
    this.#dmabuf.close();
    for (const k of this.#keep.reverse()) k.close();
  }
}

function describe(layout: Layout, allocator: string, extra: Partial<BufferDescription>, contiguous: boolean, cpuCache: BufferDescription['cpuCache']): BufferDescription {
  return { ...layout, allocator, contiguous, cpuCache, ...extra };
}

function checkRules(plan: AllocationPlan, pitch: bigint, what: string): void {
  if (pitch % BigInt(plan.rules.pitchAlign) !== 0n) {
    throw new InvalidArgumentError(`${what}: the driver's pitch ${pitch} does not meet the pitch alignment ${plan.rules.pitchAlign}`);
  }
  if (pitch < plan.layout.planes[0]!.pitch) {
    throw new InvalidArgumentError(`${what}: the driver's pitch ${pitch} is below the planned ${plan.layout.planes[0]!.pitch}`);
  }
}

/** KMS dumb buffers on `device` (single-plane LINEAR formats with whole-byte pixels). */
export function dumbAllocator(device: Device): Allocator {
  const caps = dumbCaps(device.name);
  return {
    caps,
    canAllocate: (format, modifier) => {
      const info = formatInfo(format);
      return linearOnly(format, modifier) && info !== undefined && info.planes === 1 && info.cpp[0]! > 0;
    },
    allocate(plan) {
      const info = formatInfo(plan.format);
      if (!info || info.planes !== 1 || !info.cpp[0]) throw new InvalidArgumentError(`dumb buffers cannot hold ${info?.name ?? plan.format}`);
      const buf = DumbBuffer.create(device, { width: plan.layout.allocWidth, height: plan.layout.allocHeight, bpp: info.cpp[0] * 8 });
      try {
        checkRules(plan, BigInt(buf.pitch), caps.name);
        const dmabuf = buf.exportDmabuf();
        const layout: Layout = { ...plan.layout, planes: [{ offset: 0n, pitch: BigInt(buf.pitch) }], size: buf.size };
        return new DmabufBacking(describe(layout, caps.name, { allocatedOn: device.name }, caps.contiguous, caps.cpuCache), dmabuf, [buf]);
      } catch (err) {
        buf.close();
        throw err;
      }
    },
  };
}

/** A dma-heap ('system' by default): primebuf's own linear layout. */
export function heapAllocator(name = 'system'): Allocator & { close(): void } {
  const caps = heapCaps(name);
  let heap: DmaHeap | undefined;
  return {
    caps,
    canAllocate: linearOnly,
    allocate(plan) {
      heap ??= DmaHeap.open(name);
      const dmabuf = heap.allocate(plan.layout.size);
      return new DmabufBacking(describe(plan.layout, caps.name, {}, caps.contiguous, caps.cpuCache), dmabuf);
    },
    close() {
      heap?.close();
      heap = undefined;
    },
  };
}

/** udmabuf over sealed memfds: primebuf's own linear layout, up to size_limit_mb. */
export function udmabufAllocator(): Allocator & { close(): void } {
  const caps = udmabufCaps(udmabufSizeLimit() ?? undefined);
  let dev: UdmabufAllocator | undefined;
  return {
    caps,
    canAllocate: linearOnly,
    allocate(plan) {
      if (caps.maxSize !== undefined && plan.layout.size > caps.maxSize) {
        throw new InvalidArgumentError(`udmabuf: ${plan.layout.size} bytes exceed size_limit_mb (${caps.maxSize} bytes)`);
      }
      dev ??= UdmabufAllocator.open();
      const dmabuf = dev.allocate(plan.layout.size);
      return new DmabufBacking(describe(plan.layout, caps.name, {}, caps.contiguous, caps.cpuCache), dmabuf);
    },
    close() {
      dev?.close();
      dev = undefined;
    },
  };
}

/** GBM on `device` with the modifiers the driver lists (throws NativeUnavailableError without GBM). */
export function gbmAllocator(device: Device, modifiers: readonly bigint[]): Allocator & { close(): void } {
  const gbm = GbmDevice.create(device);
  const caps = gbmCaps(device.name);
  return {
    caps,
    canAllocate: (format, modifier) => formatInfo(format) !== undefined && (modifiers.includes(modifier) || modifier === DRM_FORMAT_MOD_INVALID),
    allocate(plan) {
      const usage = GBM_BO_USE_RENDERING | GBM_BO_USE_SCANOUT;
      const bo: GbmBo =
        plan.modifier === DRM_FORMAT_MOD_INVALID
          ? gbm.createBo(plan.width, plan.height, plan.format, null, usage)
          : gbm.createBo(plan.width, plan.height, plan.format, [plan.modifier], plan.modifier === 0n ? usage | GBM_BO_USE_LINEAR : usage);
      try {
        if (plan.modifier !== DRM_FORMAT_MOD_INVALID && bo.modifier !== plan.modifier) {
          throw new InvalidArgumentError(`${caps.name}: asked for modifier 0x${plan.modifier.toString(16)}, got 0x${bo.modifier.toString(16)}`);
        }
        const dmabuf = bo.planes[0]!.dmabuf.dup();
        const size = dmabuf.trySize() ?? plan.layout.size;
        const layout: Layout = {
          ...plan.layout,
          modifier: bo.modifier,
          planes: bo.planes.map((p) => ({ offset: BigInt(p.offset), pitch: BigInt(p.stride) })),
          size,
        };
        return new DmabufBacking(describe(layout, caps.name, { allocatedOn: device.name }, caps.contiguous, caps.cpuCache), dmabuf, [bo]);
      } catch (err) {
        bo.close();
        throw err;
      }
    },
    close() {
      gbm.close();
    },
  };
}
