/** primebuf's public API. */
export * from './errors.js';
export { Resource } from './resource.js';
export * from './kms/index.js';
export * from './formats/index.js';
export {
  merge,
  solve,
  satisfies,
  ConstraintSet,
  scanoutConstraint,
  anyPlaneConstraint,
  cpuConstraint,
  renderNodeConstraint,
  declared,
  importDrmInfo,
  importDrmInfoFile,
  constraintFromJSON,
  ConstraintConflictError,
  BufferBusyError,
  reasonToJSON,
  type DeviceConstraint,
  type Reason,
  type ReasonCode,
  type Usage,
  type MergeResult,
  type Solution,
  type BufferDescription,
  type KmsDeviceDescription,
} from './constraints/index.js';
export {
  BufferRequest,
  AllocatorPool,
  CacheDomainTracker,
  PreflushedPool,
  type Allocator,
  type AllocatorCaps,
  type Backing,
  type Plan,
  type ReallocationEvent,
  type SyncCounts,
  type PoolStats,
} from './alloc/index.js';
export * from './dmabuf/index.js';
