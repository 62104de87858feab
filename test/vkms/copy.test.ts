// Conformance: the copy fallback on the real kernel. A client buffer in XBGR8888 (a format no
// vkms plane takes) lives in a udmabuf; the copy ring converts it into vkms dumb buffers
// (XRGB8888) inside DMA_BUF_IOCTL_SYNC brackets on both dma-bufs, each frame goes on the primary
// plane with ONE atomic commit, and the writeback capture of that frame matches pixel for pixel.
// A later frame into a reused buffer copies only the damage it missed: the capture shows the
// damaged rectangles new and every other pixel as the buffer held it before.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import type { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import type { Mapping } from '../../src/dmabuf/mapping.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import type { Device } from '../../src/kms/device.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { preferredMode, readResources } from '../../src/kms/resources.js';
import { addWriteback } from '../../src/kms/writeback.js';
import { CopyRing, type RingBufferSpec, type RingFrame, type ScanoutBuffer } from '../../src/scanout/copy-ring.js';
import type { CopySurface } from '../../src/scanout/copy.js';
import { damageArea, fullDamage, mergeDamage, type Rect } from '../../src/scanout/damage.js';
import { openDriver } from './devices-util.js';
import { disableAll, placePlane } from './kms-util.js';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');
const POISON = 0x00c0ffee;

/** A vkms dumb buffer as a ring buffer: mapping, exported dma-buf (for the sync bracket), framebuffer. */
class DumbScanout implements ScanoutBuffer {
  readonly format: number;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly memory: Mapping;
  readonly dmabuf: Dmabuf;
  readonly fb: Framebuffer;
  readonly #dumb: DumbBuffer;
  constructor(dev: Device, spec: RingBufferSpec) {
    this.#dumb = DumbBuffer.create(dev, { width: spec.width, height: spec.height, bpp: 32 });
    this.format = spec.format;
    this.width = spec.width;
    this.height = spec.height;
    this.stride = this.#dumb.pitch;
    this.memory = this.#dumb.map();
    this.dmabuf = this.#dumb.exportDmabuf();
    this.fb = Framebuffer.create(dev, {
      width: spec.width,
      height: spec.height,
      format: spec.format,
      modifier: DRM_FORMAT_MOD_LINEAR,
      planes: [{ handle: this.#dumb.handle, pitch: this.#dumb.pitch }],
    });
  }
  close(): void {
    this.fb.close();
    this.memory.close();
    this.dmabuf.close();
    this.#dumb.close();
  }
}

/** The client: an XBGR8888 udmabuf whose pixels change only inside each frame's damage. */
function pixelOf(frame: number, x: number, y: number): number {
  // XBGR8888 little-endian u32: [31:24] X, [23:16] B, [15:8] G, [7:0] R
  return ((0x40 + frame * 0x21) << 16) | ((x * 7 + y) & 0xff) << 8 | ((x ^ y) & 0xff) | 0x11000000;
}

leakFree(t, 'copy ring on vkms: XBGR8888 udmabuf -> XRGB8888 dumb buffers, one commit per frame, writeback exact, damage only', async (t) => {
  const vkms = openDriver('vkms');
  const res = readResources(vkms, { probe: true });
  const crtc = res.crtcs[0]!;
  const virt = res.connectors.find((c) => !c.writeback)!;
  const wb = res.connectors.find((c) => c.writeback)!;
  t.ok(wb, 'a writeback connector');
  const mode = preferredMode(virt)!;
  const W = mode.hdisplay;
  const H = mode.vdisplay;
  const primary = res.planes.find((p) => p.type === 'primary')!;
  t.notOk(primary.formats.has(XB24, DRM_FORMAT_MOD_LINEAR), 'the primary plane does not take XBGR8888: the copy is needed');
  t.ok(primary.formats.has(XR24, DRM_FORMAT_MOD_LINEAR), 'it takes XRGB8888');

  // the client buffer
  const udmabuf = UdmabufAllocator.open();
  const clientBuf = udmabuf.allocate(W * 4 * H);
  const clientMap = clientBuf.map();
  const source: CopySurface = { memory: clientMap, dmabuf: clientBuf, format: XB24, width: W, height: H, stride: W * 4 };
  const draw = (frame: number, rects: readonly Rect[]): Rect[] => {
    clientBuf.beginCpuAccess('write');
    const dv = new DataView(clientMap.buffer);
    for (const r of rects) for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) dv.setUint32(y * W * 4 + x * 4, pixelOf(frame, x, y), true);
    clientBuf.endCpuAccess('write');
    return [...rects];
  };
  /** which frame last drew each pixel */
  const drawnAt = new Uint8Array(W * H);
  const record = (frame: number, rects: readonly Rect[]) => {
    for (const r of rects) for (let y = r.y; y < r.y + r.height; y++) drawnAt.fill(frame, y * W + r.x, y * W + r.x + r.width);
  };

  const ring = new CopyRing({ width: W, height: H, format: XR24, buffers: 2, allocate: (spec) => new DumbScanout(vkms, spec) });

  // the capture target
  const out = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const outMap = out.map();
  const outFb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
  const modeBlob = PropertyBlob.fromMode(vkms, mode);
  let withVirtual = true;
  const build = (fb: Framebuffer) => {
    const req = vkms.atomic().set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1);
    if (withVirtual) req.set(virt.id, 'CRTC_ID', crtc.id);
    placePlane(req, primary.id, crtc.id, fb, 0, 0, W, H);
    return addWriteback(req, wb.id, crtc.id, outFb);
  };
  /** One commit showing `slot`'s buffer; resolves when flipped and captured. */
  const show = async (frame: RingFrame<DumbScanout>) => {
    let req = build(frame.slot.buffer.fb);
    if (withVirtual && !req.check({ allowModeset: true }).ok) {
      t.comment('Virtual-1 + Writeback-1 refused together (stock vkms); capturing with Writeback-1 alone');
      withVirtual = false;
      req = build(frame.slot.buffer.fb);
    }
    outMap.bytes().fill(0xff);
    const { fences, flip } = req.commit({ allowModeset: true });
    ring.markQueued(frame.slot);
    await Promise.all([flip, fences[0]!.wait(5000)]);
    ring.markOnScreen(frame.slot);
    fences[0]!.close();
  };
  /** Compares the capture with what each pixel should show (RGB; X is don't-care). */
  const compare = (want: (x: number, y: number) => number, what: string) => {
    const got = new DataView(outMap.buffer);
    let bad = 0;
    let first = '';
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = got.getUint32(y * out.pitch + x * 4, true) & 0xffffff;
        const w = want(x, y) & 0xffffff;
        if (v !== w && bad++ === 0) first = `; first (${x},${y}) got 0x${v.toString(16)} want 0x${w.toString(16)}`;
      }
    }
    t.equal(bad, 0, `${what}: all ${W * H} pixels${first}`);
  };
  /** XBGR -> XRGB of the client pixel */
  const converted = (frame: number, x: number, y: number) => {
    const p = pixelOf(frame, x, y);
    return ((p & 0xff) << 16) | (p & 0xff00) | ((p >>> 16) & 0xff);
  };

  // frame 1: everything
  record(1, draw(1, fullDamage(W, H)));
  const f1 = await ring.copyFrame(source, fullDamage(W, H));
  t.equal(f1.bytes, W * H * 4, 'frame 1: the whole frame copied');
  t.equal(ring.stats.syncCalls, 4, 'START and END on the client (read) and the scanout buffer (write)');
  await show(f1);
  compare((x, y) => converted(1, x, y), 'frame 1 captured exactly (XBGR8888 converted)');

  // frame 2: a small change; the second buffer has never been written, so it gets everything
  const d2 = draw(2, [{ x: 100, y: 50, width: 64, height: 32 }]);
  record(2, d2);
  const f2 = await ring.copyFrame(source, d2);
  t.not(f2.slot, f1.slot, 'frame 2 goes to the other buffer (frame 1 is on screen)');
  t.equal(f2.bytes, W * H * 4, 'first use of that buffer: full copy');
  await show(f2);
  compare((x, y) => converted(drawnAt[y * W + x]!, x, y), 'frame 2 captured exactly');

  // frame 3: back to the first buffer, which holds frame 1. Poison it first (through its own
  // write bracket) so that any pixel the copy touches outside the damage would show.
  const A = f1.slot.buffer;
  A.dmabuf.beginCpuAccess('write');
  new Uint32Array(A.memory.buffer).fill(POISON);
  A.dmabuf.endCpuAccess('write');
  const d3 = draw(3, [{ x: 5, y: H - 20, width: 3, height: 17 }, { x: W - 33, y: 0, width: 33, height: 1 }]);
  record(3, d3);
  const syncBefore = ring.stats.syncCalls;
  const f3 = await ring.copyFrame(source, d3);
  t.equal(f3.slot, f1.slot, 'frame 3 reuses the first buffer');
  const missed = mergeDamage([...d2, ...d3], W, H);
  t.same(f3.rects, missed, 'it receives the union of frames 2 and 3');
  t.equal(f3.bytes, damageArea(missed) * 4, `only ${damageArea(missed) * 4} bytes written, not ${W * H * 4}`);
  t.equal(ring.stats.syncCalls - syncBefore, 4, 'one bracket pair per side again');
  await show(f3);
  const inMissed = (x: number, y: number) => missed.some((r) => x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height);
  compare((x, y) => (inMissed(x, y) ? converted(drawnAt[y * W + x]!, x, y) : POISON), 'frame 3: damaged rects new, every other pixel untouched');

  disableAll(vkms, res);
  ring.close();
  outFb.close();
  outMap.close();
  out.close();
  modeBlob.close();
  clientMap.close();
  clientBuf.close();
  udmabuf.close();
  vkms.close();
});
