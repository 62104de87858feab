// Host tests of Framebuffer ownership without a DRM device: the GEM handle references a
// framebuffer takes are counted in a device's handle table, so a fake table (no kernel call
// while more than one reference is held) shows whether a failed create gives back every
// reference it took.
import { closeSync, openSync } from 'node:fs';
import t from 'tap';
import { ClosedError, SystemError } from '../../src/errors.js';
import type { Device } from '../../src/kms/device.js';
import { Framebuffer, MOD_INVALID } from '../../src/kms/framebuffer.js';
import { GemHandle, GemHandleTable } from '../../src/kms/gem.js';

const XR24 = 0x34325258;

/** A table on an fd that is not a DRM device, with `handle` held `n` times. */
function fakeTable(t: { teardown(fn: () => void): void }): GemHandleTable {
  const table = new GemHandleTable(1_000_000, 'fake');
  t.teardown(() => table.invalidate());
  return table;
}

function held(table: GemHandleTable, handle: number, refs: number): GemHandle {
  for (let i = 0; i < refs; i++) table.ref(handle);
  return new GemHandle(table, handle);
}

// /dev/null: every DRM ioctl fails (ENOTTY), and nothing of the host is touched
const devNull = openSync('/dev/null', 'r+');
t.teardown(() => closeSync(devNull));
const fakeDevice = { fd: devNull, name: 'fake', closed: false } as unknown as Device;

t.test('a closed handle on a later plane: create throws and gives back the earlier planes\' references', async (t) => {
  const table = fakeTable(t);
  const y = held(table, 5, 1);
  const uv = held(table, 6, 2);
  uv.close(); // one reference left in the table (someone else's), this GemHandle is closed
  t.equal(table.count(5), 1);
  t.throws(
    () =>
      Framebuffer.create(fakeDevice, {
        width: 64,
        height: 64,
        format: 0x3231564e, // NV12
        modifier: MOD_INVALID,
        planes: [{ handle: y, pitch: 64 }, { handle: uv, pitch: 64, offset: 4096 }],
      }),
    ClosedError,
  );
  t.equal(table.count(5), 1, 'plane 0 holds only its owner\'s reference after the failed create');
  t.equal(table.count(6), 1, 'plane 1 untouched');
});

t.test('a failing AddFB2 gives back every reference it took', async (t) => {
  const table = fakeTable(t);
  const a = held(table, 7, 1);
  t.throws(() => Framebuffer.create(fakeDevice, { width: 64, height: 64, format: XR24, modifier: MOD_INVALID, planes: [{ handle: a, pitch: 256 }] }), SystemError);
  t.equal(table.count(7), 1, 'back to the owner\'s one reference');
});
