/** Raw native surface of native/copy.cc (the write-combined copy with damage rectangles). */

/** One side of a copy: a plane inside a mapped byte range (dma-buf/dumb mapping, wl_shm pool). */
export interface RawCopySurface {
  /** the mapped byte range (or a view of it); must stay mapped until the copy settles */
  data: ArrayBuffer | ArrayBufferView;
  /** byte offset of the plane inside `data` (default 0) */
  offset?: number;
  /** DRM fourcc of a one-plane RGB format, YUYV, or NV12 (the luma plane; chroma* below) */
  format: number;
  stride: number;
  width: number;
  height: number;
  /** NV12 only: byte offset of the interleaved CbCr plane inside `data` */
  chromaOffset?: number;
  /** NV12 only: the CbCr plane's stride */
  chromaStride?: number;
  /**
   * The dma-buf behind `data`: the job brackets its copy with DMA_BUF_IOCTL_SYNC on this fd on
   * the pool thread (START READ for a source, START WRITE for a destination; END after). A failed
   * job's error then carries `syncCalls`, the ioctls it issued. The fd must stay open until the
   * copy settles.
   */
  syncFd?: number;
}

export interface RawCopyJob {
  src: RawCopySurface;
  dst: RawCopySurface;
  /** [x, y, width, height] quadruples in source coordinates */
  rects: Uint32Array;
  /** destination position of source (0, 0) (default 0, 0) */
  dx?: number;
  dy?: number;
  /**
   * YUYV and NV12 sources (required for them, ignored otherwise): the YUV -> RGB matrix as
   * [yOffset, yScale, rCr, gCb, gCr, bCb], 16 fraction bits: R = yScale(Y - yOffset) + rCr(Cr - 128),
   * G = yScale(Y - yOffset) - gCb(Cb - 128) - gCr(Cr - 128), B = yScale(Y - yOffset) + bCb(Cb - 128).
   */
  yuv?: Int32Array;
}

/** A rectangle in pixels (non-negative integers, width and height positive). */
export interface RawCopyRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface RawTransformJob {
  src: RawCopySurface;
  dst: RawCopySurface;
  /** the source rectangle drawn */
  srcRect: RawCopyRect;
  /** where it is drawn, scaled (nearest neighbour) to this size; x, y signed 32-bit */
  dstRect: RawCopyRect;
  /** write only the part of dstRect inside this rectangle of the destination (default: dstRect, which must then lie inside) */
  clip?: RawCopyRect;
  /** degrees counter-clockwise, as DRM_MODE_ROTATE_* (default 0) */
  rotation?: 0 | 90 | 180 | 270;
  /** mirror the source rectangle horizontally / vertically before the rotation */
  reflectX?: boolean;
  reflectY?: boolean;
}

export interface CopyNative {
  /**
   * Copies (and converts, where the formats differ) the rectangles on libuv's thread pool with
   * non-temporal stores, never reading the destination; resolves with the bytes written.
   * Throws RangeError/TypeError synchronously for a request that does not fit its memory.
   */
  copyRects(job: RawCopyJob): Promise<number>;
  /**
   * Draws srcRect into dstRect reflected, rotated and scaled (nearest neighbour; the exact mapping
   * is in native/copy.cc), converting where the formats differ, on the thread pool with streaming
   * stores; writes every pixel of dstRect once and resolves with the bytes written. Throws
   * RangeError/TypeError synchronously for a request that does not fit its memory.
   */
  copyTransformed(job: RawTransformJob): Promise<number>;
  /** [fourcc, bytes per pixel] of every format a same-format copy takes */
  copyFormats(): Array<[number, number]>;
  /** whether this build streams with SSE2 movntdq (x86-64), else plain stores */
  copyStreaming: boolean;
  /** width of one non-temporal store in the streaming copy: 32 (AVX2), 16 (SSE2), 0 (no streaming) */
  copyStoreBytes: number;
}
