// The copy's baseline loops (SSE2 streaming stores, the SSE2 build of every conversion) on a
// machine whose CPU has AVX2: the copy picks its loops once at load, so scanout-copy.test.ts runs
// again in a child process with PRIMEBUF_COPY_BASELINE=1, every same-format width and alignment
// and every conversion checked pixel for pixel there too.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { native } from '../../src/native.js';

const here = dirname(fileURLToPath(import.meta.url));

t.test('scanout-copy.test.ts with the baseline loops', (t) => {
  // the child is a plain run of the file, not one of the runner's (no TAP_* from this process)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP')));
  env.PRIMEBUF_COPY_BASELINE = '1';
  const width = spawnSync(process.execPath, ['--input-type=module', '-e', `import { native } from ${JSON.stringify(join(here, '../../src/native.js'))}; console.log(native.copyStoreBytes)`], { env, encoding: 'utf8' });
  t.equal(width.stdout.trim(), native.copyStreaming ? '16' : '0', 'the child streams 16 bytes per store (SSE2), or none without streaming');
  t.ok([0, 16, 32].includes(native.copyStoreBytes), `this process streams ${native.copyStoreBytes} bytes per store`);
  const run = spawnSync(process.execPath, [join(here, 'scanout-copy.test.js')], { env, encoding: 'utf8', timeout: 120_000 });
  const summary = /# \{ total: (\d+), pass: (\d+) \}/.exec(run.stdout);
  t.equal(run.status, 0, `the suite passes with the baseline loops${run.status === 0 ? '' : `:\n${run.stdout.split('\n').filter((l) => /not ok/.test(l)).join('\n')}`}`);
  t.ok(summary && Number(summary[1]) > 300 && summary[1] === summary[2], `every assertion passed (${summary?.[2]} of ${summary?.[1]})`);
  t.end();
});
