/** DRM/KMS devices: discovery, the Device owner, capabilities. */
export { Device, type DrmVersion, type DeviceOpenOptions } from './device.js';
export { DRM_CAPS, DRM_CLIENT_CAPS, type DrmCap, type DrmClientCap } from './caps.js';
export {
  listDevices,
  describeNode,
  devMajor,
  devMinor,
  makeDev,
  type DeviceInfo,
  type DiscoveryOptions,
  type BusInfo,
  type PciBusInfo,
  type PlatformBusInfo,
  type NodeType,
  type CoherenceSource,
} from './discovery.js';
export { GemHandle, GemHandleTable, liveGemHandleCount } from './gem.js';
export {
  Framebuffer,
  liveFramebufferCount,
  DRM_MODE_FB_MODIFIERS,
  type FramebufferDescription,
  type FramebufferPlane,
  type FramebufferCloseOptions,
  type ImportedBuffer,
} from './framebuffer.js';
export { PropertyBlob, encodeMode } from './blob.js';
export {
  AtomicRequest,
  DRM_MODE_PAGE_FLIP_EVENT,
  DRM_MODE_ATOMIC_TEST_ONLY,
  DRM_MODE_ATOMIC_NONBLOCK,
  DRM_MODE_ATOMIC_ALLOW_MODESET,
  type KmsRef,
  type PropertyValue,
  type CommitOptions,
  type CommitResult,
  type FlipResult,
} from './atomic.js';
export { DrmEventDispatcher, type PageFlipEvent } from './events.js';
export { PropertyCache, DRM_MODE_OBJECT, describeProperty, enumName, type Property, type PropertyInfo, type PropertyType, type KmsObjectType } from './properties.js';
export { decodeInFormats, encodeInFormats } from './in-formats.js';
export { readResources, preferredMode, type KmsResources, type Plane, type PlaneType, type Crtc, type Connector, type Encoder } from './resources.js';
export { describeDevice, describeDevices, resourcesToJSON, type DeviceJSON, type KmsJSON, type PlaneJSON, type PropertyJSON } from './describe.js';
export { addWriteback } from './writeback.js';
export { FramebufferCache, type FramebufferResult } from './fb-cache.js';
export { KmsDeviceModel, type KmsDeviceFacts, type ModelReadOptions, type PlaneOffsetsFact, type DeviceOrModel } from './model.js';
export { probePlaneOffsets, type PlaneOffsetsProbeOptions } from './plane-offsets.js';
