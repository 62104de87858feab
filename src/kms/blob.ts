/** Property blobs (MODE_ID, GAMMA_LUT, ...): created by primebuf, destroyed on close (or with their Device). */
import { native } from '../native.js';
import type { RawMode } from '../native/drm.js';
import { Resource } from '../resource.js';
import type { Device } from './device.js';

/** struct drm_mode_modeinfo as bytes (68). */
export function encodeMode(m: RawMode): Uint8Array {
  const buf = new Uint8Array(68);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, m.clock, true);
  const u16 = [m.hdisplay, m.hsyncStart, m.hsyncEnd, m.htotal, m.hskew, m.vdisplay, m.vsyncStart, m.vsyncEnd, m.vtotal, m.vscan];
  u16.forEach((v, i) => dv.setUint16(4 + i * 2, v, true));
  dv.setUint32(24, m.vrefresh, true);
  dv.setUint32(28, m.flags, true);
  dv.setUint32(32, m.type, true);
  const name = new TextEncoder().encode(m.name).subarray(0, 31);
  buf.set(name, 36);
  return buf;
}

export class PropertyBlob extends Resource {
  readonly id: number;

  static create(device: Device, data: Uint8Array, what = 'blob'): PropertyBlob {
    return new PropertyBlob(device, native.drmCreatePropertyBlob(device.fd, data), what);
  }

  static fromMode(device: Device, mode: RawMode): PropertyBlob {
    return PropertyBlob.create(device, encodeMode(mode), `mode ${mode.name}`);
  }

  private constructor(device: Device, id: number, what: string) {
    const owner: { drop?: () => void } = {};
    super(`${device.name} ${what} blob ${id}`, () => {
      owner.drop?.();
      const fd = device.liveFd; // also while the device closes (blobs go before its fd)
      if (fd !== undefined) native.drmDestroyPropertyBlob(fd, id);
    });
    this.id = id;
    owner.drop = device.adoptChild('blob', this);
  }
}
