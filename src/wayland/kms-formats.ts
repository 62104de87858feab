/**
 * What a KMS device's planes accept, as FormatSets for linux-dmabuf feedback, and the wl_shm
 * defaults that follow from the same device: all derived from the device's KmsDeviceModel (one
 * read of the KMS tree; see src/kms/model.ts). Policy: the scanout tranche uses the primary
 * plane's pairs; the render/import set is the union over all planes plus the implicit modifier
 * for every format a plane takes LINEAR (AddFB2 without modifiers then lets the driver decide,
 * linear on vkms).
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, formatInfo, type FormatModifier } from '../formats/index.js';
import { describeModel } from '../constraints/live.js';
import { scanoutConstraint } from '../constraints/device.js';
import { merge } from '../constraints/set.js';
import { modelOf, type DeviceOrModel, type KmsDeviceModel } from '../kms/model.js';
import type { Plane } from '../kms/resources.js';
import { CONVERTIBLE_FORMATS } from '../scanout/copy.js';

export interface KmsFormats {
  readonly planes: readonly Plane[];
  /** pairs of the primary plane(s) */
  readonly primary: FormatSet;
  /** every plane's pairs plus implicit-modifier pairs */
  readonly all: FormatSet;
}

const formatsOf = new WeakMap<KmsDeviceModel, KmsFormats>();

/** The planes' format sets of a device (its model, or an open Device read into one). */
export function kmsFormats(device: DeviceOrModel): KmsFormats {
  const model = modelOf(device);
  const hit = formatsOf.get(model);
  if (hit) return hit;
  const { planes } = model.resources;
  const primary = planes.filter((p) => p.type === 'primary').reduce((a, p) => a.union(p.formats), FormatSet.empty);
  let all = planes.reduce((a, p) => a.union(p.formats), FormatSet.empty);
  const implicit: FormatModifier[] = [];
  for (const f of all.formats()) if (all.has(f, DRM_FORMAT_MOD_LINEAR)) implicit.push({ format: f, modifier: DRM_FORMAT_MOD_INVALID });
  all = all.union(FormatSet.from(implicit));
  const out = { planes, primary, all };
  formatsOf.set(model, out);
  return out;
}

/** What installShm takes from a device's model when the caller does not say. */
export interface ShmModelDefaults {
  /**
   * The primary plane's formats (shown directly) and the copy's CONVERTIBLE_FORMATS, the
   * one-plane whole-byte ones only (what wl_shm can carry).
   */
  readonly formats: readonly number[];
  /** The display reads memory cache-coherently: the merged scanout constraint needs no write-combining. */
  readonly coherent: boolean;
  /** The display reads plane offsets right (model.planeOffsets: probed, or assumed). */
  readonly planeOffsets: boolean;
}

/** wl_shm's defaults for a display, from its model (no ioctl). */
export function shmDefaults(model: KmsDeviceModel): ShmModelDefaults {
  const formats = [...new Set([...kmsFormats(model).primary.formats(), ...CONVERTIBLE_FORMATS])].filter((f) => {
    const info = formatInfo(f);
    return info !== undefined && info.planes === 1 && (info.cpp[0] ?? 0) > 0;
  });
  const hasPrimary = model.resources.planes.some((p) => p.type === 'primary');
  const coherent = hasPrimary ? !merge(scanoutConstraint(describeModel(model), { type: 'primary' })).set.writeCombine : model.coherent !== false;
  return { formats, coherent, planeOffsets: model.planeOffsets.honoured };
}
