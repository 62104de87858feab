/**
 * Render-node constraints from EGL's dma-buf import queries (policy over native/egl.cc).
 *
 * `eglQueryDmaBufFormatsEXT`/`eglQueryDmaBufModifiersEXT` say which format/modifier pairs the
 * GPU behind a DRM node imports. From them:
 * - every pair the driver lists becomes a pair of the constraint's FormatSet;
 * - a pair EGL marks external_only can be imported only as GL_TEXTURE_EXTERNAL_OES: usable for
 *   sampling ('texture'), not as a render target. It stays in a 'texture' constraint and is
 *   recorded in `externalOnly`; a 'render' constraint leaves it out;
 * - a format listed with no modifier at all is importable only with the implicit modifier
 *   (EXT_image_dma_buf_import_modifiers: "num_modifiers 0 ... only implicit"). The model records
 *   it as LINEAR, as for KMS planes without IN_FORMATS (import-drm-info.ts): the implicit layout
 *   of a dma-buf shared across devices is LINEAR. The source says so.
 * When libEGL is absent or cannot answer for the node, the declared description
 * (renderNodeConstraint) is used and the constraint's source says why.
 */
import { basename } from 'node:path';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet } from '../formats/index.js';
import { EglError, NativeUnavailableError, PrimebufError, SystemError } from '../errors.js';
import type { EglDmabufFormatsRaw } from '../native/egl.js';
import { renderNodeConstraint } from './device.js';
import type { DeviceConstraint, Usage } from './types.js';

export type { EglDmabufFormatsRaw } from '../native/egl.js';

/** The query, injectable (tests, recorded results). */
export type EglQuery = (path: string) => EglDmabufFormatsRaw;

interface RawEglError {
  code?: unknown;
  eglError?: unknown;
  message?: unknown;
}

/**
 * Runs EGL's dma-buf import queries on the DRM node at `path`. Throws NativeUnavailableError
 * when libEGL is absent, EglError when EGL cannot answer for the node, SystemError when the node
 * cannot be opened.
 */
export async function queryEglDmabufFormats(path: string): Promise<EglDmabufFormatsRaw> {
  const { native } = await import('../native.js');
  try {
    return native.eglQueryDmaBufFormats(path);
  } catch (err) {
    if (err instanceof SystemError) throw err;
    const e = err as RawEglError;
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (e.code === 'EGL_UNAVAILABLE') throw new NativeUnavailableError(message);
    if (typeof e.code === 'string' && e.code.startsWith('EGL_')) {
      throw new EglError(message, e.code, path, typeof e.eglError === 'number' ? e.eglError : undefined);
    }
    throw err;
  }
}

/** The query's pairs as FormatSets. */
export interface EglFormatSets {
  /** Every importable pair (implicit-only formats as LINEAR). */
  readonly all: FormatSet;
  /** Pairs that are importable as GL_TEXTURE_EXTERNAL_OES only (sampling, no rendering). */
  readonly externalOnly: FormatSet;
  /** Formats listed with no explicit modifier (implicit modifier only). */
  readonly implicitOnly: readonly number[];
}

export function eglFormatSets(raw: EglDmabufFormatsRaw): EglFormatSets {
  const all: Array<[number, bigint]> = [];
  const ext: Array<[number, bigint]> = [];
  const implicitOnly: number[] = [];
  for (const f of raw.formats) {
    if (f.modifiers.length === 0) {
      implicitOnly.push(f.format);
      all.push([f.format, DRM_FORMAT_MOD_LINEAR]);
      continue;
    }
    for (const m of f.modifiers) {
      // DRM_FORMAT_MOD_INVALID in the list means "implicit": LINEAR, as above.
      const mod = m.modifier === DRM_FORMAT_MOD_INVALID ? DRM_FORMAT_MOD_LINEAR : m.modifier;
      all.push([f.format, mod]);
      if (m.externalOnly) ext.push([f.format, mod]);
    }
  }
  return { all: FormatSet.from(all), externalOnly: FormatSet.from(ext), implicitOnly };
}

function describeRaw(raw: EglDmabufFormatsRaw): string {
  const who = [raw.driver, raw.vendor].filter((s): s is string => typeof s === 'string' && s.length > 0).join(', ');
  return `EGL dma-buf import query (${who || 'unknown driver'}, ${raw.platform} platform)`;
}

/**
 * The constraint of a render node for 'texture' or 'render' from an EGL query result.
 * `declared` fields (alignment, limits the query does not give) are kept, EGL's formats win.
 */
export function eglRenderNodeConstraint(
  name: string,
  raw: EglDmabufFormatsRaw,
  usage: Extract<Usage, 'texture' | 'render'> = 'texture',
  declared: Partial<DeviceConstraint> = {},
): DeviceConstraint {
  const sets = eglFormatSets(raw);
  const formats = usage === 'render' ? sets.all.subtract(sets.externalOnly) : sets.all;
  const notes: string[] = [`${formats.size} pairs over ${formats.formats().length} formats`];
  if (sets.externalOnly.size > 0) {
    notes.push(usage === 'render' ? `${sets.externalOnly.size} external-only pairs left out (not renderable)` : `${sets.externalOnly.size} external-only pairs (sampling only)`);
  }
  if (sets.implicitOnly.length > 0) notes.push(`${sets.implicitOnly.length} formats with the implicit modifier only, recorded as LINEAR`);
  const c: { -readonly [K in keyof DeviceConstraint]: DeviceConstraint[K] } = {
    ...declared,
    device: name,
    usage,
    formats,
    source: `${describeRaw(raw)}: ${notes.join('; ')}`,
  };
  delete c.modifiers;
  if (usage === 'texture' && sets.externalOnly.size > 0) c.externalOnly = sets.externalOnly;
  return c;
}

export interface RenderNodeOptions {
  readonly usage?: Extract<Usage, 'texture' | 'render'>;
  /** The node's path (default /dev/dri/<name>). */
  readonly path?: string;
  /** Fields the query cannot give (alignment, limits), and the fallback's formats. */
  readonly declared?: Partial<DeviceConstraint>;
  /** The query to use (default: the addon's, through queryEglDmabufFormats). */
  readonly query?: EglQuery;
}

export interface RenderNodeResult {
  readonly constraint: DeviceConstraint;
  /** 'egl' when derived from the query, 'declared' when the description was the fallback. */
  readonly from: 'egl' | 'declared';
  /** The query's result, when it answered. */
  readonly egl?: EglDmabufFormatsRaw;
  /** Why the query did not answer (the error), when it did not. */
  readonly fallbackReason?: string;
}

/**
 * A live render node's constraint: EGL's import query where it answers, else the declared
 * description (renderNodeConstraint) with the reason in `source`.
 */
export async function liveRenderNodeConstraint(name: string, driver: string, opts: RenderNodeOptions = {}): Promise<RenderNodeResult> {
  const usage = opts.usage ?? 'texture';
  const path = opts.path ?? `/dev/dri/${name}`;
  let raw: EglDmabufFormatsRaw;
  try {
    raw = opts.query ? opts.query(path) : await queryEglDmabufFormats(path);
  } catch (err) {
    if (!(err instanceof PrimebufError) && !isRawEglError(err)) throw err;
    const why = err instanceof EglError || isRawEglError(err) ? `${(err as { code: string }).code}: ${(err as Error).message}` : (err as Error).message;
    const base = renderNodeConstraint(name, driver, usage, opts.declared);
    return { constraint: { ...base, source: `${base.source}; EGL query of ${basename(path)} failed (${why})` }, from: 'declared', fallbackReason: why };
  }
  const c = eglRenderNodeConstraint(name, raw, usage, opts.declared);
  // Name the node and its kernel driver too: EGL may answer through another driver (Mesa falls
  // back to kms_swrast for vgem), and a reader of the merged constraints needs to see both.
  return { constraint: { ...c, source: `${c.source}; node ${basename(path)} (kernel driver ${driver})` }, from: 'egl', egl: raw };
}

function isRawEglError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as RawEglError).code === 'string' && ((err as { code: string }).code).startsWith('EGL_');
}
