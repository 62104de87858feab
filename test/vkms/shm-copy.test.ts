// Conformance: a wl_shm buffer through the copy path on the real kernel. A client's XBGR8888
// wl_shm buffer (a format no vkms plane takes) is copied by its copySource (primebuf's wl_shm) from its pool straight
// into a vkms dumb buffer (XRGB8888) inside a DMA_BUF_IOCTL_SYNC write bracket, shown on the
// primary plane, and the writeback capture matches pixel for pixel. Then the client truncates
// its pool: the next copy rejects with the typed error, the bracket still ends, the client gets
// wl_shm invalid_fd, and nothing leaks.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { addWriteback } from '../../src/kms/writeback.js';
import { native } from '../../src/native.js';
import { newCopyStats, type CopySurface } from '../../src/scanout/copy.js';
import { fullDamage } from '../../src/scanout/damage.js';
import { ProtocolError, WL_SHM_ERROR, isShmTruncated } from '../../src/wayland/index.js';
import { compositor, shmClient } from '../util/shm-client.js';
import { openDriver } from './devices-util.js';
import { disableAll, placePlane, primaryOutput } from './kms-util.js';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');

/** The client's XBGR8888 pixel (little-endian u32: X, B, G, R from the top byte down). */
function pixelOf(x: number, y: number): number {
  return (0x3c000000 | ((x * 5 + y) & 0xff) << 16 | ((x ^ (y * 3)) & 0xff) << 8 | ((x + y * 7) & 0xff)) >>> 0;
}

leakFree(t, 'wl_shm XBGR8888 -> vkms dumb buffer by its copySource: writeback exact; a truncated pool: typed error, invalid_fd', async (t) => {
  const vkms = openDriver('vkms');
  const { res, crtc, virt, mode, W, H, primary } = primaryOutput(vkms);
  const wb = res.connectors.find((c) => c.writeback)!;
  t.ok(wb, 'a writeback connector');
  t.notOk(primary.formats.has(XB24, DRM_FORMAT_MOD_LINEAR), 'the primary plane does not take XBGR8888: the copy is needed');

  // the compositor and its client, in this process
  const pixels = new Uint8Array(W * 4 * H);
  const pv = new DataView(pixels.buffer);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) pv.setUint32((y * W + x) * 4, pixelOf(x, y), true);
  const { server, attached } = compositor([XB24]);
  const { conn, memfd, shm, copy } = await shmClient(server, attached, { width: W, height: H, stride: W * 4, format: XB24, offset: 0, pixels });
  t.same({ width: shm.width, height: shm.height, stride: shm.stride, format: shm.format }, { width: W, height: H, stride: W * 4, format: XB24 }, 'its geometry and DRM fourcc');

  // the scanout buffer and the capture target
  const dumb = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const map = dumb.map();
  const dmabuf = dumb.exportDmabuf();
  const fb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: dumb.handle, pitch: dumb.pitch }] });
  const dst: CopySurface = { memory: map, dmabuf, format: XR24, stride: dumb.pitch, width: W, height: H };
  const out = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const outMap = out.map();
  const outFb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
  const modeBlob = PropertyBlob.fromMode(vkms, mode);

  const stats = newCopyStats();
  const bytes = await copy(dst, fullDamage(W, H), { stats });
  t.equal(bytes, W * H * 4, 'the whole buffer copied');
  t.equal(stats.syncCalls, 2, 'START and END on the scanout buffer only: a wl_shm pool is no dma-buf');

  const build = (withVirtual: boolean) => {
    const req = vkms.atomic().set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1);
    if (withVirtual) req.set(virt.id, 'CRTC_ID', crtc.id);
    placePlane(req, primary.id, crtc.id, fb, 0, 0, W, H);
    return addWriteback(req, wb.id, crtc.id, outFb);
  };
  let req = build(true);
  if (!req.check({ allowModeset: true }).ok) {
    t.comment('Virtual-1 + Writeback-1 refused together (stock vkms); capturing with Writeback-1 alone');
    req = build(false);
  }
  outMap.bytes().fill(0xff);
  const { fences, flip } = req.commit({ allowModeset: true });
  await Promise.all([flip, fences[0]!.wait(5000)]);
  fences[0]!.close();
  const got = new DataView(outMap.buffer);
  let bad = 0;
  let first = '';
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = pixelOf(x, y);
      const want = ((p & 0xff) << 16) | (p & 0xff00) | ((p >>> 16) & 0xff); // XBGR -> XRGB
      const v = got.getUint32(y * out.pitch + x * 4, true) & 0xffffff;
      if (v !== want && bad++ === 0) first = `; first (${x},${y}) got 0x${v.toString(16)} want 0x${want.toString(16)}`;
    }
  }
  t.equal(bad, 0, `writeback capture: all ${W * H} pixels converted exactly${first}`);

  // the client truncates its pool (it did not seal it)
  native.ftruncateFd(memfd.fd, 0);
  const err = await copy(dst, [{ x: 0, y: H / 2, width: W, height: H / 2 }], { stats }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isShmTruncated(err), `the copy rejects with SystemError EFAULT/SIGBUS (${String(err)})`);
  t.equal(stats.syncCalls, 4, 'the scanout buffer\'s write bracket still ended');
  t.equal(stats.copies, 1, 'the failed copy is not counted');
  const pe = await conn.roundtrip().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(pe instanceof ProtocolError && pe.code === WL_SHM_ERROR.invalid_fd, `the client gets wl_shm invalid_fd (${String(pe)})`);

  disableAll(vkms, res);
  conn.close();
  server.close();
  memfd.close();
  modeBlob.close();
  outFb.close();
  outMap.close();
  out.close();
  fb.close();
  map.close();
  dmabuf.close();
  dumb.close();
  vkms.close();
});
