// Proves the native chain: the addon loads through src/native.ts, links libdrm, and its
// errors are primebuf's typed classes; RunOnPool keeps blocking work off the JS thread; the
// test-only natives stay out of the shipped code.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { native, packageRoot, testNative } from '../../src/native.js';

t.test('errnoName maps errno numbers to their names', async (t) => {
  t.equal(native.errnoName(22), 'EINVAL');
  t.equal(native.errnoName(16), 'EBUSY');
  t.equal(native.errnoName(2), 'ENOENT');
});

t.test('libdrm is linked: drmGetFormatName names XRGB8888', async (t) => {
  t.equal(native.drmGetFormatName(0x34325258), 'XR24');
});

t.test('argument checks throw TypeError/RangeError, not crashes', async (t) => {
  t.throws(() => native.drmGetFormatName(-1), RangeError);
  t.throws(() => native.drmGetFormatName('x' as unknown as number), TypeError);
  t.throws(() => native.drmGetFormatModifierName(-1n), RangeError);
});

t.test('RunOnPool (poolSleep): the JS thread keeps running while pool threads block; concurrent jobs all complete', async (t) => {
  let ticks = 0;
  const iv = setInterval(() => ticks++, 5);
  let done = false;
  const job = testNative.poolSleep(1000).then(() => {
    done = true;
  });
  while (ticks < 3) await new Promise((r) => setTimeout(r, 5));
  t.equal(done, false, 'three timer ticks ran while the pool thread still slept');
  await job;
  clearInterval(iv);
  t.ok(done);
  const finished: number[] = [];
  await Promise.all([1, 2, 3, 4, 5, 6].map((i) => testNative.poolSleep(20 * i).then(() => finished.push(i))));
  t.same(finished.sort(), [1, 2, 3, 4, 5, 6], 'six concurrent jobs (more than the pool has threads) all completed');
  t.throws(() => testNative.poolSleep(-1), RangeError, 'bad arguments are thrown synchronously, not queued');
});

t.test('RunOnPool at teardown: an environment that ends with a job still on the pool waits for it and ends cleanly', async (t) => {
  const nativeUrl = pathToFileURL(join(packageRoot, 'dist', 'src', 'native.js')).href;
  // a Worker terminated while its job sleeps on the pool: terminate() settles once the job did
  const code = `import(${JSON.stringify(nativeUrl)}).then(({ testNative }) => { testNative.poolSleep(300); require('node:worker_threads').parentPort.postMessage('queued'); });`;
  const w = new Worker(code, { eval: true });
  const errors: unknown[] = [];
  w.on('error', (e) => errors.push(e));
  await once(w, 'message');
  t.equal(await w.terminate(), 1, 'the worker was terminated (exit code 1) with its job pending, and the process lives on');
  t.same(errors, [], 'no error from the worker');
  // process.exit() with a job pending: the process exits with its own code, no abort
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `import { testNative } from ${JSON.stringify(nativeUrl)}; testNative.poolSleep(300); setTimeout(() => process.exit(7), 20);`], { encoding: 'utf8', timeout: 30_000 });
  t.equal(child.status, 7, `exit code 7 from process.exit(7), no signal (${child.signal ?? 'none'}) ${child.stderr.trim()}`);
  t.equal(child.stderr.trim(), '', 'nothing on stderr');
});

t.test('the test-only natives (src/native/test-only.ts) are not used by the shipped code in src/', async (t) => {
  const src = join(packageRoot, 'src');
  const names = ['testNative', 'countOpenFds', 'poolSleep', 'poolMemcpy', 'gemHandlesProbe', 'vgemFenceAttach', 'vgemFenceSignal'];
  const users: string[] = [];
  let files = 0;
  for (const rel of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts') || rel === 'native.ts' || rel === join('native', 'test-only.ts')) continue;
    files++;
    const text = readFileSync(join(src, rel), 'utf8');
    for (const n of names) if (text.includes(n)) users.push(`${rel}: ${n}`);
  }
  t.ok(files > 20, `read the sources (${files} files)`);
  t.same(users, [], 'no file outside native.ts and native/test-only.ts names them');
});

t.test('the allocation test hook (src/alloc/backends/test-hooks.ts) is only read by src/, never set or exported', async (t) => {
  const src = join(packageRoot, 'src');
  const users: string[] = [];
  for (const rel of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts') || rel === join('alloc', 'backends', 'test-hooks.ts')) continue;
    const text = readFileSync(join(src, rel), 'utf8');
    if (text.includes('test-hooks') || text.includes('allocTestHooks')) users.push(`${rel}: ${text.match(/allocTestHooks[^\n;]*|[^\n]*test-hooks[^\n]*/g)!.join(' | ')}`);
  }
  t.same(users, [
    "alloc/backends/allocators.ts: import { allocTestHooks } from './test-hooks.js'; | allocTestHooks.afterDmabuf?.(caps.name)",
  ], 'allocators.ts imports it and calls the hook if a test set one; no index re-exports it, nothing else sets it');
});
