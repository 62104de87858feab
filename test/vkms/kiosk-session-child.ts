// The kiosk in a process of its own, driven over Node's IPC channel by test/vkms/kiosk-session.test.ts
// (which runs it as an unprivileged user through seatd): startKiosk as main.js does it, then on
// request a writeback capture (written to a file the test reads), the stats, a session switch, close.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKiosk, type Kiosk } from '../../compositor-example/kiosk.js';
import type { SessionMode } from '../../compositor-example/session.js';

type Msg = { cmd: 'capture'; file: string } | { cmd: 'stats' } | { cmd: 'switch'; session: number } | { cmd: 'close' };

const send = (m: unknown): void => void process.send!(m);
const fds = (): string[] => readdirSync('/proc/self/fd');
const [device, socket, session] = process.argv.slice(2) as [string, string, SessionMode];

async function main(): Promise<void> {
  const before = fds();
  let kiosk: Kiosk;
  try {
    kiosk = await startKiosk({ device, socket, session, log: (line) => send({ type: 'log', line }) });
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  send({ type: 'ready', uid: process.getuid!(), via: kiosk.access.via, backend: kiosk.access.session?.backend ?? null });
  process.on('message', (m: Msg) => {
    void (async () => {
      try {
        if (m.cmd === 'capture') {
          const c = await kiosk.capture();
          writeFileSync(m.file, c.pixels);
          send({ type: 'captured', width: c.width, height: c.height, stride: c.stride });
        } else if (m.cmd === 'stats') {
          const s = kiosk.stats();
          send({ type: 'stats', frames: s.frames, commits: s.commits, active: kiosk.access.session?.active ?? null });
        } else if (m.cmd === 'switch') {
          kiosk.access.session!.switchSession(m.session);
          send({ type: 'switched' });
        } else if (m.cmd === 'close') {
          await kiosk.close();
          const left = fds().filter((f) => !before.includes(f));
          send({ type: 'closed', fdsLeft: left.length });
          process.disconnect();
        }
      } catch (err) {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
}

void main();
