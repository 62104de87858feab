/**
 * Where a buffer goes on an output: the CRTC, the source rectangle in the buffer, the
 * destination rectangle on the CRTC, rotation and reflection. `resolvePlacement` checks it
 * against the buffer, the mode and the plane, and returns reasons (never throws for a bad
 * placement): off-screen, zero-sized, a source outside the buffer, partly off-screen (clipped
 * when asked for, refused otherwise), scaling a plane cannot do, a rotation it does not offer.
 */
import { reason, type ScanoutReason } from './reasons.js';
import { REFLECT_X, REFLECT_Y, ROTATE_0, ROTATE_180, ROTATE_270, ROTATE_90, rotationName, type ScanoutPlaneInfo } from './verdict-device.js';

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Placement {
  /** The CRTC id. */
  readonly crtc: number;
  /** In buffer pixels; default the whole buffer. */
  readonly src?: Rect;
  /** On the CRTC; default at (0, 0) with the source's size after rotation. */
  readonly dst?: Rect;
  /** Degrees counter-clockwise, as DRM_MODE_ROTATE_* (default 0). */
  readonly rotation?: 0 | 90 | 180 | 270;
  readonly reflectX?: boolean;
  readonly reflectY?: boolean;
  /**
   * A destination partly outside the mode: clip source and destination to the mode (true), or
   * refuse with PLACEMENT (default: the caller decides what the user sees, not the verdict).
   */
  readonly clip?: boolean;
}

/** A placement with every default filled in and clipping applied. */
export interface ResolvedPlacement {
  readonly crtc: number;
  readonly src: Rect;
  readonly dst: Rect;
  /** The `rotation` property's value (DRM_MODE_ROTATE_* | DRM_MODE_REFLECT_*). */
  readonly rotation: number;
  readonly clipped: boolean;
}

export interface ModeSize {
  readonly width: number;
  readonly height: number;
}

const ROT_BITS = { 0: ROTATE_0, 90: ROTATE_90, 180: ROTATE_180, 270: ROTATE_270 } as const;

export function rotationBits(p: Pick<Placement, 'rotation' | 'reflectX' | 'reflectY'>): number {
  return ROT_BITS[p.rotation ?? 0] | (p.reflectX ? REFLECT_X : 0) | (p.reflectY ? REFLECT_Y : 0);
}

function swaps(rotation: number): boolean {
  return (rotation & (ROTATE_90 | ROTATE_270)) !== 0;
}

function fmt(r: Rect): string {
  return `${r.width}x${r.height}+${r.x}+${r.y}`;
}

/** The cache key of a placement (with the mode it is resolved against). */
export function placementKey(p: Placement, mode: ModeSize): string {
  const s = p.src ? fmt(p.src) : '-';
  const d = p.dst ? fmt(p.dst) : '-';
  return `${p.crtc}/${s}/${d}/${rotationBits(p)}/${p.clip ? 1 : 0}/${mode.width}x${mode.height}`;
}

export interface PlacementResult {
  readonly reasons: ScanoutReason[];
  readonly notes: string[];
  /** Present when the placement is usable (no PLACEMENT reason); SCALING/ROTATION may still refuse. */
  readonly resolved?: ResolvedPlacement;
}

/**
 * Checks a placement of a `width` x `height` buffer on `plane` of a CRTC showing `mode`.
 * Reasons: PLACEMENT, SCALING, ROTATION.
 */
export function resolvePlacement(p: Placement, buffer: { width: number; height: number }, mode: ModeSize, plane: ScanoutPlaneInfo): PlacementResult {
  const reasons: ScanoutReason[] = [];
  const notes: string[] = [];
  const at = { plane: plane.id };
  const rotation = rotationBits(p);
  if ((rotation & ~plane.rotations) !== 0) {
    reasons.push(
      reason('ROTATION', `plane ${plane.id} offers ${rotationName(plane.rotations)}${plane.hasRotationProperty ? '' : ' (no rotation property)'}, not ${rotationName(rotation & ~plane.rotations)}`, at),
    );
  }
  let src: Rect = p.src ?? { x: 0, y: 0, width: buffer.width, height: buffer.height };
  const rotW = swaps(rotation) ? src.height : src.width;
  const rotH = swaps(rotation) ? src.width : src.height;
  let dst: Rect = p.dst ?? { x: 0, y: 0, width: rotW, height: rotH };
  const finite = [src.x, src.y, src.width, src.height, dst.x, dst.y, dst.width, dst.height].every(Number.isFinite);
  if (!finite) {
    reasons.push(reason('PLACEMENT', `placement has a non-finite coordinate (src ${fmt(src)}, dst ${fmt(dst)})`, at));
    return { reasons, notes };
  }
  if (src.width <= 0 || src.height <= 0 || dst.width <= 0 || dst.height <= 0) {
    reasons.push(reason('PLACEMENT', `zero or negative size (src ${fmt(src)}, dst ${fmt(dst)})`, at));
    return { reasons, notes };
  }
  if (src.x < 0 || src.y < 0 || src.x + src.width > buffer.width || src.y + src.height > buffer.height) {
    reasons.push(reason('PLACEMENT', `source ${fmt(src)} is not inside the ${buffer.width}x${buffer.height} buffer`, at));
    return { reasons, notes };
  }
  const ix0 = Math.max(dst.x, 0);
  const iy0 = Math.max(dst.y, 0);
  const ix1 = Math.min(dst.x + dst.width, mode.width);
  const iy1 = Math.min(dst.y + dst.height, mode.height);
  if (ix1 <= ix0 || iy1 <= iy0) {
    reasons.push(reason('PLACEMENT', `destination ${fmt(dst)} is entirely off the ${mode.width}x${mode.height} mode`, at));
    return { reasons, notes };
  }
  const scaled = dst.width !== rotW || dst.height !== rotH;
  if (scaled && plane.scaling === false) {
    reasons.push(reason('SCALING', `plane ${plane.id} cannot scale: source ${rotW}x${rotH}${swaps(rotation) ? ' (after rotation)' : ''} differs from destination ${dst.width}x${dst.height}`, at));
  }
  let clipped = false;
  const partly = ix0 !== dst.x || iy0 !== dst.y || ix1 !== dst.x + dst.width || iy1 !== dst.y + dst.height;
  if (partly) {
    if (!p.clip) {
      reasons.push(reason('PLACEMENT', `destination ${fmt(dst)} is partly off the ${mode.width}x${mode.height} mode (ask for clipping to show the visible part)`, at));
      return { reasons, notes };
    }
    if (rotation !== ROTATE_0) {
      reasons.push(reason('PLACEMENT', `destination ${fmt(dst)} is partly off-screen and primebuf clips only unrotated, unreflected placements`, at));
      return { reasons, notes };
    }
    // Clip in destination space and carry the same fraction to the source (exact when unscaled).
    const sx = src.width / dst.width;
    const sy = src.height / dst.height;
    const nsrc: Rect = { x: src.x + (ix0 - dst.x) * sx, y: src.y + (iy0 - dst.y) * sy, width: (ix1 - ix0) * sx, height: (iy1 - iy0) * sy };
    const ndst: Rect = { x: ix0, y: iy0, width: ix1 - ix0, height: iy1 - iy0 };
    notes.push(`clipped to the mode: src ${fmt(src)} -> ${fmt(nsrc)}, dst ${fmt(dst)} -> ${fmt(ndst)}`);
    src = nsrc;
    dst = ndst;
    clipped = true;
  }
  return { reasons, notes, resolved: { crtc: p.crtc, src, dst, rotation, clipped } };
}

/**
 * An orientation as (flip, counter-clockwise rotation in degrees): mirror about the vertical axis
 * first (when `flip`), then rotate. The wl_output.transform values 0-7 are the eight of them.
 */
export interface Orientation {
  readonly flip: boolean;
  readonly rot: 0 | 90 | 180 | 270;
}

/** The orientation of a wl_output.transform value (0-3 rotations, 4-7 flipped then rotated). */
export function orientationFromWl(transform: number): Orientation {
  if (!Number.isInteger(transform) || transform < 0 || transform > 7) throw new RangeError(`wl_output.transform is 0-7 (got ${String(transform)})`);
  return { flip: transform >= 4, rot: ((transform % 4) * 90) as Orientation['rot'] };
}

/** The orientation that undoes `o` (a flipped orientation is its own inverse). */
export function inverseOrientation(o: Orientation): Orientation {
  return o.flip ? o : { flip: false, rot: ((360 - o.rot) % 360) as Orientation['rot'] };
}

/** `a` after `b`. With R a rotation and F the flip: R_a F_a R_b F_b, and F R = R^-1 F. */
export function composeOrientations(a: Orientation, b: Orientation): Orientation {
  return a.flip
    ? { flip: !b.flip, rot: ((a.rot - b.rot + 360) % 360) as Orientation['rot'] }
    : { flip: b.flip, rot: ((a.rot + b.rot) % 360) as Orientation['rot'] };
}

/**
 * Where a fullscreen surface's buffer goes on an output: centred on the mode, turned by the
 * output's rotation (degrees counter-clockwise, as the KMS rotation property) composed with the
 * inverse of the client's buffer transform (wl_surface.set_buffer_transform, wl_output.transform
 * 0-7; flipped ones mirror as DRM_MODE_REFLECT_X), and divided by the buffer scale
 * (wl_surface.set_buffer_scale). A client that rendered for the output's transform (buffer
 * transform = output transform) is placed unrotated. The result is a placement without a CRTC
 * (the presenter's SurfacePlacement); a buffer larger than the mode gets a destination partly
 * off it, which resolvePlacement refuses unless clipping is asked for.
 */
export function placementFor(
  buffer: { readonly width: number; readonly height: number },
  bufferTransform: number,
  bufferScale: number,
  outputRotation: 0 | 90 | 180 | 270,
  mode: ModeSize,
): Omit<Placement, 'crtc'> {
  if (!(bufferScale >= 1) || !Number.isInteger(bufferScale)) throw new RangeError(`buffer scale is a positive integer (got ${String(bufferScale)})`);
  const o = composeOrientations({ flip: false, rot: outputRotation }, inverseOrientation(orientationFromWl(bufferTransform)));
  const swap = o.rot === 90 || o.rot === 270;
  const width = Math.max(1, Math.round((swap ? buffer.height : buffer.width) / bufferScale));
  const height = Math.max(1, Math.round((swap ? buffer.width : buffer.height) / bufferScale));
  const dst = { x: Math.floor((mode.width - width) / 2), y: Math.floor((mode.height - height) / 2), width, height };
  return { dst, rotation: o.rot, ...(o.flip ? { reflectX: true } : {}) };
}
