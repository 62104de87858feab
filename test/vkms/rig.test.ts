// The vkms rig's promise to every conformance test: the devices are there. A VM without them
// fails here (and in the rig's preflight), it never skips.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

interface DrmNode { name: string; driver: string; dev: string }

/**
 * Every DRM minor in sysfs with its DRM driver name and /dev/dri node. vkms and vgem are platform
 * devices with no bound driver (no device/driver link), so the name comes from debugfs
 * dri/<minor>/name ("<driver> dev=... unique=..."), the DRM core's own record.
 */
function drmNodes(): DrmNode[] {
  const sys = '/sys/class/drm';
  return readdirSync(sys)
    .filter((n) => /^(card|renderD)\d+$/.test(n))
    .map((name) => {
      let driver = '';
      try {
        const minor = readFileSync(join(sys, name, 'dev'), 'utf8').trim().split(':')[1];
        driver = readFileSync(`/sys/kernel/debug/dri/${minor}/name`, 'utf8').split(' ')[0].trim();
      } catch {
        driver = '';
      }
      return { name, driver, dev: join('/dev/dri', name) };
    });
}

function isCharDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}

t.test('runs inside the vkms VM', async (t) => {
  t.equal(process.env.PRIMEBUF_IN_VM, '1', 'PRIMEBUF_IN_VM=1 (set by scripts/vm/run.mjs)');
});

t.test('vkms has a primary node and no render node', async (t) => {
  const nodes = drmNodes().filter((n) => n.driver === 'vkms');
  const cards = nodes.filter((n) => n.name.startsWith('card'));
  t.equal(cards.length, 1, `one vkms card (DRM nodes: ${JSON.stringify(drmNodes())})`);
  t.ok(cards.every((n) => isCharDevice(n.dev)), `${cards.map((n) => n.dev).join(', ')} is a character device`);
  t.equal(nodes.filter((n) => n.name.startsWith('renderD')).length, 0, 'vkms has no render node');
});

t.test('vgem has a primary and a render node', async (t) => {
  const nodes = drmNodes().filter((n) => n.driver === 'vgem');
  const card = nodes.find((n) => n.name.startsWith('card'));
  const render = nodes.find((n) => n.name.startsWith('renderD'));
  t.ok(card && isCharDevice(card.dev), `a vgem card node (DRM nodes: ${JSON.stringify(drmNodes())})`);
  t.ok(render && isCharDevice(render.dev), 'a vgem render node');
});

t.test('udmabuf and the system dma-heap', async (t) => {
  t.ok(isCharDevice('/dev/udmabuf'), '/dev/udmabuf is a character device');
  t.ok(isCharDevice('/dev/dma_heap/system'), '/dev/dma_heap/system is a character device');
});

t.test('debugfs exposes the DRM state the leak checks read', async (t) => {
  const dri = '/sys/kernel/debug/dri';
  const entries = readdirSync(dri);
  t.ok(entries.length > 0, `${dri} lists the DRM minors (${entries.join(' ')})`);
  const vkms = drmNodes().find((n) => n.driver === 'vkms' && n.name.startsWith('card'));
  t.ok(vkms, 'vkms card found');
  const minor = vkms ? vkms.name.replace('card', '') : '0';
  t.ok(statSync(join(dri, minor, 'framebuffer')).isFile(), `${dri}/${minor}/framebuffer exists`);
});

t.test('vkms encoders: Virtual-1 and Writeback-1 clonable in the rig build, each alone in stock', async (t) => {
  // scripts/vm/vkms-clone.patch; `--vkms stock` boots the unpatched module (PRIMEBUF_VM_VKMS)
  const variant = process.env.PRIMEBUF_VM_VKMS ?? 'clone';
  const card = drmNodes().find((n) => n.driver === 'vkms' && n.name.startsWith('card'));
  t.ok(card, 'vkms card found');
  if (!card) return;
  const r = spawnSync('drm_info', ['-j', card.dev], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, 'drm_info -j reads the vkms card');
  const encoders = (JSON.parse(r.stdout)[card.dev]?.encoders ?? []) as Array<{ id: number; possible_clones: number }>;
  t.equal(encoders.length, 2, 'two encoders: Virtual-1 and Writeback-1');
  encoders.forEach((e, i) => {
    if (variant === 'stock') t.equal(e.possible_clones, 1 << i, `stock: encoder ${e.id} clones only with itself`);
    else t.equal(e.possible_clones, (1 << encoders.length) - 1, `rig build: encoder ${e.id} clones with both`);
  });
});

t.test('vivid: a V4L2 capture node and an output node (issue 13)', async (t) => {
  // scripts/vm/config.mjs loads `vivid n_devs=1 node_types=0x101`: video0 capture, video1 output
  t.ok(isCharDevice('/dev/video0'), '/dev/video0 is a character device');
  t.ok(isCharDevice('/dev/video1'), '/dev/video1 is a character device');
  const name = (n: string) => {
    try {
      return readFileSync(`/sys/class/video4linux/${n}/name`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  t.match(name('video0'), /^vivid-000-vid-cap$/, 'video0 is vivid instance 0\'s capture node');
  t.match(name('video1'), /^vivid-000-vid-out$/, 'video1 is vivid instance 0\'s output node');
});
