// The kiosk's session policy (compositor-example/session.ts) against a fake Session: how the device
// access is chosen for --session auto|libseat|direct (root or not, a seat manager or not) and the
// error that names both ways; on disable presenting pauses and the ack comes only after the frame
// in flight ended (or after a bound when it never does); on enable the output is taken back after
// the pause settled. The kiosk itself under seatd, switched away and back for real, is
// test/vkms/kiosk-session.test.ts.
import t from 'tap';
import { SessionError } from '../../src/session/index.js';
import { followSession, openDeviceAccess, SessionUnavailableError } from '../../compositor-example/session.js';
import { FakeSession } from '../util/fake-session.js';

const noSeat = (): never => {
  throw new SessionError('no libseat backend could open a seat', 'NO_BACKEND', [
    { backend: 'seatd', code: 'ENOENT', message: 'Could not connect to socket /run/seatd.sock' },
    { backend: 'logind', code: 'ENODATA', message: 'Could not get primary session for user' },
  ]);
};

t.test('device access: auto, libseat, direct', async (t) => {
  const s = new FakeSession();
  const a = await openDeviceAccess('auto', { openSession: () => s, euid: 65534 });
  t.equal(a.via, 'libseat', 'auto with a seat manager: libseat');
  t.equal(a.session, s, 'the session is kept');
  t.match(a.description, /libseat \(fake\), seat seat0/, a.description);
  a.close();
  t.ok(s.closed, 'close() closes the session');

  const log: string[] = [];
  const root = await openDeviceAccess('auto', { openSession: noSeat, euid: 0, log: (l) => log.push(l) });
  t.equal(root.via, 'direct', 'auto without a seat manager, as root: direct');
  t.equal(root.session, undefined, 'no session');
  t.ok(log.some((l) => /no libseat seat manager .*seatd: ENOENT.*directly as root/.test(l)), `it says why (${log.join(' | ')})`);

  let called = false;
  const d = await openDeviceAccess('direct', { openSession: () => ((called = true), s), euid: 0 });
  t.equal(d.via, 'direct', 'direct');
  t.notOk(called, 'direct never asks libseat');
});

t.test('neither way: the error names seatd/logind and root, with what libseat said', async (t) => {
  for (const [mode, euid] of [['auto', 65534], ['libseat', 65534], ['libseat', 0]] as const) {
    const err = await openDeviceAccess(mode, { openSession: noSeat, euid }).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof SessionUnavailableError, `${mode} as uid ${euid}: SessionUnavailableError`);
    const m = (err as Error).message;
    t.match(m, /seatd: ENOENT: Could not connect to socket \/run\/seatd\.sock/, 'what seatd\'s backend said');
    t.match(m, /logind: ENODATA/, 'what logind\'s backend said');
    t.match(m, /run a seat manager.*seatd.*logind.*or run the kiosk as root \(--session direct\)/, 'both ways to fix it');
    if (mode === 'auto') t.match(m, /not root \(uid 65534\)/, 'auto: says it is not root');
  }
});

t.test('a session that does not become active: the error, and the session closed', async (t) => {
  const s = new FakeSession();
  s.active = false;
  const inactive = (): Promise<void> => Promise.reject(new SessionError('not active after 5 ms', 'INACTIVE'));
  s.whenActive = inactive;
  const err = await openDeviceAccess('libseat', { openSession: () => s, euid: 65534 }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof SessionUnavailableError, 'SessionUnavailableError');
  t.match((err as Error).message, /did not become active \(not active after 5 ms\)/, (err as Error).message);
  t.ok(s.closed, 'the session was closed');
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('disable: pause, then the ack once the frame in flight ended; enable: resume after the pause', async (t) => {
  const s = new FakeSession();
  const steps: string[] = [];
  const frameInFlight = deferred();
  followSession(s, {
    log: (l) => steps.push(`log ${l}`),
    pause: async () => {
      steps.push('pause');
      await frameInFlight.promise;
      steps.push('paused');
    },
    resume: async () => {
      steps.push('resume');
    },
  });
  s.disable();
  await tick(10);
  t.equal(s.acks, 0, 'no ack while the frame is in flight');
  s.enable(); // comes before the pause settled: resumes after it
  await tick(10);
  t.notOk(steps.includes('resume'), 'no resume before the pause settled');
  frameInFlight.resolve();
  await tick(10);
  t.equal(s.acks, 1, 'acknowledged once the frame ended');
  t.same(steps.filter((x) => !x.startsWith('log')), ['pause', 'paused', 'resume'], 'pause, paused, then resume, in order');
  t.ok(steps.some((x) => /session disabled/.test(x)) && steps.some((x) => /session enabled/.test(x)), 'both logged');
});

t.test('a pause that never settles: the ack goes after the bound (the seat manager is not held)', async (t) => {
  const s = new FakeSession();
  followSession(s, { log: () => undefined, pause: () => new Promise(() => undefined), resume: async () => undefined }, 30);
  s.disable();
  await tick(5);
  t.equal(s.acks, 0, 'not yet');
  await tick(80);
  t.equal(s.acks, 1, 'acknowledged after the bound');
});

t.test('a resume that fails is logged, and the next switch still works', async (t) => {
  const s = new FakeSession();
  const log: string[] = [];
  let n = 0;
  followSession(s, {
    log: (l) => log.push(l),
    pause: async () => undefined,
    resume: async () => {
      if (n++ === 0) throw new Error('commit refused: EACCES');
    },
  });
  s.disable();
  s.enable();
  await tick(10);
  t.ok(log.some((l) => /session: commit refused: EACCES/.test(l)), 'the failure logged');
  s.disable();
  await tick(10);
  t.equal(s.acks, 2, 'the second disable acknowledged too');
  s.fail(new Error('EPIPE'));
  t.ok(log.some((l) => /seat's connection failed \(EPIPE\)/.test(l)), 'a failed seat connection is logged');
});
