// Host test of page-flip event delivery without a DRM device: a FIFO carries hand-made
// struct drm_event_vblank records (the kernel's wire format), and the dispatcher decodes them
// on the event loop, matches them to commits by user_data, waits for one event per CRTC, and
// rejects what is pending when closed.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClosedError } from '../../src/errors.js';
import { DRM_EVENT_FLIP_COMPLETE, DrmEventDispatcher, type PageFlipEvent } from '../../src/kms/events.js';
import { native } from '../../src/native.js';

function fifo(t: { teardown(fn: () => void): void }): number {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-events-'));
  execFileSync('mkfifo', [join(dir, 'f')]);
  const fd = openSync(join(dir, 'f'), constants.O_RDWR | constants.O_NONBLOCK);
  t.teardown(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return fd;
}

function vblankEvent(userData: bigint, sec: number, usec: number, sequence: number, crtcId: number, type = DRM_EVENT_FLIP_COMPLETE): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(32, 4);
  b.writeBigUInt64LE(userData, 8);
  b.writeUInt32LE(sec, 16);
  b.writeUInt32LE(usec, 20);
  b.writeUInt32LE(sequence, 24);
  b.writeUInt32LE(crtcId, 28);
  return b;
}

t.test('drmReadEvents decodes the kernel wire format, several events per read', async (t) => {
  const fd = fifo(t);
  writeSync(fd, Buffer.concat([vblankEvent(7n, 10, 500, 42, 62), vblankEvent(0xffffffffffffffffn, 11, 0, 43, 63, 1)]));
  const evs = native.drmReadEvents(fd);
  t.equal(evs.length, 2);
  t.same(evs[0], { type: 2, userData: 7n, tvSec: 10, tvUsec: 500, sequence: 42, crtcId: 62 });
  t.equal(evs[1]!.userData, 0xffffffffffffffffn, 'u64 user_data survives');
  t.same(native.drmReadEvents(fd), [], 'EAGAIN on an empty non-blocking fd is no events');
});

t.test('the dispatcher resolves each commit with one event per CRTC, in order', async (t) => {
  const fd = fifo(t);
  const d = new DrmEventDispatcher(fd, 'fake card');
  const seen: PageFlipEvent[] = [];
  d.onPageFlip((e) => seen.push(e));
  const a = d.expect(1);
  const b = d.expect(2);
  t.not(a.userData, b.userData);
  t.equal(d.pendingCount, 2);
  writeSync(fd, vblankEvent(b.userData, 1, 0, 100, 62));
  writeSync(fd, vblankEvent(a.userData, 1, 16667, 101, 62));
  const [ea] = await a.done;
  t.equal(ea!.sequence, 101);
  t.equal(ea!.timestampNs, 1_016_667_000n);
  t.equal(d.pendingCount, 1, 'b still waits for its second CRTC');
  writeSync(fd, vblankEvent(b.userData, 1, 16667, 101, 63));
  const eb = await b.done;
  t.same(eb.map((e) => e.crtcId), [62, 63]);
  t.equal(seen.length, 3, 'listeners see every event');
  t.equal(d.pendingCount, 0);
  d.close();
});

t.test('a cancelled commit frees its token; close rejects pending flips and stops polling', async (t) => {
  const fd = fifo(t);
  const d = new DrmEventDispatcher(fd, 'fake card');
  const a = d.expect(1);
  a.cancel();
  t.equal(d.pendingCount, 0);
  const b = d.expect(1);
  d.close();
  await t.rejects(b.done, ClosedError);
  t.throws(() => d.expect(1), ClosedError);
  d.close();
});

t.test('a throwing listener: every event of the read still reaches the other listeners and resolves its flip; the error goes to onError', async (t) => {
  const fd = fifo(t);
  const d = new DrmEventDispatcher(fd, 'fake card');
  t.teardown(() => d.close());
  const boom = new Error('listener bug');
  const seen: bigint[] = [];
  d.onPageFlip(() => {
    throw boom;
  });
  d.onPageFlip((e) => seen.push(e.userData));
  const errors: unknown[] = [];
  d.onError((err) => errors.push(err));
  const a = d.expect(1);
  const b = d.expect(1);
  // both events in one read
  writeSync(fd, Buffer.concat([vblankEvent(a.userData, 1, 0, 1, 62), vblankEvent(b.userData, 1, 16667, 2, 62)]));
  const [ea, eb] = await Promise.all([a.done, b.done]);
  t.equal(ea![0]!.sequence, 1, 'the first flip resolved');
  t.equal(eb![0]!.sequence, 2, 'the second flip resolved');
  t.same(seen, [a.userData, b.userData], 'the second listener saw both events');
  t.equal(d.pendingCount, 0);
  t.same(errors, [boom, boom], 'each throw reached the error listener once, after delivery');
});

t.test('without an error listener, a listener\'s throw becomes the process\'s uncaughtException after all events were delivered', async (t) => {
  // In a child process: the uncaught exception must not disturb the test runner's own handlers.
  const script = `
    import { execFileSync } from 'node:child_process';
    import { mkdtempSync, openSync, writeSync, constants } from 'node:fs';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { DrmEventDispatcher } = await import(${JSON.stringify(new URL('../../src/kms/events.js', import.meta.url).href)});
    const dir = mkdtempSync(join(tmpdir(), 'primebuf-events-'));
    execFileSync('mkfifo', [join(dir, 'f')]);
    const fd = openSync(join(dir, 'f'), constants.O_RDWR | constants.O_NONBLOCK);
    const d = new DrmEventDispatcher(fd, 'fake card');
    let calls = 0;
    d.onPageFlip(() => { if (calls++ === 0) throw new Error('listener bug'); });
    const a = d.expect(1), b = d.expect(1);
    const ev = (u, s) => { const x = Buffer.alloc(32); x.writeUInt32LE(2, 0); x.writeUInt32LE(32, 4); x.writeBigUInt64LE(u, 8); x.writeUInt32LE(s, 24); return x; };
    const resolved = [];
    a.done.then(() => resolved.push('a'), () => {});
    b.done.then(() => resolved.push('b'), () => {});
    process.once('uncaughtException', (err) => {
      setImmediate(() => { console.log(JSON.stringify({ message: err.message, resolved, pending: d.pendingCount })); d.close(); });
    });
    writeSync(fd, Buffer.concat([ev(a.userData, 1), ev(b.userData, 2)]));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { message: string; resolved: string[]; pending: number };
  t.equal(r.message, 'listener bug', 'the listener\'s error is the uncaught exception');
  t.same(r.resolved, ['a', 'b'], 'both flips resolved all the same');
  t.equal(r.pending, 0);
});

t.test('the poll holds the process only while flips are pending; a dropped flip that close() rejects is no unhandled rejection', async (t) => {
  // In a child process: whether the process stays alive, and its unhandled rejections, are what is tested.
  const script = `
    import { execFileSync } from 'node:child_process';
    import { mkdtempSync, openSync, writeSync, constants } from 'node:fs';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { DrmEventDispatcher } = await import(${JSON.stringify(new URL('../../src/kms/events.js', import.meta.url).href)});
    const fifo = () => {
      const path = join(mkdtempSync(join(tmpdir(), 'primebuf-events-')), 'f');
      execFileSync('mkfifo', [path]);
      return { path, fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK) };
    };
    const ev = (u, s) => { const x = Buffer.alloc(32); x.writeUInt32LE(2, 0); x.writeUInt32LE(32, 4); x.writeBigUInt64LE(u, 8); x.writeUInt32LE(s, 24); return x; };
    const unhandled = [];
    process.on('unhandledRejection', (e) => unhandled.push(String(e)));
    // a flip dropped by its caller, rejected by close()
    const other = fifo();
    const d2 = new DrmEventDispatcher(other.fd, 'second fake card');
    d2.expect(1);
    d2.close();
    // nothing but the pending flip keeps this process alive while the parent writes its event
    const f = fifo();
    const d = new DrmEventDispatcher(f.fd, 'fake card');
    const b = d.expect(1);
    console.log('ready ' + f.path + ' ' + b.userData);
    const [eb] = await b.done;
    // two in flight: after the first resolves the second still holds the process; after the second nothing does
    const c1 = d.expect(1), c2 = d.expect(1);
    writeSync(f.fd, ev(c1.userData, 5));
    await c1.done;
    const pendingBetween = d.pendingCount;
    writeSync(f.fd, ev(c2.userData, 6));
    const [e2] = await c2.done;
    setImmediate(() => console.log(JSON.stringify({ seqB: eb.sequence, pendingBetween, seqC2: e2.sequence, pendingAfter: d.pendingCount, unhandled })));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (x: Buffer) => (err += x.toString()));
  child.stdout.on('data', (x: Buffer) => {
    out += x.toString();
    const m = /^ready (\S+) (\d+)$/m.exec(out);
    if (m && !out.includes('written')) {
      out += '\nwritten\n';
      const w = openSync(m[1]!, constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(w, vblankEvent(BigInt(m[2]!), 1, 0, 77, 62));
      closeSync(w);
    }
  });
  // a process that the watch keeps alive with no flip pending never exits: killed, it fails below
  const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(killer);
  t.equal(signal, null, `the child exited by itself once no flip was pending (stderr: ${err.slice(-500)})`);
  t.equal(code, 0, `exit 0, not 13 (a top-level await the loop gave up on: the poll did not hold the process while the flip was pending); stderr: ${err.slice(-500)}`);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { seqB: number; pendingBetween: number; seqC2: number; pendingAfter: number; unhandled: string[] };
  t.equal(r.seqB, 77, 'the flip written from outside resolved');
  t.equal(r.pendingBetween, 1);
  t.equal(r.seqC2, 6);
  t.equal(r.pendingAfter, 0);
  t.same(r.unhandled, [], 'no unhandled rejection from the dropped flip');
});
