// The buffer object's life on the host (no kernel): BufferLocks counts locks, calls onIdle when the
// last one goes, ends once its owner let go and no lock is left (onEnd once, in order; a lock after
// the end is a ClosedError); the checker drops the verdicts and the kernel's framebuffer of a buffer
// with a life at its end, without forget(), and refuses to check an ended buffer again.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ClosedError } from '../../src/errors.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { packageRoot } from '../../src/native.js';
import {
  BufferLocks,
  ScanoutChecker,
  findPlane,
  scanoutDevicesFromDevicesJSON,
  type KernelCounts,
  type KernelStep,
  type ScanoutBuffer,
  type ScanoutKernel,
} from '../../src/scanout/index.js';

const vkms = scanoutDevicesFromDevicesJSON(JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8'))).find((d) => d.driver === 'vkms')!;
const MODE = { width: 1024, height: 768 };
const crtc = vkms.crtcs[0]!.id;
const primary = findPlane(vkms, 'primary', crtc)!.id;

class FakeKernel implements ScanoutKernel {
  counts: KernelCounts = { imports: 0, addfb2: 0, testOnly: 0 };
  made = new Set<object>();
  framebuffer(key: object, b: ScanoutBuffer): KernelStep {
    this.counts.addfb2++;
    this.made.add(key);
    return { ok: true };
  }
  testOnly(): KernelStep {
    this.counts.testOnly++;
    return { ok: true };
  }
  forget(key: object): void {
    this.made.delete(key);
  }
  close(): void {}
}

t.test('BufferLocks: locks, onIdle, the end once its owner let go and the last lock is gone', async (t) => {
  let idle = 0;
  const order: string[] = [];
  const l = new BufferLocks('camera buffer 0', () => idle++);
  l.onEnd(() => order.push('first'));
  l.onEnd(() => order.push('second'));
  l.lock();
  l.lock();
  l.unlock();
  t.equal(idle, 0, 'one lock left: not idle');
  l.unlock();
  t.equal(idle, 1, 'the last unlock: idle (a camera buffer goes back to the camera)');
  t.equal(l.ended, false, 'its owner still has it: not ended');
  l.unlock();
  t.equal(idle, 1, 'an unlock without a lock changes nothing');
  l.lock();
  l.end();
  t.equal(l.ended, false, 'the owner let go while it is locked: it lives on');
  t.same(order, [], 'no end callback yet');
  l.unlock();
  t.equal(l.ended, true, 'the last unlock ends it');
  t.equal(idle, 1, 'an ended buffer is not given back as idle');
  t.same(order, ['first', 'second'], 'every end callback, once, in order');
  t.throws(() => l.lock(), ClosedError, 'no lock after the end');
  let late = false;
  l.onEnd(() => (late = true));
  t.ok(late, 'an end callback registered after the end runs at once');
});

t.test('BufferLocks as a camera buffer: given back once the frame and the presenter both let go, in either order; not after the stream let go', async (t) => {
  const queued: string[] = [];
  const l = new BufferLocks('camera buffer 1', () => queued.push('QBUF'));
  // direct: the frame is released right after present(); the presenter holds it until the flip that replaced it
  l.lock(); // the frame, as it is dequeued
  l.lock(); // the presenter, scanning it out
  l.unlock(); // frame.release()
  t.same(queued, [], 'on screen: not given back while the presenter holds it');
  l.unlock(); // the flip that replaced it
  t.same(queued, ['QBUF'], 'given back with the presenter\'s unlock');
  // copied: the presenter let go before the frame's release
  l.lock();
  l.lock();
  l.unlock(); // the copy finished
  t.same(queued, ['QBUF'], 'copied: the frame still holds it');
  l.unlock(); // frame.release()
  t.same(queued, ['QBUF', 'QBUF'], 'given back with the frame\'s release');
  // the stream stops (or moves to a new set) while the buffer is on screen
  let ended = 0;
  l.onEnd(() => ended++);
  l.lock();
  l.end();
  t.equal(ended, 0, 'on screen: it outlives the stream');
  l.unlock();
  t.same([queued.length, ended], [2, 1], 'its last unlock ends it (the caches leave) and gives nothing back to the stopped stream');
});

t.test('the checker drops a buffer with a life at its end (no forget) and refuses to check it again', async (t) => {
  const kernel = new FakeKernel();
  const c = new ScanoutChecker(vkms, { kernel, mode: MODE });
  const life = new BufferLocks('wl_buffer@3');
  const b: ScanoutBuffer = { kind: 'dmabuf', width: 1024, height: 768, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: -1, offset: 0, stride: 4096 }], life };
  life.lock();
  t.ok(c.checkScanout(b, primary, { crtc }).ok, 'checked while locked');
  t.ok(kernel.made.has(b), 'the kernel made its framebuffer');
  c.checkScanout(b, primary, { crtc });
  t.same([c.stats.computed, c.stats.hits], [1, 1], 'cached');
  life.end();
  t.ok(kernel.made.has(b), 'its owner let go, but it is locked: the framebuffer stays');
  life.unlock();
  t.notOk(kernel.made.has(b), 'its end dropped the framebuffer');
  t.throws(() => c.checkScanout(b, primary, { crtc }), ClosedError, 'an ended buffer is not checked again (its fd numbers may name other files)');
  t.equal(kernel.counts.addfb2, 1, 'and the kernel was not asked');
  c.close();
});
