/** Raw native surface of native/egl.cc (libEGL loaded at run time). */

export interface EglModifierRaw {
  modifier: bigint;
  /** EGL may import this pair only as GL_TEXTURE_EXTERNAL_OES (sampling, no rendering). */
  externalOnly: boolean;
}

export interface EglDmabufFormatsRaw {
  /** How the EGLDisplay was made: 'device' (EGL_EXT_platform_device) or 'gbm'. */
  platform: 'device' | 'gbm';
  vendor: string | null;
  version: string | null;
  /** EGL_MESA_query_driver's driver name, when present. */
  driver: string | null;
  formats: Array<{ format: number; modifiers: EglModifierRaw[] }>;
}

export interface EglNative {
  /** Whether libEGL.so.1 could be loaded. */
  eglAvailable(): boolean;
  /**
   * eglQueryDmaBufFormatsEXT/eglQueryDmaBufModifiersEXT on an EGLDisplay for the DRM node at
   * `path`. Throws an Error with code 'EGL_UNAVAILABLE', 'EGL_NO_DEVICE', 'EGL_NOT_INITIALIZED',
   * 'EGL_NO_DMABUF_MODIFIERS' or 'EGL_QUERY_FAILED' (and `eglError`), or a SystemError for open.
   */
  eglQueryDmaBufFormats(path: string): EglDmabufFormatsRaw;
}
