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
