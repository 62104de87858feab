/**
 * GBM behind the pool's `Allocator` interface (src/alloc/types.ts), and DmabufBacking: a Backing
 * that owns exactly one dma-buf plus whatever keeps its memory alive (a GBM bo, a dumb buffer)
 * and gives out duplicates of its fd. The dumb, dma-heap and udmabuf allocators of the pool
 * live in src/alloc/system.ts (constraints area) over the same drm-layer owners.
 */
import { DmaBuf, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE } from '../../dmabuf/dmabuf.js';
import type { Mapping } from '../../dmabuf/mapping.js';
import { InvalidArgumentError, ClosedError } from '../../errors.js';
import { OwnedFd } from '../../fd.js';
import { DRM_FORMAT_MOD_INVALID, formatInfo } from '../../formats/index.js';
import type { Device } from '../../kms/device.js';
import { native } from '../../native.js';
import type { BufferDescription, Layout } from '../../constraints/solve.js';
import { gbmCaps } from '../catalog.js';
import type { AllocationPlan, Allocator, Backing, FdOwner, SyncFlags } from '../types.js';
import { GbmDevice, GBM_BO_USE_LINEAR, GBM_BO_USE_RENDERING, GBM_BO_USE_SCANOUT, type GbmBo } from './gbm.js';

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
        if (plan.modifier === 0n) checkRules(plan, BigInt(bo.planes[0]!.stride), caps.name);
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
