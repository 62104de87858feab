#!/usr/bin/env node
// Builds primebuf: generated TypeScript (from native/vendor and protocol/), the native addon
// (node-gyp, incremental) and the TypeScript (tsc). `--native` or `--ts` builds only one half.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { output, root, run, step } from './lib.mjs';

const args = new Set(process.argv.slice(2));
const all = !args.has('--native') && !args.has('--ts');

function nodeGyp(sub) {
  const bin = join(root, 'node_modules', '.bin', 'node-gyp');
  const extra = [];
  // Build against the running Node's own headers; never download them.
  if (!process.env.npm_config_nodedir) {
    const prefix = join(process.execPath, '..', '..');
    if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) extra.push(`--nodedir=${prefix}`);
  }
  run(bin, [sub, ...extra, '--jobs', 'max']);
}

function buildNative() {
  step('native addon (node-gyp)');
  // gyp evaluates the protocol list and pkg-config at configure time: reconfigure when they change.
  const stamp = join(root, 'build', '.configure-inputs');
  const inputs = [
    output(process.execPath, [join(root, 'scripts/gen/protocol-list.mjs')]) ?? '',
    readFileSync(join(root, 'binding.gyp'), 'utf8'),
    output('pkg-config', ['--modversion', 'libdrm', 'pixman-1', 'wayland-server', 'wayland-client', 'libinput', 'xkbcommon', 'libudev']) ?? '',
    output('pkg-config', ['--modversion', 'gbm']) ?? 'no gbm',
  ].join('\n');
  const configured = existsSync(join(root, 'build', 'Makefile')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === inputs;
  if (!configured) nodeGyp('configure');
  writeFileSync(stamp, inputs);
  nodeGyp('build');
}

// C programs the tests run (test/fixtures/*.c -> build/test-tools/<name>), rebuilt when their
// source is newer: uinput-inject (virtual input devices, test/util/uinput.ts). Absent from the
// published package (test/ is not in it), so only a checkout builds them.
function buildTestTools() {
  const dir = join(root, 'test', 'fixtures');
  const tools = ['uinput-inject'].filter((name) => existsSync(join(dir, `${name}.c`)));
  if (tools.length === 0) return;
  const out = join(root, 'build', 'test-tools');
  mkdirSync(out, { recursive: true });
  for (const name of tools) {
    const src = join(dir, `${name}.c`);
    const bin = join(out, name);
    if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) continue;
    step(`test tool: ${name} (gcc)`);
    run('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, src]);
  }
}

function generate() {
  // Every scripts/gen/gen-*.mjs writes its output under src/generated/ (git-ignored).
  const dir = join(root, 'scripts', 'gen');
  for (const name of readdirSync(dir).filter((n) => /^gen-.*\.mjs$/.test(n)).sort()) {
    step(`generate: ${name}`);
    run(process.execPath, [join(dir, name)]);
  }
}

function buildTs() {
  generate();
  step('TypeScript (tsc)');
  run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')]);
}

try {
  if (all || args.has('--native')) {
    buildNative();
    buildTestTools();
  }
  if (all || args.has('--ts')) buildTs();
} catch (err) {
  console.error(`build failed: ${err.message}`);
  process.exit(1);
}
