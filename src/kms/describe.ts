/**
 * A device description as plain JSON (what `primebuf devices --json` prints and what
 * test/fixtures/vkms-devices.json records): discovery facts, caps, and the KMS objects with
 * their properties and plane format/modifier sets.
 */
import { DRM_CAPS, type DrmCap } from './caps.js';
import { Device } from './device.js';
import { listDevices, type DeviceInfo, type DiscoveryOptions } from './discovery.js';
import { KmsDeviceModel } from './model.js';
import type { Property, PropertyType } from './properties.js';
import { readResources, type KmsResources, type PlaneType } from './resources.js';
import { FormatSet, fourccCode, type FormatSetJSON } from '../formats/index.js';
import type { RawMode } from '../native/drm.js';

export interface PropertyJSON {
  id: number;
  type: string;
  immutable: boolean;
  atomic: boolean;
  /** the raw value; a decimal string when above 2^53 */
  value: number | string;
  /** enum properties: the current value's name */
  enumValue?: string;
  range?: [string, string];
  enums?: Array<{ name: string; value: string }>;
}

export interface PlaneJSON {
  id: number;
  type: string;
  possibleCrtcs: number[];
  crtcId: number;
  fbId: number;
  hasInFormats: boolean;
  formats: FormatSetJSON[];
  properties: Record<string, PropertyJSON>;
}

export interface KmsJSON {
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
  cursorWidth: number | null;
  cursorHeight: number | null;
  crtcs: Array<{ id: number; index: number; fbId: number; active: boolean; mode: RawMode | null; gammaSize: number; properties: Record<string, PropertyJSON> }>;
  connectors: Array<{
    id: number;
    name: string;
    type: string;
    writeback: boolean;
    connection: string;
    mmWidth: number;
    mmHeight: number;
    crtcId: number;
    encoders: number[];
    modes: RawMode[];
    writebackFormats?: string[];
    properties: Record<string, PropertyJSON>;
  }>;
  encoders: Array<{ id: number; type: number; crtcId: number; possibleCrtcs: number[]; possibleClones: number }>;
  planes: PlaneJSON[];
}

export interface DeviceJSON {
  path: string;
  name: string;
  /** st_rdev */
  devId: number;
  major: number;
  minor: number;
  nodeType: string;
  driver: string | null;
  primaryNode: string | null;
  renderNode: string | null;
  siblings: string[];
  bus: unknown;
  coherent: boolean;
  coherentSource: string;
  version?: { name: string; major: number; minor: number; patchlevel: number; date: string; desc: string };
  caps?: Record<string, number | string | null>;
  prime?: { import: boolean; export: boolean };
  clientCaps?: string[];
  isMaster?: boolean;
  kms?: KmsJSON | null;
  /** why the device could not be opened or read (permissions, no KMS) */
  error?: string;
}

function num(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function fourccName(code: number): string {
  return String.fromCharCode(code & 0xff, (code >> 8) & 0xff, (code >> 16) & 0xff, (code >>> 24) & 0xff);
}

export function propertiesToJSON(props: Map<string, Property>): Record<string, PropertyJSON> {
  const out: Record<string, PropertyJSON> = {};
  for (const [name, p] of [...props].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const j: PropertyJSON = { id: p.id, type: p.type, immutable: p.immutable, atomic: p.atomic, value: num(p.value) };
    if (p.type === 'enum') {
      const e = p.enums?.find((x) => x.value === p.value);
      if (e) j.enumValue = e.name;
    }
    if (p.range) j.range = [p.range[0].toString(), p.range[1].toString()];
    if (p.enums) j.enums = p.enums.map((e) => ({ name: e.name, value: e.value.toString() }));
    out[name] = j;
  }
  return out;
}

export function resourcesToJSON(r: KmsResources): KmsJSON {
  return {
    minWidth: r.minWidth,
    maxWidth: r.maxWidth,
    minHeight: r.minHeight,
    maxHeight: r.maxHeight,
    cursorWidth: r.cursorWidth,
    cursorHeight: r.cursorHeight,
    crtcs: r.crtcs.map((c) => ({
      id: c.id,
      index: c.index,
      fbId: c.fbId,
      active: c.active,
      mode: c.mode,
      gammaSize: c.gammaSize,
      properties: propertiesToJSON(c.properties),
    })),
    connectors: r.connectors.map((c) => ({
      id: c.id,
      name: c.name,
      type: c.typeName,
      writeback: c.writeback,
      connection: c.connection,
      mmWidth: c.mmWidth,
      mmHeight: c.mmHeight,
      crtcId: c.crtcId,
      encoders: c.encoders,
      modes: c.modes,
      ...(c.writebackFormats ? { writebackFormats: c.writebackFormats.map(fourccName) } : {}),
      properties: propertiesToJSON(c.properties),
    })),
    encoders: r.encoders.map((e) => ({ ...e })),
    planes: r.planes.map((p) => ({
      id: p.id,
      type: p.type,
      possibleCrtcs: p.possibleCrtcs,
      crtcId: p.crtcId,
      fbId: p.fbId,
      hasInFormats: p.hasInFormats,
      formats: p.formats.toJSON(),
      properties: propertiesToJSON(p.properties),
    })),
  };
}

function propertiesFromJSON(props: Record<string, PropertyJSON>): Map<string, Property> {
  const out = new Map<string, Property>();
  for (const [name, j] of Object.entries(props)) {
    const p: Property = { id: j.id, name, type: j.type as PropertyType, immutable: j.immutable, atomic: j.atomic, pending: false, value: BigInt(j.value) };
    if (j.range) p.range = [BigInt(j.range[0]), BigInt(j.range[1])];
    if (j.enums) p.enums = j.enums.map((e) => ({ name: e.name, value: BigInt(e.value) }));
    out.set(name, p);
  }
  return out;
}

/** The KMS snapshot back from its JSON (resourcesToJSON's inverse, as far as the JSON holds it). */
export function resourcesFromJSON(k: KmsJSON): KmsResources {
  return {
    minWidth: k.minWidth,
    maxWidth: k.maxWidth,
    minHeight: k.minHeight,
    maxHeight: k.maxHeight,
    cursorWidth: k.cursorWidth,
    cursorHeight: k.cursorHeight,
    crtcs: k.crtcs.map((c) => ({ id: c.id, index: c.index, fbId: c.fbId, x: 0, y: 0, mode: c.mode, active: c.active, gammaSize: c.gammaSize, properties: propertiesFromJSON(c.properties) })),
    connectors: k.connectors.map((c) => {
      const [typeName = c.type, typeId = '0'] = [c.name.slice(0, c.name.lastIndexOf('-')), c.name.slice(c.name.lastIndexOf('-') + 1)];
      return {
        id: c.id,
        name: c.name,
        type: c.writeback ? 18 : 0,
        typeName,
        typeId: Number(typeId),
        writeback: c.writeback,
        connection: c.connection as 'connected' | 'disconnected' | 'unknown',
        mmWidth: c.mmWidth,
        mmHeight: c.mmHeight,
        modes: c.modes,
        encoders: c.encoders,
        encoderId: 0,
        crtcId: c.crtcId,
        ...(c.writebackFormats ? { writebackFormats: c.writebackFormats.map((f) => fourccCode(f)) } : {}),
        properties: propertiesFromJSON(c.properties),
      };
    }),
    encoders: k.encoders.map((e) => ({ ...e })),
    planes: k.planes.map((p) => ({
      id: p.id,
      type: p.type as PlaneType,
      possibleCrtcs: p.possibleCrtcs,
      crtcId: p.crtcId,
      fbId: p.fbId,
      formats: FormatSet.fromJSON(p.formats),
      hasInFormats: p.hasInFormats,
      properties: propertiesFromJSON(p.properties),
    })),
  };
}

/**
 * The model of a recorded device (one entry of `primebuf devices --json`, e.g.
 * test/fixtures/vkms-devices.json): its facts without an open device.
 */
export function modelFromDeviceJSON(dev: DeviceJSON): KmsDeviceModel {
  if (!dev.kms) throw new TypeError(`${dev.path}: no KMS objects in the record`);
  const cap = (n: string): boolean | undefined => (typeof dev.caps?.[n] === 'number' ? dev.caps[n] !== 0 : undefined);
  const dumbBuffer = cap('DUMB_BUFFER');
  const addfb2Modifiers = cap('ADDFB2_MODIFIERS');
  return new KmsDeviceModel({
    path: dev.path,
    driver: dev.version?.name ?? dev.driver ?? 'unknown',
    devId: BigInt(dev.devId),
    ...(dev.prime ? { prime: dev.prime } : {}),
    ...(dumbBuffer !== undefined ? { dumbBuffer } : {}),
    ...(addfb2Modifiers !== undefined ? { addfb2Modifiers } : {}),
    coherent: dev.coherent,
    resources: resourcesFromJSON(dev.kms),
  });
}

/** Describes one node: discovery facts, then (when it opens) version, caps and KMS objects. */
export function describeDevice(info: DeviceInfo, opts: { probe?: boolean } = {}): DeviceJSON {
  const out: DeviceJSON = {
    path: info.path,
    name: info.name,
    devId: Number(info.devId),
    major: info.major,
    minor: info.minor,
    nodeType: info.nodeType,
    driver: info.driver,
    primaryNode: info.primaryNode,
    renderNode: info.renderNode,
    siblings: info.siblings,
    bus: info.bus,
    coherent: info.coherent,
    coherentSource: info.coherentSource,
  };
  let dev: Device | undefined;
  try {
    dev = Device.open(info.path);
    out.version = { ...dev.version };
    // virtual platform devices (vkms, vgem) have no bound driver in sysfs: the DRM driver names them
    out.driver ??= dev.version.name;
    const caps: Record<string, number | string | null> = {};
    for (const name of Object.keys(DRM_CAPS) as DrmCap[]) {
      try {
        caps[name] = num(dev.getCap(name));
      } catch {
        caps[name] = null;
      }
    }
    out.caps = caps;
    out.prime = { ...dev.prime };
    out.clientCaps = [...dev.clientCaps].sort();
    out.isMaster = dev.isMaster;
    try {
      out.kms = resourcesToJSON(readResources(dev, { probe: opts.probe ?? false }));
    } catch (err) {
      out.kms = null;
      // no KMS on this node: vgem (EOPNOTSUPP), render nodes (EACCES), old drivers (EINVAL)
      if (!(err instanceof Error && 'code' in err && ['EOPNOTSUPP', 'EINVAL', 'EACCES'].includes(err.code as string))) throw err;
    }
  } catch (err) {
    out.error = err instanceof Error ? err.message : String(err);
  } finally {
    dev?.close();
  }
  return out;
}

/** Every DRM node, described. */
export function describeDevices(opts: DiscoveryOptions & { probe?: boolean } = {}): DeviceJSON[] {
  return listDevices(opts).map((d) => describeDevice(d, { probe: opts.probe ?? false }));
}
