/**
 * What the scanout verdicts know of a KMS device, as plain data: the planes (IN_FORMATS, type,
 * CRTCs, the `rotation` property's offer, whether they can scale), the CRTCs, the framebuffer
 * limits, and which dev_t values are "the same GPU" (for the implicit-modifier policy). Built
 * from a live Device, from `primebuf devices --json` output (test/fixtures/vkms-devices.json),
 * or from a normalized drm_info dump (test/fixtures/devices/*.json). Nothing here opens a device.
 */
import { describeModel, importDevicesJSON } from '../constraints/live.js';
import { importDrmInfo } from '../constraints/import-drm-info.js';
import type { KmsDeviceDescription, PlaneDescription } from '../constraints/device.js';
import { listDevices, type DeviceInfo } from '../kms/discovery.js';
import { modelOf, type DeviceOrModel, type KmsDeviceModel, type PlaneOffsetsFact } from '../kms/model.js';

/** DRM_MODE_ROTATE_* and DRM_MODE_REFLECT_* bits (the `rotation` property's bit positions). */
export const ROTATE_0 = 1 << 0;
export const ROTATE_90 = 1 << 1;
export const ROTATE_180 = 1 << 2;
export const ROTATE_270 = 1 << 3;
export const REFLECT_X = 1 << 4;
export const REFLECT_Y = 1 << 5;

const ROTATION_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['rotate-0', ROTATE_0],
  ['rotate-90', ROTATE_90],
  ['rotate-180', ROTATE_180],
  ['rotate-270', ROTATE_270],
  ['reflect-x', REFLECT_X],
  ['reflect-y', REFLECT_Y],
];

/** 'rotate-90|reflect-x' for a mask. */
export function rotationName(mask: number): string {
  const names = ROTATION_NAMES.filter(([, bit]) => (mask & bit) !== 0).map(([n]) => n);
  return names.length > 0 ? names.join('|') : 'none';
}

/** The mask of the `rotation` bitmask property's enum names (unknown names are ignored). */
export function rotationMask(names: Iterable<string>): number {
  let m = 0;
  for (const n of names) m |= ROTATION_NAMES.find(([x]) => x === n)?.[1] ?? 0;
  return m;
}

export interface ScanoutPlaneInfo extends PlaneDescription {
  /** Rotation/reflection bits the plane's `rotation` property offers (ROTATE_0 only without it). */
  readonly rotations: number;
  /** Whether the plane has a `rotation` property to set. */
  readonly hasRotationProperty: boolean;
  /** false: source and destination sizes must match; true: it scales; undefined: TEST_ONLY decides. */
  readonly scaling: boolean | undefined;
}

export interface ScanoutDeviceInfo {
  readonly name: string;
  readonly driver: string;
  /** dev_t of the KMS node, when known. */
  readonly devId?: bigint;
  /** dev_t values of the same GPU's other nodes (render node, siblings in sysfs). */
  readonly sameGpu: readonly bigint[];
  readonly description: KmsDeviceDescription;
  readonly planes: readonly ScanoutPlaneInfo[];
  /** CRTC ids with their index (bit in possibleCrtcs); recorded dumps name CRTCs by index. */
  readonly crtcs: ReadonlyArray<{ readonly id: number; readonly index: number }>;
  /** Declared alignment the device's driver needs (KMS does not report it). */
  readonly pitchAlign?: number;
  readonly offsetAlign?: number;
  /**
   * Whether the display reads framebuffer plane offsets right (KmsDeviceModel.planeOffsets:
   * probed through writeback, or assumed). Not honoured: every buffer with a plane offset is
   * refused (PLANE_OFFSET). Absent: assumed honoured.
   */
  readonly planeOffsets?: Pick<PlaneOffsetsFact, 'honoured' | 'detail'>;
}

export interface ScanoutDeviceOptions {
  /** plane id -> enum names of its `rotation` property (absent: the plane has none). */
  readonly rotations?: ReadonlyMap<number, readonly string[]>;
  readonly crtcs?: ReadonlyArray<{ readonly id: number; readonly index: number }>;
  readonly devId?: bigint;
  readonly sameGpu?: readonly bigint[];
  readonly pitchAlign?: number;
  readonly offsetAlign?: number;
  readonly planeOffsets?: Pick<PlaneOffsetsFact, 'honoured' | 'detail'>;
}

/**
 * Whether a plane can scale, as far as primebuf knows without asking: vkms planes cannot (its
 * atomic check passes DRM_PLANE_NO_SCALING for both factors), nor can cursor planes of any
 * driver primebuf knows. Everything else is left to TEST_ONLY (undefined).
 */
export function knownScaling(driver: string, type: PlaneDescription['type']): boolean | undefined {
  if (driver === 'vkms') return false;
  if (type === 'cursor') return false;
  return undefined;
}

export function scanoutDeviceFromDescription(d: KmsDeviceDescription, opts: ScanoutDeviceOptions = {}): ScanoutDeviceInfo {
  const planes = d.planes.map((p): ScanoutPlaneInfo => {
    const names = opts.rotations?.get(p.id);
    const rotations = names ? rotationMask(names) | ROTATE_0 : ROTATE_0;
    return { ...p, rotations, hasRotationProperty: names !== undefined, scaling: knownScaling(d.driver, p.type) };
  });
  const maxIndex = Math.max(-1, ...d.planes.flatMap((p) => p.possibleCrtcs));
  const crtcs = opts.crtcs ?? Array.from({ length: maxIndex + 1 }, (_, index) => ({ id: index, index }));
  const info: { -readonly [K in keyof ScanoutDeviceInfo]: ScanoutDeviceInfo[K] } = {
    name: d.name,
    driver: d.driver,
    sameGpu: opts.sameGpu ?? [],
    description: d,
    planes,
    crtcs,
  };
  if (opts.devId !== undefined) info.devId = opts.devId;
  if (opts.pitchAlign !== undefined) info.pitchAlign = opts.pitchAlign;
  if (opts.offsetAlign !== undefined) info.offsetAlign = opts.offsetAlign;
  if (opts.planeOffsets !== undefined) info.planeOffsets = opts.planeOffsets;
  return info;
}

/** dev_t values of the other nodes of the device behind `path` (same sysfs device). */
export function sameGpuDevIds(path: string, devices: readonly DeviceInfo[] = listDevices()): bigint[] {
  const me = devices.find((d) => d.path === path);
  if (!me) return [];
  return devices
    .filter((d) => d.path !== me.path && (me.siblings.includes(d.path) || (me.sysfsPath !== null && d.sysfsPath === me.sysfsPath)))
    .map((d) => d.devId);
}

/**
 * The scanout model of a KMS device: derived from its KmsDeviceModel (no ioctl; cached per model
 * while its facts hold), or from an open Device, read into a model of its own first.
 */
export function scanoutDeviceFromLive(device: DeviceOrModel, opts: Pick<ScanoutDeviceOptions, 'pitchAlign' | 'offsetAlign'> = {}): ScanoutDeviceInfo {
  return scanoutDeviceFromModel(modelOf(device), opts);
}

const fromModel = new WeakMap<KmsDeviceModel, { revision: number; info: ScanoutDeviceInfo }>();

/** The scanout model derived from a device's model: planes, rotation offers, CRTCs, same-GPU nodes, plane offsets. */
export function scanoutDeviceFromModel(model: KmsDeviceModel, opts: Pick<ScanoutDeviceOptions, 'pitchAlign' | 'offsetAlign'> = {}): ScanoutDeviceInfo {
  const plain = opts.pitchAlign === undefined && opts.offsetAlign === undefined;
  const hit = plain ? fromModel.get(model) : undefined;
  if (hit && hit.revision === model.revision) return hit.info;
  const res = model.resources;
  const rotations = new Map<number, string[]>();
  for (const p of res.planes) {
    const r = p.properties.get('rotation');
    if (r?.enums) rotations.set(p.id, r.enums.map((e) => e.name));
  }
  const info = scanoutDeviceFromDescription(describeModel(model), {
    ...opts,
    rotations,
    crtcs: res.crtcs.map((c) => ({ id: c.id, index: c.index })),
    ...(model.devId !== undefined ? { devId: model.devId } : {}),
    sameGpu: model.sameGpu,
    planeOffsets: model.planeOffsets,
  });
  if (plain) fromModel.set(model, { revision: model.revision, info });
  return info;
}

interface DevicesJsonPlane {
  id: number;
  properties?: Record<string, { enums?: Array<{ name: string }> }>;
}

/**
 * The scanout models of `primebuf devices --json` output (test/fixtures/vkms-devices.json):
 * every node with KMS objects, with the CRTC ids, the planes' rotation offers and the dev_t of
 * the recording.
 */
export function scanoutDevicesFromDevicesJSON(doc: unknown, source?: string): ScanoutDeviceInfo[] {
  const descs = importDevicesJSON(doc, source);
  const wrapped = typeof doc === 'object' && doc !== null && Array.isArray((doc as { devices?: unknown }).devices);
  const list = (wrapped ? (doc as { devices: unknown[] }).devices : Array.isArray(doc) ? doc : [doc]) as Array<{
    name: string;
    devId?: number;
    path?: string;
    siblings?: string[];
    kms?: { crtcs: Array<{ id: number; index: number }>; planes: DevicesJsonPlane[] } | null;
  }>;
  return descs.map((d) => {
    const raw = list.find((x) => x.name === d.name && x.kms)!;
    const rotations = new Map<number, string[]>();
    for (const p of raw.kms!.planes) {
      const r = p.properties?.rotation;
      if (r?.enums) rotations.set(p.id, r.enums.map((e) => e.name));
    }
    const siblings = new Set(raw.siblings ?? []);
    const sameGpu = list.filter((x) => x !== raw && x.path !== undefined && siblings.has(x.path) && x.devId !== undefined).map((x) => BigInt(x.devId!));
    return scanoutDeviceFromDescription(d, {
      rotations,
      crtcs: raw.kms!.crtcs.map((c) => ({ id: c.id, index: c.index })),
      ...(raw.devId !== undefined ? { devId: BigInt(raw.devId) } : {}),
      sameGpu,
    });
  });
}

/**
 * The scanout model of a normalized drm_info dump (test/fixtures/devices/*.json): rotation
 * offers parsed from the planes' `property_lines.rotation` ("bitmask {rotate-0, rotate-180}");
 * CRTCs are named by index (the dumps give a count).
 */
export function scanoutDeviceFromDrmInfo(doc: unknown, name?: string): ScanoutDeviceInfo {
  const imported = importDrmInfo(doc, name !== undefined ? { name } : {});
  const planes = ((doc as { planes?: unknown[] }).planes ?? []) as Array<{ id: number; property_lines?: Record<string, string> }>;
  const rotations = new Map<number, string[]>();
  for (const p of planes) {
    const line = p.property_lines?.rotation;
    const m = line ? /bitmask\s*\{([^}]*)\}/.exec(line) : null;
    if (m) rotations.set(p.id, m[1]!.split(',').map((s) => s.trim()));
  }
  return scanoutDeviceFromDescription(imported.description, { rotations });
}

/** The plane of `info` with this id, or the first of this type usable on the CRTC (index order). */
export function findPlane(info: ScanoutDeviceInfo, sel: number | 'primary' | 'overlay' | 'cursor', crtcId?: number): ScanoutPlaneInfo | undefined {
  if (typeof sel === 'number') return info.planes.find((p) => p.id === sel);
  const index = crtcId === undefined ? undefined : info.crtcs.find((c) => c.id === crtcId)?.index;
  return [...info.planes].sort((a, b) => a.id - b.id).find((p) => p.type === sel && (index === undefined || p.possibleCrtcs.includes(index)));
}

