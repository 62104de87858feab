/** V4L2 video nodes (cameras, and output nodes as stand-in encoders) as constraint sources and buffer users. */
export { V4L2_FORMAT_TABLE, v4l2FormatInfo, v4l2FormatFor, v4l2YuvEncoding, type V4l2FormatMapping, type V4l2FormatInfo } from './formats.js';
export {
  V4l2Device,
  v4l2Constraint,
  type V4l2Probe,
  type V4l2Capabilities,
  type V4l2Direction,
  type V4l2Format,
  type V4l2FormatAtSize,
  type V4l2QueueCaps,
  type V4l2Size,
} from './device.js';
export { CaptureStream, V4l2StreamError, type CaptureBuffer, type CaptureFrame, type CaptureOptions, type CaptureStats, type CaptureTarget } from './stream.js';
export { CameraSource, type CameraAttach, type CameraFrame, type CameraSourceOptions, type MoveTiming } from './camera.js';
export { OutputStream, type OutputOptions } from './output.js';
