// `run`: boots the vkms VM (qemu, software emulation), runs one command in it and streams its
// stdout/stderr to ours. The guest sees the host root read-only over virtio-9p under a tmpfs
// overlay and chroots into it, so the checkout has the same absolute path and the host's node,
// node_modules and Debian tools are what runs. See init.sh for the guest side.
//
// Exit statuses: the command's own; 124 when --timeout expired; 125 when the rig failed (setup
// error in the guest, or the VM died while the command ran: never retried). A VM that died
// before the command started (a TCG kernel oops, ~1 boot in 45) is retried.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_ATTEMPTS, HIDEABLE, ICOUNT_ARGS, LAYOUTS, QEMU, TIMEOUTS, VKMS_VARIANTS, cacheRoot } from './config.mjs';
import { nodeModulesImage, prepare } from './prepare.mjs';
import { RigError, progress, q } from './util.mjs';

export const EXIT_TIMEOUT = 124;
export const EXIT_RIG = 125;

/** Host environment variables that reach the guest command. */
const ENV_PASS = /^(PATH|HOME|USER|LOGNAME|LANG|LC_[A-Z]+|TZ|CI|NO_COLOR|FORCE_COLOR|NODE_OPTIONS|NODE_DEBUG|DEBUG|PRIMEBUF_.*|TAP|TAP_.*)$/;

function commandScript(argv, cwd, extraEnv) {
  const env = Object.entries(process.env).filter(([k]) => ENV_PASS.test(k));
  env.push(['XDG_RUNTIME_DIR', '/run/user/0'], ['PRIMEBUF_IN_VM', '1'], ...Object.entries(extraEnv));
  return [
    '# written by scripts/vm/run.mjs; run by the guest init inside the chroot',
    ...env.map(([k, v]) => `export ${k}=${q(v)}`),
    `cd ${q(cwd)} || exit 125`,
    `exec ${argv.map(q).join(' ')}`,
    '',
  ].join('\n');
}

/** A unix socket server accepting qemu's one chardev connection; collects or forwards data. */
function portServer(path, onData) {
  return new Promise((resolve, reject) => {
    const state = { ended: null, conn: null };
    let endResolve;
    state.ended = new Promise((r) => (endResolve = r));
    const server = createServer((conn) => {
      state.conn = conn;
      conn.on('data', onData);
      conn.on('error', () => {});
      conn.on('close', () => endResolve());
      server.close();
    });
    server.on('error', reject);
    server.listen(path, () => resolve({ server, state, endNoConn: () => endResolve() }));
  });
}

function qemuArgs(vm, sockDir, runDir, opts) {
  const append = [
    'console=ttyS0', 'quiet', 'loglevel=4', 'panic=-1', 'oops=panic', 'nokaslr',
    `primebuf.run=${runDir}`, `primebuf.vkms=${opts.vkms}`, `primebuf.layout=${opts.layout}`,
    ...(vm.nodeModules ? [`primebuf.nm=${vm.nodeModules.dir}`] : []),
    ...([runDir, opts.cwd].some((p) => p === '/tmp' || p.startsWith('/tmp/')) ? ['primebuf.hosttmp=1'] : []),
    ...(opts.without.length ? [`primebuf.without=${opts.without.join(',')}`] : []),
    ...(process.env.PRIMEBUF_VM_APPEND ? [process.env.PRIMEBUF_VM_APPEND] : []),
  ].join(' ');
  const port = (name) => [
    '-chardev', `socket,id=${name},path=${join(sockDir, name)}`,
    '-device', `virtserialport,bus=vs.0,chardev=${name},name=primebuf.${name}`,
  ];
  return [
    '-accel', 'tcg', '-cpu', QEMU.cpu, '-m', QEMU.memory, '-smp', QEMU.cpus,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', vm.kernel, '-initrd', vm.initramfs, '-append', append,
    '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
    '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-device', 'virtio-serial-pci,id=vs',
    ...port('ctl'), ...port('stdout'), ...port('stderr'),
    ...(vm.nodeModules ? ['-drive', `file=${vm.nodeModules.image},format=raw,if=virtio,readonly=on`] : []),
    ...(opts.icount ? ICOUNT_ARGS : []),
    // Writable: what the command keeps (test captures) lands on the host (mounted by guest-test.sh)
    ...(opts.artifacts ? ['-fsdev', `local,id=artifacts,path=${opts.artifacts},security_model=none`,
      '-device', 'virtio-9p-pci,fsdev=artifacts,mount_tag=artifacts'] : []),
    ...(process.env.PRIMEBUF_VM_QEMU_ARGS ? process.env.PRIMEBUF_VM_QEMU_ARGS.split(' ').filter(Boolean) : []),
  ];
}

/**
 * The boot's bound (s). Under icount the vCPUs take turns on one host thread and every
 * instruction is counted: the boot takes about twice as long (45-55 s on a loaded host against
 * 20-70 s), so it gets at least 300 s before it counts as hung.
 */
function bootLimit(o) {
  return o.icount && !process.env.PRIMEBUF_VM_BOOT_TIMEOUT ? Math.max(TIMEOUTS.boot, 300) : TIMEOUTS.boot;
}

/** One boot. Resolves { started, status, fail, died, timedOut, console, bootSeconds }. */
async function boot(vm, argvOpts, runDir, attempt) {
  const sockDir = mkdtempSync(join(tmpdir(), 'primebuf-vm-'));
  const t0 = Date.now();
  const r = { interrupted: 0, started: false, status: null, fail: null, timedOut: false, bootTimedOut: false, console: '', bootSeconds: null };
  let ctlBuf = '';
  let child;
  const kill = () => { try { child?.kill('SIGKILL'); } catch { /* gone */ } };
  let cmdTimer = null;
  // The silence watchdog (opts.idle): a guest that printed nothing for that long is wedged.
  let lastOutput = Date.now();
  let idleTimer = null;
  const onCtl = (d) => {
    ctlBuf += d;
    let nl;
    while ((nl = ctlBuf.indexOf('\n')) >= 0) {
      const line = ctlBuf.slice(0, nl).trim();
      ctlBuf = ctlBuf.slice(nl + 1);
      if (line === 'booted') r.initSeconds = (Date.now() - t0) / 1000;
      else if (line === 'started') {
        r.started = true;
        r.bootSeconds = (Date.now() - t0) / 1000;
        clearTimeout(bootTimer);
        progress(`VM booted in ${r.bootSeconds.toFixed(1)}s (kernel ${r.initSeconds?.toFixed(1) ?? '?'}s, modules + mounts ${(r.bootSeconds - (r.initSeconds ?? 0)).toFixed(1)}s); command running`);
        cmdTimer = setTimeout(() => { r.timedOut = true; kill(); }, argvOpts.timeout * 1000);
        lastOutput = Date.now();
        if (argvOpts.idle) {
          idleTimer = setInterval(() => {
            if (Date.now() - lastOutput > argvOpts.idle * 1000) { r.idleTimedOut = true; kill(); }
          }, 5000);
        }
      } else if (line.startsWith('exit ')) r.status = Number(line.slice(5));
      else if (line.startsWith('fail ')) r.fail = line.slice(5);
    }
  };
  const ports = {
    ctl: await portServer(join(sockDir, 'ctl'), onCtl),
    stdout: await portServer(join(sockDir, 'stdout'), (d) => { lastOutput = Date.now(); process.stdout.write(d); }),
    stderr: await portServer(join(sockDir, 'stderr'), (d) => { lastOutput = Date.now(); process.stderr.write(d); }),
  };
  const args = qemuArgs(vm, sockDir, runDir, argvOpts);
  if (attempt === 1 && process.env.PRIMEBUF_VM_DEBUG) progress(`qemu-system-x86_64 ${args.join(' ')}`);
  child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const onConsole = (d) => {
    r.console = (r.console + d).slice(-65536);
    if (argvOpts.console) process.stderr.write(d);
  };
  child.stdout.on('data', onConsole);
  child.stderr.on('data', onConsole);
  const bootTimer = setTimeout(() => { r.bootTimedOut = true; kill(); }, bootLimit(argvOpts) * 1000);
  // Interrupted: kill the VM and stop (no retry); the caller exits 128 + signal.
  const forward = (sig) => () => { r.interrupted = 128 + (sig === 'SIGINT' ? 2 : 15); kill(); };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const exit = await new Promise((resolve) => {
    child.on('error', (e) => resolve({ error: e }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(bootTimer);
  clearTimeout(cmdTimer);
  clearInterval(idleTimer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  if (exit.error) throw new RigError(`qemu-system-x86_64: ${exit.error.message}`);
  for (const p of Object.values(ports)) {
    p.server.close();
    if (!p.state.conn) p.endNoConn();
  }
  await Promise.all(Object.values(ports).map((p) => p.state.ended));
  rmSync(sockDir, { recursive: true, force: true });
  r.qemuExit = exit.signal ?? exit.code;
  r.totalSeconds = (Date.now() - t0) / 1000;
  return r;
}

function consoleTail(text, lines = 40) {
  return text.split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n');
}

/**
 * Runs argv in the VM with cwd (an absolute host path, the same in the guest).
 * opts: { timeout (s), idle (s: kill the VM when the command printed nothing for that long; off
 *         when unset), without: [...], vkms: 'clone'|'stock'|'offsets', layout: 'vkms-first'|'vgem-first'
 *         (default $PRIMEBUF_VM_LAYOUT, else vkms-first), console: bool, env: {},
 *         icount: bool (QEMU's -icount: the guest's clocks count instructions; default
 *         $PRIMEBUF_VM_ICOUNT=1), artifacts: a host folder shared writable with the guest
 *         (9p tag `artifacts`; scripts/vm/guest-test.sh mounts it at the same path) }
 */
export async function runInVm(argv, opts = {}) {
  const o = {
    timeout: opts.timeout ?? TIMEOUTS.command,
    idle: opts.idle ?? null,
    without: opts.without ?? [],
    cwd: opts.cwd ?? process.cwd(),
    vkms: opts.vkms ?? 'clone',
    // vgem-first: vgem becomes card0 (no KMS) and vkms card1 (init.sh)
    layout: opts.layout ?? process.env.PRIMEBUF_VM_LAYOUT ?? 'vkms-first',
    console: opts.console ?? false,
    icount: opts.icount ?? process.env.PRIMEBUF_VM_ICOUNT === '1',
    artifacts: opts.artifacts ?? null,
  };
  if (!LAYOUTS.includes(o.layout)) throw new RigError(`layout ${o.layout}: not one of ${LAYOUTS.join(', ')}`);
  for (const w of o.without) {
    if (!HIDEABLE.includes(w)) throw new RigError(`--without ${w}: not one of ${HIDEABLE.join(', ')}`);
  }
  if (!VKMS_VARIANTS.includes(o.vkms)) throw new RigError(`--vkms ${o.vkms}: not one of ${VKMS_VARIANTS.join(', ')}`);
  if (argv.length === 0) throw new RigError('no command to run');
  const cwd = o.cwd;
  const vm = { ...await prepare() };
  // A worktree's node_modules may be a symlink to another checkout's: the image goes over the
  // directory it resolves to (the guest's init mounts it there; the symlink leads to it).
  const nmLink = join(cwd, 'node_modules');
  const nm = existsSync(nmLink) ? realpathSync(nmLink) : nmLink;
  if (existsSync(nm) && !process.env.PRIMEBUF_VM_NM_9P) vm.nodeModules = { dir: nm, image: await nodeModulesImage(nm) };
  const runs = join(cacheRoot(), 'runs');
  mkdirSync(runs, { recursive: true });
  const runDir = mkdtempSync(join(runs, 'run-'));
  try {
    for (const p of [runDir, cwd, ...(o.artifacts ? [o.artifacts] : [])]) {
      if (/\s/.test(p)) throw new RigError(`${p}: the rig passes paths on the kernel command line; whitespace is not supported`);
    }
    if (o.artifacts?.includes(',')) throw new RigError(`${o.artifacts}: QEMU's -fsdev takes the path in a comma-separated list; no commas`);
    writeFileSync(join(runDir, 'cmd.sh'), commandScript(argv, cwd, { PRIMEBUF_VM_VKMS: o.vkms, PRIMEBUF_VM_CLOCK: o.icount ? 'icount' : 'wall', ...opts.env }));
    for (let attempt = 1; attempt <= BOOT_ATTEMPTS; attempt++) {
      progress(`booting the VM (${vm.abi}${o.icount ? ', icount' : ''}${o.without.length ? `, without ${o.without.join(',')}` : ''}${attempt > 1 ? `, attempt ${attempt}/${BOOT_ATTEMPTS}` : ''})`);
      const r = await boot(vm, o, runDir, attempt);
      if (r.interrupted) {
        process.stderr.write('vkms VM: interrupted; VM killed\n');
        return r.interrupted;
      }
      if (r.fail) {
        process.stderr.write(`vkms VM: setup failed in the guest: ${r.fail}\n${consoleTail(r.console)}\n`);
        return EXIT_RIG;
      }
      if (!r.started) {
        const why = r.bootTimedOut ? `did not start the command within ${bootLimit(o)}s` : `died during boot (qemu exit ${r.qemuExit})`;
        process.stderr.write(`vkms VM: the VM ${why}; console:\n${consoleTail(r.console)}\n`);
        continue;
      }
      const cmdSeconds = r.totalSeconds - r.bootSeconds;
      if (r.timedOut) {
        process.stderr.write(`vkms VM: the command timed out after ${o.timeout}s; VM killed\n`);
        return EXIT_TIMEOUT;
      }
      if (r.idleTimedOut) {
        process.stderr.write(`vkms VM: the command printed nothing for ${o.idle}s after ${cmdSeconds.toFixed(0)}s of running: the guest looks wedged ` +
          `(for the test suite: a file's own time limit would have printed); VM killed. Console:\n${consoleTail(r.console)}\n`);
        return EXIT_TIMEOUT;
      }
      if (r.status === null) {
        process.stderr.write(`vkms VM: the VM died while the command ran (qemu exit ${r.qemuExit}); not retried. Console:\n${consoleTail(r.console)}\n`);
        return EXIT_RIG;
      }
      progress(`command exited ${r.status} after ${cmdSeconds.toFixed(1)}s (boot ${r.bootSeconds.toFixed(1)}s, VM total ${r.totalSeconds.toFixed(1)}s)`);
      return r.status;
    }
    process.stderr.write(`vkms VM: ${BOOT_ATTEMPTS} boots died before the command started; giving up\n`);
    return EXIT_RIG;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}
