/** Raw native surface of native/compose.cc (software composition with pixman). */
import type { RawCopyRect, RawCopySurface } from './copy.js';

/** [r, g, b, a]: 8-bit integers, premultiplied (no channel above alpha). */
export type RawColor = [number, number, number, number];

/** A rectangle of integers; x, y may be negative (a layer partly off the target). */
export type RawComposeRect = RawCopyRect;

export interface RawSolidLayer {
  color: RawColor;
  dst: RawComposeRect;
}

export interface RawImageLayer {
  source: RawCopySurface;
  /** in source pixels, fractional allowed (default the whole source) */
  src?: { x: number; y: number; width: number; height: number };
  dst: RawComposeRect;
  /** DRM_MODE_ROTATE_* | DRM_MODE_REFLECT_* (default ROTATE_0) */
  rotation?: number;
  /** alpha read as 1 */
  opaque?: boolean;
  /** read the source only through a copy under the SIGBUS guard (a wl_shm pool that may shrink) */
  guarded?: boolean;
  /** YUYV and NV12 sources: RawCopyJob's yuv */
  yuv?: Int32Array;
}

export interface RawComposeJob {
  /** written, never read; XRGB8888, ARGB8888 or another RGB format pixman writes (rows 4-byte aligned) */
  target: RawCopySurface;
  /** bottom to top */
  layers: (RawSolidLayer | RawImageLayer)[];
  /** target pixels written (their union, clipped to the target) */
  clip: RawComposeRect[];
  /** default [0, 0, 0, 255] */
  background?: RawColor;
}

export interface ComposeNative {
  /**
   * Blends the layers (premultiplied OVER) onto the background inside `clip`, on libuv's thread
   * pool, and resolves with the bytes of the target written. Throws RangeError/TypeError
   * synchronously for a job that does not fit its memory. A guarded layer whose memory faults
   * rejects with SystemError code 'EFAULT', syscall 'SIGBUS', `layer` its index.
   */
  composeLayers(job: RawComposeJob): Promise<number>;
  /** the linked pixman's version ("0.42.2") */
  pixmanVersion: string;
}
