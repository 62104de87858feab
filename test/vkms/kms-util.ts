/** Shared KMS helpers of the conformance tests: plane placement and a full disable. */
import type { AtomicRequest, KmsRef } from '../../src/kms/atomic.js';
import type { Device } from '../../src/kms/device.js';
import { preferredMode, readResources, type Connector, type Crtc, type KmsResources, type Plane } from '../../src/kms/resources.js';
import type { RawMode } from '../../src/native/drm.js';

/** The one display path of vkms: its CRTC, Virtual-1 with its preferred mode, the primary plane. */
export interface PrimaryOutput {
  res: KmsResources;
  crtc: Crtc;
  virt: Connector;
  mode: RawMode;
  W: number;
  H: number;
  primary: Plane;
}

export function primaryOutput(dev: Device): PrimaryOutput {
  const res = readResources(dev, { probe: true });
  const crtc = res.crtcs[0]!;
  const virt = res.connectors.find((c) => !c.writeback)!;
  const mode = preferredMode(virt)!;
  const primary = res.planes.find((p) => p.type === 'primary')!;
  return { res, crtc, virt, mode, W: mode.hdisplay, H: mode.vdisplay, primary };
}

/** Puts `fb` on `plane` at (x, y), unscaled (vkms cannot scale). */
export function placePlane(req: AtomicRequest, plane: KmsRef, crtc: KmsRef, fb: KmsRef, x: number, y: number, w: number, h: number): AtomicRequest {
  return req.setAll(plane, {
    FB_ID: fb,
    CRTC_ID: crtc,
    SRC_X: 0,
    SRC_Y: 0,
    SRC_W: BigInt(w) << 16n,
    SRC_H: BigInt(h) << 16n,
    CRTC_X: x,
    CRTC_Y: y,
    CRTC_W: w,
    CRTC_H: h,
  });
}

/** Turns every plane, connector and CRTC off (blocking, with modeset), so the next test starts clean. */
export function disableAll(dev: Device, res: KmsResources = readResources(dev)): void {
  const req = dev.atomic();
  for (const p of res.planes) req.set(p.id, 'FB_ID', 0).set(p.id, 'CRTC_ID', 0);
  for (const c of res.connectors) {
    req.set(c.id, 'CRTC_ID', 0);
  }
  for (const c of res.crtcs) req.set(c.id, 'ACTIVE', 0).set(c.id, 'MODE_ID', 0);
  req.commitBlocking({ allowModeset: true });
}
