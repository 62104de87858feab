/**
 * The writeback capture of vkms for presenter tests: which connector a presenter drives (Virtual-1,
 * or Writeback-1 when stock vkms refuses both on one CRTC), the state to add to its commits, and a
 * pixel-for-pixel check of a captured frame.
 */
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import type { AtomicRequest } from '../../src/kms/atomic.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import type { Device } from '../../src/kms/device.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { preferredMode, type KmsResources } from '../../src/kms/resources.js';
import { addWriteback } from '../../src/kms/writeback.js';
import type { RawMode } from '../../src/native/drm.js';
import type { OutputExtra, PresentResult } from '../../src/scanout/index.js';
import { placePlane } from './kms-util.js';
import type { TapTest } from './leak.js';

/** An XRGB8888 image as a function of the pixel position. */
export type Pixel = (x: number, y: number) => number;

export interface WritebackCapture {
  readonly mode: RawMode;
  readonly W: number;
  readonly H: number;
  readonly crtc: number;
  readonly primary: number;
  /** The connector a presenter drives. */
  readonly connector: number;
  /** Arms a capture of the next commit. */
  capture(): void;
  /** The presenter's extraState: keeps Writeback-1 on the CRTC, adds the armed capture. */
  extraState(req: AtomicRequest): void;
  /** The same as an OutputExtra (presenter `extras`): Writeback-1 in the TEST_ONLY too, the capture only in commits. */
  readonly extra: OutputExtra;
  /** Writeback-1 shares the CRTC with Virtual-1 (the presenter drives Virtual-1; else Writeback-1). */
  readonly clones: boolean;
  /** The writeback connector. */
  readonly writeback: number;
  /**
   * Waits for the capture fence in `r` and compares every pixel (RGB) with `want` (`skip`: pixels
   * left out of the comparison, counted in the message).
   */
  check(t: TapTest, r: Pick<PresentResult, 'fences'>, want: Pixel, what: string, skip?: (x: number, y: number) => boolean): Promise<void>;
  close(): void;
}

export function writebackCapture(t: TapTest, vkms: Device, res: KmsResources): WritebackCapture {
  const crtc = res.crtcs[0]!.id;
  const virt = res.connectors.find((c) => !c.writeback)!;
  const wb = res.connectors.find((c) => c.writeback);
  if (!wb) throw new Error('vkms has no writeback connector (enable_writeback=1)');
  const mode = preferredMode(virt)!;
  const W = mode.hdisplay;
  const H = mode.vdisplay;
  const primary = res.planes.find((p) => p.type === 'primary')!.id;
  const out = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const outMap = out.map();
  const outFb = Framebuffer.create(vkms, { width: W, height: H, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
  // Can Virtual-1 and Writeback-1 share the CRTC (a vkms with clonable encoders)?
  const blob = PropertyBlob.fromMode(vkms, mode);
  const probe = vkms.atomic().set(crtc, 'MODE_ID', blob).set(crtc, 'ACTIVE', 1).set(virt.id, 'CRTC_ID', crtc);
  placePlane(probe, primary, crtc, outFb, 0, 0, W, H);
  const both = addWriteback(probe, wb.id, crtc, outFb).check({ allowModeset: true }).ok;
  blob.close();
  if (!both) t.comment('Virtual-1 + Writeback-1 refused together (stock vkms clone check): the presenter drives Writeback-1');
  let armed = false;
  return {
    mode,
    W,
    H,
    crtc,
    primary,
    connector: both ? virt.id : wb.id,
    capture() {
      armed = true;
      outMap.bytes().fill(0xff);
    },
    extraState(req) {
      // Writeback-1 rides along from the first (modeset) commit: adding it later would need one
      if (both) req.set(wb.id, 'CRTC_ID', crtc);
      if (!armed) return;
      armed = false;
      addWriteback(req, wb.id, crtc, outFb);
    },
    extra: {
      apply(req, testOnly) {
        if (both) req.set(wb.id, 'CRTC_ID', crtc);
        if (armed && !testOnly) addWriteback(req, wb.id, crtc, outFb);
      },
      committed() {
        armed = false;
      },
      turnOff(req) {
        if (both) req.set(wb.id, 'CRTC_ID', 0);
      },
    },
    clones: both,
    writeback: wb.id,
    async check(t, res, want, what, skip) {
      const fence = res.fences[0];
      t.ok(fence, `${what}: the commit carried the writeback capture`);
      if (!fence) return;
      await fence.wait(10_000);
      fence.close();
      const dv = new DataView(outMap.buffer);
      let bad = 0;
      let skipped = 0;
      let first = '';
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          if (skip?.(x, y)) {
            skipped++;
            continue;
          }
          const v = dv.getUint32(y * out.pitch + x * 4, true) & 0xffffff;
          const w = want(x, y) & 0xffffff;
          if (v !== w && bad++ === 0) first = `; first (${x},${y}) got 0x${v.toString(16)} want 0x${w.toString(16)}`;
        }
      }
      t.equal(bad, 0, `${what}: ${skipped ? `${W * H - skipped} pixels (${skipped} left out)` : `all ${W * H} pixels`} of the writeback capture${first}`);
    },
    close() {
      outFb.close();
      outMap.close();
      out.close();
    },
  };
}
