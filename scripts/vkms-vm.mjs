#!/usr/bin/env node
// The vkms rig: real DRM (vkms, vgem, udmabuf, the system dma-heap) in a qemu VM, for the
// conformance suite. Plain Node, no npm dependencies. See the README, "The vkms rig".
//
//   node scripts/vkms-vm.mjs prepare
//   node scripts/vkms-vm.mjs run  [options] -- <command> [args...]
//   node scripts/vkms-vm.mjs test [options] [dist/test/vkms/<file>.test.js ...]
//
// options: --timeout S           bound the command (default 1200 s; exit 124 when it expires)
//          --idle S              kill the VM when the command printed nothing for S seconds
//                                (exit 124; `test` sets the per-file limit + 60 s)
//          --without LIST        hide devices from the guest: vkms,vgem,udmabuf,heap
//          --vkms clone|stock|offsets   the vkms build (default clone: Virtual-1 + Writeback-1 clonable;
//                                offsets: clone that reads plane offsets once)
//          --icount              QEMU counts instructions: the guest's clocks (and CPU times) are
//                                instruction time, whatever the host's load (the benchmarks)
//          --console             stream the guest's kernel console to stderr
//          --runner node|tap     `test`: each file with node (default) or tap's runner
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HIDEABLE, cacheRoot } from './vm/config.mjs';
import { prepare } from './vm/prepare.mjs';
import { EXIT_RIG, runInVm } from './vm/run.mjs';
import { RigError, progress } from './vm/util.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage:
  node scripts/vkms-vm.mjs prepare                      download + build everything the VM needs (cached)
  node scripts/vkms-vm.mjs run [options] -- <cmd...>    run a command in the VM (cwd = this checkout)
  node scripts/vkms-vm.mjs test [options] [files...]    tap on dist/test/vkms tests in the VM
options:
  --timeout S         bound the command, seconds (default 1200; exit 124 when it expires)
  --idle S            kill the VM when the command printed nothing for S seconds (exit 124;
                      off for run; test: the per-file limit + 60, 660 by default)
  --without LIST      hide devices from the guest, comma-separated: ${HIDEABLE.join(',')}
                      (or PRIMEBUF_VM_WITHOUT=LIST)
  --vkms clone|stock|offsets
                      vkms build: clone (default; Virtual-1 and Writeback-1 clonable), stock,
                      or offsets (clone that reads a framebuffer's plane offset once)
  --icount            QEMU's -icount shift=0,sleep=on: the guest's clocks advance 1 ns per guest
                      instruction (CPU times become instruction counts, whatever the host's load);
                      the command sees PRIMEBUF_VM_CLOCK=icount (or PRIMEBUF_VM_ICOUNT=1)
  --console           stream the guest kernel console to stderr
  --runner node|tap   test: each file with node (default) or node-tap's runner (PRIMEBUF_VM_RUNNER)
cache: ${cacheRoot()} (PRIMEBUF_CACHE overrides ~/.cache/primebuf)`;

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      timeout: { type: 'string' },
      idle: { type: 'string' },
      without: { type: 'string' },
      vkms: { type: 'string' },
      console: { type: 'boolean' },
      icount: { type: 'boolean' },
      runner: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new RigError(`--timeout ${values.timeout}: not a positive number of seconds`);
  const idle = values.idle === undefined ? undefined : Number(values.idle);
  if (idle !== undefined && !(idle > 0)) throw new RigError(`--idle ${values.idle}: not a positive number of seconds`);
  if (values.runner !== undefined && !['node', 'tap'].includes(values.runner)) throw new RigError(`--runner ${values.runner}: node or tap`);
  return {
    runner: values.runner,
    help: values.help,
    positionals,
    opts: {
      timeout,
      idle,
      // PRIMEBUF_VM_WITHOUT reaches through npm: PRIMEBUF_VM_WITHOUT=udmabuf npm run test:vkms
      without: (values.without ?? process.env.PRIMEBUF_VM_WITHOUT ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      vkms: values.vkms,
      console: values.console,
      ...(values.icount ? { icount: true } : {}),
      cwd: root,
    },
  };
}

function vkmsTests() {
  const dir = join(root, 'dist/test/vkms');
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.js')) out.push(relative(root, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

async function main(argv) {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === 'prepare') {
    const vm = await prepare();
    progress(`ready: ${vm.kernel} + ${vm.initramfs}`);
    return 0;
  }
  if (cmd === 'run') {
    const { help, positionals, opts } = parse(rest);
    if (help) return console.log(USAGE), 0;
    return runInVm(positionals, opts);
  }
  if (cmd === 'test') {
    const { help, positionals, opts, runner } = parse(rest);
    if (help) return console.log(USAGE), 0;
    // test/vkms/x.test.ts -> dist/test/vkms/x.test.js (the guest runs what the host built)
    const toDist = (f) => {
      const rel = relative(root, resolve(f));
      return rel.startsWith('dist/') ? rel : join('dist', rel.replace(/\.ts$/, '.js'));
    };
    const files = positionals.length ? positionals.map(toDist) : vkmsTests();
    if (files.length === 0) throw new RigError('no dist/test/vkms/**/*.test.js: build first (npm run build)');
    for (const f of files) if (!existsSync(join(root, f))) throw new RigError(`${f}: no such test file (built? npm run build)`);
    if (!existsSync(join(root, 'node_modules/.bin/tap'))) throw new RigError('node_modules/.bin/tap is missing: run npm ci');
    // The whole run is bounded too: 20 minutes, or 5 per file for a long suite.
    opts.timeout ??= Math.max(1200, 300 * files.length);
    // Every file prints its assertions as they pass, and guest-test.sh kills a file after
    // PRIMEBUF_VM_TAP_TIMEOUT (600 s): silence for longer than that means the guest itself hung,
    // and the run fails then instead of at the whole-run bound (hours for the full suite).
    opts.idle ??= Number(process.env.PRIMEBUF_VM_TAP_TIMEOUT ?? 600) + 60;
    progress(`vkms suite: ${files.length} file(s)`);
    const env = runner ? { PRIMEBUF_VM_RUNNER: runner } : {};
    // What tests keep (writeback captures as PNGs: test/vkms/real-apps.test.ts) comes back to
    // $PRIMEBUF_ARTIFACTS, by default test-output/vkms in the checkout; the guest sees the same path.
    const artifacts = resolve(process.env.PRIMEBUF_ARTIFACTS || join(root, 'test-output', 'vkms'));
    mkdirSync(artifacts, { recursive: true });
    Object.assign(env, { PRIMEBUF_ARTIFACTS: artifacts });
    opts.artifacts = artifacts;
    return runInVm(['/bin/bash', 'scripts/vm/guest-test.sh', ...files], { ...opts, env });
  }
  throw new RigError(`unknown command ${cmd}\n${USAGE}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`vkms-vm: ${err instanceof RigError ? err.message : err.stack}\n`);
    process.exit(EXIT_RIG);
  },
);
