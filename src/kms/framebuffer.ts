/**
 * Framebuffers: AddFB2 (with DRM_MODE_FB_MODIFIERS for an explicit modifier, without it for the
 * implicit one, DRM_FORMAT_MOD_INVALID), the legacy AddFB when the driver has no AddFB2, and
 * RmFB on close. A Framebuffer owns one reference to each GEM handle it was made from, so the
 * buffer stays alive as long as the framebuffer can be scanned out.
 *
 * `close({ keepOnScreen: true })` releases a framebuffer that is still on a plane without
 * switching the plane off: DRM_IOCTL_MODE_CLOSEFB (Linux 6.8+) removes the id from primebuf's
 * namespace and the kernel keeps the buffer until a later commit replaces it. On kernels
 * without CLOSEFB (ENOTTY/EINVAL) it falls back to RmFB, which switches off the planes that show
 * the framebuffer (`removedWith` says which ioctl ran). A plain close() is RmFB.
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

/** The parts of an imported client buffer (a LinuxDmabufBuffer) a framebuffer is made from. */
export interface ImportedBuffer {
  readonly attributes: {
    readonly width: number;
    readonly height: number;
    readonly format: number;
    readonly modifier: bigint;
    readonly planes: ReadonlyArray<{ readonly offset: number; readonly stride: number }>;
  };
  /** the import: its counted GEM handles per plane and the device they belong to */
  readonly imported: { readonly gemHandles?: readonly GemHandle[]; readonly device?: unknown };
}

export interface FramebufferCloseOptions {
  /**
   * Leave planes that show this framebuffer as they are (CLOSEFB; RmFB where the kernel lacks
   * it). Default false: RmFB, which switches those planes off.
   */
  keepOnScreen?: boolean;
}

/** Mutable state shared with the release function (which must not capture the Framebuffer). */
interface FbState {
  drop?: () => void;
  keepOnScreen: boolean;
  removedWith?: 'RMFB' | 'CLOSEFB';
}

/** CLOSEFB, or RmFB where the kernel does not know CLOSEFB (before 6.8: ENOTTY, or EINVAL). */
function closeFb(fd: number, id: number): 'RMFB' | 'CLOSEFB' {
  try {
    native.drmCloseFB(fd, id);
    return 'CLOSEFB';
  } catch (err) {
    if (!(err instanceof SystemError) || (err.code !== 'ENOTTY' && err.code !== 'EINVAL')) throw err;
  }
  native.drmRmFB(fd, id);
  return 'RMFB';
}

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
  readonly #state: FbState;

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
   * The framebuffer of an imported client buffer (a LinuxDmabufBuffer whose import holds GEM
   * handles of `device`): no second PRIME import, the framebuffer takes its own reference to
   * each plane's handle. TypeError when the buffer was not imported into `device`.
   */
  static forBuffer(device: Device, buffer: ImportedBuffer): Framebuffer {
    const a = buffer.attributes;
    const handles = buffer.imported.gemHandles;
    if (!handles || handles.length === 0 || buffer.imported.device !== device) {
      throw new TypeError(`the buffer holds no GEM handles of ${device.name} (imported into another device, or not through PRIME)`);
    }
    if (handles.length !== a.planes.length) throw new TypeError(`the buffer has ${a.planes.length} planes but ${handles.length} GEM handles`);
    return Framebuffer.create(device, {
      width: a.width,
      height: a.height,
      format: a.format,
      modifier: a.modifier,
      planes: a.planes.map((p, i) => ({ handle: handles[i]!, pitch: p.stride, offset: p.offset })),
    });
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
    const state: FbState = { keepOnScreen: false };
    super(`${device.name} fb ${id} ${width}x${height} ${fourcc(format)}`, () => {
      liveFramebuffers--;
      state.drop?.();
      try {
        // also while the device closes (it closes its framebuffers before its fd)
        const fd = device.liveFd;
        if (fd === undefined) return;
        if (state.keepOnScreen) state.removedWith = closeFb(fd, id);
        else {
          native.drmRmFB(fd, id);
          state.removedWith = 'RMFB';
        }
      } finally {
        for (const r of refs) r.close();
      }
    });
    liveFramebuffers++;
    this.#state = state;
    state.drop = device.adoptChild('framebuffer', this);
    this.id = id;
    this.device = device;
    this.width = width;
    this.height = height;
    this.format = format;
    this.modifier = modifier;
    this.via = via;
  }

  /**
   * Removes the framebuffer id (once; later calls do nothing). With `keepOnScreen`, planes that
   * show it keep showing it until a commit replaces it (CLOSEFB, RmFB before Linux 6.8).
   */
  override close(opts: FramebufferCloseOptions = {}): void {
    if (this.closed) return;
    this.#state.keepOnScreen = opts.keepOnScreen === true;
    super.close();
  }

  /** The ioctl that removed the id: 'RMFB', 'CLOSEFB', or undefined (open, or gone with the device's fd). */
  get removedWith(): 'RMFB' | 'CLOSEFB' | undefined {
    return this.#state.removedWith;
  }
}
