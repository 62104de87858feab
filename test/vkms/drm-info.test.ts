// First conformance tests against the real kernel: primebuf's own addon opens the vkms card and
// the vgem render node and reads the driver name, version and PRIME capability; each figure is
// checked against an independent reader in the same guest: drm_info (Debian package drm-info,
// libdrm) where it can read the device, and the DRM core's debugfs record otherwise.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Device } from '../../src/kms/index.js';
import { DRM_CAPS, DRM_CLIENT_CAPS, type DrmCap, type DrmClientCap } from '../../src/kms/caps.js';

/** /dev/dri nodes of a DRM driver, found through sysfs and debugfs (not through primebuf). */
function nodesOf(driver: string): { card: string | null; render: string | null } {
  const out = { card: null as string | null, render: null as string | null };
  for (const name of readdirSync('/sys/class/drm').filter((n) => /^(card|renderD)\d+$/.test(n))) {
    const minor = readFileSync(join('/sys/class/drm', name, 'dev'), 'utf8').trim().split(':')[1];
    const drv = readFileSync(`/sys/kernel/debug/dri/${minor}/name`, 'utf8').split(' ')[0].trim();
    if (drv !== driver) continue;
    if (name.startsWith('card')) out.card = `/dev/dri/${name}`;
    else out.render = `/dev/dri/${name}`;
  }
  return out;
}

interface DrmInfoDriver {
  name: string;
  desc: string;
  version: { major: number; minor: number; patch: number; date: string };
  client_caps: Record<string, boolean>;
  caps: Record<string, number | null>;
}

/** `drm_info -j` for every node it can read (it skips, with a message, nodes without KMS). */
function drmInfo(): { json: Record<string, { driver: DrmInfoDriver }>; stderr: string } {
  const r = spawnSync('drm_info', ['-j'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { json: JSON.parse(r.stdout), stderr: r.stderr };
}

const vkms = nodesOf('vkms');
const vgem = nodesOf('vgem');
const info = drmInfo();

t.test('the guest has the vkms card and the vgem nodes', async (t) => {
  t.ok(vkms.card, `vkms card: ${vkms.card}`);
  t.equal(vkms.render, null, 'vkms has no render node');
  t.ok(vgem.card, `vgem card: ${vgem.card}`);
  t.ok(vgem.render, `vgem render node: ${vgem.render}`);
});

t.test('vkms card: driver name, description and version equal drm_info', async (t) => {
  const path = vkms.card!;
  const dev = Device.open(path);
  t.teardown(() => dev.close());
  const di = info.json[path]?.driver;
  t.ok(di, `drm_info -j describes ${path}`);
  if (!di) return;
  t.equal(dev.nodeType, 'primary');
  t.equal(dev.version.name, 'vkms', 'DRM_IOCTL_VERSION names the driver found through debugfs');
  t.equal(dev.version.name, di.name, 'name');
  t.equal(dev.version.desc, di.desc, 'description');
  t.equal(dev.version.major, di.version.major, 'major');
  t.equal(dev.version.minor, di.version.minor, 'minor');
  t.equal(dev.version.patchlevel, di.version.patch, 'patchlevel');
  t.equal(dev.version.date, di.version.date, 'date');
});

t.test('vkms card: every capability drm_info reads, including PRIME, equals getCap', async (t) => {
  const path = vkms.card!;
  const dev = Device.open(path);
  t.teardown(() => dev.close());
  const di = info.json[path]?.driver;
  t.ok(di, `drm_info -j describes ${path}`);
  if (!di) return;
  const names = Object.keys(di.caps);
  t.ok(names.includes('PRIME'), 'drm_info reads DRM_CAP_PRIME');
  for (const name of names) {
    t.ok(name in DRM_CAPS, `primebuf knows DRM_CAP_${name}`);
    if (!(name in DRM_CAPS)) continue;
    const theirs = di.caps[name];
    if (theirs === null) {
      // drm_info could not read it (EINVAL from the kernel): ours must fail too
      t.throws(() => dev.getCap(name as DrmCap), `DRM_CAP_${name} is refused by the kernel`);
    } else {
      t.equal(dev.getCap(name as DrmCap), BigInt(theirs), `DRM_CAP_${name}`);
    }
  }
  const prime = BigInt(di.caps.PRIME ?? 0);
  t.same(dev.prime, { import: (prime & 1n) !== 0n, export: (prime & 2n) !== 0n },
    `device.prime matches drm_info's PRIME=${prime}`);
  t.ok(dev.prime.import && dev.prime.export, 'vkms imports and exports dma-bufs (PRIME import|export)');
});

t.test('vkms card: client caps the kernel accepted agree with drm_info', async (t) => {
  const path = vkms.card!;
  const dev = Device.open(path);
  t.teardown(() => dev.close());
  const di = info.json[path]?.driver;
  t.ok(di, `drm_info -j describes ${path}`);
  if (!di) return;
  t.ok(dev.clientCaps.size > 0, `primebuf set client caps: ${[...dev.clientCaps].join(', ')}`);
  for (const cap of dev.clientCaps) {
    t.equal(di.client_caps[cap], true, `drm_info also got DRM_CLIENT_CAP_${cap}`);
  }
  for (const [name, ok] of Object.entries(di.client_caps)) {
    if (ok && name in DRM_CLIENT_CAPS && !dev.clientCaps.has(name as DrmClientCap)) {
      t.doesNotThrow(() => dev.setClientCap(name as DrmClientCap, 1n), `DRM_CLIENT_CAP_${name} is accepted through primebuf too`);
    }
  }
});

t.test('vgem render node: driver name and version; the card node agrees', async (t) => {
  const render = Device.open(vgem.render!);
  t.teardown(() => render.close());
  const card = Device.open(vgem.card!);
  t.teardown(() => card.close());
  t.equal(render.nodeType, 'render');
  t.equal(card.nodeType, 'primary');
  t.equal(render.version.name, 'vgem', 'DRM_IOCTL_VERSION names the driver found through debugfs');
  t.same(render.version, card.version, 'the render node and the card node report one driver version');
  t.equal(render.devId === card.devId, false, 'two distinct nodes (st_rdev)');
  t.ok(render.version.major >= 1, `version ${render.version.major}.${render.version.minor}.${render.version.patchlevel}`);
  // drm_info skips vgem: it has no KMS, so drmModeGetResources fails (EOPNOTSUPP).
  t.equal(info.json[vgem.card!], undefined, 'drm_info cannot describe the vgem card (no KMS)');
  t.match(info.stderr, vgem.card!, 'and says so on stderr');
});

t.test('vgem render node: PRIME capability read through the addon', async (t) => {
  const render = Device.open(vgem.render!);
  t.teardown(() => render.close());
  const card = Device.open(vgem.card!);
  t.teardown(() => card.close());
  const cap = render.getCap('PRIME');
  t.same(render.prime, { import: (cap & 1n) !== 0n, export: (cap & 2n) !== 0n }, `device.prime from PRIME=${cap}`);
  t.equal(card.getCap('PRIME'), cap, 'the card node reports the same PRIME cap');
  t.ok(render.prime.import && render.prime.export, 'vgem imports and exports dma-bufs');
});
