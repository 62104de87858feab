// Host tests of the dma-buf layer that need no DRM: CPU mappings own their memory and unmap
// exactly once (a kept view reads as empty, not as freed memory), Dmabuf's size comes from
// lseek, ioctls on the wrong kind of fd are typed errors, the IN_FORMATS blob codec, and the
// libuv fd watch fires on the loop.
import t, { type Test } from 'tap';
import { ClosedError, SystemError } from '../../src/errors.js';
import { Dmabuf, Mapping, SyncFile } from '../../src/dmabuf/index.js';
import { decodeInFormats, encodeInFormats } from '../../src/kms/in-formats.js';
import { native, testNative } from '../../src/native.js';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function memfd(size: number): number {
  const fd = native.memfdCreate('primebuf-test', true);
  native.ftruncateFd(fd, size);
  return fd;
}

t.test('Mapping: shared memory, unmap exactly once, views detached after close', async (t) => {
  const base = testNative.countOpenFds();
  const fd = memfd(8192);
  const m = Mapping.map(fd, 0, 8192);
  const m2 = Mapping.map(fd, 4096, 4096);
  native.closeFd(fd); // a mapping outlives its fd
  const view = m.bytes();
  view[4096] = 0xab;
  view[4097] = 0xcd;
  t.equal(m2.bytes()[0], 0xab, 'both mappings see the same pages');
  t.equal(m2.bytes()[1], 0xcd);
  t.equal(m.toBuffer().length, 8192);
  m.close();
  m.close();
  t.equal(view.byteLength, 0, 'a kept view is detached, not dangling');
  t.throws(() => m.bytes(), ClosedError);
  t.throws(() => m.buffer, ClosedError);
  t.equal(m2.bytes()[0], 0xab, 'the other mapping is untouched');
  m2[Symbol.dispose]();
  t.equal(testNative.countOpenFds(), base);
});

t.test('Mapping rejects zero or unsafe lengths, mmap errors are typed', async (t) => {
  const fd = memfd(4096);
  t.teardown(() => native.closeFd(fd));
  t.throws(() => Mapping.map(fd, 0, 0), RangeError);
  const e = t.throws(() => Mapping.map(fd, 3, 4096)) as SystemError; // offset not page aligned
  t.ok(e instanceof SystemError);
  t.equal(e.code, 'EINVAL');
  t.equal(e.syscall, 'mmap');
});

t.test('Dmabuf: size by lseek, owns its fd, typed errors for ioctls on a non-dma-buf', async (t) => {
  const base = testNative.countOpenFds();
  const d = new Dmabuf(memfd(12288), 'memfd stand-in');
  t.equal(d.size, 12288n);
  const m = d.map();
  t.equal(m.length, 12288);
  m.close();
  const e = t.throws(() => d.beginCpuAccess('rw')) as SystemError;
  t.ok(e instanceof SystemError);
  t.equal(e.syscall, 'DMA_BUF_IOCTL_SYNC');
  t.equal(e.code, 'ENOTTY');
  const e2 = t.throws(() => d.exportSyncFile()) as SystemError;
  t.equal(e2.syscall, 'DMA_BUF_IOCTL_EXPORT_SYNC_FILE');
  const dup = d.dup();
  t.not(dup.fd, d.fd);
  dup.close();
  d.close();
  d.close();
  t.throws(() => d.size, ClosedError);
  t.equal(testNative.countOpenFds(), base);
});

t.test('memfd seals: a shrink-sealed memfd (udmabuf needs it) cannot shrink', async (t) => {
  const fd = memfd(8192);
  t.teardown(() => native.closeFd(fd));
  native.addSeals(fd, 2); // F_SEAL_SHRINK
  t.equal(native.getSeals(fd) & 2, 2);
  const e = t.throws(() => native.ftruncateFd(fd, 4096)) as SystemError;
  t.equal(e.code, 'EPERM');
  native.ftruncateFd(fd, 16384); // growing is still allowed
});

t.test('IN_FORMATS blob: encode/decode round trip, windows beyond 64 formats', async (t) => {
  const XR24 = 0x34325258;
  const AR24 = 0x34325241;
  const pairs = [
    { format: AR24, modifier: 0n },
    { format: XR24, modifier: 0n },
    { format: XR24, modifier: 0x0100000000000001n },
  ];
  const blob = encodeInFormats(pairs);
  const back = decodeInFormats(blob);
  const key = (p: { format: number; modifier: bigint }): string => `${p.format}:${p.modifier}`;
  t.same(back.map(key).sort(), pairs.map(key).sort());
  // 70 formats: the modifier needs two windows (offset 0 and 64)
  const many = Array.from({ length: 70 }, (_, i) => ({ format: 0x1000 + i, modifier: 0n }));
  const back2 = decodeInFormats(encodeInFormats(many));
  t.equal(back2.length, 70);
  t.same(back2.map((p) => p.format).sort((a, b) => a - b), many.map((p) => p.format));
  t.throws(() => decodeInFormats(new Uint8Array(10)));
  const bad = encodeInFormats(pairs);
  new DataView(bad.buffer).setUint32(0, 2, true);
  t.throws(() => decodeInFormats(bad), /version 2/);
});

/** A FIFO opened read-write and non-blocking (idle until written), removed at the end of `t`. */
function fifo(t: Test): number {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', [join(dir, 'f')]);
  const fd = openSync(join(dir, 'f'), constants.O_RDWR | constants.O_NONBLOCK);
  t.teardown(() => closeSync(fd));
  return fd;
}

t.test('FdWatch: readiness is delivered on the event loop and stop() ends it', async (t) => {
  const fd = fifo(t);
  let calls = 0;
  let written = false;
  const fired = new Promise<void>((resolve) => {
    const watch = new native.FdWatch(fd, false, (status, events) => {
      calls++;
      t.ok(written, 'not readable before the write');
      t.equal(status, 0);
      t.ok(events & 1, 'readable');
      watch.stop();
      t.equal(watch.active, false);
      resolve();
    });
    t.equal(watch.active, true);
  });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(calls, 0, 'nothing fires while the fd is idle');
  written = true;
  writeSync(fd, 'x');
  await fired;
  await new Promise((r) => setTimeout(r, 20));
  t.equal(calls, 1, 'stopped watches stay quiet');
});

t.test('SyncFile.wait: concurrent waiters share one poll, each with its own timeout; close rejects the rest', async (t) => {
  // A FIFO stands in for the fence: it becomes readable when written, as a sync_file does when
  // it signals. It is not a sync_file, so the status check after the wake-up fails (ENOTTY):
  // what matters here is that every waiter is woken by the one poll, together.
  const fd = fifo(t);
  const base = testNative.countOpenFds();
  const s = new SyncFile(native.dupFd(fd), 'fifo stand-in');
  const settled: string[] = [];
  const track = (name: string, p: Promise<void>): Promise<void> =>
    p.then(
      () => void settled.push(`${name}:resolved`),
      (e: Error & { code?: string; syscall?: string }) => void settled.push(`${name}:${e.name}:${e.code}:${e.syscall ?? ''}`),
    );
  const a = track('a', s.wait());
  const b = track('b', s.wait());
  const c = track('c', s.wait(30));
  await c;
  t.same(settled, ['c:TimeoutError:ETIMEDOUT:'], 'only the waiter with a timeout gave up; the other two still wait');
  writeSync(fd, 'x');
  await Promise.all([a, b]);
  t.same(settled.slice(1).sort(), ['a:SystemError:ENOTTY:SYNC_IOC_FILE_INFO', 'b:SystemError:ENOTTY:SYNC_IOC_FILE_INFO'],
    'both waiters were woken by the readiness (and got the status check\'s typed error)');
  const probe = new native.FdWatch(s.fd, false, () => undefined);
  probe.stop();
  t.pass('no poll is left on the fd once its waiters are gone (a new uv_poll on it is accepted)');
  readSync(fd, Buffer.alloc(1));
  const lone = s.wait(20);
  await t.rejects(lone, { name: 'TimeoutError', code: 'ETIMEDOUT' });
  const probe2 = new native.FdWatch(s.fd, false, () => undefined);
  probe2.stop();
  t.pass('a waiter that timed out leaves no poll behind');
  const d = s.wait();
  const e = s.wait(60_000);
  s.close();
  await t.rejects(d, { name: 'ClosedError' }, 'close rejects a pending waiter');
  await t.rejects(e, { name: 'ClosedError' }, 'and every other one, timeout or not');
  t.throws(() => s.wait(), ClosedError);
  t.equal(testNative.countOpenFds(), base, 'the sync_file fd is closed');
});

t.test('Dmabuf.map({ offset }): the length defaults to the rest of the buffer; bad ranges are RangeErrors', async (t) => {
  const d = new Dmabuf(memfd(3 * 4096), 'memfd stand-in');
  t.teardown(() => d.close());
  const m = d.map({ offset: 4096 });
  t.equal(m.length, 8192, 'size - offset bytes');
  m.close();
  const m2 = d.map({ offset: 8192n, length: 4096 });
  t.equal(m2.length, 4096);
  m2.close();
  t.throws(() => d.map({ offset: 3 * 4096 }), RangeError, 'offset at the end');
  t.throws(() => d.map({ offset: 4 * 4096 }), RangeError, 'offset beyond the size');
  t.throws(() => d.map({ offset: -4096 }), RangeError, 'negative offset');
  t.throws(() => d.map({ offset: 100 }), RangeError, 'offset not page-aligned');
  t.throws(() => d.map({ offset: 4096, length: 3 * 4096 }), RangeError, 'offset + length beyond the size');
  t.throws(() => d.map({ length: 0 }), RangeError, 'zero length');
  t.throws(() => d.map({ length: -1 }), RangeError, 'negative length');
});

t.test('Dmabuf async brackets: pool errors are typed; close() during a pool job keeps the fd until it settles', async (t) => {
  const base = testNative.countOpenFds();
  const d = new Dmabuf(memfd(4096), 'memfd stand-in');
  // A memfd is no dma-buf: the ioctl fails on the pool thread and the promise carries the error.
  await t.rejects(d.beginCpuAccessAsync('read'), { name: 'SystemError', code: 'ENOTTY', syscall: 'DMA_BUF_IOCTL_SYNC' });
  let called = false;
  await t.rejects(d.withCpuAccess('rw', () => (called = true)), { code: 'ENOTTY' });
  t.equal(called, false, 'withCpuAccess does not run its callback when START fails');
  const job = d.endCpuAccessAsync('write');
  t.throws(() => d.release(), /thread-pool jobs/, 'an fd in use by a pool job cannot be given away');
  d.close();
  t.ok(d.closed);
  t.throws(() => d.fd, ClosedError, 'closed at once for its users');
  t.throws(() => d.syncAsync(0), ClosedError, 'new jobs are refused');
  t.equal(testNative.countOpenFds(), base + 1, 'but the fd stays open while the pool job may use it');
  await t.rejects(job, { code: 'ENOTTY' }, 'the pending job finishes with its own result');
  t.equal(testNative.countOpenFds(), base, 'and the fd is closed once it settled');
  d.close();
  t.equal(testNative.countOpenFds(), base);
});
