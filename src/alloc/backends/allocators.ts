/**
 * GBM behind the pool's `Allocator` interface (src/alloc/types.ts), and DmabufBacking: a Backing
 * that owns exactly one dma-buf plus whatever keeps its memory alive (a GBM bo, a dumb buffer)
 * and gives out duplicates of its fd. The dumb, dma-heap and udmabuf allocators of the pool
 * live in src/alloc/system.ts (constraints area) over the same drm-layer owners.
 */
import { Dmabuf, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE } from '../../dmabuf/dmabuf.js';
import { ClosedError, InvalidArgumentError, SystemError } from '../../errors.js';
import { OwnedFd } from '../../fd.js';
import { DRM_FORMAT_MOD_INVALID, formatInfo } from '../../formats/index.js';
import type { Device } from '../../kms/device.js';
import { native } from '../../native.js';
import { Mapping } from '../../dmabuf/mapping.js';
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
  readonly #dmabuf: Dmabuf;
  readonly #keep: Closable[];
  readonly #mapper: (() => { bytes(): Uint8Array; close(): void }) | undefined;
  #mapping: { bytes(): Uint8Array; close(): void } | undefined;
  #closed = false;

  /** `mapper` maps the buffer for the CPU when mmap of the dma-buf is not the way (GBM). */
  constructor(description: BufferDescription, dmabuf: Dmabuf, keep: Closable[] = [], mapper?: () => { bytes(): Uint8Array; close(): void }) {
    this.description = description;
    this.#mapper = mapper;
    this.#dmabuf = dmabuf;
    this.#keep = keep;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The owned dma-buf (valid while the backing is open). */
  get dmabuf(): Dmabuf {
    if (this.#closed) throw new ClosedError(`${this.description.allocator} backing`);
    return this.#dmabuf;
  }

  exportFd(): FdOwner {
    return new OwnedFd(native.dupFd(this.dmabuf.fd), `dma-buf of ${this.description.allocator}`);
  }

  map(): Uint8Array {
    if (!this.#mapping) {
      const d = this.dmabuf; // throws ClosedError once closed
      this.#mapping = this.#mapper ? this.#mapper() : d.map();
    }
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
      let bo: GbmBo;
      let linearByFlag = false;
      if (plan.modifier === DRM_FORMAT_MOD_INVALID) {
        bo = gbm.createBo(plan.width, plan.height, plan.format, null, usage);
      } else {
        try {
          bo = gbm.createBo(plan.width, plan.height, plan.format, [plan.modifier], plan.modifier === 0n ? usage | GBM_BO_USE_LINEAR : usage);
        } catch (err) {
          // Drivers without modifier support (Mesa's kms_swrast on vkms) refuse the explicit list;
          // LINEAR is still exactly what GBM_BO_USE_LINEAR makes.
          if (plan.modifier !== 0n || !(err instanceof SystemError)) throw err;
          bo = gbm.createBo(plan.width, plan.height, plan.format, null, usage | GBM_BO_USE_LINEAR);
          linearByFlag = true;
        }
      }
      try {
        if (linearByFlag && bo.modifier === DRM_FORMAT_MOD_INVALID) {
          // implicit, but linear by the flag
        } else if (plan.modifier !== DRM_FORMAT_MOD_INVALID && bo.modifier !== plan.modifier) {
          throw new InvalidArgumentError(`${caps.name}: asked for modifier 0x${plan.modifier.toString(16)}, got 0x${bo.modifier.toString(16)}`);
        }
        if (plan.modifier === 0n) checkRules(plan, BigInt(bo.planes[0]!.stride), caps.name);
        const dmabuf = bo.planes[0]!.dmabuf.dup();
        const size = dmabuf.trySize() ?? plan.layout.size;
        const layout: Layout = {
          ...plan.layout,
          modifier: linearByFlag ? plan.modifier : bo.modifier,
          planes: bo.planes.map((p) => ({ offset: BigInt(p.offset), pitch: BigInt(p.stride) })),
          size,
        };
        // GBM exports plane fds read-only (no DRM_RDWR), so the CPU maps through gbm_bo_map, or,
        // where the GBM backend cannot map (Mesa's kms_swrast), through the device's GEM mmap
        // offset of the same object (DRM_IOCTL_MODE_MAP_DUMB works on the driver's own objects).
        const mapper = (): { bytes(): Uint8Array; close(): void } => {
          try {
            return bo.map();
          } catch (err) {
            if (!(err instanceof SystemError)) throw err;
            const h = device.importDmabuf(bo.planes[0]!.dmabuf);
            try {
              const offset = native.dumbMapOffset(device.fd, h.handle);
              return Mapping.map(device.fd, offset, size, true, `mapping of ${caps.name} bo`);
            } finally {
              h.close();
            }
          }
        };
        return new DmabufBacking(describe(layout, caps.name, { allocatedOn: device.name }, caps.contiguous, caps.cpuCache), dmabuf, [bo], mapper);
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
