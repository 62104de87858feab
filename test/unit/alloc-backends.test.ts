// Host tests of the allocator backends' ownership (no DRM here: a memfd stands in for the
// dma-buf): a Backing owns one fd, hands out independent duplicates, maps once, closes its
// keep-alive objects, and is idempotent; the GBM backend is optional and says so.
import t from 'tap';
import { DmabufBacking, gbmBuilt, liveBackings, nameDmabuf } from '../../src/alloc/backends/index.js';
import { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import { ClosedError, NativeUnavailableError, SystemError } from '../../src/errors.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { native, testNative } from '../../src/native.js';

function memfdDmabuf(size: number): Dmabuf {
  const fd = native.memfdCreate('backing', true);
  native.ftruncateFd(fd, size);
  return new Dmabuf(fd, 'memfd');
}

const desc = {
  width: 64,
  height: 64,
  format: fourcc('XRGB8888'),
  modifier: DRM_FORMAT_MOD_LINEAR,
  allocWidth: 64,
  allocHeight: 64,
  planes: [{ offset: 0n, pitch: 256n }],
  size: 16384n,
  allocator: 'test',
  contiguous: false,
  cpuCache: 'cached' as const,
};

t.test('DmabufBacking owns one fd, exports duplicates, maps once, closes what it keeps', async (t) => {
  const base = testNative.countOpenFds();
  let kept = 0;
  const b = new DmabufBacking(desc, memfdDmabuf(16384), [{ close: () => kept++ }]);
  const e1 = b.exportFd();
  const e2 = b.exportFd();
  t.not(e1.fd, e2.fd);
  t.equal(testNative.countOpenFds(), base + 3);
  const m = b.map();
  m[0] = 7;
  t.equal(b.map()[0], 7, 'the same mapping on the second call');
  t.equal(m.byteLength, 16384);
  const err = t.throws(() => b.sync({ phase: 'start', read: true, write: true })) as SystemError;
  t.equal(err.syscall, 'DMA_BUF_IOCTL_SYNC', 'sync reaches the ioctl (ENOTTY on a memfd)');
  b.close();
  b.close();
  t.ok(b.closed);
  t.equal(kept, 1, 'keep-alive objects closed exactly once');
  t.equal(m.byteLength, 0, 'the mapping was unmapped (view detached)');
  t.throws(() => b.exportFd(), ClosedError);
  t.equal(testNative.countOpenFds(), base + 2, 'exported fds belong to their receivers');
  e1.close();
  e2.close();
  t.equal(testNative.countOpenFds(), base);
});

t.test('a dma-buf name is best effort, and open backings are counted per allocator until closed', async (t) => {
  const base = testNative.countOpenFds();
  const d = memfdDmabuf(16384);
  t.throws(() => d.setName('x'), SystemError, 'a memfd refuses DMA_BUF_SET_NAME');
  t.doesNotThrow(() => nameDmabuf(d, desc), 'naming a buffer does not fail its allocation');
  const before = liveBackings('test');
  const b = new DmabufBacking(desc, d);
  t.equal(liveBackings('test'), before + 1);
  t.equal(liveBackings(), liveBackings('test'), 'no other allocator has open backings here');
  b.close();
  b.close();
  t.equal(liveBackings('test'), before, 'counted down once');
  t.equal(testNative.countOpenFds(), base);
});

t.test('GBM is optional: built flag reported, and GbmDevice says why it is unavailable', async (t) => {
  t.type(gbmBuilt(), 'boolean');
  const { GbmDevice } = await import('../../src/alloc/backends/gbm.js');
  if (!gbmBuilt()) {
    t.throws(() => GbmDevice.create({} as never), NativeUnavailableError);
  } else {
    t.equal(typeof native.gbmCreateDevice, 'function', 'the addon exposes GBM');
    // /dev/null is no DRM device. Debian 12's Mesa (22.3) does not refuse it: its loader finds no
    // driver name for the fd and GBM falls back to its software path, so a device is made (backend
    // "drm") and destroyed, without a crash and without an error.
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync('/dev/null', 'r+');
    t.teardown(() => closeSync(fd));
    const fds = testNative.countOpenFds();
    const g = native.gbmCreateDevice!(fd);
    t.equal(native.gbmBackendName!(g), 'drm', 'gbm on a non-DRM fd: the software fallback, backend "drm"');
    native.gbmDestroyDevice!(g);
    t.equal(testNative.countOpenFds(), fds, 'destroying it leaves no fd');
  }
});
