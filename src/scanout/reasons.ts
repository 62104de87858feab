/**
 * Scanout and texture verdicts as data: `{ ok, reasons }` with a closed set of reason codes.
 * Each code says whether re-allocating the buffer (another format, modifier, layout or device)
 * could fix it: that is what decides whether a surface keeps its scanout tranche in the
 * linux-dmabuf feedback (see debounce.ts).
 */
import { formatName } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';

/**
 * Why a buffer cannot go on a plane (or be textured). Re-allocation could fix: FORMAT, MODIFIER,
 * IMPLICIT_MODIFIER, LAYOUT, PLANE_OFFSET, IMPORT, ADDFB2, TEST_ONLY, COMMIT. It could not: NOT_DMABUF, NO_PLANE, SIZE,
 * ROTATION, SCALING, PLACEMENT, and the scene's NO_PLANE_LEFT, Z_ORDER, ALPHA, SOLID_FILL, NOT_COHERENT.
 */
export const SCANOUT_REASON_CODES = {
  /** A wl_shm (or other CPU) buffer: nothing to import; it is copied. */
  NOT_DMABUF: false,
  /** The plane does not exist, is not usable on the CRTC, or there is no KMS. */
  NO_PLANE: false,
  /** The format is not in the plane's IN_FORMATS (or the render device's importable formats). */
  FORMAT: true,
  /** The format is, but not with this modifier. */
  MODIFIER: true,
  /** The implicit (INVALID) modifier, refused by the stated policy (implicit.ts). */
  IMPLICIT_MODIFIER: true,
  /** Outside the framebuffer size limits (or the cursor size): the surface's size is the client's. */
  SIZE: false,
  /** Pitch or offset alignment, pitch below the format's minimum, more planes than allowed. */
  LAYOUT: true,
  /**
   * A plane of the buffer starts at an offset in its dma-buf, and the display is known not to
   * read plane offsets right (KmsDeviceModel.planeOffsets, probed through writeback: stock vkms
   * applies them twice). A buffer at offset 0 would do.
   */
  PLANE_OFFSET: true,
  /** A rotation or reflection the plane's `rotation` property does not offer. */
  ROTATION: false,
  /** Source and destination sizes differ (after rotation) on a plane that cannot scale. */
  SCALING: false,
  /** Off-screen, zero-sized, partly off-screen (unless clipping was asked for), source outside the buffer. */
  PLACEMENT: false,
  /** PRIME import into the KMS device failed (errno in the detail). */
  IMPORT: true,
  /** AddFB2 refused the buffer (errno in the detail; remembered per buffer). */
  ADDFB2: true,
  /** The atomic TEST_ONLY commit of the output's next state refused it (errno in the detail). */
  TEST_ONLY: true,
  /**
   * The real commit refused it after its TEST_ONLY passed (errno in the detail): the presenter
   * copies it from then on.
   */
  COMMIT: true,
  /**
   * Scenes: every plane that takes the surface is used by other surfaces of the frame (or would
   * break their stacking order): it is composed.
   */
  NO_PLANE_LEFT: false,
  /**
   * Scenes: it lies below a composed surface it overlaps; on a plane it would show above it (the
   * composite is beneath every plane), so it is composed too.
   */
  Z_ORDER: false,
  /**
   * Scenes: not opaque over another surface, and the planes that would take it do not blend
   * premultiplied alpha (their `pixel blend mode`): it is composed.
   */
  ALPHA: false,
  /** Scenes: a solid colour (wp_single_pixel_buffer_v1): no buffer to scan out, a fill in the composite. */
  SOLID_FILL: false,
  /** Scenes: a device touching the buffer is not cache-coherent: never on a plane, composed. */
  NOT_COHERENT: false,
} as const;

export type ScanoutReasonCode = keyof typeof SCANOUT_REASON_CODES;

export interface ScanoutReason {
  readonly code: ScanoutReasonCode;
  /** Re-allocating the buffer could fix this (from the code). */
  readonly fixable: boolean;
  readonly plane?: number;
  readonly format?: number;
  readonly modifier?: bigint;
  readonly detail: string;
  /** The errno name for IMPORT, ADDFB2, TEST_ONLY and COMMIT ('EINVAL'). */
  readonly errno?: string;
}

export interface Verdict {
  readonly ok: boolean;
  readonly reasons: readonly ScanoutReason[];
  /** Informative lines that are not refusals (clipping applied, implicit modifier accepted). */
  readonly notes: readonly string[];
}

/** Whether re-allocating the buffer could make a refused buffer acceptable: every reason is fixable. */
export function reallocationCouldHelp(v: Verdict): boolean {
  return !v.ok && v.reasons.every((r) => r.fixable);
}

export function reason(
  code: ScanoutReasonCode,
  detail: string,
  about: { plane?: number | undefined; format?: number | undefined; modifier?: bigint | undefined; errno?: string | undefined } = {},
): ScanoutReason {
  const r: { -readonly [K in keyof ScanoutReason]: ScanoutReason[K] } = { code, fixable: SCANOUT_REASON_CODES[code], detail };
  if (about.plane !== undefined) r.plane = about.plane;
  if (about.format !== undefined) r.format = about.format;
  if (about.modifier !== undefined) r.modifier = about.modifier;
  if (about.errno !== undefined) r.errno = about.errno;
  return Object.freeze(r);
}

export function verdict(reasons: readonly ScanoutReason[], notes: readonly string[] = []): Verdict {
  return Object.freeze({ ok: reasons.length === 0, reasons: Object.freeze([...reasons]), notes: Object.freeze([...notes]) });
}

/** JSON-able form (modifier as hex, format by name). */
export function verdictToJSON(v: Verdict): object {
  return {
    ok: v.ok,
    reallocationCouldHelp: reallocationCouldHelp(v),
    reasons: v.reasons.map((r) => ({
      code: r.code,
      fixable: r.fixable,
      ...(r.plane !== undefined ? { plane: r.plane } : {}),
      ...(r.format !== undefined ? { format: formatName(r.format) } : {}),
      ...(r.modifier !== undefined ? { modifier: `0x${r.modifier.toString(16).padStart(16, '0')}`, modifierName: modifierLabel(r.modifier) } : {}),
      ...(r.errno !== undefined ? { errno: r.errno } : {}),
      detail: r.detail,
    })),
    notes: v.notes,
  };
}

/** One line per reason: 'FORMAT (re-allocation could fix): plane 35 ...'. */
export function describeVerdict(v: Verdict): string {
  const head = v.ok ? 'ok: would scan out' : `refused (${reallocationCouldHelp(v) ? 're-allocation could fix it' : 're-allocation could not fix it'})`;
  const lines = v.reasons.map((r) => `  ${r.code} (${r.fixable ? 'fixable by re-allocation' : 'not fixable by re-allocation'}): ${r.detail}`);
  return [head, ...lines, ...v.notes.map((n) => `  note: ${n}`)].join('\n');
}
