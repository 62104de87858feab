// Conformance: GBM (optional at build time, graceful at run time) on vkms: a scanout bo's plane
// dma-bufs import into vkms and make a framebuffer; the pool adapter produces a Backing that
// owns its memory; nothing leaks.
import t from 'tap';
import { gbmPoolAllocator } from '../../src/alloc/backends/allocators.js';
import { GbmDevice, gbmBuilt, GBM_BO_USE_LINEAR, GBM_BO_USE_SCANOUT } from '../../src/alloc/backends/gbm.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { linearLayout } from '../../src/constraints/solve.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { SystemError } from '../../src/errors.js';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { native, testNative } from '../../src/native.js';
import { openDriver } from './devices-util.js';
import { leakFree, snapshot } from './leak.js';

const XR24 = fourcc('XRGB8888');

t.test('the addon was built with GBM (libgbm-dev is a build dependency)', async (t) => {
  t.ok(gbmBuilt(), 'PRIMEBUF_HAVE_GBM');
});

leakFree(t, 'a GBM scanout bo on vkms imports and becomes a framebuffer', async (t) => {
  const vkms = openDriver('vkms');
  const gbm = GbmDevice.create(vkms);
  t.ok(gbm.backend.length > 0, `GBM backend: ${gbm.backend}`);
  t.ok(gbm.isFormatSupported(XR24, GBM_BO_USE_SCANOUT), 'XRGB8888 scanout supported');
  // Explicit modifiers need driver support: Mesa's kms_swrast (GBM's backend on vkms, Debian 12's
  // Mesa) has none, so gbm_bo_create_with_modifiers2 fails (EINVAL) and nothing is left behind.
  const fds = testNative.countOpenFds();
  const err = t.throws(() => gbm.createBo(64, 64, XR24, [DRM_FORMAT_MOD_LINEAR], GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR), SystemError, 'an explicit LINEAR modifier is refused') as unknown as SystemError;
  t.match(err, { code: 'EINVAL', syscall: 'gbm_bo_create' }, `the refusal is the driver's EINVAL from gbm_bo_create (${err.message})`);
  t.equal(testNative.countOpenFds(), fds, 'the refused bo left no fd');
  const bo = gbm.createBo(256, 128, XR24, null, GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR);
  // Without modifier support GBM reports the implicit modifier; the layout is linear by GBM_BO_USE_LINEAR.
  t.equal(bo.modifier, DRM_FORMAT_MOD_INVALID, `modifier 0x${bo.modifier.toString(16)}: implicit (kms_swrast reports no modifier)`);
  t.equal(bo.planes.length, 1);
  t.ok(bo.planes[0]!.stride >= 1024, `stride ${bo.planes[0]!.stride}`);
  const h = vkms.importDmabuf(bo.planes[0]!.dmabuf);
  const fb = Framebuffer.create(vkms, { width: 256, height: 128, format: XR24, modifier: bo.modifier, planes: [{ handle: h, pitch: bo.planes[0]!.stride, offset: bo.planes[0]!.offset }] });
  t.ok(fb.id > 0, 'AddFB2 accepted the GBM buffer');
  h.close();
  fb.close();
  bo.close();
  bo.close();
  gbm.close();
  vkms.close();
});

leakFree(t, 'the GBM pool adapter allocates a LINEAR backing that maps and exports', async (t) => {
  const vkms = openDriver('vkms');
  const al = gbmPoolAllocator(vkms, [DRM_FORMAT_MOD_LINEAR]);
  const rules = { pitchAlign: 1, offsetAlign: 1, sizeAlign: 1, widthAlign: 1, heightAlign: 1 };
  const layout = linearLayout(rules, 64, 64, XR24);
  t.ok(al.canAllocate(XR24, DRM_FORMAT_MOD_LINEAR));
  const b = al.allocate({ allocator: al.caps.name, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, width: 64, height: 64, layout, rules, writeCombine: true });
  t.equal(b.description.modifier, DRM_FORMAT_MOD_LINEAR);
  t.equal(b.description.allocatedOn, vkms.name);
  const fd = b.exportFd();
  const h = vkms.importDmabuf(fd.fd);
  t.ok(h.handle > 0);
  h.close();
  fd.close();
  const bytes = b.map();
  t.ok(bytes.byteLength >= 64 * 64 * 4, 'maps the whole buffer (gbm_bo_map)');
  bytes[0] = 1;
  t.equal(b.map()[0], 1, 'one mapping, kept until close');
  b.close();
  al.close();
  vkms.close();
});

/** What a kernel call did: 'ok', or the error's code and syscall. */
function outcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof SystemError ? `${err.code} from ${err.syscall}` : String(err);
  }
}

leakFree(t, 'a GBM bo keeps its GEM handle when its dma-buf is imported into the same device and the import is closed', async (t) => {
  const vkms = openDriver('vkms');
  const gbm = GbmDevice.create(vkms);
  const bo = gbm.createBo(64, 64, XR24, null, GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR);
  const h = vkms.importDmabuf(bo.planes[0]!.dmabuf);
  t.ok(h.handle > 0);
  h.close();
  // libgbm's handle must still name the bo: PRIME export through it works.
  const exported = outcome(() => native.closeFd(native.drmPrimeHandleToFd(gbm.fd, bo.planes[0]!.gbmHandle, false)));
  t.equal(exported, 'ok', 'PRIME export of the bo through libgbm\'s handle after the import was closed');
  // A buffer made next on the device must survive gbm_bo_destroy (no stale, reused handle closed).
  const dumb = DumbBuffer.create(vkms, { width: 64, height: 64, bpp: 32 });
  bo.close();
  const dumbExport = outcome(() => dumb.exportDmabuf().close());
  t.equal(dumbExport, 'ok', `the next dumb buffer (GEM handle ${dumb.handle.handle}) is intact after the bo was destroyed`);
  t.equal(outcome(() => dumb.close()), 'ok', 'and closes cleanly');
  gbm.close();
  vkms.close();
});

t.test('the leak check sees a live GBM bo', async (t) => {
  const vkms = openDriver('vkms');
  const gbm = GbmDevice.create(vkms);
  const before = snapshot();
  const bo = gbm.createBo(64, 64, XR24, null, GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR);
  const during = snapshot();
  t.ok(during.gemHandles > before.gemHandles, `GEM handles counted with the bo alive (${before.gemHandles} -> ${during.gemHandles})`);
  bo.close();
  t.same(snapshot(), before, 'everything back once the bo is closed');
  gbm.close();
  vkms.close();
});

leakFree(t, 'a bo outlives its GbmDevice and its Device; its close then releases libgbm\'s device and fd', async (t) => {
  const vkms = openDriver('vkms');
  const gbm = GbmDevice.create(vkms);
  const bo = gbm.createBo(64, 64, XR24, null, GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR);
  const fdsWithBo = testNative.countOpenFds();
  gbm.close();
  t.equal(testNative.countOpenFds(), fdsWithBo, 'libgbm\'s own fd stays open while a bo lives');
  vkms.close();
  t.ok((bo.planes[0]!.dmabuf.trySize() ?? 0n) >= 64n * 64n * 4n, 'the bo\'s dma-buf still works');
  bo.close();
  bo.close();
});
