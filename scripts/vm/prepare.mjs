// `prepare`: everything the vkms VM needs, cached outside the repository and rebuilt only when
// its inputs change. Stages (each published atomically under a name derived from its inputs):
//   debs/                      the Debian kernel packages (apt-get download: verified by apt)
//   kernel-<abi>/              linux-image (vmlinuz + modules), dpkg -x
//   headers-<abi>/             linux-headers (+ -common, linux-kbuild), dpkg -x, Makefile re-rooted
//   vkms-src-<version>/        drivers/gpu/drm/vkms from linux-source-6.12 (streamed out of the .deb)
//   vkms-<hash>/{clone,stock,offsets}.ko   vkms built out of tree (hash: abi, source, patches, build flags)
//   initramfs-<hash>.cpio      busybox + init + modules (hash: all of those)
// A flock on <cache>/lock serialises checkouts that prepare at the same time; the warm path
// (everything present) takes no lock and runs no tool.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCpio } from './cpio.mjs';
import {
  GUEST_MODULES, HOST_PACKAGES, KERNEL_FLAVOUR, KERNEL_PIN, KERNEL_SERIES, TIMEOUTS, VKMS_PATCHES, VKMS_VARIANTS, cacheRoot,
} from './config.mjs';
import { RigError, exec, fileHash, lock, progress, publish, q, sh, sha256, timed } from './util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** Bump when the layout or the way a stage is produced changes without its inputs changing. */
const FORMAT = 'primebuf-vm-1';
const BUILD_FLAGS = ['CONFIG_DRM_VKMS=m', 'CONFIG_DEBUG_INFO_BTF_MODULES=']; // no BTF: needs pahole, useless here
const CLONE_PATCH = join(here, 'vkms-clone.patch');
const OFFSETS_PATCH = join(here, 'vkms-offsets.patch');
const INIT = join(here, 'init.sh');
const BUSYBOX = '/bin/busybox';

const isRoot = () => process.getuid?.() === 0;
const aptEnv = () => ({ ...process.env, DEBIAN_FRONTEND: 'noninteractive' });

/** Host packages: apt-installs the missing ones (root), or says exactly what to install. */
export async function ensureHostPackages(extra = {}) {
  // What building vkms.ko needs besides the kernel headers (the Debian headers name gcc-12).
  const build = { make: '/usr/bin/make', 'gcc-12': '/usr/bin/x86_64-linux-gnu-gcc-12', binutils: '/usr/bin/strip', patch: '/usr/bin/patch' };
  const want = { ...HOST_PACKAGES, ...build, ...extra };
  const missing = Object.entries(want).filter(([, file]) => !existsSync(file)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const list = missing.join(' ');
  if (!isRoot()) {
    throw new RigError(`the vkms rig needs Debian packages that are not installed: ${list}\n` +
      `  install them as root: apt-get install -y --no-install-recommends ${list}`);
  }
  await timed(`apt-get install ${list}`, async () => {
    // Another checkout (or npm test) may be running apt: wait for dpkg's lock instead of failing.
    const wait = ['-o', `DPkg::Lock::Timeout=${TIMEOUTS.apt}`];
    const args = [...wait, 'install', '-y', '--no-install-recommends', ...missing];
    try {
      await exec('apt-get', args, { timeout: TIMEOUTS.apt, env: aptEnv() });
    } catch {
      await exec('apt-get', [...wait, 'update'], { timeout: TIMEOUTS.apt, env: aptEnv() });
      await exec('apt-get', args, { timeout: TIMEOUTS.apt, env: aptEnv() });
    }
  });
}

async function aptField(pkg, field) {
  try {
    const out = await exec('apt-cache', ['show', '--no-all-versions', pkg], { capture: true, timeout: 120 });
    return out.match(new RegExp(`^${field}: (.+)$`, 'm'))?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

/** The kernel to use: the pin when cached or offered by apt, else the newest 6.12 apt offers. */
export async function resolveKernel(root) {
  for (const name of readdirSync(root).filter((n) => n === `kernel-${KERNEL_PIN}`)) {
    const meta = join(root, name, 'meta.json');
    if (existsSync(meta)) return JSON.parse(readFileSync(meta, 'utf8'));
  }
  const tryApt = async () => {
    const version = await aptField(`linux-image-${KERNEL_PIN}-${KERNEL_FLAVOUR}`, 'Version');
    if (version) return { abi: KERNEL_PIN, version };
    const dep = await aptField(`linux-image-${KERNEL_SERIES}-${KERNEL_FLAVOUR}`, 'Depends');
    const abi = dep?.match(new RegExp(`linux-image-(${KERNEL_SERIES.replace('.', '\\.')}\\.[^ ,]+)-${KERNEL_FLAVOUR}`))?.[1];
    if (!abi) return null;
    const v = await aptField(`linux-image-${abi}-${KERNEL_FLAVOUR}`, 'Version');
    if (!v) return null;
    progress(`WARNING: the pinned kernel ${KERNEL_PIN} is not offered by apt; using the newest ${KERNEL_SERIES}: ${abi} ` +
      '(update KERNEL_PIN in scripts/vm/config.mjs)');
    return { abi, version: v };
  };
  let k = await tryApt();
  if (!k && isRoot()) {
    await timed('apt-get update (no 6.12 kernel known to apt)', () =>
      exec('apt-get', ['-o', `DPkg::Lock::Timeout=${TIMEOUTS.apt}`, 'update'], { timeout: TIMEOUTS.apt, env: aptEnv() }));
    k = await tryApt();
  }
  if (!k) {
    throw new RigError(`apt offers neither linux-image-${KERNEL_PIN}-${KERNEL_FLAVOUR} nor linux-image-${KERNEL_SERIES}-${KERNEL_FLAVOUR}: ` +
      'the Debian bookworm-security suite must be in the apt sources (run apt-get update as root)');
  }
  return k;
}

function packagesFor(k) {
  return [
    [`linux-image-${k.abi}-${KERNEL_FLAVOUR}`, k.version],
    [`linux-headers-${k.abi}-${KERNEL_FLAVOUR}`, k.version],
    [`linux-headers-${k.abi}-common`, k.version],
    [`linux-kbuild-${k.abi}`, k.version],
    [`linux-source-${KERNEL_SERIES}`, k.sourceVersion ?? k.version],
  ];
}

function debPath(debs, pkg, version) {
  if (!existsSync(debs)) return null;
  const prefix = `${pkg}_${version.replaceAll(':', '%3a')}_`;
  const f = readdirSync(debs).find((n) => n.startsWith(prefix) && n.endsWith('.deb'));
  return f ? join(debs, f) : null;
}

async function download(root, k) {
  const debs = join(root, 'debs');
  mkdirSync(debs, { recursive: true });
  if (!k.sourceVersion) {
    const ok = await aptField(`linux-source-${KERNEL_SERIES}=${k.version}`, 'Version');
    k.sourceVersion = ok ?? await aptField(`linux-source-${KERNEL_SERIES}`, 'Version');
    if (!k.sourceVersion) throw new RigError(`apt offers no linux-source-${KERNEL_SERIES}`);
    if (!ok) progress(`WARNING: linux-source-${KERNEL_SERIES} ${k.version} is not offered; building vkms from ${k.sourceVersion}`);
  }
  const need = packagesFor(k).filter(([p, v]) => !debPath(debs, p, v));
  if (need.length) {
    await timed(`downloading ${need.map(([p]) => p).join(', ')}`, async () => {
      const tmp = mkdtempSync(join(root, 'tmp-debs-'));
      try {
        await exec('apt-get', ['-o', 'APT::Sandbox::User=root', '-o', 'Debug::NoLocking=1', 'download', ...need.map(([p, v]) => `${p}=${v}`)],
          { cwd: tmp, timeout: TIMEOUTS.download, env: aptEnv() });
        for (const f of readdirSync(tmp)) publish(join(tmp, f), join(debs, f));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
  return Object.fromEntries(packagesFor(k).map(([p, v]) => [p, debPath(debs, p, v)]));
}

function stageTmp(root, name) {
  return mkdtempSync(join(root, `tmp-${name}-`));
}

async function extractKernel(root, k, debs) {
  const dir = join(root, `kernel-${k.abi}`);
  if (existsSync(join(dir, 'meta.json'))) return dir;
  await timed(`extracting linux-image-${k.abi}`, async () => {
    const tmp = stageTmp(root, 'kernel');
    await exec('dpkg-deb', ['-x', debs[`linux-image-${k.abi}-${KERNEL_FLAVOUR}`], tmp], { timeout: TIMEOUTS.extract });
    writeFileSync(join(tmp, 'meta.json'), JSON.stringify({ abi: k.abi, version: k.version, sourceVersion: k.sourceVersion }, null, 1));
    publish(tmp, dir);
  });
  return dir;
}

async function extractHeaders(root, k, debs) {
  const dir = join(root, `headers-${k.abi}`);
  const kdir = join(dir, 'usr/src', `linux-headers-${k.abi}-${KERNEL_FLAVOUR}`);
  if (existsSync(join(dir, '.done'))) return kdir;
  await timed(`extracting linux-headers-${k.abi}`, async () => {
    const tmp = stageTmp(root, 'headers');
    for (const p of [`linux-headers-${k.abi}-${KERNEL_FLAVOUR}`, `linux-headers-${k.abi}-common`, `linux-kbuild-${k.abi}`]) {
      await exec('dpkg-deb', ['-x', debs[p], tmp], { timeout: TIMEOUTS.extract });
    }
    // The flavour's Makefile includes the -common one by absolute path under /usr/src: re-root it.
    const mk = join(tmp, 'usr/src', `linux-headers-${k.abi}-${KERNEL_FLAVOUR}`, 'Makefile');
    const text = readFileSync(mk, 'utf8');
    if (!/^include \/usr\/src\//m.test(text)) throw new RigError(`unexpected ${mk}:\n${text}`);
    writeFileSync(mk, text.replace(/^include \/usr\/src\//m, `include ${dir}/usr/src/`));
    writeFileSync(join(tmp, '.done'), '');
    publish(tmp, dir);
  });
  return kdir;
}

async function extractVkmsSource(root, k, debs) {
  const dir = join(root, `vkms-src-${k.sourceVersion}`);
  if (existsSync(join(dir, 'Makefile'))) return dir;
  await timed(`extracting drivers/gpu/drm/vkms from linux-source-${KERNEL_SERIES} ${k.sourceVersion}`, async () => {
    const tmp = stageTmp(root, 'vkms-src');
    const deb = debs[`linux-source-${KERNEL_SERIES}`];
    await sh(`dpkg-deb --fsys-tarfile ${q(deb)} | tar -xO ./usr/src/linux-source-${KERNEL_SERIES}.tar.xz | ` +
      `tar -xJ -C ${q(tmp)} --strip-components=5 --wildcards '*/drivers/gpu/drm/vkms/*'`, { timeout: TIMEOUTS.extract });
    if (!existsSync(join(tmp, 'Makefile'))) throw new RigError('linux-source has no drivers/gpu/drm/vkms/Makefile');
    publish(tmp, dir);
  });
  return dir;
}

function vkmsKey(k) {
  return sha256(FORMAT, k.abi, k.sourceVersion, readFileSync(CLONE_PATCH), readFileSync(OFFSETS_PATCH), JSON.stringify(VKMS_PATCHES), BUILD_FLAGS.join(' ')).slice(0, 16);
}

async function buildVkms(root, k, headers, src) {
  const dir = join(root, `vkms-${vkmsKey(k)}`);
  if (VKMS_VARIANTS.every((v) => existsSync(join(dir, `${v}.ko`)))) return dir;
  const tmp = stageTmp(root, 'vkms');
  for (const variant of VKMS_VARIANTS) {
    await timed(`building vkms.ko (${variant}) for ${k.abi}`, async () => {
      const b = join(tmp, `build-${variant}`);
      await exec('cp', ['-r', src, b], { timeout: 60 });
      for (const patch of VKMS_PATCHES[variant] ?? []) await exec('patch', ['-p1', '--forward', '--quiet', '-i', join(here, patch)], { cwd: b, timeout: 60 });
      await exec('make', ['-C', headers, `M=${b}`, ...BUILD_FLAGS, '-j2', 'modules'], { timeout: TIMEOUTS.build, capture: true });
      await exec('strip', ['--strip-debug', '-o', join(tmp, `${variant}.ko`), join(b, 'vkms.ko')], { timeout: 60 });
      rmSync(b, { recursive: true, force: true });
    });
  }
  publish(tmp, dir);
  return dir;
}

/** Module name -> file under kernel/ (names compare with '-' as '_', like kmod). */
function moduleIndex(kdir) {
  const idx = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(e.name)) idx.set(e.name.replace(/\.ko(\..*)?$/, '').replaceAll('-', '_'), p);
    }
  };
  walk(kdir);
  return idx;
}

async function modinfo(field, file) {
  const out = (await exec('modinfo', ['-F', field, file], { capture: true, timeout: 30 })).trim();
  return out;
}

/** Load order for GUEST_MODULES: dependencies (and softdep pre:) first. */
async function moduleOrder(k, kernelDir, vkmsDir) {
  const modRoot = join(kernelDir, 'lib/modules', `${k.abi}-${KERNEL_FLAVOUR}`);
  const idx = moduleIndex(join(modRoot, 'kernel'));
  idx.set('vkms', join(vkmsDir, 'clone.ko'));
  const order = [];
  const seen = new Set();
  const visit = async (name) => {
    name = name.replaceAll('-', '_');
    if (seen.has(name)) return;
    seen.add(name);
    const file = idx.get(name);
    if (!file) throw new RigError(`module ${name} is not in ${modRoot}`);
    const deps = (await modinfo('depends', file)).split(',').filter(Boolean);
    const soft = (await modinfo('softdep', file)).match(/pre:\s*([^:]*?)(\s+post:|$)/)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
    for (const d of [...soft.filter((s) => idx.has(s.replaceAll('-', '_'))), ...deps]) await visit(d);
    order.push({ name, file });
  };
  for (const [name] of GUEST_MODULES) await visit(name);
  const opts = new Map(GUEST_MODULES);
  return order.map((m) => ({ ...m, opts: opts.get(m.name) ?? '' }));
}

function initramfsKey(k, vkmsDir) {
  return sha256(FORMAT, k.abi, k.version, fileHash(BUSYBOX), readFileSync(INIT), JSON.stringify(GUEST_MODULES), vkmsDir,
    readFileSync(join(here, 'cpio.mjs'))).slice(0, 16);
}

async function buildInitramfs(root, k, kernelDir, vkmsDir) {
  const out = join(root, `initramfs-${initramfsKey(k, vkmsDir)}.cpio`);
  if (existsSync(out)) return out;
  await timed('assembling the initramfs', async () => {
    const mods = await moduleOrder(k, kernelDir, vkmsDir);
    const entries = [
      { path: 'bin', dir: true }, { path: 'dev', dir: true }, { path: 'etc', dir: true }, { path: 'lib', dir: true },
      { path: 'lib/modules', dir: true }, { path: 'proc', dir: true }, { path: 'sys', dir: true },
      { path: 'dev/console', char: [5, 1], mode: 0o600 },
      { path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
      { path: 'init', data: readFileSync(INIT), mode: 0o755 },
    ];
    const list = [];
    for (const m of mods) {
      if (m.name === 'vkms') {
        for (const v of VKMS_VARIANTS) entries.push({ path: `lib/modules/vkms-${v}.ko`, data: readFileSync(join(vkmsDir, `${v}.ko`)), mode: 0o644 });
        list.push(`vkms vkms.ko ${m.opts}`);
        continue;
      }
      let data;
      if (m.file.endsWith('.xz')) data = await exec('xz', ['-dc', m.file], { capture: 'buffer', timeout: 60 });
      else data = readFileSync(m.file);
      entries.push({ path: `lib/modules/${m.name}.ko`, data, mode: 0o644 });
      list.push(`${m.name} ${m.name}.ko ${m.opts}`);
    }
    entries.push({ path: 'etc/modules.list', data: Buffer.from(list.join('\n') + '\n'), mode: 0o644 });
    const tmp = `${out}.tmp-${process.pid}`;
    writeCpio(tmp, entries);
    publish(tmp, out);
    progress(`initramfs: ${mods.map((m) => m.name).join(' ')} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
  });
  return out;
}

function vmlinuzOf(kernelDir, k) {
  return join(kernelDir, 'boot', `vmlinuz-${k.abi}-${KERNEL_FLAVOUR}`);
}

/** The warm path: everything already built for the cached pin. No tools run, no lock. */
function cached(root) {
  const metaFile = join(root, `kernel-${KERNEL_PIN}`, 'meta.json');
  if (!existsSync(metaFile)) return null;
  const k = JSON.parse(readFileSync(metaFile, 'utf8'));
  const vkmsDir = join(root, `vkms-${vkmsKey(k)}`);
  if (!VKMS_VARIANTS.every((v) => existsSync(join(vkmsDir, `${v}.ko`)))) return null;
  const initramfs = join(root, `initramfs-${initramfsKey(k, vkmsDir)}.cpio`);
  const kernel = vmlinuzOf(join(root, `kernel-${k.abi}`), k);
  if (!existsSync(initramfs) || !existsSync(kernel)) return null;
  const now = new Date();
  utimesSync(initramfs, now, now); // in use: see gc()
  return { kernel, initramfs, abi: k.abi };
}

/** Makes sure the kernel and initramfs exist; returns their paths. */
export async function prepare() {
  await ensureHostPackages();
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });
  const warm = cached(root);
  if (warm) return warm;
  const started = Date.now();
  const held = await lock(join(root, 'lock'), TIMEOUTS.lock,
    () => progress(`waiting for another checkout preparing ${root} (flock)`));
  try {
    const again = cached(root);
    if (again) return again;
    // Leftovers of an interrupted prepare (we hold the lock: nobody else is writing).
    for (const n of readdirSync(root)) {
      if (n.startsWith('tmp-') || /^initramfs-.*\.tmp-/.test(n)) rmSync(join(root, n), { recursive: true, force: true });
    }
    const k = await resolveKernel(root);
    progress(`kernel ${k.abi} (${k.version}); cache ${root}`);
    const debs = await download(root, k);
    const kernelDir = await extractKernel(root, k, debs);
    const headers = await extractHeaders(root, k, debs);
    const src = await extractVkmsSource(root, k, debs);
    const vkmsDir = await buildVkms(root, k, headers, src);
    const initramfs = await buildInitramfs(root, k, kernelDir, vkmsDir);
    progress(`VM prepared in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return { kernel: vmlinuzOf(kernelDir, k), initramfs, abi: k.abi };
  } finally {
    await held.release();
  }
}

/**
 * The checkout's node_modules as an uncompressed squashfs image (built in ~2 s): over 9p, Node's
 * module loading of tap's ~16k files costs tens of seconds under TCG; from a block device, little.
 * Keyed by what npm and tap change when they rewrite node_modules: npm's .package-lock.json
 * (content and mtime) and tap's built plugin set (@tapjs/test/test-built).
 */
export async function nodeModulesImage(nmDir) {
  const real = realpathSync(nmDir);
  const lockFile = join(real, '.package-lock.json');
  const stamp = (p) => (existsSync(p) ? String(statSync(p).mtimeMs) : '-');
  const key = sha256(FORMAT, real, existsSync(lockFile) ? readFileSync(lockFile) : '-', stamp(lockFile),
    stamp(join(real, '@tapjs/test/test-built')), stamp(real)).slice(0, 16);
  const root = cacheRoot();
  const img = join(root, `node_modules-${key}.sqfs`);
  const now = new Date();
  if (existsSync(img)) {
    utimesSync(img, now, now);
    return img;
  }
  await timed(`snapshotting ${real} as a squashfs image`, async () => {
    mkdirSync(root, { recursive: true });
    const tmp = `${img}.tmp-${process.pid}`;
    await exec('mksquashfs', [real, tmp, '-noappend', '-noI', '-noD', '-noF', '-noX', '-no-xattrs', '-all-root',
      '-quiet', '-no-progress', '-processors', '2'], { timeout: TIMEOUTS.initramfs, capture: true });
    publish(tmp, img);
  });
  gc(root);
  return img;
}

/**
 * Drops what no checkout used for 3 days: node_modules images (one per checkout and npm install),
 * initramfs builds (one per version of init.sh and the module list), and command dirs left by
 * killed runs (a day). Both kinds of image are touched each time they are used.
 */
export function gc(root) {
  const now = Date.now();
  const old = (p, days) => {
    try {
      return now - statSync(p).mtimeMs > days * 86400e3;
    } catch {
      return false; // another checkout removed it
    }
  };
  for (const n of readdirSync(root)) {
    const p = join(root, n);
    if (/^(node_modules-.*\.sqfs|initramfs-[0-9a-f]+\.cpio)$/.test(n) && old(p, 3)) rmSync(p, { force: true });
  }
  const runs = join(root, 'runs');
  if (existsSync(runs)) {
    for (const n of readdirSync(runs)) if (old(join(runs, n), 1)) rmSync(join(runs, n), { recursive: true, force: true });
  }
}
