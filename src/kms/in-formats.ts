/**
 * Decoding of the IN_FORMATS plane property blob (struct drm_format_modifier_blob,
 * include/uapi/drm/drm_mode.h): a header, the format list, and modifier entries each naming
 * the formats it applies to with a 64-bit mask over a window of the format list.
 */
import { InvalidArgumentError } from '../errors.js';

export interface FormatModifierPair {
  format: number;
  modifier: bigint;
}

const HEADER = 24;
const MOD_ENTRY = 24;

/** Decodes an IN_FORMATS blob into (format, modifier) pairs, in blob order. */
export function decodeInFormats(blob: Uint8Array): FormatModifierPair[] {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength < HEADER) throw new InvalidArgumentError(`IN_FORMATS blob too short (${blob.byteLength} bytes)`);
  const version = dv.getUint32(0, true);
  if (version !== 1) throw new InvalidArgumentError(`IN_FORMATS blob version ${version} is not 1`);
  const countFormats = dv.getUint32(8, true);
  const formatsOffset = dv.getUint32(12, true);
  const countModifiers = dv.getUint32(16, true);
  const modifiersOffset = dv.getUint32(20, true);
  if (formatsOffset + countFormats * 4 > blob.byteLength || modifiersOffset + countModifiers * MOD_ENTRY > blob.byteLength) {
    throw new InvalidArgumentError('IN_FORMATS blob: arrays extend past the blob');
  }
  const formats: number[] = [];
  for (let i = 0; i < countFormats; i++) formats.push(dv.getUint32(formatsOffset + i * 4, true));
  const out: FormatModifierPair[] = [];
  for (let m = 0; m < countModifiers; m++) {
    const base = modifiersOffset + m * MOD_ENTRY;
    const mask = dv.getBigUint64(base, true);
    const offset = dv.getUint32(base + 8, true);
    const modifier = dv.getBigUint64(base + 16, true);
    for (let bit = 0; bit < 64; bit++) {
      if ((mask >> BigInt(bit)) & 1n) {
        const idx = offset + bit;
        if (idx < formats.length) out.push({ format: formats[idx]!, modifier });
      }
    }
  }
  return out;
}

/** Encodes pairs into an IN_FORMATS blob (for tests and fixtures; the kernel's own layout). */
export function encodeInFormats(pairs: Iterable<FormatModifierPair>): Uint8Array {
  const formats = [...new Set([...pairs].map((p) => p.format))].sort((a, b) => a - b);
  const index = new Map(formats.map((f, i) => [f, i]));
  // one entry per (modifier, 64-format window)
  const entries = new Map<string, { modifier: bigint; offset: number; mask: bigint }>();
  for (const p of pairs) {
    const i = index.get(p.format)!;
    const offset = Math.floor(i / 64) * 64;
    const key = `${p.modifier}:${offset}`;
    const e = entries.get(key) ?? { modifier: p.modifier, offset, mask: 0n };
    e.mask |= 1n << BigInt(i - offset);
    entries.set(key, e);
  }
  const mods = [...entries.values()].sort((a, b) => (a.modifier < b.modifier ? -1 : a.modifier > b.modifier ? 1 : a.offset - b.offset));
  const formatsOffset = HEADER;
  const modifiersOffset = formatsOffset + Math.ceil((formats.length * 4) / 8) * 8;
  const buf = new Uint8Array(modifiersOffset + mods.length * MOD_ENTRY);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(4, 0, true);
  dv.setUint32(8, formats.length, true);
  dv.setUint32(12, formatsOffset, true);
  dv.setUint32(16, mods.length, true);
  dv.setUint32(20, modifiersOffset, true);
  formats.forEach((f, i) => dv.setUint32(formatsOffset + i * 4, f, true));
  mods.forEach((m, i) => {
    const base = modifiersOffset + i * MOD_ENTRY;
    dv.setBigUint64(base, m.mask, true);
    dv.setUint32(base + 8, m.offset, true);
    dv.setBigUint64(base + 16, m.modifier, true);
  });
  return buf;
}
