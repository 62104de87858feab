/**
 * Plane assignment for one output, as a pure function over plane descriptions and verdicts:
 * - a surface covering the whole mode at the bottom of the stack goes on the primary plane;
 * - otherwise the primary shows a compositor-owned black background, and surfaces go on
 *   overlay planes above it (a lone surface that no overlay takes may go on the primary,
 *   positioned: the CRTC shows black around it);
 * - what does not fit is copied: the primary then shows the copy ring's composite (black
 *   background included), and a direct surface that lies below a copied one it overlaps is
 *   copied too, so the stacking order on screen stays the surfaces' order.
 * Overlays stack in ascending plane id (the kernel's default normalized zpos on drivers without
 * a zpos property, vkms among them); primebuf assigns bottom surfaces to lower ids.
 */
import type { ModeSize, Rect } from './placement.js';
import type { Verdict } from './reasons.js';
import type { ScanoutPlaneInfo } from './verdict-device.js';

export type SurfaceId = string | number;

export interface AssignSurface {
  readonly id: SurfaceId;
  /** Where the surface is on the output (CRTC coordinates). */
  readonly dst: Rect;
}

export interface AssignInput {
  readonly mode: ModeSize;
  /** The planes usable on this output's CRTC. Cursor planes are left alone. */
  readonly planes: ReadonlyArray<Pick<ScanoutPlaneInfo, 'id' | 'type'>>;
  /** Bottom to top. */
  readonly surfaces: readonly AssignSurface[];
  /** The verdict of a surface on a plane (ScanoutChecker.checkScanout for the surface's placement). */
  readonly verdict: (surface: SurfaceId, plane: number) => Pick<Verdict, 'ok'>;
}

export type PrimaryContent =
  | { readonly kind: 'surface'; readonly surface: SurfaceId }
  | { readonly kind: 'background' }
  | { readonly kind: 'composite' };

export interface Assignment {
  readonly primaryPlane: number | undefined;
  readonly primary: PrimaryContent;
  /** Direct surfaces on overlays, bottom to top. */
  readonly overlays: ReadonlyArray<{ readonly plane: number; readonly surface: SurfaceId }>;
  /** Surfaces copied into the composite on the primary, bottom to top. */
  readonly copied: readonly SurfaceId[];
  /** One line per decision (for logs and `explain`). */
  readonly why: readonly string[];
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function coversMode(r: Rect, m: ModeSize): boolean {
  return r.x <= 0 && r.y <= 0 && r.x + r.width >= m.width && r.y + r.height >= m.height;
}

export function assignPlanes(input: AssignInput): Assignment {
  const why: string[] = [];
  const primaryPlane = input.planes.filter((p) => p.type === 'primary').sort((a, b) => a.id - b.id)[0]?.id;
  const overlayIds = input.planes.filter((p) => p.type === 'overlay').map((p) => p.id).sort((a, b) => a - b);
  const surfaces = input.surfaces;
  const direct = new Map<SurfaceId, number>(); // surface -> plane
  let primary: PrimaryContent = { kind: 'background' };
  let rest = surfaces;
  const bottom = surfaces[0];
  if (bottom && primaryPlane !== undefined && coversMode(bottom.dst, input.mode) && input.verdict(bottom.id, primaryPlane).ok) {
    primary = { kind: 'surface', surface: bottom.id };
    direct.set(bottom.id, primaryPlane);
    why.push(`${bottom.id}: fullscreen on primary plane ${primaryPlane}`);
    rest = surfaces.slice(1);
  }
  const copied = new Set<SurfaceId>();
  let free = [...overlayIds];
  for (const s of rest) {
    // the lowest free overlay above every overlay already used (keeps the stacking order)
    const plane = free.find((id) => input.verdict(s.id, id).ok);
    if (plane !== undefined) {
      direct.set(s.id, plane);
      free = free.filter((id) => id > plane);
      why.push(`${s.id}: overlay plane ${plane}`);
    } else {
      copied.add(s.id);
      why.push(`${s.id}: no free overlay takes it: copied`);
    }
  }
  if (surfaces.length === 1 && copied.size === 1 && primaryPlane !== undefined && primary.kind === 'background' && input.verdict(surfaces[0]!.id, primaryPlane).ok) {
    const only = surfaces[0]!.id;
    copied.clear();
    direct.set(only, primaryPlane);
    primary = { kind: 'surface', surface: only };
    why.push(`${only}: positioned on primary plane ${primaryPlane} (the CRTC is black around it)`);
  }
  // A direct surface below a copied surface it overlaps would show above it: copy it too.
  let changed = copied.size > 0;
  while (changed) {
    changed = false;
    surfaces.forEach((s, i) => {
      if (!direct.has(s.id)) return;
      const above = surfaces.slice(i + 1).find((u) => copied.has(u.id) && overlaps(u.dst, s.dst));
      if (above) {
        direct.delete(s.id);
        copied.add(s.id);
        changed = true;
        why.push(`${s.id}: below copied ${above.id} and overlapping it: copied too`);
      }
    });
  }
  if (copied.size > 0) {
    if (primary.kind === 'surface' && copied.has(primary.surface)) why.push('primary: the composite replaces the fullscreen surface');
    primary = { kind: 'composite' };
  }
  const overlays = surfaces.filter((s) => direct.has(s.id) && direct.get(s.id) !== primaryPlane).map((s) => ({ plane: direct.get(s.id)!, surface: s.id }));
  return { primaryPlane, primary, overlays, copied: surfaces.filter((s) => copied.has(s.id)).map((s) => s.id), why };
}
