/** Device constraints, merge/solve, and conflicts as data. */
export type { Usage, CpuAccess, DeviceConstraint, ReasonCode, Reason } from './types.js';
export { ConstraintSet, merge, type MergeResult, type ModifierChoice } from './set.js';
export {
  solve,
  satisfies,
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
  cpuConstraint,
  renderNodeConstraint,
  type KmsDeviceDescription,
  type PlaneDescription,
  type PlaneSelector,
  type PlaneType,
} from './device.js';
export { importDrmInfo, type ImportedDevice, type ImportOptions } from './import-drm-info.js';
export { constraintFromJSON } from './json.js';
export { ConstraintConflictError, BufferBusyError, reasonToJSON } from './errors.js';
export { EglError } from '../errors.js';
export { describeKmsDevice, importDevicesJSON, type LiveOptions } from './live.js';
export {
  liveRenderNodeConstraint,
  type EglQuery,
  type EglFormatSets,
  type EglDmabufFormatsRaw,
  type RenderNodeOptions,
  type RenderNodeResult,
} from './egl.js';
