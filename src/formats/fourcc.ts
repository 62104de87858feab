/**
 * Pixel format codes: names <-> fourcc codes, from the table generated out of the vendored
 * kernel header (native/vendor/drm_fourcc.h -> src/generated/fourcc.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { FORMATS, type HeaderFormat } from '../generated/fourcc.js';

export type { HeaderFormat } from '../generated/fourcc.js';

/** The flag bit a fourcc code carries when the format is big-endian (DRM_FORMAT_BIG_ENDIAN). */
export const DRM_FORMAT_BIG_ENDIAN = 0x80000000;
/** DRM_FORMAT_INVALID: 0, "no format". */
export const DRM_FORMAT_INVALID = 0;

const byCode = new Map<number, HeaderFormat>();
const byName = new Map<string, number>();
for (const f of FORMATS) {
  byCode.set(f.code, f);
  byName.set(f.name, f.code);
}

/** Every DRM_FORMAT_* code of the vendored header, in header order (DRM_FORMAT_INVALID first). */
export function headerFormats(): readonly HeaderFormat[] {
  return FORMATS;
}

/** Checks that `code` is a u32 and returns it. */
export function checkFormatCode(code: number, what = 'format'): number {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new InvalidArgumentError(`${what} must be a 32-bit unsigned integer fourcc code, got ${String(code)}`);
  }
  return code;
}

/** The code built from four characters, as the kernel's fourcc_code(a, b, c, d) macro does. */
export function fourccCode(chars: string): number {
  if (chars.length < 1 || chars.length > 4 || !/^[\x20-\x7e]+$/.test(chars)) {
    throw new InvalidArgumentError(`a fourcc is 1 to 4 printable ASCII characters, got ${JSON.stringify(chars)}`);
  }
  const s = chars.padEnd(4, ' ');
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

/** Whether the vendored header defines this code (the big-endian flag aside). */
export function isHeaderFormat(code: number): boolean {
  return byCode.has((checkFormatCode(code) & ~DRM_FORMAT_BIG_ENDIAN) >>> 0);
}

/**
 * The format's name as in the header without the DRM_FORMAT_ prefix ('XRGB8888'), with '_BE'
 * appended when the big-endian flag is set; '0x%08x' for codes the header does not define.
 */
export function formatName(code: number): string {
  checkFormatCode(code);
  const base = (code & ~DRM_FORMAT_BIG_ENDIAN) >>> 0;
  const f = byCode.get(base);
  if (!f || (base === DRM_FORMAT_INVALID && base !== code)) return `0x${code.toString(16).padStart(8, '0')}`;
  return base === code ? f.name : `${f.name}_BE`;
}

/**
 * The four characters of the code ('XR24'), trailing spaces trimmed, '_BE' appended for the
 * big-endian flag and 'INVALID' for 0: the same string libdrm's drmGetFormatName() returns.
 * Unlike libdrm, bytes that are not printable ASCII are written as \xNN.
 */
export function fourccString(code: number): string {
  checkFormatCode(code);
  const be = code & DRM_FORMAT_BIG_ENDIAN ? '_BE' : '';
  const base = (code & ~DRM_FORMAT_BIG_ENDIAN) >>> 0;
  if (base === DRM_FORMAT_INVALID) return 'INVALID';
  const bytes = [0, 8, 16, 24].map((s) => (base >>> s) & 0xff);
  // libdrm trims spaces from the end, but never the first character
  let n = 4;
  while (n > 1 && bytes[n - 1] === 0x20) n--;
  const chars = bytes
    .slice(0, n)
    .map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0 ? '' : `\\x${b.toString(16).padStart(2, '0')}`));
  // libdrm's C string ends at the first NUL byte
  const nul = bytes.slice(0, n).indexOf(0);
  return (nul >= 0 ? chars.slice(0, nul) : chars).join('') + be;
}

/**
 * The code of a format given by name: 'XRGB8888', 'DRM_FORMAT_XRGB8888', the fourcc 'XR24'
 * (trailing spaces optional: 'R8'), either with '_BE' for the big-endian variant, or a number
 * written in hex ('0x34325258'). Throws InvalidArgumentError for anything the header does not
 * define.
 */
export function fourcc(name: string): number {
  if (typeof name !== 'string') throw new InvalidArgumentError(`format name must be a string, got ${typeof name}`);
  let s = name.trim();
  if (/^0x[0-9a-f]{1,8}$/i.test(s)) {
    const code = Number.parseInt(s.slice(2), 16);
    if (!isHeaderFormat(code)) throw new InvalidArgumentError(`unknown format code ${s}`);
    return code;
  }
  let be = 0;
  if (s.endsWith('_BE')) {
    be = DRM_FORMAT_BIG_ENDIAN;
    s = s.slice(0, -3);
  }
  if (s.startsWith('DRM_FORMAT_')) s = s.slice('DRM_FORMAT_'.length);
  let code = byName.get(s) ?? byName.get(s.toUpperCase());
  if (code === undefined && s.length >= 1 && s.length <= 4 && /^[\x20-\x7e]+$/.test(s)) {
    const c = fourccCode(s);
    if (byCode.has(c)) code = c;
  }
  if (code === undefined || (be && code === DRM_FORMAT_INVALID)) {
    throw new InvalidArgumentError(`unknown pixel format ${JSON.stringify(name)}`);
  }
  return (code | be) >>> 0;
}
