/**
 * The surface under a point of what the kiosk shows, with the geometry scene.ts builds the frame
 * from: the shown toplevel centred on the output's logical area, its subsurfaces at their
 * parent's position plus their own in stacking order (a surface without a buffer hides its
 * subtree), its popups above it (each above its parent, with its own subsurfaces and popups).
 * The topmost surface whose rectangle (its size in surface coordinates) holds the point wins.
 * The kiosk has no wl_surface input regions: a surface takes input over its whole rectangle.
 *
 * Points move between the output's logical space (what clients see, the toplevel's space) and
 * the CRTC (the mode, what absolute input devices and the cursor plane are in) through the
 * output transform (logicalToCrtc / crtcToLogical).
 */
import type { Surface } from './compositor.js';
import type { SceneRoot, ScenePopup } from './scene.js';

/** A hit: the surface, the point in its coordinates, and its origin on the logical area. */
export interface SurfaceHit {
  readonly surface: Surface;
  readonly x: number;
  readonly y: number;
  readonly originX: number;
  readonly originY: number;
}

interface Placed {
  surface: Surface;
  x: number;
  y: number;
}

/** Every surface shown for `root`, bottom to top, with its origin on the logical area. */
export function shownSurfaces(root: SceneRoot | undefined, logical: { width: number; height: number }): Placed[] {
  const out: Placed[] = [];
  if (!root) return out;
  const walk = (s: Surface, x: number, y: number): void => {
    if (!s.buffer || s.destroyed) return;
    for (const c of s.stack) {
      if (c === s) out.push({ surface: s, x, y });
      else if (c.sub?.parent === s) walk(c, x + c.sub.position.x, y + c.sub.position.y);
    }
  };
  const walkPopups = (popups: readonly ScenePopup[], ox: number, oy: number): void => {
    for (const p of popups) {
      if (!p.surface.buffer) continue;
      walk(p.surface, ox + p.x, oy + p.y);
      walkPopups(p.popups, ox + p.x, oy + p.y);
    }
  };
  const size = root.surface.size;
  if (!size) return out;
  const ox = Math.floor((logical.width - size.width) / 2);
  const oy = Math.floor((logical.height - size.height) / 2);
  walk(root.surface, ox, oy);
  walkPopups(root.popups?.() ?? [], ox, oy);
  return out;
}

/** The topmost surface shown for `root` under the logical point (x, y), if any. */
export function surfaceAt(root: SceneRoot | undefined, logical: { width: number; height: number }, x: number, y: number): SurfaceHit | undefined {
  const shown = shownSurfaces(root, logical);
  for (let i = shown.length - 1; i >= 0; i--) {
    const p = shown[i]!;
    const size = p.surface.size;
    if (!size) continue;
    const lx = x - p.x;
    const ly = y - p.y;
    if (lx >= 0 && ly >= 0 && lx < size.width && ly < size.height) return { surface: p.surface, x: lx, y: ly, originX: p.x, originY: p.y };
  }
  return undefined;
}

type Rot = 0 | 90 | 180 | 270;

/** The logical size of a `mode` under output transform `rot` (swapped for 90 and 270). */
export function logicalOf(mode: { width: number; height: number }, rot: Rot): { width: number; height: number } {
  return rot === 90 || rot === 270 ? { width: mode.height, height: mode.width } : { width: mode.width, height: mode.height };
}

/** A point of the logical area on the CRTC (the same turn scene.ts's transformRect gives a rectangle). */
export function logicalToCrtc(x: number, y: number, mode: { width: number; height: number }, rot: Rot): { x: number; y: number } {
  const l = logicalOf(mode, rot);
  switch (rot) {
    case 90:
      return { x: l.height - y, y: x };
    case 180:
      return { x: l.width - x, y: l.height - y };
    case 270:
      return { x: y, y: l.width - x };
    default:
      return { x, y };
  }
}

/** A point of the CRTC on the logical area (the inverse of logicalToCrtc). */
export function crtcToLogical(x: number, y: number, mode: { width: number; height: number }, rot: Rot): { x: number; y: number } {
  switch (rot) {
    case 90:
      return { x: y, y: mode.width - x };
    case 180:
      return { x: mode.width - x, y: mode.height - y };
    case 270:
      return { x: mode.height - y, y: x };
    default:
      return { x, y };
  }
}
