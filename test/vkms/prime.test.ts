// Conformance: PRIME import with a counted handle table. The kernel returns the same GEM handle
// for the same dma-buf and does not count; primebuf does: closing one reference keeps the
// handle alive for the other, the last close frees it in the kernel.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { SystemError } from '../../src/errors.js';
import { fourcc, DRM_FORMAT_MOD_LINEAR } from '../../src/formats/index.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { native } from '../../src/native.js';
import { openDriver } from './devices-util.js';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');

/** Whether `handle` exists on the device: PRIME export succeeds only for a live handle. */
function alive(fd: number, handle: number): boolean {
  try {
    native.closeFd(native.drmPrimeHandleToFd(fd, handle, false));
    return true;
  } catch (err) {
    if (err instanceof SystemError && err.code === 'ENOENT') return false;
    throw err;
  }
}

leakFree(t, 'vgem buffer imported twice into vkms: one handle, counted', async (t) => {
  const vgem = openDriver('vgem');
  const vkms = openDriver('vkms');
  const src = DumbBuffer.create(vgem, { width: 256, height: 256, bpp: 32 });
  const dmabuf = src.exportDmabuf();
  const a = vkms.importDmabuf(dmabuf);
  const b = vkms.importDmabuf(dmabuf.fd);
  t.equal(a.handle, b.handle, 'the kernel gave the same handle twice');
  t.equal(vkms.gemHandleCount, 1, 'one distinct handle in the table');
  t.equal(a.refCount, 2, 'two references');
  // a second dma-buf fd of the same buffer (another export) still maps to the same handle
  const dmabuf2 = src.exportDmabuf();
  const c = vkms.importDmabuf(dmabuf2);
  t.equal(c.handle, a.handle, 'a second export of the same buffer is the same GEM object');
  t.equal(a.refCount, 3);
  dmabuf.close();
  dmabuf2.close();
  a.close();
  t.ok(alive(vkms.fd, b.handle), 'closing one reference keeps the kernel handle');
  const fb = Framebuffer.create(vkms, { width: 256, height: 256, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: b, pitch: src.pitch }] });
  t.ok(fb.id > 0, 'the remaining reference is usable (AddFB2)');
  c.close();
  b.close();
  t.ok(alive(vkms.fd, b.handle), 'the framebuffer still holds the handle');
  t.equal(vkms.gemHandleRefs(b.handle), 1);
  const h = b.handle;
  fb.close();
  t.equal(vkms.gemHandleCount, 0, 'the table is empty');
  t.notOk(alive(vkms.fd, h), 'the last close freed the kernel handle (PRIME export: ENOENT)');
  b.close();
  c.close();
  src.close();
  vkms.close();
  vgem.close();
});

leakFree(t, 'self-import: a dumb buffer re-imported from its own dma-buf is its own handle', async (t) => {
  const vkms = openDriver('vkms');
  const buf = DumbBuffer.create(vkms, { width: 64, height: 64, bpp: 32 });
  const d = buf.exportDmabuf();
  const again = vkms.importDmabuf(d);
  t.equal(again.handle, buf.handle.handle, 'same handle as the dumb buffer');
  t.equal(vkms.gemHandleRefs(again.handle), 2);
  buf.close();
  t.ok(alive(vkms.fd, again.handle), 'the import keeps the buffer after the dumb owner closed');
  const exported = vkms.exportDmabuf(again);
  const m = exported.map();
  t.equal(m.length >= 64 * 64 * 4, true, 'and it still maps');
  m.close();
  exported.close();
  const h = again.handle;
  again.close();
  t.notOk(alive(vkms.fd, h), 'gone after the last reference');
  d.close();
  vkms.close();
});

leakFree(t, 'closing the device invalidates outstanding references without double frees', async (t) => {
  const vgem = openDriver('vgem');
  const vkms = openDriver('vkms');
  const src = DumbBuffer.create(vgem, { width: 64, height: 64, bpp: 32 });
  const d = src.exportDmabuf();
  const a = vkms.importDmabuf(d);
  const b = a.ref();
  vkms.close();
  a.close(); // no GEM_CLOSE on a closed fd: would hit a recycled fd number
  b.close();
  t.ok(a.closed && b.closed);
  t.throws(() => vkms.importDmabuf(d), /closed/);
  d.close();
  src.close();
  vgem.close();
});

leakFree(t, 'importing something that is not a dma-buf is a typed error', async (t) => {
  const vkms = openDriver('vkms');
  const memfd = native.memfdCreate('not-a-dmabuf', false);
  const e = t.throws(() => vkms.importDmabuf(memfd)) as SystemError;
  t.ok(e instanceof SystemError);
  t.equal(e.syscall, 'DRM_IOCTL_PRIME_FD_TO_HANDLE');
  t.equal(e.code, 'EINVAL');
  t.equal(vkms.gemHandleCount, 0);
  native.closeFd(memfd);
  vkms.close();
});
