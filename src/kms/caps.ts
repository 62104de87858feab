/** DRM capability and client-capability names (include/uapi/drm/drm.h) and their numbers. */

export const DRM_CAPS = {
  DUMB_BUFFER: 0x1,
  VBLANK_HIGH_CRTC: 0x2,
  DUMB_PREFERRED_DEPTH: 0x3,
  DUMB_PREFER_SHADOW: 0x4,
  PRIME: 0x5,
  TIMESTAMP_MONOTONIC: 0x6,
  ASYNC_PAGE_FLIP: 0x7,
  CURSOR_WIDTH: 0x8,
  CURSOR_HEIGHT: 0x9,
  ADDFB2_MODIFIERS: 0x10,
  PAGE_FLIP_TARGET: 0x11,
  CRTC_IN_VBLANK_EVENT: 0x12,
  SYNCOBJ: 0x13,
  SYNCOBJ_TIMELINE: 0x14,
  ATOMIC_ASYNC_PAGE_FLIP: 0x15,
} as const;
export type DrmCap = keyof typeof DRM_CAPS;

export const DRM_CLIENT_CAPS = {
  STEREO_3D: 1,
  UNIVERSAL_PLANES: 2,
  ATOMIC: 3,
  ASPECT_RATIO: 4,
  WRITEBACK_CONNECTORS: 5,
  CURSOR_PLANE_HOTSPOT: 6,
} as const;
export type DrmClientCap = keyof typeof DRM_CLIENT_CAPS;

/** DRM_PRIME_CAP_IMPORT / DRM_PRIME_CAP_EXPORT bits of DRM_CAP_PRIME. */
export const DRM_PRIME_CAP_IMPORT = 0x1n;
export const DRM_PRIME_CAP_EXPORT = 0x2n;
