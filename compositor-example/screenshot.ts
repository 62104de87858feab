/**
 * Screenshots: a writeback capture (XRGB8888 or ARGB8888 pixels, little-endian 0xAARRGGBB words,
 * `stride` bytes per row) encoded as a PNG with pngjs. XRGB8888 becomes an RGB PNG (the X byte
 * is not alpha), ARGB8888 an RGBA one.
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { fourcc, fourccString } from 'primebuf';

/** Pixels as a writeback capture gives them (Kiosk.capture()). */
export interface PixelCapture {
  readonly width: number;
  readonly height: number;
  /** DRM fourcc code, or its name ('XRGB8888') */
  readonly format: number | string;
  /** bytes per row */
  readonly stride: number;
  readonly pixels: Uint8Array;
}

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');

function formatCode(format: number | string): number {
  if (typeof format === 'number') return format;
  if (format === 'XRGB8888' || format === 'XR24') return XR24;
  if (format === 'ARGB8888' || format === 'AR24') return AR24;
  throw new RangeError(`screenshot: format ${format} is not XRGB8888 or ARGB8888`);
}

/** Checks `c` and returns whether it carries alpha. */
function check(c: PixelCapture): boolean {
  const code = formatCode(c.format);
  if (code !== XR24 && code !== AR24) throw new RangeError(`screenshot: format ${fourccString(code)} is not XRGB8888 or ARGB8888`);
  if (!Number.isInteger(c.width) || !Number.isInteger(c.height) || c.width < 1 || c.height < 1) {
    throw new RangeError(`screenshot: size ${c.width}x${c.height}`);
  }
  if (!Number.isInteger(c.stride) || c.stride < c.width * 4) throw new RangeError(`screenshot: stride ${c.stride} < ${c.width * 4} bytes of a row`);
  const need = c.stride * (c.height - 1) + c.width * 4;
  if (c.pixels.byteLength < need) throw new RangeError(`screenshot: ${c.pixels.byteLength} bytes of pixels, ${need} needed for ${c.width}x${c.height} at stride ${c.stride}`);
  return code === AR24;
}

/** Encodes a capture as PNG bytes (RGB for XRGB8888, RGBA for ARGB8888). */
export function captureToPng(c: PixelCapture): Buffer {
  const alpha = check(c);
  const png = new PNG({ width: c.width, height: c.height });
  const out = png.data;
  const src = c.pixels;
  for (let y = 0; y < c.height; y++) {
    let s = y * c.stride;
    let d = y * c.width * 4;
    for (let x = 0; x < c.width; x++, s += 4, d += 4) {
      // memory order of a little-endian 0xAARRGGBB word: B, G, R, A
      out[d] = src[s + 2]!;
      out[d + 1] = src[s + 1]!;
      out[d + 2] = src[s]!;
      out[d + 3] = alpha ? src[s + 3]! : 0xff;
    }
  }
  return PNG.sync.write(png, { colorType: alpha ? 6 : 2 });
}

/** Writes `c` as a PNG file at `path`; returns the number of bytes written. */
export function writeScreenshot(path: string, c: PixelCapture): number {
  const bytes = captureToPng(c);
  writeFileSync(path, bytes);
  return bytes.byteLength;
}
