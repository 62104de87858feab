/**
 * Importer for recorded KMS device descriptions in the "normalized drm_info" schema used by
 * /work/shared/devices (and copied into test/fixtures/devices/): one JSON object per device,
 * normalized from a published `drm_info` or `modetest` dump, with its `source` address.
 *
 * Schema (the fields this importer reads; everything else is kept only as attribution):
 *   source               URL of the dump the values were copied from (kept as attribution)
 *   driver               kernel driver name ('i915', 'msm', 'spacemit', 'hibmc')
 *   node                 '/dev/dri/card0' (the device name defaults to its basename)
 *   caps                 { DRM_CAP_PRIME: n, DRM_CAP_DUMB_BUFFER: n, DRM_CAP_ADDFB2_MODIFIERS: n,
 *                          DRM_CAP_CURSOR_WIDTH: n, DRM_CAP_CURSOR_HEIGHT: n, ... } (may be {})
 *   framebuffer_size     { width: '[min, max]', height: '[min, max]' } (optional)
 *   planes[]             { id, type: 'primary'|'overlay'|'cursor',
 *                          possible_crtcs: [crtc index...] | possible_crtcs_mask: '0x...',
 *                          in_formats: [{ modifier: '0x...', formats: ['XRGB8888', ...] }]  (IN_FORMATS)
 *                          | formats_without_modifiers: ['XRGB8888', ...] }                  (no IN_FORMATS)
 *   notes                annotations (kept as attribution)
 *
 * Mapping to the model:
 *   - IN_FORMATS entries -> (format, modifier) pairs. An entry with an empty format list (the
 *     msm DPU's QCOM_COMPRESSED) contributes no pair and is kept in `emptyModifiers`.
 *   - A plane without IN_FORMATS (a driver without DRM_CAP_ADDFB2_MODIFIERS) -> (format, LINEAR)
 *     for each listed format with `inFormats: false`: the kernel assumes LINEAR for planes whose
 *     driver gives no modifier list, and such a framebuffer is added without the modifiers flag.
 *   - DRM_CAP_PRIME bit 0 (DRM_PRIME_CAP_IMPORT) absent -> the device cannot import: scanout
 *     buffers must be allocated on it. A dump without caps (modetest) leaves PRIME unknown.
 *   - framebuffer_size -> min/max width and height; cursor caps -> cursor plane limits.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import type { KmsDeviceDescription, PlaneDescription, PlaneType } from './device.js';

export interface ImportedDevice {
  readonly description: KmsDeviceDescription;
  /** Format names the dump lists that primebuf does not know (not silently dropped: listed). */
  readonly unknownFormats: readonly string[];
  /** The dump's address and the annotations of whoever normalized it. */
  readonly attribution: { readonly source?: string; readonly notes: readonly string[] };
}

export interface ImportOptions {
  /** The device name to use (default: basename of `node`, else the driver name). */
  readonly name?: string;
  /** Declared facts the dump cannot carry. */
  readonly coherent?: boolean;
  readonly contiguous?: boolean;
}

type Json = Record<string, unknown>;

function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return undefined;
}

function range(v: unknown): [number, number] | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^\[\s*(\d+)\s*,\s*(\d+)\s*\]$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function planeType(v: unknown, id: number): PlaneType {
  const t = String(v).toLowerCase();
  if (t === 'primary' || t === 'overlay' || t === 'cursor') return t;
  throw new InvalidArgumentError(`plane ${id}: unknown plane type ${JSON.stringify(v)}`);
}

function crtcs(p: Json): number[] {
  if (Array.isArray(p.possible_crtcs)) return p.possible_crtcs.map(Number);
  if (typeof p.possible_crtcs_mask === 'string') {
    const mask = Number.parseInt(p.possible_crtcs_mask, 16);
    const out: number[] = [];
    for (let i = 0; i < 32; i++) if (mask & (1 << i)) out.push(i);
    return out;
  }
  return [];
}

/** Imports one parsed JSON document. */
export function importDrmInfo(doc: unknown, opts: ImportOptions = {}): ImportedDevice {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Json).planes)) {
    throw new InvalidArgumentError('not a normalized drm_info device description (no planes[])');
  }
  const d = doc as Json;
  const caps = (typeof d.caps === 'object' && d.caps !== null ? d.caps : {}) as Json;
  const driver = typeof d.driver === 'string' ? d.driver : 'unknown';
  const name = opts.name ?? (typeof d.node === 'string' ? basename(d.node) : driver);
  const unknown = new Set<string>();
  const code = (n: string): number | undefined => {
    try {
      return fourcc(n);
    } catch {
      unknown.add(n);
      return undefined;
    }
  };
  const planes: PlaneDescription[] = [];
  for (const raw of d.planes as Json[]) {
    const id = Number(raw.id);
    const pairs: [number, bigint][] = [];
    const empty: bigint[] = [];
    const inFormats = Array.isArray(raw.in_formats);
    if (inFormats) {
      for (const e of raw.in_formats as Json[]) {
        const mod = BigInt(String(e.modifier));
        const fmts = Array.isArray(e.formats) ? (e.formats as string[]) : [];
        if (fmts.length === 0) empty.push(mod);
        for (const n of fmts) {
          const f = code(n);
          if (f !== undefined) pairs.push([f, mod]);
        }
      }
    } else if (Array.isArray(raw.formats_without_modifiers)) {
      for (const n of raw.formats_without_modifiers as string[]) {
        const f = code(n);
        if (f !== undefined) pairs.push([f, DRM_FORMAT_MOD_LINEAR]);
      }
    }
    planes.push({ id, type: planeType(raw.type, id), possibleCrtcs: crtcs(raw), formats: FormatSet.from(pairs), inFormats, emptyModifiers: empty });
  }
  const description: { -readonly [K in keyof KmsDeviceDescription]: KmsDeviceDescription[K] } = { name, driver, planes };
  if (typeof d.source === 'string') description.source = d.source;
  const prime = num(caps.DRM_CAP_PRIME);
  if (prime !== undefined) description.prime = { import: (prime & 1) !== 0, export: (prime & 2) !== 0 };
  const dumb = num(caps.DRM_CAP_DUMB_BUFFER);
  if (dumb !== undefined) description.dumbBuffer = dumb !== 0;
  const mods = num(caps.DRM_CAP_ADDFB2_MODIFIERS);
  if (mods !== undefined) description.addfb2Modifiers = mods !== 0;
  const cw = num(caps.DRM_CAP_CURSOR_WIDTH);
  const ch = num(caps.DRM_CAP_CURSOR_HEIGHT);
  if (cw !== undefined) description.cursorWidth = cw;
  if (ch !== undefined) description.cursorHeight = ch;
  const fb = (typeof d.framebuffer_size === 'object' && d.framebuffer_size !== null ? d.framebuffer_size : undefined) as Json | undefined;
  const w = range(fb?.width);
  const h = range(fb?.height);
  if (w && h) description.fbSize = { minWidth: w[0], maxWidth: w[1], minHeight: h[0], maxHeight: h[1] };
  if (opts.coherent !== undefined) description.coherent = opts.coherent;
  if (opts.contiguous !== undefined) description.contiguous = opts.contiguous;
  const notes = Array.isArray(d.notes) ? (d.notes as unknown[]).map(String) : [];
  const attribution = typeof d.source === 'string' ? { source: d.source, notes } : { notes };
  return { description, unknownFormats: [...unknown].sort(), attribution };
}

/** Reads and imports one file. */
export function importDrmInfoFile(path: string, opts: ImportOptions = {}): ImportedDevice {
  return importDrmInfo(JSON.parse(readFileSync(path, 'utf8')), opts);
}
