/** Device constraints, merge/solve, and conflicts as data. */
export * from './types.js';
export { ConstraintSet, merge, lcm, describeAccepts, explainPairs, constraintToJSON, type MergeResult, type ModifierChoice } from './set.js';
export {
  solve,
  satisfies,
  linearLayout,
  type Layout,
  type PlaneLayout,
  type LayoutRules,
  type BufferDescription,
  type CpuCache,
  type SizeRequest,
  type FormatOption,
  type Solution,
} from './solve.js';
export {
  scanoutConstraint,
  anyPlaneConstraint,
  planeConstraints,
  cpuConstraint,
  renderNodeConstraint,
  declared,
  KMS_MAX_FB_PLANES,
  type KmsDeviceDescription,
  type PlaneDescription,
  type PlaneSelector,
  type PlaneType,
} from './device.js';
export { importDrmInfo, importDrmInfoFile, type ImportedDevice, type ImportOptions } from './import-drm-info.js';
export { constraintFromJSON, parseModifierText } from './json.js';
export { ConstraintConflictError, BufferBusyError, reasonToJSON } from './errors.js';
export { describeKmsDevice, recordDescription, importDevicesJSON, type LiveOptions } from './live.js';
export {
  queryEglDmabufFormats,
  eglFormatSets,
  eglRenderNodeConstraint,
  liveRenderNodeConstraint,
  type EglQuery,
  type EglFormatSets,
  type EglDmabufFormatsRaw,
  type RenderNodeOptions,
  type RenderNodeResult,
} from './egl.js';
