/**
 * What a KMS device's planes accept, as FormatSets for linux-dmabuf feedback: the IN_FORMATS
 * blob of each plane (or its legacy format list, with the implicit modifier, when the driver has
 * no modifier support). The scanout tranche uses the primary plane's pairs; the render/import
 * set is the union over all planes plus the implicit modifier for every format a plane takes
 * LINEAR (AddFB2 without modifiers then lets the driver decide, linear on vkms).
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, type FormatModifier } from '../formats/index.js';
import type { Device } from '../kms/device.js';
import { decodeInFormats } from '../kms/in-formats.js';
import { enumName } from '../kms/properties.js';
import { native } from '../native.js';

export interface KmsPlaneFormats {
  readonly id: number;
  readonly type: string;
  readonly formats: FormatSet;
}

export interface KmsFormats {
  readonly planes: readonly KmsPlaneFormats[];
  /** pairs of the primary plane(s) */
  readonly primary: FormatSet;
  /** every plane's pairs plus implicit-modifier pairs */
  readonly all: FormatSet;
}

export function kmsFormats(device: Device): KmsFormats {
  try {
    device.setClientCap('UNIVERSAL_PLANES'); // primary and cursor planes, and their 'type'
  } catch {
    // Without it only overlay planes are listed; their formats still count.
  }
  const planes: KmsPlaneFormats[] = [];
  for (const id of device.resourceIds().planes) {
    const props = device.properties.objectProperties(id, 'PLANE');
    const type = enumName(props.get('type')) ?? 'Overlay';
    const inFormats = props.get('IN_FORMATS');
    let pairs: FormatModifier[];
    if (inFormats && inFormats.value !== 0n) {
      pairs = decodeInFormats(native.drmGetPropertyBlob(device.fd, Number(inFormats.value)));
    } else {
      pairs = native.drmGetPlane(device.fd, id).formats.map((format) => ({ format, modifier: DRM_FORMAT_MOD_INVALID }));
    }
    planes.push({ id, type, formats: FormatSet.from(pairs) });
  }
  const primary = planes.filter((p) => p.type === 'Primary').reduce((a, p) => a.union(p.formats), FormatSet.empty);
  let all = planes.reduce((a, p) => a.union(p.formats), FormatSet.empty);
  const implicit: FormatModifier[] = [];
  for (const f of all.formats()) if (all.has(f, DRM_FORMAT_MOD_LINEAR)) implicit.push({ format: f, modifier: DRM_FORMAT_MOD_INVALID });
  all = all.union(FormatSet.from(implicit));
  return { planes, primary, all };
}
