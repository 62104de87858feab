// Proves the native chain: the addon loads through src/native.ts, links libdrm, and its
// errors are primebuf's typed classes.
import t from 'tap';
import { native } from '../../src/native.js';

t.test('errnoName maps errno numbers to their names', async (t) => {
  t.equal(native.errnoName(22), 'EINVAL');
  t.equal(native.errnoName(16), 'EBUSY');
  t.equal(native.errnoName(2), 'ENOENT');
});

t.test('libdrm is linked: drmGetFormatName names XRGB8888', async (t) => {
  t.equal(native.drmGetFormatName(0x34325258), 'XR24');
});

t.test('argument checks throw TypeError/RangeError, not crashes', async (t) => {
  t.throws(() => native.drmGetFormatName(-1), RangeError);
  t.throws(() => native.drmGetFormatName('x' as unknown as number), TypeError);
  t.throws(() => native.drmGetFormatModifierName(-1n), RangeError);
});
