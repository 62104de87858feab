// primebuf/session on the host (no seat manager here: libseat's real failures are what is
// checked): openSession's typed error with each backend's failure, the errors of bad options, and
// sessionOpener's fd bookkeeping over a session (a fake: the real one is run in the vkms guest
// through seatd, test/vkms/kiosk-session.test.ts).
import t from 'tap';
import { InvalidArgumentError } from '../../src/errors.js';
import { DEFAULT_SESSION_BACKENDS, SessionError, openSession, sessionOpener } from '../../src/session/index.js';
import { FakeSession } from '../util/fake-session.js';

t.test('no seatd socket: SessionError NO_BACKEND, the backend and what libseat said', async (t) => {
  const saved = process.env.SEATD_SOCK;
  process.env.SEATD_SOCK = '/nonexistent/primebuf-seatd.sock';
  const lines: string[] = [];
  try {
    let err: unknown;
    try {
      openSession({ backends: ['seatd'], log: (l) => lines.push(l) }).close();
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof SessionError, `a SessionError (${String(err)})`);
    const e = err as SessionError;
    t.equal(e.code, 'NO_BACKEND', 'code NO_BACKEND');
    t.equal(e.attempts.length, 1, 'one attempt');
    t.equal(e.attempts[0]?.backend, 'seatd', 'the backend tried');
    t.equal(e.attempts[0]?.code, 'ENOENT', 'ENOENT: no socket');
    t.match(e.attempts[0]?.message ?? '', /primebuf-seatd\.sock/, `libseat named the socket it tried (${e.attempts[0]?.message})`);
    t.ok(lines.some((l) => /^libseat: .*primebuf-seatd\.sock/.test(l)), 'libseat\'s log went to options.log');
    t.equal(process.env.LIBSEAT_BACKEND, undefined, 'LIBSEAT_BACKEND is not left set');
  } finally {
    if (saved === undefined) delete process.env.SEATD_SOCK;
    else process.env.SEATD_SOCK = saved;
  }
});

t.test('an unknown backend fails as libseat says; the default backends are seatd then logind', async (t) => {
  const e = (() => {
    try {
      openSession({ backends: ['no-such-backend'] });
    } catch (err) {
      return err as SessionError;
    }
    return undefined;
  })();
  t.ok(e instanceof SessionError && e.code === 'NO_BACKEND', 'NO_BACKEND');
  t.equal(e?.attempts[0]?.code, 'EINVAL', `EINVAL (${e?.attempts[0]?.message})`);
  t.same(DEFAULT_SESSION_BACKENDS, ['seatd', 'logind'], 'no builtin backend (a seatd forked inside the process) unless asked');
  t.throws(() => openSession({ backends: [] }), InvalidArgumentError, 'no backend to try: InvalidArgumentError');
});

t.test('sessionOpener: open gives the session\'s fd, close closes that device through the session, once', async (t) => {
  const s = new FakeSession();
  const opener = sessionOpener(s);
  const a = opener.open('/dev/input/event0', 0);
  const b = opener.open('/dev/input/event1', 0);
  t.not(a, b, 'two fds');
  t.same(s.opened.map((d) => d.path), ['/dev/input/event0', '/dev/input/event1'], 'opened through the session');
  opener.close(b);
  t.equal(s.closedDevices.length, 1, 'one device closed');
  t.equal(s.closedDevices[0], s.opened[1], 'the device object of that fd');
  t.throws(() => opener.close(b), InvalidArgumentError, 'a second close of the fd is refused');
  t.throws(() => opener.close(12345), InvalidArgumentError, 'an fd it never opened is refused');
  t.equal(s.closedDevices.length, 1, 'nothing more closed');
});
