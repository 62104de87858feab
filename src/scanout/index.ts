/**
 * The frame path: scanout verdicts, texture verdicts, plane assignment, feedback debounce, the
 * write-combined copy with its damage bookkeeping and ring of compositor-owned buffers.
 */
export {
  copyRects,
  copyTransformed,
  copyFormats,
  canCopy,
  newCopyStats,
  CONVERTIBLE_FORMATS,
  YUV_SOURCE_FORMATS,
  DEFAULT_YUV_ENCODING,
  yuvCoefficients,
  type YuvEncoding,
  type CopySurface,
  type CopyStats,
  type CopyOptions,
  type CopyTransform,
  type CopySource,
  type ComposeSource,
} from './copy.js';
export {
  CopyRing,
  RingBusyError,
  type ScanoutBuffer as CopyRingBuffer,
  type RingBufferSpec,
  type AllocateScanoutBuffer,
  type SlotState,
  type RingSlot,
  type RingFrame,
  type CopyRingOptions,
} from './copy-ring.js';
export { DamageHistory, damageArea, mergeDamage, rectString } from './damage.js';
export {
  reallocationCouldHelp,
  verdictToJSON,
  describeVerdict,
  type ScanoutReasonCode,
  type ScanoutReason,
  type Verdict,
} from './reasons.js';
export {
  resolvePlacement,
  rotationBits,
  placementKey,
  placementFor,
  type Placement, type ResolvedPlacement, type Rect, type ModeSize, type PlacementResult } from './placement.js';
export {
  ROTATE_0,
  ROTATE_90,
  ROTATE_180,
  ROTATE_270,
  REFLECT_X,
  REFLECT_Y,
  rotationName,
  rotationMask,
  knownScaling,
  scanoutDeviceFromDescription,
  scanoutDeviceFromLive,
  scanoutDevicesFromDevicesJSON,
  scanoutDeviceFromDrmInfo,
  sameGpuDevIds,
  findPlane,
  type ScanoutDeviceInfo,
  type ScanoutPlaneInfo,
  type ScanoutDeviceOptions,
} from './verdict-device.js';
export { bufferFromAttributes, shmBuffer, describeBuffer, BufferLocks, type BufferLife, type ScanoutBuffer, type ScanoutBufferPlane } from './verdict-buffer.js';
export { KmsScanoutKernel, type ScanoutKernel, type KernelStep, type KernelCounts, type OutputDescription } from './verdict-kms.js';
export { OutputState, type OutputStateOptions, type OutputPlane, type PlaneContent, type OutputExtra, type AtomicObserver } from './output-state.js';
export {
  ScanoutChecker,
  staticScanoutChecks,
  implicitModifierRefusal,
  type ScanoutVerdict,
  type ScanoutCheckerOptions,
  type CheckerStats,
  type StaticResult,
} from './verdict.js';
export { KnownBadTable, type KnownBadEntry } from './known-bad.js';
export { ScanoutTrancheDebounce, sceneScanoutTrancheWanted, type DebounceOptions } from './debounce.js';
export { checkTexture } from './texture.js';
export { assignPlanes, type AssignInput, type AssignSurface, type Assignment, type PrimaryContent, type SurfaceId } from './assign.js';
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
} from './presenter.js';
export { DumbRingBuffer, type PresenterRingBuffer } from './presenter-ring.js';
export type { SceneResult } from './scene-types.js';
export type { SceneAssignPlane, SceneAssignSurface, SceneCandidate, SceneAssignInput, SceneAssignment, SceneTestResult } from './scene-assign.js';
export type { InFence } from './output-state.js';
export { exportWriteFence } from './implicit-sync.js';
export { composeLayers, COMPOSE_SOURCE_FORMATS, COMPOSE_TARGET_FORMATS } from './compose.js';
export type {
  SceneSurfaceId,
  SolidColor,
  SceneSurface,
  SceneFrame,
  SceneSurfaceResult,
  ComposeLayer,
  ComposeImageLayer,
  ComposeSolidLayer,
  ComposeJob,
  ComposeResult,
} from './scene-types.js';
