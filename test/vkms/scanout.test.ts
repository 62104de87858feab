// Conformance: buffers from three other allocators — vgem (dumb + PRIME export), udmabuf (sealed
// memfd) and the system dma-heap — are imported into vkms, put on three overlay planes over a
// vkms dumb primary in ONE atomic commit, and the writeback capture of that frame matches the
// expected pixels exactly. The writeback out-fence is awaited without blocking the event loop.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DmaHeap } from '../../src/alloc/backends/heap.js';
import { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import type { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import type { GemHandle } from '../../src/kms/gem.js';
import { preferredMode, readResources } from '../../src/kms/resources.js';
import { addWriteback } from '../../src/kms/writeback.js';
import { openDriver } from './devices-util.js';
import { disableAll, placePlane, primaryOutput } from './kms-util.js';
import { kernelFramebuffers, leakFree } from './leak.js';
import { liveFramebufferCount } from '../../src/kms/framebuffer.js';
import { native } from '../../src/native.js';
import { DRM_MODE_OBJECT } from '../../src/kms/properties.js';

const XR24 = fourcc('XRGB8888');
const S = 256; // overlay size
const PITCH = S * 4;

function fill(bytes: Uint8Array, pitch: number, w: number, h: number, color: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dv.setUint32(y * pitch + x * 4, color, true);
}

/** A pattern that differs per pixel so a shifted or mis-strided plane cannot match. */
function pattern(tag: number) {
  return (x: number, y: number): number => 0xff000000 | (tag << 16) | ((x & 0xff) << 8) | (y & 0xff);
}

function paint(bytes: Uint8Array, pitch: number, w: number, h: number, fn: (x: number, y: number) => number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dv.setUint32(y * pitch + x * 4, fn(x, y), true);
}

function writeDmabuf(d: Dmabuf, fn: (x: number, y: number) => number): void {
  d.beginCpuAccess('write');
  const m = d.map();
  paint(m.bytes(), PITCH, S, S, fn);
  m.close();
  d.endCpuAccess('write');
}

leakFree(t, 'vgem + udmabuf + system heap on three vkms overlays, one commit, writeback matches exactly', async (t) => {
  const vkms = openDriver('vkms');
  const vgem = openDriver('vgem');
  const res = readResources(vkms, { probe: true });
  const crtc = res.crtcs[0]!;
  const virt = res.connectors.find((c) => !c.writeback)!;
  const wb = res.connectors.find((c) => c.writeback)!;
  const mode = preferredMode(virt)!;
  t.ok(mode, `Virtual-1 has a mode (${mode?.name})`);
  const W = mode.hdisplay;
  const H = mode.vdisplay;
  const primary = res.planes.find((p) => p.type === 'primary')!;
  const overlays = res.planes.filter((p) => p.type === 'overlay').slice(0, 3);
  t.equal(overlays.length, 3, 'three overlays');
  for (const o of overlays) t.ok(o.formats.has(XR24, DRM_FORMAT_MOD_LINEAR), `overlay ${o.id} takes XRGB8888/LINEAR`);

  // sources: vgem dumb (exported), udmabuf, system heap
  const vgemBuf = DumbBuffer.create(vgem, { width: S, height: S, bpp: 32 });
  t.equal(vgemBuf.pitch, PITCH, 'vgem pitch is width*4');
  const fromVgem = vgemBuf.exportDmabuf();
  const udmabuf = UdmabufAllocator.open();
  const fromUdmabuf = udmabuf.allocate(PITCH * S);
  const heap = DmaHeap.open('system');
  const fromHeap = heap.allocate(PITCH * S);
  t.equal(fromUdmabuf.size, BigInt(PITCH * S), 'udmabuf size by lseek');
  t.equal(fromHeap.size, BigInt(PITCH * S), 'heap buffer size by lseek');
  const patterns = [pattern(0x11), pattern(0x22), pattern(0x33)];
  const sources = [fromVgem, fromUdmabuf, fromHeap];
  sources.forEach((d, i) => writeDmabuf(d, patterns[i]!));

  // import into vkms, framebuffers
  const handles: GemHandle[] = sources.map((d) => vkms.importDmabuf(d));
  t.equal(new Set(handles.map((h) => h.handle)).size, 3, 'three distinct GEM objects');
  const fbs = handles.map((h) => Framebuffer.create(vkms, { width: S, height: S, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: h, pitch: PITCH }] }));
  for (const h of handles) h.close(); // the framebuffers hold their own references
  for (const d of sources) d.close(); // and the imported objects outlive the dma-buf fds

  // primary: a vkms dumb buffer in one colour; writeback target: a vkms dumb buffer
  const bg = 0xff203040;
  const prim = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const pm = prim.map();
  fill(pm.bytes(), prim.pitch, W, H, bg);
  pm.close();
  const primFb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: prim.handle, pitch: prim.pitch }] });
  const out = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const om = out.map();
  fill(om.bytes(), out.pitch, W, H, 0xffffffff); // not what the capture writes anywhere
  const outFb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
  const modeBlob = PropertyBlob.fromMode(vkms, mode);

  const positions = [
    [16, 16],
    [W - S - 16, 32],
    [(W - S) >> 1, H - S - 8],
  ] as const;
  const build = (withVirtual: boolean) => {
    const req = vkms.atomic().set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1);
    if (withVirtual) req.set(virt.id, 'CRTC_ID', crtc.id);
    placePlane(req, primary.id, crtc.id, primFb, 0, 0, W, H);
    overlays.forEach((o, i) => placePlane(req, o.id, crtc.id, fbs[i]!, positions[i]![0], positions[i]![1], S, S));
    return addWriteback(req, wb.id, crtc.id, outFb);
  };
  let req = build(true);
  const check = req.check({ allowModeset: true });
  if (!check.ok) {
    t.comment(`Virtual-1 + Writeback-1 refused together (${check.error.code}: stock vkms clone check); capturing with Writeback-1 alone`);
    req = build(false);
  }
  req.test({ allowModeset: true });
  t.pass('TEST_ONLY accepts the frame');

  // one commit; wait for the flip event and the writeback fence on the loop
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const t0 = process.hrtime.bigint();
  const { fences, flip } = req.commit({ allowModeset: true });
  const fence = fences[0];
  t.ok(fence, 'the kernel returned a writeback out-fence');
  const [events] = await Promise.all([flip, fence!.wait(5000)]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(ticker);
  t.ok(fence!.signaled, 'the out-fence signaled');
  t.ok(ticks > 0, `the event loop kept running while waiting (${ticks} timer ticks in ${ms.toFixed(1)} ms)`);
  t.equal(events.length, 1, 'one page-flip event for the one CRTC');
  t.equal(events[0]!.crtcId, crtc.id);
  t.comment(`commit to writeback fence: ${ms.toFixed(1)} ms`);
  fence!.close();

  // compare every pixel (RGB; the X byte is don't-care)
  const got = new DataView(om.bytes().buffer);
  let mismatches = 0;
  let first = '';
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let want = bg;
      positions.forEach(([px, py], i) => {
        if (x >= px && x < px + S && y >= py && y < py + S) want = patterns[i]!(x - px, y - py);
      });
      const v = got.getUint32(y * out.pitch + x * 4, true);
      if ((v & 0xffffff) !== (want & 0xffffff)) {
        if (mismatches++ === 0) first = `(${x},${y}) got 0x${v.toString(16)} want 0x${want.toString(16)}`;
      }
    }
  }
  t.equal(mismatches, 0, `writeback matches all ${W * H} pixels${first ? `; first mismatch ${first}` : ''}`);
  om.close();

  disableAll(vkms, res);
  for (const f of [...fbs, primFb, outFb]) f.close();
  modeBlob.close();
  prim.close();
  out.close();
  vgemBuf.close();
  heap.close();
  udmabuf.close();
  vgem.close();
  vkms.close();
});

leakFree(t, 'close({ keepOnScreen }) on the primary plane: CLOSEFB keeps it on screen until the next commit replaces it', async (t) => {
  const vkms = openDriver('vkms');
  const { res, crtc, virt, mode, W, H, primary } = primaryOutput(vkms);
  const bufA = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const bufB = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const fbA = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: bufA.handle, pitch: bufA.pitch }] });
  const fbB = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: bufB.handle, pitch: bufB.pitch }] });
  const modeBlob = PropertyBlob.fromMode(vkms, mode);
  const show = (fb: Framebuffer, modeset: boolean) => {
    const req = vkms.atomic();
    if (modeset) req.set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1).set(virt.id, 'CRTC_ID', crtc.id);
    placePlane(req, primary.id, crtc.id, fb, 0, 0, W, H);
    req.commitBlocking({ allowModeset: modeset });
  };
  const planeFb = () => native.drmGetPlane(vkms.fd, primary.id).fbId;
  const inKernel = (id: number) => Object.values(kernelFramebuffers()).some((ids) => ids.includes(id));

  show(fbA, true);
  t.equal(planeFb(), fbA.id, 'fb A is on the primary plane');
  const live = liveFramebufferCount();
  const idA = fbA.id;
  fbA.close({ keepOnScreen: true });
  t.equal(fbA.removedWith, 'CLOSEFB', 'removed with CLOSEFB (6.12 has it)');
  t.equal(liveFramebufferCount(), live - 1, 'gone from primebuf\'s count');
  t.equal(planeFb(), idA, 'the plane still shows fb A (GETPLANE)');
  const planeProps = native.drmGetObjectProperties(vkms.fd, primary.id, DRM_MODE_OBJECT.PLANE);
  const fbProp = planeProps.find((p) => vkms.propertyInfo(p.id).name === 'FB_ID');
  t.equal(fbProp?.value, BigInt(idA), 'and so does its FB_ID property');
  t.ok(inKernel(idA), 'the kernel keeps fb A while it is on screen (debugfs framebuffer list)');
  const e = t.throws(() => native.drmRmFB(vkms.fd, idA)) as { code?: string };
  t.equal(e.code, 'ENOENT', 'the id is no longer ours to remove');
  t.equal(vkms.gemHandleRefs(bufA.handle.handle), 1, 'fb A gave back its GEM handle reference');

  show(fbB, false);
  t.equal(planeFb(), fbB.id, 'the next commit put fb B on the plane');
  t.notOk(inKernel(idA), 'and the kernel let go of fb A');

  disableAll(vkms, res);
  fbB.close();
  modeBlob.close();
  bufA.close();
  bufB.close();
  vkms.close();
});
