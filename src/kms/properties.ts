/**
 * KMS object properties by name: type, flags, range/enum/bitmask values and the current value.
 */
import { native } from '../native.js';
import type { RawProperty } from '../native/drm.js';

export const DRM_MODE_OBJECT = {
  CRTC: 0xcccccccc,
  CONNECTOR: 0xc0c0c0c0,
  ENCODER: 0xe0e0e0e0,
  MODE: 0xdededede,
  PROPERTY: 0xb0b0b0b0,
  FB: 0xfbfbfbfb,
  BLOB: 0xbbbbbbbb,
  PLANE: 0xeeeeeeee,
  ANY: 0,
} as const;
export type KmsObjectType = keyof typeof DRM_MODE_OBJECT;

const PROP_PENDING = 1 << 0;
const PROP_RANGE = 1 << 1;
const PROP_IMMUTABLE = 1 << 2;
const PROP_ENUM = 1 << 3;
const PROP_BLOB = 1 << 4;
const PROP_BITMASK = 1 << 5;
const PROP_ATOMIC = 0x80000000;
const PROP_EXTENDED_TYPE = 0x0000ffc0;
const PROP_OBJECT = 1 << 6;
const PROP_SIGNED_RANGE = 2 << 6;

export type PropertyType = 'range' | 'signed_range' | 'enum' | 'bitmask' | 'blob' | 'object' | 'unknown';

export interface PropertyInfo {
  id: number;
  name: string;
  type: PropertyType;
  immutable: boolean;
  atomic: boolean;
  pending: boolean;
  /** range: [min, max]; signed_range: [min, max] as signed; object: [object type] */
  range?: [bigint, bigint];
  /** enum and bitmask entries (bitmask values are bit numbers) */
  enums?: Array<{ name: string; value: bigint }>;
}

export interface Property extends PropertyInfo {
  /** current value (u64 as the kernel stores it) */
  value: bigint;
}

export function propertyType(flags: number): PropertyType {
  if (flags & PROP_RANGE) return 'range';
  if (flags & PROP_ENUM) return 'enum';
  if (flags & PROP_BITMASK) return 'bitmask';
  if (flags & PROP_BLOB) return 'blob';
  const ext = flags & PROP_EXTENDED_TYPE;
  if (ext === PROP_OBJECT) return 'object';
  if (ext === PROP_SIGNED_RANGE) return 'signed_range';
  return 'unknown';
}

export function toSigned64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

export function describeProperty(raw: RawProperty): PropertyInfo {
  const type = propertyType(raw.flags);
  const info: PropertyInfo = {
    id: raw.id,
    name: raw.name,
    type,
    immutable: (raw.flags & PROP_IMMUTABLE) !== 0,
    atomic: (raw.flags & PROP_ATOMIC) !== 0,
    pending: (raw.flags & PROP_PENDING) !== 0,
  };
  if ((type === 'range' || type === 'signed_range') && raw.values.length >= 2) {
    const [a, b] = raw.values as [bigint, bigint];
    info.range = type === 'signed_range' ? [toSigned64(a), toSigned64(b)] : [a, b];
  }
  if (type === 'enum' || type === 'bitmask') info.enums = raw.enums.map((e) => ({ name: e.name, value: e.value }));
  return info;
}

/** Property metadata cache per device fd: property ids are stable for a device's lifetime. */
export class PropertyCache {
  readonly #fd: number;
  readonly #byId = new Map<number, PropertyInfo>();

  constructor(fd: number) {
    this.#fd = fd;
  }

  info(propId: number): PropertyInfo {
    let p = this.#byId.get(propId);
    if (!p) {
      p = describeProperty(native.drmGetProperty(this.#fd, propId));
      this.#byId.set(propId, p);
    }
    return p;
  }

  /** All properties of an object with their current values, by name. */
  objectProperties(objectId: number, type: KmsObjectType = 'ANY'): Map<string, Property> {
    const out = new Map<string, Property>();
    for (const { id, value } of native.drmGetObjectProperties(this.#fd, objectId, DRM_MODE_OBJECT[type])) {
      const info = this.info(id);
      out.set(info.name, { ...info, value });
    }
    return out;
  }
}

/** The name of an enum property's current value (or undefined). */
export function enumName(p: Property | undefined): string | undefined {
  if (!p?.enums) return undefined;
  return p.enums.find((e) => e.value === p.value)?.name;
}
