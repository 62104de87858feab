// Host test of the framebuffer cache's memory of refusals (no DRM here: the "device" is a FIFO,
// so AddFB2 fails with ENOTTY): a refused buffer is answered from the cache, not retried; a new
// description under the same key is tried again; forget() drops the entry.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import type { Device } from '../../src/kms/device.js';
import { FramebufferCache } from '../../src/kms/fb-cache.js';
import { GemHandle, GemHandleTable } from '../../src/kms/gem.js';

t.test('a refusal is remembered per key and layout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-fbcache-'));
  execFileSync('mkfifo', [join(dir, 'f')]);
  const fd = openSync(join(dir, 'f'), constants.O_RDWR | constants.O_NONBLOCK);
  const table = new GemHandleTable(fd, 'fake');
  t.teardown(() => {
    table.invalidate();
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  table.ref(5);
  const handle = new GemHandle(table, 5);
  const dev = { fd, name: 'fake', closed: false } as unknown as Device;
  const cache = new FramebufferCache(dev);
  const desc = { width: 64, height: 64, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle, pitch: 256 }] };
  const key = {};
  const r1 = cache.get(key, desc);
  t.equal(r1.ok, false);
  if (r1.ok) return;
  // AddFB2 failing with ENOTTY (no such ioctl) sends Framebuffer.create to the legacy AddFB
  // for XRGB8888 (bpp 32, depth 24); on the FIFO that fails too, and that is the answer.
  t.equal(r1.error.syscall, 'DRM_IOCTL_MODE_ADDFB', 'the legacy fallback was tried');
  t.equal(r1.error.code, 'ENOTTY');
  t.match(r1.error.message, /bpp 32/);
  t.equal(table.count(5), 1, 'the failed attempt gave its handle reference back');
  const r2 = cache.get(key, desc);
  t.equal(r2, r1, 'the same answer, without asking the kernel again');
  const r3 = cache.get(key, { ...desc, planes: [{ handle, pitch: 512 }] });
  t.not(r3, r1, 'a new layout is a new attempt');
  const r4 = cache.get({}, { ...desc, planes: [{ handle, pitch: 256, offset: 4096 }] });
  t.equal(!r4.ok && r4.error.syscall, 'DRM_IOCTL_MODE_ADDFB2', 'no legacy fallback for a layout AddFB cannot express (offset)');
  t.ok(cache.has(key));
  t.equal(cache.size, 2, 'two keys');
  cache.forget(key);
  t.equal(cache.size, 1);
  t.notOk(cache.has(key));
  cache.close();
  t.equal(cache.size, 0);
});
