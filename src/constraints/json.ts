/**
 * Declared constraints as JSON (for `primebuf solve --declare` and config files):
 *
 *   { "device": "encoder", "usage": "video-encode",
 *     "formats": [{ "format": "NV12", "modifiers": ["LINEAR", "0x0800000000000001"] }],
 *     "modifiers": ["LINEAR"], "pitchAlign": 64, "heightAlign": 16, "contiguous": true,
 *     "coherent": false, "maxWidth": 4096, "allocateOn": "card0", "cpuAccess": "read" }
 *
 * Formats by name ('NV12') or fourcc ('NV12', 'XR24'); modifiers as hex/decimal numbers or
 * 'LINEAR' / 'INVALID'. Unknown fields are rejected, so a typo does not silently loosen a
 * constraint.
 */
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import { USAGES, type DeviceConstraint, type Usage } from './types.js';

const NUMBERS = ['plane', 'pitchAlign', 'offsetAlign', 'sizeAlign', 'widthAlign', 'heightAlign', 'minWidth', 'maxWidth', 'minHeight', 'maxHeight', 'maxPitch', 'maxPlanes'] as const;
const BOOLEANS = ['contiguous', 'coherent', 'explicitModifiers'] as const;
const STRINGS = ['device', 'usage', 'source', 'allocateOn', 'cpuAccess'] as const;
const KNOWN = new Set<string>([...NUMBERS, ...BOOLEANS, ...STRINGS, 'formats', 'modifiers']);

/** 'LINEAR', 'INVALID', '0x...' or a decimal string. */
export function parseModifierText(text: string): bigint {
  const t = text.trim();
  const u = t.toUpperCase().replace(/^DRM_FORMAT_MOD_/, '');
  if (u === 'LINEAR') return DRM_FORMAT_MOD_LINEAR;
  if (u === 'INVALID') return DRM_FORMAT_MOD_INVALID;
  if (/^(0x[0-9a-f]+|\d+)$/i.test(t)) {
    const v = BigInt(t);
    if (v < 0n || v > 0xffffffffffffffffn) throw new InvalidArgumentError(`modifier ${t} is out of range`);
    return v;
  }
  throw new InvalidArgumentError(`unknown modifier '${text}' (use LINEAR, INVALID or a hex value)`);
}

export function constraintFromJSON(doc: unknown): DeviceConstraint {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidArgumentError('a declared constraint must be a JSON object');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!KNOWN.has(k)) throw new InvalidArgumentError(`unknown constraint field '${k}'`);
  const out: Record<string, unknown> = {};
  for (const k of NUMBERS) {
    if (d[k] === undefined) continue;
    if (typeof d[k] !== 'number' || !Number.isSafeInteger(d[k]) || (d[k] as number) < 0) throw new InvalidArgumentError(`${k} must be a non-negative integer`);
    out[k] = d[k];
  }
  for (const k of BOOLEANS) {
    if (d[k] === undefined) continue;
    if (typeof d[k] !== 'boolean') throw new InvalidArgumentError(`${k} must be true or false`);
    out[k] = d[k];
  }
  for (const k of STRINGS) {
    if (d[k] === undefined) continue;
    if (typeof d[k] !== 'string') throw new InvalidArgumentError(`${k} must be a string`);
    out[k] = d[k];
  }
  if (typeof out.device !== 'string' || out.device === '') throw new InvalidArgumentError('a declared constraint needs "device"');
  if (!USAGES.includes(out.usage as Usage)) throw new InvalidArgumentError(`"usage" must be one of ${USAGES.join(', ')}`);
  if (out.cpuAccess !== undefined && !['none', 'read', 'write', 'readwrite'].includes(out.cpuAccess as string)) {
    throw new InvalidArgumentError('"cpuAccess" must be none, read, write or readwrite');
  }
  if (d.modifiers !== undefined) {
    if (!Array.isArray(d.modifiers)) throw new InvalidArgumentError('"modifiers" must be an array');
    out.modifiers = d.modifiers.map((m) => parseModifierText(String(m)));
  }
  if (d.formats !== undefined) {
    if (!Array.isArray(d.formats)) throw new InvalidArgumentError('"formats" must be an array of { format, modifiers }');
    const pairs: [number, bigint][] = [];
    for (const e of d.formats as unknown[]) {
      const entry = typeof e === 'string' ? { format: e, modifiers: ['LINEAR'] } : (e as { format?: unknown; modifiers?: unknown });
      if (typeof entry.format !== 'string' || !Array.isArray(entry.modifiers)) {
        throw new InvalidArgumentError('each "formats" entry is { "format": "NV12", "modifiers": ["LINEAR"] } or a format name (LINEAR)');
      }
      const f = fourcc(entry.format);
      for (const m of entry.modifiers) pairs.push([f, parseModifierText(String(m))]);
    }
    out.formats = FormatSet.from(pairs);
  }
  if (out.source === undefined) out.source = 'declared by the caller';
  return out as unknown as DeviceConstraint;
}
