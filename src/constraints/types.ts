/**
 * The constraint model: what one device needs of a buffer for one usage.
 *
 * A `DeviceConstraint` is plain data. Every field is optional; an absent field means "this
 * device does not restrict that property" (or "primebuf could not find out"). Constraints come
 * from three places: a KMS device's planes (src/constraints/device.ts, from the IN_FORMATS
 * blob, the caps and the mode_config limits), a render node (a declared description, or EGL's
 * dma-buf import queries where available), and the caller, for devices primebuf cannot query
 * (an encoder, a camera): they are declared with the same fields.
 */
import { decodeModifier, type FormatSet } from '../formats/index.js';

/**
 * What a device does with the buffer. 'scanout' is a KMS plane showing it; 'texture' a GPU
 * sampling it; 'render' a GPU writing it; 'cpu' a process mapping it; 'video-encode',
 * 'video-decode' and 'camera' are devices described by the caller.
 */
export type Usage = 'scanout' | 'texture' | 'render' | 'cpu' | 'video-encode' | 'video-decode' | 'camera';

export const USAGES: readonly Usage[] = ['scanout', 'texture', 'render', 'cpu', 'video-encode', 'video-decode', 'camera'];

/** How the CPU touches the buffer (for 'cpu' usage, or a device whose driver maps it). */
export type CpuAccess = 'none' | 'read' | 'write' | 'readwrite';

export interface DeviceConstraint {
  /** The device's name in messages and keys: 'card0', 'renderD128', 'encoder'. */
  readonly device: string;
  readonly usage: Usage;
  /** The KMS plane id, for scanout on one plane. */
  readonly plane?: number;
  /** Where the constraint came from ('IN_FORMATS of plane 35', 'declared by the caller', ...). */
  readonly source?: string;

  /** The format/modifier pairs the device accepts; absent = any pair (subject to `modifiers`). */
  readonly formats?: FormatSet;
  /**
   * Informative: pairs of `formats` the device can only sample (EGL external_only: imported as
   * GL_TEXTURE_EXTERNAL_OES, not renderable). Set on 'texture' constraints derived from EGL.
   */
  readonly externalOnly?: FormatSet;
  /** Modifiers accepted for every format; absent = any. A CPU mapping accepts only LINEAR. */
  readonly modifiers?: readonly bigint[];
  /**
   * Modifiers the device advertises with no format at all (the msm DPU lists
   * QCOM_COMPRESSED with an empty format mask). Informative: used in conflict messages.
   */
  readonly emptyModifiers?: readonly bigint[];
  /**
   * false when the device cannot be given an explicit modifier (AddFB2 without
   * DRM_MODE_FB_MODIFIERS: a KMS driver without DRM_CAP_ADDFB2_MODIFIERS). Its pairs are
   * recorded as LINEAR: the kernel assumes LINEAR for planes whose driver lists no modifiers.
   */
  readonly explicitModifiers?: boolean;

  /** Every plane's pitch (stride) must be a multiple of this many bytes. */
  readonly pitchAlign?: number;
  /** Every plane's offset must be a multiple of this many bytes. */
  readonly offsetAlign?: number;
  /** The allocation's size must be a multiple of this many bytes (pages, a heap's granule). */
  readonly sizeAlign?: number;
  /** The allocated width/height (in pixels) must be a multiple of this (macroblocks, tiles). */
  readonly widthAlign?: number;
  readonly heightAlign?: number;
  readonly minWidth?: number;
  readonly maxWidth?: number;
  readonly minHeight?: number;
  readonly maxHeight?: number;
  /** Largest pitch the device can address, in bytes. */
  readonly maxPitch?: number;
  /** Largest number of format planes (a device that takes one plane only rejects NV12). */
  readonly maxPlanes?: number;

  /** The device has no IOMMU/scatter-gather: the memory must be physically contiguous. */
  readonly contiguous?: boolean;
  /**
   * false: the device does not snoop CPU caches. CPU writes must be flushed before it reads
   * (and caches invalidated after it writes); a write-combined mapping avoids flushing.
   */
  readonly coherent?: boolean;
  /**
   * The device can only use buffers it allocated itself (no PRIME import, e.g. a KMS driver
   * with DRM_CAP_PRIME = 0): the buffer must be allocated on this device. Holds the device name.
   */
  readonly allocateOn?: string;
  /** How the CPU touches the buffer for this usage. */
  readonly cpuAccess?: CpuAccess;
}

/** Machine-readable reason codes. */
export type ReasonCode =
  /** No format/modifier pair is accepted by every device (among the candidates). */
  | 'FORMAT_MODIFIER'
  /** One device accepts none of the candidate formats. */
  | 'FORMAT'
  /** Size limits of two devices exclude each other, or the requested size is outside one. */
  | 'SIZE'
  /** Alignments that no pitch can meet under a device's maximum pitch. */
  | 'PITCH'
  /** More format planes than a device takes. */
  | 'PLANES'
  /** Two devices each need the buffer allocated on themselves. */
  | 'ALLOCATE_ON'
  /** A buffer that is not physically contiguous, for a device that needs it. */
  | 'CONTIGUOUS'
  /** Cache coherency: informative or a hard mismatch of the CPU mapping type. */
  | 'COHERENCY'
  /** The buffer was allocated elsewhere than a device that imports nothing. */
  | 'EXPORTER'
  /** An allocator cannot make this buffer. */
  | 'ALLOCATOR'
  /** An allocator is not present on this machine. */
  | 'UNAVAILABLE'
  /** Informative: why an allocator was chosen. */
  | 'CHOSEN'
  /** The buffer's content cannot be carried over to a new allocation. */
  | 'COPY';

/**
 * One reason a merge, a solve, an attach or an allocator choice came out as it did. `device`
 * names the device (or allocator) concerned; `detail` is the human sentence.
 */
export interface Reason {
  readonly code: ReasonCode;
  readonly device: string;
  readonly usage: Usage | 'request' | 'allocator';
  readonly plane?: number;
  readonly format?: number;
  readonly modifier?: bigint;
  readonly detail: string;
}

/** The key that identifies a constraint in a set: device, usage and plane. */
export function constraintKey(c: Pick<DeviceConstraint, 'device' | 'usage' | 'plane'>): string {
  return c.plane === undefined ? `${c.device}:${c.usage}` : `${c.device}:${c.usage}:${c.plane}`;
}

/** "plane 35 on card0", "renderD128 (texture)", "encoder (video-encode)". */
export function subject(c: Pick<DeviceConstraint, 'device' | 'usage' | 'plane'>): string {
  if (c.plane !== undefined) return `plane ${c.plane} on ${c.device}`;
  return `${c.device} (${c.usage})`;
}

/**
 * A modifier's name for messages, unambiguous across vendors: 'LINEAR',
 * 'I915_FORMAT_MOD_Y_TILED_CCS', 'QCOM_COMPRESSED', 'ARM_AFBC(BLOCK_SIZE=16x16)'.
 */
export function modifierLabel(mod: bigint): string {
  const d = decodeModifier(mod);
  if (d.vendor === 'NONE' || !d.known) return d.name;
  if (d.macro) return d.macro.replace(/^DRM_FORMAT_MOD_/, '');
  const type = (d.fields as Record<string, unknown>).type;
  const name = d.name.replace(/,+$/, '');
  return typeof type === 'string' ? `${d.vendor}_${type}(${name})` : `${d.vendor}:${name}`;
}
