/**
 * DmabufAttributes: a dma-buf described by a client (size, format, modifier, planes with their
 * fds), validated by the rules of zwp_linux_buffer_params_v1 (protocol/linux-dmabuf-v1.xml and
 * ../shared/LINUX-DMABUF-RULES.md). Each rule that fails maps to the protocol error a
 * compositor must post, so the server and the client helper (which checks before sending)
 * apply the same rules. Sizes are computed in 64-bit (bigint).
 *
 * Ownership: a validated DmabufAttributes owns the plane fds (OwnedFd); close() closes each
 * exactly once. A failed validation leaves the fds with the caller.
 */
import { OwnedFd } from '../fd.js';
import { DRM_FORMAT_MOD_INVALID, formatInfo, formatName, modifierName, type FormatSet } from '../formats/index.js';
import { native } from '../native.js';
import { SystemError } from '../errors.js';

/** zwp_linux_buffer_params_v1.error (numbers from the XML). */
export const PARAMS_ERROR = {
  already_used: 0,
  plane_idx: 1,
  plane_set: 2,
  incomplete: 3,
  invalid_format: 4,
  invalid_dimensions: 5,
  out_of_bounds: 6,
  invalid_wl_buffer: 7,
} as const;
export type ParamsErrorName = keyof typeof PARAMS_ERROR;

/** zwp_linux_buffer_params_v1.flags */
export const PARAMS_FLAGS = { y_invert: 1, interlaced: 2, bottom_first: 4 } as const;

/** DRM allows at most 4 planes per framebuffer; linux-dmabuf plane indices are below that. */
export const MAX_PLANES = 4;

/**
 * A protocol-mappable validation failure. `fatal` problems are client bugs the protocol names
 * (post `code` on the params object); the others are buffers the compositor cannot use: the
 * non-fatal `failed` event for create, invalid_wl_buffer for create_immed.
 */
export interface ParamsProblem {
  readonly error: ParamsErrorName;
  readonly code: number;
  readonly message: string;
  readonly fatal: boolean;
  readonly plane?: number;
}

function problem(error: ParamsErrorName, message: string, plane?: number): ParamsProblem {
  const base = { error, code: PARAMS_ERROR[error], message, fatal: error !== 'invalid_wl_buffer' };
  return plane === undefined ? base : { ...base, plane };
}

/** One plane as the client described it with `add`. */
export interface PlaneInput {
  readonly fd: OwnedFd;
  readonly offset: number;
  readonly stride: number;
  readonly modifier: bigint;
}

/** The state of one zwp_linux_buffer_params_v1 before `create`. */
export interface ParamsInput {
  /** by plane index (sparse) */
  readonly planes: ReadonlyMap<number, PlaneInput>;
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly flags: number;
}

export interface ValidationContext {
  /** The version of the client's zwp_linux_dmabuf_v1 (rules differ by version). */
  readonly version: number;
  /**
   * The format/modifier pairs advertised to this client. From version 4 an unadvertised pair is
   * invalid_format; before, only an unadvertised format is.
   */
  readonly advertised: FormatSet;
  /** Size of a dma-buf (default: lseek SEEK_END); null when unknown (the import decides). */
  readonly fdSize?: (fd: OwnedFd) => bigint | null;
  /**
   * Flags the compositor handles (default: y_invert). Others, interlaced buffers included (the
   * XML recommends rejecting them when quality cannot be guaranteed), make the buffer unusable.
   */
  readonly acceptedFlags?: number;
}

/** The checks of an `add` request, given the planes already added. */
export function checkAdd(
  planes: ReadonlyMap<number, PlaneInput>,
  planeIdx: number,
  modifier: bigint,
  version: number,
): ParamsProblem | null {
  if (!Number.isInteger(planeIdx) || planeIdx < 0 || planeIdx >= MAX_PLANES) {
    return problem('plane_idx', `plane index ${planeIdx} is out of bounds (at most ${MAX_PLANES} planes)`, planeIdx);
  }
  if (planes.has(planeIdx)) return problem('plane_set', `plane ${planeIdx} was already set`, planeIdx);
  if (version >= 5) {
    for (const [i, p] of planes) {
      if (p.modifier !== modifier) {
        return problem(
          'invalid_format',
          `plane ${planeIdx} uses modifier ${modifierName(modifier)}, plane ${i} uses ${modifierName(p.modifier)}: all planes must use the same modifier`,
          planeIdx,
        );
      }
    }
  }
  return null;
}

// lseek(SEEK_END) size, or null when the fd cannot seek.
function defaultFdSize(fd: OwnedFd): bigint | null {
  try {
    return native.dmabufSize(fd.fd);
  } catch (err) {
    if (err instanceof SystemError) return null;
    throw err;
  }
}

export type Validation =
  | { readonly ok: true; readonly attributes: DmabufAttributes }
  | { readonly ok: false; readonly problem: ParamsProblem };

/** One validated plane; its fd belongs to the DmabufAttributes. */
export interface DmabufPlane {
  readonly fd: OwnedFd;
  readonly offset: number;
  readonly stride: number;
  /** lseek size of the dma-buf, when the kernel reports one */
  readonly size: bigint | null;
}

/** A dma-buf a client described and primebuf validated. Owns its plane fds. */
export class DmabufAttributes implements Disposable {
  #closed = false;

  private constructor(
    readonly width: number,
    readonly height: number,
    readonly format: number,
    readonly modifier: bigint,
    readonly flags: number,
    readonly planes: readonly DmabufPlane[],
  ) {}

  /**
   * Applies the `create` / `create_immed` rules. On success the returned attributes own the
   * fds of `input`; on failure the fds stay with the caller.
   */
  static validate(input: ParamsInput, ctx: ValidationContext): Validation {
    const { planes, width, height, format, flags } = input;
    if (planes.size === 0) return { ok: false, problem: problem('incomplete', 'no plane was added') };
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      return { ok: false, problem: problem('invalid_dimensions', `invalid size ${width}x${height}: width and height must be positive`) };
    }
    const info = formatInfo(format);
    if (!info || !ctx.advertised.hasFormat(format)) {
      return { ok: false, problem: problem('invalid_format', `format ${formatName(format)} is not supported`) };
    }
    // Every plane index 0..n-1 exactly once, none beyond.
    const n = info.planes;
    for (const idx of planes.keys()) {
      if (idx >= n) {
        return { ok: false, problem: problem('incomplete', `plane ${idx} was added, but ${info.name} has ${n} plane(s)`, idx) };
      }
    }
    for (let i = 0; i < n; i++) {
      if (!planes.has(i)) return { ok: false, problem: problem('incomplete', `plane ${i} of ${info.name} is missing`, i) };
    }
    const first = planes.get(0)!;
    const modifier = first.modifier;
    for (let i = 1; i < n; i++) {
      if (planes.get(i)!.modifier !== modifier) {
        // From version 5 a protocol error; before, a buffer no kernel accepts (AddFB2 EINVAL).
        const error = ctx.version >= 5 ? 'invalid_format' : 'invalid_wl_buffer';
        return { ok: false, problem: problem(error, `planes 0 and ${i} use different modifiers`, i) };
      }
    }
    if (ctx.version >= 4 && !ctx.advertised.has(format, modifier)) {
      return {
        ok: false,
        problem: problem('invalid_format', `${info.name} with modifier ${modifierName(modifier)} was not advertised`),
      };
    }
    // Bounds: offset + stride * (plane height) within the dma-buf, in 64-bit arithmetic;
    // sub-sampled planes use ceil(height / vsub).
    const fdSize = ctx.fdSize ?? defaultFdSize;
    const out: DmabufPlane[] = [];
    for (let i = 0; i < n; i++) {
      const p = planes.get(i)!;
      const h = i === 0 ? height : Math.ceil(height / info.vsub);
      const offset = BigInt(p.offset);
      const stride = BigInt(p.stride);
      const end = offset + stride * BigInt(h);
      const size = fdSize(p.fd);
      if (size !== null) {
        if (offset >= size) {
          return { ok: false, problem: problem('out_of_bounds', `plane ${i}: offset ${offset} is beyond the dma-buf (${size} bytes)`, i) };
        }
        if (offset + stride > size) {
          return { ok: false, problem: problem('out_of_bounds', `plane ${i}: offset ${offset} + stride ${stride} exceeds the dma-buf (${size} bytes)`, i) };
        }
        if (end > size) {
          return {
            ok: false,
            problem: problem('out_of_bounds', `plane ${i}: offset ${offset} + stride ${stride} * height ${h} = ${end} exceeds the dma-buf (${size} bytes)`, i),
          };
        }
      }
      out.push({ fd: p.fd, offset: p.offset, stride: p.stride, size });
    }
    const accepted = ctx.acceptedFlags ?? PARAMS_FLAGS.y_invert;
    if ((flags & ~accepted) !== 0) {
      return { ok: false, problem: problem('invalid_wl_buffer', `flags 0x${(flags >>> 0).toString(16)} are not supported`) };
    }
    return { ok: true, attributes: new DmabufAttributes(width, height, format, modifier, flags >>> 0, out) };
  }

  /** True when the client asked for an implicit modifier (DRM_FORMAT_MOD_INVALID). */
  get implicitModifier(): boolean {
    return this.modifier === DRM_FORMAT_MOD_INVALID;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A readable one-line description for logs. */
  describe(): string {
    const planes = this.planes.map((p, i) => `p${i}{off ${p.offset} stride ${p.stride}${p.size === null ? '' : ` size ${p.size}`}}`).join(' ');
    return `${this.width}x${this.height} ${formatName(this.format)} ${modifierName(this.modifier)}${this.flags ? ` flags 0x${this.flags.toString(16)}` : ''} ${planes}`;
  }

  toJSON(): object {
    return {
      width: this.width,
      height: this.height,
      format: formatName(this.format),
      modifier: `0x${this.modifier.toString(16).padStart(16, '0')}`,
      modifierName: modifierName(this.modifier),
      flags: this.flags,
      planes: this.planes.map((p) => ({ offset: p.offset, stride: p.stride, size: p.size === null ? null : Number(p.size) })),
    };
  }

  /** Closes every plane fd once (planes sharing one dma-buf still hold separate fds). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.planes) p.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
