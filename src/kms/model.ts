/**
 * A KMS device's facts, read once: the KMS tree (CRTCs, connectors, encoders, planes with their
 * properties and IN_FORMATS, framebuffer and cursor limits: one readResources pass), the caps
 * that matter to buffers (PRIME, dumb buffers, AddFB2 modifiers), what discovery knows of the
 * node (coherency, the same GPU's other nodes), and quirks found by asking the display itself
 * (plane offsets: plane-offsets.ts).
 *
 * Everything else about the device is derived from this one object, without another ioctl:
 * the constraint description (describeKmsDevice), the scanout verdicts' device
 * (scanoutDeviceFromLive), linux-dmabuf's formats (kmsFormats, LinuxDmabuf.forKmsDevice) and
 * wl_shm's defaults (installShm's `model`). The functions that take a Device read a model of
 * their own; a compositor reads one with `KmsDeviceModel.read(device)` and hands it to all of
 * them, so the tree is read once at start-up.
 *
 * What the model holds is the device's state at the read: the static facts (planes, formats,
 * limits, caps) do not change while the fd is open; the dynamic ones (a CRTC's mode, a
 * connector's connection, the framebuffer on a plane) are as they were then.
 */
import { basename } from 'node:path';
import type { Device } from './device.js';
import { listDevices, type DeviceInfo } from './discovery.js';
import { readResources, type KmsResources } from './resources.js';

/**
 * Whether the display reads a framebuffer's plane offsets once, as AddFB2 defines them. stock
 * vkms (Linux 6.12) applies them twice (the shadow plane's `data` pointers include the offset and
 * vkms_formats.c adds `fb->offsets[0]` again), so a buffer that starts at an offset inside its
 * dma-buf shows the wrong pixels there.
 */
export interface PlaneOffsetsFact {
  readonly honoured: boolean;
  /**
   * 'probe': a buffer with a plane offset was shown and captured through the writeback connector
   * (probePlaneOffsets); 'assumed': not probed (no writeback connector, or no probe run): a
   * display is assumed to honour plane offsets, as KMS promises.
   */
  readonly source: 'probe' | 'assumed';
  readonly detail: string;
}

/** What a model assumes before (or without) a probe: honoured, as the KMS API promises. */
export const PLANE_OFFSETS_ASSUMED: PlaneOffsetsFact = Object.freeze({
  honoured: true,
  source: 'assumed',
  detail: 'not probed (no writeback connector to capture with, or no probe run): assumed honoured, as AddFB2 promises',
});

/** The facts a model is made of (a live read, or a recorded device for host tests). */
export interface KmsDeviceFacts {
  /** '/dev/dri/card0' */
  readonly path: string;
  /** the DRM driver's name (DRM_IOCTL_VERSION), e.g. 'vkms' */
  readonly driver: string;
  readonly devId?: bigint;
  readonly prime?: { readonly import: boolean; readonly export: boolean };
  readonly dumbBuffer?: boolean;
  readonly addfb2Modifiers?: boolean;
  /** whether the device reads memory cache-coherently (discovery, or the caller's word) */
  readonly coherent?: boolean;
  /** dev_t values of the same GPU's other nodes (render node, sysfs siblings) */
  readonly sameGpu?: readonly bigint[];
  readonly resources: KmsResources;
  readonly planeOffsets?: PlaneOffsetsFact;
}

export interface ModelReadOptions {
  /** Re-probe the connectors (DRM_IOCTL_MODE_GETCONNECTOR probes the outputs: slow on real hardware). */
  readonly probe?: boolean;
  /** Override the coherency found by discovery. */
  readonly coherent?: boolean;
  /** Discovery's view of the nodes (default: listDevices(), read once here). */
  readonly devices?: readonly DeviceInfo[];
}

/** dev_t values of the other nodes of `me` (same sysfs device or siblings). */
function sameGpuOf(me: DeviceInfo | undefined, devices: readonly DeviceInfo[]): bigint[] {
  if (!me) return [];
  return devices
    .filter((d) => d.path !== me.path && (me.siblings.includes(d.path) || (me.sysfsPath !== null && d.sysfsPath === me.sysfsPath)))
    .map((d) => d.devId);
}

/** One KMS device's facts; see the module comment. */
export class KmsDeviceModel {
  /** The open device the facts were read from (absent for a recorded device). */
  readonly device: Device | undefined;
  readonly path: string;
  /** 'card0' */
  readonly name: string;
  readonly driver: string;
  readonly devId: bigint | undefined;
  readonly prime: { readonly import: boolean; readonly export: boolean } | undefined;
  readonly dumbBuffer: boolean | undefined;
  readonly addfb2Modifiers: boolean | undefined;
  readonly coherent: boolean | undefined;
  readonly sameGpu: readonly bigint[];
  readonly resources: KmsResources;
  #planeOffsets: PlaneOffsetsFact;
  #revision = 0;

  constructor(facts: KmsDeviceFacts, device?: Device) {
    this.device = device;
    this.path = facts.path;
    this.name = basename(facts.path);
    this.driver = facts.driver;
    this.devId = facts.devId;
    this.prime = facts.prime;
    this.dumbBuffer = facts.dumbBuffer;
    this.addfb2Modifiers = facts.addfb2Modifiers;
    this.coherent = facts.coherent;
    this.sameGpu = Object.freeze([...(facts.sameGpu ?? [])]);
    this.resources = facts.resources;
    this.#planeOffsets = facts.planeOffsets ?? PLANE_OFFSETS_ASSUMED;
  }

  /**
   * Reads an open KMS (primary) node: one pass over its KMS objects (readResources), its caps,
   * and discovery's facts of the node. Throws what readResources throws on a node without KMS
   * (EOPNOTSUPP on vgem).
   */
  static read(device: Device, opts: ModelReadOptions = {}): KmsDeviceModel {
    if (!device.clientCaps.has('UNIVERSAL_PLANES')) {
      try {
        device.setClientCap('UNIVERSAL_PLANES'); // primary and cursor planes are listed, with 'type'
      } catch {
        // without it only overlay planes are listed
      }
    }
    const resources = readResources(device, { probe: opts.probe ?? false });
    const devices = opts.devices ?? listDevices();
    const info = devices.find((d) => d.path === device.path || d.devId === device.devId);
    const coherent = opts.coherent ?? info?.coherent;
    return new KmsDeviceModel(
      {
        path: device.path,
        driver: device.version.name,
        devId: device.devId,
        prime: device.prime,
        dumbBuffer: device.tryGetCap('DUMB_BUFFER', 0n) !== 0n,
        addfb2Modifiers: device.tryGetCap('ADDFB2_MODIFIERS', 0n) !== 0n,
        ...(coherent !== undefined ? { coherent } : {}),
        sameGpu: sameGpuOf(info, devices),
        resources,
      },
      device,
    );
  }

  /** Plane offsets: probed (probePlaneOffsets) or assumed honoured. */
  get planeOffsets(): PlaneOffsetsFact {
    return this.#planeOffsets;
  }

  /**
   * Bumped when a fact changes after the read (a probe's result): views derived from the model
   * (the scanout device) are cached per revision.
   */
  get revision(): number {
    return this.#revision;
  }

  /** Records what a probe found (probePlaneOffsets calls it). */
  setPlaneOffsets(fact: PlaneOffsetsFact): void {
    this.#planeOffsets = Object.freeze({ ...fact });
    this.#revision++;
  }

  /** The writeback connectors of the device. */
  get writebackConnectors(): KmsResources['connectors'] {
    return this.resources.connectors.filter((c) => c.writeback);
  }
}

/** A Device, or a model already read from it: the functions that derive from models take either. */
export type DeviceOrModel = Device | KmsDeviceModel;

/** `x` as a model: itself, or one read from the device now. */
export function modelOf(x: DeviceOrModel): KmsDeviceModel {
  return x instanceof KmsDeviceModel ? x : KmsDeviceModel.read(x);
}
