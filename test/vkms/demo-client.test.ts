// The demo client (compositor-example/demo-client.ts) against `primebuf serve` in the guest: a
// server with linux-dmabuf v5 feedback on vkms and a minimal shell (no display, no
// wp_presentation). The client runs in this process, so the leak check covers its fds, GEM
// handles and framebuffers; the server runs as `primebuf serve` and logs what it imported.
// Fails (never skips) when vkms is missing.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import { runDemoClient } from '../../compositor-example/demo-client.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { leakFree, type TapTest } from './leak.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-xdg-');

/** `primebuf serve --json --log` on `socket`; resolves once it printed its ready line. */
function serve(socket: string): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'serve', '--device', vkms!.path, '--socket', socket, '--json', '--log', '--output', '160x120'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (/"kind":"ready"/.test(lines.at(-1)!)) resolve({ child, lines });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${lines.join('\n')}`)));
  });
}

// Started outside the leak-checked subtest: its pipe is the test process's until serve exits.
const serving = serve('pb-demo');
serving.catch(() => undefined); // reported by the subtest that awaits it
t.teardown(async () => void (await serving.catch(() => null))?.child.kill('SIGKILL'));

leakFree(t as TapTest, 'demo client: 40 frames against primebuf serve, partial redraws, scanout re-allocation', async (t) => {
  const s = await serving;
  const logs: string[] = [];
  const committed: number[] = [];
  const r = await runDemoClient({ socket: 'pb-demo', frames: 40, width: 160, height: 120, log: (l) => logs.push(l), onFrame: (n) => committed.push(n) });
  t.comment(logs.join('\n'));
  t.equal(r.error, null, 'no protocol or connection error');
  t.equal(r.frames, 40, 'all 40 frames drawn and committed');
  t.same(committed, [...Array(40).keys()], 'frames 0..39 in order');
  t.equal(r.frameTimeouts, 0, 'every frame callback answered');
  t.same([r.width, r.height], [160, 120], 'the size asked for when the shell configures 0x0');
  t.equal(r.format, 'XRGB8888');
  t.equal(r.modifier, 'LINEAR');
  t.equal(r.presentation, false, 'serve offers no wp_presentation');
  t.equal(r.presented + r.discarded, 0, 'so no presentation feedback was asked for');
  // serve adds the scanout tranche once the surface shows a buffer: the ring moves to dumb buffers on vkms
  t.ok(r.reallocations >= 1, `re-allocated when the scanout tranche came (${r.reallocations})`);
  t.equal(r.scanoutTranche, true, 'the last frames came from the scanout tranche');
  t.ok(r.allocators.some((a) => a.startsWith('dumb@')), `dumb buffers on the card (${r.allocators.join(', ')})`);
  t.ok(r.bytesDrawn < r.bytesFullRedraw / 2, `partial redraws: ${r.bytesDrawn} bytes drawn against ${r.bytesFullRedraw} for full frames`);
  const created = s.lines.filter((l) => /"kind":"buffer"/.test(l) && /"outcome":"created"/.test(l));
  t.ok(created.length >= 2 && created.length <= 6, `serve imported the ring's buffers, not one per frame (${created.length})`);
  t.notOk(s.lines.some((l) => /protocol error/i.test(l)), 'serve logged no protocol error');
});
