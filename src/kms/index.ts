/** DRM/KMS devices: discovery, the Device owner, capabilities. */
export { Device, type DrmVersion, type DeviceOpenOptions } from './device.js';
export { DRM_CAPS, DRM_CLIENT_CAPS, type DrmCap, type DrmClientCap } from './caps.js';
export {
  listDevices,
  describeNode,
  type DeviceInfo,
  type DiscoveryOptions,
  type BusInfo,
  type PciBusInfo,
  type PlatformBusInfo,
  type NodeType,
  type CoherenceSource,
} from './discovery.js';
export { GemHandle, GemHandleTable } from './gem.js';
export {
  Framebuffer,
  type FramebufferDescription,
  type FramebufferPlane,
  type FramebufferCloseOptions,
  type ImportedBuffer,
} from './framebuffer.js';
export { PropertyBlob } from './blob.js';
export {
  AtomicRequest,
  type KmsRef,
  type PropertyValue,
  type CommitOptions,
  type CommitResult,
  type FlipResult,
} from './atomic.js';
export { DrmEventDispatcher, type PageFlipEvent } from './events.js';
export { PropertyCache, enumName, type Property, type PropertyInfo, type PropertyType, type KmsObjectType } from './properties.js';
export { decodeInFormats } from './in-formats.js';
export { readResources, preferredMode, type KmsResources, type Plane, type PlaneType, type Crtc, type Connector, type Encoder } from './resources.js';
export { describeDevice, describeDevices, type DeviceJSON, type KmsJSON, type PlaneJSON, type PropertyJSON } from './describe.js';
export { addWriteback } from './writeback.js';
export { FramebufferCache, type FramebufferResult } from './fb-cache.js';
export { KmsDeviceModel, type KmsDeviceFacts, type ModelReadOptions, type PlaneOffsetsFact, type DeviceOrModel } from './model.js';
export { probePlaneOffsets, type PlaneOffsetsProbeOptions } from './plane-offsets.js';
