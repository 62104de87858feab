/** Finding the rig's devices by DRM driver name (vkms card, vgem card/render node). */
import { Device } from '../../src/kms/device.js';
import { listDevices, type DeviceInfo, type NodeType } from '../../src/kms/discovery.js';

/** Opens the node of `driver` with the given type; throws (the suite fails, never skips) when missing. */
export function openDriver(driver: string, nodeType: NodeType = 'primary'): Device {
  for (const info of listDevices()) {
    if (info.nodeType !== nodeType) continue;
    let dev: Device | undefined;
    try {
      dev = Device.open(info.path);
    } catch {
      continue;
    }
    if (dev.version.name === driver) return dev;
    dev.close();
  }
  throw new Error(`no ${nodeType} node of driver ${driver} in ${listDevices().map((d) => d.path).join(', ') || '(none)'}`);
}

/** The node of `driver` with the given type (asked through DRM_IOCTL_VERSION), left closed; undefined when missing. */
export function findDriver(driver: string, nodeType: NodeType = 'primary'): DeviceInfo | undefined {
  for (const d of listDevices()) {
    if (d.nodeType !== nodeType) continue;
    try {
      const dev = Device.open(d.path);
      const n = dev.version.name;
      dev.close();
      if (n === driver) return d;
    } catch {
      // not openable: not ours
    }
  }
  return undefined;
}
