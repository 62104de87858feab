/** Raw native surface of native/v4l2.cc (V4L2 ioctls against linux/videodev2.h). */

export interface RawV4l2Cap {
  driver: string;
  card: string;
  busInfo: string;
  version: number;
  capabilities: number;
  /** the node's own capabilities (V4L2_CAP_DEVICE_CAPS), else `capabilities` */
  deviceCaps: number;
}

export interface RawV4l2FmtDesc {
  index: number;
  flags: number;
  description: string;
  /** the V4L2 fourcc */
  pixelformat: number;
}

export type RawV4l2FrameSizes =
  | { kind: 'discrete'; sizes: Array<{ width: number; height: number }> }
  | { kind: 'stepwise' | 'continuous'; minWidth: number; maxWidth: number; stepWidth: number; minHeight: number; maxHeight: number; stepHeight: number };

export interface RawV4l2PlaneFormat {
  bytesperline: number;
  sizeimage: number;
}

/** v4l2_format for both APIs: one plane entry for the single-planar API, num_planes for the multi-planar one. */
export interface RawV4l2Format {
  type: number;
  width: number;
  height: number;
  pixelformat: number;
  field: number;
  /** enum v4l2_colorspace */
  colorspace: number;
  /** enum v4l2_ycbcr_encoding (0: the colorspace's default) */
  ycbcrEnc: number;
  /** enum v4l2_quantization (0: the default for the colorspace and format) */
  quantization: number;
  /** enum v4l2_xfer_func */
  xferFunc: number;
  planes: RawV4l2PlaneFormat[];
}

export interface RawV4l2FormatRequest {
  width: number;
  height: number;
  pixelformat: number;
  field?: number;
  planes?: Array<Partial<RawV4l2PlaneFormat>>;
}

export interface RawV4l2Buffer {
  index: number;
  flags: number;
  sequence: number;
  field: number;
  /** the buffer's timestamp (CLOCK_MONOTONIC for most drivers: V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC), in µs */
  timestampUs: number;
  planes: Array<{ bytesused: number; length: number; offset: number; dataOffset: number }>;
}

export interface RawV4l2QueuePlane {
  /** the plane's dma-buf (DMABUF memory); the caller keeps ownership */
  fd?: number;
  length?: number;
  bytesused?: number;
}

/** The videodev2.h constants the policy layer uses, from the header the addon was built with. */
export interface RawV4l2Constants {
  BUF_TYPE_VIDEO_CAPTURE: number;
  BUF_TYPE_VIDEO_OUTPUT: number;
  BUF_TYPE_VIDEO_CAPTURE_MPLANE: number;
  BUF_TYPE_VIDEO_OUTPUT_MPLANE: number;
  MEMORY_MMAP: number;
  MEMORY_DMABUF: number;
  CAP_VIDEO_CAPTURE: number;
  CAP_VIDEO_OUTPUT: number;
  CAP_VIDEO_CAPTURE_MPLANE: number;
  CAP_VIDEO_OUTPUT_MPLANE: number;
  CAP_STREAMING: number;
  BUF_CAP_SUPPORTS_MMAP: number;
  BUF_CAP_SUPPORTS_DMABUF: number;
  BUF_FLAG_ERROR: number;
  BUF_FLAG_LAST: number;
  BUF_FLAG_TIMESTAMP_MONOTONIC: number;
  FMT_FLAG_COMPRESSED: number;
  FMT_FLAG_EMULATED: number;
  FIELD_NONE: number;
  VIDEO_MAX_PLANES: number;
}

export interface V4l2Native {
  /** open(O_RDWR | O_NONBLOCK | O_CLOEXEC) */
  v4l2Open(path: string): number;
  v4l2QueryCap(fd: number): RawV4l2Cap;
  v4l2EnumFmt(fd: number, type: number): RawV4l2FmtDesc[];
  /** null: the driver does not enumerate frame sizes */
  v4l2EnumFrameSizes(fd: number, pixelformat: number): RawV4l2FrameSizes | null;
  v4l2EnumInputs(fd: number): Array<{ index: number; name: string; type: number }>;
  v4l2GetFmt(fd: number, type: number): RawV4l2Format;
  v4l2SetFmt(fd: number, type: number, format: RawV4l2FormatRequest): RawV4l2Format;
  v4l2TryFmt(fd: number, type: number, format: RawV4l2FormatRequest): RawV4l2Format;
  /** count 0 frees the queue's buffers and answers its capabilities */
  v4l2ReqBufs(fd: number, type: number, memory: number, count: number): { count: number; capabilities: number };
  v4l2CreateBufs(fd: number, type: number, memory: number, count: number, format?: RawV4l2FormatRequest): { index: number; count: number; capabilities: number };
  v4l2QueryBuf(fd: number, type: number, memory: number, index: number): RawV4l2Buffer;
  v4l2QBuf(fd: number, type: number, memory: number, index: number, planes: RawV4l2QueuePlane[]): void;
  /** null: no buffer is done yet (EAGAIN) */
  v4l2DQBuf(fd: number, type: number, memory: number): RawV4l2Buffer | null;
  /** a dma-buf fd (O_RDWR | O_CLOEXEC) of an MMAP buffer's plane; the caller owns it */
  v4l2ExpBuf(fd: number, type: number, index: number, plane: number): number;
  v4l2StreamOn(fd: number, type: number): void;
  v4l2StreamOff(fd: number, type: number): void;
  readonly v4l2: RawV4l2Constants;
}
