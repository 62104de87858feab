#!/usr/bin/env node
// The README's test command (`npm test`). On a fresh Debian 12 machine it installs what the
// build needs (apt packages, npm ci), builds the addon and the TypeScript, runs the host unit
// tests (test/unit) and then the conformance suite in the vkms VM (test/vkms).
//   --unit    host unit tests only          --vkms    vkms conformance suite (and the budget) only
//   other arguments are test files (dist paths or test/... .ts paths) to run instead of all.
// After the vkms suite, the per-frame budget (test/budget: the kiosk's cases against
// bench/baselines.json) runs in a VM of its own under the rig's --icount (instruction time).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { output, root, run, step } from './lib.mjs';

const argv = process.argv.slice(2);
const only = new Set(argv.filter((a) => a.startsWith('--')));
const files = argv.filter((a) => !a.startsWith('--'));
const wantUnit = only.has('--unit') || !only.has('--vkms');
const wantVkms = only.has('--vkms') || !only.has('--unit');

// What the build needs from Debian. pkg-config modules / commands -> the package providing them.
const APT = {
  'pkg-config': 'pkg-config',
  libdrm: 'libdrm-dev',
  'pixman-1': 'libpixman-1-dev',
  'wayland-server': 'libwayland-dev',
  'wayland-client': 'libwayland-dev',
  'wayland-scanner': 'libwayland-bin',
  gbm: 'libgbm-dev',
  egl: 'libegl-dev',
  // input: libinput (its -dev pulls libudev-dev) and xkbcommon (native/input.cc)
  libinput: 'libinput-dev',
  libudev: 'libudev-dev',
  xkbcommon: 'libxkbcommon-dev',
  libseat: 'libseat-dev', // the session (native/session.cc): libseat 0.7 in Debian 12
};

function missingSystemDeps() {
  const missing = new Set();
  if (output('sh', ['-c', 'command -v pkg-config']) === null) return new Set(Object.values(APT));
  for (const mod of ['libdrm', 'pixman-1', 'wayland-server', 'wayland-client', 'gbm', 'egl', 'libinput', 'libudev', 'xkbcommon', 'libseat']) {
    if (output('pkg-config', ['--exists', mod]) === null) missing.add(APT[mod]);
  }
  if (output('sh', ['-c', 'command -v wayland-scanner']) === null) missing.add(APT['wayland-scanner']);
  return missing;
}

export function ensureAptPackages(pkgs, why) {
  if (pkgs.length === 0) return;
  const list = pkgs.join(' ');
  if (process.getuid?.() !== 0) {
    throw new Error(`${why} needs Debian packages that are not installed: ${list}\n` +
      `  install them with: sudo apt-get install -y ${list}`);
  }
  step(`apt-get install ${list} (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { check: false, env }) !== 0) {
    run('apt-get', ['update'], { env });
    run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env });
  }
}

function newer(a, b) {
  return statSync(a).mtimeMs > statSync(b).mtimeMs;
}

function ensureNodeModules() {
  const stamp = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(stamp) && !newer(join(root, 'package-lock.json'), stamp)) return;
  step('npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

function listTests(dir) {
  const out = [];
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.js')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** test/unit/x.test.ts -> dist/test/unit/x.test.js; dist paths pass through. */
function toDist(file) {
  const rel = relative(root, join(process.cwd(), file));
  return rel.startsWith('dist/') ? rel : join('dist', rel.replace(/\.ts$/, '.js'));
}

/** Runs a command, streaming its output, and returns { status, total, pass, fail } from tap's summary. */
function runCounted(cmd, args, env = process.env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-65536);
    });
    child.on('close', (code, signal) => {
      const sums = [...tail.matchAll(/^# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?.*\}$/gm)];
      const last = sums.at(-1);
      const total = last ? Number(last[1]) : 0;
      const pass = last ? Number(last[2] ?? 0) : 0;
      const fail = last ? Number(last[3] ?? 0) : 0;
      resolve({ status: code ?? 128, signal, total, pass, fail });
    });
  });
}

const tap = join(root, 'node_modules', '.bin', 'tap');

/** What `npm test` does before it runs anything (also `npm run demo`): apt packages, npm ci, the build. */
export function prepareBuild() {
  step('system packages');
  ensureAptPackages([...missingSystemDeps()].sort(), 'building the primebuf addon');
  ensureNodeModules();
  run(process.execPath, [join(root, 'scripts', 'build.mjs')]);
}

async function main() {
  prepareBuild();

  const chosen = files.map(toDist);
  const unitFiles = files.length ? chosen.filter((f) => f.startsWith('dist/test/unit/')) : listTests(join(root, 'dist/test/unit')).map((f) => relative(root, f));
  const vkmsFiles = files.length ? chosen.filter((f) => f.startsWith('dist/test/vkms/')) : [];
  const budgetFiles = files.length ? chosen.filter((f) => f.startsWith('dist/test/budget/')) : listTests(join(root, 'dist/test/budget')).map((f) => relative(root, f));
  if (files.length && unitFiles.length + vkmsFiles.length + budgetFiles.length === 0) {
    throw new Error(`no test file matches ${files.join(' ')} (expected test/unit/..., test/vkms/... or test/budget/... .ts, or their dist/ .js)`);
  }
  const results = [];

  if (wantUnit && (files.length === 0 || unitFiles.length)) {
    step(`host unit tests (${unitFiles.length} files)`);
    if (unitFiles.length === 0) throw new Error('no unit tests found under dist/test/unit');
    results.push(['unit', await runCounted(tap, ['-R', 'tap', ...unitFiles])]);
  }
  if (wantVkms && (files.length === 0 || vkmsFiles.length)) {
    step('vkms conformance suite (in the VM)');
    results.push(['vkms', await runCounted(process.execPath, [join(root, 'scripts', 'vkms-vm.mjs'), 'test', ...vkmsFiles])]);
  }
  if (wantVkms && budgetFiles.length) {
    // Its own VM: the budget is judged in instruction time (QEMU's -icount), which the suite's
    // VM does not run under (README, "Instruction time: the clock, the baselines and the per-frame budget": the suite measured slower under it).
    step('per-frame budget (in the VM, instruction time)');
    const env = { ...process.env, PRIMEBUF_VM_TAP_TIMEOUT: process.env.PRIMEBUF_VM_TAP_TIMEOUT ?? '900' };
    results.push(['budget', await runCounted(process.execPath, [join(root, 'scripts', 'vkms-vm.mjs'), 'test', '--icount', ...budgetFiles], env)]);
  }

  let pass = 0;
  let fail = 0;
  let ok = true;
  for (const [name, r] of results) {
    pass += r.pass;
    fail += r.fail;
    const good = r.status === 0 && r.total > 0 && r.fail === 0;
    ok &&= good;
    console.log(`# ${name}: ${good ? 'ok' : 'FAILED'} (exit ${r.signal ?? r.status}, ${r.pass} passed, ${r.fail} failed)`);
    if (r.status !== 0 && r.fail === 0) fail += 1; // a run that died without counting still fails
  }
  console.log(`${pass} passed, ${fail} failed`);
  return ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`\nnpm test: ${err.message}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
