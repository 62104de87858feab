/**
 * A live KMS device's description (planes, IN_FORMATS, caps, framebuffer limits, coherency),
 * read through the drm layer, and its record in the normalized drm_info schema that
 * import-drm-info.ts reads, so a description taken in the VM can become a fixture.
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, formatName, modifierHex, modifierName } from '../formats/index.js';
import { modelOf, type DeviceOrModel, type KmsDeviceModel } from '../kms/model.js';
import type { DeviceJSON } from '../kms/describe.js';
import type { KmsDeviceDescription, PlaneDescription, PlaneType } from './device.js';

export interface LiveOptions {
  /** Override the coherency found by discovery. */
  readonly coherent?: boolean;
  /** Declare that the device needs contiguous memory (KMS does not say). */
  readonly contiguous?: boolean;
}

/**
 * The description of a KMS device: from its model (KmsDeviceModel: no ioctl), or from an open
 * KMS (primary) node, read into a model of its own first.
 */
export function describeKmsDevice(device: DeviceOrModel, opts: LiveOptions = {}): KmsDeviceDescription {
  return describeModel(modelOf(device), opts);
}

/** The constraint description derived from a device's model (no ioctl). */
export function describeModel(model: KmsDeviceModel, opts: LiveOptions = {}): KmsDeviceDescription {
  const res = model.resources;
  const coherent = opts.coherent ?? model.coherent;
  return fromSnapshot({
    name: model.name,
    driver: model.driver,
    source: `live ${model.path}`,
    ...(model.prime ? { prime: model.prime } : {}),
    ...(model.dumbBuffer !== undefined ? { dumbBuffer: model.dumbBuffer } : {}),
    ...(model.addfb2Modifiers !== undefined ? { addfb2Modifiers: model.addfb2Modifiers } : {}),
    kms: {
      ...res,
      crtcs: res.crtcs.map((c) => ({ id: c.id, index: c.index })),
      planes: res.planes.map((p) => ({ id: p.id, type: p.type, possibleCrtcs: p.possibleCrtcs, hasInFormats: p.hasInFormats, formats: p.formats })),
    },
    ...(coherent !== undefined ? { coherent } : {}),
    ...(opts.contiguous !== undefined ? { contiguous: opts.contiguous } : {}),
  });
}

interface Snapshot {
  name: string;
  driver: string;
  source: string;
  prime?: { import: boolean; export: boolean };
  dumbBuffer?: boolean;
  addfb2Modifiers?: boolean;
  coherent?: boolean;
  contiguous?: boolean;
  kms: {
    minWidth: number;
    maxWidth: number;
    minHeight: number;
    maxHeight: number;
    cursorWidth: number | null;
    cursorHeight: number | null;
    crtcs: Array<{ id: number; index: number }>;
    planes: Array<{ id: number; type: string; possibleCrtcs: number[]; hasInFormats: boolean; formats: FormatSet }>;
  };
}

/**
 * The model's description from the drm layer's snapshot (live, or `primebuf devices --json`).
 * CRTC ids become indices; a plane without IN_FORMATS has the implicit modifier in the
 * snapshot and LINEAR here (see import-drm-info.ts for why).
 */
function fromSnapshot(s: Snapshot): KmsDeviceDescription {
  const index = new Map(s.kms.crtcs.map((c) => [c.id, c.index]));
  const planes: PlaneDescription[] = s.kms.planes.map((p) => {
    const formats = p.hasInFormats
      ? p.formats
      : FormatSet.from([...p.formats].map((x) => [x.format, x.modifier === DRM_FORMAT_MOD_INVALID ? DRM_FORMAT_MOD_LINEAR : x.modifier] as [number, bigint]));
    return {
      id: p.id,
      type: p.type.toLowerCase() as PlaneType,
      possibleCrtcs: p.possibleCrtcs.map((id) => index.get(id) ?? -1).filter((i) => i >= 0),
      formats,
      inFormats: p.hasInFormats,
      emptyModifiers: [],
    };
  });
  const d: { -readonly [K in keyof KmsDeviceDescription]: KmsDeviceDescription[K] } = {
    name: s.name,
    driver: s.driver,
    source: s.source,
    fbSize: { minWidth: s.kms.minWidth, maxWidth: s.kms.maxWidth, minHeight: s.kms.minHeight, maxHeight: s.kms.maxHeight },
    planes,
  };
  if (s.prime) d.prime = s.prime;
  if (s.dumbBuffer !== undefined) d.dumbBuffer = s.dumbBuffer;
  if (s.addfb2Modifiers !== undefined) d.addfb2Modifiers = s.addfb2Modifiers;
  if (s.kms.cursorWidth) d.cursorWidth = s.kms.cursorWidth;
  if (s.kms.cursorHeight) d.cursorHeight = s.kms.cursorHeight;
  if (s.coherent !== undefined) d.coherent = s.coherent;
  if (s.contiguous !== undefined) d.contiguous = s.contiguous;
  return d;
}

/**
 * Imports the output of `primebuf devices --json` (the drm layer's DeviceJSON: one object, an
 * array, or { devices: [...] } as in test/fixtures/vkms-devices.json recorded in the guest): every node with KMS objects.
 * Nodes without KMS (render nodes, vgem) are skipped.
 */
export function importDevicesJSON(doc: unknown, source = 'primebuf devices --json'): KmsDeviceDescription[] {
  const wrapped = typeof doc === 'object' && doc !== null && Array.isArray((doc as { devices?: unknown }).devices);
  const list = (wrapped ? (doc as { devices: unknown[] }).devices : Array.isArray(doc) ? doc : [doc]) as DeviceJSON[];
  const out: KmsDeviceDescription[] = [];
  for (const dev of list) {
    if (!dev || typeof dev !== 'object' || !dev.kms) continue;
    const k = dev.kms;
    const cap = (n: string) => (typeof dev.caps?.[n] === 'number' ? (dev.caps[n] as number) : undefined);
    const snap: Snapshot = {
      name: dev.name,
      driver: dev.version?.name ?? dev.driver ?? 'unknown',
      source: `${source}: ${dev.path}`,
      kms: {
        minWidth: k.minWidth,
        maxWidth: k.maxWidth,
        minHeight: k.minHeight,
        maxHeight: k.maxHeight,
        cursorWidth: k.cursorWidth,
        cursorHeight: k.cursorHeight,
        crtcs: k.crtcs.map((c) => ({ id: c.id, index: c.index })),
        planes: k.planes.map((p) => ({ id: p.id, type: p.type, possibleCrtcs: p.possibleCrtcs, hasInFormats: p.hasInFormats, formats: FormatSet.fromJSON(p.formats) })),
      },
      coherent: dev.coherent,
    };
    if (dev.prime) snap.prime = dev.prime;
    const dumb = cap('DUMB_BUFFER');
    if (dumb !== undefined) snap.dumbBuffer = dumb !== 0;
    const mods = cap('ADDFB2_MODIFIERS');
    if (mods !== undefined) snap.addfb2Modifiers = mods !== 0;
    out.push(fromSnapshot(snap));
  }
  return out;
}

