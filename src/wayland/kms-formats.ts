/**
 * What a KMS device's planes accept, as FormatSets for linux-dmabuf feedback. Reads the planes
 * through the kms layer (IN_FORMATS, or the legacy list with the implicit modifier). Policy:
 * the scanout tranche uses the primary plane's pairs; the render/import set is the union over
 * all planes plus the implicit modifier for every format a plane takes LINEAR (AddFB2 without
 * modifiers then lets the driver decide, linear on vkms).
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, type FormatModifier } from '../formats/index.js';
import type { Device } from '../kms/device.js';
import { readResources, type Plane } from '../kms/resources.js';

export interface KmsFormats {
  readonly planes: readonly Plane[];
  /** pairs of the primary plane(s) */
  readonly primary: FormatSet;
  /** every plane's pairs plus implicit-modifier pairs */
  readonly all: FormatSet;
}

export function kmsFormats(device: Device): KmsFormats {
  try {
    device.setClientCap('UNIVERSAL_PLANES'); // primary and cursor planes are listed, with 'type'
  } catch {
    // Without it only overlay planes are listed; their formats still count.
  }
  const { planes } = readResources(device);
  const primary = planes.filter((p) => p.type === 'primary').reduce((a, p) => a.union(p.formats), FormatSet.empty);
  let all = planes.reduce((a, p) => a.union(p.formats), FormatSet.empty);
  const implicit: FormatModifier[] = [];
  for (const f of all.formats()) if (all.has(f, DRM_FORMAT_MOD_LINEAR)) implicit.push({ format: f, modifier: DRM_FORMAT_MOD_INVALID });
  all = all.union(FormatSet.from(implicit));
  return { planes, primary, all };
}
