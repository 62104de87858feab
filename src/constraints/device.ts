/**
 * Device descriptions and the constraints derived from them.
 *
 * A `KmsDeviceDescription` is what primebuf knows of a KMS device: its caps, framebuffer size
 * limits and planes with their IN_FORMATS. It comes from a live device (the drm layer), from a
 * recorded fixture, or from a published drm_info dump (import-drm-info.ts). The constraint
 * functions below turn it into `DeviceConstraint`s per usage; nothing here opens a device.
 */
import { DRM_FORMAT_MOD_LINEAR, FormatSet } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import type { DeviceConstraint, Usage } from './types.js';

export type PlaneType = 'primary' | 'overlay' | 'cursor';

export interface PlaneDescription {
  readonly id: number;
  readonly type: PlaneType;
  /** CRTC indices the plane can be used with. */
  readonly possibleCrtcs: readonly number[];
  /** The pairs the plane accepts (from IN_FORMATS; LINEAR per format without IN_FORMATS). */
  readonly formats: FormatSet;
  /** true when the pairs came from the IN_FORMATS blob (explicit modifiers). */
  readonly inFormats: boolean;
  /** Modifiers the IN_FORMATS blob lists with no format. */
  readonly emptyModifiers: readonly bigint[];
}

export interface KmsDeviceDescription {
  /** The node's name: 'card0'. */
  readonly name: string;
  readonly driver: string;
  /** Where the description came from (a path, a URL, 'live'). */
  readonly source?: string;
  /** PRIME: undefined when unknown (a modetest dump prints no caps). */
  readonly prime?: { readonly import: boolean; readonly export: boolean };
  readonly dumbBuffer?: boolean;
  readonly addfb2Modifiers?: boolean;
  readonly cursorWidth?: number;
  readonly cursorHeight?: number;
  /** mode_config min/max framebuffer size. */
  readonly fbSize?: { readonly minWidth: number; readonly maxWidth: number; readonly minHeight: number; readonly maxHeight: number };
  readonly planes: readonly PlaneDescription[];
  /** The device snoops CPU caches (known from the bus; PCI on x86 is). undefined = unknown. */
  readonly coherent?: boolean;
  /** The device needs physically contiguous memory (no IOMMU). undefined = unknown. */
  readonly contiguous?: boolean;
}

/** The framebuffer limit of KMS: at most 4 planes (struct drm_mode_fb_cmd2). */
export const KMS_MAX_FB_PLANES = 4;

/** Which plane(s) a scanout constraint is about. */
export interface PlaneSelector {
  /** A plane id. */
  readonly plane?: number;
  /** The first plane of this type (default 'primary'). */
  readonly type?: PlaneType;
  /** Restrict to planes usable on this CRTC index (default: any). */
  readonly crtc?: number;
}

function pickPlane(dev: KmsDeviceDescription, sel: PlaneSelector): PlaneDescription {
  if (sel.plane !== undefined) {
    const p = dev.planes.find((x) => x.id === sel.plane);
    if (!p) throw new InvalidArgumentError(`${dev.name} has no plane ${sel.plane} (planes: ${dev.planes.map((x) => x.id).join(', ')})`);
    return p;
  }
  const type = sel.type ?? 'primary';
  const p = [...dev.planes]
    .sort((a, b) => a.id - b.id)
    .find((x) => x.type === type && (sel.crtc === undefined || x.possibleCrtcs.includes(sel.crtc)));
  if (!p) throw new InvalidArgumentError(`${dev.name} has no ${type} plane${sel.crtc === undefined ? '' : ` for CRTC ${sel.crtc}`}`);
  return p;
}

/**
 * The constraint for showing a buffer on one plane of a KMS device: the plane's pairs, the
 * framebuffer size limits (the cursor size for a cursor plane), at most 4 planes, and
 * "allocate on this device" when it cannot import dma-bufs (DRM_CAP_PRIME without import).
 */
export function scanoutConstraint(dev: KmsDeviceDescription, sel: PlaneSelector = {}): DeviceConstraint {
  const plane = pickPlane(dev, sel);
  const c: { -readonly [K in keyof DeviceConstraint]: DeviceConstraint[K] } = {
    device: dev.name,
    usage: 'scanout',
    plane: plane.id,
    source: `${plane.inFormats ? 'IN_FORMATS' : 'format list (no IN_FORMATS)'} of ${plane.type} plane ${plane.id} on ${dev.name} (${dev.driver}${dev.source ? `, ${dev.source}` : ''})`,
    formats: plane.formats,
    maxPlanes: KMS_MAX_FB_PLANES,
  };
  if (plane.emptyModifiers.length > 0) c.emptyModifiers = plane.emptyModifiers;
  if (!plane.inFormats || dev.addfb2Modifiers === false) c.explicitModifiers = false;
  if (dev.fbSize) {
    c.minWidth = Math.max(1, dev.fbSize.minWidth);
    c.minHeight = Math.max(1, dev.fbSize.minHeight);
    c.maxWidth = dev.fbSize.maxWidth;
    c.maxHeight = dev.fbSize.maxHeight;
  }
  if (plane.type === 'cursor') {
    if (dev.cursorWidth !== undefined) c.maxWidth = Math.min(c.maxWidth ?? Infinity, dev.cursorWidth);
    if (dev.cursorHeight !== undefined) c.maxHeight = Math.min(c.maxHeight ?? Infinity, dev.cursorHeight);
  }
  if (dev.prime !== undefined && !dev.prime.import) c.allocateOn = dev.name;
  if (dev.coherent !== undefined) c.coherent = dev.coherent;
  if (dev.contiguous) c.contiguous = true;
  return c;
}

/**
 * "Scanout on any plane of the device": the union of the planes' pairs (the buffer fits at
 * least one plane). Other limits as for one plane.
 */
export function anyPlaneConstraint(dev: KmsDeviceDescription): DeviceConstraint {
  if (dev.planes.length === 0) throw new InvalidArgumentError(`${dev.name} has no planes`);
  const first = scanoutConstraint(dev, { plane: [...dev.planes].sort((a, b) => a.id - b.id)[0]!.id });
  let formats = FormatSet.empty;
  for (const p of dev.planes) if (p.type !== 'cursor') formats = formats.union(p.formats);
  const { plane: _plane, ...rest } = first;
  return { ...rest, formats, source: `union of the non-cursor planes of ${dev.name} (${dev.driver})` };
}

/**
 * CPU access through a mapping: only LINEAR is addressable by the CPU; any format.
 */
export function cpuConstraint(access: 'read' | 'write' | 'readwrite' = 'readwrite', name = 'cpu'): DeviceConstraint {
  return { device: name, usage: 'cpu', modifiers: [DRM_FORMAT_MOD_LINEAR], cpuAccess: access, source: 'a CPU mapping can only address LINEAR layouts' };
}

/**
 * What a render node accepts for texturing or rendering, when nothing better is known.
 * Drivers primebuf knows without a GPU stack:
 *   vgem: memory only, imports any dma-buf; any format, LINEAR (it has no tiling).
 * Other drivers: LINEAR (every GPU that imports dma-bufs samples LINEAR, at some alignment),
 * unless the caller passes `formats` (e.g. from EGL's dma-buf import queries).
 */
export function renderNodeConstraint(
  name: string,
  driver: string,
  usage: Extract<Usage, 'texture' | 'render'> = 'texture',
  declared: Partial<DeviceConstraint> = {},
): DeviceConstraint {
  const base: DeviceConstraint = {
    device: name,
    usage,
    modifiers: [DRM_FORMAT_MOD_LINEAR],
    source: driver === 'vgem' ? 'vgem: memory-only driver, any format, LINEAR' : `declared: ${driver} render node, LINEAR only (no EGL query)`,
  };
  return { ...base, ...declared, device: name, usage };
}

/**
 * A device primebuf cannot query (encoder, camera, ...), declared by the caller with the
 * same fields. Validates the names and numbers.
 */
export function declared(c: DeviceConstraint): DeviceConstraint {
  if (typeof c.device !== 'string' || c.device.length === 0) throw new InvalidArgumentError('a declared constraint needs a device name');
  return { source: 'declared by the caller', ...c };
}
