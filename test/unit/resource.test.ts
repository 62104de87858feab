// Ownership rules of Resource/OwnedFd: one owner, idempotent close, use-after-close throws,
// dup gives an independent owner, release hands the fd over without closing it.
import { openSync } from 'node:fs';
import t from 'tap';
import { ClosedError } from '../../src/errors.js';
import { OwnedFd } from '../../src/fd.js';
import { native, testNative } from '../../src/native.js';

t.test('close is idempotent and closes the fd exactly once', async (t) => {
  const base = testNative.countOpenFds();
  const f = new OwnedFd(openSync('/dev/null', 'r'), '/dev/null');
  t.equal(testNative.countOpenFds(), base + 1);
  f.close();
  f.close();
  f[Symbol.dispose]();
  t.equal(testNative.countOpenFds(), base);
  t.ok(f.closed);
  t.throws(() => f.fd, ClosedError);
});

t.test('dup is an independent owner', async (t) => {
  const base = testNative.countOpenFds();
  const a = new OwnedFd(openSync('/dev/null', 'r'));
  const b = a.dup();
  t.not(a.fd, b.fd);
  a.close();
  t.equal(testNative.countOpenFds(), base + 1, 'the dup stays open');
  b.close();
  t.equal(testNative.countOpenFds(), base);
});

t.test('release hands the fd over without closing it', async (t) => {
  const base = testNative.countOpenFds();
  const a = new OwnedFd(openSync('/dev/null', 'r'));
  const raw = a.release();
  t.ok(a.closed);
  t.equal(testNative.countOpenFds(), base + 1);
  native.closeFd(raw);
  t.equal(testNative.countOpenFds(), base);
});

t.test('closeFd on a bad fd throws a typed SystemError', async (t) => {
  t.throws(() => native.closeFd(987654), { name: 'SystemError', code: 'EBADF', errno: 9, syscall: 'close' });
});

t.test('OwnedFd rejects non-fds', async (t) => {
  t.throws(() => new OwnedFd(-1), RangeError);
  t.throws(() => new OwnedFd(1.5), RangeError);
});
