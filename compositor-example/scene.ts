/**
 * The scene of a frame: the shown toplevel's tree of surfaces as the library's SceneFrame
 * (primebuf/scanout), bottom to top. The toplevel's surface and its subsurfaces below and above
 * it in their stacking order, recursively (a surface without a buffer hides its subtree), then
 * its popups (each with its own subsurfaces), then the cursor surface.
 *
 * Coordinates: a surface's position is in the output's logical space (the toplevel centred on it,
 * subsurfaces at their parent's position plus their own, popups at their parent's plus theirs);
 * its size is the viewport's destination, else its source, else the buffer's after transform and
 * scale. That rectangle, turned by the output transform, is the destination on the CRTC. The
 * source is the viewport's (surface coordinates, fractional, from wl_fixed) brought into buffer
 * pixels through the buffer scale and transform; the rotation is placementFor's (buffer
 * transform composed with the output's). Opaque: an X format or an opaque single-pixel colour,
 * else the wl_surface opaque region placed on the CRTC (true when it covers the surface).
 * Damage: the surface's, in buffer pixels, clipped to the buffer (read, not taken: the caller
 * takes each surface's frame when it presents the scene).
 */
import { formatInfo } from 'primebuf/formats';
import { placementFor, type ModeSize, type Rect, type SceneFrame, type SceneSurface, type ScanoutBuffer, type SolidColor } from 'primebuf/scanout';
import type { BufferLifetime } from 'primebuf/wayland';
import { clipDamage, type Surface } from './compositor.js';
import { SinglePixelBuffer } from './single-pixel.js';

/**
 * A popup of the toplevel (xdg-shell's PopupView): its surface, its position relative to its
 * parent's surface (the toplevel's, or the enclosing popup's), its own popups above it.
 */
export interface ScenePopup {
  readonly surface: Surface;
  readonly x: number;
  readonly y: number;
  readonly popups: readonly ScenePopup[];
}

/** What the scene is built from: the shown toplevel (its surface, its popups when it has some). */
export interface SceneRoot {
  readonly surface: Surface;
  popups?(): readonly ScenePopup[];
}

export interface SceneOptions {
  /** Output transform, degrees counter-clockwise. */
  readonly outputTransform: 0 | 90 | 180 | 270;
  /** The mode (CRTC size). */
  readonly mode: ModeSize;
  /** A surface's current buffer (the kiosk's surface-locked one): undefined when it has none it can show. */
  readonly bufferOf: (s: Surface) => BufferLifetime | undefined;
  /** The cursor surface, its top-left corner in logical output coordinates. */
  readonly cursor?: { readonly surface: Surface; readonly x: number; readonly y: number } | undefined;
}

/** One surface of a built scene, beside its SceneSurface. */
export interface SceneEntry {
  readonly surface: Surface;
  readonly scene: SceneSurface;
}

export interface BuiltScene {
  readonly frame: SceneFrame;
  /** frame.surfaces[i] is entries[i].scene */
  readonly entries: readonly SceneEntry[];
}

/**
 * A rectangle of a `width` x `height` space after wl_output.transform `t` (0-7) is applied to that
 * space: a surface rectangle into the buffer of buffer transform `t`, or a rectangle of an
 * output's logical space onto the CRTC of output transform `t`.
 */
export function transformRect(r: Rect, t: number, width: number, height: number): Rect {
  const { x, y, width: w, height: h } = r;
  switch (t) {
    case 0:
      return r;
    case 1:
      return { x: height - y - h, y: x, width: h, height: w };
    case 2:
      return { x: width - x - w, y: height - y - h, width: w, height: h };
    case 3:
      return { x: y, y: width - x - w, width: h, height: w };
    case 4:
      return { x: width - x - w, y, width: w, height: h };
    case 5:
      return { x: height - y - h, y: width - x - w, width: h, height: w };
    case 6:
      return { x, y: height - y - h, width: w, height: h };
    case 7:
      return { x: y, y: x, width: h, height: w };
    default:
      throw new RangeError(`wl_output.transform is 0-7 (got ${String(t)})`);
  }
}

function area(rects: readonly Rect[]): number {
  return rects.reduce((a, r) => a + r.width * r.height, 0);
}

function intersect(a: Rect, b: Rect): Rect | undefined {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width);
  const y1 = Math.min(a.y + a.height, b.y + b.height);
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : undefined;
}

/** Builds the scene of `root` (none: an empty scene, or the cursor alone). */
export function buildScene(root: SceneRoot | undefined, opts: SceneOptions): BuiltScene {
  const rot = (opts.outputTransform / 90) as 0 | 1 | 2 | 3;
  const swapOut = rot % 2 === 1;
  const logical = { width: swapOut ? opts.mode.height : opts.mode.width, height: swapOut ? opts.mode.width : opts.mode.height };
  const entries: SceneEntry[] = [];

  const emit = (s: Surface, lx: number, ly: number, cursor: boolean): void => {
    const size = s.size;
    const buf = s.buffer;
    if (!size || !buf) return;
    const single = SinglePixelBuffer.of(buf);
    let content: ScanoutBuffer | SolidColor;
    let bw: number;
    let bh: number;
    let opaqueFormat: boolean;
    if (single) {
      content = single.color;
      bw = bh = 1;
      opaqueFormat = single.color.a >= 1;
    } else {
      const life = opts.bufferOf(s);
      if (!life || life.freed) return;
      const b = life.scanoutBuffer();
      content = b;
      bw = b.width;
      bh = b.height;
      opaqueFormat = formatInfo(b.format)?.hasAlpha === false;
    }
    const local: Rect = { x: lx, y: ly, width: size.width, height: size.height };
    const dst = transformRect(local, rot, logical.width, logical.height);
    // the source: surface coordinates (after buffer transform and scale) into buffer pixels
    const swapBuf = s.transform % 2 === 1;
    const tw = swapBuf ? bh : bw;
    const th = swapBuf ? bw : bh;
    const vs = s.viewportSrc;
    const scaled: Rect = vs ? { x: vs.x * s.scale, y: vs.y * s.scale, width: vs.width * s.scale, height: vs.height * s.scale } : { x: 0, y: 0, width: tw, height: th };
    const src = transformRect(scaled, s.transform, tw, th);
    const { rotation, reflectX } = single ? { rotation: 0 as const, reflectX: undefined } : placementFor({ width: bw, height: bh }, s.transform, s.scale, opts.outputTransform, opts.mode);
    let opaque: boolean | Rect[] = opaqueFormat;
    if (!opaqueFormat && s.opaque && s.opaque.length > 0) {
      const inside = s.opaque.map((r) => intersect(r, { x: 0, y: 0, width: size.width, height: size.height })).filter((r): r is Rect => r !== undefined);
      opaque =
        area(inside) >= size.width * size.height
          ? true
          : inside.map((r) => transformRect({ x: r.x + lx, y: r.y + ly, width: r.width, height: r.height }, rot, logical.width, logical.height));
      if (Array.isArray(opaque) && opaque.length === 0) opaque = false;
    }
    const clipped = clipDamage(s.damage, bw, bh);
    const scene: SceneSurface = {
      id: s.resource.key,
      content,
      ...(single ? {} : { src }),
      dst,
      rotation,
      ...(reflectX ? { reflectX } : {}),
      opaque,
      ...(clipped ? { damage: clipped } : {}),
      ...(cursor ? { cursor: true } : {}),
    };
    entries.push({ surface: s, scene });
  };

  /** `s` and its subsurfaces in stacking order; a surface without a buffer hides its subtree. */
  const walk = (s: Surface, lx: number, ly: number): void => {
    if (!s.buffer || s.destroyed) return;
    for (const c of s.stack) {
      if (c === s) emit(s, lx, ly, false);
      else if (c.sub?.parent === s) walk(c, lx + c.sub.position.x, ly + c.sub.position.y);
    }
  };

  /** popups bottom to top, each above its parent, with their subsurfaces */
  const walkPopups = (popups: readonly ScenePopup[], ox: number, oy: number): void => {
    for (const p of popups) {
      if (!p.surface.buffer) continue; // an unmapped popup hides its own popups too
      walk(p.surface, ox + p.x, oy + p.y);
      walkPopups(p.popups, ox + p.x, oy + p.y);
    }
  };

  if (root) {
    const top = root.surface;
    const size = top.size;
    if (size) {
      // centred on the output's logical area (where xdg-shell places its popups from)
      const ox = Math.floor((logical.width - size.width) / 2);
      const oy = Math.floor((logical.height - size.height) / 2);
      walk(top, ox, oy);
      walkPopups(root.popups?.() ?? [], ox, oy);
    }
  }
  if (opts.cursor) emit(opts.cursor.surface, opts.cursor.x, opts.cursor.y, true);
  return { frame: { surfaces: entries.map((e) => e.scene) }, entries };
}
