// Host tests of the atomic request builder and the devices CLI without a DRM device: property
// names resolve per object (unknown names are an InvalidArgumentError that lists the object's
// properties), later sets replace earlier ones, fence slots are left out of TEST_ONLY, a kernel
// refusal is a typed SystemError naming the ioctl, and a failed commit leaves no pending flip.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { InvalidArgumentError, SystemError } from '../../src/errors.js';
import { AtomicRequest } from '../../src/kms/atomic.js';
import type { Device } from '../../src/kms/device.js';
import { DrmEventDispatcher } from '../../src/kms/events.js';
import { listDevices } from '../../src/kms/discovery.js';
import { packageRoot, testNative } from '../../src/native.js';

/** A stand-in Device on a FIFO (pollable, ioctls fail ENOTTY): knows one plane (31) and one CRTC (41). */
function fakeDevice(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-atomic-'));
  execFileSync('mkfifo', [join(dir, 'f')]);
  const fd = openSync(join(dir, 'f'), constants.O_RDWR | constants.O_NONBLOCK);
  const events = new DrmEventDispatcher(fd, 'fake');
  t.teardown(() => {
    events.close();
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const props: Record<number, Map<string, number>> = {
    31: new Map([['FB_ID', 1], ['CRTC_ID', 2], ['SRC_W', 3]]),
    41: new Map([['ACTIVE', 10], ['MODE_ID', 11], ['OUT_FENCE_PTR', 12]]),
  };
  const names = new Map<number, string>([[1, 'FB_ID'], [2, 'CRTC_ID'], [3, 'SRC_W'], [10, 'ACTIVE'], [11, 'MODE_ID'], [12, 'OUT_FENCE_PTR']]);
  return {
    name: 'fake',
    fd,
    events,
    objectPropertyIds: (id: number) => props[id] ?? new Map(),
    propertyInfo: (id: number) => ({ id, name: names.get(id)! }),
    resourceIds: () => ({ crtcs: [41], planes: [], connectors: [], encoders: [] }),
  } as unknown as Device;
}

t.test('property names resolve per object; unknown ones list what exists', async (t) => {
  const dev = fakeDevice(t);
  const req = new AtomicRequest(dev);
  req.set(31, 'FB_ID', { id: 77 }).set({ id: 31 }, 'CRTC_ID', 41).set(41, 'ACTIVE', true);
  t.equal(req.size, 3);
  req.set(31, 'FB_ID', 78);
  t.equal(req.size, 3, 'a second set of the same property replaces the first');
  req.setAll(31, { SRC_W: 1024n << 16n });
  t.equal(req.size, 4);
  const e = t.throws(() => req.set(31, 'ZPOS', 1)) as InvalidArgumentError;
  t.ok(e instanceof InvalidArgumentError);
  t.match(e.message, /object 31 has no property 'ZPOS' \(it has FB_ID, CRTC_ID, SRC_W\)/);
});

t.test('property values: u64 as the kernel reads them', async (t) => {
  const dev = fakeDevice(t);
  const req = new AtomicRequest(dev);
  const value = (name: string): bigint => req.entries().find((e) => e.prop === props31[name])!.value;
  const props31: Record<string, number> = { FB_ID: 1, CRTC_ID: 2, SRC_W: 3 };
  req.set(31, 'FB_ID', -1);
  t.equal(value('FB_ID'), (1n << 64n) - 1n, 'a negative number wraps to u64');
  req.set(31, 'FB_ID', -2n);
  t.equal(value('FB_ID'), (1n << 64n) - 2n, 'a negative BigInt wraps to u64');
  req.set(31, 'FB_ID', (1n << 64n) + 5n);
  t.equal(value('FB_ID'), 5n, 'a BigInt above u64 keeps its low 64 bits');
  req.set(31, 'FB_ID', 2n ** 63n);
  t.equal(value('FB_ID'), 2n ** 63n, 'a BigInt in range is itself');
  req.set(31, 'FB_ID', 2 ** 40);
  t.equal(value('FB_ID'), 2n ** 40n, 'a number above 32 bits');
  t.throws(() => req.set(31, 'FB_ID', 1.5), RangeError, 'a fraction is refused');
  req.set(31, 'FB_ID', { id: 77 }).set(31, 'CRTC_ID', 77);
  t.equal(value('FB_ID'), 77n);
  t.equal(value('FB_ID'), value('CRTC_ID'), 'an id and the same number give the same value');
  req.set(31, 'SRC_W', false);
  t.equal(value('SRC_W'), 0n, 'false');
  req.set(31, 'SRC_W', null);
  t.equal(value('SRC_W'), 0n, 'null');
});

t.test('a reset request is empty and fills again in place (the output commits one request every frame)', async (t) => {
  const dev = fakeDevice(t);
  const req = new AtomicRequest(dev).set(31, 'FB_ID', 7).set(31, 'CRTC_ID', 41).outFence(41);
  t.equal(req.size, 3);
  t.equal(req.reset().size, 0, 'reset: no entries');
  req.set(31, 'SRC_W', 5).set(31, 'FB_ID', 8).set(31, 'SRC_W', 6);
  t.same(req.entries(), [
    { obj: 31, prop: 3, value: 6n, fence: false },
    { obj: 31, prop: 1, value: 8n, fence: false },
  ], 'only what was set since, a later set replacing in place; the fence slot of before is gone');
});

t.test('kernel refusals are typed; TEST_ONLY leaves out fence slots; a failed commit leaves nothing pending', async (t) => {
  const dev = fakeDevice(t);
  const req = new AtomicRequest(dev).set(41, 'ACTIVE', 1).outFence(41);
  const e1 = t.throws(() => req.test()) as SystemError;
  t.ok(e1 instanceof SystemError);
  t.equal(e1.syscall, 'DRM_IOCTL_MODE_ATOMIC');
  t.equal(e1.code, 'ENOTTY');
  t.match(e1.detail, /TEST_ONLY commit of 1 properties/, 'the fence slot is not part of TEST_ONLY');
  const c = req.check();
  t.equal(c.ok, false);
  const e2 = t.throws(() => req.commit()) as SystemError;
  t.match(e2.detail, /commit of 2 properties/);
  t.equal(dev.events.pendingCount, 0, 'the flip token of the failed commit was cancelled');
  const fds = testNative.countOpenFds();
  t.throws(() => req.commitBlocking());
  t.equal(testNative.countOpenFds(), fds, 'no out-fence fd leaks from a failed commit');
});

t.test('a dispatcher that cannot poll its fd leaves nothing pending', async (t) => {
  const fd = openSync('/dev/null', 'r+'); // not pollable: uv_poll_init fails with EPERM
  t.teardown(() => closeSync(fd));
  const d = new DrmEventDispatcher(fd, 'unpollable');
  const e = t.throws(() => d.expect(1)) as SystemError;
  t.equal(e.syscall, 'uv_poll_init');
  t.equal(d.pendingCount, 0);
  d.close();
});

t.test('primebuf devices: --help, and an empty --json list on a host without /dev/dri', async (t) => {
  const cli = join(packageRoot, 'dist', 'src', 'cli.js');
  t.match(execFileSync(process.execPath, [cli, 'devices', '--help'], { encoding: 'utf8' }), /usage: primebuf devices/);
  const out = JSON.parse(execFileSync(process.execPath, [cli, 'devices', '--json'], { encoding: 'utf8' })) as { devices: Array<{ path: string }> };
  // One entry per DRM node of this machine: none on the project's hosts (no /dev/dri).
  t.same(out.devices.map((d) => d.path), listDevices().map((d) => d.path), `exactly the DRM nodes present (${listDevices().length})`);
  if (!existsSync('/dev/dri')) t.same(out.devices, [], 'no /dev/dri: an empty list');
  let status = 0;
  try {
    execFileSync(process.execPath, [cli, 'devices', '--bogus'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    status = (err as { status: number }).status;
  }
  t.equal(status, 2, 'an unknown option is a usage error');
});
