// `primebuf serve` argument handling on the host (the server itself runs against vkms in
// test/vkms/wayland-serve.test.ts).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';

const cli = join(packageRoot, 'dist', 'src', 'cli.js');
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env, timeout: 30000 });

t.test('serve is listed and documents its options', async (t) => {
  const list = run(['--help']);
  t.match(list.stdout, /serve\s+a Wayland server with linux-dmabuf v5/);
  const help = run(['serve', '--help']);
  t.equal(help.status, 0);
  for (const opt of ['--device', '--socket', '--output', '--log', '--json']) t.match(help.stdout, opt);
  t.match(help.stdout, /default: the first primary node with planes/, 'the default device is documented');
  // the globals serve creates (minimal-shell: wl_compositor, wl_output, xdg_wm_base; the server:
  // wl_shm; linux-dmabuf); the vkms test compares this list with what wayland-info sees
  for (const g of ['wl_compositor', 'wl_shm', 'wl_output', 'xdg_wm_base', 'zwp_linux_dmabuf_v1']) t.match(help.stdout, g, `help names ${g}`);
});

t.test('bad arguments are refused before anything is opened', async (t) => {
  const bad = run(['serve', '--output', '10by10']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--output 10by10: expected WIDTHxHEIGHT/);
  const env = { ...process.env };
  delete env.XDG_RUNTIME_DIR;
  const noXdg = run(['serve'], env);
  t.equal(noXdg.status, 1);
  t.match(noXdg.stderr, /XDG_RUNTIME_DIR is not set/);
  const unknown = run(['serve', '--frobnicate']);
  t.not(unknown.status, 0, 'unknown option');
});
