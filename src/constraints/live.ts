/**
 * A live KMS device's description (planes, IN_FORMATS, caps, framebuffer limits, coherency),
 * read through the drm layer, and its record in the normalized drm_info schema that
 * import-drm-info.ts reads, so a description taken in the VM can become a fixture.
 */
import { basename } from 'node:path';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, formatName, modifierHex, modifierName } from '../formats/index.js';
import { native } from '../native.js';
import { decodeInFormats } from '../kms/in-formats.js';
import { enumName } from '../kms/properties.js';
import { listDevices, type Device } from '../kms/index.js';
import type { KmsDeviceDescription, PlaneDescription, PlaneType } from './device.js';

export interface LiveOptions {
  /** Override the coherency found by discovery. */
  readonly coherent?: boolean;
  /** Declare that the device needs contiguous memory (KMS does not say). */
  readonly contiguous?: boolean;
}

/** Reads the description of an open KMS (primary) node. */
export function describeKmsDevice(device: Device, opts: LiveOptions = {}): KmsDeviceDescription {
  const fd = device.fd;
  const res = native.drmGetResources(fd);
  const planes: PlaneDescription[] = [];
  for (const id of native.drmGetPlaneResources(fd)) {
    const raw = native.drmGetPlane(fd, id);
    const props = device.properties.objectProperties(id, 'PLANE');
    const type = (enumName(props.get('type')) ?? 'Overlay').toLowerCase() as PlaneType;
    const inFormatsProp = props.get('IN_FORMATS');
    const crtcs: number[] = [];
    for (let i = 0; i < 32; i++) if (raw.possibleCrtcs & (1 << i)) crtcs.push(i);
    let formats: FormatSet;
    const empty: bigint[] = [];
    const hasBlob = inFormatsProp !== undefined && inFormatsProp.value !== 0n;
    if (hasBlob) {
      const pairs = decodeInFormats(native.drmGetPropertyBlob(fd, Number(inFormatsProp.value)));
      formats = FormatSet.from(pairs.map((p) => [p.format, p.modifier] as [number, bigint]));
    } else {
      formats = FormatSet.from(raw.formats.map((f) => [f, DRM_FORMAT_MOD_LINEAR] as [number, bigint]));
    }
    planes.push({ id, type, possibleCrtcs: crtcs, formats, inFormats: hasBlob, emptyModifiers: empty });
  }
  const info = listDevices().find((d) => d.path === device.path || d.devId === device.devId);
  const cw = device.tryGetCap('CURSOR_WIDTH', 0n);
  const ch = device.tryGetCap('CURSOR_HEIGHT', 0n);
  const d: { -readonly [K in keyof KmsDeviceDescription]: KmsDeviceDescription[K] } = {
    name: basename(device.path),
    driver: device.version.name,
    source: `live ${device.path}`,
    prime: device.prime,
    dumbBuffer: device.tryGetCap('DUMB_BUFFER', 0n) !== 0n,
    addfb2Modifiers: device.tryGetCap('ADDFB2_MODIFIERS', 0n) !== 0n,
    fbSize: { minWidth: res.minWidth, maxWidth: res.maxWidth, minHeight: res.minHeight, maxHeight: res.maxHeight },
    planes,
  };
  if (cw > 0n) d.cursorWidth = Number(cw);
  if (ch > 0n) d.cursorHeight = Number(ch);
  const coherent = opts.coherent ?? info?.coherent;
  if (coherent !== undefined) d.coherent = coherent;
  if (opts.contiguous !== undefined) d.contiguous = opts.contiguous;
  return d;
}

/**
 * The description in the normalized drm_info schema (what import-drm-info.ts reads), with
 * `source` saying where and when it was recorded.
 */
export function recordDescription(d: KmsDeviceDescription, source: string): Record<string, unknown> {
  const caps: Record<string, number> = {};
  if (d.prime) caps.DRM_CAP_PRIME = (d.prime.import ? 1 : 0) | (d.prime.export ? 2 : 0);
  if (d.dumbBuffer !== undefined) caps.DRM_CAP_DUMB_BUFFER = d.dumbBuffer ? 1 : 0;
  if (d.addfb2Modifiers !== undefined) caps.DRM_CAP_ADDFB2_MODIFIERS = d.addfb2Modifiers ? 1 : 0;
  if (d.cursorWidth !== undefined) caps.DRM_CAP_CURSOR_WIDTH = d.cursorWidth;
  if (d.cursorHeight !== undefined) caps.DRM_CAP_CURSOR_HEIGHT = d.cursorHeight;
  return {
    source,
    driver: d.driver,
    node: `/dev/dri/${d.name}`,
    caps,
    ...(d.fbSize ? { framebuffer_size: { width: `[${d.fbSize.minWidth}, ${d.fbSize.maxWidth}]`, height: `[${d.fbSize.minHeight}, ${d.fbSize.maxHeight}]` } } : {}),
    planes: d.planes.map((p, index) => {
      const base = { id: p.id, index, type: p.type, possible_crtcs: p.possibleCrtcs };
      if (!p.inFormats) return { ...base, formats_without_modifiers: p.formats.formats().map(formatName) };
      const byMod = new Map<bigint, number[]>();
      for (const { format, modifier } of p.formats) byMod.set(modifier, [...(byMod.get(modifier) ?? []), format]);
      return {
        ...base,
        in_formats: [...byMod.entries()].map(([m, fs]) => ({ modifier: modifierHex(m), modifier_name: modifierName(m), formats: fs.map(formatName) })),
      };
    }),
    ...(d.coherent !== undefined ? { notes: [`coherent: ${d.coherent} (from primebuf discovery)`] } : {}),
  };
}
