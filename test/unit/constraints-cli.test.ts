// `primebuf solve` on recorded devices: JSON and text output, exit status for a conflict.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../../src/native.js';

const cli = join(packageRoot, 'dist', 'src', 'cli.js');
const dev = (n: string) => join(packageRoot, 'test', 'fixtures', 'devices', n);
const solve = (...args: string[]) => spawnSync(process.execPath, [cli, 'solve', ...args], { encoding: 'utf8' });

t.test('solve --json: i915 scanout + render node texture -> XRGB8888 LINEAR from dumb@card0', async (t) => {
  const r = solve('--json', '--device-file', dev('i915-kbl-8086-5927.json'), '--use', 'card0:scanout', '--use', 'renderD128:texture', '--size', '1920x1080', '--format', 'XRGB8888,NV12');
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.ok, true);
  t.same(out.request, { width: 1920, height: 1080, formats: ['XRGB8888', 'NV12'] });
  t.equal(out.plan.chosen.allocator, 'dumb@card0');
  t.equal(out.plan.chosen.format, 'XRGB8888');
  t.equal(out.plan.chosen.modifier, 'LINEAR');
  t.equal(out.plan.chosen.planes[0].pitch, 7680);
  t.equal(out.constraints.members.length, 2);
  t.ok(out.plan.candidates.every((c: { reasons: unknown[] }) => c.reasons.length > 0), 'every allocator says why');
});

t.test('solve: a conflict exits 1 with reasons naming devices (JSON and text)', async (t) => {
  const enc = JSON.stringify({ device: 'encoder', usage: 'video-encode', formats: [{ format: 'NV12', modifiers: ['0x0800000000000001'] }] });
  const args = ['--device-file', `card0=${dev('msm-qcm2290-unoq.json')}`, '--use', 'card0:scanout', '--declare', enc, '--size', '1920x1080', '--format', 'XRGB8888,NV12'];
  const j = solve('--json', ...args);
  t.equal(j.status, 1);
  const out = JSON.parse(j.stdout);
  t.equal(out.ok, false);
  t.same(out.plan.reasons.map((r: { device: string; plane?: number }) => [r.device, r.plane ?? null]), [['card0', 35], ['encoder', null]]);
  t.equal(out.plan.chosen, null);
  const text = solve(...args);
  t.equal(text.status, 1);
  t.match(text.stdout, /result: CONFLICT/);
  t.match(text.stdout, /plane 35 on card0 accepts only LINEAR \(XRGB8888\), and not NV12/);
  t.match(text.stdout, /encoder \(video-encode\) accepts NV12 only as ARM_AFBC\(BLOCK_SIZE=16x16\)/);
});

t.test('solve: hibmc cannot import, so only dumb@card0 can serve it; bad arguments exit 2', async (t) => {
  const r = solve('--json', '--device-file', dev('hibmc-hi171x-kunpeng.json'), '--use', 'card0:scanout', '--use', 'cpu', '--size', '1024x768', '--format', 'XRGB8888');
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.plan.chosen.allocator, 'dumb@card0');
  const heap = out.plan.candidates.find((c: { allocator: string }) => c.allocator === 'dma-heap:system');
  t.match(heap.reasons[0].detail, /does not allocate on card0/);
  t.equal(solve('--size', '10x10').status, 2);
});

t.test('solve reads the recorded vkms fixture (primebuf devices --json), render-node driver included', async (t) => {
  const r = solve('--json', '--device-file', join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), '--use', 'card0:scanout:overlay', '--use', 'renderD128:texture', '--size', '640x480', '--format', 'NV12,XRGB8888');
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.plan.chosen.format, 'XRGB8888');
  t.match(out.constraints.members[0].source, /IN_FORMATS of overlay plane \d+ on card0 \(vkms/);
  t.match(out.constraints.members[1].source, /^vgem/);
  t.same(out.solution.reasons.map((x: { code: string; format: string }) => [x.code, x.format]), [['FORMAT', 'NV12']]);
});
