/**
 * The default cursor: an arrow, at the centre of the output until the pointer moves it
 * (moveTo: only its destination changes, its buffer and damage stay; a client's
 * wl_pointer.set_cursor surface replaces it in the kiosk's scene while that client has the
 * pointer focus), in an ARGB8888 buffer the kiosk owns, as a scene
 * surface marked `cursor: true` (the presenter tries the cursor plane for it first). Hidden with
 * `--hide-cursor` (KioskOptions.hideCursor): then nothing is allocated and there is no surface.
 *
 * The buffer is a KMS dumb buffer on the display device (primebuf/alloc's DumbBuffer: linear,
 * CPU-mapped once to draw the arrow, unmapped), of the device's cursor size (DRM_CAP_CURSOR_WIDTH
 * and _HEIGHT: some drivers take nothing else on their cursor plane; 64x64 when the device does
 * not say, at most 256x256), the arrow in its top-left corner and the rest transparent. Its
 * dma-buf (PRIME export) is what the scene names, with the dumb buffer's own GEM handle as the
 * import (no second import of it). KioskCursor owns both; close() releases them, once.
 */
import { fourcc, type Device, type ScanoutBuffer } from 'primebuf';
import { DumbBuffer } from 'primebuf/alloc';
import type { SceneSurface } from 'primebuf/scanout';

const ARGB8888 = fourcc('ARGB8888');
const DRM_FORMAT_MOD_LINEAR = 0n;

/** An ARGB8888 image (premultiplied alpha, 0xAARRGGBB per pixel, rows of `width`). */
export interface CursorImage {
  readonly width: number;
  readonly height: number;
  /** The pixel that points: placed on the pointer's position. */
  readonly hotspotX: number;
  readonly hotspotY: number;
  readonly pixels: Uint32Array;
}

/**
 * The arrow, drawn for this kiosk: 'B' black outline, 'W' white, '.' transparent. Its tip, the
 * hotspot, is the top-left pixel.
 */
const ARROW = [
  'B...........',
  'BB..........',
  'BWB.........',
  'BWWB........',
  'BWWWB.......',
  'BWWWWB......',
  'BWWWWWB.....',
  'BWWWWWWB....',
  'BWWWWWWWB...',
  'BWWWWWWWWB..',
  'BWWWWWWWWWB.',
  'BWWWWWWBBBBB',
  'BWWWBWWB....',
  'BWWB.BWWB...',
  'BWB..BWWB...',
  'BB....BWWB..',
  'B.....BWWB..',
  '.......BWWB.',
  '.......BBB..',
];
const BLACK = 0xff000000;
const WHITE = 0xffffffff;

/** The size of the arrow itself. */
export const ARROW_SIZE = { width: ARROW[0]!.length, height: ARROW.length } as const;

/** The default cursor image in a `width` x `height` image (at least the arrow's size), hotspot at its tip. */
export function defaultCursorImage(width = 24, height = 24): CursorImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= ARROW_SIZE.width && height >= ARROW_SIZE.height)) {
    throw new RangeError(`a cursor image is at least ${ARROW_SIZE.width}x${ARROW_SIZE.height} (got ${width}x${height})`);
  }
  const pixels = new Uint32Array(width * height);
  ARROW.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      const c = row[x];
      if (c === 'B') pixels[y * width + x] = BLACK;
      else if (c === 'W') pixels[y * width + x] = WHITE;
    }
  });
  return { width, height, hotspotX: 0, hotspotY: 0, pixels };
}

/** Writes `image` into `dst`, rows `pitch` bytes apart, little-endian ARGB8888 (DRM's byte order). */
export function writeCursorImage(image: CursorImage, dst: Uint8Array, pitch: number): void {
  if (pitch < image.width * 4 || dst.length < pitch * (image.height - 1) + image.width * 4) {
    throw new RangeError(`a ${image.width}x${image.height} image does not fit ${dst.length} bytes with pitch ${pitch}`);
  }
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) view.setUint32(y * pitch + x * 4, image.pixels[y * image.width + x]!, true);
  }
}

/** A cursor buffer and what releases it. */
export interface OwnedCursorBuffer {
  readonly buffer: ScanoutBuffer;
  close(): void;
}

/** Makes a buffer holding `image` (the default: a dumb buffer on the display device, dumbCursorBuffer). */
export type CursorAllocator = (image: CursorImage) => OwnedCursorBuffer;

/** `image` in a dumb buffer on `device`, PRIME-exported; close() closes the dma-buf and the dumb buffer. */
export function dumbCursorBuffer(device: Device): CursorAllocator {
  return (image) => {
    const dumb = DumbBuffer.create(device, { width: image.width, height: image.height, bpp: 32 });
    try {
      const map = dumb.map();
      try {
        writeCursorImage(image, map.bytes(), dumb.pitch);
      } finally {
        map.close();
      }
      const dmabuf = dumb.exportDmabuf(false);
      let closed = false;
      return {
        buffer: {
          kind: 'dmabuf',
          width: image.width,
          height: image.height,
          format: ARGB8888,
          modifier: DRM_FORMAT_MOD_LINEAR,
          planes: [{ fd: dmabuf.fd, offset: 0, stride: dumb.pitch }],
          name: `the kiosk's cursor (dumb buffer ${image.width}x${image.height})`,
          // the dumb buffer's own handle on the display device: a framebuffer is made from it,
          // never from a second import; it is closed with the dumb buffer, not by this record
          imported: { handles: [dumb.handle.handle], gemHandles: [dumb.handle], device, close: () => undefined },
        },
        close: () => {
          if (closed) return;
          closed = true;
          dmabuf.close();
          dumb.close();
        },
      };
    } catch (err) {
      dumb.close();
      throw err;
    }
  };
}

export interface KioskCursorOptions {
  /** --hide-cursor: no cursor, nothing allocated. */
  readonly hidden?: boolean;
  /** The device's cursor size (KmsResources.cursorWidth/cursorHeight; null: not told). */
  readonly cursorWidth?: number | null;
  readonly cursorHeight?: number | null;
  /** The mode (CRTC) size: the cursor's hotspot goes to its centre. */
  readonly mode: { readonly width: number; readonly height: number };
  /** The output transform (degrees counter-clockwise): the arrow is turned with it, to look upright. */
  readonly rotation?: 0 | 90 | 180 | 270;
  /** Makes the buffer (KioskCursor.forDevice passes dumbCursorBuffer of the display device). */
  readonly allocate: CursorAllocator;
}

/** The side of a cursor buffer: the device's cursor size, 64 when not told, at most 256. */
export function cursorBufferSize(w: number | null | undefined, h: number | null | undefined): { width: number; height: number } {
  const side = (v: number | null | undefined): number => Math.min(256, Math.max(v && v > 0 ? v : 64, Math.max(ARROW_SIZE.width, ARROW_SIZE.height)));
  return { width: side(w), height: side(h) };
}

/** Where pixel (x, y) of a `w` x `h` buffer lands after a counter-clockwise rotation (in the rotated rectangle). */
function rotatePoint(x: number, y: number, w: number, h: number, rot: 0 | 90 | 180 | 270): { x: number; y: number } {
  switch (rot) {
    case 90:
      return { x: y, y: w - 1 - x };
    case 180:
      return { x: w - 1 - x, y: h - 1 - y };
    case 270:
      return { x: h - 1 - y, y: x };
    default:
      return { x, y };
  }
}

/** The kiosk's default cursor: its buffer (owned) and its scene surface. */
export class KioskCursor {
  readonly image: CursorImage | undefined;
  #owned: OwnedCursorBuffer | undefined;
  #surface: SceneSurface | undefined;
  #presented = false;
  #closed = false;

  /** The cursor of the kiosk's output on `device` (a dumb buffer of the device's cursor size). */
  static forDevice(device: Device, opts: Omit<KioskCursorOptions, 'allocate'>): KioskCursor {
    return new KioskCursor({ ...opts, allocate: dumbCursorBuffer(device) });
  }

  constructor(opts: KioskCursorOptions) {
    if (opts.hidden) return;
    const { width, height } = cursorBufferSize(opts.cursorWidth, opts.cursorHeight);
    const image = (this.image = defaultCursorImage(width, height));
    const owned = (this.#owned = opts.allocate(image));
    const rot = opts.rotation ?? 0;
    const swap = rot === 90 || rot === 270;
    const dw = swap ? height : width;
    const dh = swap ? width : height;
    const hot = rotatePoint(image.hotspotX, image.hotspotY, width, height, rot);
    this.#surface = {
      id: 'kiosk-cursor',
      content: owned.buffer,
      src: { x: 0, y: 0, width, height },
      dst: { x: Math.floor(opts.mode.width / 2) - hot.x, y: Math.floor(opts.mode.height / 2) - hot.y, width: dw, height: dh },
      rotation: rot,
      opaque: false,
      cursor: true,
    };
  }

  /** The hotspot's position on the CRTC (undefined when hidden). */
  get position(): { x: number; y: number } | undefined {
    const s = this.#surface;
    if (!s || !this.image) return undefined;
    const rot = (s.rotation ?? 0) as 0 | 90 | 180 | 270;
    const hot = rotatePoint(this.image.hotspotX, this.image.hotspotY, this.image.width, this.image.height, rot);
    return { x: s.dst.x + hot.x, y: s.dst.y + hot.y };
  }

  /** Puts the hotspot on the CRTC point (x, y) (rounded down to a pixel); nothing else changes. */
  moveTo(x: number, y: number): void {
    const s = this.#surface;
    const pos = this.position;
    if (!s || !pos) return;
    const dx = Math.floor(x) - pos.x;
    const dy = Math.floor(y) - pos.y;
    if (dx === 0 && dy === 0) return;
    this.#surface = { ...s, dst: { ...s.dst, x: s.dst.x + dx, y: s.dst.y + dy } };
  }

  /**
   * The cursor as a scene surface, on top of the scene (undefined: hidden, or closed). Its damage
   * is everything until `presented()` was called, none after: the image never changes.
   */
  sceneSurface(): SceneSurface | undefined {
    if (this.#closed || !this.#surface) return undefined;
    return this.#presented ? { ...this.#surface, damage: [] } : this.#surface;
  }

  /** A frame showing the cursor was presented: its content is on screen. */
  presented(): void {
    this.#presented = true;
  }

  /** Releases the buffer (after the presenter let go of it); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owned?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
