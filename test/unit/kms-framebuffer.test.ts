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
import { native } from '../../src/native.js';

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

/** Replaces native functions for one test (the ioctl outcomes a host cannot produce). */
function stub<K extends keyof typeof native>(t: { teardown(fn: () => void): void }, name: K, fn: (typeof native)[K]): void {
  const orig = native[name];
  (native as unknown as Record<string, unknown>)[name] = fn;
  t.teardown(() => {
    (native as unknown as Record<string, unknown>)[name] = orig;
  });
}

function stubbedFb(t: { teardown(fn: () => void): void }, calls: string[]): Framebuffer {
  stub(t, 'drmAddFB2', () => 42);
  stub(t, 'drmRmFB', (_fd: number, id: number) => {
    calls.push(`RMFB ${id}`);
  });
  const dev = { fd: devNull, liveFd: devNull, name: 'fake', closed: false, adoptChild: () => () => undefined } as unknown as Device;
  return Framebuffer.createRaw(dev, { width: 64, height: 64, format: XR24, handles: [1], pitches: [256], offsets: [0] });
}

const noCloseFb = (code: string, errno: number) => () => {
  throw new SystemError(`DRM_IOCTL_MODE_CLOSEFB failed: ${code}`, { code, errno, syscall: 'DRM_IOCTL_MODE_CLOSEFB' });
};

t.test('close({ keepOnScreen }) uses CLOSEFB where the kernel has it', async (t) => {
  const calls: string[] = [];
  const fb = stubbedFb(t, calls);
  stub(t, 'drmCloseFB', (_fd: number, id: number) => {
    calls.push(`CLOSEFB ${id}`);
  });
  fb.close({ keepOnScreen: true });
  fb.close({ keepOnScreen: true });
  t.same(calls, ['CLOSEFB 42'], 'CLOSEFB once, no RmFB');
  t.equal(fb.removedWith, 'CLOSEFB');
});

for (const [code, errno] of [['ENOTTY', 25], ['EINVAL', 22]] as const) {
  t.test(`close({ keepOnScreen }) falls back to RmFB when CLOSEFB fails with ${code} (kernel before 6.8)`, async (t) => {
    const calls: string[] = [];
    const fb = stubbedFb(t, calls);
    stub(t, 'drmCloseFB', noCloseFb(code, errno));
    fb.close({ keepOnScreen: true });
    t.same(calls, ['RMFB 42'], 'RmFB ran instead');
    t.equal(fb.removedWith, 'RMFB');
    t.ok(fb.closed);
  });
}

t.test('another CLOSEFB error is not papered over with RmFB', async (t) => {
  const calls: string[] = [];
  const fb = stubbedFb(t, calls);
  stub(t, 'drmCloseFB', noCloseFb('EPERM', 1));
  t.throws(() => fb.close({ keepOnScreen: true }), { code: 'EPERM', syscall: 'DRM_IOCTL_MODE_CLOSEFB' });
  t.same(calls, [], 'no RmFB');
  t.ok(fb.closed, 'closed all the same (close is once)');
});

t.test('a plain close() is RmFB', async (t) => {
  const calls: string[] = [];
  const fb = stubbedFb(t, calls);
  stub(t, 'drmCloseFB', noCloseFb('ENOTTY', 25));
  fb.close();
  t.same(calls, ['RMFB 42']);
});
