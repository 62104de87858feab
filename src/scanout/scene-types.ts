/**
 * The types of a scene: several surfaces on one output in one frame (subsurfaces, popups,
 * viewports, a cursor). The presenter assigns planes across a scene and composes what gets no
 * plane (scene.ts); the composer (compose.ts, pixman in native/compose.cc) blends layers into a
 * compositor-owned buffer. Kept apart from both so that the compositor side (which builds
 * scenes) and the presenter side (which shows them) share one definition.
 */
import type { CopySurface } from './copy.js';
import type { Rect } from './placement.js';
import type { SyncFile } from '../dmabuf/sync-file.js';
import type { Presentation, SurfacePlacement } from './presenter.js';
import type { ScanoutReason } from './reasons.js';
import type { ScanoutBuffer } from './verdict-buffer.js';

/** A surface's identity across frames (a wl_surface's object id, a name): stable while it lives. */
export type SceneSurfaceId = string | number;

/**
 * A solid colour (wp_single_pixel_buffer_v1), premultiplied by alpha, each channel in [0, 1].
 * It becomes a fill: no buffer is read.
 */
export interface SolidColor {
  readonly kind: 'solid';
  readonly r: number;
  readonly g: number;
  readonly b: number;
  readonly a: number;
}

/**
 * One visible surface of a frame. Its placement is the single-surface presenter's (source crop
 * in buffer pixels, fractional allowed as wp_viewporter gives it; destination on the CRTC,
 * integers; rotation and reflection of buffer transform and output transform combined), with
 * the destination required.
 */
export interface SceneSurface extends SurfacePlacement {
  readonly id: SceneSurfaceId;
  /** The surface's current buffer (the same object for the same buffer every frame), or a fill. */
  readonly content: ScanoutBuffer | SolidColor;
  /** On the CRTC. */
  readonly dst: Rect;
  /**
   * Which of its pixels cover what lies below whatever their alpha says: true for all (an
   * X/opaque format, or an opaque region covering the surface), rectangles in CRTC coordinates
   * (the wl_surface opaque region, placed), false or absent for none beyond what the format says.
   */
  readonly opaque?: boolean | readonly Rect[];
  /** Damage in buffer pixels since this surface's previous frame; undefined: all of it. */
  readonly damage?: readonly Rect[];
  /** The pointer's cursor surface: the cursor plane is tried for it first. */
  readonly cursor?: boolean;
  /** false when a device touching the buffer is not cache-coherent (it is then never on a plane). */
  readonly coherent?: boolean;
}

/** A frame of one output: its visible surfaces, bottom to top. */
export interface SceneFrame {
  readonly surfaces: readonly SceneSurface[];
}

/** Where one surface of a scene went, and why. */
export interface SceneSurfaceResult {
  readonly id: SceneSurfaceId;
  /** 'plane': its buffer is scanned out; 'composed': blended into the composite on the plane beneath. */
  readonly path: 'plane' | 'composed';
  /** Its plane ('plane'), or the plane showing the composite ('composed'). */
  readonly plane?: number;
  /** Why it is not on a plane of its own (empty for 'plane'). */
  readonly reasons: readonly ScanoutReason[];
}

/** What presentScene did with a frame. */
export interface SceneResult {
  /** false: nothing changed (same shape, same buffers, no damage): no commit. */
  readonly committed: boolean;
  /** Per surface, bottom to top: plane or composed, and why. */
  readonly surfaces: readonly SceneSurfaceResult[];
  /** Planes the frame's commit used (the composite's or the black background's included). */
  readonly planesUsed: number;
  /** Surfaces blended into the composite this frame. */
  readonly surfacesComposed: number;
  /** Bytes of the composite written this frame (its damage only). */
  readonly bytesComposed: number;
  readonly presentation?: Presentation;
  /** Out-fences the `extraState` hook asked for (OUT_FENCE_PTR, writeback): the caller owns them. */
  readonly fences: ReadonlyArray<SyncFile | null>;
}

/** A layer of a composition, bottom to top. */
export type ComposeLayer = ComposeImageLayer | ComposeSolidLayer;

export interface ComposeImageLayer {
  readonly kind: 'image';
  readonly source: CopySurface;
  /** In source pixels, fractional allowed (default the whole source). */
  readonly src?: Rect;
  /** In target pixels. A size other than src's (after rotation) scales, bilinear. */
  readonly dst: Rect;
  /** DRM_MODE_ROTATE_* | DRM_MODE_REFLECT_* (default DRM_MODE_ROTATE_0). */
  readonly rotation?: number;
  /** Blend as if alpha were 1 (an X format, or an opaque region covering it). */
  readonly opaque?: boolean;
  /**
   * Memory that may be truncated under us (a wl_shm pool without a shrink seal): read only
   * through a copy under the SIGBUS guard; a fault rejects the job with SystemError 'EFAULT'
   * (syscall 'SIGBUS', `layer` its index) instead of killing the process.
   */
  readonly guarded?: boolean;
}

export interface ComposeSolidLayer {
  readonly kind: 'solid';
  readonly color: SolidColor;
  readonly dst: Rect;
}

/** One composition: layers blended (premultiplied OVER) into `target`, only inside `clip`. */
export interface ComposeJob {
  /** The compositor-owned buffer (XRGB8888 or ARGB8888), inside a write bracket when it is a dma-buf. */
  readonly target: CopySurface;
  readonly layers: readonly ComposeLayer[];
  /** Target pixels to write (the frame's damage); outside them the target is left as it was. */
  readonly clip: readonly Rect[];
  /** What lies beneath the bottom layer (default opaque black). */
  readonly background?: SolidColor;
}

export interface ComposeResult {
  /** Bytes of the target written. */
  readonly bytes: number;
}
