/**
 * The allocators of src/alloc/backends behind the pool's `Allocator` interface
 * (src/alloc/types.ts): each turns an AllocationPlan into one DmabufBacking over the backend's
 * own buffer (DumbBuffer, a dma-heap or udmabuf dma-buf, a GbmBo), with the policy checks the
 * pool relies on (the driver's pitch against the plan and its alignment rules).
 * Ownership is settled before anything can fail: every part made is closed on an error.
 */
import type { Dmabuf } from '../../dmabuf/dmabuf.js';
import { Mapping } from '../../dmabuf/mapping.js';
import { InvalidArgumentError, SystemError } from '../../errors.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, formatInfo, formatName } from '../../formats/index.js';
import type { Device } from '../../kms/device.js';
import { native } from '../../native.js';
import type { BufferDescription, Layout } from '../../constraints/solve.js';
import { dumbCaps, gbmCaps, heapCaps, linearOnly, udmabufCaps } from '../catalog.js';
import type { AllocationPlan, Allocator, AllocatorCaps } from '../types.js';
import { DmabufBacking, nameDmabuf, pageAlign, type BackingMapping, type Closable } from './backing.js';
import { DumbBuffer } from './dumb.js';
import { GbmDevice, GBM_BO_USE_LINEAR, GBM_BO_USE_RENDERING, GBM_BO_USE_SCANOUT, type GbmBo } from './gbm.js';
import { DmaHeap } from './heap.js';
import { UdmabufAllocator, udmabufSizeLimit } from './udmabuf.js';
import { allocTestHooks } from './test-hooks.js';

/** An allocator for AllocatorPool that owns what it opened (a heap fd, /dev/udmabuf, GBM). */
export interface PoolAllocator extends Allocator {
  close(): void;
}

function describe(caps: AllocatorCaps, layout: Layout): BufferDescription {
  const d: BufferDescription = { ...layout, allocator: caps.name, contiguous: caps.contiguous, cpuCache: caps.cpuCache };
  return caps.device !== undefined ? { ...d, allocatedOn: caps.device } : d;
}

/**
 * The backing over `dmabuf` and what keeps it alive, named after its buffer. Closes them all
 * when `layout()` (the checks that need the made buffer) throws.
 */
function settle(caps: AllocatorCaps, layout: () => Layout, dmabuf: () => Dmabuf, keep: Closable[], mapper?: () => BackingMapping): DmabufBacking {
  let d: Dmabuf | undefined;
  try {
    const description = describe(caps, layout());
    d = dmabuf();
    nameDmabuf(d, description);
    allocTestHooks.afterDmabuf?.(caps.name);
    return new DmabufBacking(description, d, keep, mapper);
  } catch (err) {
    d?.close();
    for (const k of [...keep].reverse()) k.close();
    throw err;
  }
}

/** KMS dumb buffers on `device` (a node with DRM_CAP_DUMB_BUFFER, or vgem), exported with PRIME. The device is not owned. */
export function dumbPoolAllocator(device: Device): PoolAllocator {
  const caps = dumbCaps(device.name);
  return {
    caps,
    canAllocate: linearOnly,
    allocate(plan) {
      const info = formatInfo(plan.format)!;
      const want = plan.layout;
      const planned = want.planes[0]!.pitch;
      // One plane with a pixel size: ask for the pixel width whose pitch meets the alignment.
      // Otherwise one 8-bit "image" as wide as the planned pitch and tall enough for all planes.
      const cpp = info.cpp[0]!;
      let opts = { width: Number(planned), height: Number((want.size + planned - 1n) / planned), bpp: 8 };
      if (info.planes === 1 && cpp > 0) {
        opts = Number.isInteger(Number(planned) / cpp) ? { width: Number(planned) / cpp, height: want.allocHeight, bpp: cpp * 8 } : { ...opts, height: want.allocHeight };
      }
      const dumb = DumbBuffer.create(device, opts);
      const layout = (): Layout => {
        const pitch = BigInt(dumb.pitch);
        if (pitch === planned) return { ...want, size: dumb.size };
        if (info.planes === 1) return { ...want, planes: [{ offset: 0n, pitch }], size: dumb.size };
        throw new InvalidArgumentError(`${caps.name} gave pitch ${pitch} for a ${opts.width}-byte-wide dumb buffer; ${formatName(plan.format)} was planned with ${planned}`);
      };
      return settle(caps, layout, () => dumb.exportDmabuf(), [dumb]);
    },
    close() {
      // the device belongs to the caller
    },
  };
}

/** An allocator whose buffers primebuf lays out: `source` makes a dma-buf of a byte size (and is owned). */
function byteSizePoolAllocator(caps: AllocatorCaps, source: { allocate(size: bigint): Dmabuf; close(): void }): PoolAllocator {
  return {
    caps,
    canAllocate: linearOnly,
    allocate(plan) {
      const size = pageAlign(plan.layout.size);
      return settle(caps, () => ({ ...plan.layout, size }), () => source.allocate(size), []);
    },
    close() {
      source.close();
    },
  };
}

/** A dma-heap (/dev/dma_heap/<name>); heaps other than system/system-uncached are taken as contiguous (CMA) unless told. */
export function dmaHeapPoolAllocator(name = 'system', opts: { contiguous?: boolean } = {}): PoolAllocator {
  const caps: AllocatorCaps = { ...heapCaps(name), ...(opts.contiguous !== undefined ? { contiguous: opts.contiguous } : {}) };
  return byteSizePoolAllocator(caps, DmaHeap.open(name));
}

/** udmabuf: sealed memfds turned into dma-bufs, up to the module's size limit. */
export function udmabufPoolAllocator(opts: { maxSize?: bigint } = {}): PoolAllocator {
  return byteSizePoolAllocator(udmabufCaps(opts.maxSize ?? udmabufSizeLimit()), UdmabufAllocator.open());
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
export function gbmPoolAllocator(device: Device, modifiers: readonly bigint[]): PoolAllocator {
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
          bo = gbm.createBo(plan.width, plan.height, plan.format, [plan.modifier], plan.modifier === DRM_FORMAT_MOD_LINEAR ? usage | GBM_BO_USE_LINEAR : usage);
        } catch (err) {
          // Drivers without modifier support (Mesa's kms_swrast on vkms) refuse the explicit list;
          // LINEAR is still exactly what GBM_BO_USE_LINEAR makes.
          if (plan.modifier !== DRM_FORMAT_MOD_LINEAR || !(err instanceof SystemError)) throw err;
          bo = gbm.createBo(plan.width, plan.height, plan.format, null, usage | GBM_BO_USE_LINEAR);
          linearByFlag = true;
        }
      }
      const plane0 = bo.planes[0]!;
      const layout = (): Layout => {
        if (!(linearByFlag && bo.modifier === DRM_FORMAT_MOD_INVALID) && plan.modifier !== DRM_FORMAT_MOD_INVALID && bo.modifier !== plan.modifier) {
          throw new InvalidArgumentError(`${caps.name}: asked for modifier 0x${plan.modifier.toString(16)}, got 0x${bo.modifier.toString(16)}`);
        }
        if (plan.modifier === DRM_FORMAT_MOD_LINEAR) checkRules(plan, BigInt(plane0.stride), caps.name);
        return {
          ...plan.layout,
          modifier: linearByFlag ? plan.modifier : bo.modifier,
          planes: bo.planes.map((p) => ({ offset: BigInt(p.offset), pitch: BigInt(p.stride) })),
          size: plane0.dmabuf.trySize() ?? plan.layout.size,
        };
      };
      // GBM exports plane fds read-only (no DRM_RDWR), so the CPU maps through gbm_bo_map, or,
      // where the GBM backend cannot map (Mesa's kms_swrast), through the mmap offset of the
      // bo's GEM handle on the device (DRM_IOCTL_MODE_MAP_DUMB works on the driver's own objects).
      const mapper = (): BackingMapping => {
        try {
          return bo.map();
        } catch (err) {
          if (!(err instanceof SystemError)) throw err;
          const offset = native.dumbMapOffset(device.fd, plane0.handle.handle);
          return Mapping.map(device.fd, offset, plane0.dmabuf.trySize() ?? plan.layout.size, true, `mapping of ${caps.name} bo`);
        }
      };
      return settle(caps, layout, () => plane0.dmabuf.dup(), [bo], mapper);
    },
    close() {
      gbm.close();
    },
  };
}
