/**
 * Framebuffers: AddFB2 (with DRM_MODE_FB_MODIFIERS for an explicit modifier, without it for the
 * implicit one, DRM_FORMAT_MOD_INVALID), the legacy AddFB when the driver has no AddFB2, and
 * RmFB on close. A Framebuffer owns one reference to each GEM handle it was made from, so the
 * buffer stays alive as long as the framebuffer can be scanned out.
 */
import { SystemError } from '../errors.js';
import { native } from '../native.js';
import type { RawAddFB2 } from '../native/drm.js';
import { Resource } from '../resource.js';
import type { Device } from './device.js';
import type { GemHandle } from './gem.js';

export const DRM_MODE_FB_INTERLACED = 1 << 0;
export const DRM_MODE_FB_MODIFIERS = 1 << 1;
/** DRM_FORMAT_MOD_INVALID: the implicit modifier (the driver decides the layout). */
export const MOD_INVALID = 0x00ffffffffffffffn;
export const MOD_LINEAR = 0n;

export interface FramebufferPlane {
  handle: GemHandle;
  pitch: number;
  offset?: number;
}

export interface FramebufferDescription {
  width: number;
  height: number;
  format: number;
  /** DRM_FORMAT_MOD_INVALID (implicit) or an explicit modifier, the same for every plane */
  modifier: bigint;
  planes: FramebufferPlane[];
  /** try the legacy AddFB when AddFB2 is not supported (default true) */
  legacyFallback?: boolean;
}

/** Formats the legacy AddFB can express: fourcc -> [bpp, depth]. */
const LEGACY: ReadonlyMap<number, [number, number]> = new Map([
  [0x34325258, [32, 24]], // XRGB8888
  [0x34325241, [32, 32]], // ARGB8888
  [0x36314752, [16, 16]], // RGB565
  [0x35314258, [16, 15]], // XRGB1555
  [0x30335258, [32, 30]], // XRGB2101010
  [0x20203843, [8, 8]], // C8
]);

function fourcc(code: number): string {
  return String.fromCharCode(code & 0xff, (code >> 8) & 0xff, (code >> 16) & 0xff, (code >>> 24) & 0xff);
}

let liveFramebuffers = 0;

/** Framebuffers primebuf holds across all devices (for leak checks). */
export function liveFramebufferCount(): number {
  return liveFramebuffers;
}

export class Framebuffer extends Resource {
  readonly id: number;
  readonly device: Device;
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly modifier: bigint;
  /** 'addfb2-modifiers' | 'addfb2' | 'addfb' | 'raw' */
  readonly via: string;

  /** Creates a framebuffer; takes its own reference to each plane's GEM handle. */
  static create(device: Device, desc: FramebufferDescription): Framebuffer {
    const n = desc.planes.length;
    if (n < 1 || n > 4) throw new RangeError(`framebuffer needs 1..4 planes, got ${n}`);
    const explicit = desc.modifier !== MOD_INVALID;
    const raw: RawAddFB2 = {
      width: desc.width,
      height: desc.height,
      format: desc.format,
      flags: explicit ? DRM_MODE_FB_MODIFIERS : 0,
      handles: desc.planes.map((p) => p.handle.handle),
      pitches: desc.planes.map((p) => p.pitch),
      offsets: desc.planes.map((p) => p.offset ?? 0),
      modifiers: explicit ? desc.planes.map(() => desc.modifier) : undefined,
    };
    let id: number;
    let via = explicit ? 'addfb2-modifiers' : 'addfb2';
    // Every reference is taken inside the try: a plane whose ref() throws (a closed handle)
    // gives back the references already taken for the planes before it.
    const refs: GemHandle[] = [];
    try {
      for (const p of desc.planes) refs.push(p.handle.ref());
      try {
        id = native.drmAddFB2(device.fd, raw);
      } catch (err) {
        const legacy = LEGACY.get(desc.format);
        const unsupported = err instanceof SystemError && (err.code === 'ENOTTY' || err.code === 'ENOSYS');
        if (!unsupported || desc.legacyFallback === false || !legacy || n !== 1 || (desc.planes[0]!.offset ?? 0) !== 0 ||
            (desc.modifier !== MOD_INVALID && desc.modifier !== MOD_LINEAR)) {
          throw err;
        }
        id = native.drmAddFB(device.fd, desc.width, desc.height, desc.planes[0]!.pitch, legacy[0], legacy[1], desc.planes[0]!.handle.handle);
        via = 'addfb';
      }
    } catch (err) {
      for (const r of refs) r.close();
      throw err;
    }
    return new Framebuffer(device, id, desc.width, desc.height, desc.format, desc.modifier, via, refs);
  }

  /**
   * AddFB2 with exactly these ioctl arguments (for conformance tests of the kernel's checks).
   * The framebuffer owns no handle references: the caller keeps the handles alive.
   */
  static createRaw(device: Device, raw: RawAddFB2): Framebuffer {
    const id = native.drmAddFB2(device.fd, raw);
    const mod = raw.flags && raw.flags & DRM_MODE_FB_MODIFIERS ? (raw.modifiers?.[0] ?? 0n) : MOD_INVALID;
    return new Framebuffer(device, id, raw.width, raw.height, raw.format, mod, 'raw', []);
  }

  private constructor(device: Device, id: number, width: number, height: number, format: number, modifier: bigint, via: string, refs: GemHandle[]) {
    const owner: { drop?: () => void } = {};
    super(`${device.name} fb ${id} ${width}x${height} ${fourcc(format)}`, () => {
      liveFramebuffers--;
      owner.drop?.();
      try {
        // also while the device closes (it closes its framebuffers before its fd)
        const fd = device.liveFd;
        if (fd !== undefined) native.drmRmFB(fd, id);
      } finally {
        for (const r of refs) r.close();
      }
    });
    liveFramebuffers++;
    owner.drop = device.adoptChild('framebuffer', this);
    this.id = id;
    this.device = device;
    this.width = width;
    this.height = height;
    this.format = format;
    this.modifier = modifier;
    this.via = via;
  }
}
