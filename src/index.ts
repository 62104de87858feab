/**
 * primebuf's package root: the names a compositor author starts from (at most 40 runtime values,
 * checked by test/unit/exports.test.ts). Everything else, and these again, is in the areas' own
 * subpath exports, each backed by src/<area>/index.ts: primebuf/kms, /formats, /dmabuf,
 * /constraints, /alloc, /scanout, /wayland, /client, /v4l2 (package.json "exports").
 */
// errors and ownership
export { PrimebufError, SystemError, ClosedError, InvalidArgumentError, NativeUnavailableError, type SystemErrorOptions } from './errors.js';
export { Resource } from './resource.js';
// the device
export {
  Device,
  listDevices,
  readResources,
  preferredMode,
  type DeviceOpenOptions,
  type DeviceInfo,
  type KmsResources,
  type Connector,
  type Crtc,
  type Plane,
} from './kms/index.js';
// format helpers
export {
  fourcc,
  fourccString,
  formatName,
  formatInfo,
  modifierName,
  parseModifier,
  DRM_FORMAT_MOD_LINEAR,
  DRM_FORMAT_MOD_INVALID,
  FormatSet,
  type FormatInfo,
  type FormatModifier,
} from './formats/index.js';
// the server, linux-dmabuf, wl_shm
export {
  WaylandServer,
  LinuxDmabuf,
  installShm,
  ShmBuffer,
  type ServerResource,
  type ServerClient,
  type WaylandServerOptions,
  type LinuxDmabufBuffer,
  type LinuxDmabufOptions,
  type BufferVerdict,
  type ShmGlobal,
  type ShmOptions,
} from './wayland/index.js';
// the presenter and its results
export {
  Presenter,
  CopyUnsupportedError,
  PRESENTATION_VSYNC,
  PRESENTATION_HW_CLOCK,
  PRESENTATION_HW_COMPLETION,
  PRESENTATION_ZERO_COPY,
  type PresenterOptions,
  type PresenterStats,
  type PresentFrame,
  type PresentResult,
  type Presentation,
  type SurfacePlacement,
  type SceneFrame,
  type SceneSurface,
  type SceneSurfaceId,
  type SceneSurfaceResult,
  type SceneResult,
  type SolidColor,
  type ScanoutBuffer,
  type ScanoutVerdict,
  type ScanoutReason,
  type Rect,
} from './scanout/index.js';
// the camera
export { CameraSource, V4l2Device, type CameraFrame, type CameraSourceOptions } from './v4l2/index.js';
// input
export { openInput, type InputContext, type InputOptions, type InputEvent, type InputDeviceInfo, type DeviceOpener, type KeymapNames } from './input/index.js';
