/** Finding the rig's devices by DRM driver name (vkms card, vgem card/render node). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device } from '../../src/kms/device.js';
import { listDevices, type DeviceInfo, type NodeType } from '../../src/kms/discovery.js';
import type { TapTest } from './leak.js';

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

type FileTest = Pick<TapTest, 'ok' | 'teardown'>;

/** The vkms primary node: asserted present, and the file exits failing (never skips) without it. */
export function requireVkms(t: FileTest): DeviceInfo {
  const vkms = findDriver('vkms');
  t.ok(vkms, 'vkms primary node present');
  if (!vkms) process.exit(1);
  return vkms;
}

/**
 * A private directory for this file's Wayland sockets, removed at teardown; also this process's
 * XDG_RUNTIME_DIR unless `setEnv` is false (a file that only hands it to children).
 */
export function privateRuntimeDir(t: FileTest, prefix: string, setEnv = true): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (setEnv) process.env.XDG_RUNTIME_DIR = dir;
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
